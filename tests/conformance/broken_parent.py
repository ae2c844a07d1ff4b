"""A parent that follows the conformance contract except for one deliberate defect, named by
argv[1], so that the runner's tests can check the right scenarios catch it.

Defects:
    none                    a correct parent (raw socket + the sans-I/O codec)
    ignore-bad-handshake    carries on whatever the worker's first byte was
    write-before-handshake  sends the greeting right after its 0x00, before the worker's 0x01
    full-close              close() releases the socket instead of shutting down its write side
    keep-bad-worker         reports a protocol error but does not kill the worker
    exit-at-once            exits 1 at once, as a program that cannot load its library does
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
from typing import Any

from worker_process import Decoder, Encoder, ProtocolError, Role
from worker_process._spawn import spawn_worker

CONTROL = b"\xffconformance:"
CLOSE = CONTROL + b"close"
QUIET = CONTROL + b"quiet"


def report(outcome: str, **fields: Any) -> None:
    print(json.dumps({"outcome": outcome, **fields}), flush=True)


def wait_exit(pid: int, pidfd: int, timeout: float | None) -> int | None:
    if not select.select([pidfd], [], [], timeout)[0]:
        return None
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def main(defect: str) -> None:
    argv = json.loads(os.environ["WORKER_PROCESS_PROBE"])
    limit = os.environ.get("WORKER_PROCESS_MAX_MESSAGE_SIZE")
    close_timeout = float(os.environ.get("WORKER_PROCESS_CLOSE_TIMEOUT", "5"))
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = spawn_worker(argv, theirs).pid
    theirs.close()
    pidfd = os.pidfd_open(pid)
    decoder = Decoder(Role.PARENT, max_message_size=int(limit)) if limit else Decoder(
        Role.PARENT)
    encoder = Encoder(Role.PARENT)
    mine.sendall(encoder.handshake())
    if defect == "write-before-handshake":
        mine.sendall(encoder.frame(b"hello"))
    first = mine.recv(1)
    if defect == "ignore-bad-handshake" and first:
        first = b"\x01"
    try:
        decoder.feed(first)
        if not first:
            decoder.feed_eof()
    except ProtocolError as exc:
        os.kill(pid, signal.SIGKILL)
        wait_exit(pid, pidfd, None)
        report("start_failed", error=str(exc))
        return
    if defect != "write-before-handshake":
        mine.sendall(encoder.frame(b"hello"))
    messages = nbytes = 0
    echo, closing, released, broken = True, False, False, None
    escalation = 0
    while not released:
        try:
            data = mine.recv(1 << 20)
        except TimeoutError:  # closing, and the worker has not ended: escalate
            escalation += 1
            os.kill(pid, signal.SIGTERM if escalation == 1 else signal.SIGKILL)
            mine.settimeout(close_timeout if escalation == 1 else None)
            continue
        try:
            payloads = decoder.feed_payloads(data) if data else []
            if not data:
                decoder.feed_eof()
        except ProtocolError as exc:
            broken = exc
            break
        if not data:
            break
        for payload in payloads:
            if payload == CLOSE:
                echo, closing = False, True
                if defect == "full-close":
                    mine.close()
                    released = True
                    break
                mine.shutdown(socket.SHUT_WR)
                mine.settimeout(close_timeout)
            elif payload == QUIET:
                echo = False
            else:
                messages += 1
                nbytes += len(payload)
                if echo:
                    try:
                        mine.sendall(encoder.frame(payload))
                    except OSError:
                        echo = False
    if broken is not None:
        if defect == "keep-bad-worker":
            report("protocol_error", error=str(broken), messages=messages, bytes=nbytes)
            return  # the worker is left running
        os.kill(pid, signal.SIGKILL)
    code = wait_exit(pid, pidfd, close_timeout if closing and escalation == 0 else None)
    if code is None:
        os.kill(pid, signal.SIGTERM)
        code = wait_exit(pid, pidfd, close_timeout)
    if code is None:
        os.kill(pid, signal.SIGKILL)
        code = wait_exit(pid, pidfd, None)
    assert code is not None
    counts = {"messages": messages, "bytes": nbytes}
    if broken is not None:
        report("protocol_error", error=str(broken), **counts)
    elif code < 0:
        report("killed", signal=-code, returncode=code, **counts)
    elif code:
        report("exited", returncode=code, **counts)
    else:
        report("ok", returncode=0, **counts)


if __name__ == "__main__":
    if sys.argv[1] == "exit-at-once":
        sys.exit("cannot load my library")
    main(sys.argv[1])
