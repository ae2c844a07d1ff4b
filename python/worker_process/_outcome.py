"""How a worker's life ends, as its parent reports it: shared by the asyncio and blocking
``Worker`` classes, which differ only in how they wait.

- a worker killed for running longer than ``max_duration`` fails with
  :class:`MaxDurationExceededError`;
- a worker that broke the protocol is killed and fails with :class:`BrokenResourceError`
  (``__cause__``: the protocol error); an ``OSError`` on the channel is left to the exit status;
- otherwise exit code 0 is success and anything else :class:`WorkerExitError`.

The first reason to kill a worker is the one reported. A worker whose channel broke reports
it and exits with code 1 (:func:`report_broken_and_exit`). Only builtin modules are imported.
"""

from __future__ import annotations

import os
import signal as _signal
import sys

from ._errors import (
    BrokenResourceError,
    HandshakeTimeoutError,
    MaxDurationExceededError,
    RemoteProtocolError,
    WorkerExitError,
    WorkerProcessError,
    WorkerStartError,
)

__all__ = ["ExitRules", "describe_exit", "report_broken_and_exit"]


def report_broken_and_exit(exc: BaseException) -> None:
    """The rule for a worker whose channel broke (kept from the original library): say why
    on stderr, exit with code 1 at once. (No contextlib: the blocking worker never imports it.)"""
    try:  # noqa: SIM105
        sys.stdout.flush()
    except Exception:  # stdout may be closed or broken: nothing to report to
        pass
    try:
        sys.stderr.write(f"worker-process: channel to the parent broke: {exc}\n")
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(1)


def describe_exit(returncode: int) -> str:
    """``"exited with code N"`` or ``"was killed by SIGNAME"`` (``returncode`` as in
    :mod:`subprocess`: ``-N`` for signal N)."""
    if returncode < 0:
        try:
            name = _signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


class ExitRules:
    """One worker's reasons to be killed, and the outcome they and its exit status give.
    Not thread-safe: the blocking ``Worker`` calls it under its own lock."""

    __slots__ = ("args", "kill_reason", "max_duration")

    def __init__(self, args: list[str], max_duration: float | None) -> None:
        self.args = args
        self.max_duration = max_duration
        self.kill_reason: WorkerProcessError | None = None

    def ran_too_long(self) -> bool:
        """``max_duration`` ran out: returns True if the worker must be killed now (nothing
        else decided its outcome first)."""
        if self.kill_reason is not None or self.max_duration is None:
            return False
        self.kill_reason = MaxDurationExceededError(
            f"worker {self.args!r} ran longer than max_duration={self.max_duration} s"
            " and was killed",
            returncode=-_signal.SIGKILL,
            max_duration=self.max_duration,
        )
        return True

    def channel_broke(self, exc: BaseException) -> bool:
        """The channel broke with ``exc``: returns True if the worker must be killed (it broke
        the protocol, so it cannot be trusted with more). The error may be found after the
        exit (in what the worker left): it still decides the outcome."""
        if not isinstance(exc, RemoteProtocolError):
            return False
        if self.kill_reason is None:
            broken = BrokenResourceError(f"the worker broke the protocol: {exc}")
            broken.__cause__ = exc
            self.kill_reason = broken
        return True

    def outcome(self, returncode: int) -> WorkerProcessError | None:
        """What ``lifetime`` fails with (``None``: success) once the worker exited."""
        reason = self.kill_reason
        if isinstance(reason, MaxDurationExceededError):
            return MaxDurationExceededError(
                str(reason), returncode=returncode, max_duration=reason.max_duration
            )
        if reason is not None:
            return reason
        if returncode != 0:
            return WorkerExitError(
                f"worker {self.args!r} {describe_exit(returncode)}", returncode=returncode
            )
        return None

    def handshake_timed_out(self, timeout: float) -> HandshakeTimeoutError:
        """The error for a worker that sent no handshake byte in time (it is killed)."""
        return HandshakeTimeoutError(
            f"worker {self.args!r} sent no handshake byte within {timeout} s; it was killed"
        )

    def exited_before_handshake(self, returncode: int) -> WorkerStartError:
        """The error for a worker that exited before its handshake byte."""
        return WorkerStartError(
            f"worker {self.args!r} {describe_exit(returncode)} before the handshake",
            returncode=returncode,
        )
