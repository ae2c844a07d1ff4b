"""Connects, prints ``PID INHERITABLE`` (its pid, and whether fd 3 is inheritable) on stdout,
then sleeps without reading for up to 60 s.

argv[1]: ``sync`` (blocking API) or ``aio`` (asyncio API).
"""

import os
import sys
import time


def report() -> None:
    # One write: the parent prints on the same stdout.
    os.write(1, f"{os.getpid()} {os.get_inheritable(3)}\n".encode())


if sys.argv[1] == "sync":
    from worker_process.sync import connect

    conn = connect()
    report()
    time.sleep(60)
else:
    import asyncio

    from worker_process import connect as aconnect

    async def main() -> None:
        await aconnect()
        report()
        await asyncio.sleep(60)

    asyncio.run(main())
