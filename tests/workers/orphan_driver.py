"""Runs the middle parent command given in argv (e.g. ``python middle_parent.py WORKER...``)
as a child subreaper, SIGKILLs that middle parent once its worker is up, and prints JSON: the
worker's exit code and how long it took to exit.

The middle parent prints its worker's pid alone on a line; the worker prints "PID INHERITABLE".

Being a subreaper (prctl PR_SET_CHILD_SUBREAPER) makes the orphaned worker this process's
child, so its exit status can be waited for. Exits 2 if anything takes longer than 30 s.
"""

import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")

middle = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
assert middle.stdout is not None
# The worker prints "PID INHERITABLE" after connecting; the middle parent prints the worker's
# pid after the handshake. Wait for both, for 30 s at most.
worker_pid = None
worker_line = None
pending = b""
deadline = time.monotonic() + 30
with selectors.DefaultSelector() as selector:
    selector.register(middle.stdout, selectors.EVENT_READ)
    while worker_pid is None or worker_line is None:
        left = deadline - time.monotonic()
        if left <= 0 or not selector.select(left):
            middle.kill()
            if worker_pid is not None:
                os.kill(worker_pid, signal.SIGKILL)
            sys.exit(f"worker did not come up in 30 s: pid={worker_pid} line={worker_line}")
        chunk = os.read(middle.stdout.fileno(), 4096)
        if not chunk:
            if worker_pid is not None:
                os.kill(worker_pid, signal.SIGKILL)
            sys.exit(f"middle parent ended early: pid={worker_pid} line={worker_line}")
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            fields = line.decode().split()
            if len(fields) == 2:
                worker_line = fields
            elif len(fields) == 1:
                worker_pid = int(fields[0])

middle.kill()  # SIGKILL: no chance to close anything
middle.wait()
killed_at = time.monotonic()
while True:
    pid, status = os.waitpid(worker_pid, os.WNOHANG)
    if pid:
        break
    if time.monotonic() - killed_at > 30:
        os.kill(worker_pid, signal.SIGKILL)
        sys.exit(2)
    time.sleep(0.005)  # polling a non-child-until-now process: no fd to wait on
print(json.dumps({
    "exit_code": os.waitstatus_to_exitcode(status),
    "seconds": time.monotonic() - killed_at,
    "fd3_inheritable_in_worker": worker_line[1],
}))
