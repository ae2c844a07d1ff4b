"""Errors that say how a worker ended: what a caller sees when its reply, or its stream,
was cut short by the worker's death. No asyncio here: both APIs use it."""

from __future__ import annotations

import signal as _signal

from ._errors import NoReplyError, WorkerExitError

__all__ = ["EXIT_STATUS_GRACE", "describe_exit", "no_reply_error"]

#: After a worker's stream ended or broke, how long to wait (seconds) for its exit status so
#: that the error can say how it ended.
EXIT_STATUS_GRACE = 1.0


def describe_exit(returncode: int) -> str:
    """``"exited with code N"`` or ``"was killed by SIGNAME"``."""
    if returncode < 0:
        try:
            name = _signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def no_reply_error(
    pid: int, returncode: int | None, cause: BaseException | None, detail: str = ""
) -> NoReplyError:
    """The error for requests that got no reply. ``returncode`` is the worker's exit status
    if it was known within :data:`EXIT_STATUS_GRACE`; ``cause`` the stream's own error;
    ``detail`` is appended to the message (e.g. the last lines of the worker's stderr)."""
    if returncode is None:
        what = f"its channel broke ({cause})" if cause is not None else "it ended its stream"
        message = f"worker {pid} did not reply: {what}"
    else:
        message = f"worker {pid} {describe_exit(returncode)} before replying"
    if detail:
        message = f"{message}\n{detail}"
    error = NoReplyError(message, pid=pid, returncode=returncode)
    if returncode is not None and returncode != 0:
        exit_error = WorkerExitError(
            f"worker {pid} {describe_exit(returncode)}", returncode=returncode
        )
        exit_error.__cause__ = cause
        error.__cause__ = exit_error
    else:
        error.__cause__ = cause
    return error
