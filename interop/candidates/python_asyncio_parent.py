"""Conformance candidate: the parent contract (spec/conformance.md) on the asyncio API.

    python -m worker_process conformance parent -- \
        python interop/candidates/python_asyncio_parent.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from worker_process import (
    BrokenResourceError,
    ProtocolError,
    WorkerExitError,
    WorkerProcessError,
    create_worker,
)

CONTROL = b"\xffconformance:"
CLOSE = CONTROL + b"close"
QUIET = CONTROL + b"quiet"


def report(outcome: str, **fields: Any) -> None:
    print(json.dumps({"outcome": outcome, **fields}), flush=True)


async def main() -> None:
    argv = json.loads(os.environ["WORKER_PROCESS_PROBE"])
    limit = os.environ.get("WORKER_PROCESS_MAX_MESSAGE_SIZE")
    close_timeout = float(os.environ.get("WORKER_PROCESS_CLOSE_TIMEOUT", "5"))
    options: dict[str, Any] = {"max_message_size": int(limit)} if limit else {}
    try:
        worker = await create_worker(argv[0], argv[1:], is_command=True, **options)
    except WorkerProcessError as exc:
        report("start_failed", error=f"{type(exc).__name__}: {exc}")
        return
    messages = nbytes = 0
    echo = True
    closing: asyncio.Task[None] | None = None
    with contextlib.suppress(WorkerProcessError):
        await worker.send(b"hello")
    with contextlib.suppress(WorkerProcessError):  # the lifetime says what went wrong
        async for message in worker:
            if message == CLOSE:
                echo = False
                closing = asyncio.create_task(worker.close(timeout=close_timeout))
            elif message == QUIET:
                echo = False
            else:
                messages += 1
                nbytes += len(message)
                if echo:
                    with contextlib.suppress(WorkerProcessError):
                        await worker.send(message)
    counts = {"messages": messages, "bytes": nbytes}
    try:
        await worker.lifetime
    except BrokenResourceError as exc:
        if isinstance(exc.__cause__, ProtocolError):
            report("protocol_error", error=str(exc.__cause__), **counts)
        else:
            report("error", error=str(exc), **counts)
    except WorkerExitError as exc:
        if exc.signal is not None:
            report("killed", signal=exc.signal, returncode=exc.returncode, **counts)
        else:
            report("exited", returncode=exc.returncode, **counts)
    except WorkerProcessError as exc:
        report("error", error=f"{type(exc).__name__}: {exc}", **counts)
    else:
        report("ok", returncode=0, **counts)
    finally:
        if closing is not None:
            await closing
        await worker.close()


if __name__ == "__main__":
    asyncio.run(main())
