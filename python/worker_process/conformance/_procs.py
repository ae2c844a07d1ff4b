"""Processes for the live runner: starting candidates in a session of their own, waiting for
them with deadlines, and leaving nothing behind.

The runner makes itself a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``): a process
orphaned under it — a worker whose parent was killed on purpose, a probe left by a candidate
parent — becomes its child, so its exit status can be read and it can always be reaped.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import select
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ._raw import Deadline, Fail

__all__ = ["Candidate", "CandidateContext", "StartFail", "become_subreaper",
           "has_live_children", "kill_stray_children", "process_state", "rss_bytes"]

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants; False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _children() -> list[int]:
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            found.append(int(name))
    return found


def has_live_children() -> bool:
    """Whether this process has a child that is not a zombie: something (an orphan
    re-parented here included) that may still act."""
    return any(process_state(pid) not in ("Z", "X", None) for pid in _children())


def kill_stray_children(keep: Sequence[int] = ()) -> None:
    """SIGKILL and reap every child of this process except ``keep`` (orphans that were
    re-parented here included), until none is left."""
    for _ in range(50):
        strays = [pid for pid in _children() if pid not in keep]
        if not strays:
            return
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` (``R``, ``S``, ``Z``...), or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def rss_bytes(pid: int) -> int | None:
    """The resident memory of ``pid``, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return 0


def _inheritable_fds() -> list[int]:
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    found.append(fd)
            except OSError:
                continue
    return found


def _high_dup(fd: int, owned: list[int]) -> int:
    dup = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    owned.append(dup)
    return dup


class Candidate:
    """A candidate program started by the runner, in a new session (so that it and whatever
    it starts can be killed together), with stdin from /dev/null and stdout/stderr captured
    in files. With ``channel``, that socket is its fd 3 (it is started as a worker)."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        channel: socket.socket | None = None,
        *,
        stdout_pipe: bool = False,
        extra_fds: Sequence[int] = (),
    ) -> None:
        self.argv = list(argv)
        # Held as long as the candidate is, and closed by kill().
        self._out = tempfile.TemporaryFile()  # noqa: SIM115
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        self.returncode: int | None = None
        self.stdout_pipe: int | None = None
        owned: list[int] = []
        try:
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            owned.append(devnull)
            out_fd = self._out.fileno()
            if stdout_pipe:
                read_end, write_end = os.pipe2(os.O_CLOEXEC)
                owned.append(write_end)
                self.stdout_pipe = read_end
                out_fd = write_end
            actions: list[tuple[int, ...]] = [
                (os.POSIX_SPAWN_DUP2, _high_dup(devnull, owned), 0),
                (os.POSIX_SPAWN_DUP2, _high_dup(out_fd, owned), 1),
                (os.POSIX_SPAWN_DUP2, _high_dup(self._err.fileno(), owned), 2),
            ]
            if channel is not None:
                actions.append((os.POSIX_SPAWN_DUP2, _high_dup(channel.fileno(), owned), 3))
            # Nothing else this process inherited goes on to the candidate...
            actions.extend((os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable_fds())
            for extra in extra_fds:
                # ...unless asked: inheritable descriptors the candidate must not pass on.
                actions.append((os.POSIX_SPAWN_DUP2, _high_dup(devnull, owned), extra))
            program = self.argv[0]
            if os.sep not in program:
                import shutil

                found = shutil.which(program, path=env.get("PATH", os.defpath))
                if found is None:
                    raise Fail(f"cannot start {program!r}: not found on PATH")
                program = found
            try:
                self.pid = os.posix_spawn(program, self.argv, env, file_actions=actions,
                                          setsid=True)
            except OSError as exc:
                raise Fail(f"cannot start {self.argv!r}: {exc.strerror or exc}") from None
        finally:
            for fd in owned:
                os.close(fd)
        self.started = time.monotonic()
        self._pidfd = os.pidfd_open(self.pid)

    @property
    def pidfd(self) -> int:
        """A pidfd of the candidate: readable once it has exited."""
        return self._pidfd

    def wait(self, deadline: Deadline, seconds: float | None = None) -> int | None:
        """Wait for the exit (at most ``seconds``, and never past ``deadline``); the exit
        status (``-N``: killed by signal N), or None if it is still running."""
        if self.returncode is not None:
            return self.returncode
        end = deadline.at if seconds is None else deadline.within(seconds)
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                return self.returncode
            left = end - time.monotonic()
            if left <= 0:
                return None
            poller.poll(max(1, int(left * 1000)))

    def expect_exit(self, deadline: Deadline, what: str) -> int:
        """The exit status, waiting until the deadline.

        Raises:
            Fail: it did not exit in time.
        """
        code = self.wait(deadline)
        if code is None:
            raise Fail(f"{what}: still running after {deadline.seconds:g} s")
        return code

    def output(self) -> str:
        """What it wrote on stdout (when not piped)."""
        self._out.seek(0)
        return self._out.read().decode(errors="replace")

    def errors(self) -> str:
        """What it wrote on stderr."""
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def stderr_tail(self, limit: int = 160) -> str:
        """The last line of stderr, shortened, for failure reasons."""
        lines = [line for line in self.errors().splitlines() if line.strip()]
        if not lines:
            return ""
        last = lines[-1].strip()
        return last if len(last) <= limit else last[: limit - 3] + "..."

    def stderr_lines(self, count: int = 20) -> str:
        """The last ``count`` lines of stderr, for a report."""
        return "\n".join(self.errors().rstrip().splitlines()[-count:])

    def kill(self) -> None:
        """SIGKILL its whole session, reap it and release everything."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
        os.close(self._pidfd)
        if self.stdout_pipe is not None:
            os.close(self.stdout_pipe)
            self.stdout_pipe = None
        self._out.close()
        self._err.close()


def describe_status(code: int | None) -> str:
    """``exit 3``, ``killed by SIGKILL`` or ``still running``."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


class StartFail(Fail):
    """The candidate did not start; ``stderr`` is what it wrote there."""

    def __init__(self, reason: str, stderr: str) -> None:
        super().__init__(reason)
        self.stderr = stderr


class CandidateContext:
    """What every scenario works with: the candidate's command line, the environment it is
    started with (the runner's own ``WORKER_PROCESS_*`` settings removed, except those named in
    ``keep_env``), the scenario's deadline, and the candidate once it runs."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        deadline: Deadline,
        *,
        keep_env: Sequence[str] = ("WORKER_PROCESS_NODE",),
    ) -> None:
        self.argv = list(argv)
        self.base_env = {k: v for k, v in env.items()
                         if not k.startswith("WORKER_PROCESS_") or k in keep_env}
        self.deadline = deadline
        self.proc: Candidate | None = None

    @property
    def candidate(self) -> Candidate:
        assert self.proc is not None
        return self.proc

    def status_note(self, within: float = 0.0) -> str:
        """How the candidate ended (waiting up to ``within`` seconds for it to), for a
        failure's reason; empty while it runs."""
        code = self.candidate.wait(self.deadline, within)
        if code is None:
            return ""
        tail = self.candidate.stderr_tail()
        return f" (it ended: {describe_status(code)}{'; stderr: ' + tail if tail else ''})"

    def preflight(self, start: Callable[[], object]) -> None:
        """Run ``start`` (start the candidate and complete the handshake); if it fails, wait
        briefly for the candidate to end so that its stderr is complete.

        Raises:
            StartFail: it failed; the reason, and the candidate's stderr.
        """
        try:
            start()
        except Fail as exc:
            if self.proc is None:
                raise StartFail(str(exc), "") from None
            note = "" if "(it ended:" in str(exc) else self.status_note(within=2.0)
            raise StartFail(f"{exc}{note}", self.candidate.stderr_lines()) from None
