"""The asyncio transport: frames over a connected non-blocking socket, driven by the loop's
reader/writer callbacks and the sans-I/O codec.

Writes are coalesced: a frame sent after a pause is written at once (latency); frames sent in
quick succession after it are appended to a buffer written at the end of the loop iteration
(one ``send``/``sendmsg`` for many frames), so a sender that never waits pays no syscall per
message. Large payloads are not copied: they go out with ``sendmsg`` next to their header.
Reads land in the decoder's buffer and whole batches of frames are parsed per ``recv_into``.
A payload of ``BULK_PAYLOAD`` bytes or more is received by a thread (:mod:`._aio_bulk`),
straight into the ``bytes`` object that is delivered; the loop keeps running meanwhile and
never waits for that thread.

Both directions are bounded: ``send`` waits while more than ``WRITE_HIGH_WATER`` bytes are
queued, and reading pauses while more than ``READ_HIGH_WATER`` bytes of received messages wait
for a consumer, so a slow peer exerts back-pressure instead of growing memory.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import heapq
import inspect
import itertools
import select
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from time import monotonic as _monotonic
from typing import Any

from ._aio_bulk import BulkReader
from ._codec import (
    LARGE_PAYLOAD,
    BytesLike,
    Decoder,
    DecoderState,
    Encoder,
    payload_view,
)
from ._core import ChannelCore, ReadState, WriteState
from ._errors import (
    BrokenResourceError,
    ClosedResourceError,
    ProtocolError,
)

WRITE_HIGH_WATER = 1 << 18
READ_HIGH_WATER = 1 << 22
READ_LOW_WATER = 1 << 20
#: A frame sent this long (seconds) or more after the end of the last write made from
#: ``send()`` itself is written at once too; one sent sooner is coalesced with the others sent
#: in the same loop iteration.
IMMEDIATE_GAP = 20e-6
_DONTWAIT = socket.MSG_DONTWAIT
_HANDSHAKING = ReadState.HANDSHAKE
_OPEN = WriteState.OPEN
_IOV_MAX = 512

MessageHandler = Callable[[bytes], object]


class AsyncChannel:
    """One end of the channel on an asyncio loop. Not thread-safe (like every asyncio object).

    ``on_broken`` is called once, with the error, when the channel breaks in either direction;
    ``hup_is_broken`` makes an end of stream count as a break when the peer closed its whole
    socket rather than half-closing it (a worker uses that to tell "parent gone" from
    "parent finished").
    """

    def __init__(
        self,
        sock: socket.socket,
        decoder: Decoder,
        encoder: Encoder,
        *,
        loop: asyncio.AbstractEventLoop,
        hup_is_broken: bool = False,
    ) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()
        self._loop = loop
        self._decoder = decoder
        self._encoder = encoder
        self._core = ChannelCore(hup_is_broken=hup_is_broken)
        self.on_broken: Callable[[BaseException], None] | None = None
        # read side
        self._inbox: deque[bytes] = deque()
        self._inbox_bytes = 0
        self._recv_waiter: asyncio.Future[None] | None = None
        self._handshake_waiter: asyncio.Future[None] | None = None
        self._reading = False
        self._paused = False
        self._bulk = BulkReader(sock, loop.call_soon_threadsafe, self._end_bulk)
        # Peek at the next header at a frame boundary only when a large payload may follow:
        # first, after a large payload, after a read that filled the buffer.
        self._peek_next = True
        self._onmessage: MessageHandler | None = None
        self._dispatching = False
        self._ended_waiters: list[asyncio.Future[None]] = []
        # write side
        self._small = bytearray()
        self._chunks: deque[BytesLike] = deque()
        self._queued = 0  # bytes ever queued
        self._written = 0  # bytes ever written
        self._write_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._flush_scheduled = False
        self._last_immediate = -1.0  # when a frame was last written from send() itself
        self._writing = False

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Begin reading."""
        self._start_reading()

    @property
    def closed(self) -> bool:
        return self._core.closed

    @property
    def read_done(self) -> bool:
        """The peer's stream ended (cleanly or not), or this side closed."""
        return self._core.read_done

    def close(self) -> None:
        """Close the socket at once; pending sends fail with ClosedResourceError."""
        if not self._core.close():
            return
        self._stop_reading()
        self._stop_writing()
        err = ClosedResourceError("the channel was closed")
        self._fail_writers(err)
        self._wake_reader()
        self._wake_ended()
        self._bulk.close()  # closes the socket, now or once a bulk read returns

    # -- handshake ---------------------------------------------------------------------------

    def write_handshake(self) -> None:
        """Queue this side's handshake byte and write it at once."""
        self._small += self._encoder.handshake()
        self._queued += 1
        self._core.handshake_sent()
        self._flush()

    async def wait_handshake(self) -> None:
        """Wait for the peer's handshake byte.

        Raises:
            RemoteProtocolError: a wrong byte, or the stream ended first (TruncatedStreamError).
            BrokenResourceError: the socket failed.
        """
        if not self._decoder.handshake_done and not self.read_done:
            self._handshake_waiter = self._loop.create_future()
            try:
                await self._handshake_waiter
            finally:
                self._handshake_waiter = None
        if not self._decoder.handshake_done:
            err = self._core.handshake_error()
            assert err is not None  # the read side is done
            raise err

    # -- reading -----------------------------------------------------------------------------

    def _start_reading(self) -> None:
        if not self._reading and not self.read_done and not self._bulk.active:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def _on_readable(self) -> None:
        decoder = self._decoder
        if self._peek_next and decoder.buffered == 0 and decoder.state is DecoderState.FRAMES:
            self._peek_next = False
            if self._bulk.try_start(decoder.max_message_size):
                self._stop_reading()
                return
        try:
            buffer = decoder.get_buffer()  # may grow a large payload's buffer: MemoryError
            n = self._sock.recv_into(buffer, 0, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, MemoryError) as exc:  # MemoryError: a payload too big for this host
            self._break(exc)
            return
        if n == 0:
            self._on_eof()
            return
        try:
            payloads = decoder.buffer_updated(n)
        except (ProtocolError, MemoryError) as exc:
            self._break(exc)
            return
        if self._core.read_state is _HANDSHAKING and decoder.handshake_done:
            self._handshake_received()
        if n == len(buffer):
            self._peek_next = True
        if payloads:
            if len(payloads[-1]) >= LARGE_PAYLOAD:
                self._peek_next = True
            self._deliver(payloads)
        if decoder.state is DecoderState.ERROR:
            try:
                decoder.feed_payloads(b"")
            except ProtocolError as exc:
                self._break(exc)

    def _end_bulk(self, restart: bool = True) -> bool:
        """Take a bulk read's payload if it is in (the thread's ``on_done``; also called at
        the peer's exit); return False if it is still being received. ``restart``: resume
        reading the socket afterwards."""
        result = self._bulk.take()
        if result is None:
            return not self._bulk.active
        if self._core.closed:
            return True
        if result.error is not None:
            self._break(result.error)
            return True
        if result.complete:
            self._peek_next = True
            self._deliver([result.data], may_pause=False)
            if self._inbox_bytes > READ_HIGH_WATER:
                self._paused = True
                return True
        else:
            # Cut short (end of stream, a signal): the decoder takes the frame from here.
            try:
                self._deliver(self._decoder.feed_payloads(result.header + result.data))
            except ProtocolError as exc:
                self._break(exc)
                return True
        if restart:
            self._start_reading()
        return True

    def read_available(self) -> None:
        """Read and deliver everything the kernel holds now, without waiting (used once the
        peer process has exited, so that nothing it wrote is left unread)."""
        if not self._end_bulk(restart=False):
            return  # still receiving a large payload: the bulk reader delivers it later
        was_paused = self._paused
        if was_paused:
            self._paused = False
        while not self.read_done:
            try:
                n = self._sock.recv_into(self._decoder.get_buffer(), 0, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except (OSError, MemoryError) as exc:
                self._break(exc)
                break
            if n == 0:
                self._on_eof()
                break
            try:
                payloads = self._decoder.buffer_updated(n)
            except (ProtocolError, MemoryError) as exc:
                self._break(exc)
                break
            if self._core.read_state is _HANDSHAKING and self._decoder.handshake_done:
                self._handshake_received()
            if payloads:
                self._deliver(payloads, may_pause=False)
        if was_paused and not self.read_done and self._inbox_bytes > READ_LOW_WATER:
            self._paused = True
            self._stop_reading()

    def _handshake_received(self) -> None:
        self._core.handshake_received()
        waiter = self._handshake_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_eof(self) -> None:
        self._stop_reading()
        try:
            self._decoder.feed_eof()
        except ProtocolError as exc:
            self._break(exc)
            return
        gone = self._core.stream_ended(self._peer_hung_up)
        if gone is not None:
            self._read_broke(gone)
            return
        self._wake_reader()
        self._maybe_ended()

    def _peer_hung_up(self) -> bool:
        # A peer that half-closed (shutdown(SHUT_WR)) leaves POLLHUP clear; a peer whose socket
        # was released (process exit, close()) sets it.
        poller = select.poll()
        poller.register(self._fd, select.POLLOUT)
        return any(ev & select.POLLHUP for _, ev in poller.poll(0))

    def _deliver(self, payloads: list[bytes], *, may_pause: bool = True) -> None:
        handler = self._onmessage
        if handler is not None and not self._inbox and not self._dispatching:
            for index, payload in enumerate(payloads):
                result = self._call_handler(handler, payload)
                if result is not None:
                    self._queue(payloads[index + 1 :])
                    self._dispatch_async(result)
                    break
        else:
            self._queue(payloads)
        if may_pause and self._inbox_bytes > READ_HIGH_WATER and self._reading:
            self._paused = True
            self._stop_reading()

    def _queue(self, payloads: list[bytes]) -> None:
        if not payloads:
            return
        self._inbox.extend(payloads)
        self._inbox_bytes += sum(map(len, payloads))
        self._wake_reader()

    def _call_handler(self, handler: MessageHandler, payload: bytes) -> Awaitable[Any] | None:
        try:
            result = handler(payload)
        except Exception as exc:
            self._report_handler_error(exc)
            return None
        if inspect.isawaitable(result):
            return result
        return None

    def _report_handler_error(self, exc: BaseException) -> None:
        self._loop.call_exception_handler(
            {"message": "onmessage handler raised", "exception": exc, "channel": self}
        )

    def _dispatch_async(self, first: Awaitable[Any]) -> None:
        self._dispatching = True
        self._loop.create_task(self._dispatcher(first))

    async def _dispatcher(self, first: Awaitable[Any]) -> None:
        pending: Awaitable[Any] | None = first
        try:
            while True:
                if pending is not None:
                    try:
                        await pending
                    except Exception as exc:
                        self._report_handler_error(exc)
                handler = self._onmessage
                if handler is None or not self._inbox:
                    return
                payload = self._take()
                pending = self._call_handler(handler, payload)
        finally:
            self._dispatching = False
            self._maybe_ended()

    def _take(self) -> bytes:
        payload = self._inbox.popleft()
        self._inbox_bytes -= len(payload)
        if self._paused and self._inbox_bytes <= READ_LOW_WATER:
            self._paused = False
            self._start_reading()
        return payload

    @property
    def onmessage(self) -> MessageHandler | None:
        return self._onmessage

    @onmessage.setter
    def onmessage(self, handler: MessageHandler | None) -> None:
        self._onmessage = handler
        if handler is None or self._dispatching:
            return
        while self._inbox and self._onmessage is handler:
            result = self._call_handler(handler, self._take())
            if result is not None:
                self._dispatch_async(result)
                return
        self._maybe_ended()

    def _wake_reader(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None:
            self._recv_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def recv(self) -> bytes:
        """The next message.

        Raises:
            EndOfStream: the peer ended its stream and every message was received.
            BrokenResourceError: the channel broke (``__cause__`` says how).
            ClosedResourceError: this side closed the channel.
        """
        if self._inbox:
            return self._take()
        while True:
            if self._inbox:
                return self._take()
            err = self._core.recv_error()
            if err is not None:
                raise err
            if self._recv_waiter is not None and not self._recv_waiter.done():
                raise RuntimeError("recv() is already being awaited by another task")
            waiter = self._recv_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                # A cancelled recv() (e.g. under asyncio.wait_for) must not leave its waiter
                # behind: the next recv() would take it for another task's.
                if self._recv_waiter is waiter:
                    self._recv_waiter = None

    def _all_read(self) -> bool:
        # With a handler, "read" means handed to it; without one, queued for recv().
        return (
            self.read_done
            and not self._dispatching
            and not (self._inbox and self._onmessage is not None)
        )

    def _maybe_ended(self) -> None:
        if self._ended_waiters and self._all_read():
            self._wake_ended()

    def _wake_ended(self) -> None:
        waiters, self._ended_waiters = self._ended_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_read_done(self) -> None:
        """Wait until the peer's stream ended and every message was dispatched or queued."""
        while not self._all_read():
            fut = self._loop.create_future()
            self._ended_waiters.append(fut)
            await fut

    # -- writing -----------------------------------------------------------------------------

    def _enqueue(self, data: BytesLike) -> tuple[int, bool]:
        """Queue one frame; return the byte count it ends at and whether the caller must wait
        for it to be written out entirely (a large mutable payload)."""
        if self._core.write_state is not _OPEN:
            raise self._core.send_error()  # type: ignore[misc]
        data, size = payload_view(data)  # before anything is queued: a refusal writes nothing
        header = self._encoder.header(size)
        if size < LARGE_PAYLOAD:
            small = self._small
            small += header
            small += data
            whole = False
        else:
            if self._small:
                self._chunks.append(self._small)
                self._small = bytearray()
            self._chunks.append(header)
            self._chunks.append(data)
            whole = type(data) is not bytes
        self._queued += 4 + size
        if not self._flush_scheduled and not self._writing:
            if _monotonic() - self._last_immediate >= IMMEDIATE_GAP:
                # Nothing was written at once just before: this frame goes out now (no loop
                # iteration to wait for, and none scheduled: a ping-pong pays no extra one).
                # The gap counts from the end of that write, however long it took.
                self._flush()
                self._last_immediate = _monotonic()
            else:
                # Frames in quick succession: written together at the end of this iteration.
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)
        return self._queued, whole

    async def send(self, data: BytesLike) -> None:
        """Queue one message; return once at most ``WRITE_HIGH_WATER`` bytes are queued
        (or, for a large ``bytearray``/``memoryview``, once it is written out, so the caller
        may reuse it).

        Raises:
            TypeError: not a contiguous bytes-like object (nothing was queued).
            PayloadTooLargeError: over the wire maximum.
            ClosedResourceError: this side closed or finished.
            BrokenResourceError: the channel broke.
        """
        end, whole = self._enqueue(data)
        target = end if whole else end - WRITE_HIGH_WATER
        if self._written < target:
            await self._wait_written(target)

    async def _wait_written(self, target: int) -> None:
        # A write that failed before this waiter existed must fail it too, not leave it
        # waiting for bytes that will never be written.
        err = self._core.flush_error()
        if err is not None:
            raise err
        fut: asyncio.Future[None] = self._loop.create_future()
        heapq.heappush(self._write_waiters, (target, next(self._seq), fut))
        await fut

    async def drain(self) -> None:
        """Wait until every queued byte is written to the socket.

        Raises:
            BrokenResourceError, ClosedResourceError: as :meth:`send`.
        """
        if self._written < self._queued:
            if not self._flush_scheduled and not self._writing:
                self._flush()
            if self._written < self._queued:
                await self._wait_written(self._queued)
        if self._core.write_state is WriteState.BROKEN:
            raise self._core.flush_error()  # type: ignore[misc]

    async def finish(self) -> None:
        """Write everything queued, then shut down the write side (end of stream).
        Idempotent.

        Raises:
            BrokenResourceError: the channel broke before everything was written.
            ClosedResourceError: the channel was closed.
        """
        if self._core.closed:
            raise ClosedResourceError("the channel was closed")
        self._core.finish_requested()
        await self.drain()
        self._shutdown_write()

    def _shutdown_write(self) -> None:
        if not self._core.writing:
            return
        self._core.write_shut()
        try:
            self._encoder.end()
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._write_broke(exc)

    def _flush(self) -> None:
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
                self._write_broke(exc)
                return
            self._written += n
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
                self._loop.add_writer(self._fd, self._flush)
                self._writing = True
        elif self._writing:
            self._stop_writing()
        self._wake_writers()

    def _stop_writing(self) -> None:
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def _wake_writers(self) -> None:
        waiters = self._write_waiters
        written = self._written
        while waiters and waiters[0][0] <= written:
            fut = heapq.heappop(waiters)[2]
            if not fut.done():
                fut.set_result(None)

    def _fail_writers(self, exc: BaseException) -> None:
        waiters, self._write_waiters = self._write_waiters, []
        for _, _, fut in waiters:
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # a sender that gave up waiting must not leave it unretrieved

    def _write_broke(self, exc: OSError) -> None:
        if not self._core.write_failed(exc):
            return
        self._stop_writing()
        self._chunks.clear()
        self._small = bytearray()
        broken = BrokenResourceError(f"the channel broke: {exc}")
        broken.__cause__ = exc
        self._fail_writers(broken)
        if self.on_broken is not None:
            self.on_broken(exc)

    def flush_blocking(self, timeout: float) -> None:
        """Write what is still queued, blocking for at most ``timeout`` seconds in all (used
        at interpreter exit, when no loop runs any more). Never raises."""
        if not self._core.writing:
            return
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
            if self._core.write_state is WriteState.FINISHING:
                self._sock.shutdown(socket.SHUT_WR)

    def release_after_peer_exit(self) -> None:
        """The peer process exited and its stream was read to the end: free the socket.
        Messages already received can still be taken; sends fail with BrokenResourceError."""
        if self._core.closed:
            return
        self._write_broke(BrokenPipeError(errno.EPIPE, "the peer process exited"))
        self._stop_reading()
        self._bulk.close()

    # -- breaking ----------------------------------------------------------------------------

    def _break(self, exc: BaseException) -> None:
        """The read side failed (protocol error, OS error)."""
        if self._core.read_failed(exc):
            self._read_broke(exc)

    def _read_broke(self, exc: BaseException) -> None:
        self._stop_reading()
        waiter = self._handshake_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._wake_reader()
        self._maybe_ended()
        if self.on_broken is not None:
            self.on_broken(exc)

    @property
    def read_error(self) -> BaseException | None:
        """Why the read side broke, if it did."""
        return self._core.read_error

    @property
    def write_error(self) -> BaseException | None:
        """Why the write side broke, if it did."""
        return self._core.write_error

    @property
    def handshake_done(self) -> bool:
        """Whether the peer's handshake byte arrived (and was right)."""
        return self._decoder.handshake_done
