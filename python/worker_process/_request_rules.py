"""The request/response rules both APIs follow (spec/requests.md), with no I/O: what a
failed send means for a request, what a request that ran out of time or lost its worker
fails with, and when ``recv()`` conflicts with pending requests."""

from __future__ import annotations

from ._errors import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfStream,
    LocalProtocolError,
    NoReplyError,
    RequestConflictError,
    RequestTimeoutError,
)
from ._exit_reason import EXIT_STATUS_GRACE, STREAM_ENDS, copy_no_reply, no_reply_error, tail_text

__all__ = [
    "EXIT_STATUS_GRACE",
    "NOTHING_SENT",
    "SENT_MAYBE",
    "STREAM_ENDS",
    "copy_no_reply",
    "no_reply",
    "recv_conflict",
    "timed_out",
]

#: A send that raised one of these wrote nothing: the request is withdrawn, the error raised.
NOTHING_SENT = (ClosedResourceError, LocalProtocolError, TypeError)
#: A send that raised this may have written the frame: the request waits, and receiving
#: explains what happened to the worker.
SENT_MAYBE = BrokenResourceError


def recv_conflict() -> RequestConflictError:
    """What ``recv()`` raises while requests wait for their replies."""
    return RequestConflictError(
        "recv() was called while requests wait for their replies; wait for them first"
    )


def timed_out(timeout: float | None, pid: int) -> RequestTimeoutError:
    """What a request without a reply within ``timeout`` raises (it keeps its place: its
    reply, when it comes, is dropped)."""
    assert timeout is not None
    return RequestTimeoutError(f"no reply within {timeout} s", timeout=timeout, pid=pid)


def no_reply(
    worker: object, pid: int, returncode: int | None, cause: BaseException
) -> NoReplyError:
    """What every pending request fails with once the worker's stream ended (``cause``:
    how; a clean end is no cause), with its exit status if known and its kept stderr."""
    reason = None if isinstance(cause, EndOfStream) else cause
    return no_reply_error(pid, returncode, reason, tail_text(worker))
