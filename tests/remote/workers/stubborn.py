"""A remote test worker that ignores SIGTERM and the parent's end of stream: only SIGKILL or
a gone parent ends it. Writes ``term`` to stderr when SIGTERM arrives."""

from __future__ import annotations

import signal
import sys

from worker_process.sync import connect


def on_term(signum: int, frame: object) -> None:
    sys.stderr.write("stubborn: got SIGTERM\n")
    sys.stderr.flush()


signal.signal(signal.SIGTERM, on_term)
conn = connect()
for message in conn:
    conn.send(message)
while True:
    signal.pause()
