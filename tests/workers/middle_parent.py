"""A parent process between the test and a worker: starts the command in argv[1:] as its
worker, prints the worker's pid, then waits for messages from it (until killed)."""

import asyncio
import sys

from worker_process import create_worker


async def main() -> None:
    worker = await create_worker(sys.argv[1], sys.argv[2:], is_command=True)
    print(worker.pid, flush=True)
    async for message in worker:
        print(message.decode(), flush=True)


asyncio.run(main())
