"""A blocking parent between a test and a worker: starts argv[1:] as its worker, prints the
worker's pid alone on a line, then reads messages from it until killed."""

import os
import sys

from worker_process.sync import create_worker

worker = create_worker(sys.argv[1], sys.argv[2:])
# One write: the worker prints on the same stdout, and print() may write the pid and its
# newline separately, letting the worker's line in between.
os.write(1, f"{worker.pid}\n".encode())
for message in worker:
    print(message.decode(), flush=True)
