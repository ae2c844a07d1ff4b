"""The asyncio transport's write side: a queue of frames written by the loop's writer
callback, with coalescing and back-pressure.

A frame sent after a pause is written at once (latency); frames sent in quick succession
after it are appended to a buffer written at the end of the loop iteration (one
``send``/``sendmsg`` for many frames), so a sender that never waits pays no system call per
message. Large payloads are not copied: they go out with ``sendmsg`` next to their header.
Every call passes ``MSG_DONTWAIT``: the loop never waits for the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import socket
from collections import deque
from collections.abc import Callable
from time import monotonic as _monotonic

from ._codec import LARGE_PAYLOAD, BytesLike
from ._core import ChannelCore, WriteState

__all__ = ["IMMEDIATE_GAP", "FrameWriter"]

#: A frame sent this long (seconds) or more after the end of the last write made from
#: ``send()`` itself is written at once too; one sent sooner is coalesced with the others sent
#: in the same loop iteration.
IMMEDIATE_GAP = 20e-6
_DONTWAIT = socket.MSG_DONTWAIT
_IOV_MAX = 512


class FrameWriter:
    """Queues frames and writes them when the socket takes them. Byte counts are totals
    since the start (``queued``, ``written``): a sender waits for ``written`` to reach a
    target. It writes only while ``core.writing``; a failed write is reported to
    ``on_error`` (which marks the core broken and calls :meth:`fail`)."""

    def __init__(
        self,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        core: ChannelCore,
        on_error: Callable[[OSError], None],
    ) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._loop = loop
        self._core = core
        self._on_error = on_error
        self._small = bytearray()
        self._chunks: deque[BytesLike] = deque()
        self.queued = 0  # bytes ever queued
        self.written = 0  # bytes ever written
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._flush_scheduled = False
        self._last_immediate = -1.0  # when a frame was last written from send() itself
        self._writing = False

    def write_now(self, data: bytes) -> None:
        """Queue ``data`` (the handshake byte) and write it at once."""
        self._small += data
        self.queued += len(data)
        self.flush()

    def enqueue(self, header: bytes, data: BytesLike, size: int) -> int:
        """Queue one frame (checked by the caller); return the byte count it ends at."""
        if size < LARGE_PAYLOAD:
            small = self._small
            small += header
            small += data
        else:
            if self._small:
                self._chunks.append(self._small)
                self._small = bytearray()
            self._chunks.append(header)
            self._chunks.append(data)
        self.queued += len(header) + size
        if not self._flush_scheduled and not self._writing:
            if _monotonic() - self._last_immediate >= IMMEDIATE_GAP:
                # Nothing was written at once just before: this frame goes out now (no loop
                # iteration to wait for, and none scheduled: a ping-pong pays no extra one).
                # The gap counts from the end of that write, however long it took.
                self.flush()
                self._last_immediate = _monotonic()
            else:
                # Frames in quick succession: written together at the end of this iteration.
                self._flush_scheduled = True
                self._loop.call_soon(self.flush)
        return self.queued

    async def wait_written(self, target: int) -> None:
        """Wait until ``target`` bytes in all were written.

        Raises:
            BrokenResourceError, ClosedResourceError: as the core's ``flush_error``, also
                for a write that failed before this waiter existed.
        """
        err = self._core.flush_error()
        if err is not None:
            raise err
        fut: asyncio.Future[None] = self._loop.create_future()
        heapq.heappush(self._waiters, (target, next(self._seq), fut))
        await fut

    async def drain(self) -> None:
        """Wait until everything queued is written.

        Raises:
            BrokenResourceError: the write side broke (before or while waiting).
            ClosedResourceError: the channel was closed while waiting.
        """
        if self.written < self.queued:
            if not self._flush_scheduled and not self._writing:
                self.flush()
            if self.written < self.queued:
                await self.wait_written(self.queued)
        if self._core.write_state is WriteState.BROKEN:
            raise self._core.flush_error()  # type: ignore[misc]

    def flush(self) -> None:
        """Write what the socket takes now; wait for it to take more with the loop."""
        self._flush_scheduled = False
        if not self._core.writing:
            return
        if self._small:
            self._chunks.append(self._small)
            self._small = bytearray()
        chunks = self._chunks
        sock = self._sock
        while chunks:
            try:
                if len(chunks) == 1:
                    n = sock.send(chunks[0], _DONTWAIT)
                else:
                    n = sock.sendmsg(list(itertools.islice(chunks, _IOV_MAX)), (), _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._on_error(exc)
                return
            self.written += n
            while n:
                head = chunks[0]
                size = len(head) if type(head) is not memoryview else head.nbytes
                if n >= size:
                    chunks.popleft()
                    n -= size
                else:
                    chunks[0] = memoryview(head)[n:]
                    n = 0
        if chunks:
            if not self._writing:
                self._loop.add_writer(self._fd, self.flush)
                self._writing = True
        elif self._writing:
            self.stop()
        waiters = self._waiters
        written = self.written
        while waiters and waiters[0][0] <= written:
            fut = heapq.heappop(waiters)[2]
            if not fut.done():
                fut.set_result(None)

    def stop(self) -> None:
        """Stop watching the socket for writability."""
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def fail(self, exc: BaseException) -> None:
        """Drop what is queued and fail every waiting sender with ``exc``."""
        self.stop()
        self._chunks.clear()
        self._small = bytearray()
        waiters, self._waiters = self._waiters, []
        for _, _, fut in waiters:
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # a sender that gave up waiting must not leave it unretrieved

    def flush_blocking(self, timeout: float) -> None:
        """Write what is still queued, blocking for at most ``timeout`` seconds in all (at
        interpreter exit, when no loop runs any more), then shut the write side down if
        ``finish()`` was waiting for that. Never raises."""
        if not self._core.writing:
            return
        then_shut = self._core.write_state is WriteState.FINISHING
        if self._small:
            self._chunks.append(self._small)
            self._small = bytearray()
        if not self._chunks:
            return
        with contextlib.suppress(OSError):
            self._sock.settimeout(timeout)
            for chunk in self._chunks:
                self._sock.sendall(chunk)
            self._chunks.clear()
            if then_shut:
                self._sock.shutdown(socket.SHUT_WR)
