"""A Python pool of Node.js workers (node_hash_worker.js answers one-for-one: raw=True)."""

import asyncio
import hashlib
from pathlib import Path

from worker_process import Pool

WORKER = Path(__file__).with_name("node_hash_worker.js")  # .js runs under Node.js


async def main() -> None:
    chunks = [b"chunk %d " % i * 1000 for i in range(500)]
    async with Pool(WORKER, size=2, raw=True) as pool:
        digests = [digest async for digest in pool.map(chunks)]
        print("node workers:", len(pool.pids))
    assert digests == [hashlib.sha256(chunk).digest() for chunk in chunks]
    print(f"{len(digests)} digests from Node.js, in input order")


asyncio.run(main())
