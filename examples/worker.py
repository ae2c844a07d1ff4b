"""The worker side of the quickstart: answers every request, then finishes."""

import asyncio

import msgpack

from worker_process import connect


async def main() -> None:
    conn = await connect()
    async for message in conn:
        request = msgpack.unpackb(message)
        await conn.send(msgpack.packb({"hello": request["name"], "length": len(request["name"])}))
    await conn.finish()


asyncio.run(main())
