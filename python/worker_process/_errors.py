"""The exception hierarchy. Every exception the package raises derives from
:class:`WorkerProcessError`; nothing from ``struct`` or ``construct`` escapes."""

from __future__ import annotations

__all__ = [
    "BrokenResourceError",
    "ChannelUnavailableError",
    "ClosedResourceError",
    "EndOfStream",
    "HandshakeByteError",
    "HandshakeTimeoutError",
    "LocalProtocolError",
    "MaxDurationExceededError",
    "MessageTooLargeError",
    "NoReplyError",
    "PayloadTooLargeError",
    "PeerGoneError",
    "PoolError",
    "ProtocolError",
    "RemoteError",
    "RemoteProtocolError",
    "ReplyFormatError",
    "RequestConflictError",
    "RequestTimeoutError",
    "TruncatedStreamError",
    "WorkerExitError",
    "WorkerProcessError",
    "WorkerStartError",
]


class WorkerProcessError(Exception):
    """Root of every exception raised by worker_process."""


# --- protocol ---------------------------------------------------------------------------------


class ProtocolError(WorkerProcessError):
    """The byte stream broke the protocol. Once raised, the codec that raised it is in the
    ERROR state and refuses further use."""


class LocalProtocolError(ProtocolError):
    """This side was asked to do something the protocol forbids (e.g. send a payload over the
    limit, or send after finishing)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break the protocol."""


class HandshakeByteError(RemoteProtocolError):
    """The peer's handshake byte was wrong.

    Attributes:
        expected: the byte the protocol requires (0x00 from a parent, 0x01 from a worker).
        got: the byte that arrived.
    """

    def __init__(self, *, expected: int, got: int) -> None:
        super().__init__(f"bad handshake byte: expected 0x{expected:02x}, got 0x{got:02x}")
        self.expected = expected
        self.got = got


class MessageTooLargeError(RemoteProtocolError):
    """A frame header announced a payload longer than this side's ``max_message_size``.
    Raised as soon as the 4 header bytes are in, before any payload byte is buffered.

    Attributes:
        length: the payload length the header announced.
        limit: this side's ``max_message_size``.
    """

    def __init__(self, *, length: int, limit: int) -> None:
        super().__init__(
            f"peer announced a message of {length} bytes; max_message_size is {limit}"
        )
        self.length = length
        self.limit = limit


class PayloadTooLargeError(LocalProtocolError):
    """A payload handed to ``send`` is longer than the limit (the wire maximum, 2**32-1 bytes,
    or the sender's ``max_message_size``).

    Attributes:
        length: the payload's length.
        limit: the limit it broke.
    """

    def __init__(self, *, length: int, limit: int) -> None:
        super().__init__(f"cannot send a message of {length} bytes; the limit is {limit}")
        self.length = length
        self.limit = limit


class TruncatedStreamError(RemoteProtocolError):
    """The peer's stream ended inside the handshake, a frame header or a payload.

    Attributes:
        stage: ``"handshake"``, ``"header"`` or ``"payload"``.
        missing: how many more bytes the element needed.
    """

    def __init__(self, *, stage: str, missing: int) -> None:
        more = "1 more byte was" if missing == 1 else f"{missing} more bytes were"
        super().__init__(f"stream ended inside the {stage}: {more} expected")
        self.stage = stage
        self.missing = missing


# --- streams ------------------------------------------------------------------------------------


class ClosedResourceError(WorkerProcessError):
    """This side closed (or finished) the channel and then tried to use it."""


class BrokenResourceError(WorkerProcessError):
    """The peer or the operating system broke the channel. ``__cause__`` holds the underlying
    error: an ``OSError``, a :class:`ProtocolError`, or a ``MemoryError`` (a message too
    large to hold)."""


class PeerGoneError(WorkerProcessError):
    """The peer released its whole socket (its process is gone, or it closed the channel)
    instead of ending its stream with a half-close. A worker's channel breaks with this as
    the ``__cause__`` when its parent is gone."""


class EndOfStream(WorkerProcessError):
    """``recv()`` was called after the peer cleanly ended its stream: no message will come."""


class ChannelUnavailableError(WorkerProcessError):
    """``connect()`` found no usable channel on fd 3 (not open, not a socket, or not an
    AF_UNIX stream socket). The message names the cause."""


# --- worker processes --------------------------------------------------------------------------


class WorkerStartError(WorkerProcessError):
    """The worker could not be started, or exited before completing the handshake.

    Attributes:
        returncode: the exit status if the process started and exited, else ``None``
            (negative: killed by that signal, as in :mod:`subprocess`).
    """

    def __init__(self, message: str, *, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


class HandshakeTimeoutError(WorkerStartError, TimeoutError):
    """The worker did not send its handshake byte within ``handshake_timeout``; it was killed."""


class WorkerExitError(WorkerProcessError):
    """The worker process ended unsuccessfully (``Worker.lifetime`` fails with this).

    Attributes:
        returncode: as in :mod:`subprocess`: the exit code, or ``-N`` if killed by signal N.
        signal: the signal number that killed it, or ``None``.
    """

    def __init__(self, message: str, *, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.signal: int | None = -returncode if returncode < 0 else None


class MaxDurationExceededError(WorkerExitError):
    """The worker ran longer than ``max_duration`` seconds and was killed.

    Attributes:
        max_duration: the limit in seconds.
    """

    def __init__(self, message: str, *, returncode: int, max_duration: float) -> None:
        super().__init__(message, returncode=returncode)
        self.max_duration = max_duration


# --- requests and pools (spec/requests.md) ------------------------------------------------------


class RemoteError(WorkerProcessError):
    """The worker's handler raised while serving a request; the reply reported it.

    Attributes:
        type: the name of the error's class in the worker (``"ValueError"``, ``"TypeError"``).
        message: the error's message in the worker.
        traceback: the worker's formatted traceback (may be empty).
    """

    def __init__(self, type: str, message: str, traceback: str) -> None:
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message
        self.traceback = traceback

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str, str]]:
        return (RemoteError, (self.type, self.message, self.traceback))


class ReplyFormatError(WorkerProcessError):
    """A reply did not follow the served reply format (no status byte, or an error body that
    is not a JSON object). Pass ``raw=True`` to a pool of workers that reply without it."""


class NoReplyError(BrokenResourceError):
    """The worker ended its stream, broke its channel or exited before replying.

    ``__cause__`` is a :class:`WorkerExitError` when the worker ended unsuccessfully, else
    the stream's own error.

    Attributes:
        pid: the worker's process id.
        returncode: its exit status if it had exited (``-N``: killed by signal N), else
            ``None``.
        signal: the signal number that killed it, or ``None``.
    """

    def __init__(self, message: str, *, pid: int, returncode: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.returncode = returncode
        self.signal: int | None = -returncode if returncode is not None and returncode < 0 else None


class RequestTimeoutError(WorkerProcessError, TimeoutError):
    """No reply within the request's ``timeout``.

    Attributes:
        timeout: the limit in seconds.
        pid: the worker's process id. In a pool, that worker was killed and replaced.
    """

    def __init__(self, message: str, *, timeout: float, pid: int) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.pid = pid


class RequestConflictError(WorkerProcessError):
    """``recv`` (or ``onmessage``) was used while requests were waiting for their replies,
    or a request was made while ``onmessage`` is set: the replies belong to the requests."""


class PoolError(WorkerProcessError):
    """The pool refused or dropped a request.

    Attributes:
        reason: ``"closed"`` (the pool was closed), ``"terminated"``, or ``"broken"`` (a
            worker could not start; ``__cause__`` is its start-up error).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
