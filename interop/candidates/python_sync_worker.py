"""Conformance candidate: the worker contract (spec/conformance.md) on the blocking API.

    python -m worker_process conformance worker -- \
        python interop/candidates/python_sync_worker.py
"""

from __future__ import annotations

import os

from worker_process.sync import connect

CONTROL = b"\xffconformance:"
BURST = CONTROL + b"burst "


def main() -> None:
    limit = os.environ.get("WORKER_PROCESS_MAX_MESSAGE_SIZE")
    conn = connect(max_message_size=int(limit)) if limit else connect()
    for message in conn:
        if message.startswith(BURST):
            count, size = map(int, message[len(BURST) :].split())
            for i in range(count):
                conn.send(bytes([i % 256]) * size)
            conn.finish()
            os._exit(0)  # at once: finish() must have handed everything to the kernel
        conn.send(message)
    conn.finish()  # the parent ended its stream cleanly


if __name__ == "__main__":
    main()
