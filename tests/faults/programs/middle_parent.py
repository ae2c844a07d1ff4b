"""An intermediate parent: starts one worker, reports both pids, then waits to be killed.

Usage: ``middle_parent.py WORKER_FILE [ARGS ...]`` (a ``.js`` file runs under Node.js). The
worker's stdout is this process's stdout, so its reports reach whoever reads ours.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from worker_process import create_worker


async def main(file: str, args: list[str]) -> None:
    worker = await create_worker(file, args)
    sys.stdout.write(json.dumps({"event": "middle", "pid": os.getpid(), "worker": worker.pid})
                     + "\n")
    sys.stdout.flush()
    await asyncio.sleep(60)  # safety net: the test kills this process long before
    await worker.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
