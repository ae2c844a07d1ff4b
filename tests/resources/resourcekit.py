"""Helpers for the resource tests: RSS sampling from /proc, process and descriptor counts,
and a bounded event-loop runner."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
T = TypeVar("T")
MiB = 1 << 20


def program(name: str) -> str:
    return str(PROGRAMS / name)


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of ``pid`` now (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """Samples the RSS of some processes every few milliseconds in a thread; keeps the peak."""

    def __init__(self) -> None:
        self.pids: list[int | str] = []
        self.peak: dict[int | str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, pid: int | str) -> None:
        self.pids.append(pid)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            for pid in list(self.pids):
                rss = rss_bytes(pid)
                if rss > self.peak.get(pid, 0):
                    self.peak[pid] = rss

    @contextlib.contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(10)


def children_of(pid: int) -> dict[int, str]:
    """The live children of ``pid`` and their states (``Z`` for a zombie)."""
    found: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found[int(name)] = fields[0]
    return found


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


class Hang(AssertionError):
    """A bounded wait ran out."""


def run_bounded(make: Callable[[], Awaitable[T]], timeout: float, what: str) -> T:
    """Run ``make()`` on a fresh loop; fail with :class:`Hang` after ``timeout`` seconds."""

    async def bounded() -> T:
        task = asyncio.ensure_future(make())
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 10)
            raise Hang(f"{what}: no outcome within {timeout} s")
        return task.result()

    return asyncio.run(bounded())
