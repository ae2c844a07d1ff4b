"""A pool's ``map`` and ``imap_unordered``: many inputs through :meth:`Pool.submit` with a
bounded window of requests in flight or waiting to be yielded, so that an endless input
generator runs in bounded memory."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable
from typing import TYPE_CHECKING

from ._checks import check_count
from ._codec import BytesLike
from ._pool_tasks import retrieve

if TYPE_CHECKING:
    from ._pool import Pool

__all__ = ["stream_results"]


async def stream_results(
    pool: Pool,
    inputs: Iterable[BytesLike] | AsyncIterable[BytesLike],
    window: int | None,
    timeout: float | None,
    *,
    ordered: bool,
) -> AsyncIterator[bytes]:
    """The result of every input, in input order (``ordered``) or as they come; the first
    failure is raised at its place. Leaving early stops reading the inputs (requests in
    flight still finish).

    Raises:
        ValueError: ``window`` is not a positive integer.
    """
    limit = check_count("window", window or pool.size * pool.concurrency * 2, 1)
    await pool.start()
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
                pending.append(pool.submit(data, timeout=timeout))
            if not pending:
                return
            if ordered:
                future = pending.popleft()
                await asyncio.wait((future,))
            else:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                future = next(f for f in pending if f in done)
                pending.remove(future)
            yield future.result()
    finally:
        for future in pending:
            future.add_done_callback(retrieve)
        await source.aclose()


async def _aiter(
    inputs: Iterable[BytesLike] | AsyncIterable[BytesLike],
) -> AsyncGenerator[BytesLike, None]:
    if isinstance(inputs, AsyncIterable):
        async for item in inputs:
            yield item
    else:
        for item in inputs:
            yield item
