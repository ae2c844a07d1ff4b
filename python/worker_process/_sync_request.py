"""Request/response over a blocking :class:`worker_process.sync.Worker`
(spec/requests.md): the n-th reply belongs to the n-th request. Threads may call
``request`` at once: their requests are pipelined, and whichever caller waits receives
replies for all of them, in order."""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING

from . import _request_rules as rules
from ._checks import check_limit
from ._codec import BytesLike
from ._errors import NoReplyError

if TYPE_CHECKING:
    from .sync import Worker

__all__ = ["SyncRequestQueue", "queue_of"]

_queues: weakref.WeakKeyDictionary[Worker, SyncRequestQueue] = weakref.WeakKeyDictionary()
_queues_lock = threading.Lock()


class _Entry:
    __slots__ = ("done", "error", "reply")

    def __init__(self) -> None:
        self.done = False
        self.reply = b""
        self.error: BaseException | None = None


class SyncRequestQueue:
    """The requests of one worker that wait for their replies, oldest first."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._pending: deque[_Entry] = deque()
        self._state = threading.Condition(threading.Lock())
        self._send_lock = threading.Lock()
        self._receiving = False
        self._failure: NoReplyError | None = None
        self._recv: Callable[[float | None], bytes] = worker.recv
        # While requests are pending, the worker's messages are their replies.
        worker.recv = self._guarded_recv  # type: ignore[method-assign]

    def _guarded_recv(self, timeout: float | None = None) -> bytes:
        if self._pending:
            raise rules.recv_conflict()
        return self._recv(timeout)

    def request(self, data: BytesLike, timeout: float | None) -> bytes:
        """See :meth:`worker_process.sync.Worker.request`."""
        timeout = check_limit("timeout", timeout)
        deadline = None if timeout is None else monotonic() + timeout
        entry = _Entry()
        with self._send_lock:  # frames and entries keep the same order
            with self._state:
                if self._failure is not None:
                    raise self._copy_failure()
                self._pending.append(entry)
            try:
                self._worker.send(data)
            except rules.NOTHING_SENT:
                with self._state:
                    self._pending.remove(entry)  # nothing was sent
                raise
            except rules.SENT_MAYBE:
                pass  # receiving explains what happened to the worker
        with self._state:
            while not entry.done:
                if not self._receiving:
                    self._receiving = True
                    break
                left = None if deadline is None else deadline - monotonic()
                if left is not None and left <= 0:
                    raise rules.timed_out(timeout, self._worker.pid)
                self._state.wait(left)
            else:
                return self._outcome(entry)
        try:
            self._receive_until(entry, deadline, timeout)
        finally:
            with self._state:
                self._receiving = False
                self._state.notify_all()
        return self._outcome(entry)

    def _receive_until(self, entry: _Entry, deadline: float | None, timeout: float | None) -> None:
        while not entry.done:
            left = None if deadline is None else deadline - monotonic()
            if left is not None and left <= 0:
                raise rules.timed_out(timeout, self._worker.pid)
            try:
                message = self._recv(left)
            except TimeoutError:
                raise rules.timed_out(timeout, self._worker.pid) from None
            except rules.STREAM_ENDS as exc:
                self._end(exc)
                return
            with self._state:
                head = self._pending.popleft()
                head.reply = message
                head.done = True
                self._state.notify_all()

    def _end(self, cause: BaseException) -> None:
        worker = self._worker
        try:
            returncode: int | None = worker.wait(rules.EXIT_STATUS_GRACE)
        except TimeoutError:
            returncode = None
        failure = rules.no_reply(worker, worker.pid, returncode, cause)
        with self._state:
            self._failure = failure
            pending, self._pending = self._pending, deque()
            for entry in pending:
                entry.error = self._copy_failure()
                entry.done = True
            self._state.notify_all()

    def _outcome(self, entry: _Entry) -> bytes:
        if entry.error is not None:
            raise entry.error
        return entry.reply

    def _copy_failure(self) -> NoReplyError:
        assert self._failure is not None
        return rules.copy_no_reply(self._failure)


def queue_of(worker: Worker) -> SyncRequestQueue:
    """The worker's request queue (made on first use)."""
    with _queues_lock:
        queue = _queues.get(worker)
        if queue is None:
            queue = _queues[worker] = SyncRequestQueue(worker)
        return queue
