"""Received messages waiting for a consumer, and the water marks that bound them: the read
side's back-pressure rule, with no I/O. Both transports keep their received messages here.

The rule: a transport stops reading the socket once more than ``high`` bytes of messages
wait (:meth:`MessageQueue.pause_due` says so), and starts again once at most ``low`` bytes do
(:meth:`MessageQueue.resume_due` says so), so a slow consumer exerts back-pressure on the
peer instead of growing memory. (The blocking transport reads only when asked for a message,
so at most one read's worth waits and it never pauses; the rule costs it nothing.)

Only builtin modules are imported: the blocking worker imports this at start-up.
"""

from __future__ import annotations

from collections import deque

__all__ = ["READ_HIGH_WATER", "READ_LOW_WATER", "MessageQueue"]

#: Reading pauses while more than this many bytes of received messages wait.
READ_HIGH_WATER = 1 << 22
#: ... and resumes once at most this many do.
READ_LOW_WATER = 1 << 20


class MessageQueue:
    """Messages in arrival order, their total size, and whether reading is paused.

    ``high=None`` makes a queue for a transport that reads only when asked and never pauses:
    it keeps no byte count, and its :attr:`messages` may be used directly (several threads
    may take from it: ``deque.popleft`` is atomic). A counted queue is not thread-safe."""

    __slots__ = ("bytes", "high", "low", "messages", "paused")

    def __init__(self, high: int | None = READ_HIGH_WATER, low: int = READ_LOW_WATER) -> None:
        #: The messages, oldest first.
        self.messages: deque[bytes] = deque()
        #: The bytes of the messages waiting.
        self.bytes = 0
        #: Reading is paused until the waiting messages are consumed down to ``low``.
        self.paused = False
        self.high = high
        self.low = low

    def __len__(self) -> int:
        return len(self.messages)

    def put(self, payloads: list[bytes]) -> None:
        """Queue ``payloads`` (in order, after those waiting)."""
        self.messages.extend(payloads)
        if self.high is not None:
            self.bytes += sum(map(len, payloads))

    def take(self) -> bytes:
        """The oldest message (the queue must not be empty: ``IndexError`` otherwise)."""
        payload = self.messages.popleft()
        if self.high is not None:
            self.bytes -= len(payload)
        return payload

    def pause_due(self) -> bool:
        """Returns True once, when more than ``high`` bytes wait and reading is not paused
        yet; the queue is then paused and the transport stops reading."""
        if not self.paused and self.high is not None and self.bytes > self.high:
            self.paused = True
            return True
        return False

    def resume_due(self) -> bool:
        """Returns True once, when reading is paused and at most ``low`` bytes wait; the
        queue is then unpaused and the transport resumes reading."""
        if self.paused and self.bytes <= self.low:
            self.paused = False
            return True
        return False
