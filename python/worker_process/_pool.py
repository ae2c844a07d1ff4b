"""A pool of worker processes answering requests, asyncio (spec/requests.md, section 3):
keeps ``size`` workers busy, replaces a worker that dies or times out, retries the request
it died on, recycles workers after a number of requests, and fails fast when workers
cannot start."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._checks import check_count, check_limit
from ._codec import BytesLike
from ._errors import PayloadTooLargeError, PoolError, RequestTimeoutError
from ._launch import WorkerOptions, check_options
from ._pool_stream import stream_results
from ._pool_tasks import Slot, Task, TaskQueue, fail, retrieve
from ._pool_workers import PoolWorkers
from ._replies import decode_reply
from ._wire import MAX_PAYLOAD

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Pool", "PoolOptions"]


class PoolOptions(WorkerOptions, total=False):
    """The keyword options of both pools: their own (see :class:`Pool`) and every
    :class:`WorkerOptions` option, passed on to each worker."""

    size: int | None
    max_retries: int
    timeout: float | None
    max_requests_per_worker: int | None
    concurrency: int
    raw: bool
    remotes: Sequence[str | Sequence[str] | None] | None


#: "Use the pool's default" for a ``timeout`` argument.
UNSET: Any = object()


def check_payload(data: object) -> None:
    """Refuse what no worker could be sent, before it takes a worker's place.

    Raises:
        TypeError: not bytes-like.
        PayloadTooLargeError: over the wire maximum.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"a request is bytes, bytearray or memoryview; got {type(data).__name__}")
    length = data.nbytes if isinstance(data, memoryview) else len(data)
    if length > MAX_PAYLOAD:
        raise PayloadTooLargeError(length=length, limit=MAX_PAYLOAD)


class Pool:
    """A pool of ``size`` workers running ``file``, each a request server (a
    :func:`~worker_process.serve` worker, or with ``raw=True`` any worker that answers each
    message with one message, in order).

    ``async with Pool("worker.py") as pool:`` starts every worker (and raises the start-up
    error, after reaping the others, if one cannot start); leaving the block calls
    :meth:`close`, or :meth:`terminate` if the block raised.

    Options (``create_worker_options`` go to :func:`~worker_process.create_worker` as they
    are, for every worker):

    - ``size``: workers (default ``os.cpu_count()``).
    - ``max_retries`` (default 1): a worker that exits, is killed or breaks while it holds
      requests is replaced; the request it was working on is retried on another worker up to
      ``max_retries`` times, then fails with the worker's death (:class:`NoReplyError` with
      ``returncode``/``signal``). Requests sent ahead to it are resent without counting.
    - ``timeout`` (seconds, default none; per request in :meth:`submit`): a request running
      longer fails with :class:`RequestTimeoutError`, and its worker is killed and replaced.
      The clock starts when the worker begins the request.
    - ``max_requests_per_worker`` (default none): a worker that served that many requests is
      closed cleanly once its last reply is in, and replaced.
    - ``concurrency`` (default 2): requests in flight on one worker (the next one waits in
      the worker's socket, so the worker never waits for the parent in between).
    - ``raw`` (default False): return replies as they are instead of decoding the served
      reply format (a :class:`RemoteError` for a handler's exception).
    - ``remotes`` (default none): one pool across hosts. A sequence of ``remote=`` targets
      (``"ssh://host"``, an argv prefix, or ``None`` for this host); each worker started, a
      replacement included, takes the next one in turn (README "Remote workers").

    A replacement that cannot start breaks the pool (no restart loop): waiting and later
    requests fail with :class:`PoolError` (``reason="broken"``, ``__cause__`` the start-up
    error).

    Raises:
        TypeError: an option neither the pool nor ``create_worker`` takes.
        ValueError: an option's value out of range (checked here: nothing is started yet).
    """

    def __init__(
        self,
        file: str | os.PathLike[str],
        args: Sequence[str] = (),
        *,
        size: int | None = None,
        max_retries: int = 1,
        timeout: float | None = None,
        max_requests_per_worker: int | None = None,
        concurrency: int = 2,
        raw: bool = False,
        remotes: Sequence[str | Sequence[str] | None] | None = None,
        **create_worker_options: Unpack[WorkerOptions],
    ) -> None:
        check_options(create_worker_options, "Pool")
        self.size = check_count("size", size if size is not None else os.cpu_count() or 1, 1)
        self.max_retries = check_count("max_retries", max_retries, 0)
        self.timeout = check_limit("timeout", timeout)
        limit = max_requests_per_worker
        self.max_requests_per_worker = (
            limit if limit is None else check_count("max_requests_per_worker", limit, 1)
        )
        self.concurrency = check_count("concurrency", concurrency, 1)
        self.raw = raw
        self._workers = PoolWorkers(
            file, args, dict(create_worker_options), remotes,
            on_started=self._on_started, on_failed=self._break, on_exit=self._on_idle_exit,
        )
        self._queue = TaskQueue()
        self._in_flight = 0
        self._state = "new"  # new, open, closing, closed, terminated, broken
        self._broken: PoolError | None = None
        self._idle: asyncio.Event | None = None
        self._start_task: asyncio.Task[None] | None = None

    # -- start-up ----------------------------------------------------------------------------

    async def start(self) -> Pool:
        """Start every worker and wait for their handshakes. Idempotent.

        Raises:
            WorkerStartError, HandshakeTimeoutError, OSError: a worker could not start (the
                others were killed and reaped).
        """
        if self._start_task is None:
            self._state = "open"
            self._start_task = asyncio.get_running_loop().create_task(self._start())
        await asyncio.shield(self._start_task)
        return self

    async def _start(self) -> None:
        slots = [self._workers.new_slot() for _ in range(self.size)]
        results = await asyncio.gather(
            *(slot.starting for slot in slots if slot.starting is not None),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                await self.terminate()
                raise result

    def _on_started(self, slot: Slot) -> None:
        if self._state == "terminated":
            self._kill(slot)
        else:
            self._dispatch()

    def _on_idle_exit(self, slot: Slot) -> None:
        # A worker that dies between requests is replaced at once, so that no request is
        # charged for it. One that holds requests is handled when they fail.
        if slot.dead or slot.in_flight:
            return
        self._kill(slot)
        self._replace()

    def _break(self, exc: BaseException) -> None:
        if self._state in ("terminated", "broken"):
            return
        error = PoolError(f"a worker failed to start: {exc}", reason="broken")
        error.__cause__ = exc
        self._broken = error
        self._state = "broken"
        self._queue.fail_all(error)
        self._check_idle()

    # -- requests ----------------------------------------------------------------------------

    def submit(self, data: BytesLike, *, timeout: float | None = UNSET) -> asyncio.Future[bytes]:
        """Run one request on a worker; return the future of its result (awaitable).

        The future fails with the handler's :class:`RemoteError` (not retried), a
        :class:`RequestTimeoutError`, the worker's death (:class:`NoReplyError`, after
        ``max_retries`` retries), a :class:`ReplyFormatError`, or a :class:`PoolError`
        (closed, terminated, broken).

        Raises:
            PoolError: the pool was closed, terminated or is broken (also as the future's
                error when it was not started with ``async with``/:meth:`start`).
            TypeError: ``data`` is not ``bytes``, ``bytearray`` or ``memoryview``.
            PayloadTooLargeError: ``data`` is longer than a message can be.
        """
        check_payload(data)
        loop = asyncio.get_running_loop()
        if self._state == "new":
            loop.create_task(self.start()).add_done_callback(retrieve)
        elif self._state != "open":
            raise self._refusal()
        limit = self.timeout if timeout is UNSET else check_limit("timeout", timeout)
        future: asyncio.Future[bytes] = loop.create_future()
        self._queue.add(data, future, limit)
        self._dispatch()
        return future

    def _refusal(self) -> PoolError:
        if self._state == "broken":
            assert self._broken is not None
            return self._broken
        if self._state == "terminated":
            return PoolError("the pool was terminated", reason="terminated")
        return PoolError("the pool is closed", reason="closed")

    def _dispatch(self) -> None:
        while self._queue:
            best: Slot | None = None
            for slot in self._workers.slots:
                if not slot.usable or len(slot.in_flight) >= self.concurrency:
                    continue
                if best is None or len(slot.in_flight) < len(best.in_flight):
                    best = slot
            if best is None:
                return
            task = self._queue.next()
            assert task is not None
            if task.future.done():  # cancelled by its caller before it started
                continue
            self._send(best, task)

    def _send(self, slot: Slot, task: Task) -> None:
        worker = slot.worker
        assert worker is not None
        slot.in_flight.append(task)
        slot.served += 1
        self._in_flight += 1
        if len(slot.in_flight) == 1:
            slot.arm_timer(self._on_timeout)
        limit = self.max_requests_per_worker
        if limit is not None and slot.served >= limit:
            slot.retiring = True
        reply = asyncio.get_running_loop().create_task(worker.request(task.data))
        reply.add_done_callback(lambda done: self._on_done(slot, task, done))

    def _on_done(self, slot: Slot, task: Task, done: asyncio.Task[bytes]) -> None:
        if slot.dead:
            if not done.cancelled():
                done.exception()
            return
        exc = done.exception()
        if exc is not None:
            self._on_worker_lost(slot, exc)
            return
        slot.in_flight.popleft()
        self._in_flight -= 1
        slot.stop_timer()
        slot.arm_timer(self._on_timeout)
        if not task.future.done():
            if self.raw:
                task.future.set_result(done.result())
            else:
                try:
                    task.future.set_result(decode_reply(done.result()))
                except Exception as error:  # RemoteError, ReplyFormatError
                    task.future.set_exception(error)
        if slot.retiring and not slot.in_flight:
            self._workers.retire(slot)
            self._replace()  # dispatches, checks idle
        else:
            self._dispatch()
            self._check_idle()

    def _on_worker_lost(self, slot: Slot, exc: BaseException) -> None:
        """The worker died, ended its stream or broke: retry its requests elsewhere."""
        tasks = self._kill(slot)
        if tasks:
            # It answers in order, so it was working on the oldest request; the others never
            # started and go back without counting an attempt.
            head, rest = tasks[0], tasks[1:]
            head.attempts += 1
            if head.attempts > self.max_retries or self._state == "terminated":
                fail(head, exc)
            else:
                self._queue.requeue(head)
            for task in rest:
                self._queue.requeue(task)
        self._replace()

    def _on_timeout(self, slot: Slot, head: Task) -> None:
        if slot.dead or not slot.in_flight or slot.in_flight[0] is not head:
            return
        assert slot.worker is not None and head.timeout is not None
        pid = slot.worker.pid
        tasks = self._kill(slot)
        fail(
            head,
            RequestTimeoutError(
                f"no reply within {head.timeout} s (worker {pid} was killed and replaced)",
                timeout=head.timeout,
                pid=pid,
            ),
        )
        for task in tasks[1:]:
            self._queue.requeue(task)
        self._replace()

    def _kill(self, slot: Slot) -> list[Task]:
        """Kill a slot's worker and forget the slot; return the requests it held."""
        tasks = self._workers.kill(slot)
        self._in_flight -= len(tasks)
        return tasks

    def _replace(self) -> None:
        if self._state == "open" or (self._state == "closing" and len(self._queue)):
            self._workers.new_slot()
        elif self._state == "broken":
            assert self._broken is not None
            self._queue.fail_all(self._broken)
        self._dispatch()
        self._check_idle()

    def _check_idle(self) -> None:
        if self._idle is not None and not self._in_flight and not len(self._queue):
            self._idle.set()

    # -- many requests -----------------------------------------------------------------------

    def map(
        self,
        inputs: Iterable[BytesLike] | AsyncIterable[BytesLike],
        *,
        window: int | None = None,
        timeout: float | None = UNSET,
    ) -> AsyncIterator[bytes]:
        """The results for every input, in input order (an async generator).

        ``inputs`` (iterable or async iterable) is read lazily: at most ``window`` requests
        (default ``2 * size * concurrency``) are in flight or waiting to be yielded, so an
        endless generator works in bounded memory. The first failure is raised at its place;
        leaving the loop early stops reading the inputs (requests in flight still finish).
        """
        return stream_results(self, inputs, window, timeout, ordered=True)

    def imap_unordered(
        self,
        inputs: Iterable[BytesLike] | AsyncIterable[BytesLike],
        *,
        window: int | None = None,
        timeout: float | None = UNSET,
    ) -> AsyncIterator[bytes]:
        """As :meth:`map`, but each result is yielded as soon as it is ready."""
        return stream_results(self, inputs, window, timeout, ordered=False)

    # -- ending ------------------------------------------------------------------------------

    async def close(self) -> None:
        """Refuse new requests, finish the submitted ones (retries and replacements
        included), end every worker's stream (a ``serve()`` worker finishes and exits 0),
        and return once every worker the pool started has been reaped."""
        if self._state in ("new", "open"):
            self._state = "closing"
        if self._start_task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._start_task)
        if self._state in ("closing", "broken"):
            self._idle = asyncio.Event()
            self._check_idle()
            await self._idle.wait()
        if self._state == "closing":
            self._state = "closed"
        await self._workers.close_all()

    async def terminate(self) -> None:
        """Fail every pending request with :class:`PoolError` (``reason="terminated"``),
        kill every worker with SIGKILL, and return once all are reaped."""
        self._state = "terminated"
        error = PoolError("the pool was terminated", reason="terminated")
        self._queue.fail_all(error)
        slots = list(self._workers.slots)
        for slot in slots:
            if slot.starting is None:
                for task in self._kill(slot):
                    fail(task, error)
        self._check_idle()
        await self._workers.reap_all([s.starting for s in slots if s.starting is not None])

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers running now."""
        return self._workers.pids

    @property
    def queued(self) -> int:
        """Requests waiting for a worker."""
        return len(self._queue)

    async def __aenter__(self) -> Pool:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        await (self.close() if exc_type is None else self.terminate())

    def __repr__(self) -> str:
        return f"<Pool {self._state} size={self.size} workers={len(self.pids)}>"


