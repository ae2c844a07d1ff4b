"""Sends argv[2] numbered messages, finishes, then either exits at once with
``os._exit(0)`` (argv[3] == ``exit``) or waits for the parent's end of stream and returns
(argv[3] == ``wait``).

argv[1]: ``sync`` (blocking API) or ``aio`` (asyncio API).
"""

import os
import sys

count = int(sys.argv[2])
then = sys.argv[3]

if sys.argv[1] == "sync":
    from worker_process.sync import connect

    conn = connect()
    for i in range(count):
        conn.send(i.to_bytes(4, "big") * 16)
    conn.finish()
    if then == "exit":
        os._exit(0)
    for _ in conn:
        pass
else:
    import asyncio

    from worker_process import connect as aconnect

    async def main() -> None:
        conn = await aconnect()
        for i in range(count):
            await conn.send(i.to_bytes(4, "big") * 16)
        await conn.finish()
        if then == "exit":
            os._exit(0)
        async for _ in conn:
            pass

    asyncio.run(main())
