"""Echo every message; at the parent's end of stream, finish and exit 0."""

import asyncio

from worker_process import connect


async def main() -> None:
    async with await connect() as conn:
        async for message in conn:
            await conn.send(message)


asyncio.run(main())
