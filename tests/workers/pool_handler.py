"""The request handler of the pool test workers: the request says what to do.

``echo:X`` → X; ``sleep:SECONDS:X`` → X after a sleep; ``pid`` → the worker's pid;
``raise:TEXT`` → ValueError(TEXT); ``die`` → SIGKILL itself; ``exit:N`` → exit N at once;
``die-once:PATH`` → the first worker to see PATH missing creates it and SIGKILLs itself,
later ones answer ``survived``; ``stderr:TEXT`` → TEXT on stderr, then exit 5.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def handle(request: bytes) -> bytes:
    op, _, arg = request.partition(b":")
    if op == b"echo":
        return arg
    if op == b"sleep":
        seconds, _, payload = arg.partition(b":")
        time.sleep(float(seconds))
        return payload
    if op == b"pid":
        return str(os.getpid()).encode()
    if op == b"parent":  # the command line of this worker's parent process
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ")
    if op == b"raise":
        raise ValueError(arg.decode())
    if op == b"die":
        os.kill(os.getpid(), signal.SIGKILL)
    if op == b"exit":
        os._exit(int(arg))
    if op == b"die-once":
        try:
            os.close(os.open(arg, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return b"survived"
        os.kill(os.getpid(), signal.SIGKILL)
    if op == b"stderr":
        sys.stderr.write(arg.decode() + "\n")
        sys.stderr.flush()
        os._exit(5)
    return request
