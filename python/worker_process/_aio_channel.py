"""The asyncio transport: frames over a connected non-blocking socket, driven by the loop's
reader/writer callbacks and the sans-I/O codec, with the channel's state in a
:class:`~._core.ChannelCore`.

Writes are queued and coalesced by a :class:`~._aio_writer.FrameWriter`. Reads land in the
decoder's buffer and whole batches of frames are parsed per ``recv_into``. A payload of
``BULK_PAYLOAD`` bytes or more is received by a thread (:mod:`._aio_bulk`), straight into the
``bytes`` object that is delivered; the loop keeps running meanwhile and never waits for it.

Both directions are bounded: ``send`` waits while more than ``WRITE_HIGH_WATER`` bytes are
queued, and reading pauses by the water marks of the received messages' queue
(:mod:`._inbox`), so a slow peer exerts back-pressure instead of growing memory.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable

from ._aio_bulk import BulkReader
from ._aio_inbox import Inbox
from ._aio_writer import FrameWriter
from ._channel_fd import peer_released
from ._codec import (
    LARGE_PAYLOAD,
    BytesLike,
    Decoder,
    DecoderState,
    Encoder,
    payload_view,
)
from ._core import ChannelCore, CoreBacked, WriteState
from ._errors import (
    BrokenResourceError,
    ClosedResourceError,
)
from ._read_side import ReadSide

WRITE_HIGH_WATER = 1 << 18
_DONTWAIT = socket.MSG_DONTWAIT
_OPEN = WriteState.OPEN


class AsyncChannel(CoreBacked):
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
        #: The channel's state (``read_error``, ``write_error``, …).
        self.core = ChannelCore(hup_is_broken=hup_is_broken)
        self.on_broken: Callable[[BaseException], None] | None = None
        # read side
        #: Received messages: ``recv()``, the ``onmessage`` handler, ``wait_read_done()``.
        self.inbox = Inbox(
            loop, self.core, pause=self._stop_reading, resume=self._start_reading, owner=self
        )
        self._handshake_waiter: asyncio.Future[None] | None = None
        self._reading = False
        self._reads = ReadSide(decoder, self.core, lambda: peer_released(self._fd))
        self._bulk = BulkReader(sock, loop.call_soon_threadsafe, self._end_bulk)
        # Peek at the next header at a frame boundary only when a large payload may follow:
        # first, after a large payload, after a read that filled the buffer.
        self._peek_next = True
        self._writer = FrameWriter(sock, loop, self.core, self._write_broke)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Begin reading."""
        self._start_reading()

    def close(self) -> None:
        """Close the socket at once; pending sends fail with ClosedResourceError."""
        if not self.core.close():
            return
        self._stop_reading()
        self._writer.fail(ClosedResourceError("the channel was closed"))
        self.inbox.wake_reader()
        self.inbox.wake_ended()
        self._bulk.close()  # closes the socket, now or once a bulk read returns

    # -- handshake ---------------------------------------------------------------------------

    def write_handshake(self) -> None:
        """Queue this side's handshake byte and write it at once."""
        handshake = self._encoder.handshake()
        self.core.handshake_sent()
        self._writer.write_now(handshake)

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
            err = self.core.handshake_error()
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
        self._read_once()

    def _read_once(self, *, may_pause: bool = True) -> int:
        """One ``recv_into`` into the decoder's buffer; deliver the frames it completes.
        Returns the byte count: 0 at the end of the stream or on an error, -1 if there was
        nothing to read."""
        result: int | BaseException
        try:
            buffer = self._decoder.get_buffer()  # may grow a large payload's buffer
            result = self._sock.recv_into(buffer, 0, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return -1
        except (OSError, MemoryError) as exc:
            result = exc
        payloads = self._reads.received(result)
        if payloads:
            if len(payloads[-1]) >= LARGE_PAYLOAD:
                self._peek_next = True
            self.inbox.deliver(payloads, may_pause=may_pause)
        if self._handshake_waiter is not None or self.core.read_done:
            self._after_read()
        if type(result) is not int:
            return 0
        if result == len(buffer):
            self._peek_next = True
        return result

    def _after_read(self) -> None:
        """The handshake is in or the read side is done: wake whoever waits for it."""
        waiter = self._handshake_waiter
        done = self.core.read_done
        if waiter is not None and (done or self._decoder.handshake_done) and not waiter.done():
            waiter.set_result(None)
        if done:
            self._stop_reading()
            self.inbox.wake()
            broke = self._reads.broke
            if broke is not None and self.on_broken is not None:
                self.on_broken(broke)

    def _end_bulk(self, restart: bool = True) -> bool:
        """Take a bulk read's payload if it is in (the thread's ``on_done``; also called at
        the peer's exit); return False if it is still being received. ``restart``: resume
        reading the socket afterwards."""
        result = self._bulk.take()
        if result is None:
            return not self._bulk.active
        if self.core.closed:
            return True
        if result.error is not None:
            self._reads.failed(result.error)
        elif result.complete:
            self._peek_next = True
            self.inbox.deliver([result.data])
        else:
            # Cut short (end of stream, a signal): the decoder takes the frame from here.
            self.inbox.deliver(self._reads.fed(result.header + result.data))
        if self.core.read_done:
            self._after_read()
        elif restart and not self.inbox.queue.paused:  # else a consumer's take resumes it
            self._start_reading()
        return True

    def read_available(self) -> None:
        """Read and deliver everything the kernel holds now, without waiting (used once the
        peer process has exited, so that nothing it wrote is left unread)."""
        if not self._end_bulk(restart=False):
            return  # still receiving a large payload: the bulk reader delivers it later
        while not self.read_done and self._read_once(may_pause=False) > 0:
            pass

    # -- writing -----------------------------------------------------------------------------

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
        if self.core.write_state is not _OPEN:
            raise self.core.send_error()  # type: ignore[misc]
        data, size = payload_view(data)  # before anything is queued: a refusal writes nothing
        writer = self._writer
        end = writer.enqueue(self._encoder.header(size), data, size)
        # A large mutable payload is not copied: the caller may reuse it once it is written.
        whole = size >= LARGE_PAYLOAD and type(data) is not bytes
        target = end if whole else end - WRITE_HIGH_WATER
        if writer.written < target:
            await writer.wait_written(target)

    async def finish(self) -> None:
        """Write everything queued, then shut down the write side (end of stream).
        Idempotent.

        Raises:
            BrokenResourceError: the channel broke before everything was written.
            ClosedResourceError: the channel was closed.
        """
        if self.core.closed:
            raise ClosedResourceError("the channel was closed")
        self.core.finish_requested()
        await self._writer.drain()
        self._shutdown_write()

    def _shutdown_write(self) -> None:
        if not self.core.writing:
            return
        self.core.write_shut()
        try:
            self._encoder.end()
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._write_broke(exc)

    def _write_broke(self, exc: OSError) -> None:
        if not self.core.write_failed(exc):
            return
        broken = BrokenResourceError(f"the channel broke: {exc}")
        broken.__cause__ = exc
        self._writer.fail(broken)
        if self.on_broken is not None:
            self.on_broken(exc)

    def flush_blocking(self, timeout: float) -> None:
        """At interpreter exit (no loop runs): :meth:`FrameWriter.flush_blocking`."""
        self._writer.flush_blocking(timeout)

    def release_after_peer_exit(self) -> None:
        """The peer process exited and its stream was read to the end: free the socket.
        Messages already received can still be taken; sends fail with BrokenResourceError."""
        if self.core.closed:
            return
        self._write_broke(BrokenPipeError(errno.EPIPE, "the peer process exited"))
        self._stop_reading()
        self._bulk.close()

    @property
    def handshake_done(self) -> bool:
        """Whether the peer's handshake byte arrived (and was right)."""
        return self._decoder.handshake_done
