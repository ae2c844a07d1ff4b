"""Connects, then ignores SIGTERM (argv[1] == "stubborn") and waits far longer than any test."""

import asyncio
import signal
import sys

from worker_process import connect


async def main() -> None:
    conn = await connect()
    if sys.argv[1:] == ["stubborn"]:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    await conn.send(b"ready")
    await asyncio.sleep(3600)  # a worker that runs "forever"; the test ends it


asyncio.run(main())
