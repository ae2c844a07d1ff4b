"""asyncio side of :mod:`._exit_reason`: explaining a worker's death on ``send``/``recv``,
and forwarding its stderr tail from the event loop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from ._exit_reason import EXIT_STATUS_GRACE, StderrTail, exit_error

if TYPE_CHECKING:
    from ._parent import Worker

__all__ = ["explain", "watch_tail"]


async def explain(worker: Worker, exc: BaseException) -> BaseException:
    """What to raise instead of ``exc`` (the stream ended or broke): waits up to
    :data:`EXIT_STATUS_GRACE` for the exit status, then :func:`exit_error`."""
    if worker.returncode is None:
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(worker.wait(), EXIT_STATUS_GRACE)
    return exit_error(worker, exc)


def watch_tail(worker: Worker, tail: StderrTail) -> None:
    """Forward the worker's stderr from the running loop; stop at its end or at the worker's
    exit (what is left is read then)."""
    loop = asyncio.get_running_loop()
    fd = tail.fd

    def readable() -> None:
        tail.pump()
        if tail.eof:
            stop()

    def stop(_: object = None) -> None:
        if tail.fd >= 0:
            loop.remove_reader(fd)
            tail.close()

    loop.add_reader(fd, readable)
    exited = loop.create_task(worker.wait())
    exited.add_done_callback(stop)
