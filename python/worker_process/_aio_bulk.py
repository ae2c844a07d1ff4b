"""Receiving a large payload for the asyncio transport in a thread, straight into the
``bytes`` object that is delivered.

The loop alone receives a large payload into a growing buffer and copies it into ``bytes``
at the end: at 16 MiB per message that is about 5x slower, and the copy raises the receiver's
peak RSS by the payload's size (``bench/run.py --only w3``: 0.53 vs 2.67 GB/s, 51.7 vs
35.9 MiB). A thread with one blocking ``recv(n, MSG_WAITALL)`` has the kernel fill a
``bytes`` of exactly the payload's size, while the loop keeps running.

The socket is non-blocking, as asyncio requires, except while a payload is being received
here: the loop does not read it then (its writes pass ``MSG_DONTWAIT``), and the socket is
made non-blocking again when the loop takes the payload. The loop never waits for the thread:
:meth:`BulkReader.take` returns ``None`` while it is still receiving, and
:meth:`BulkReader.close` leaves the socket for the thread to close once its ``recv`` returns.
"""

from __future__ import annotations

import _thread
import contextlib
import socket
from collections.abc import Callable
from typing import NamedTuple

from ._codec import PREALLOCATE, frame_length
from ._wire import HEADER_SIZE

__all__ = ["BULK_PAYLOAD", "BulkReader", "BulkResult"]

#: Payloads at least this long are received in the thread.
BULK_PAYLOAD = 1 << 20
_PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT


class BulkResult(NamedTuple):
    """One payload received by the thread: ``complete`` if ``data`` is the whole payload;
    otherwise (end of stream, an error) ``header + data`` is what arrived of the frame."""

    header: bytes
    data: bytes
    error: OSError | None
    complete: bool


class BulkReader:
    """The thread that receives one socket's large payloads, one at a time: the same thread
    every time, so that the memory of a payload its consumer freed is reused for the next one
    (a new thread may be given another malloc arena, where the freed memory stays resident:
    twice the payload's size in RSS). Every method runs on the loop's thread; ``on_done`` is
    scheduled there once a payload is in."""

    def __init__(
        self,
        sock: socket.socket,
        call_soon_threadsafe: Callable[[Callable[[], object]], object],
        on_done: Callable[[], object],
    ) -> None:
        self._sock = sock
        self._call_soon_threadsafe = call_soon_threadsafe
        self._on_done = on_done
        self._head = bytearray(HEADER_SIZE)
        self._lock = _thread.allocate_lock()  # guards _receiving, _closing, _result
        self._go: _thread.LockType | None = None  # released to start a payload
        self._length = 0
        self._receiving = False
        self._closing = False
        self._stopping = False
        self._result: BulkResult | None = None
        #: A payload was started and not taken yet: the loop must not read the socket.
        self.active = False

    def try_start(self, max_message_size: int) -> bool:
        """At a frame boundary, with the loop not reading: peek at the next header; if its
        payload is at least ``BULK_PAYLOAD`` long, consume the header and start receiving the
        payload. Returns whether it started. Never raises (errors are left to the loop's
        normal read, which meets them again)."""
        head = self._head
        try:
            if self._sock.recv_into(head, HEADER_SIZE, _PEEK) < HEADER_SIZE:
                return False
        except OSError:
            return False
        length = frame_length(head)
        if length < BULK_PAYLOAD or length > min(max_message_size, PREALLOCATE):
            # Over PREALLOCATE, a header alone must not reserve its announced length (spec,
            # Limits): the decoder takes the frame, growing its buffer as bytes arrive.
            return False
        self._sock.recv(HEADER_SIZE)  # it is there: it was just peeked at
        self._length = length
        self.active = True
        with self._lock:
            self._receiving = True
        self._sock.setblocking(True)
        if self._go is None:
            self._go = _thread.allocate_lock()
            self._go.acquire()
            _thread.start_new_thread(self._run, (self._go,))
        self._go.release()
        return True

    def take(self) -> BulkResult | None:
        """The payload, once the thread has it (the socket is non-blocking again), else
        ``None`` (also when nothing was started or the result was taken already)."""
        if not self.active:
            return None
        with self._lock:
            if self._receiving:
                return None
            result, self._result = self._result, None
        self.active = False
        self._sock.setblocking(False)
        assert result is not None
        return result

    def close(self) -> None:
        """Close the socket: at once, or, while a payload is being received, by the thread
        as soon as its ``recv`` returns (``shutdown`` makes it return), so that it never reads
        a descriptor number that was reused meanwhile. Idempotent."""
        if self._stopping:
            return
        with self._lock:
            receiving = self._receiving
            self._closing = receiving
        self._stopping = True
        if receiving:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        else:
            self._sock.close()
        if self._go is not None and not receiving:
            self._go.release()  # the idle thread wakes up, sees _stopping, and ends

    def _run(self, go: _thread.LockType) -> None:
        sock = self._sock
        while True:
            go.acquire()
            if self._stopping:
                return
            header = bytes(self._head)
            try:
                data, error = sock.recv(self._length, socket.MSG_WAITALL), None
            except OSError as exc:
                data, error = b"", exc
            except MemoryError:
                # The announced length cannot be reserved at once (address-space limit,
                # strict overcommit): nothing was read; the decoder takes the frame, growing
                # its buffer only as bytes arrive.
                data, error = b"", None
            result = BulkResult(header, data, error, error is None and len(data) == self._length)
            with self._lock:
                self._result = result
                self._receiving = False
                closing = self._closing
            # Hold no reference while idle: the consumer's freeing the payload must free it
            # before the next one is received (else two payloads are resident at once).
            del data, result
            if closing:
                sock.close()
                return
            try:
                self._call_soon_threadsafe(self._on_done)
            except RuntimeError:  # the loop is closed: nobody waits for it
                return
