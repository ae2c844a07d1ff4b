"""The same pool with the blocking API: no event loop in sight."""

import hashlib
import os
import tempfile
from pathlib import Path

from worker_process.sync import Pool

WORKER = Path(__file__).with_name("hash_worker.py")


def chunks(count: int):
    for i in range(count):
        yield hashlib.sha512(b"%d" % i).digest() * 1024  # 64 KiB


with tempfile.TemporaryDirectory() as tmp:
    marker = os.path.join(tmp, "crashed")
    with Pool(WORKER, [str(300), marker], size=4, timeout=60) as pool:
        digests = list(pool.map(chunks(2000)))
        future = pool.submit(b"one more")  # a concurrent.futures.Future
        print("one more:", future.result().hex()[:16])
    crashed = os.path.exists(marker)
assert digests == [hashlib.sha256(chunk).digest() for chunk in chunks(2000)]
print(f"{len(digests)} digests, in input order; a worker crashed: {crashed}")
