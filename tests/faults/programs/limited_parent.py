"""A parent under an address-space limit (RLIMIT_AS), facing a worker that announces (or
sends) a payload bigger than that limit. Prints one JSON report: how ``recv`` and
``lifetime`` ended, how long it took, and how many records asyncio logged.

Usage: ``limited_parent.py LIMIT_MIB ROGUE_BEHAVIOUR [sync]`` (LIMIT_MIB 0: no limit;
``sync``: the blocking API's parent). Messages received before the failure are reported by
length.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

from worker_process import WorkerProcessError, create_worker

HERE = Path(__file__).resolve().parent


class Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def describe(exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(exc).__name__}
    for name in ("stage", "missing"):
        if hasattr(exc, name):
            out[name] = getattr(exc, name)
    if exc.__cause__ is not None:
        out["cause"] = describe(exc.__cause__)
    return out


def main_sync(behaviour: str) -> dict[str, Any]:
    from worker_process.sync import create_worker as create_sync_worker

    out: dict[str, Any] = {"event": "outcome", "messages": []}
    start = time.monotonic()
    with create_sync_worker(HERE / "rogue_worker.py", [behaviour]) as worker:
        worker.send(b"go")
        try:
            while True:
                out["messages"].append(len(worker.recv()))  # no timeout: the large path
        except (WorkerProcessError, TimeoutError) as exc:
            out["recv"] = describe(exc)
        out["recv_after"] = time.monotonic() - start
    try:
        worker.result(timeout=10)
        out["lifetime"] = None
    except WorkerProcessError as exc:
        out["lifetime"] = describe(exc)
    return out


async def main(behaviour: str) -> dict[str, Any]:
    out: dict[str, Any] = {"event": "outcome", "messages": []}
    start = time.monotonic()
    worker = await create_worker(HERE / "rogue_worker.py", [behaviour])
    await worker.send(b"go")
    try:
        while True:
            out["messages"].append(len(await asyncio.wait_for(worker.recv(), 20)))
    except (WorkerProcessError, TimeoutError, asyncio.TimeoutError) as exc:
        out["recv"] = describe(exc)
    out["recv_after"] = time.monotonic() - start
    await worker.close(timeout=1.0)
    try:
        await asyncio.wait_for(worker.lifetime, 10)
        out["lifetime"] = None
    except WorkerProcessError as exc:
        out["lifetime"] = describe(exc)
    return out


if __name__ == "__main__":
    limit = int(sys.argv[1]) << 20
    if limit:  # 0: no limit
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    counter = Count()
    logging.getLogger("asyncio").addHandler(counter)
    sync = sys.argv[3:] == ["sync"]
    report = main_sync(sys.argv[2]) if sync else asyncio.run(main(sys.argv[2]))
    report["asyncio_log_records"] = counter.count
    sys.stdout.write(json.dumps(report) + "\n")
