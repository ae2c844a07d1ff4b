"""The pool benchmark's jobs: ``job`` is ``sha256(zlib.compress(chunk))``, ``light_job`` is
``sha256(chunk)`` alone (the pool's own cost shows). Imported by the multiprocessing peers;
run as a blocking ``serve()`` worker for worker-process (``pool_job.py [light]``)."""

import hashlib
import sys
import zlib


def job(chunk: bytes) -> bytes:
    return hashlib.sha256(zlib.compress(chunk)).digest()


def light_job(chunk: bytes) -> bytes:
    return hashlib.sha256(chunk).digest()


if __name__ == "__main__":
    from worker_process.sync import serve

    serve(light_job if sys.argv[1:] == ["light"] else job)
