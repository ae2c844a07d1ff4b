"""A remote test worker (blocking API): echoes every message; control messages ``exit N``
(finish, then exit N), ``signal N`` (kill itself), ``print TEXT`` (to stdout), ``burst N SIZE``
(N messages, finish, exit 0). Extra arguments are ignored (tests tag processes with them)."""

from __future__ import annotations

import os
import sys

from worker_process.sync import connect

with connect() as conn:
    for message in conn:
        word, _, rest = message.partition(b" ")
        if word == b"exit":
            conn.finish()
            sys.exit(int(rest))
        elif word == b"signal":
            os.kill(os.getpid(), int(rest))
        elif word == b"print":
            print(rest.decode(), flush=True)
            conn.send(b"printed")
        elif word == b"burst":
            count, size = map(int, rest.split())
            for i in range(count):
                conn.send(bytes([i % 256]) * size)
            conn.finish()
            os._exit(0)
        else:
            conn.send(message)
