"""Answers each msgpack value v with msgpack {"lang": "python", "echo": v}."""

import asyncio

import msgpack

from worker_process import connect


async def main() -> None:
    async with await connect() as conn:
        async for message in conn:
            value = msgpack.unpackb(message, raw=False)
            await conn.send(msgpack.packb({"lang": "python", "echo": value}, use_bin_type=True))


asyncio.run(main())
