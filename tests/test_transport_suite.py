"""One conformance check for channel transports, in the spirit of trio's
``check_two_way_stream``: every pair of channel ends over a socketpair (asyncio <-> asyncio,
blocking <-> blocking, and both mixes) must pass the same checks. No process is spawned: the
ends run in this process (the asyncio end on a loop in a thread of its own), so the checks
are fast and exact.

A failure names the pair, e.g. ``[aio-parent/sync-worker]``.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

import pytest

from worker_process import BrokenResourceError, EndOfStream, Role
from worker_process._aio_channel import AsyncChannel
from worker_process._codec import Decoder, Encoder
from worker_process._errors import PeerGoneError
from worker_process._inbox import READ_HIGH_WATER
from worker_process._sync_channel import SyncChannel, wait_fd

LIMIT = 30.0
T = TypeVar("T")


class End(Protocol):
    """One end of a channel, driven from the test's thread (blocking calls)."""

    def write_handshake(self) -> None: ...
    def wait_handshake(self) -> None: ...
    def send(self, data: bytes) -> None: ...
    def recv(self, timeout: float | None = LIMIT) -> bytes: ...
    def finish(self) -> None: ...
    def close(self) -> None: ...


class LoopThread:
    """An event loop running in a thread; ``run`` waits (bounded) for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, make: Callable[[], Awaitable[T]], timeout: float | None = LIMIT) -> T:
        async def call() -> T:
            return await make()

        future: Future[T] = asyncio.run_coroutine_threadsafe(call(), self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(LIMIT)
        self.loop.close()


class AioEnd:
    def __init__(self, sock: socket.socket, role: Role, hup: bool, loops: LoopThread) -> None:
        self._loops = loops

        async def make() -> AsyncChannel:
            channel = AsyncChannel(
                sock, Decoder(role), Encoder(role), loop=loops.loop, hup_is_broken=hup
            )
            channel.start()
            return channel

        self.channel = loops.run(make)

    def _call(self, make: Callable[[], Awaitable[Any]], timeout: float | None = LIMIT) -> Any:
        return self._loops.run(make, timeout)

    def write_handshake(self) -> None:
        async def write() -> None:
            self.channel.write_handshake()

        self._call(write)

    def wait_handshake(self) -> None:
        self._call(self.channel.wait_handshake)

    def send(self, data: bytes) -> None:
        self._call(lambda: self.channel.send(data))

    def recv(self, timeout: float | None = LIMIT) -> bytes:
        inbox = self.channel.inbox
        result: bytes = self._call(lambda: asyncio.wait_for(inbox.recv(), timeout), None)
        return result

    def finish(self) -> None:
        self._call(self.channel.finish)

    def close(self) -> None:
        async def close() -> None:
            self.channel.close()

        self._call(close)


class SyncEnd:
    def __init__(self, sock: socket.socket, role: Role, hup: bool, loops: LoopThread) -> None:
        self.channel = SyncChannel(sock, Decoder(role), Encoder(role), hup_is_broken=hup)

    def write_handshake(self) -> None:
        self.channel.write_handshake()

    def wait_handshake(self) -> None:
        channel = self.channel
        while not channel.handshake_done:
            assert wait_fd(channel.fd, select.POLLIN, LIMIT), "no handshake byte"
            channel.read_available(1 << 62)
            assert channel.read_error is None, channel.read_error

    def send(self, data: bytes) -> None:
        self.channel.send(data)

    def recv(self, timeout: float | None = LIMIT) -> bytes:
        return self.channel.recv(timeout)

    def finish(self) -> None:
        assert self.channel.finish(LIMIT)

    def close(self) -> None:
        self.channel.close()


KINDS: dict[str, Callable[[socket.socket, Role, bool, LoopThread], End]] = {
    "aio": AioEnd,
    "sync": SyncEnd,
}
PAIRS = [(p, w) for p in KINDS for w in KINDS]


@pytest.fixture
def loops() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


def make_pair(kinds: tuple[str, str], loops: LoopThread) -> tuple[End, End]:
    """A parent end and a worker end (which takes a released socket as "parent gone"),
    handshake done."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    parent = KINDS[kinds[0]](a, Role.PARENT, False, loops)
    worker = KINDS[kinds[1]](b, Role.WORKER, True, loops)
    parent.write_handshake()
    worker.wait_handshake()
    worker.write_handshake()
    parent.wait_handshake()
    return parent, worker


def in_thread(work: Callable[[], T]) -> Callable[[], T]:
    """Start ``work`` in a thread now; the returned function waits (bounded) for its result."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as exc:  # handed to the waiter
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return lambda: future.result(LIMIT)


pair_ids = [f"{p}-parent/{w}-worker" for p, w in PAIRS]

# Sizes around every boundary the transports treat differently: empty, small, the blocking
# transport's small-send limit, the codec's large-payload threshold, the asyncio bulk reader.
SIZES = [0, 1, 3, 4, 5, 1000, (1 << 14) - 1, 1 << 14, (1 << 16) - 1, 1 << 16, 1 << 20, 3 << 20]


def payload(i: int) -> bytes:
    size = SIZES[i % len(SIZES)]
    return bytes([i % 251]) * size


@pytest.mark.parametrize("kinds", PAIRS, ids=pair_ids)
def test_ordering_both_directions_at_once(kinds: tuple[str, str], loops: LoopThread) -> None:
    parent, worker = make_pair(kinds, loops)
    count = 3 * len(SIZES)
    def send_all(end: End, first: int) -> None:
        for i in range(count):
            end.send(payload(first + i))

    down = in_thread(lambda: send_all(parent, 0))
    up = in_thread(lambda: send_all(worker, 1))
    for i in range(count):
        assert worker.recv() == payload(i), f"message {i} to the worker"
        assert parent.recv() == payload(i + 1), f"message {i} to the parent"
    down()
    up()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_split_of_the_stream_is_read_alike(kind: str, loops: LoopThread) -> None:
    # The handshake and three frames (one empty), written by a raw peer in two pieces split
    # at every offset: the messages that come out never depend on the split.
    messages = [b"hello", b"", bytes(range(256)) + b"tail"]
    stream = b"\x00" + b"".join(len(m).to_bytes(4, "big") + m for m in messages)
    for cut in range(len(stream) + 1):
        raw, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        end = KINDS[kind](theirs, Role.WORKER, False, loops)
        try:
            raw.sendall(stream[:cut])
            if cut == 0:
                raw.sendall(stream[cut:])
                end.wait_handshake()
            else:
                end.wait_handshake()
                raw.sendall(stream[cut:])
            raw.shutdown(socket.SHUT_WR)
            got = [end.recv() for _ in messages]
            assert got == messages, f"split at {cut}"
            with pytest.raises(EndOfStream):
                end.recv()
        finally:
            end.close()
            raw.close()


@pytest.mark.parametrize("kinds", PAIRS, ids=pair_ids)
def test_half_close_both_ways(kinds: tuple[str, str], loops: LoopThread) -> None:
    parent, worker = make_pair(kinds, loops)
    parent.send(b"last from the parent")
    parent.finish()
    assert worker.recv() == b"last from the parent"
    with pytest.raises(EndOfStream):
        worker.recv()
    # A clean end in one direction leaves the other open.
    worker.send(b"answer")
    assert parent.recv() == b"answer"
    worker.finish()
    with pytest.raises(EndOfStream):
        parent.recv()
    parent.close()
    worker.close()


@pytest.mark.parametrize("kinds", PAIRS, ids=pair_ids)
def test_parent_gone_breaks_the_workers_channel(
    kinds: tuple[str, str], loops: LoopThread
) -> None:
    parent, worker = make_pair(kinds, loops)
    parent.send(b"before")
    parent.close()  # released, not finished: gone
    assert worker.recv() == b"before"  # nothing sent before is lost
    with pytest.raises(BrokenResourceError) as caught:
        worker.recv()
    assert isinstance(caught.value.__cause__, PeerGoneError)
    with pytest.raises(BrokenResourceError):
        worker.send(b"x" * (1 << 20))
    worker.close()


@pytest.mark.parametrize("kinds", PAIRS, ids=pair_ids)
def test_worker_gone_is_an_end_of_stream_for_the_parent(
    kinds: tuple[str, str], loops: LoopThread
) -> None:
    parent, worker = make_pair(kinds, loops)
    worker.send(b"bye")
    worker.close()
    assert parent.recv() == b"bye"
    with pytest.raises(EndOfStream):  # the exit status, not the channel, says how it ended
        parent.recv()
    parent.close()


@pytest.mark.parametrize("kinds", PAIRS, ids=pair_ids)
def test_a_timed_out_recv_loses_nothing(kinds: tuple[str, str], loops: LoopThread) -> None:
    parent, worker = make_pair(kinds, loops)
    for end in (parent, worker):
        with pytest.raises(TimeoutError):
            end.recv(timeout=0.05)
    big = os.urandom(5 << 20)
    parent.send(b"small")
    sending = in_thread(lambda: parent.send(big))
    assert worker.recv() == b"small"
    assert worker.recv() == big
    sending()
    parent.close()
    worker.close()


@pytest.mark.parametrize("kinds", PAIRS, ids=pair_ids)
def test_a_sender_waits_for_a_slow_reader(kinds: tuple[str, str], loops: LoopThread) -> None:
    # 64 MiB is far more than the socket and both transports buffer: the sender must be
    # held back until the worker reads, then everything arrives.
    parent, worker = make_pair(kinds, loops)
    chunk = bytes(1 << 20)
    done = threading.Event()

    def send_all() -> None:
        for _ in range(64):
            parent.send(chunk)
        done.set()

    sending = in_thread(send_all)
    assert not done.wait(1.0), "64 MiB were sent although nobody read"
    if isinstance(worker, AioEnd):  # it reads ahead, up to its queue's high water mark

        async def waiting() -> tuple[bool, int]:
            queue = worker.channel.inbox.queue
            return queue.paused, queue.bytes

        paused, waiting_bytes = worker._call(waiting)
        assert paused, "reading was not paused for a consumer that does not take"
        assert waiting_bytes <= READ_HIGH_WATER + len(chunk), waiting_bytes
    for _ in range(64):
        assert worker.recv() == chunk
    sending()
    assert done.is_set()
    parent.close()
    worker.close()
