"""Prints to stdout and stderr, sends one message, finishes."""

import asyncio
import sys

from worker_process import connect


async def main() -> None:
    conn = await connect()
    print("hello on stdout", flush=True)
    print("hello on stderr", file=sys.stderr, flush=True)
    await conn.send(b"done")
    await conn.finish()


asyncio.run(main())
