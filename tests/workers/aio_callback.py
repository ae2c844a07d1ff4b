"""Callback style: answer each message through onmessage until the parent ends its stream."""

import asyncio

from worker_process import connect


async def main() -> None:
    conn = await connect()
    conn.onmessage = lambda message: conn.send(b"re:" + message)
    await conn.wait_closed()


asyncio.run(main())
