"""Benchmark worker on the blocking API. argv: MODE [COUNT].

- ``count COUNT``: receive COUNT messages, answer once with ``"COUNT BYTES HWM_KIB CPU_S"``
  (peak RSS; CPU seconds spent since the handshake);
- ``echo``: send every message back until the parent's end of stream;
- ``idle``: wait for the parent's end of stream (start-up measurements).
"""

import sys
import time

from worker_process.sync import connect  # first: the start-up measurement includes it

conn = connect()
cpu = time.process_time()
mode = sys.argv[1]
if mode == "count":
    count = int(sys.argv[2])
    recv = conn.recv
    total = 0
    for _ in range(count):
        total += len(recv())
    with open("/proc/self/status") as status:
        hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    conn.send(f"{count} {total} {hwm} {time.process_time() - cpu}".encode())
elif mode == "echo":
    send = conn.send
    for message in conn:
        send(message)
else:
    for _message in conn:
        pass
conn.finish()
