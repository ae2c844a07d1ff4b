"""A worker for the resource tests.

``res_flood.py send TOTAL SIZE``: send TOTAL bytes as fast as it can in SIZE-byte messages
(one payload object, reused), then finish.
``res_flood.py slow-read EVERY DELAY``: read everything the parent sends, sleeping DELAY
seconds every EVERY messages (a slow consumer), then send the byte count and finish.
"""

from __future__ import annotations

import asyncio
import sys

from worker_process import connect


async def main(argv: list[str]) -> None:
    conn = await connect()
    if argv[0] == "send":
        total, size = int(argv[1]), int(argv[2])
        payload = b"\xa5" * size
        sent = 0
        while sent < total:
            await conn.send(payload)
            sent += size
    elif argv[0] == "slow-read":
        every, delay = int(argv[1]), float(argv[2])
        received = count = 0
        async for message in conn:
            received += len(message)
            count += 1
            if count % every == 0:
                await asyncio.sleep(delay)  # the slow consumer's work
        await conn.send(str(received).encode())
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")
    await conn.finish()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
