"""The blocking transport: frames over a connected blocking socket, on the sans-I/O codec.

No event loop and no background reader: a frame is read when someone asks for a message.
``send`` writes its frame before returning (one ``sendall`` for a small payload; a large one
goes out with ``sendmsg`` next to its header, without a copy) under a lock, so several threads
may send at once without interleaving frames. ``recv`` reads a batch of frames per system call
into the decoder's buffer; once a large payload has arrived, the next frame's header is read on
its own so that a large payload can be received straight into the ``bytes`` object that is
handed out (``recv(n, MSG_WAITALL)``), with no copy in user space.

Only builtin modules are imported (``_socket``, ``_thread``, ``select``): a worker that uses
the blocking API starts without ``socket``, ``threading``, ``asyncio`` or ``typing``.
"""

from __future__ import annotations

import _socket
import _thread
import os
import select
from collections import deque
from time import monotonic

from ._checks import check_timeout
from ._codec import (
    LARGE_PAYLOAD,
    PREALLOCATE,
    BytesLike,
    Decoder,
    DecoderState,
    Encoder,
    frame_length,
    pack_header,
    payload_view,
)
from ._core import ChannelCore, ReadState, WriteState
from ._errors import (
    BrokenResourceError,
    ClosedResourceError,
    PayloadTooLargeError,
    ProtocolError,
)
from ._wire import HEADER_SIZE, MAX_PAYLOAD

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

__all__ = ["SyncChannel", "poll_ms", "suppress", "wait_fd"]

#: Payloads shorter than this are joined to their header and written with one ``sendall``;
#: longer ones go out with ``sendmsg([header, payload])`` (no copy).
SMALL_SEND = 1 << 14

_HANDSHAKING = ReadState.HANDSHAKE
_OPEN = WriteState.OPEN
_BROKEN = WriteState.BROKEN
_FRAMES = DecoderState.FRAMES
_ERROR = DecoderState.ERROR
_write = os.write
_MSG_WAITALL = _socket.MSG_WAITALL
_MSG_DONTWAIT = _socket.MSG_DONTWAIT
_POLLIN = select.POLLIN
_HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL
_INF = float("inf")
#: Longer poll() timeouts (about 24 days) are waited as "no limit".
_POLL_MAX = (2**31 - 1) / 1000


class suppress:
    """``contextlib.suppress`` without importing contextlib (start-up time)."""

    __slots__ = ("_types",)

    def __init__(self, *types: type[BaseException]) -> None:
        self._types = types

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        return exc_type is not None and issubclass(exc_type, self._types)


def poll_ms(timeout: float | None) -> int | None:
    """A ``select.poll`` timeout in milliseconds, rounded up (``None``: wait forever, also
    for ``math.inf`` and anything longer than poll() can express)."""
    if timeout is None or timeout >= _POLL_MAX:
        return None
    if timeout <= 0:
        return 0
    return int(timeout * 1000) + 1


def wait_fd(fd: int, events: int, timeout: float | None) -> int:
    """Wait until ``fd`` has one of ``events`` (or a hang-up/error); return the events seen,
    0 on timeout."""
    poller = select.poll()
    poller.register(fd, events)
    ready = poller.poll(poll_ms(timeout))
    return ready[0][1] if ready else 0


class SyncChannel:
    """One end of the channel over a blocking socket.

    ``send`` may be called from several threads at once, and so may ``recv`` (each message
    goes to exactly one caller). ``on_broken`` is called once, with the error, when the
    channel breaks in either direction; ``hup_is_broken`` makes an end of stream count as a
    break when the peer released its whole socket rather than half-closing it (a worker tells
    "parent gone" from "parent finished" that way), unless this side already finished.
    """

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
        self._sendall = sock.sendall
        self._recv_into = sock.recv_into
        self.fd = sock.fileno()
        self._decoder = decoder
        self._encoder = encoder
        self._core = ChannelCore(hup_is_broken=hup_is_broken)
        self.on_broken: Callable[[BaseException], None] | None = None
        # read side: guarded by _recv_lock, except that taking from the inbox needs no lock
        self._recv_lock = _thread.allocate_lock()
        self._inbox: deque[bytes] = deque()
        self._large_next = False
        # write side: guarded by _send_lock
        self._send_lock = _thread.allocate_lock()

    # -- state -------------------------------------------------------------------------------

    @property
    def read_done(self) -> bool:
        """The peer's stream ended (cleanly or not), or this side closed."""
        return self._core.read_done

    @property
    def closed(self) -> bool:
        return self._core.closed

    @property
    def finished(self) -> bool:
        """This side ended its stream, or closed the channel."""
        return self._core.finished

    @property
    def read_error(self) -> BaseException | None:
        """Why the read side broke, if it did."""
        return self._core.read_error

    @property
    def write_error(self) -> BaseException | None:
        """Why the write side broke (or what interrupted a send), if it did."""
        return self._core.write_error

    @property
    def handshake_done(self) -> bool:
        return self._decoder.handshake_done

    def close(self) -> None:
        """Release the socket at once (without finishing). ``shutdown`` comes first so that
        a thread blocked reading or polling the socket wakes up."""
        if not self._core.close():
            return
        with suppress(OSError):
            self._sock.shutdown(_socket.SHUT_RDWR)  # a blocked send fails now, and lets go
        with self._send_lock:
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
        inbox = self._inbox
        if inbox:
            try:
                return inbox.popleft()
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
            while not inbox:
                if self._core.read_done:
                    self._raise_read_state()
                if deadline is None:
                    decoder = self._decoder
                    if self._large_next and decoder.buffered == 0 and decoder.state is _FRAMES:
                        self._read_large()
                        continue
                    # _read_once(0), inlined: this is the per-batch path of every receiver
                    try:
                        n = self._recv_into(decoder.get_buffer())
                    except (OSError, MemoryError) as exc:
                        self.break_with(exc)
                        continue
                    if n:
                        self._take(decoder, n)
                    else:
                        self._on_eof()
                else:
                    # Out of time, still read what the kernel holds now (poll(0)): a timeout
                    # of 0 takes a message that has arrived.
                    left = max(0.0, deadline - monotonic())
                    if not wait_fd(self.fd, _POLLIN, left):
                        raise TimeoutError(f"no message within {timeout} s")
                    self._read_once(0)
            return inbox.popleft()
        finally:
            self._recv_lock.release()

    def _raise_read_state(self) -> None:
        if self._inbox:
            return
        err = self._core.recv_error()
        if err is not None:
            raise err

    def _read_once(self, flags: int) -> int:
        """One ``recv_into`` into the decoder's buffer; queue the frames it completes.
        Returns the byte count (0 at the end of the stream or an error), or -1 if nothing
        could be read without waiting (``MSG_DONTWAIT``)."""
        decoder = self._decoder
        try:
            n = self._sock.recv_into(decoder.get_buffer(), 0, flags)
        except BlockingIOError:
            return -1
        except (OSError, MemoryError) as exc:  # MemoryError: a payload too big for this host
            self.break_with(exc)
            return 0
        if n == 0:
            self._on_eof()
            return 0
        self._take(decoder, n)
        return n

    def _take(self, decoder: Decoder, n: int) -> None:
        try:
            payloads = decoder.buffer_updated(n)
        except (ProtocolError, MemoryError) as exc:
            self.break_with(exc)
            return
        if self._core.read_state is _HANDSHAKING and decoder.handshake_done:
            self._core.handshake_received()
        if payloads:
            self._inbox.extend(payloads)
            self._large_next = len(payloads[-1]) >= LARGE_PAYLOAD
        if decoder.state is _ERROR:
            try:
                decoder.feed_payloads(b"")
            except ProtocolError as exc:
                self.break_with(exc)

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
                        self._inbox.append(payload)
                        self._large_next = True
                        return
                    head += payload  # cut short (end of stream, signal): the slow path
        except OSError as exc:
            self.break_with(exc)
            return
        if not head:
            self._on_eof()
            return
        try:
            payloads = decoder.feed_payloads(head)
        except (ProtocolError, MemoryError) as exc:
            self.break_with(exc)
            return
        self._inbox.extend(payloads)

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

    def _on_eof(self) -> None:
        try:
            self._decoder.feed_eof()
        except ProtocolError as exc:
            self.break_with(exc)
            return
        gone = self._core.stream_ended(self.peer_hung_up)
        if gone is not None and self.on_broken is not None:
            self.on_broken(gone)

    def peer_hung_up(self) -> bool:
        """Whether the peer's socket was released (process exit, close) rather than
        half-closed. (Once this side has shut its own write side too, both look alike.)"""
        return bool(wait_fd(self.fd, 0, 0) & select.POLLHUP)

    def break_with(self, exc: BaseException) -> None:
        """The read side failed (protocol error, OS error, peer gone)."""
        if self._core.read_failed(exc) and self.on_broken is not None:
            self.on_broken(exc)

    # -- writing -----------------------------------------------------------------------------

    def write_handshake(self) -> None:
        """Write this side's handshake byte.

        Raises:
            BrokenResourceError: the socket failed.
        """
        with self._send_lock:
            self._write(self._encoder.handshake())
            self._core.handshake_sent()

    def send(self, data: BytesLike) -> None:
        """Write one frame, blocking while the peer does not read.

        An exception that interrupts the write (one raised by a signal handler,
        ``KeyboardInterrupt``) propagates and leaves the write side broken: part of the frame
        may be out, and the stream must never carry another frame after a cut one. Every later
        ``send`` raises BrokenResourceError (``__cause__``: that exception).

        Raises:
            TypeError: not a contiguous bytes-like object (nothing was written).
            PayloadTooLargeError: over the wire maximum.
            ClosedResourceError: this side closed or finished.
            BrokenResourceError: the channel broke.
        """
        if type(data) is bytes:
            size = len(data)
        else:
            data, size = payload_view(data)
        if size < SMALL_SEND:
            # The hot path: one allocation, one system call (os.write costs less than
            # socket.sendall; acquire/release less than ``with``). close() takes this lock
            # before it releases the descriptor, so the number written to is still ours.
            frame = pack_header(size) + data
            lock = self._send_lock
            lock.acquire()
            try:
                if self._core.write_state is not _OPEN:
                    self._refuse_send()
                try:
                    written = _write(self.fd, frame)
                    if written != len(frame):
                        self._sendall(frame[written:])
                except OSError as exc:
                    self._write_broke(exc)
                except BaseException as exc:
                    self._interrupted(exc)
                    raise
            finally:
                lock.release()
            return
        if size > MAX_PAYLOAD:
            raise PayloadTooLargeError(length=size, limit=MAX_PAYLOAD)
        header = pack_header(size)
        with self._send_lock:
            if self._core.write_state is not _OPEN:
                self._refuse_send()
            try:
                sent = self._sock.sendmsg([header, data])
                if sent < HEADER_SIZE:
                    self._sendall(header[sent:])
                    sent = HEADER_SIZE
                if sent < HEADER_SIZE + size:
                    self._sendall(memoryview(data)[sent - HEADER_SIZE :])
            except OSError as exc:
                self._write_broke(exc)
            except BaseException as exc:
                self._interrupted(exc)
                raise

    def _interrupted(self, exc: BaseException) -> None:
        # Whether any byte of the frame went out is unknowable here (the exception may come
        # right after a partial write returned): the write side is broken either way.
        self._core.write_failed(exc)

    def _write(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self._write_broke(exc)

    def _refuse_send(self) -> None:
        err = self._core.send_error()
        if err is not None:
            raise err

    def _write_broke(self, exc: OSError) -> NoReturn:
        if self._core.closed:
            raise ClosedResourceError("the channel was closed") from exc
        if self._core.write_failed(exc) and self.on_broken is not None:
            self.on_broken(exc)
        raise BrokenResourceError(f"the channel broke: {exc}") from exc

    def finish(self, timeout: float | None = None) -> bool:
        """End this side's stream (``shutdown(SHUT_WR)``) once no other thread is writing a
        frame. Idempotent. Returns False if another thread still held the write side after
        ``timeout`` seconds (nothing was done).

        Raises:
            BrokenResourceError: an earlier write failed, or the shutdown did.
            ClosedResourceError: the channel was closed.
        """
        if self._core.closed:
            raise ClosedResourceError("the channel was closed")
        lock = self._send_lock
        if not (lock.acquire() if timeout is None else lock.acquire(True, max(0.0, timeout))):
            return False
        try:
            core = self._core
            if core.write_state is _BROKEN:
                self._refuse_send()
            if core.write_state is _OPEN:
                core.write_shut()  # first, so a hang-up watcher never sees it unset
                self._encoder.end()
                try:
                    self._sock.shutdown(_socket.SHUT_WR)
                except OSError as exc:
                    self._write_broke(exc)
        finally:
            lock.release()
        return True
