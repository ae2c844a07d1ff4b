"""The blocking pool: :class:`worker_process.sync.Pool`. The asyncio :class:`Pool` runs on
an event loop in a thread of its own, so both pools behave alike by construction; callers
see only ``concurrent.futures`` futures and plain iterators."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._checks import check_count
from ._codec import BytesLike
from ._errors import PoolError
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
            PoolError: the pool was closed or terminated.
            TypeError, PayloadTooLargeError: as the asyncio ``submit``.
        """
        check_payload(data)
        if self._loop is None:
            self.start()
        if self._ended:
            raise PoolError("the pool is closed", reason="closed")
        pool = self._pool

        async def run() -> bytes:
            return await pool.submit(data, timeout=timeout)

        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(run(), self._loop)

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
