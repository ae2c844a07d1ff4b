"""The worker's side of request/response, asyncio: :func:`serve`."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from ._replies import encode_error, encode_result
from ._worker import connect

__all__ = ["serve"]

Handler = Callable[[bytes], "Awaitable[Any] | Any"]


async def serve(handler: Handler, **connect_options: Any) -> None:
    """Connect to the parent and answer each request with ``handler(request)``, one at a
    time, in order, until the parent ends its stream; then finish (the process may exit 0).

    ``handler`` takes the request (``bytes``) and returns, or for an ``async def`` handler
    resolves to, ``bytes``/``bytearray``/``memoryview``, a ``str`` (sent as UTF-8) or
    ``None`` (nothing). Each reply is ``0x00`` + the result; if the handler raises an
    ``Exception``, the reply is ``0x01`` + UTF-8 JSON ``{"type", "message", "traceback"}``
    and serving goes on (spec/requests.md). A parent's :class:`~worker_process.Pool` turns
    it into a :class:`~worker_process.RemoteError`. ``connect_options`` go to
    :func:`~worker_process.connect`.

    Raises:
        As :func:`~worker_process.connect`. A broken channel makes the worker exit 1.
    """
    conn = await connect(**connect_options)
    async for message in conn:
        try:
            result = handler(message)
            if inspect.isawaitable(result):
                result = await result
            reply = encode_result(result)
        except Exception as exc:
            reply = encode_error(exc)
        await conn.send(reply)
    await conn.finish()
