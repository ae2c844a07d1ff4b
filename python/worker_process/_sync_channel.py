"""The blocking transport: frames over a connected blocking socket, on the sans-I/O codec,
with the channel's state in a :class:`~._core.ChannelCore`.

No event loop and no background reader: a frame is read when someone asks for a message.
``send`` writes its frame before returning (:mod:`._sync_writer`). ``recv`` reads a batch of
frames per system call into the decoder's buffer; once a large payload has arrived, the next
frame's header is read on its own so that a large payload can be received straight into the
``bytes`` object that is handed out (``recv(n, MSG_WAITALL)``), with no copy in user space.

Only builtin modules are imported (``_socket``, ``_thread``, ``select``): a worker that uses
the blocking API starts without ``socket``, ``threading``, ``asyncio`` or ``typing``.
"""

from __future__ import annotations

import _socket
import _thread
import select
from time import monotonic

from ._channel_fd import _POLL_MAX, peer_released, poll_ms, wait_fd
from ._checks import check_timeout
from ._codec import (
    LARGE_PAYLOAD,
    PREALLOCATE,
    BytesLike,
    Decoder,
    DecoderState,
    Encoder,
    frame_length,
)
from ._core import ChannelCore, CoreBacked
from ._inbox import MessageQueue
from ._read_side import ReadSide
from ._sync_writer import SyncWriter
from ._wire import HEADER_SIZE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SyncChannel", "poll_ms", "suppress", "wait_fd"]

_FRAMES = DecoderState.FRAMES
_MSG_WAITALL = _socket.MSG_WAITALL
_MSG_DONTWAIT = _socket.MSG_DONTWAIT
_POLLIN = select.POLLIN


class suppress:
    """``contextlib.suppress`` without importing contextlib (start-up time)."""

    __slots__ = ("_types",)

    def __init__(self, *types: type[BaseException]) -> None:
        self._types = types

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        return exc_type is not None and issubclass(exc_type, self._types)


class SyncChannel(CoreBacked):
    """One end of the channel over a blocking socket.

    ``send`` may be called from several threads at once, and so may ``recv`` (each message
    goes to exactly one caller). ``on_broken`` is called once, with the error, when the
    channel breaks in either direction; ``hup_is_broken`` makes an end of stream count as a
    break when the peer released its whole socket rather than half-closing it (a worker tells
    "parent gone" from "parent finished" that way), unless this side already finished.
    The write side is a :class:`~._sync_writer.SyncWriter`, whose methods the channel
    exposes as its own.
    """

    #: Write one frame (:meth:`SyncWriter.send`, bound: one call less per message).
    send: Callable[[BytesLike], None]

    def __init__(
        self,
        sock: _socket.socket,
        decoder: Decoder,
        encoder: Encoder,
        *,
        hup_is_broken: bool = False,
    ) -> None:
        sock.setblocking(True)
        self._sock = sock
        self._recv_into = sock.recv_into
        self.fd = sock.fileno()
        self._decoder = decoder
        self._encoder = encoder
        #: The channel's state (``read_error``, ``write_error``, …).
        self.core = ChannelCore(hup_is_broken=hup_is_broken)
        self.on_broken: Callable[[BaseException], None] | None = None
        # read side: reading is guarded by _recv_lock; taking a message needs no lock. The
        # socket is read only when a message is asked for, so the queue never pauses.
        self._recv_lock = _thread.allocate_lock()
        self._inbox = MessageQueue(high=None)
        self._reads = ReadSide(decoder, self.core, self.peer_hung_up)
        self._large_next = False
        self.writer = writer = SyncWriter(sock, encoder, self.core, self._report)
        self.send = writer.send
        self.write_handshake = writer.write_handshake
        self.finish = writer.finish

    # -- state -------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """This side ended its stream, or closed the channel."""
        return self.core.finished

    @property
    def read_error(self) -> BaseException | None:
        """Why the read side broke, if it did."""
        return self.core.read_error

    @property
    def write_error(self) -> BaseException | None:
        """Why the write side broke (or what interrupted a send), if it did."""
        return self.core.write_error

    @property
    def handshake_done(self) -> bool:
        return self._decoder.handshake_done

    def close(self) -> None:
        """Release the socket at once (without finishing). ``shutdown`` comes first so that
        a thread blocked reading or polling the socket wakes up."""
        if not self.core.close():
            return
        with suppress(OSError):
            self._sock.shutdown(_socket.SHUT_RDWR)  # a blocked send fails now, and lets go
        with self.writer.lock:
            self._sock.close()

    # -- reading -----------------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> bytes:
        """The next message, waiting at most ``timeout`` seconds (``None`` or ``math.inf``:
        no limit; 0: only what has arrived already, reading what the kernel holds).

        Raises:
            ValueError: ``timeout`` is not ``None`` or a number ``>= 0``.
            TimeoutError: no whole message arrived in time (a partial one stays buffered).
            EndOfStream: the peer ended its stream and every message was received.
            BrokenResourceError: the channel broke (``__cause__`` says how).
            ClosedResourceError: this side closed the channel.
        """
        if timeout is not None:
            timeout = check_timeout("timeout", timeout)
            if timeout >= _POLL_MAX:
                timeout = None
        messages = self._inbox.messages
        if messages:
            try:
                return messages.popleft()
            except IndexError:  # another thread took it
                pass
        if timeout is None:
            deadline = None
            acquired = self._recv_lock.acquire()
        else:
            deadline = monotonic() + timeout
            acquired = self._recv_lock.acquire(True, timeout)
        if not acquired:
            raise TimeoutError(f"no message within {timeout} s")
        try:
            while not messages:
                if self.core.read_done:
                    self._raise_read_state()
                if deadline is None:
                    decoder = self._decoder
                    if self._large_next and decoder.buffered == 0 and decoder.state is _FRAMES:
                        self._read_large()
                        continue
                    # _read_once(0) and _take, inlined: the per-batch path of every receiver
                    result: int | BaseException
                    try:
                        result = self._recv_into(decoder.get_buffer())
                    except (OSError, MemoryError) as exc:
                        result = exc
                    reads = self._reads
                    payloads = reads.received(result)
                    if payloads:
                        messages.extend(payloads)
                        self._large_next = len(payloads[-1]) >= LARGE_PAYLOAD
                    if reads.broke is not None:
                        self._report(reads.broke)
                else:
                    # Out of time, still read what the kernel holds now (poll(0)): a timeout
                    # of 0 takes a message that has arrived.
                    left = max(0.0, deadline - monotonic())
                    if not wait_fd(self.fd, _POLLIN, left):
                        raise TimeoutError(f"no message within {timeout} s")
                    self._read_once(0)
            return messages.popleft()
        finally:
            self._recv_lock.release()

    def _raise_read_state(self) -> None:
        if self._inbox:
            return
        err = self.core.recv_error()
        if err is not None:
            raise err

    def _read_once(self, flags: int) -> int:
        """One ``recv_into`` into the decoder's buffer; queue the frames it completes.
        Returns the byte count (0 at the end of the stream or an error), or -1 if nothing
        could be read without waiting (``MSG_DONTWAIT``)."""
        result: int | BaseException
        try:
            result = self._sock.recv_into(self._decoder.get_buffer(), 0, flags)
        except BlockingIOError:
            return -1
        except (OSError, MemoryError) as exc:
            result = exc
        self._take(result)
        return result if type(result) is int else 0

    def _take(self, result: int | BaseException) -> None:
        reads = self._reads
        payloads = reads.received(result)
        if payloads:
            self._inbox.put(payloads)
            self._large_next = len(payloads[-1]) >= LARGE_PAYLOAD
        if reads.broke is not None:
            self._report(reads.broke)

    def _read_large(self) -> None:
        """After a large payload: read the next header alone, and a large payload straight
        into the ``bytes`` object that is delivered. Anything else (a small frame, a length
        over the limit, a short read) goes through the decoder as usual."""
        self._large_next = False
        sock = self._sock
        decoder = self._decoder
        try:
            head = sock.recv(HEADER_SIZE, _MSG_WAITALL)
            if len(head) == HEADER_SIZE:
                length = frame_length(head)
                # Over PREALLOCATE a header alone must not reserve its announced length
                # (spec, Limits): the decoder takes such a frame, growing as bytes arrive.
                if LARGE_PAYLOAD <= length <= min(decoder.max_message_size, PREALLOCATE):
                    try:
                        payload = sock.recv(length, _MSG_WAITALL)
                    except MemoryError:
                        # The announced length cannot be reserved at once: the decoder takes
                        # the frame, growing its buffer only as bytes arrive.
                        payload = b""
                    if len(payload) == length:
                        self._inbox.put([payload])
                        self._large_next = True
                        return
                    head += payload  # cut short (end of stream, signal): the slow path
        except OSError as exc:
            self.break_with(exc)
            return
        if not head:
            self._take(0)
            return
        self._inbox.put(self._reads.fed(head))
        self._report(self._reads.broke)

    def read_available(self, limit: int) -> int:
        """Read, without waiting, what the kernel holds now (up to about ``limit`` bytes);
        return the byte count, or -1 if another thread is reading. Used while waiting for the
        peer process to exit, so that it is not kept blocked writing to a side that does not
        read, and at its exit, so that what it left decides the outcome."""
        if not self._recv_lock.acquire(False):
            return -1
        try:
            got = 0
            while got < limit and not self.read_done:
                n = self._read_once(_MSG_DONTWAIT)
                if n <= 0:
                    break
                got += n
            return got
        finally:
            self._recv_lock.release()

    def peer_hung_up(self) -> bool:
        """Whether the peer's socket was released (process exit, close) rather than
        half-closed. (Once this side has shut its own write side too, both look alike.)"""
        return peer_released(self.fd)

    def _report(self, exc: BaseException | None) -> None:
        if exc is not None and self.on_broken is not None:
            self.on_broken(exc)

    def break_with(self, exc: BaseException) -> None:
        """The read side failed (protocol error, OS error, peer gone)."""
        self._reads.failed(exc)
        self._report(self._reads.broke)
