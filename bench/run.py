#!/usr/bin/env python3
"""Benchmarks: this project's two Python APIs and its Node.js peer, side by side with plain
Python sockets, ``multiprocessing`` and Node.js's own child_process IPC, in one run.

    .venv/bin/python bench/run.py            # the full run (a few minutes), prints the table
    .venv/bin/python bench/run.py --smoke    # every workload at a tiny size (CI; < 60 s)

Workloads (see README.md): W1 200 000 messages of 64 B, one send each, counted by the worker,
which answers once; W2 20 000 ping-pong round trips of 64 B; W3 64 messages of 16 MiB (1 GiB)
with the peak RSS of both sides; S spawn until the handshake is complete, next to the bare
interpreter's start measured in turns with it.

Every measurement runs in a fresh parent process (so that peak RSS is per measurement); each
is repeated ``--runs`` times, in rotating order, and the table shows medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
MIB = 1 << 20

#: workload -> (count, size) for a full run and for --smoke.
SIZES = {
    "w1": ((200_000, 64), (2_000, 64)),
    "w2": ((20_000, 64), (200, 64)),
    "w3": ((64, 16 * MIB), (4, MIB)),
    "s": ((20, 0), (2, 0)),
}
WORKLOADS = tuple(SIZES)


@dataclass
class Peer:
    key: str
    label: str
    command: Callable[[str, int, int], list[str]]
    workloads: tuple[str, ...] = WORKLOADS
    needs_wp_node: bool = False
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def py_parent(peer: str) -> Callable[[str, int, int], list[str]]:
    return lambda w, n, s: [PY, str(HERE / "py_parent.py"), peer, w, str(n), str(s)]


def node_cmd(node: str, script: str, *tail: str) -> Callable[[str, int, int], list[str]]:
    return lambda w, n, s: [node, str(HERE / script), "parent", w, str(n), str(s), *tail]


def make_peers(node: str | None) -> list[Peer]:
    peers = [
        Peer("raw1", "raw Python socketpair, 1 write/frame", py_parent("raw1"), ("w1", "w2", "w3")),
        Peer("rawb", "raw Python socketpair, batched writes", py_parent("rawb"), ("w1",)),
        Peer("mp", "multiprocessing.Pipe (spawn)", py_parent("mp")),
        Peer("aio-floor", "asyncio Protocol floor (no library, no framing)", py_parent("aio-floor"),
             ("w2",)),
        Peer("uvloop-floor", "asyncio Protocol floor on uvloop (no library, no framing)",
             py_parent("uvloop-floor"), ("w2",)),
        Peer("aio", "worker-process asyncio <-> asyncio", py_parent("aio")),
        Peer("uvloop", "worker-process asyncio on uvloop <-> on uvloop", py_parent("uvloop")),
        Peer("sync", "worker-process blocking <-> blocking", py_parent("sync")),
    ]
    if node is not None:
        peers += [
            Peer("ipc", "Node child_process.fork IPC (advanced)", node_cmd(node, "node_ipc.js")),
            Peer("sync-node", "worker-process Python blocking -> Node worker",
                 py_parent("sync-node"), needs_wp_node=True),
            Peer("aio-node", "worker-process Python asyncio -> Node worker",
                 py_parent("aio-node"), needs_wp_node=True),
            Peer("node-sync", "worker-process Node -> Python blocking worker",
                 node_cmd(node, "node_peer.js", PY, str(HERE / "workers" / "wp_sync.py")),
                 needs_wp_node=True),
            Peer("node-aio", "worker-process Node -> Python asyncio worker",
                 node_cmd(node, "node_peer.js", PY, str(HERE / "workers" / "wp_aio.py")),
                 needs_wp_node=True),
        ]
    return peers


def find_node() -> str | None:
    try:
        from worker_process._errors import WorkerStartError
        from worker_process._spawn import find_node as find
    except ImportError:
        return None
    try:
        return find()
    except WorkerStartError:
        return None


def wp_node_status(node: str) -> str | None:
    """None if interop/node exports createWorker and connect, else why not."""
    index = ROOT / "interop" / "node" / "index.js"
    if not index.exists():
        return "interop/node/index.js does not exist"
    check = (f"const m = require({json.dumps(str(index))});"
             "process.exit(typeof m.createWorker === 'function' &&"
             " typeof m.connect === 'function' ? 0 : 3)")
    result = subprocess.run([node, "-e", check], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        return f"interop/node/index.js does not export createWorker/connect: {result.stderr[-300:]}"
    return None


def job_env(node: str | None) -> dict[str, str]:
    env = dict(os.environ)
    # Measure with compiled bytecode, as an installed package runs, without writing
    # __pycache__ into the repository.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "worker-process-bench"))
    env["WORKER_PROCESS_PYTHON"] = PY
    if node is not None:
        env["WORKER_PROCESS_NODE"] = node
    return env


def run_job(cmd: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                            cwd=ROOT, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"exit {result.returncode}: {result.stderr.strip()[-600:]}")
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"no output; stderr: {result.stderr.strip()[-600:]}")
    data: dict[str, Any] = json.loads(lines[-1])
    return data


# --- the table ----------------------------------------------------------------------------------


def med(peer: Peer, workload: str, key: str = "seconds") -> float | None:
    runs = [r[key] for r in peer.results.get(workload, []) if r.get(key) is not None]
    return statistics.median(runs) if runs else None


def metrics(peer: Peer, smoke: bool) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    full = 1 if smoke else 0
    (n1, _), (n2, _), (n3, s3) = (SIZES[w][full] for w in ("w1", "w2", "w3"))
    w1, w2, w3 = med(peer, "w1"), med(peer, "w2"), med(peer, "w3")
    out["w1"] = n1 / w1 if w1 else None
    c1 = med(peer, "w1", "cpu")
    out["w1_cpu"] = c1 / n1 * 1e6 if c1 else None
    out["w2"] = w2 / n2 * 1e6 if w2 else None
    out["w3"] = n3 * s3 / w3 / 1e9 if w3 else None
    pk, wk = med(peer, "w3", "parent_kib"), med(peer, "w3", "worker_kib")
    out["rss_parent"] = pk / 1024 if pk else None
    out["rss_worker"] = wk / 1024 if wk else None
    s, bare = med(peer, "s"), med(peer, "s", "bare")
    out["s"] = s * 1e3 if s else None
    out["s_bare"] = bare * 1e3 if bare else None
    return out


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(peers: list[Peer], smoke: bool) -> tuple[str, dict[str, dict[str, float | None]]]:
    m = {p.key: metrics(p, smoke) for p in peers}
    head = ("| peer | W1 msg/s | W1 CPU µs/msg | W2 µs/round trip | W3 GB/s"
            " | W3 peak RSS parent / worker MiB | S ms (bare interpreter) |")
    rows = [head, "|" + "---|" * 7]
    for p in peers:
        x = m[p.key]
        rss = ("-" if x["rss_parent"] is None
               else f"{fmt(x['rss_parent'], '.1f')} / {fmt(x['rss_worker'], '.1f')}")
        start = "-" if x["s"] is None else f"{fmt(x['s'], '.1f')} ({fmt(x['s_bare'], '.1f')})"
        cells = [p.label, fmt(x["w1"], ",.0f"), fmt(x["w1_cpu"], ".2f"), fmt(x["w2"], ".1f"),
                 fmt(x["w3"], ".2f"), rss, start]
        for w in p.failures:
            cells[{"w1": 1, "w2": 3, "w3": 4, "s": 6}[w]] = f"FAILED ({w})"
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows), m


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def checks(m: dict[str, dict[str, float | None]]) -> list[str]:
    """The targets, as ratios from this run."""
    lines: list[str] = []

    def check(name: str, value: float | None, ok: Callable[[float], bool], spec: str) -> None:
        verdict = "n/a" if value is None else ("met" if ok(value) else "MISSED")
        lines.append(f"- {name}: {fmt(value, spec)} -> {verdict}")

    def get(peer: str, key: str) -> float | None:
        return m.get(peer, {}).get(key)

    check("W1 asyncio / raw 1-write (target >= 1.0x)",
          ratio(get("aio", "w1"), get("raw1", "w1")), lambda v: v >= 1.0, ".2f")
    check("W1 blocking / raw 1-write (target >= 0.8x)",
          ratio(get("sync", "w1"), get("raw1", "w1")), lambda v: v >= 0.8, ".2f")
    cpu = ratio(get("raw1", "w1_cpu"), get("sync", "w1_cpu"))
    if cpu is not None:
        lines.append(f"- W1 blocking / raw 1-write by CPU time per message (both processes):"
                     f" {cpu:.2f} (no target; steadier than wall time on a shared machine)")
    check("W2 blocking / multiprocessing, time per round trip (target <= 1.0x)",
          ratio(get("sync", "w2"), get("mp", "w2")), lambda v: v <= 1.0, ".2f")
    check("W2 asyncio / multiprocessing, time per round trip (target <= 1.25x)",
          ratio(get("aio", "w2"), get("mp", "w2")), lambda v: v <= 1.25, ".2f")
    check("W2 asyncio on uvloop / multiprocessing, time per round trip (target <= 1.0x)",
          ratio(get("uvloop", "w2"), get("mp", "w2")), lambda v: v <= 1.0, ".2f")
    for floor, api, name in (("aio-floor", "aio", "asyncio"),
                             ("uvloop-floor", "uvloop", "asyncio on uvloop")):
        least = ratio(get(floor, "w2"), get("mp", "w2"))
        ours = ratio(get(api, "w2"), get(floor, "w2"))
        if least is not None:
            lines.append(f"- W2 {name} floor (no library) / multiprocessing: {least:.2f}; "
                         f"worker-process {name} / that floor: {fmt(ours, '.2f')} (no target: no"
                         " asyncio code pays less than its floor on this machine)")
    names = {"aio": "asyncio", "uvloop": "asyncio on uvloop", "sync": "blocking"}
    for api, name in names.items():
        check(f"W3 {name} / raw (target >= 0.8x)",
              ratio(get(api, "w3"), get("raw1", "w3")), lambda v: v >= 0.8, ".2f")
        for side in ("parent", "worker"):
            check(f"W3 {name} peak RSS, {side} (target <= 48 MiB)",
                  get(api, f"rss_{side}"), lambda v: v <= 48, ".1f")
    for peer in ("sync-node", "aio-node", "node-sync", "node-aio"):
        if peer not in m:
            continue
        check(f"W1 {peer} / Node IPC (target >= 1.0x)",
              ratio(get(peer, "w1"), get("ipc", "w1")), lambda v: v >= 1.0, ".2f")
        check(f"W2 {peer} / Node IPC, time per round trip (target <= 1.0x)",
              ratio(get(peer, "w2"), get("ipc", "w2")), lambda v: v <= 1.0, ".2f")
        check(f"W3 {peer} / Node IPC (target >= 1.0x)",
              ratio(get(peer, "w3"), get("ipc", "w3")), lambda v: v >= 1.0, ".2f")
        check(f"S {peer} / Node IPC, start-up time (target <= 1.0x)",
              ratio(get(peer, "s"), get("ipc", "s")), lambda v: v <= 1.0, ".2f")
    s, bare = get("sync", "s"), get("sync", "s_bare")
    check("S Python (blocking) worker handshake minus bare `python -c pass`, ms (target <= 15)",
          None if s is None or bare is None else s - bare, lambda v: v <= 15, ".1f")
    s, bare = get("aio", "s"), get("aio", "s_bare")
    if s is not None and bare is not None:
        lines.append(f"- S Python asyncio worker handshake minus bare `python -c pass`, ms: "
                     f"{s - bare:.1f} (no target: it imports asyncio)")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (CI)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (default 5)")
    parser.add_argument("--only", default="", help="comma-separated workloads (w1,w2,w3,s)")
    parser.add_argument("--peers", default="", help="comma-separated peer keys")
    parser.add_argument("--json", help="also write every raw result to this file")
    args = parser.parse_args(argv)
    smoke = args.smoke
    runs = 1 if smoke else args.runs
    only = [w for w in args.only.split(",") if w] or list(WORKLOADS)
    started = time.monotonic()

    node = find_node()
    notes: list[str] = []
    if node is None:
        notes.append("no Node.js found: the Node.js peers were skipped")
    peers = make_peers(node)
    if node is not None:
        why = wp_node_status(node)
        if why is not None:
            notes.append(f"the worker-process Node.js peer was skipped: {why}")
            peers = [p for p in peers if not p.needs_wp_node]
    if args.peers:
        wanted = set(args.peers.split(","))
        peers = [p for p in peers if p.key in wanted]
    env = job_env(node)
    timeout = 60.0 if smoke else 300.0

    load_before = os.getloadavg()
    print(f"python {sys.version.split()[0]}; node {node_version(node)}; {os.cpu_count()} CPUs;"
          f" load average {load_before[0]:.2f}", flush=True)
    # Warm-up: compile the package's bytecode (into PYTHONPYCACHEPREFIX) before timing.
    for peer in peers:
        if peer.key in ("sync", "aio"):
            run_job(peer.command("s", 1, 0), env, timeout)

    for run in range(runs):
        for workload in only:
            order = [p for p in peers if workload in p.workloads]
            shift = run % len(order) if order else 0
            for peer in order[shift:] + order[:shift]:
                if workload in peer.failures:
                    continue
                count, size = SIZES[workload][1 if smoke else 0]
                try:
                    result = run_job(peer.command(workload, count, size), env, timeout)
                except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                    peer.failures[workload] = str(exc)
                    print(f"FAILED {peer.key} {workload}: {exc}", file=sys.stderr, flush=True)
                    continue
                peer.results.setdefault(workload, []).append(result)
        if not smoke:
            print(f"run {run + 1}/{runs} done ({time.monotonic() - started:.0f} s)", flush=True)

    text, m = table(peers, smoke)
    load_after = os.getloadavg()
    print()
    print(text)
    print()
    print(f"medians of {runs} run(s){' (smoke sizes)' if smoke else ''}; load average"
          f" {load_before[0]:.2f} before, {load_after[0]:.2f} after;"
          f" {time.monotonic() - started:.0f} s")
    if not smoke:
        print()
        print("\n".join(checks(m)))
    for note in notes:
        print(f"note: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {p.key: {"label": p.label, "results": p.results, "failures": p.failures}
             for p in peers}, indent=1))
    failed = [f"{p.key} {w}" for p in peers for w in p.failures]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def node_version(node: str | None) -> str:
    if node is None:
        return "none"
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
