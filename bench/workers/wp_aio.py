"""Benchmark worker on the asyncio API; the modes of ``wp_sync.py``. A first argument
``uvloop`` runs it on uvloop's event loop."""

import asyncio
import sys
import time

from worker_process import connect


async def main() -> None:
    conn = await connect()
    cpu = time.process_time()
    mode = sys.argv[1]
    if mode == "count":
        count = int(sys.argv[2])
        recv = conn.recv
        total = 0
        for _ in range(count):
            total += len(await recv())
        with open("/proc/self/status") as status:
            hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
        await conn.send(f"{count} {total} {hwm} {time.process_time() - cpu}".encode())
    elif mode == "echo":
        send = conn.send
        async for message in conn:
            await send(message)
    else:
        async for _ in conn:
            pass
    await conn.finish()


if sys.argv[1] == "uvloop":
    import uvloop

    del sys.argv[1]
    uvloop.run(main())
else:
    asyncio.run(main())
