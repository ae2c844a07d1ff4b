"""Connects, sends ``b"up"``, then ends as argv[2] says: an exit code, or ``kill`` (SIGKILL
itself).

argv[1]: ``sync`` (blocking API) or ``aio`` (asyncio API).
"""

import os
import signal
import sys


def end() -> None:
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.exit(int(sys.argv[2]))


if sys.argv[1] == "sync":
    from worker_process.sync import connect

    conn = connect()
    conn.send(b"up")
    end()
else:
    import asyncio

    from worker_process import connect as aconnect

    async def main() -> None:
        conn = await aconnect()
        await conn.send(b"up")
        await conn.finish()

    asyncio.run(main())
    end()
