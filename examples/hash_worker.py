"""A pool worker: answers each chunk with its SHA-256 digest.

To show a crash, the worker that serves the request number given in argv[1] first kills
itself (once per pool: the marker file in argv[2] says it already happened).
"""

import asyncio
import hashlib
import os
import signal
import sys

from worker_process import serve

crash_at, marker = int(sys.argv[1]), sys.argv[2]
served = 0


def digest(chunk: bytes) -> bytes:
    global served
    served += 1
    if served == crash_at and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)  # mid-request: the pool retries it elsewhere
    return hashlib.sha256(chunk).digest()


asyncio.run(serve(digest))
