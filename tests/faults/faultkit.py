"""Helpers for the fault matrix: bounded waits, raw children with a chosen fd 3, the rogue
parent's socket, and the subreaper supervisor.

Every wait here has a deadline and fails with a message saying what did not happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PROGRAMS = HERE / "programs"
PY = sys.executable
NODE_PACKAGE = ROOT / "interop" / "node"

T = TypeVar("T")


def program(name: str) -> str:
    """The path of a program in ``tests/faults/programs``."""
    return str(PROGRAMS / name)


class Hang(AssertionError):
    """A bounded wait ran out: the scenario hung instead of reaching an outcome."""


def run_bounded(make: Callable[[], Awaitable[T]], timeout: float, what: str) -> T:
    """Run ``make()`` on a fresh event loop; fail with :class:`Hang` after ``timeout`` s.

    The coroutine's own exceptions (including ``TimeoutError`` subclasses such as
    ``HandshakeTimeoutError``) propagate unchanged.
    """

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


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until true; return the seconds it took. Fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise Hang(f"{what}: not true within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - start


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer exists (exited *and* reaped)."""
    return not os.path.exists(f"/proc/{pid}")


def open_fds(pid: int) -> set[int]:
    return {int(name) for name in os.listdir(f"/proc/{pid}/fd")}


# -- raw children: a program with a chosen fd 3 and captured output ----------------------------


@dataclass
class RawChild:
    """A child started with :func:`spawn_raw`; stdout/stderr go to files."""

    pid: int
    out_path: Path
    err_path: Path
    returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float, what: str = "the child") -> int:
        """Wait for the exit status; kill and fail after ``timeout`` s."""
        try:
            wait_until(lambda: self.poll() is not None, timeout, f"{what} exiting")
        except Hang:
            self.kill()
            raise
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
            self.returncode = -9

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def reports(self) -> list[dict[str, Any]]:
        """The JSON objects the child printed, one per line."""
        out = []
        for line in self.stdout.splitlines():
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    out.append(value)
        return out

    def report(self, event: str) -> dict[str, Any]:
        for item in self.reports():
            if item.get("event") == event:
                return item
        raise AssertionError(f"no {event!r} report; stdout={self.stdout!r} "
                             f"stderr={self.stderr[-2000:]!r}")


def _inheritable_fds() -> list[int]:
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        with contextlib.suppress(OSError):
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
    return found


def spawn_raw(argv: Sequence[str], fd3: int | None, *, env: Mapping[str, str] | None = None,
              workdir: Path | None = None) -> RawChild:
    """Start ``argv`` with ``fd3`` (a descriptor of ours) as its fd 3, or fd 3 closed if None.

    stdin is /dev/null; stdout and stderr go to temporary files. No other descriptor is
    inherited.
    """
    tmp = Path(tempfile.mkdtemp(prefix="wp-fault-", dir=workdir))
    out_path, err_path = tmp / "stdout", tmp / "stderr"
    owned: list[int] = []

    def high(fd: int) -> int:
        dup = os.dup(fd)  # non-inheritable; numbered above whatever 0-3 we may place
        while dup <= 3:
            owned.append(dup)
            dup = os.dup(fd)
        owned.append(dup)
        return dup

    null = os.open(os.devnull, os.O_RDWR)
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT, 0o600)
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT, 0o600)
    owned += [null, out, err]
    actions: list[tuple[int, ...]] = [
        (os.POSIX_SPAWN_DUP2, high(null), 0),
        (os.POSIX_SPAWN_DUP2, high(out), 1),
        (os.POSIX_SPAWN_DUP2, high(err), 2),
    ]
    if fd3 is None:
        actions += [(os.POSIX_SPAWN_DUP2, high(null), 3), (os.POSIX_SPAWN_CLOSE, 3)]
    else:
        actions.append((os.POSIX_SPAWN_DUP2, high(fd3), 3))
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable_fds()]
    try:
        pid = os.posix_spawn(argv[0], list(argv), dict(os.environ if env is None else env),
                             file_actions=actions)
    finally:
        for fd in owned:
            os.close(fd)
    return RawChild(pid=pid, out_path=out_path, err_path=err_path)


@contextlib.contextmanager
def rogue_parent(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Any:
    """Start ``argv`` as a worker whose parent is this test, speaking raw bytes: yields
    ``(our socket, the child)``; the child is always killed and reaped on the way out."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        child = spawn_raw(argv, theirs.fileno(), env=env)
    finally:
        theirs.close()
    mine.settimeout(10.0)
    try:
        yield mine, child
    finally:
        child.kill()
        mine.close()


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """``n`` bytes from ``sock`` (its timeout bounds each read); fewer only at EOF."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def recv_until_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


# -- the subreaper supervisor ------------------------------------------------------------------


def run_reaper(cmd: Sequence[str], *, kill_on: Sequence[str] = (), deadline: float = 20.0,
               timeout: float = 60.0, env: Mapping[str, str] | None = None,
               ) -> tuple[dict[str, Any], str]:
    """Run ``cmd`` under ``programs/reaper.py``; return its JSON report and the tree's stderr."""
    argv = [PY, program("reaper.py"), "--deadline", str(deadline)]
    for event in kill_on:
        argv += ["--kill-on", event]
    done = subprocess.run([*argv, "--", *cmd], capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else dict(env))
    assert done.returncode == 0, f"reaper failed: {done.stderr[-3000:]}"
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert not report["timed_out"], f"the process tree outlived its deadline: {report}"
    return report, done.stderr


def event(report: Mapping[str, Any], name: str) -> dict[str, Any]:
    for item in report["events"]:
        if isinstance(item, dict) and item.get("event") == name:
            return item
    raise AssertionError(f"no {name!r} event in {report['events']!r}")
