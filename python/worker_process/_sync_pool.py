"""The blocking pool: :class:`worker_process.sync.Pool`. The asyncio :class:`Pool` runs on
an event loop in a thread of its own, so both pools behave alike by construction; callers
see only ``concurrent.futures`` futures and plain iterators."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._checks import check_count
from ._codec import BytesLike
from ._pool import UNSET, PoolOptions, check_payload
from ._pool import Pool as AsyncPool

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Pool"]

T = TypeVar("T")


class Pool:
    """A pool of ``size`` workers running ``file`` (blocking API).

    The options and behaviour are those of the asyncio :class:`worker_process.Pool`:
    ``size``, ``max_retries``, ``timeout``, ``max_requests_per_worker``, ``concurrency``,
    ``raw``, and every :func:`~worker_process.sync.create_worker` option. ``with
    Pool("worker.py") as pool:`` starts the workers (raising the start-up error, after
    reaping the others, if one cannot start); leaving the block calls :meth:`close`, or
    :meth:`terminate` if the block raised (Ctrl-C included). Methods may be called from any
    thread.
    """

    def __init__(
        self,
        file: str | os.PathLike[str],
        args: Sequence[str] = (),
        **options: Unpack[PoolOptions],
    ) -> None:
        self._pool = AsyncPool(file, args, **options)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ended = False
        # Requests submitted, not yet handed to the pool on the loop's thread.
        self._outbox: deque[tuple[BytesLike, concurrent.futures.Future[bytes], Any]] = deque()
        self._handoff_due = False
        # Guards the outbox, the hand-off flag and, with the pool ending, _ended.
        self._outbox_lock = threading.Lock()

    @property
    def size(self) -> int:
        """The number of workers."""
        return self._pool.size

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers running now."""
        return self._inspect(lambda pool: pool.pids, [])

    @property
    def queued(self) -> int:
        """Requests waiting for a worker."""
        return self._inspect(lambda pool: pool.queued, 0)

    def _inspect(self, read: Callable[[AsyncPool], T], default: T) -> T:
        # The pool's state belongs to its loop's thread: read it there.
        if self._loop is None or self._ended:
            return default
        pool = self._pool

        async def get() -> T:
            return read(pool)

        return self._call(get())

    def start(self) -> Pool:
        """Start every worker and wait for their handshakes. Idempotent.

        Raises:
            WorkerStartError, HandshakeTimeoutError, OSError: a worker could not start (the
                others were killed and reaped).
        """
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="worker-process-pool", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
        try:
            self._call(self._pool.start())
        except BaseException:
            self._end(self._pool.terminate)  # reaps what started, stops the loop
            raise
        return self

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def submit(
        self, data: BytesLike, *, timeout: float | None = UNSET
    ) -> concurrent.futures.Future[bytes]:
        """Run one request on a worker; return a :class:`concurrent.futures.Future` of its
        result. It fails as the asyncio :meth:`worker_process.Pool.submit` future does
        (:class:`RemoteError`, :class:`RequestTimeoutError`, :class:`NoReplyError`,
        :class:`PoolError`, ...).

        Raises:
            PoolError: the pool was closed, terminated or is broken.
            TypeError, PayloadTooLargeError: as the asyncio ``submit``.
        """
        check_payload(data)
        if self._loop is None:
            self.start()
        future: concurrent.futures.Future[bytes] = concurrent.futures.Future()
        with self._outbox_lock:
            if self._ended:
                raise self._pool._refusal()
            self._outbox.append((data, future, timeout))
            # One hop to the loop's thread per batch: requests submitted while a hand-off
            # is already due go with it.
            if not self._handoff_due:
                self._handoff_due = True
                assert self._loop is not None
                self._loop.call_soon_threadsafe(self._hand_off)
        return future

    def _hand_off(self) -> None:
        """On the loop's thread: submit every request waiting in the outbox to the pool, its
        outcome copied into its ``concurrent.futures`` future and a cancelled future's
        request cancelled in the pool."""
        with self._outbox_lock:
            self._handoff_due = False
            batch = list(self._outbox)
            self._outbox.clear()
        loop, pool = self._loop, self._pool
        assert loop is not None
        for data, target, timeout in batch:
            if target.cancelled():
                continue
            try:
                source = pool.submit(data, timeout=timeout)
            except Exception as exc:  # refused: closed, terminated, broken
                _settle(target, exc)
                continue
            source.add_done_callback(functools.partial(_copy_outcome, target))
            target.add_done_callback(functools.partial(_cancel_later, loop, source))

    def map(
        self,
        inputs: Iterable[BytesLike],
        *,
        window: int | None = None,
        timeout: float | None = UNSET,
    ) -> Iterator[bytes]:
        """The results for every input, in input order (a generator). ``inputs`` is read
        lazily, at most ``window`` requests (default ``2 * size * concurrency``) in flight or
        waiting to be yielded: an endless generator works in bounded memory. The first
        failure is raised at its place."""
        limit = self._window(window)
        pending: deque[concurrent.futures.Future[bytes]] = deque()
        source = iter(inputs)
        try:
            while True:
                for data in source:
                    pending.append(self.submit(data, timeout=timeout))
                    if len(pending) >= limit:
                        break
                if not pending:
                    return
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def imap_unordered(
        self,
        inputs: Iterable[BytesLike],
        *,
        window: int | None = None,
        timeout: float | None = UNSET,
    ) -> Iterator[bytes]:
        """As :meth:`map`, but each result is yielded as soon as it is ready."""
        limit = self._window(window)
        done: queue.SimpleQueue[concurrent.futures.Future[bytes]] = queue.SimpleQueue()
        outstanding: set[concurrent.futures.Future[bytes]] = set()
        source = iter(inputs)
        try:
            while True:
                for data in source:
                    future = self.submit(data, timeout=timeout)
                    outstanding.add(future)
                    future.add_done_callback(done.put)
                    if len(outstanding) >= limit:
                        break
                if not outstanding:
                    return
                future = done.get()
                outstanding.discard(future)
                yield future.result()
        finally:
            for future in outstanding:
                future.cancel()

    def _window(self, window: int | None) -> int:
        pool = self._pool
        return check_count("window", window or pool.size * pool.concurrency * 2, 1)

    def close(self) -> None:
        """Refuse new requests, finish the submitted ones, end every worker's stream and
        return once every worker has been reaped. Idempotent."""
        self._end(self._pool.close)

    def terminate(self) -> None:
        """Fail every pending request with :class:`PoolError`, kill every worker with
        SIGKILL, and return once all are reaped."""
        self._end(self._pool.terminate)

    def _end(self, how: Any) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or self._ended:
                self._ended = True
                return
        try:
            self._call(how())
        finally:
            with self._lock:
                if not self._ended:
                    with self._outbox_lock:
                        # No request is queued after this; one queued before was handed
                        # off ahead of the stop below, and refused by the pool.
                        self._ended = True
                    loop.call_soon_threadsafe(loop.stop)
                    assert thread is not None
                    thread.join()
                    # What the pool left on the loop (finished tasks' callbacks) runs now.
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    loop.close()

    def __enter__(self) -> Pool:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        (self.close if exc_type is None else self.terminate)()

    def __repr__(self) -> str:
        return repr(self._pool).replace("<Pool", "<sync.Pool", 1)


def _copy_outcome(target: concurrent.futures.Future[bytes], source: asyncio.Future[bytes]) -> None:
    """An asyncio done callback: ``source``'s outcome into the caller's ``target``."""
    if source.cancelled():
        target.cancel()
    elif (error := source.exception()) is not None:
        _settle(target, error)
    else:
        _settle(target, None, source.result())


def _settle(
    target: concurrent.futures.Future[bytes], error: BaseException | None, result: bytes = b""
) -> None:
    # InvalidStateError: the caller cancelled it meanwhile.
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if error is None:
            target.set_result(result)
        else:
            target.set_exception(error)


def _cancel_later(
    loop: asyncio.AbstractEventLoop, source: asyncio.Future[bytes], _: object
) -> None:
    """A ``concurrent.futures`` done callback: the caller cancelled the future, so cancel its
    request in the pool (from any thread; nothing to do once the loop is gone)."""
    if source.done():
        return
    # A closed loop: the pool ended and failed the request already.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(source.cancel)
