"""The probe worker: what a candidate *parent* starts (``$WORKER_PROCESS_PROBE``).

It is a puppet of the runner, and deliberately not a worker-process worker: it never reads or
writes the channel itself. At start it connects to the runner's control socket (the path in
``argv[1]``), reports its pid and the descriptors it was given, and passes its fd 3 — the
channel — to the runner over SCM_RIGHTS. From then on the runner drives the channel byte by
byte from its own process, while the probe keeps fd 3 open (so the channel lives exactly as
long as this process, as a real worker's would) and obeys commands: exit with a code, close its
copy of the channel, or ignore SIGTERM and report it.

Run as a file with only the standard library (``python -I -S probe.py PATH``), so it starts
in a few milliseconds and needs nothing installed.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import sys
from typing import Any

CHANNEL_FD = 3
#: Exit status when the runner went away without saying how to end.
ABANDONED = 70


def _open_fds() -> list[int]:
    names = os.listdir("/proc/self/fd")
    fds = []
    for name in names:
        fd = int(name)
        try:
            os.fstat(fd)  # the descriptor listdir itself used is closed by now
        except OSError:
            continue
        fds.append(fd)
    return sorted(fds)


def _describe_channel() -> dict[str, Any]:
    try:
        os.fstat(CHANNEL_FD)
    except OSError:
        return {"open": False}
    try:
        sock = socket.socket(fileno=CHANNEL_FD)
    except OSError as exc:
        return {"open": True, "socket": False, "error": str(exc)}
    try:
        return {"open": True, "socket": True, "family": int(sock.family), "type": int(sock.type)}
    finally:
        sock.detach()


def main(argv: list[str]) -> int:
    fds = _open_fds()
    channel = _describe_channel()
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.connect(argv[1])

    def send(event: dict[str, Any], pass_fd: bool = False) -> None:
        data = (json.dumps(event) + "\n").encode()
        if pass_fd:
            ctl.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                  array.array("i", [CHANNEL_FD]))])
        else:
            ctl.sendall(data)

    send({"event": "hello", "pid": os.getpid(), "ppid": os.getppid(), "fds": fds,
          "channel": channel}, pass_fd=bool(channel.get("open")))

    def on_sigterm(signum: int, frame: object) -> None:
        send({"event": "sigterm"})

    buf = b""
    while True:
        data = ctl.recv(4096)
        if not data:
            os._exit(ABANDONED)
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            cmd = json.loads(line)
            if cmd["cmd"] == "exit":
                os._exit(int(cmd["code"]))
            elif cmd["cmd"] == "close_channel":
                os.close(CHANNEL_FD)
            elif cmd["cmd"] == "ignore_sigterm":
                signal.signal(signal.SIGTERM, on_sigterm)
            send({"event": "ok", "cmd": cmd["cmd"]})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
