"""A worker on the blocking API (worker_process.sync.connect), driven into faults; the
counterpart of lib_worker.py. Usage: ``sync_worker.py BEHAVIOUR [--limit N] [--code N]``.
Reports go to stdout as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from worker_process import EndOfStream, WorkerProcessError
from worker_process.sync import connect


def report(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def describe(exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    for name in ("expected", "got", "length", "limit", "stage", "missing"):
        if hasattr(exc, name):
            out[name] = getattr(exc, name)
    if exc.__cause__ is not None:
        out["cause"] = describe(exc.__cause__)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("behaviour")
    parser.add_argument("--limit", type=int, default=2**32 - 1)
    parser.add_argument("--code", type=int, default=0)
    opts = parser.parse_args()
    try:
        conn = connect(handshake_timeout=5.0, max_message_size=opts.limit)
    except WorkerProcessError as exc:
        report(event="connect-failed", error=describe(exc))
        sys.exit(4)
    report(event="ready", pid=os.getpid())
    what = opts.behaviour
    if what == "recv":
        got: list[str] = []
        try:
            got.extend(m.hex() for m in conn)
            end = {"type": "EndOfStream"}
        except WorkerProcessError as exc:
            end = describe(exc)
        report(event="done", messages=got, end=end)
        conn.finish()
    elif what == "idle-not-reading":
        time.sleep(60)  # never reads: only the hang-up watcher can notice the parent is gone
    elif what == "flood":
        payload = b"f" * 65536
        blocked = threading.Timer(0.3, lambda: report(event="blocked", pid=os.getpid()))
        while True:
            blocked.cancel()
            blocked = threading.Timer(0.3, lambda: report(event="blocked", pid=os.getpid()))
            blocked.start()
            conn.send(payload)
    elif what == "crash-on-command":
        for i in range(3):
            conn.send(f"m{i}".encode())
        command = conn.recv().decode()
        if command == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise SystemExit(f"unknown command {command!r}")
    elif what == "finish-exit":
        conn.send(b"bye")
        conn.finish()
        os._exit(opts.code)
    elif what == "echo":
        try:
            for message in conn:
                conn.send(message)
        except EndOfStream:
            pass
        conn.finish()
    else:
        raise SystemExit(f"unknown behaviour {what!r}")


if __name__ == "__main__":
    main()
