"""What a read of the channel's socket means, with no I/O: the codec turns the bytes into
messages, and the channel's state (:class:`~._core.ChannelCore`) learns of the handshake, a
clean end, the peer gone, or a break. Both transports do the read and hand its result here.

Only builtin modules are imported: the blocking worker imports this at start-up.
"""

from __future__ import annotations

from ._codec import Decoder, DecoderState
from ._core import ChannelCore, ReadState
from ._errors import ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ReadSide"]

_HANDSHAKING = ReadState.HANDSHAKE
_ERROR = DecoderState.ERROR


class ReadSide:
    """The read direction of one end. After each call, :attr:`broke` is the error the read
    side broke with by that call (reported once: None if it was no news), and
    ``core.read_done`` tells whether more may arrive. ``peer_released()`` asks the transport
    whether the peer released its whole socket (the finished-vs-gone policy, at an end of
    stream)."""

    __slots__ = ("_core", "_decoder", "_peer_released", "broke")

    def __init__(
        self, decoder: Decoder, core: ChannelCore, peer_released: Callable[[], bool]
    ) -> None:
        self._decoder = decoder
        self._core = core
        self._peer_released = peer_released
        #: The error the read side broke with in the last call, if that was news.
        self.broke: BaseException | None = None

    def received(self, result: int | BaseException) -> list[bytes]:
        """``result``: what ``recv_into(decoder.get_buffer())`` returned (a byte count, 0 at
        the end of the stream) or raised (``OSError``; ``MemoryError`` for a payload too
        large for this host). Returns the messages it completed, in order; frames before a
        protocol error are returned too, and the error is in :attr:`broke`."""
        self.broke = None
        if type(result) is not int:
            self._fail(result)  # type: ignore[arg-type]
            return []
        if result == 0:
            self._end()
            return []
        decoder = self._decoder
        try:
            payloads = decoder.buffer_updated(result)
        except (ProtocolError, MemoryError) as exc:
            self._fail(exc)
            return []
        if self._core.read_state is _HANDSHAKING and decoder.handshake_done:
            self._core.handshake_received()
        if decoder.state is _ERROR:
            try:
                decoder.feed_payloads(b"")  # raises the stored error
            except ProtocolError as exc:
                self._fail(exc)
        return payloads

    def fed(self, data: bytes) -> list[bytes]:
        """Bytes read outside the decoder's buffer (what a large-payload read got before it
        was cut short): the messages they complete (errors as :meth:`received`)."""
        self.broke = None
        try:
            return self._decoder.feed_payloads(data)
        except (ProtocolError, MemoryError) as exc:
            self._fail(exc)
            return []

    def failed(self, exc: BaseException) -> None:
        """The read side failed outside a read (a large-payload read's error, the parent
        seen gone by other means); :attr:`broke` says whether that is news."""
        self.broke = None
        self._fail(exc)

    def _end(self) -> None:
        try:
            self._decoder.feed_eof()
        except ProtocolError as exc:
            self._fail(exc)
            return
        self.broke = self._core.stream_ended(self._peer_released)

    def _fail(self, exc: BaseException) -> None:
        if self._core.read_failed(exc):
            self.broke = exc
