"""A Python worker, driven by examples/node_drives_python.js. JSON in, JSON out."""

import asyncio
import json
import sys

from worker_process import connect


async def main() -> None:
    async with await connect() as conn:  # finishes when the block ends
        async for message in conn:
            request = json.loads(message)
            answer = {"hello": request["name"], "from": f"python {sys.version.split()[0]}"}
            await conn.send(json.dumps(answer).encode())


asyncio.run(main())
