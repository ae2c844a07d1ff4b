#!/usr/bin/env python3
"""The cost of the hop: W1/W2/W3 and the start-up of a worker reached through the relay,
beside the same worker started directly, in one run.

    .venv/bin/python bench/remote.py            # full sizes (a few minutes)
    .venv/bin/python bench/remote.py --smoke    # tiny sizes (< 60 s)

Peers (a blocking-API parent, the blocking benchmark worker ``workers/wp_sync.py``):

- ``direct``: ``create_worker(file)``;
- ``relay, no ssh``: ``remote=["env"]``: relay and serve on this host, linked by pipes (the
  cost of the relay pair alone);
- ``relay over ssh``: ``remote=[ssh, -F, cfg, host]`` to the test suite's SSH server on
  127.0.0.1 (asyncssh, ``tests/remote/sshd.py``), with OpenSSH's client when there is one. The
  server is Python: a real sshd (C) would cost less.

Each measurement is repeated ``--runs`` times in rotating order; the table shows medians.
Targets: relay W3 >= 0.5x direct; the latency overhead is W2 through the relay minus direct.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "workers" / "wp_sync.py"
MIB = 1 << 20
#: workload -> ((count, size) full, (count, size) smoke)
SIZES = {"w1": ((200_000, 64), (2_000, 64)), "w2": ((5_000, 64), (200, 64)),
         "w3": ((64, 16 * MIB), (4, MIB)), "s": ((5, 0), (2, 0))}


def measure(remote: Any, workload: str, count: int, size: int) -> float:
    """Seconds for the workload (for ``s``: the median start-up)."""
    from worker_process.sync import create_worker

    if workload == "s":
        times = []
        for _ in range(count):
            started = time.perf_counter()
            worker = create_worker(WORKER, ["idle"], remote=remote)
            times.append(time.perf_counter() - started)
            worker.close()
        return statistics.median(times)
    mode = "echo" if workload == "w2" else "count"
    message = b"\x5a" * size
    with create_worker(WORKER, [mode, str(count)], remote=remote) as worker:
        send, recv = worker.send, worker.recv
        started = time.perf_counter()
        if workload == "w2":
            for _ in range(count):
                send(message)
                recv(60)
        else:
            for _ in range(count):
                send(message)
            reply = recv(600).split()
            if (int(reply[0]), int(reply[1])) != (count, count * size):
                raise SystemExit(f"the worker counted {reply[:2]}")
        seconds = time.perf_counter() - started
    if worker.returncode != 0:
        raise SystemExit(f"the worker ended with {worker.returncode}")
    return seconds


def metric(workload: str, seconds: float, count: int, size: int) -> float:
    if workload == "w1":
        return count / seconds  # messages per second
    if workload == "w2":
        return seconds / count * 1e6  # microseconds per round trip
    if workload == "w3":
        return count * size / seconds / 1e9  # GB/s
    return seconds * 1e3  # ms to a completed handshake


def run(peers: Sequence[tuple[str, Any]], smoke: bool, runs: int,
        out: Callable[[str], None]) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, list[float]]] = {name: {} for name, _ in peers}
    for i in range(runs):
        order = list(peers[i % len(peers):]) + list(peers[: i % len(peers)])
        for workload, sizes in SIZES.items():
            count, size = sizes[1 if smoke else 0]
            for name, remote in order:
                seconds = measure(remote, workload, count, size)
                results[name].setdefault(workload, []).append(
                    metric(workload, seconds, count, size))
        out(f"run {i + 1}/{runs} done")
    return {name: {w: statistics.median(v) for w, v in per.items()}
            for name, per in results.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ["WORKER_PROCESS_REMOTE_PYTHON"] = sys.executable
    sys.path.insert(0, str(ROOT / "tests" / "remote"))
    from remotekit import start_sshd

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with start_sshd() as sshd:
        peers = [("direct", None), ("relay, no ssh", ["env"]),
                 ("relay over ssh", sshd.prefix)]
        table = run(peers, args.smoke, args.runs, say)
    head = "| peer | W1 msg/s | W2 µs/round trip | W3 GB/s | S ms |"
    lines = [head, "|" + " --- |" * 5]
    for name, _ in peers:
        m = table[name]
        lines.append(f"| {name} | {m['w1']:,.0f} | {m['w2']:.1f} | {m['w3']:.2f} |"
                     f" {m['s']:.0f} |")
    direct = table["direct"]
    lines.append("")
    for name in ("relay, no ssh", "relay over ssh"):
        m = table[name]
        ratio = m["w3"] / direct["w3"]
        verdict = "ok" if ratio >= 0.5 else "BELOW TARGET"
        lines.append(f"- {name}: W3 {ratio:.2f}x direct (target >= 0.5x: {verdict});"
                     f" W1 {m['w1'] / direct['w1']:.2f}x; latency overhead"
                     f" +{m['w2'] - direct['w2']:.0f} µs per round trip;"
                     f" start-up +{m['s'] - direct['s']:.0f} ms")
    if args.smoke:
        lines.append("(smoke sizes: the numbers mean nothing)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
