"""The parent side of the quickstart: starts worker.py, sends two requests, prints answers."""

import asyncio
from pathlib import Path

import msgpack

from worker_process import create_worker


async def main() -> None:
    async with await create_worker(Path(__file__).with_name("worker.py")) as worker:
        for name in ("world", "worker-process"):
            await worker.send(msgpack.packb({"name": name}))
            print(msgpack.unpackb(await worker.recv()))
    print("worker exited with", worker.returncode)


asyncio.run(main())
