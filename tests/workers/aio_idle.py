"""Connects, reports its pid and its fds on stdout, then waits for messages forever."""

import asyncio
import os

from worker_process import connect


async def main() -> None:
    conn = await connect()
    print(os.getpid(), os.get_inheritable(3), flush=True)
    async for message in conn:
        await conn.send(message)


asyncio.run(main())
