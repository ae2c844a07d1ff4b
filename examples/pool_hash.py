"""Hash 2,000 chunks on a pool of Python workers, while one worker crashes mid-way."""

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

from worker_process import Pool

WORKER = Path(__file__).with_name("hash_worker.py")


def chunks(count: int):  # a generator: the pool reads it as it goes
    for i in range(count):
        yield hashlib.sha512(b"%d" % i).digest() * 1024  # 64 KiB


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        marker = os.path.join(tmp, "crashed")
        async with Pool(WORKER, [str(300), marker], size=4, timeout=60) as pool:
            digests = [digest async for digest in pool.map(chunks(2000))]
        crashed = os.path.exists(marker)
    assert digests == [hashlib.sha256(chunk).digest() for chunk in chunks(2000)]
    print(f"{len(digests)} digests, in input order; a worker crashed: {crashed}")
    print("first:", digests[0].hex())


asyncio.run(main())
