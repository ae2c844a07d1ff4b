"""A blocking parent between a test and a worker: starts argv[1:] as its worker, prints the
worker's pid alone on a line, then reads messages from it until killed."""

import sys

from worker_process.sync import create_worker

worker = create_worker(sys.argv[1], sys.argv[2:])
print(worker.pid, flush=True)
for message in worker:
    print(message.decode(), flush=True)
