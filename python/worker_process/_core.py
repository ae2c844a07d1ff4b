"""The channel's state, with no I/O: one state machine per direction, the rule that tells a
peer that finished from a peer that is gone, and the one mapping from a state to what
``send``/``recv``/``finish`` raise. Both transports (asyncio and blocking) keep their
channel's state here and only perform the I/O.

The tables below are the whole state machine: ``READ_TABLE`` and ``WRITE_TABLE`` map
``(state, event)`` to the next state; an event a state does not list leaves it unchanged
(BROKEN and CLOSED are sticky: a broken channel never works again, and only ``close``
leaves BROKEN). ``python -m worker_process._states --write`` renders them into
``spec/states.md``.

Only builtin modules are imported: the blocking worker imports this at start-up.
"""

from __future__ import annotations

from ._errors import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfStream,
    LocalProtocolError,
    PeerGoneError,
    ProtocolError,
    WorkerProcessError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "READ_EVENTS",
    "READ_STATES",
    "READ_TABLE",
    "WRITE_EVENTS",
    "WRITE_STATES",
    "WRITE_TABLE",
    "ChannelCore",
    "CoreBacked",
    "ReadState",
    "WriteState",
]


class ReadState:
    """The peer's stream, as this side reads it (the values are the states' names)."""

    HANDSHAKE = "HANDSHAKE"
    OPEN = "OPEN"
    ENDED = "ENDED"
    BROKEN = "BROKEN"
    CLOSED = "CLOSED"


class WriteState:
    """This side's stream, as it writes it (the values are the states' names)."""

    HANDSHAKE = "HANDSHAKE"
    OPEN = "OPEN"
    FINISHING = "FINISHING"
    ENDED = "ENDED"
    BROKEN = "BROKEN"
    CLOSED = "CLOSED"


#: What each read state means.
READ_STATES: dict[str, str] = {
    ReadState.HANDSHAKE: "waiting for the peer's handshake byte",
    ReadState.OPEN: "frames may arrive",
    ReadState.ENDED: "the peer ended its stream cleanly at a frame boundary",
    ReadState.BROKEN: "a protocol error, an OS error, or the peer is gone",
    ReadState.CLOSED: "this side closed the channel",
}

#: What each write state means.
WRITE_STATES: dict[str, str] = {
    WriteState.HANDSHAKE: "this side's handshake byte is not written yet",
    WriteState.OPEN: "frames may be sent",
    WriteState.FINISHING: "finish() was called: what is queued goes out, then the end of stream",
    WriteState.ENDED: "the write side is shut down (end of stream sent)",
    WriteState.BROKEN: "a write failed, or a send was interrupted inside a frame",
    WriteState.CLOSED: "this side closed the channel",
}

#: What each read event is.
READ_EVENTS: dict[str, str] = {
    "handshake": "the peer's handshake byte arrived and was right",
    "end": "a clean end of stream at a frame boundary",
    "gone": "an end of stream from a parent that released its socket without finishing,"
    " seen by a worker that has not finished (the finished-vs-gone policy)",
    "error": "a protocol error (bad handshake byte, frame over the limit, stream cut inside"
    " a frame), an OS error, or a payload too large for this host",
    "close": "this side closes the channel",
}

#: What each write event is.
WRITE_EVENTS: dict[str, str] = {
    "handshake": "this side's handshake byte was written",
    "finish": "finish() was called",
    "shut": "the write side was shut down (shutdown(SHUT_WR))",
    "error": "a write failed, or an exception interrupted a send",
    "close": "this side closes the channel",
}


#: (state, event) -> next state, for the read direction (events: READ_EVENTS).
READ_TABLE: dict[tuple[str, str], str] = {
    (ReadState.HANDSHAKE, "handshake"): ReadState.OPEN,
    (ReadState.HANDSHAKE, "error"): ReadState.BROKEN,
    (ReadState.HANDSHAKE, "close"): ReadState.CLOSED,
    (ReadState.OPEN, "end"): ReadState.ENDED,
    (ReadState.OPEN, "gone"): ReadState.BROKEN,
    (ReadState.OPEN, "error"): ReadState.BROKEN,
    (ReadState.OPEN, "close"): ReadState.CLOSED,
    (ReadState.ENDED, "error"): ReadState.BROKEN,
    (ReadState.ENDED, "close"): ReadState.CLOSED,
    (ReadState.BROKEN, "close"): ReadState.CLOSED,
}

#: (state, event) -> next state, for the write direction (events: WRITE_EVENTS).
WRITE_TABLE: dict[tuple[str, str], str] = {
    (WriteState.HANDSHAKE, "handshake"): WriteState.OPEN,
    (WriteState.HANDSHAKE, "error"): WriteState.BROKEN,
    (WriteState.HANDSHAKE, "close"): WriteState.CLOSED,
    (WriteState.OPEN, "finish"): WriteState.FINISHING,
    (WriteState.OPEN, "shut"): WriteState.ENDED,
    (WriteState.OPEN, "error"): WriteState.BROKEN,
    (WriteState.OPEN, "close"): WriteState.CLOSED,
    (WriteState.FINISHING, "shut"): WriteState.ENDED,
    (WriteState.FINISHING, "error"): WriteState.BROKEN,
    (WriteState.FINISHING, "close"): WriteState.CLOSED,
    (WriteState.ENDED, "close"): WriteState.CLOSED,
    (WriteState.BROKEN, "close"): WriteState.CLOSED,
}

_READ_DONE = frozenset({ReadState.ENDED, ReadState.BROKEN, ReadState.CLOSED})
_WRITING = frozenset({WriteState.OPEN, WriteState.FINISHING})
_WRITABLE = frozenset({WriteState.HANDSHAKE, WriteState.OPEN, WriteState.FINISHING})


class ChannelCore:
    """One end of a channel's state. Transports report what happened (``*_failed``,
    :meth:`stream_ended`, …) and ask what a call must raise (:meth:`send_error`,
    :meth:`recv_error`, …); the object does no I/O and never blocks.

    ``hup_is_broken`` is the finished-vs-gone policy of a worker: an end of stream from a
    peer that released its whole socket (rather than half-closing it) is a break, unless
    this side already finished its own stream (then both look alike, and nothing it sent
    can be lost any more).
    """

    __slots__ = ("hup_is_broken", "read_error", "read_state", "write_error", "write_state")

    def __init__(self, *, hup_is_broken: bool = False) -> None:
        self.hup_is_broken = hup_is_broken
        self.read_state = ReadState.HANDSHAKE
        self.write_state = WriteState.HANDSHAKE
        #: Why the read side broke (a ProtocolError, an OSError, PeerGoneError, MemoryError).
        self.read_error: BaseException | None = None
        #: Why the write side broke (an OSError, or what interrupted a send).
        self.write_error: BaseException | None = None

    # -- what happened -----------------------------------------------------------------------

    def _read(self, event: str) -> None:
        self.read_state = READ_TABLE.get((self.read_state, event), self.read_state)

    def _write(self, event: str) -> None:
        self.write_state = WRITE_TABLE.get((self.write_state, event), self.write_state)

    def handshake_received(self) -> None:
        self._read("handshake")

    def handshake_sent(self) -> None:
        self._write("handshake")

    def read_failed(self, exc: BaseException) -> bool:
        """The read side failed with ``exc``; returns True if that is news (the first error,
        and this side has not closed): the transport then reports the break. (Also after a
        clean end: a worker's parent that finished may be gone later.)"""
        if self.read_state is ReadState.BROKEN or self.read_state is ReadState.CLOSED:
            return False
        self.read_error = exc
        self._read("error")
        return True

    def stream_ended(self, peer_released_socket: Callable[[], bool]) -> BaseException | None:
        """The peer's stream ended at a frame boundary (the codec accepted the end). Applies
        the finished-vs-gone policy: returns the :class:`PeerGoneError` the read side broke
        with, or None for a clean end. ``peer_released_socket()`` asks the transport whether
        the peer released its socket (POLLHUP); it is called only under the policy."""
        if self.read_state in _READ_DONE:
            return None
        if (
            self.hup_is_broken
            and self.write_state not in (WriteState.ENDED, WriteState.CLOSED)
            and peer_released_socket()
        ):
            exc = PeerGoneError("the parent closed the channel without finishing (gone)")
            self.read_error = exc
            self._read("gone")
            return exc
        self._read("end")
        return None

    def write_failed(self, exc: BaseException) -> bool:
        """The write side failed (or a send was interrupted inside a frame); returns True
        if that is news (not after a break, a close, or the end of this side's stream)."""
        if self.write_state not in _WRITABLE:
            return False  # already broken, closed, or finished: nothing more is written
        self.write_error = exc
        self._write("error")
        return True

    def finish_requested(self) -> None:
        self._write("finish")

    def write_shut(self) -> None:
        self._write("shut")

    def close(self) -> bool:
        """This side closes; returns False if it already had."""
        if self.read_state is ReadState.CLOSED and self.write_state is WriteState.CLOSED:
            return False
        self._read("close")
        self._write("close")
        return True

    # -- what the calls raise ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.write_state is WriteState.CLOSED

    @property
    def read_done(self) -> bool:
        """No more frames will arrive (clean end, broken, or closed)."""
        return self.read_state in _READ_DONE

    @property
    def writing(self) -> bool:
        """Queued bytes may still go out (OPEN or FINISHING)."""
        return self.write_state in _WRITING

    @property
    def finished(self) -> bool:
        """This side's write side is shut down (or the channel closed)."""
        return self.write_state in (WriteState.ENDED, WriteState.CLOSED)

    def send_error(self) -> WorkerProcessError | None:
        """What ``send`` raises now, or None if it may send."""
        state = self.write_state
        if state is WriteState.OPEN:
            return None
        if state is WriteState.CLOSED:
            return ClosedResourceError("the channel was closed")
        if state is WriteState.BROKEN:
            return _broken(self.write_error)
        if state is WriteState.HANDSHAKE:
            return LocalProtocolError("nothing may be sent before the handshake")
        return ClosedResourceError("this side already finished its stream")

    def flush_error(self) -> WorkerProcessError | None:
        """What waiting for queued bytes (``drain``/``finish``) raises now, or None if the
        bytes may still go out."""
        state = self.write_state
        if state is WriteState.CLOSED:
            return ClosedResourceError("the channel was closed")
        if state is WriteState.BROKEN:
            return _broken(self.write_error)
        return None

    def recv_error(self) -> WorkerProcessError | None:
        """What ``recv`` raises once no message is left, or None if one may still come."""
        state = self.read_state
        if state is ReadState.CLOSED:
            return ClosedResourceError("the channel was closed")
        if state is ReadState.BROKEN:
            return _broken(self.read_error)
        if state is ReadState.ENDED:
            return EndOfStream("the peer ended its stream")
        return None

    def handshake_error(self) -> BaseException | None:
        """What waiting for the peer's handshake raises once the read side is done: the
        protocol error itself (a wrong byte, a stream that ended first), else as ``recv``."""
        if isinstance(self.read_error, ProtocolError) and self.read_state is ReadState.BROKEN:
            return self.read_error
        return self.recv_error()


class CoreBacked:
    """What a transport whose state is a :class:`ChannelCore` (``core``) answers from it."""

    core: ChannelCore

    @property
    def closed(self) -> bool:
        """This side closed the channel."""
        return self.core.closed

    @property
    def read_done(self) -> bool:
        """The peer's stream ended (cleanly or not), or this side closed."""
        return self.core.read_done


def _broken(cause: BaseException | None) -> BrokenResourceError:
    error = BrokenResourceError(f"the channel broke: {cause}")
    error.__cause__ = cause
    return error
