"""Request/response over an asyncio :class:`~worker_process.Worker` (spec/requests.md):
the n-th reply belongs to the n-th request, so requests may be pipelined and any worker that
answers one-for-one works. Built on the worker's public surface (send, recv, onmessage,
wait, pid)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ._checks import check_limit
from ._codec import BytesLike
from ._errors import NoReplyError, RequestConflictError
from ._request_rules import (
    EXIT_STATUS_GRACE,
    NOTHING_SENT,
    SENT_MAYBE,
    STREAM_ENDS,
    copy_no_reply,
    no_reply,
    recv_conflict,
    timed_out,
)

if TYPE_CHECKING:
    from ._parent import Worker

__all__ = ["RequestQueue", "check_onmessage", "queue_of"]

_queues: weakref.WeakKeyDictionary[Worker, RequestQueue] = weakref.WeakKeyDictionary()


class RequestQueue:
    """The requests of one worker that wait for their replies, oldest first."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._pending: deque[asyncio.Future[bytes]] = deque()
        self._receiver: asyncio.Task[None] | None = None
        self._failure: NoReplyError | None = None
        self._stopping = False  # the receiver was cancelled because nothing is pending
        self._recv: Callable[[], Awaitable[bytes]] = worker.recv
        # While requests are pending, the worker's messages are their replies.
        worker.recv = self._guarded_recv  # type: ignore[method-assign]

    @property
    def pending(self) -> int:
        """Requests sent whose replies have not arrived (timed-out ones included)."""
        return len(self._pending)

    async def _guarded_recv(self) -> bytes:
        if self._pending:
            raise recv_conflict()
        return await self._recv()

    async def request(self, data: BytesLike, timeout: float | None) -> bytes:
        """See :meth:`worker_process.Worker.request`."""
        timeout = check_limit("timeout", timeout)
        if self._failure is not None:
            raise self._copy_failure()
        worker = self._worker
        if not self._pending and worker.onmessage is not None:
            raise RequestConflictError("request() cannot be used while onmessage is set")
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        # The future joins the queue and the frame is queued by send() before its first
        # suspension, in the same step: frames and futures keep the same order.
        self._pending.append(future)
        if self._receiver is None or self._receiver.done():
            self._start_receiver()
        try:
            await worker.send(data)
        except NOTHING_SENT:
            with contextlib.suppress(ValueError):
                self._pending.remove(future)  # nothing was sent
            future.cancel()
            if not self._pending and self._receiver is not None:
                self._stopping = True
                self._receiver.cancel()  # recv() is cancel-safe: no message is lost
            raise
        except SENT_MAYBE:
            pass  # the receiver explains what happened to the worker
        if timeout is None:
            return await future
        try:
            return await asyncio.wait_for(future, timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise timed_out(timeout, worker.pid) from None

    def _start_receiver(self) -> None:
        receiver = self._receiver = asyncio.get_running_loop().create_task(self._receive())
        receiver.add_done_callback(self._receiver_done)

    def _receiver_done(self, receiver: asyncio.Task[None]) -> None:
        # Also runs for a receiver cancelled before it started (its body never ran).
        if self._receiver is receiver:
            self._receiver = None
        if self._stopping and receiver.cancelled():
            self._stopping = False
            if self._pending and self._receiver is None:
                self._start_receiver()  # requests came while the cancellation was on its way

    async def _receive(self) -> None:
        while self._pending:
            try:
                message = await self._recv()
            except STREAM_ENDS as exc:
                await self._end(exc)
                return
            future = self._pending.popleft()
            if not future.done():
                future.set_result(message)

    async def _end(self, cause: BaseException) -> None:
        worker = self._worker
        returncode = worker.returncode
        if returncode is None:
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                returncode = await asyncio.wait_for(worker.wait(), EXIT_STATUS_GRACE)
        self._failure = no_reply(worker, worker.pid, returncode, cause)
        pending, self._pending = self._pending, deque()
        for future in pending:
            if not future.done():
                future.set_exception(self._copy_failure())

    def _copy_failure(self) -> NoReplyError:
        assert self._failure is not None
        return copy_no_reply(self._failure)


def check_onmessage(worker: Worker, handler: object) -> None:
    """Refuse a message callback while requests wait for their replies.

    Raises:
        RequestConflictError: requests are pending.
    """
    queue = _queues.get(worker)
    if handler is not None and queue is not None and queue.pending:
        raise RequestConflictError(
            "onmessage cannot be set while requests wait for their replies; wait for them first"
        )


def queue_of(worker: Worker) -> RequestQueue:
    """The worker's request queue (made on first use)."""
    queue = _queues.get(worker)
    if queue is None:
        queue = _queues[worker] = RequestQueue(worker)
    return queue
