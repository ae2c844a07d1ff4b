"""Connect, then exit with the code in argv[1] (or kill itself with SIGKILL for "kill")."""

import asyncio
import os
import signal
import sys

from worker_process import connect


async def main() -> None:
    conn = await connect()
    await conn.send(b"ready")
    await conn.finish()
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.exit(int(sys.argv[1]))


asyncio.run(main())
