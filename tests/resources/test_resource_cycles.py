"""Many create/close cycles leave nothing behind: the parent's descriptors and children are
back to where they started, no zombie is left, and asyncio reports nothing (no "Task was
destroyed but it is pending", no "Future exception was never retrieved": the conftest fails a
test on any asyncio log record, and warnings are errors here).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator

import pytest
from resourcekit import children_of, fd_count, program, run_bounded

from worker_process import Worker, create_worker

CYCLES = 1000
ALIVE = 32
CONCURRENCY = 8
MINIMAL = program("res_minimal_worker.py")
IDLE = program("res_idle_worker.py")


def minimal() -> tuple[str, list[str], bool]:
    return sys.executable, ["-S", "-E", MINIMAL], True


def library() -> tuple[str, list[str], bool]:
    return IDLE, [], False


@pytest.fixture
def clean_slate() -> Iterator[Callable[[], None]]:
    """Records fds and children now; the returned check asserts they are back."""
    gc.collect()
    fds, children = fd_count(), children_of(os.getpid())

    def check() -> None:
        gc.collect()
        now = children_of(os.getpid())
        zombies = [pid for pid, state in now.items() if state == "Z"]
        assert not zombies, f"zombie children left: {zombies}"
        assert now == children, f"children before {children}, after {now}"
        assert fd_count() == fds, f"{fds} fds before, {fd_count()} after"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield check


async def cycles(count: int, alive: int, how: Callable[[], tuple[str, list[str], bool]]
                 ) -> float:
    """``count`` create/close cycles, at most ``alive`` workers at a time; returns seconds."""
    file, args, is_command = how()
    gate = asyncio.Semaphore(alive)

    async def one() -> None:
        async with gate:
            worker = await create_worker(file, args, is_command=is_command)
            await worker.close()
            assert worker.returncode == 0 and worker.lifetime.result() is None

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)))
    return time.monotonic() - start


@pytest.mark.slow
def test_1000_create_close_cycles(clean_slate: Callable[[], None]) -> None:
    elapsed = run_bounded(lambda: cycles(CYCLES, CONCURRENCY, minimal), 240, "1000 cycles")
    clean_slate()
    print(f"{CYCLES} create/close cycles (minimal worker, {CONCURRENCY} at a time):"
          f" {elapsed:.1f} s")


def test_library_worker_cycles(clean_slate: Callable[[], None]) -> None:
    elapsed = run_bounded(lambda: cycles(64, 8, library), 120, "64 library cycles")
    clean_slate()
    print(f"64 create/close cycles (asyncio library worker): {elapsed:.1f} s")


@pytest.mark.parametrize("how", [minimal, library], ids=["minimal", "library"])
def test_32_workers_alive_at_once(how: Callable[[], tuple[str, list[str], bool]],
                                  clean_slate: Callable[[], None]) -> None:
    async def scenario() -> None:
        file, args, is_command = how()
        workers: list[Worker] = await asyncio.gather(
            *(create_worker(file, args, is_command=is_command) for _ in range(ALIVE)))
        try:
            alive = children_of(os.getpid())
            assert all(w.pid in alive for w in workers), "a worker is not running"
            pids = {w.pid for w in workers}
            assert len(pids) == ALIVE
        finally:
            await asyncio.gather(*(w.close() for w in workers))
        assert [w.returncode for w in workers] == [0] * ALIVE

    run_bounded(scenario, 120, "32 workers at once")
    clean_slate()


def test_cancelled_close_still_reaps(clean_slate: Callable[[], None]) -> None:
    # A task closing workers is cancelled half-way: close() still kills and reaps each one.
    async def scenario() -> None:
        file, args, is_command = minimal()
        workers = [await create_worker(file, args, is_command=is_command) for _ in range(8)]
        closing = asyncio.ensure_future(asyncio.gather(*(w.close(timeout=30) for w in workers)))
        await asyncio.sleep(0)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        for w in workers:
            await asyncio.wait_for(w.wait(), 10)

    run_bounded(scenario, 60, "cancelled closes")
    clean_slate()
