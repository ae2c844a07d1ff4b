"""The pool benchmark's job, ``sha256(zlib.compress(chunk))``: imported by the
multiprocessing peers, and run as a blocking ``serve()`` worker for worker-process."""

import hashlib
import zlib


def job(chunk: bytes) -> bytes:
    return hashlib.sha256(zlib.compress(chunk)).digest()


if __name__ == "__main__":
    from worker_process.sync import serve

    serve(job)
