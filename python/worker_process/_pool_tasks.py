"""A pool's bookkeeping, with no process handling: the requests waiting for a worker
(:class:`TaskQueue`, retried ones first, in submission order) and each worker's place in the
pool (:class:`Slot`: the requests it holds, in the order it answers them, and the timer of
the one it works on)."""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._codec import BytesLike

if TYPE_CHECKING:
    from ._parent import Worker

__all__ = ["Slot", "Task", "TaskQueue", "fail", "retrieve"]


class Task:
    """One request: its payload, the future of its result, its time limit, its place in
    submission order and the attempts it has used up."""

    __slots__ = ("attempts", "data", "future", "seq", "timeout")

    def __init__(
        self, data: BytesLike, future: asyncio.Future[bytes], timeout: float | None, seq: int
    ) -> None:
        self.data = data
        self.future = future
        self.timeout = timeout
        self.seq = seq
        self.attempts = 0

    def __lt__(self, other: Task) -> bool:
        return self.seq < other.seq


class TaskQueue:
    """Requests waiting for a worker. Requeued ones (their worker died) go first, in
    submission order, so a retry does not wait behind later requests."""

    __slots__ = ("_front", "_queue", "_seq")

    def __init__(self) -> None:
        self._queue: deque[Task] = deque()
        self._front: list[Task] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._front) + len(self._queue)

    def add(self, data: BytesLike, future: asyncio.Future[bytes], timeout: float | None) -> None:
        """Queue a new request."""
        self._queue.append(Task(data, future, timeout, self._seq))
        self._seq += 1

    def requeue(self, task: Task) -> None:
        """Put back a request whose worker was lost."""
        bisect.insort(self._front, task)

    def next(self) -> Task | None:
        """The next request to send, or None."""
        if self._front:
            return self._front.pop(0)
        return self._queue.popleft() if self._queue else None

    def fail_all(self, error: BaseException) -> None:
        """Fail every waiting request with ``error``."""
        while (task := self.next()) is not None:
            fail(task, error)


class Slot:
    """A worker's place in the pool (the worker itself once it has started)."""

    __slots__ = ("dead", "in_flight", "retiring", "served", "starting", "timer", "worker")

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.in_flight: deque[Task] = deque()
        self.served = 0
        self.retiring = False
        self.dead = False
        self.timer: asyncio.TimerHandle | None = None
        self.starting: asyncio.Task[None] | None = None

    @property
    def usable(self) -> bool:
        """Started, alive, and not retiring."""
        return self.worker is not None and not self.dead and not self.retiring

    def arm_timer(self, on_timeout: Callable[[Slot, Task], None]) -> None:
        """Time the request the worker works on now (the oldest it holds), if it has a
        limit; ``on_timeout(slot, task)`` is called when it runs out."""
        self.timer = None
        if self.in_flight:
            head = self.in_flight[0]
            if head.timeout is not None:
                self.timer = asyncio.get_running_loop().call_later(
                    head.timeout, on_timeout, self, head
                )

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def take_all(self) -> list[Task]:
        """Mark the slot dead and hand back the requests it held (oldest first)."""
        self.dead = True
        self.stop_timer()
        tasks = list(self.in_flight)
        self.in_flight.clear()
        return tasks


def fail(task: Task, error: BaseException) -> None:
    """Fail ``task``'s future with ``error`` unless it is done (e.g. cancelled)."""
    if not task.future.done():
        task.future.set_exception(error)


def retrieve(future: asyncio.Future[Any]) -> None:
    """A done callback that marks a future's exception as retrieved."""
    if not future.cancelled():
        future.exception()
