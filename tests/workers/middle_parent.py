"""A parent process between the test and a worker: starts the command in argv[1:] as its
worker, prints the worker's pid, then waits for messages from it (until killed)."""

import asyncio
import os
import sys

from worker_process import create_worker


async def main() -> None:
    worker = await create_worker(sys.argv[1], sys.argv[2:], is_command=True)
    # One write, so the line cannot interleave with the worker's (which shares this stdout).
    os.write(1, f"{worker.pid}\n".encode())
    async for message in worker:
        print(message.decode(), flush=True)


asyncio.run(main())
