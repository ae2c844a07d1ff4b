"""Sends the list of this process's open fds (found with fstat, which opens none itself)
and whether fd 3 is inheritable after connect(), then finishes."""

import asyncio
import os

from worker_process import connect

# Before the event loop exists (it opens fds of its own).
fds = []
for fd in range(1024):
    try:
        os.fstat(fd)
    except OSError:
        continue
    fds.append(fd)


async def main() -> None:
    conn = await connect()
    await conn.send(repr((fds, os.get_inheritable(3))).encode())
    await conn.finish()


asyncio.run(main())
