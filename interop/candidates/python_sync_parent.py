"""Conformance candidate: the parent contract (spec/conformance.md) on the blocking API.

    python -m worker_process conformance parent -- \
        python interop/candidates/python_sync_parent.py
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from worker_process import (
    BrokenResourceError,
    ProtocolError,
    WorkerExitError,
    WorkerProcessError,
)
from worker_process.sync import create_worker

CONTROL = b"\xffconformance:"
CLOSE = CONTROL + b"close"
QUIET = CONTROL + b"quiet"


def report(outcome: str, **fields: Any) -> None:
    print(json.dumps({"outcome": outcome, **fields}), flush=True)


def main() -> None:
    argv = json.loads(os.environ["WORKER_PROCESS_PROBE"])
    limit = os.environ.get("WORKER_PROCESS_MAX_MESSAGE_SIZE")
    close_timeout = float(os.environ.get("WORKER_PROCESS_CLOSE_TIMEOUT", "5"))
    options: dict[str, Any] = {"max_message_size": int(limit)} if limit else {}
    try:
        worker = create_worker(argv[0], argv[1:], is_command=True, **options)
    except WorkerProcessError as exc:
        report("start_failed", error=f"{type(exc).__name__}: {exc}")
        return
    messages = nbytes = 0
    echo = True
    with worker:
        with contextlib.suppress(WorkerProcessError):
            worker.send(b"hello")
        # The loop ends at the worker's end of stream, or (after close()) once the messages
        # received while closing are taken; the outcome says what went wrong, if anything.
        with contextlib.suppress(WorkerProcessError):
            for message in worker:
                if message == CLOSE:
                    echo = False
                    worker.close(timeout=close_timeout)  # reads what comes meanwhile
                elif message == QUIET:
                    echo = False
                else:
                    messages += 1
                    nbytes += len(message)
                    if echo:
                        with contextlib.suppress(WorkerProcessError):
                            worker.send(message)
        counts = {"messages": messages, "bytes": nbytes}
        try:
            worker.result()
        except BrokenResourceError as exc:
            if isinstance(exc.__cause__, ProtocolError):
                report("protocol_error", error=str(exc.__cause__), **counts)
            else:
                report("error", error=str(exc), **counts)
        except WorkerExitError as exc:
            if exc.signal is not None:
                report("killed", signal=exc.signal, returncode=exc.returncode, **counts)
            else:
                report("exited", returncode=exc.returncode, **counts)
        except WorkerProcessError as exc:
            report("error", error=f"{type(exc).__name__}: {exc}", **counts)
        else:
            report("ok", returncode=0, **counts)


if __name__ == "__main__":
    main()
