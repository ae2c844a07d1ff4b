"""The top of a three-process chain: starts ``lib_worker.py BEHAVIOUR`` (a worker that starts
a child of its own), learns the child's pid, tells the worker to die, and times how long its
own channel takes to end. Prints one JSON report.

Usage: ``top_parent.py nested|spawn-plain-then-die``
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from worker_process import EndOfStream, WorkerProcessError, create_worker

HERE = Path(__file__).resolve().parent


async def main(behaviour: str) -> None:
    out: dict[str, Any] = {"event": "top"}
    async with await create_worker(HERE / "lib_worker.py", [behaviour]) as worker:
        out["middle"] = worker.pid
        grandchild = int((await worker.recv()).decode())
        out["grandchild"] = grandchild
        start = time.monotonic()
        await worker.send(b"die")
        try:
            while True:
                await asyncio.wait_for(worker.recv(), 10)
        except EndOfStream:
            out["end"] = "EndOfStream"
        except (WorkerProcessError, TimeoutError, asyncio.TimeoutError) as exc:
            out["end"] = type(exc).__name__
        out["end_after"] = time.monotonic() - start
        try:
            await asyncio.wait_for(worker.lifetime, 10)
            out["lifetime"] = None
        except WorkerProcessError as exc:
            out["lifetime"] = type(exc).__name__
            out["returncode"] = getattr(exc, "returncode", None)
        out["grandchild_alive"] = os.path.exists(f"/proc/{grandchild}")
        if behaviour == "spawn-plain-then-die":
            os.kill(grandchild, signal.SIGKILL)  # a plain sleeper: nothing else ends it
        else:
            # The grandchild's parent is gone: it must exit (the reaper above reaps it).
            deadline = time.monotonic() + 10
            while os.path.exists(f"/proc/{grandchild}") and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            out["grandchild_gone_after"] = time.monotonic() - start
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
