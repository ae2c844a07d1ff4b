"""The blocking transport's write side: whole frames written under a lock, so that several
threads may send at once without interleaving frames. A small payload is joined to its header
and written with one system call; a large one goes out with ``sendmsg`` next to its header,
without a copy. Builtin modules only (the blocking worker imports this at start-up).
"""

from __future__ import annotations

import _socket
import _thread
import os

from ._codec import BytesLike, Encoder, pack_header, payload_view
from ._core import ChannelCore, WriteState
from ._errors import BrokenResourceError, ClosedResourceError, PayloadTooLargeError
from ._wire import HEADER_SIZE, MAX_PAYLOAD

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

__all__ = ["SMALL_SEND", "SyncWriter"]

#: Payloads shorter than this are joined to their header and written with one system call;
#: longer ones go out with ``sendmsg([header, payload])`` (no copy).
SMALL_SEND = 1 << 14

_write = os.write
_OPEN = WriteState.OPEN
_BROKEN = WriteState.BROKEN


class SyncWriter:
    """Writes one channel's frames. ``on_broken`` is called once when a write fails. The
    channel takes :attr:`lock` before it releases the descriptor, so a frame is never written
    to a reused descriptor number."""

    def __init__(
        self,
        sock: _socket.socket,
        encoder: Encoder,
        core: ChannelCore,
        on_broken: Callable[[BaseException], None],
    ) -> None:
        self._sock = sock
        self._sendall = sock.sendall
        self._fd = sock.fileno()
        self._encoder = encoder
        self._core = core
        self._on_broken: Callable[[BaseException], None] | None = on_broken
        self.lock = _thread.allocate_lock()

    def write_handshake(self) -> None:
        """Write this side's handshake byte.

        Raises:
            BrokenResourceError: the socket failed.
        """
        with self.lock:
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
            lock = self.lock
            lock.acquire()
            try:
                if self._core.write_state is not _OPEN:
                    self._refuse_send()
                try:
                    written = _write(self._fd, frame)
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
        with self.lock:
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
        if self._core.write_failed(exc) and self._on_broken is not None:
            self._on_broken(exc)
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
        lock = self.lock
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
