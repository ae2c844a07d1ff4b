"""Runs ``sync_middle.py WORKER ARGS...`` as a child subreaper, SIGKILLs that middle parent
once its worker is up, and prints JSON: the orphaned worker's exit code, how long it took to
exit after the kill, and what it wrote on stderr.

The worker prints ``PID INHERITABLE`` on stdout once connected. Being a subreaper
(prctl PR_SET_CHILD_SUBREAPER) makes the orphaned worker this process's child, so its exit
status can be waited for. Exits 2 if anything takes longer than 30 s.
"""

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")

middle = subprocess.Popen(
    [sys.executable, str(Path(__file__).with_name("sync_middle.py")), *sys.argv[1:]],
    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
)
assert middle.stdout is not None and middle.stderr is not None
worker_pid = None
connected = False
deadline = time.monotonic() + 30
while not (worker_pid and connected) and time.monotonic() < deadline:
    line = middle.stdout.readline()
    if not line:
        break
    fields = line.split()
    if len(fields) == 2:
        connected = True
    elif len(fields) == 1:
        worker_pid = int(fields[0])
if worker_pid is None or not connected:
    middle.kill()
    sys.exit(f"the worker did not come up: pid={worker_pid} connected={connected}")

middle.kill()  # SIGKILL: the middle parent gets no chance to close anything
middle.wait()
killed_at = time.monotonic()
pidfd = os.pidfd_open(worker_pid)
if not select.select([pidfd], [], [], 30)[0]:
    os.kill(worker_pid, signal.SIGKILL)
    sys.exit(2)
seconds = time.monotonic() - killed_at
_, status = os.waitpid(worker_pid, 0)
print(json.dumps({
    "exit_code": os.waitstatus_to_exitcode(status),
    "seconds": seconds,
    "stderr": middle.stderr.read().decode(errors="replace"),  # the worker shares it
}))
