"""A parent for the remote-worker tests: starts ``FILE ARGS`` on TARGET (a JSON array), checks
one echo, prints ``ready``, then waits to be killed."""

from __future__ import annotations

import json
import signal
import sys

from worker_process.sync import create_worker

worker = create_worker(sys.argv[2], sys.argv[3:], remote=json.loads(sys.argv[1]))
worker.send(b"ping")
assert worker.recv(timeout=120) == b"ping"
print("ready", worker.pid, flush=True)
while True:
    signal.pause()
