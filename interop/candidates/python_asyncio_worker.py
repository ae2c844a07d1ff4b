"""Conformance candidate: the worker contract (spec/conformance.md) on the asyncio API.

    python -m worker_process conformance worker -- \
        python interop/candidates/python_asyncio_worker.py
"""

from __future__ import annotations

import asyncio
import os

from worker_process import connect

CONTROL = b"\xffconformance:"
BURST = CONTROL + b"burst "


async def main() -> None:
    limit = os.environ.get("WORKER_PROCESS_MAX_MESSAGE_SIZE")
    conn = await (connect(max_message_size=int(limit)) if limit else connect())
    async for message in conn:
        if message.startswith(BURST):
            count, size = map(int, message[len(BURST) :].split())
            for i in range(count):
                await conn.send(bytes([i % 256]) * size)
            await conn.finish()
            os._exit(0)  # at once: finish() must have handed everything to the kernel
        await conn.send(message)
    await conn.finish()  # the parent ended its stream cleanly


if __name__ == "__main__":
    asyncio.run(main())
