"""Echoes every message back until the parent ends its stream, then finishes.

argv[1]: ``sync`` (blocking API) or ``aio`` (asyncio API).
"""

import sys

if sys.argv[1] == "sync":
    from worker_process.sync import connect

    with connect() as conn:
        for message in conn:
            conn.send(message)
else:
    import asyncio

    from worker_process import connect as aconnect

    async def main() -> None:
        async with await aconnect() as conn:
            async for message in conn:
                await conn.send(message)

    asyncio.run(main())
