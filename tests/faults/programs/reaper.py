"""A subreaper supervisor: runs a process tree, optionally SIGKILLs its top process when a
reported event arrives, and reaps every descendant (orphans are re-parented to it), timing each
exit from the kill. Prints one JSON report on stdout.

Usage: ``reaper.py [--kill-on EVENT ...] [--deadline SECONDS] -- CMD [ARGS ...]``

The tree reports on its stdout, one JSON object per line (other lines are kept as text). Once
an object with ``"event": EVENT`` arrived for every ``--kill-on``, the reaper SIGKILLs the top
process (once). The reaper
waits until no descendant is left; at the deadline it SIGKILLs what remains and says so.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import select
import signal
import sys
import time
from typing import Any

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def my_children() -> list[int]:
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == me:
            found.append(int(name))
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-on", action="append", default=[])
    parser.add_argument("--deadline", type=float, default=20.0)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    cmd = opts.cmd[1:] if opts.cmd[:1] == ["--"] else opts.cmd

    become_subreaper()
    read_end, write_end = os.pipe()
    top = os.posix_spawn(cmd[0], cmd, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, write_end, 1)])
    os.close(write_end)
    started = time.monotonic()
    deadline = started + opts.deadline
    events: list[Any] = []
    reaped: dict[str, dict[str, Any]] = {}
    killed_at: float | None = None
    pending = b""
    pipe_open = True
    timed_out = False
    waiting_for = set(opts.kill_on)

    while True:
        now = time.monotonic()
        if now >= deadline:
            timed_out = True
            for pid in my_children():
                os.kill(pid, signal.SIGKILL)
            deadline = now + 5.0
        if pipe_open:
            ready, _, _ = select.select([read_end], [], [], 0.005)
            if ready:
                data = os.read(read_end, 65536)
                if not data:
                    pipe_open = False
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    try:
                        event = json.loads(line)
                    except ValueError:
                        event = line.decode(errors="replace")
                    events.append(event)
                    if isinstance(event, dict):
                        waiting_for.discard(event.get("event"))
                    if opts.kill_on and killed_at is None and not waiting_for:
                        os.kill(top, signal.SIGKILL)
                        killed_at = time.monotonic()
        else:
            time.sleep(0.005)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = -1
                break
            if pid == 0:
                break
            t = time.monotonic()
            reaped[str(pid)] = {
                "code": os.waitstatus_to_exitcode(status),
                "after_start": round(t - started, 4),
                "after_kill": None if killed_at is None else round(t - killed_at, 4),
            }
        if pid == -1 and not pipe_open:
            break
        if pid == -1 and timed_out:
            break

    os.close(read_end)
    print(json.dumps({"top": top, "events": events, "reaped": reaped,
                      "killed": killed_at is not None, "timed_out": timed_out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
