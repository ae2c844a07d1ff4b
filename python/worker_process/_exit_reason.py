"""Errors that say how a worker ended: what a caller sees when its reply, or its stream,
was cut short by the worker's death. No asyncio here: both APIs use it."""

from __future__ import annotations

import _thread
import os
import weakref
from collections import deque

from ._errors import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfStream,
    NoReplyError,
    WorkerExitError,
)
from ._outcome import describe_exit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol, TypeVar

    T = TypeVar("T")

    class _Process(Protocol):
        pid: int

        @property
        def returncode(self) -> int | None: ...


__all__ = [
    "EXIT_STATUS_GRACE",
    "STREAM_ENDS",
    "StderrTail",
    "WorkerExitBrokenError",
    "WorkerExitEndError",
    "checked_outcome",
    "copy_no_reply",
    "describe_exit",
    "exit_error",
    "explain_calls",
    "no_reply_error",
    "open_stderr_tail",
    "record_settings",
    "settings_of",
    "spawn_with_tail",
    "tail_text",
    "wants_check",
    "watch_tail",
]

#: After a worker's stream ended or broke, how long to wait (seconds) for its exit status so
#: that the error can say how it ended.
EXIT_STATUS_GRACE = 1.0


class WorkerExitEndError(WorkerExitError, EndOfStream):
    """Raised by ``recv`` when the worker's stream ended because the worker died: it is the
    :class:`EndOfStream` it replaces, and says how the worker ended."""


class WorkerExitBrokenError(WorkerExitError, BrokenResourceError):
    """Raised by ``send``/``recv`` when the channel broke because the worker died: it is the
    :class:`BrokenResourceError` it replaces (``__cause__`` the same), and says how the
    worker ended."""


class StderrTail:
    """Forwards a worker's stderr (a pipe) to this process's stderr, keeping its last
    ``lines`` lines for error messages. The owner calls :meth:`pump` when the pipe is
    readable (it never blocks) and :meth:`close` when done."""

    def __init__(self, fd: int, lines: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self._lines: deque[bytes] = deque(maxlen=lines)
        self._partial = b""
        self._lock = _thread.allocate_lock()
        self.eof = False

    def pump(self) -> None:
        """Read and forward everything available now."""
        with self._lock:
            while not self.eof and self.fd >= 0:
                try:
                    chunk = os.read(self.fd, 65536)
                except BlockingIOError:
                    return
                except OSError:
                    chunk = b""
                if not chunk:
                    self.eof = True
                    return
                _write_all(2, chunk)
                lines = (self._partial + chunk).split(b"\n")
                self._partial = lines.pop()[-4096:]
                self._lines.extend(line[-4096:] for line in lines)

    def text(self) -> str:
        """The last lines read (a line without its newline yet included)."""
        self.pump()
        with self._lock:
            lines = list(self._lines)
            if self._partial:
                lines.append(self._partial)
        return b"\n".join(lines[-(self._lines.maxlen or 1) :]).decode(errors="replace")

    def close(self) -> None:
        """Forward what is left (without waiting) and close the pipe. Idempotent."""
        self.pump()
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
                self.eof = True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            continue
        except OSError:
            return


class Settings:
    """What ``create_worker`` was asked beyond the process itself: ``check`` (``close()``
    and ``with`` raise on an unsuccessful exit) and the stderr tail."""

    __slots__ = ("check", "tail")

    def __init__(self, check: bool, tail: StderrTail | None) -> None:
        self.check = check
        self.tail = tail


_settings: weakref.WeakKeyDictionary[Any, Settings] = weakref.WeakKeyDictionary()


def settings_of(worker: object) -> Settings | None:
    """The worker's :class:`Settings`, if ``create_worker`` recorded some."""
    return _settings.get(worker)


def record_settings(worker: object, check: bool, tail: StderrTail | None) -> None:
    if check or tail is not None:
        _settings[worker] = Settings(check, tail)


def check_tail(lines: object, stderr: object) -> None:
    """The ``stderr_tail`` option, beside ``stderr``.

    Raises:
        ValueError: ``lines`` is neither None nor a positive integer, or both were given.
    """
    if lines is None:
        return
    if stderr is not None:
        raise ValueError("give stderr or stderr_tail, not both")
    if not isinstance(lines, int) or isinstance(lines, bool) or lines < 1:
        raise ValueError(f"stderr_tail must be a positive number of lines; got {lines!r}")


def open_stderr_tail(lines: int | None) -> tuple[StderrTail | None, int | None]:
    """For ``stderr_tail=lines``: the tail and the pipe's write end to give the worker as its
    stderr (the caller closes it once the worker started), or ``(None, None)``.

    Raises:
        ValueError: ``lines`` is not a positive integer.
    """
    if lines is None:
        return None, None
    check_tail(lines, None)
    read_end, write_end = os.pipe()
    return StderrTail(read_end, lines), write_end


def tail_text(worker: object) -> str:
    """``"stderr (last lines):\n..."`` for the worker's kept stderr, or ``""``."""
    settings = _settings.get(worker)
    if settings is None or settings.tail is None:
        return ""
    text = settings.tail.text()
    return f"stderr (last lines):\n{text}" if text else ""


def checked_outcome(worker: object, error: BaseException | None) -> BaseException | None:
    """For ``close(check=True)``: the worker's outcome (``lifetime``'s error, ``result()``'s),
    its message extended with the kept stderr lines."""
    detail = tail_text(worker)
    if error is None or not detail or type(error) is not WorkerExitError:
        return error
    extended = WorkerExitError(f"{error}\n{detail}", returncode=error.returncode)
    extended.__cause__ = error.__cause__
    return extended


def wants_check(worker: object, check: bool | None) -> bool:
    """Whether ``close(check=check)`` raises: ``check``, or by default ``create_worker``'s."""
    if check is not None:
        return check
    settings = _settings.get(worker)
    return settings is not None and settings.check


def spawn_with_tail(
    lines: int | None, stderr: Any, start: Callable[[Any], T]
) -> tuple[T, StderrTail | None]:
    """Run ``start(stderr)``, the worker's stderr being a kept tail's pipe if ``lines``.

    Raises:
        ValueError: both ``stderr`` and ``stderr_tail`` were given, or a bad ``lines``.
    """
    check_tail(lines, stderr)
    tail, write_end = open_stderr_tail(lines)
    try:
        return start(stderr if write_end is None else write_end), tail
    except BaseException:
        if tail is not None:
            tail.close()
        raise
    finally:
        if write_end is not None:
            os.close(write_end)


def exit_error(worker: _Process, exc: BaseException) -> BaseException:
    """What ``recv``/``send`` raise instead of ``exc`` (an :class:`EndOfStream` or
    :class:`BrokenResourceError`) once the worker's exit status is known: a
    :class:`WorkerExitError` that is also ``exc``'s class, when the worker ended
    unsuccessfully; ``exc`` itself otherwise."""
    returncode = worker.returncode
    if returncode is None or returncode == 0 or isinstance(exc, WorkerExitError):
        return exc
    message = f"worker {worker.pid} {describe_exit(returncode)}"
    detail = tail_text(worker)
    if detail:
        message = f"{message}\n{detail}"
    kind = WorkerExitEndError if isinstance(exc, EndOfStream) else WorkerExitBrokenError
    error = kind(message, returncode=returncode)
    error.__cause__ = exc if isinstance(exc, EndOfStream) else exc.__cause__ or exc
    return error


#: What ``recv`` raises when no more messages can come.
STREAM_ENDS = (EndOfStream, BrokenResourceError, ClosedResourceError)


def copy_no_reply(error: NoReplyError) -> NoReplyError:
    """A fresh copy of ``error`` (one exception object per raise: tracebacks do not pile up)."""
    copy = NoReplyError(str(error), pid=error.pid, returncode=error.returncode)
    copy.__cause__ = error.__cause__
    return copy


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
    if isinstance(cause, WorkerExitError):
        cause = cause.__cause__ if isinstance(cause.__cause__, BaseException) else None
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


# --- the blocking API ---------------------------------------------------------------------------


def explain_calls(worker: Any) -> None:
    """Make the blocking worker's ``send``/``recv`` (bound on the instance) say how the
    worker ended when its death ends or breaks the channel: they wait up to
    :data:`EXIT_STATUS_GRACE` for the exit status and raise :func:`exit_error`."""
    send, recv = worker.send, worker.recv
    ends = (EndOfStream, BrokenResourceError)

    def explained(exc: BaseException) -> BaseException:
        if worker.returncode is None:
            try:
                worker.wait(EXIT_STATUS_GRACE)
            except TimeoutError:
                return exc
        return exit_error(worker, exc)

    def send_explained(data: Any) -> None:
        try:
            send(data)
        except ends as exc:
            error = explained(exc)
            if error is exc:
                raise
            raise error from error.__cause__

    def recv_explained(timeout: float | None = None) -> bytes:
        try:
            return recv(timeout)  # type: ignore[no-any-return]
        except ends as exc:
            error = explained(exc)
            if error is exc:
                raise
            raise error from error.__cause__

    send_explained.__doc__, recv_explained.__doc__ = send.__doc__, recv.__doc__
    worker.send, worker.recv = send_explained, recv_explained


def watch_tail(tail: StderrTail) -> None:
    """Forward the blocking worker's stderr from a thread of its own until its end."""
    import select

    def run() -> None:
        poller = select.poll()
        poller.register(tail.fd, select.POLLIN)
        while not tail.eof:
            poller.poll()
            tail.pump()
        tail.close()

    _thread.start_new_thread(run, ())
