"""The sans-I/O codec: bytes in, events out; payloads in, bytes out. No sockets, no asyncio.

Both transports (asyncio and blocking) run on these two classes. The constants come from
:mod:`._wire`, which is generated from the construct grammar; the grammar itself is never
imported here (it costs ~30 ms at start-up and ~20x the time per frame).
"""

from __future__ import annotations

import enum
import struct

from ._checks import check_size
from ._errors import (
    HandshakeByteError,
    LocalProtocolError,
    MessageTooLargeError,
    PayloadTooLargeError,
    ProtocolError,
    TruncatedStreamError,
)
from ._roles import Role
from ._wire import HEADER_FORMAT, HEADER_SIZE, MAX_PAYLOAD, PARENT_HANDSHAKE, WORKER_HANDSHAKE

# typing and the event dataclasses cost ~30 ms to import on a slow machine: a worker that only
# moves payloads (the transports use feed_payloads) never imports them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final, NoReturn

    from ._events import Event

__all__ = ["Decoder", "DecoderState", "Encoder", "EncoderState"]

_HEADER = struct.Struct(HEADER_FORMAT)
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack

#: Payloads at least this long are assembled in a buffer of their own, allocated once at
#: their announced length, instead of in the decoder's shared reassembly buffer.
LARGE_PAYLOAD: Final = 1 << 16
#: A large payload's buffer starts at most this big and doubles as its bytes arrive.
PREALLOCATE: Final = 1 << 24
#: Size of the scratch buffer :meth:`Decoder.get_buffer` lends for small frames.
SCRATCH_SIZE: Final = 1 << 18

BytesLike = bytes | bytearray | memoryview


#: ``pack_header(length)``: the 4 header bytes of a frame whose payload is ``length`` bytes
#: long, unchecked (the caller checked ``length`` against ``MAX_PAYLOAD``; the encoder's
#: ``header`` checks). The struct's own method: the blocking transport's hot path calls it.
pack_header = _pack_header


def frame_length(header: BytesLike) -> int:
    """The payload length a frame's 4 header bytes announce (``header`` holds at least
    those; the length is not checked against any limit)."""
    length: int = _unpack_header(header)[0]
    return length


def payload_view(data: BytesLike) -> tuple[BytesLike, int]:
    """A payload handed to ``send``, checked before any byte of its frame is queued or
    written: ``(payload, size)``, where a ``memoryview`` is recast to unsigned bytes (so that
    slicing it counts bytes, whatever its format and shape).

    Raises:
        TypeError: not a bytes-like object, or a non-contiguous view (nothing can be sent of
            it as it is: copy it with ``bytes(view)``).
    """
    if type(data) is bytes:
        return data, len(data)
    view = memoryview(data)
    if not view.c_contiguous:
        raise TypeError(
            "send() needs a contiguous bytes-like object; copy a strided view with bytes(view)"
        )
    if type(data) is memoryview and (view.format != "B" or view.ndim != 1):
        data = view.cast("B")
    return data, view.nbytes


class DecoderState(enum.Enum):
    """Where a :class:`Decoder` is in the peer's stream."""

    HANDSHAKE = "handshake"  #: waiting for the peer's handshake byte
    FRAMES = "frames"  #: handshake done; frames follow
    ENDED = "ended"  #: the peer ended its stream cleanly
    ERROR = "error"  #: the stream broke the protocol; every later call raises


_HANDSHAKE = DecoderState.HANDSHAKE
_FRAMES = DecoderState.FRAMES
_ENDED = DecoderState.ENDED
_ERROR = DecoderState.ERROR


class Decoder:
    """Turns the bytes a peer writes into events.

    ``role`` is this side's role: a parent's decoder expects ``0x01`` first, a worker's
    ``0x00``. Bytes may arrive in chunks of any size, including one at a time: the events are
    the same. Feed the peer's end of stream with :meth:`feed_eof`.

    Errors are raised as soon as the bytes that prove them are in (a bad handshake byte at
    once, an oversized length as soon as its 4 header bytes are in, before any payload is
    buffered). If a chunk holds complete frames *before* the error, their events are returned
    first and the error is raised by the next call. From then on the state is ``ERROR`` and
    every call raises the same error.
    """

    __slots__ = (
        "_big",
        "_big_lent",
        "_big_need",
        "_big_pos",
        "_buf",
        "_error",
        "_expected",
        "_scratch",
        "_state",
        "handshake_done",
        "max_message_size",
        "role",
    )

    def __init__(self, role: Role, *, max_message_size: int = MAX_PAYLOAD) -> None:
        self.role: Final = role
        self.max_message_size: Final = check_size(max_message_size)
        self._expected = WORKER_HANDSHAKE if role is Role.PARENT else PARENT_HANDSHAKE
        self._state = _HANDSHAKE
        #: Whether the peer's handshake byte arrived (and was right).
        self.handshake_done = False
        self._buf = bytearray()  # a partial frame header, or a partial small frame
        self._big: bytearray | None = None  # a large payload being assembled
        self._big_pos = 0  # bytes of it received
        self._big_need = 0  # its announced length (the buffer grows towards it)
        self._big_lent = False
        self._scratch: memoryview | None = None
        self._error: ProtocolError | None = None

    @property
    def state(self) -> DecoderState:
        """The current state."""
        return self._state

    @property
    def buffered(self) -> int:
        """Bytes received that belong to a frame not yet complete (0 only at a frame boundary:
        a large frame's header counts, even before any of its payload arrived)."""
        return len(self._buf) + (HEADER_SIZE + self._big_pos if self._big is not None else 0)

    # -- public event API ------------------------------------------------------------------

    def feed(self, data: BytesLike) -> list[Event]:
        """Take the next chunk of the peer's bytes; return the events it completes.

        Raises:
            RemoteProtocolError: the bytes break the protocol (see the class docstring for
                when the error is raised relative to events).
            LocalProtocolError: called after the stream ended.
        """
        from ._events import HandshakeReceived, MessageReceived

        before = self._state
        try:
            payloads = self.feed_payloads(data)
        except ProtocolError:
            if before is _HANDSHAKE and self.handshake_done:
                # A good handshake byte, then an error in the same chunk: the handshake
                # event comes first and the (stored) error is raised by the next call, as for
                # frames that precede an error.
                return [HandshakeReceived()]
            raise
        events: list[Event] = []
        if before is _HANDSHAKE and self._state is not _HANDSHAKE:
            events.append(HandshakeReceived())
        events.extend([MessageReceived(payload=p) for p in payloads])
        return events

    def feed_eof(self) -> list[Event]:
        """The peer ended its stream. Returns ``[StreamEnded()]`` the first time, then ``[]``.

        Raises:
            TruncatedStreamError: the stream ended inside the handshake, a header or a payload.
            RemoteProtocolError: a protocol error was already found.
        """
        state = self._state
        if state is _FRAMES:
            big = self._big
            if big is not None:
                missing = self._big_need - self._big_pos
                self._fail(TruncatedStreamError(stage="payload", missing=missing))
            buf = self._buf
            if buf:
                if len(buf) < HEADER_SIZE:
                    self._fail(TruncatedStreamError(stage="header", missing=HEADER_SIZE - len(buf)))
                (length,) = _unpack_header(buf)
                missing = HEADER_SIZE + length - len(buf)
                self._fail(TruncatedStreamError(stage="payload", missing=missing))
            self._state = _ENDED
            from ._events import StreamEnded

            return [StreamEnded()]
        if state is _HANDSHAKE:
            self._fail(TruncatedStreamError(stage="handshake", missing=1))
        if state is _ENDED:
            return []
        self._raise_stored()

    # -- fast paths used by the transports -------------------------------------------------

    def feed_payloads(self, data: BytesLike) -> list[bytes]:
        """:meth:`feed`, returning just the payloads (the handshake shows in :attr:`state`).

        Same errors as :meth:`feed`.
        """
        if self._state is not _FRAMES:
            if self._state is not _HANDSHAKE:
                self._refuse()
            if not data:
                return []
            got = data[0]
            if got != self._expected:
                self._fail(HandshakeByteError(expected=self._expected, got=got))
            self._state = _FRAMES
            self.handshake_done = True
            data = memoryview(data)[1:]

        out: list[bytes] = []
        big = self._big
        if big is not None:
            pos = self._big_pos
            need = self._big_need - pos
            if len(data) < need:
                end = pos + len(data)
                while end > len(big):
                    self._grow(big)
                big[pos:end] = data
                self._big_pos = end
                return out
            while len(big) < self._big_need:
                self._grow(big)
            big[pos:] = memoryview(data)[:need]
            self._big = None
            out.append(bytes(big))
            data = memoryview(data)[need:]

        buf = self._buf
        if buf:
            buf += data
            data = buf
        n = len(data)
        if n < HEADER_SIZE:
            if data is not buf:
                buf += data
            return out
        limit = self.max_message_size
        i = 0
        if type(data) is bytes:
            while n - i >= HEADER_SIZE:
                (length,) = _unpack_header(data, i)
                if length > limit:
                    return self._fail_after(out, MessageTooLargeError(length=length, limit=limit))
                j = i + HEADER_SIZE + length
                if j > n:
                    break
                out.append(data[i + HEADER_SIZE : j])
                i = j
        else:
            view = memoryview(data)
            while n - i >= HEADER_SIZE:
                (length,) = _unpack_header(data, i)
                if length > limit:
                    return self._fail_after(out, MessageTooLargeError(length=length, limit=limit))
                j = i + HEADER_SIZE + length
                if j > n:
                    break
                out.append(view[i + HEADER_SIZE : j].tobytes())
                i = j
            view.release()
        self._keep_tail(data, i, n)
        return out

    def _keep_tail(self, data: BytesLike, i: int, n: int) -> None:
        """Store the incomplete frame at ``data[i:n]`` for the next chunk."""
        if i == n:
            if self._buf:
                self._buf = bytearray()
            return
        if n - i >= HEADER_SIZE:
            (length,) = _unpack_header(data, i)
            if length >= LARGE_PAYLOAD:
                # Allocate for what may come, not for what the header claims: a header
                # announcing 4 GiB followed by nothing must not cost 4 GiB.
                got = n - i - HEADER_SIZE
                big = bytearray(min(length, max(PREALLOCATE, 2 * got)))
                big[:got] = memoryview(data)[i + HEADER_SIZE : n]
                self._big = big
                self._big_pos = got
                self._big_need = length
                self._buf = bytearray()
                return
        if data is self._buf:
            del self._buf[:i]
        else:
            self._buf = bytearray(memoryview(data)[i:n])

    def get_buffer(self) -> memoryview:
        """A writable buffer to receive the peer's next bytes into (``recv_into``), then pass
        the count to :meth:`buffer_updated`. While a large payload is arriving this is the
        payload's own buffer, so its bytes are received in place; otherwise a scratch buffer.
        Release it (drop every reference) before calling :meth:`buffer_updated`.
        """
        big = self._big
        if big is not None and self._state is _FRAMES:
            if self._big_pos == len(big):
                self._grow(big)
            self._big_lent = True
            return memoryview(big)[self._big_pos :]
        self._big_lent = False
        if self._scratch is None:
            self._scratch = memoryview(bytearray(SCRATCH_SIZE))
        return self._scratch

    def buffer_updated(self, nbytes: int) -> list[bytes]:
        """``nbytes`` were written at the start of the last :meth:`get_buffer` buffer.

        Returns and raises as :meth:`feed_payloads`.
        """
        if self._big_lent:
            self._big_lent = False
            big = self._big
            assert big is not None
            pos = self._big_pos + nbytes
            if pos < self._big_need:
                self._big_pos = pos
                return []
            self._big = None
            return [bytes(big)]
        assert self._scratch is not None
        return self.feed_payloads(self._scratch[:nbytes])

    def _grow(self, big: bytearray) -> None:
        """Double the large payload's buffer, up to its announced length. ``bytes(n)`` comes
        from calloc, so the new space costs nothing until bytes arrive in it."""
        big += bytes(min(self._big_need, 2 * len(big)) - len(big))

    # -- errors ----------------------------------------------------------------------------

    def _fail(self, error: ProtocolError) -> NoReturn:
        self._state = _ERROR
        self._error = error
        self._buf = bytearray()
        self._big = None
        raise error

    def _fail_after(self, out: list[bytes], error: ProtocolError) -> list[bytes]:
        if not out:
            self._fail(error)
        self._state = _ERROR
        self._error = error
        self._buf = bytearray()
        return out

    def _refuse(self) -> NoReturn:
        if self._state is _ENDED:
            raise LocalProtocolError("data fed after the peer's end of stream")
        self._raise_stored()

    def _raise_stored(self) -> NoReturn:
        assert self._error is not None
        raise self._error


class EncoderState(enum.Enum):
    """Where an :class:`Encoder` is in this side's stream."""

    HANDSHAKE = "handshake"  #: the handshake byte is still to be written
    FRAMES = "frames"  #: frames may be encoded
    ENDED = "ended"  #: this side ended its stream


class Encoder:
    """Turns this side's payloads into bytes.

    Write :meth:`handshake` first, then each frame's :meth:`header` followed by its payload.
    The header and the payload are separate so a large payload goes out without a copy.
    """

    __slots__ = ("_byte", "_state", "role")

    def __init__(self, role: Role) -> None:
        self.role: Final = role
        self._byte = bytes([PARENT_HANDSHAKE if role is Role.PARENT else WORKER_HANDSHAKE])
        self._state = EncoderState.HANDSHAKE

    @property
    def state(self) -> EncoderState:
        """The current state."""
        return self._state

    def handshake(self) -> bytes:
        """This role's handshake byte.

        Raises:
            LocalProtocolError: the handshake was already encoded.
        """
        if self._state is not EncoderState.HANDSHAKE:
            raise LocalProtocolError("the handshake byte is written once, first")
        self._state = EncoderState.FRAMES
        return self._byte

    def header(self, length: int) -> bytes:
        """The 4-byte header of a frame whose payload is ``length`` bytes long.

        Raises:
            PayloadTooLargeError: ``length`` is over the wire maximum (2**32 - 1).
            LocalProtocolError: before the handshake, or after :meth:`end`.
        """
        if self._state is not EncoderState.FRAMES:
            self._refuse()
        if length > MAX_PAYLOAD:
            raise PayloadTooLargeError(length=length, limit=MAX_PAYLOAD)
        return _pack_header(length)

    def encode(self, payload: BytesLike) -> tuple[bytes, BytesLike]:
        """``(header, payload)`` for one frame; write both, in that order.

        Raises:
            PayloadTooLargeError, LocalProtocolError: as :meth:`header`.
            TypeError: as :func:`payload_view`.
        """
        payload, size = payload_view(payload)
        return self.header(size), payload

    def frame(self, payload: BytesLike) -> bytes:
        """Header and payload joined into one ``bytes`` (convenient for small payloads).

        Raises:
            PayloadTooLargeError, LocalProtocolError: as :meth:`header`.
            TypeError: as :func:`payload_view`.
        """
        payload, size = payload_view(payload)
        return self.header(size) + bytes(payload)

    def end(self) -> None:
        """This side ends its stream (the transport shuts down its write side).

        Raises:
            LocalProtocolError: before the handshake.
        """
        if self._state is EncoderState.HANDSHAKE:
            raise LocalProtocolError("cannot end the stream before the handshake")
        self._state = EncoderState.ENDED

    def _refuse(self) -> NoReturn:
        if self._state is EncoderState.HANDSHAKE:
            raise LocalProtocolError("frames cannot be encoded before the handshake byte")
        raise LocalProtocolError("frames cannot be encoded after the stream ended")
