"""One regression test per defect found by adversarial use of both APIs. Each test is named
after its defect and fails on the code that had it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

import worker_process
from worker_process import BrokenResourceError, EndOfStream, create_worker
from worker_process import sync as wps

WORKERS = Path(__file__).parent / "workers"
LIMIT = 60.0
T = TypeVar("T")


def script(name: str) -> str:
    return str(WORKERS / name)


def run(make: Callable[[], Awaitable[T]], timeout: float = LIMIT) -> T:
    """Run ``make()`` on a fresh loop; a hang fails the test after ``timeout`` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(make(), timeout)

    return asyncio.run(bounded())


def open_fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- 1, 2: a refused send writes nothing ----------------------------------------------------------


def test_defect1_refused_send_writes_nothing() -> None:
    # A non-contiguous view cannot be written as it is: it is refused before a byte of its
    # frame is queued, so the next message still arrives whole and the worker lives on.
    async def scenario() -> None:
        async with await create_worker(script("aio_echo.py")) as worker:
            with pytest.raises(TypeError):
                await worker.send(memoryview(b"abcdefgh")[::2])
            await worker.send(b"next")
            assert await worker.recv() == b"next"
        assert worker.returncode == 0

    run(scenario)


def test_defect2_large_non_contiguous_send_leaves_channel_usable() -> None:
    async def scenario() -> None:
        async with await create_worker(script("aio_echo.py")) as worker:
            big = memoryview(bytes(256 << 10))[::2]  # 128 KiB, not contiguous
            with pytest.raises(TypeError):
                await worker.send(big)
            await worker.send(b"after")
            assert await worker.recv() == b"after"
        assert worker.returncode == 0  # closed cleanly, not SIGKILLed

    run(scenario)


# -- 3, 4: a write that fails after the peer closed its socket --------------------------------


def test_defect3_large_send_after_peer_closed_fails_instead_of_hanging() -> None:
    async def scenario() -> None:
        worker = await create_worker(script("close_linger.py"), ["30"])
        try:
            # The worker closed its end (the end of its stream says so); its process runs on.
            with pytest.raises(EndOfStream):
                await worker.recv()
            for _ in range(2):
                with pytest.raises(BrokenResourceError):
                    await asyncio.wait_for(worker.send(bytes(1 << 20)), 20)
        finally:
            worker.kill(signal.SIGKILL)
            await worker.close()

    run(scenario)


def test_defect4_close_after_failed_write_returns_once_the_worker_exited() -> None:
    async def scenario() -> float:
        started = time.monotonic()
        worker = await create_worker(script("close_linger.py"), ["5"])
        with pytest.raises(EndOfStream):
            await worker.recv()
        with contextlib.suppress(BrokenResourceError, TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(worker.send(bytes(1 << 20)), 1)
        assert worker.returncode is None  # still running: close() must wait for its exit
        await worker.close(timeout=60)
        assert worker.returncode == 0
        return time.monotonic() - started

    # The worker exits about 5 s after it started; close() must return then, not after its
    # 60 s timeout.
    elapsed = run(scenario, timeout=120)
    assert elapsed < 30, f"close() returned {elapsed:.1f} s after the start"


# -- 5, 6, 7: the blocking API -----------------------------------------------------------------


class _Interrupted(Exception):
    pass


def test_defect5_interrupted_send_breaks_the_channel() -> None:
    def on_alarm(signum: int, frame: Any) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with wps.create_worker(script("sync_idle.py"), ["sync"], stdout=subprocess.DEVNULL) as w:
            # The worker does not read: the 64 MiB frame fills the socket and the send blocks
            # until the alarm's exception interrupts it halfway.
            signal.setitimer(signal.ITIMER_REAL, 0.5)
            with pytest.raises(_Interrupted):
                w.send(bytes(64 << 20))
            signal.setitimer(signal.ITIMER_REAL, 0)
            with pytest.raises(BrokenResourceError) as caught:
                w.send(b"next")
            assert isinstance(caught.value.__cause__, _Interrupted)
            w.kill(signal.SIGKILL)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_defect6_recv_timeout_zero_returns_what_is_available() -> None:
    with wps.create_worker(script("sync_echo.py"), ["sync"]) as worker:
        worker.send(b"ping")
        deadline = time.monotonic() + LIMIT
        while True:
            try:
                got = worker.recv(timeout=0)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    pytest.fail(f"recv(timeout=0) returned nothing for {LIMIT} s")
                os.sched_yield()
        assert got == b"ping"


def test_defect7_reaped_worker_releases_its_pidfd() -> None:
    gc.collect()
    before = open_fd_count()
    workers = [wps.create_worker(script("sync_exit.py"), ["sync", "0"]) for _ in range(10)]
    for worker in workers:
        assert worker.wait(LIMIT) == 0
    # Reaped: only each channel's socket is still open (messages can still be received).
    assert open_fd_count() == before + len(workers)
    del workers, worker
    gc.collect()
    assert open_fd_count() == before


# -- 8: an asyncio worker without fd 3 ------------------------------------------------------------


def test_defect8_asyncio_worker_without_fd3_never_takes_the_loops_fd() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, script("no_fd3_aio.py")],
        capture_output=True, text=True, timeout=LIMIT, close_fds=True,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ChannelUnavailableError"), done.stdout
    assert "not open" in lines[0], lines[0]
    assert lines[1] == "loop ok"
    assert elapsed < 15, f"took {elapsed:.1f} s (the handshake timeout is 30 s)"


# -- 9: numbers are checked alike by both APIs --------------------------------------------------

NAN = math.nan
BAD_START: list[dict[str, Any]] = [
    {"max_duration": NAN},
    {"max_duration": 0},
    {"max_duration": -1.0},
    {"max_duration": True},
    {"max_duration": "5"},
    {"handshake_timeout": NAN},
    {"handshake_timeout": -1},
    {"handshake_timeout": None},
    {"handshake_timeout": True},
    {"max_message_size": True},
    {"max_message_size": -1},
    {"max_message_size": 1 << 32},
    {"max_message_size": 1.0},
]


@pytest.mark.parametrize("kwargs", BAD_START, ids=repr)
def test_defect9_numbers_validated_alike_in_both_apis(kwargs: dict[str, Any]) -> None:
    # Refused before anything is started (the file does not even exist).
    with pytest.raises(ValueError) as sync_error:
        wps.create_worker("/nonexistent/worker.py", **kwargs)

    async def aio() -> None:
        await create_worker("/nonexistent/worker.py", **kwargs)

    with pytest.raises(ValueError) as aio_error:
        run(aio)
    assert str(sync_error.value) == str(aio_error.value)


def test_unknown_create_worker_options_are_refused_alike_before_anything_starts() -> None:
    # The options are one WorkerOptions for both APIs: a misspelt one is a TypeError naming
    # it, as with an explicit signature, and nothing is started.
    with pytest.raises(TypeError) as sync_error:
        wps.create_worker("/nonexistent/worker.py", handshake_timout=5)

    async def aio() -> None:
        await create_worker("/nonexistent/worker.py", handshake_timout=5)

    with pytest.raises(TypeError) as aio_error:
        run(aio)
    message = "create_worker() got an unexpected keyword argument 'handshake_timout'"
    assert str(sync_error.value) == str(aio_error.value) == message
    # Every option the type declares has its default, and no other.
    from worker_process._launch import DEFAULTS

    assert set(DEFAULTS) == set(worker_process.WorkerOptions.__annotations__)


@pytest.mark.parametrize("kwargs", [k for k in BAD_START if "max_duration" not in k], ids=repr)
def test_defect9_connect_validates_alike(kwargs: dict[str, Any]) -> None:
    # connect() checks its arguments before it looks at fd 3 (this process has none).
    with pytest.raises(ValueError) as sync_error:
        wps.connect(**kwargs)

    async def aio() -> None:
        await worker_process.connect(**kwargs)

    with pytest.raises(ValueError) as aio_error:
        run(aio)
    assert str(sync_error.value) == str(aio_error.value)


def test_defect9_infinite_limits_mean_no_limit_and_bad_recv_timeouts_are_refused() -> None:
    with wps.create_worker(
        script("sync_echo.py"), ["sync"], max_duration=math.inf, handshake_timeout=math.inf
    ) as worker:
        worker.send(b"x")
        assert worker.recv(timeout=math.inf) == b"x"
        bad: Any
        for bad in (NAN, -1.0, True, "1"):
            with pytest.raises(ValueError):
                worker.recv(timeout=bad)
        worker.send(b"y")
        assert worker.recv(timeout=LIMIT) == b"y"
    assert worker.returncode == 0

    async def aio() -> None:
        async with await create_worker(
            script("aio_echo.py"), max_duration=math.inf, handshake_timeout=math.inf
        ) as worker:
            await worker.send(b"z")
            assert await worker.recv() == b"z"
        assert worker.returncode == 0

    run(aio)
