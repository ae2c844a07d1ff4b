"""One benchmark measurement with a Python parent; prints one JSON object.

Usage: ``python py_parent.py PEER WORKLOAD COUNT SIZE``

PEER: ``raw1`` (plain Python, one ``os.write`` per frame), ``rawb`` (plain Python, frames
batched into 64 KiB writes), ``mp`` (``multiprocessing.Pipe``), ``aio`` (this project's
asyncio API on both sides), ``sync`` (the blocking API on both sides), ``sync-node`` /
``aio-node`` (a Python parent on either API, the Node.js worker of interop/node),
``uvloop`` (as ``aio``, with uvloop's event loop on both sides),
``bare-python`` / ``bare-node`` (start-up only: ``python -c pass``, ``node -e 0``),
``aio-floor`` (W2 only: plain asyncio BufferedProtocols on both sides, no library, no
framing: about the least an asyncio peer can cost), ``uvloop-floor`` (the same on uvloop's
event loop).

WORKLOAD: ``w1`` (COUNT messages of SIZE bytes, one send each; the worker counts them and
answers once), ``w2`` (COUNT ping-pong round trips of SIZE bytes), ``w3`` (as w1, for large
payloads), ``s`` (COUNT start-ups: spawn until the handshake is complete).

Output: ``seconds`` (the timed part; for ``s`` the median of the start-ups), ``parent_kib``
and ``worker_kib`` (peak resident set sizes, VmHWM), ``count``; for ``w1``/``w3`` also ``cpu``:
the CPU seconds both processes spent in the timed part (steadier than wall time on a shared
machine). For ``s``, also ``bare``: the
median start of the bare interpreter the worker runs on (``python -c pass`` or ``node -e 0``,
spawn to exit), measured in turns with the start-ups so that both see the same machine load.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# asyncio, subprocess and multiprocessing are imported by the peers that use them only: the
# parent's peak RSS is part of the measurement.

HERE = Path(__file__).resolve().parent
WORKERS = HERE / "workers"
NODE_PEER = HERE / "node_peer.js"
HEADER = struct.Struct(">I")
Result = dict[str, Any]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def hwm_kib() -> int:
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmHWM:")))


def parse_report(reply: bytes, count: int, size: int) -> tuple[int, float]:
    """Check the worker's ``"COUNT BYTES HWM CPU"`` answer; return its peak RSS (KiB) and the
    CPU seconds it spent after the handshake."""
    fields = reply.split()
    got, total, hwm = (int(x) for x in fields[:3])
    if (got, total) != (count, count * size):
        raise SystemExit(f"worker counted {got} messages / {total} bytes")
    return hwm, float(fields[3])


def node() -> str:
    from worker_process._spawn import find_node

    return find_node()


def worker_file(peer: str) -> tuple[str, list[str]]:
    if peer.endswith("-node"):
        return str(NODE_PEER), ["worker"]
    if peer == "uvloop":
        return str(WORKERS / "wp_aio.py"), ["uvloop"]
    return str(WORKERS / ("wp_aio.py" if peer == "aio" else "wp_sync.py")), []


# --- this project's APIs ------------------------------------------------------------------------


def bare_start(argv: list[str]) -> float:
    """Seconds from spawning ``argv`` to its exit."""
    started = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    os.waitpid(pid, 0)
    return time.perf_counter() - started


def bare_argv(peer: str) -> list[str]:
    return [node(), "-e", "0"] if peer.endswith("node") else [sys.executable, "-c", "pass"]


def run_sync(peer: str, workload: str, count: int, size: int) -> Result:
    from worker_process.sync import create_worker

    file, pre = worker_file(peer)
    if workload == "s":
        times, bare = [], []
        for _ in range(count):
            bare.append(bare_start(bare_argv(peer)))
            started = time.perf_counter()
            worker = create_worker(file, [*pre, "idle"])
            times.append(time.perf_counter() - started)
            worker.close()
        return {"seconds": median(times), "bare": median(bare)}
    mode = "echo" if workload == "w2" else "count"
    message = b"\x5a" * size
    with create_worker(file, [*pre, mode, str(count)]) as worker:
        send, recv = worker.send, worker.recv
        started = time.perf_counter()
        cpu = time.process_time()
        if workload == "w2":
            for _ in range(count):
                send(message)
                recv()
            seconds = time.perf_counter() - started
            worker_kib = 0
        else:
            for _ in range(count):
                send(message)
            reply = recv()
            seconds = time.perf_counter() - started
            worker_kib, worker_cpu = parse_report(reply, count, size)
            return {"seconds": seconds, "worker_kib": worker_kib,
                    "cpu": time.process_time() - cpu + worker_cpu}
    return {"seconds": seconds, "worker_kib": worker_kib}


def run_aio(peer: str, workload: str, count: int, size: int) -> Result:
    import asyncio

    from worker_process import create_worker

    file, pre = worker_file(peer)

    async def main() -> Result:
        if workload == "s":
            times, bare = [], []
            for _ in range(count):
                bare.append(bare_start(bare_argv(peer)))
                started = time.perf_counter()
                worker = await create_worker(file, [*pre, "idle"])
                times.append(time.perf_counter() - started)
                await worker.close()
            return {"seconds": median(times), "bare": median(bare)}
        mode = "echo" if workload == "w2" else "count"
        message = b"\x5a" * size
        async with await create_worker(file, [*pre, mode, str(count)]) as worker:
            send, recv = worker.send, worker.recv
            started = time.perf_counter()
            cpu = time.process_time()
            if workload == "w2":
                for _ in range(count):
                    await send(message)
                    await recv()
                seconds = time.perf_counter() - started
                worker_kib = 0
            else:
                for _ in range(count):
                    await send(message)
                reply = await recv()
                seconds = time.perf_counter() - started
                worker_kib, worker_cpu = parse_report(reply, count, size)
                return {"seconds": seconds, "worker_kib": worker_kib,
                        "cpu": time.process_time() - cpu + worker_cpu}
        return {"seconds": seconds, "worker_kib": worker_kib}

    if peer == "uvloop":
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


# --- plain Python over a socketpair ---------------------------------------------------------------


def read_frame(sock: socket.socket, buf: bytearray) -> bytes:
    """One frame, read the simple way (ping-pong: nothing else is in flight)."""
    view = memoryview(buf)
    have = 0
    while have < 4 or have < 4 + HEADER.unpack_from(buf)[0]:
        got = sock.recv_into(view[have:])
        if not got:
            raise SystemExit("worker ended its stream")
        have += got
    return bytes(view[4:have])


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def run_raw(peer: str, workload: str, count: int, size: int) -> Result:
    import subprocess

    mine, theirs = socket.socketpair()
    mode = "echo" if workload == "w2" else "count"
    child = subprocess.Popen(
        [sys.executable, str(WORKERS / "raw.py"), str(theirs.fileno()), mode, str(count)],
        pass_fds=[theirs.fileno()],
    )
    theirs.close()
    fd = mine.fileno()
    os.write(fd, b"\x00")
    if mine.recv(1) != b"\x01":
        raise SystemExit("bad handshake")
    message = b"\x5a" * size
    pack = HEADER.pack
    buf = bytearray(1 << 16)
    worker_kib = 0
    result: Result = {}
    started = time.perf_counter()
    cpu = time.process_time()
    if workload == "w2":
        for _ in range(count):
            os.write(fd, pack(len(message)) + message)
            read_frame(mine, buf)
    elif workload == "w3":
        for _ in range(count):
            os.write(fd, pack(len(message)))
            write_all(fd, message)
    elif peer == "raw1":
        for _ in range(count):
            os.write(fd, pack(len(message)) + message)
    else:
        batch = bytearray()
        for _ in range(count):
            batch += pack(len(message))
            batch += message
            if len(batch) >= 1 << 16:
                write_all(fd, batch)
                batch.clear()
        write_all(fd, batch)
    if workload != "w2":
        worker_kib, worker_cpu = parse_report(read_frame(mine, buf), count, size)
        result["cpu"] = time.process_time() - cpu + worker_cpu
    seconds = time.perf_counter() - started
    mine.shutdown(socket.SHUT_WR)
    child.wait()
    mine.close()
    return {"seconds": seconds, "worker_kib": worker_kib, **result}


def run_aio_floor(peer: str, workload: str, count: int, size: int) -> Result:
    import asyncio
    import subprocess

    if workload != "w2":
        raise SystemExit("aio-floor measures W2 only")
    mine, theirs = socket.socketpair()
    child = subprocess.Popen(
        [sys.executable, str(WORKERS / "aio_floor.py"), str(theirs.fileno()),
         *(["uvloop"] if peer == "uvloop-floor" else [])],
        pass_fds=[theirs.fileno()],
    )
    theirs.close()
    mine.sendall(b"\x00")
    if mine.recv(1) != b"\x01":
        raise SystemExit("bad handshake")
    frame = HEADER.pack(size) + b"\x5a" * size

    async def main() -> float:
        loop = asyncio.get_running_loop()
        waiter: list[asyncio.Future[None]] = []

        class Client(asyncio.BufferedProtocol):
            buffer = bytearray(1 << 16)

            def get_buffer(self, sizehint: int) -> bytearray:
                return self.buffer

            def buffer_updated(self, nbytes: int) -> None:
                waiter.pop().set_result(None)

        transport, _ = await loop.connect_accepted_socket(Client, mine)
        started = time.perf_counter()
        for _ in range(count):
            waiter.append(loop.create_future())
            transport.write(frame)
            await waiter[0]
        seconds = time.perf_counter() - started
        transport.write_eof()  # type: ignore[attr-defined]
        transport.close()
        return seconds

    if peer == "uvloop-floor":
        import uvloop

        seconds = uvloop.run(main())
    else:
        seconds = asyncio.run(main())
    child.wait()
    return {"seconds": seconds}


# --- multiprocessing ------------------------------------------------------------------------------


def run_mp(peer: str, workload: str, count: int, size: int) -> Result:
    import multiprocessing

    sys.path.insert(0, str(WORKERS))
    import mp_child

    ctx = multiprocessing.get_context("spawn")
    if workload == "s":
        times, bare = [], []
        for _ in range(count):
            bare.append(bare_start(bare_argv(peer)))
            here, there = ctx.Pipe()
            started = time.perf_counter()
            process = ctx.Process(target=mp_child.main, args=(there, "ready", 0))
            process.start()
            here.recv_bytes()
            times.append(time.perf_counter() - started)
            process.join()
            here.close()
            there.close()
        return {"seconds": median(times), "bare": median(bare)}
    mode = "echo" if workload == "w2" else "count"
    here, there = ctx.Pipe()
    process = ctx.Process(target=mp_child.main, args=(there, mode, count))
    process.start()
    there.close()
    if here.recv_bytes() != b"ready":
        raise SystemExit("no ready message")
    message = b"\x5a" * size
    send, recv = here.send_bytes, here.recv_bytes
    worker_kib = 0
    result: Result = {}
    started = time.perf_counter()
    cpu = time.process_time()
    if workload == "w2":
        for _ in range(count):
            send(message)
            recv()
    else:
        for _ in range(count):
            send(message)
        worker_kib, worker_cpu = parse_report(recv(), count, size)
        result["cpu"] = time.process_time() - cpu + worker_cpu
    seconds = time.perf_counter() - started
    here.close()
    process.join()
    return {"seconds": seconds, "worker_kib": worker_kib, **result}


# --- bare interpreters ----------------------------------------------------------------------------


def run_bare(peer: str, workload: str, count: int, size: int) -> Result:
    times = [bare_start(bare_argv(peer)) for _ in range(count)]
    return {"seconds": median(times), "bare": median(times)}


RUNNERS: dict[str, Callable[[str, str, int, int], Result]] = {
    "raw1": run_raw,
    "rawb": run_raw,
    "mp": run_mp,
    "aio": run_aio,
    "uvloop": run_aio,
    "sync": run_sync,
    "aio-node": run_aio,
    "sync-node": run_sync,
    "aio-floor": run_aio_floor,
    "uvloop-floor": run_aio_floor,
    "bare-python": run_bare,
    "bare-node": run_bare,
}


def main() -> None:
    peer, workload, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    result = RUNNERS[peer](peer, workload, count, size)
    result.setdefault("worker_kib", 0)
    result["parent_kib"] = hwm_kib()
    result["count"] = count
    print(json.dumps(result))


if __name__ == "__main__":
    main()
