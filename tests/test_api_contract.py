"""One contract, both APIs: every test runs with an asyncio and a blocking parent, and (where
the worker uses the library) with an asyncio and a blocking worker, over real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

import worker_process
import worker_process.sync
from worker_process import (
    BrokenResourceError,
    EndOfStream,
    HandshakeByteError,
    HandshakeTimeoutError,
    WorkerExitError,
    WorkerProcessError,
    WorkerStartError,
)

WORKERS = Path(__file__).parent / "workers"
T = TypeVar("T")
#: Upper bound for any single wait in these tests (they normally take milliseconds).
LIMIT = 60.0


def script(name: str) -> str:
    return str(WORKERS / name)


class Parent(Protocol):
    """The parent API under test, driven the same way whichever API is behind it."""

    @property
    def returncode(self) -> int | None: ...

    def start(self, file: str, args: list[str], **options: Any) -> None: ...
    def send(self, data: bytes) -> None: ...
    def recv(self) -> bytes: ...
    def recv_or_timeout(self, timeout: float) -> bytes | None: ...
    def recv_rest(self) -> list[bytes]: ...
    def exchange(self, outgoing: list[bytes], incoming: int) -> list[bytes]: ...
    def close(self) -> None: ...
    def outcome(self) -> BaseException | None: ...
    def shutdown(self) -> None: ...


#: Makes the asyncio driver's loop (test_api_contract_uvloop.py swaps in uvloop's).
new_event_loop: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop


class AsyncioParent:
    """The asyncio API, each call run to completion on a private loop."""

    def __init__(self) -> None:
        self.loop = new_event_loop()
        self.worker: worker_process.Worker | None = None
        self.returncode: int | None = None

    def run(self, coro: Awaitable[T]) -> T:
        async def bounded() -> T:
            task = asyncio.ensure_future(coro)
            done, _ = await asyncio.wait({task}, timeout=LIMIT)
            if not done:
                task.cancel()
                pytest.fail(f"an asyncio call did not finish within {LIMIT} s")
            return task.result()

        return self.loop.run_until_complete(bounded())

    @property
    def w(self) -> worker_process.Worker:
        assert self.worker is not None
        return self.worker

    def start(self, file: str, args: list[str], **options: Any) -> None:
        self.worker = self.run(worker_process.create_worker(file, args, **options))

    def send(self, data: bytes) -> None:
        self.run(self.w.send(data))

    def recv(self) -> bytes:
        return self.run(self.w.recv())

    def recv_or_timeout(self, timeout: float) -> bytes | None:
        async def attempt() -> bytes | None:
            try:
                return await asyncio.wait_for(self.w.recv(), timeout)
            except (TimeoutError, asyncio.TimeoutError):
                return None

        return self.run(attempt())

    def recv_rest(self) -> list[bytes]:
        async def collect() -> list[bytes]:
            return [message async for message in self.w]

        return self.run(collect())

    def exchange(self, outgoing: list[bytes], incoming: int) -> list[bytes]:
        async def both() -> list[bytes]:
            async def send_all() -> None:
                for message in outgoing:
                    await self.w.send(message)

            async def recv_all() -> list[bytes]:
                return [await self.w.recv() for _ in range(incoming)]

            _, received = await asyncio.gather(send_all(), recv_all())
            return received

        return self.run(both())

    def close(self) -> None:
        self.run(self.w.close())
        self.returncode = self.w.returncode

    def outcome(self) -> BaseException | None:
        async def settle() -> BaseException | None:
            try:
                await asyncio.shield(self.w.lifetime)
            except WorkerProcessError as exc:
                return exc
            return None

        return self.run(settle())

    def shutdown(self) -> None:
        if self.worker is not None:
            self.close()
        self.loop.close()


class BlockingParent:
    """The blocking API (:mod:`worker_process.sync`)."""

    def __init__(self) -> None:
        self.worker: worker_process.sync.Worker | None = None

    @property
    def w(self) -> worker_process.sync.Worker:
        assert self.worker is not None
        return self.worker

    @property
    def returncode(self) -> int | None:
        return self.w.returncode

    def start(self, file: str, args: list[str], **options: Any) -> None:
        self.worker = worker_process.sync.create_worker(file, args, **options)

    def send(self, data: bytes) -> None:
        self.w.send(data)

    def recv(self) -> bytes:
        return self.w.recv(timeout=LIMIT)

    def recv_or_timeout(self, timeout: float) -> bytes | None:
        try:
            return self.w.recv(timeout=timeout)
        except TimeoutError:
            return None

    def recv_rest(self) -> list[bytes]:
        rest = []
        while True:
            try:
                rest.append(self.w.recv(timeout=LIMIT))
            except EndOfStream:
                return rest

    def exchange(self, outgoing: list[bytes], incoming: int) -> list[bytes]:
        def send_all() -> None:
            for message in outgoing:
                self.w.send(message)

        sender = threading.Thread(target=send_all)
        sender.start()
        try:
            return [self.recv() for _ in range(incoming)]
        finally:
            sender.join(LIMIT)
            assert not sender.is_alive(), f"sending did not finish within {LIMIT} s"

    def close(self) -> None:
        self.w.close()

    def outcome(self) -> BaseException | None:
        try:
            self.w.result(timeout=LIMIT)
        except WorkerProcessError as exc:
            return exc
        return None

    def shutdown(self) -> None:
        if self.worker is not None:
            self.close()


PARENTS: dict[str, Callable[[], Parent]] = {
    "asyncio": AsyncioParent,
    "blocking": BlockingParent,
}
WORKER_MODES = {"asyncio": "aio", "blocking": "sync"}


@pytest.fixture(params=sorted(PARENTS), ids=lambda name: f"{name}-parent")
def parent(request: pytest.FixtureRequest) -> Iterator[Parent]:
    driver: Parent = PARENTS[request.param]()
    try:
        yield driver
    finally:
        driver.shutdown()


@pytest.fixture(params=sorted(WORKER_MODES), ids=lambda name: f"{name}-worker")
def mode(request: pytest.FixtureRequest) -> str:
    return WORKER_MODES[request.param]


# --- messages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 16 * 1024 * 1024])
def test_echo_sizes(parent: Parent, mode: str, size: int) -> None:
    payload = os.urandom(size)
    parent.start(script("sync_echo.py"), [mode])
    parent.send(payload)
    assert parent.recv() == payload
    parent.close()
    assert parent.returncode == 0
    assert parent.outcome() is None


def test_ten_thousand_messages_in_order_both_directions_at_once(
    parent: Parent, mode: str
) -> None:
    count = 10_000
    parent.start(script("sync_duplex.py"), [mode, str(count)])
    received = parent.exchange([i.to_bytes(4, "big") for i in range(count)], count + 1)
    assert [int.from_bytes(m, "big") for m in received[:count]] == list(range(count))
    assert received[count] == b"in order: %d" % count
    parent.close()
    assert parent.outcome() is None


def test_finish_then_os_exit_loses_nothing(parent: Parent, mode: str) -> None:
    count = 5000
    parent.start(script("sync_burst.py"), [mode, str(count), "exit"])
    received = parent.recv_rest()
    assert received == [i.to_bytes(4, "big") * 16 for i in range(count)]
    assert parent.outcome() is None
    parent.close()
    assert parent.returncode == 0


def test_worker_that_finishes_then_reads_to_the_end_exits_cleanly(
    parent: Parent, mode: str
) -> None:
    # The worker half-closes first; the parent's half-close then must not look like the
    # parent dying (both directions shut raises POLLHUP on the worker's socket).
    parent.start(script("sync_burst.py"), [mode, "3", "wait"])
    assert len(parent.recv_rest()) == 3
    parent.close()
    assert parent.returncode == 0
    assert parent.outcome() is None


# --- outcomes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "returncode", "signal_number"),
    [("0", 0, None), ("3", 3, None), ("kill", -signal.SIGKILL, signal.SIGKILL)],
)
def test_exit_outcomes(
    parent: Parent, mode: str, how: str, returncode: int, signal_number: int | None
) -> None:
    parent.start(script("sync_exit.py"), [mode, how])
    assert parent.recv() == b"up"
    outcome = parent.outcome()
    if returncode == 0:
        assert outcome is None
    else:
        assert isinstance(outcome, WorkerExitError)
        assert type(outcome) is WorkerExitError
        assert outcome.returncode == returncode
        assert outcome.signal == signal_number
    parent.close()
    assert parent.returncode == returncode


def test_bad_handshake_byte_fails_in_under_a_second(parent: Parent) -> None:
    started = time.monotonic()
    with pytest.raises(HandshakeByteError) as info:
        parent.start(script("sync_rogue.py"), ["7f"], handshake_timeout=30)
    assert time.monotonic() - started < 1.0
    assert (info.value.expected, info.value.got) == (1, 0x7F)


def test_no_handshake_times_out(parent: Parent) -> None:
    started = time.monotonic()
    with pytest.raises(HandshakeTimeoutError):
        parent.start(script("sync_rogue.py"), ["none"], handshake_timeout=0.5)
    assert time.monotonic() - started < 30


def test_program_that_cannot_start(parent: Parent, tmp_path: Path) -> None:
    with pytest.raises(WorkerStartError) as info:
        parent.start(str(tmp_path / "no-such-program"), [], is_command=True)
    assert info.value.returncode is None


def test_program_that_exits_before_the_handshake(parent: Parent, tmp_path: Path) -> None:
    with pytest.raises(WorkerStartError) as info:
        parent.start(str(tmp_path / "missing.py"), [])  # python: "can't open file", exit 2
    assert info.value.returncode == 2


def test_worker_breaking_the_protocol_is_killed(parent: Parent) -> None:
    # A valid handshake, then a frame header announcing more than max_message_size.
    parent.start(script("sync_rogue.py"), ["01000fffff"], max_message_size=1024)
    with pytest.raises(BrokenResourceError) as info:
        parent.recv()
    assert isinstance(info.value.__cause__, worker_process.MessageTooLargeError)
    outcome = parent.outcome()
    assert isinstance(outcome, BrokenResourceError)
    parent.close()
    assert parent.returncode == -signal.SIGKILL


@pytest.mark.parametrize("size", [256 * 1024, 8 * 1024 * 1024])
def test_worker_exiting_inside_a_payload_is_a_truncated_stream(parent: Parent, size: int) -> None:
    parent.start(script("sync_partial.py"), [str(size), str(size // 4), "exit"])
    with pytest.raises(BrokenResourceError) as info:
        parent.recv()
    cause = info.value.__cause__
    assert isinstance(cause, worker_process.TruncatedStreamError)
    assert (cause.stage, cause.missing) == ("payload", size - size // 4)
    assert isinstance(parent.outcome(), BrokenResourceError)
    parent.close()
    assert parent.returncode == 0


@pytest.mark.parametrize("size", [256 * 1024, 8 * 1024 * 1024])
def test_close_while_a_payload_is_half_received(parent: Parent, size: int) -> None:
    # The worker stalls inside a large frame: close() must not wait for the rest of it.
    parent.start(script("sync_partial.py"), [str(size), str(size // 4), "wait"])
    assert parent.recv_or_timeout(0.3) is None  # reading stops inside the payload
    started = time.monotonic()
    parent.close()
    assert time.monotonic() - started < 30
    assert parent.returncode == 0  # it exits at the end of our stream


# --- the worker side alone ------------------------------------------------------------------------


def test_parent_sigkill_makes_an_idle_worker_exit_1_at_once(mode: str) -> None:
    result = subprocess.run(
        [sys.executable, script("sync_orphan.py"), script("sync_idle.py"), mode],
        capture_output=True, text=True, timeout=90,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["exit_code"] == 1, report
    # "At once": the end of the channel wakes the worker, no timer. It takes well under a
    # second; the bound leaves room for a loaded machine and still fails a worker that waits
    # for any timeout (the original library's timer was 60 s).
    assert report["seconds"] < 5.0, report
    assert "worker-process: channel to the parent broke:" in report["stderr"], report
