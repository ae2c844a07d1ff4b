"""A pool of worker processes answering requests, asyncio (spec/requests.md, section 3):
keeps ``size`` workers busy, replaces a worker that dies or times out, retries the request
it died on, recycles workers after a number of requests, and fails fast when workers
cannot start."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import signal as _signal
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Sequence
from types import TracebackType
from typing import Any

from ._checks import check_limit
from ._codec import BytesLike
from ._errors import PayloadTooLargeError, PoolError, RequestTimeoutError
from ._parent import Worker, create_worker
from ._replies import decode_reply
from ._wire import MAX_PAYLOAD

__all__ = ["Pool"]


#: "Use the pool's default" for a ``timeout`` argument.
UNSET: Any = object()


def count_option(name: str, value: object, minimum: int) -> int:
    """``value`` checked as an integer option.

    Raises:
        ValueError: not an integer, or below ``minimum``.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return value


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


class _Task:
    __slots__ = ("attempts", "data", "future", "seq", "timeout")

    def __init__(
        self, data: BytesLike, future: asyncio.Future[bytes], timeout: float | None, seq: int
    ) -> None:
        self.data = data
        self.future = future
        self.timeout = timeout
        self.seq = seq
        self.attempts = 0

    def __lt__(self, other: _Task) -> bool:
        return self.seq < other.seq


class _Slot:
    __slots__ = ("dead", "in_flight", "retiring", "served", "starting", "timer", "worker")

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.in_flight: deque[_Task] = deque()
        self.served = 0
        self.retiring = False
        self.dead = False
        self.timer: asyncio.TimerHandle | None = None
        self.starting: asyncio.Task[None] | None = None


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
        **create_worker_options: Any,
    ) -> None:
        self.size = count_option("size", size if size is not None else os.cpu_count() or 1, 1)
        self.max_retries = count_option("max_retries", max_retries, 0)
        self.timeout = check_limit("timeout", timeout)
        self.max_requests_per_worker = (
            None
            if max_requests_per_worker is None
            else count_option("max_requests_per_worker", max_requests_per_worker, 1)
        )
        self.concurrency = count_option("concurrency", concurrency, 1)
        self.raw = raw
        self._file = file
        self._args = list(args)
        self._options = create_worker_options
        if remotes is not None:
            if isinstance(remotes, str) or not remotes:
                raise ValueError("remotes must be a non-empty sequence of remote= targets")
            if "remote" in create_worker_options:
                raise ValueError("give remote= (every worker) or remotes= (in turn), not both")
        self._remotes = None if remotes is None else list(remotes)
        self._started = 0
        self._queue: deque[_Task] = deque()
        self._front: list[_Task] = []  # requeued tasks, in submission order
        self._slots: set[_Slot] = set()
        self._seq = 0
        self._in_flight = 0
        self._state = "new"  # new, open, closing, closed, terminated, broken
        self._broken: PoolError | None = None
        self._closing: set[asyncio.Task[Any]] = set()
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
        slots = [self._new_slot() for _ in range(self.size)]
        results = await asyncio.gather(
            *(slot.starting for slot in slots if slot.starting is not None),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                await self.terminate()
                raise result

    def _new_slot(self) -> _Slot:
        slot = _Slot()
        self._slots.add(slot)
        slot.starting = asyncio.get_running_loop().create_task(self._start_worker(slot))
        slot.starting.add_done_callback(_retrieve)
        return slot

    async def _start_worker(self, slot: _Slot) -> None:
        try:
            options = self._options
            if self._remotes is not None:
                remote = self._remotes[self._started % len(self._remotes)]
                options = {**options, "remote": remote}
            self._started += 1
            worker = await create_worker(self._file, self._args, **options)
        except BaseException as exc:
            slot.starting = None
            self._slots.discard(slot)
            self._break(exc)
            raise
        slot.starting = None
        slot.worker = worker
        self._track(worker)
        worker.lifetime.add_done_callback(lambda _: self._on_idle_exit(slot))
        if self._state == "terminated":
            self._kill(slot)
        else:
            self._dispatch()

    def _on_idle_exit(self, slot: _Slot) -> None:
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
        self._fail_queued(error)
        self._check_idle()

    def _track(self, worker: Worker) -> None:
        # Reaped once its exit status is in; close() releases the rest.
        task = asyncio.get_running_loop().create_task(worker.wait())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

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
            loop.create_task(self.start()).add_done_callback(_retrieve)
        elif self._state != "open":
            raise self._refusal()
        limit = self.timeout if timeout is UNSET else check_limit("timeout", timeout)
        future: asyncio.Future[bytes] = loop.create_future()
        self._queue.append(_Task(data, future, limit, self._seq))
        self._seq += 1
        self._dispatch()
        return future

    def _refusal(self) -> PoolError:
        if self._state == "broken":
            assert self._broken is not None
            return self._broken
        if self._state == "terminated":
            return PoolError("the pool was terminated", reason="terminated")
        return PoolError("the pool is closed", reason="closed")

    def _next_task(self) -> _Task | None:
        if self._front:
            return self._front.pop(0)
        return self._queue.popleft() if self._queue else None

    def _queued(self) -> int:
        return len(self._front) + len(self._queue)

    def _dispatch(self) -> None:
        while self._queued():
            best: _Slot | None = None
            for slot in self._slots:
                if slot.worker is None or slot.dead or slot.retiring:
                    continue
                if len(slot.in_flight) >= self.concurrency:
                    continue
                if best is None or len(slot.in_flight) < len(best.in_flight):
                    best = slot
            if best is None:
                return
            task = self._next_task()
            assert task is not None
            if task.future.done():  # cancelled by its caller before it started
                continue
            self._send(best, task)

    def _send(self, slot: _Slot, task: _Task) -> None:
        worker = slot.worker
        assert worker is not None
        slot.in_flight.append(task)
        slot.served += 1
        self._in_flight += 1
        if len(slot.in_flight) == 1:
            self._arm_timer(slot)
        limit = self.max_requests_per_worker
        if limit is not None and slot.served >= limit:
            slot.retiring = True
        reply = asyncio.get_running_loop().create_task(worker.request(task.data))
        reply.add_done_callback(lambda done: self._on_done(slot, task, done))

    def _arm_timer(self, slot: _Slot) -> None:
        slot.timer = None
        if not slot.in_flight:
            return
        head = slot.in_flight[0]
        if head.timeout is not None:
            slot.timer = asyncio.get_running_loop().call_later(
                head.timeout, self._on_timeout, slot, head
            )

    def _on_done(self, slot: _Slot, task: _Task, done: asyncio.Task[bytes]) -> None:
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
        if slot.timer is not None:
            slot.timer.cancel()
        self._arm_timer(slot)
        if not task.future.done():
            if self.raw:
                task.future.set_result(done.result())
            else:
                try:
                    task.future.set_result(decode_reply(done.result()))
                except Exception as error:  # RemoteError, ReplyFormatError
                    task.future.set_exception(error)
        if slot.retiring and not slot.in_flight:
            self._retire(slot)
        self._dispatch()
        self._check_idle()

    def _on_worker_lost(self, slot: _Slot, exc: BaseException) -> None:
        """The worker died, ended its stream or broke: retry its requests elsewhere."""
        tasks = self._kill(slot)
        if tasks:
            # It answers in order, so it was working on the oldest request; the others never
            # started and go back without counting an attempt.
            head, rest = tasks[0], tasks[1:]
            head.attempts += 1
            if head.attempts > self.max_retries or self._state == "terminated":
                _fail(head, exc)
            else:
                self._requeue(head)
            for task in rest:
                self._requeue(task)
        self._replace()

    def _on_timeout(self, slot: _Slot, head: _Task) -> None:
        if slot.dead or not slot.in_flight or slot.in_flight[0] is not head:
            return
        assert slot.worker is not None and head.timeout is not None
        pid = slot.worker.pid
        tasks = self._kill(slot)
        _fail(
            head,
            RequestTimeoutError(
                f"no reply within {head.timeout} s (worker {pid} was killed and replaced)",
                timeout=head.timeout,
                pid=pid,
            ),
        )
        for task in tasks[1:]:
            self._requeue(task)
        self._replace()

    def _requeue(self, task: _Task) -> None:
        bisect.insort(self._front, task)

    def _kill(self, slot: _Slot) -> list[_Task]:
        """Kill a slot's worker and forget the slot; return the requests it held."""
        slot.dead = True
        if slot.timer is not None:
            slot.timer.cancel()
        self._slots.discard(slot)
        tasks = list(slot.in_flight)
        slot.in_flight.clear()
        self._in_flight -= len(tasks)
        if slot.worker is not None:
            slot.worker.kill(_signal.SIGKILL)
            self._close_worker(slot.worker)
        return tasks

    def _close_worker(self, worker: Worker) -> None:
        task = asyncio.get_running_loop().create_task(worker.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        task.add_done_callback(_retrieve)

    def _retire(self, slot: _Slot) -> None:
        slot.dead = True
        self._slots.discard(slot)
        assert slot.worker is not None
        self._close_worker(slot.worker)
        self._replace()

    def _replace(self) -> None:
        if self._state == "open" or (self._state == "closing" and self._queued()):
            self._new_slot()
        elif self._state == "broken":
            assert self._broken is not None
            self._fail_queued(self._broken)
        self._dispatch()
        self._check_idle()

    def _fail_queued(self, error: BaseException) -> None:
        while (task := self._next_task()) is not None:
            _fail(task, error)

    def _check_idle(self) -> None:
        if self._idle is not None and not self._in_flight and not self._queued():
            self._idle.set()

    # -- many requests -----------------------------------------------------------------------

    async def map(
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
        async for future in self._results(inputs, window, timeout, ordered=True):
            yield future.result()

    async def imap_unordered(
        self,
        inputs: Iterable[BytesLike] | AsyncIterable[BytesLike],
        *,
        window: int | None = None,
        timeout: float | None = UNSET,
    ) -> AsyncIterator[bytes]:
        """As :meth:`map`, but each result is yielded as soon as it is ready."""
        async for future in self._results(inputs, window, timeout, ordered=False):
            yield future.result()

    async def _results(
        self,
        inputs: Iterable[BytesLike] | AsyncIterable[BytesLike],
        window: int | None,
        timeout: float | None,
        *,
        ordered: bool,
    ) -> AsyncIterator[asyncio.Future[bytes]]:
        limit = count_option("window", window or self.size * self.concurrency * 2, 1)
        await self.start()
        source = _aiter(inputs)
        pending: deque[asyncio.Future[bytes]] = deque()
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < limit:
                    try:
                        data = await source.__anext__()
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    pending.append(self.submit(data, timeout=timeout))
                if not pending:
                    return
                if ordered:
                    future = pending.popleft()
                    await asyncio.wait((future,))
                else:
                    done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    future = next(f for f in pending if f in done)
                    pending.remove(future)
                yield future
        finally:
            for future in pending:
                future.add_done_callback(_retrieve)
            await source.aclose()

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
        for slot in list(self._slots):
            if slot.starting is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(slot.starting)
            if slot.worker is None or slot.dead:
                continue
            slot.dead = True
            self._slots.discard(slot)
            self._close_worker(slot.worker)
        await self._reap_all()

    async def terminate(self) -> None:
        """Fail every pending request with :class:`PoolError` (``reason="terminated"``),
        kill every worker with SIGKILL, and return once all are reaped."""
        self._state = "terminated"
        error = PoolError("the pool was terminated", reason="terminated")
        self._fail_queued(error)
        starting = []
        for slot in list(self._slots):
            if slot.starting is not None:
                starting.append(slot.starting)
                continue
            for task in self._kill(slot):
                _fail(task, error)
        self._check_idle()
        for start in starting:  # those that start are killed at once
            with contextlib.suppress(BaseException):
                await asyncio.shield(start)
        await self._reap_all()

    async def _reap_all(self) -> None:
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers running now."""
        return [s.worker.pid for s in self._slots if s.worker is not None and not s.dead]

    @property
    def queued(self) -> int:
        """Requests waiting for a worker."""
        return self._queued()

    async def __aenter__(self) -> Pool:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.terminate()

    def __repr__(self) -> str:
        return f"<Pool {self._state} size={self.size} workers={len(self.pids)}>"


def _fail(task: _Task, error: BaseException) -> None:
    if not task.future.done():
        task.future.set_exception(error)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _aiter(
    inputs: Iterable[BytesLike] | AsyncIterable[BytesLike],
) -> AsyncGenerator[BytesLike, None]:
    if isinstance(inputs, AsyncIterable):
        async for item in inputs:
            yield item
    else:
        for item in inputs:
            yield item

