"""A library worker that connects, waits for the parent's end of stream, and finishes."""

import asyncio

from worker_process import connect


async def main() -> None:
    conn = await connect()
    async for _ in conn:
        pass
    await conn.finish()


asyncio.run(main())
