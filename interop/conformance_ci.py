#!/usr/bin/env python3
"""Score every implementation in this repository with the conformance kit.

Runs ``python -m worker_process conformance worker|parent`` against the candidate programs in
``interop/candidates/``: the Python asyncio API, the Python blocking API, and the Node.js peer
under every Node.js in ``$WORKER_PROCESS_TEST_NODES`` (os.pathsep-separated; found on the
machine when unset). Prints each run's table, then one matrix per role, and exits 1 if any
MUST scenario failed anywhere.

``tests/run.py`` runs it with the project's virtualenv python from the repository root.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = ROOT / "interop" / "candidates"
#: Bound on one run of the kit (every scenario bounds itself far below this).
RUN_TIMEOUT = 600


def _nodes() -> list[str]:
    explicit = os.environ.get("WORKER_PROCESS_TEST_NODES")
    if explicit:
        return [n for n in explicit.split(os.pathsep) if n]
    sys.path.insert(0, str(ROOT / "tests"))
    nodes = importlib.import_module("nodes")
    found: list[str] = nodes.find_nodes()
    return found


def _node_version(node: str) -> str:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _has_sync_api() -> bool:
    try:
        import worker_process.sync  # noqa: F401
    except ImportError:
        return False
    return True


def implementations() -> list[tuple[str, dict[str, list[str]]]]:
    """(name, {role: command}) for every implementation to score."""
    py = sys.executable
    found: list[tuple[str, dict[str, list[str]]]] = [
        ("python-asyncio", {
            "worker": [py, str(CANDIDATES / "python_asyncio_worker.py")],
            "parent": [py, str(CANDIDATES / "python_asyncio_parent.py")],
        }),
    ]
    if _has_sync_api():
        found.append(("python-sync", {
            "worker": [py, str(CANDIDATES / "python_sync_worker.py")],
            "parent": [py, str(CANDIDATES / "python_sync_parent.py")],
        }))
    if (ROOT / "interop" / "node" / "index.js").exists():
        for node in _nodes():
            found.append((f"node-{_node_version(node)}", {
                "worker": [node, str(CANDIDATES / "node_worker.js")],
                "parent": [node, str(CANDIDATES / "node_parent.js")],
            }))
    return found


def main() -> int:
    from worker_process.conformance.report import render_matrix, render_table
    from worker_process.conformance.scenarios import Level, Result

    started = time.monotonic()
    runs: dict[str, list[tuple[str, list[Result]]]] = {"worker": [], "parent": []}
    broken_runs: list[str] = []
    for name, commands in implementations():
        for role in ("worker", "parent"):
            command = commands[role]
            t0 = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "worker_process", "conformance", role, "--json",
                 "--name", name, "--", *command],
                capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=ROOT,
            )
            try:
                report = json.loads(proc.stdout)
            except ValueError:
                print(f"\n{name} ({role}): the kit failed (exit {proc.returncode}):\n"
                      f"{proc.stderr[-2000:]}", flush=True)
                broken_runs.append(f"{name} {role}")
                continue
            results = [Result.from_json(r) for r in report["results"]]
            runs[role].append((name, results))
            print()
            print(render_table(role, f"{name}: {' '.join(command)}", results), end="")
            print(f"({time.monotonic() - t0:.1f} s)", flush=True)

    print()
    for role in ("worker", "parent"):
        print(render_matrix(role, runs[role]))
    failing = [
        f"{name} {role}: {r.id}"
        for role, role_runs in runs.items()
        for name, results in role_runs
        for r in results
        if r.level is Level.MUST and not r.passed
    ]
    print(f"conformance: {sum(len(v) for v in runs.values())} runs in"
          f" {time.monotonic() - started:.0f} s; MUST failures: {len(failing)}")
    for line in failing + [f"{run}: no report" for run in broken_runs]:
        print(f"  FAILED {line}")
    return 1 if failing or broken_runs else 0


if __name__ == "__main__":
    sys.exit(main())
