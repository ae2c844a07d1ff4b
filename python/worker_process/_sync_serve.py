"""The worker's side of request/response, blocking: :func:`worker_process.sync.serve`."""

from __future__ import annotations

from ._replies import encode_error, encode_result

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["serve"]


def serve(handler: Callable[[bytes], Any], **connect_options: Any) -> None:
    """Connect to the parent and answer each request with ``handler(request)``, in order,
    until the parent ends its stream; then finish (blocking).

    As the asyncio :func:`worker_process.serve`, for a plain function: it returns
    ``bytes``/``bytearray``/``memoryview``, ``str`` or ``None``; an ``Exception`` it raises
    is sent back as an error reply and serving goes on. ``connect_options`` go to
    :func:`worker_process.sync.connect`.

    Raises:
        As :func:`worker_process.sync.connect`. A broken channel makes the worker exit 1.
    """
    from .sync import connect

    with connect(**connect_options) as conn:
        send = conn.send
        for message in conn:
            try:
                reply = encode_result(handler(message))
            except Exception as exc:
                reply = encode_error(exc)
            send(reply)
