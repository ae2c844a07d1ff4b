"""Send argv[1] numbered messages, finish, then leave with os._exit(argv[2]) at once."""

import asyncio
import os
import sys

from worker_process import connect


async def main() -> None:
    conn = await connect()
    for i in range(int(sys.argv[1])):
        await conn.send(i.to_bytes(4, "big") * 64)
    await conn.finish()
    os._exit(int(sys.argv[2]))


asyncio.run(main())
