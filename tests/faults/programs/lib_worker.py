"""A well-behaved asyncio worker (it uses worker_process.connect), driven into faults.

Usage: ``lib_worker.py BEHAVIOUR [options]``. Reports go to stdout as one JSON object per
line, so a test (or an intermediate process) can wait for a condition instead of sleeping.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import worker_process
from worker_process import (
    ChannelUnavailableError,
    Connection,
    EndOfStream,
    WorkerProcessError,
    connect,
    create_worker,
)

HERE = Path(__file__).resolve().parent


def report(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def describe(exc: BaseException) -> dict[str, Any]:
    """An exception as JSON: class, message, the protocol attributes, and its cause."""
    out: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    for name in ("expected", "got", "length", "limit", "stage", "missing"):
        if hasattr(exc, name):
            out[name] = getattr(exc, name)
    if exc.__cause__ is not None:
        out["cause"] = describe(exc.__cause__)
    return out


def vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


async def open_connection(opts: argparse.Namespace) -> Connection:
    try:
        return await connect(
            handshake_timeout=opts.handshake_timeout,
            max_message_size=opts.limit,
            exit_on_broken=not opts.no_exit_on_broken,
        )
    except (WorkerProcessError, OSError) as exc:
        report(event="connect-failed", error=describe(exc))
        sys.exit(4)


async def recv_all(conn: Connection) -> tuple[list[str], dict[str, Any]]:
    """Every message (hex) until the stream ends, and how it ended."""
    got: list[str] = []
    while True:
        try:
            got.append((await conn.recv()).hex())
        except EndOfStream as exc:
            return got, describe(exc)
        except WorkerProcessError as exc:
            return got, describe(exc)


async def behave(opts: argparse.Namespace) -> None:
    what = opts.behaviour
    if what == "probe":
        # connect() on whatever fd 3 is; report how it failed. (With fd 3 closed at exec, the
        # event loop's own epoll descriptor takes number 3 before connect() runs.)
        try:
            await connect(handshake_timeout=1.0)
        except ChannelUnavailableError as exc:
            report(event="unavailable", error=describe(exc))
            sys.exit(4)
        report(event="connected")
        return
    hwm_before = vm_hwm_kib()
    conn = await open_connection(opts)
    report(event="ready", pid=os.getpid())
    if what == "recv":
        got, end = await recv_all(conn)
        report(event="done", messages=got, end=end, hwm_growth_kib=vm_hwm_kib() - hwm_before)
        await conn.finish()
    elif what == "echo":
        async for message in conn:
            await conn.send(message)
        await conn.finish()
    elif what == "idle":
        async for _ in conn:
            pass
        await conn.finish()
    elif what == "flood":
        payload = b"f" * 65536
        blocked_reported = False
        while True:
            sending = asyncio.ensure_future(conn.send(payload))
            done, _ = await asyncio.wait({sending}, timeout=0.3)
            if not done and not blocked_reported:
                blocked_reported = True
                report(event="blocked", pid=os.getpid())
            await sending
    elif what == "crash-on-command":
        for i in range(3):
            await conn.send(f"m{i}".encode())
        command = (await conn.recv()).decode()
        if command == "half-frame-sigkill":
            # A header announcing 100 bytes and 4 of them, written behind the library's back.
            os.write(3, b"\x00\x00\x00\x64half")
            os.kill(os.getpid(), signal.SIGKILL)
        elif command == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif command == "sigsegv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif command == "abort":
            os.abort()
        elif command == "exit137":
            os._exit(137)
        raise SystemExit(f"unknown command {command!r}")
    elif what == "finish-exit":
        await conn.send(b"bye")
        await conn.finish()
        os._exit(opts.code)
    elif what == "results-after-eof":
        # Reads until the parent's end of stream, then sends --code MiB of results, finishes.
        await recv_all(conn)
        chunk = b"r" * 65536
        for _ in range(opts.code * 16):
            await conn.send(chunk)
        await conn.finish()
    elif what == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        await recv_all(conn)
        report(event="ignoring-eof")
        time.sleep(60)  # the parent must escalate to SIGKILL; this is a safety net
    elif what == "linger-after-eof":
        await recv_all(conn)
        report(event="ignoring-eof")
        time.sleep(60)
    elif what == "nested":
        # A worker that is itself a parent; it dies on command, its child lives on.
        child = await create_worker(HERE / "lib_worker.py", ["idle"])
        await conn.send(str(child.pid).encode())
        await conn.recv()
        os.kill(os.getpid(), signal.SIGKILL)
    elif what == "spawn-plain-then-die":
        # A plain subprocess that inherits everything it can (close_fds=False).
        proc = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(30)"], close_fds=False
        )
        await conn.send(str(proc.pid).encode())
        await conn.recv()
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        raise SystemExit(f"unknown behaviour {what!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("behaviour")
    parser.add_argument("--limit", type=int, default=worker_process.MAX_PAYLOAD)
    parser.add_argument("--handshake-timeout", type=float, default=60.0)
    parser.add_argument("--no-exit-on-broken", action="store_true")
    parser.add_argument("--code", type=int, default=0)
    opts = parser.parse_args()
    if opts.behaviour == "probe-sync":
        # The blocking connect(), before any event loop opens descriptors of its own.
        from worker_process.sync import connect as sync_connect

        try:
            sync_connect(handshake_timeout=1.0)
        except ChannelUnavailableError as exc:
            report(event="unavailable", error=describe(exc))
            sys.exit(4)
        report(event="connected")
        return
    asyncio.run(behave(opts))


if __name__ == "__main__":
    main()
