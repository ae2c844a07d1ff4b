"""Connects, reports its pid and its fds on stdout, then waits for messages forever."""

import asyncio
import os

from worker_process import connect


async def main() -> None:
    conn = await connect()
    # One write: the line shares stdout with the parent's and must not interleave.
    os.write(1, f"{os.getpid()} {os.get_inheritable(3)}\n".encode())
    async for message in conn:
        await conn.send(message)


asyncio.run(main())
