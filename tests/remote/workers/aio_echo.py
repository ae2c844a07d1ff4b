"""A remote test worker (asyncio API): echoes every message until the parent's end."""

from __future__ import annotations

import asyncio

from worker_process import connect


async def main() -> None:
    conn = await connect()
    async for message in conn:
        await conn.send(message)
    await conn.finish()


asyncio.run(main())
