"""A parent with a pool, for the SIGINT and parent-death tests: ``pool_driver.py aio|sync``.

Starts a pool of two blocking serve() workers, prints ``{"event": "pids", "pids": [...]}``
as one JSON line, keeps one of them busy with a long request and waits (until it is
interrupted or killed)."""

import asyncio
import json
import sys
from pathlib import Path

import worker_process
from worker_process import sync

WORKER = str(Path(__file__).with_name("pool_serve_sync.py"))


async def main_aio() -> None:
    async with worker_process.Pool(WORKER, size=2) as pool:
        pids = sorted({int(await pool.submit(b"pid")) for _ in range(8)} | set(pool.pids))
        print(json.dumps({"event": "pids", "pids": pids}), flush=True)
        await pool.submit(b"sleep:600:done")


def main_sync() -> None:
    with sync.Pool(WORKER, size=2) as pool:
        pids = sorted({int(pool.submit(b"pid").result()) for _ in range(8)} | set(pool.pids))
        print(json.dumps({"event": "pids", "pids": pids}), flush=True)
        pool.submit(b"sleep:600:done").result()


if sys.argv[1] == "aio":
    asyncio.run(main_aio())
else:
    main_sync()
