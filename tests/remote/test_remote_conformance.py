"""The conformance kit through the relay, over a real SSH server: the remote worker passes the
worker role with the relay as its stand-in, and the candidate parents (unchanged) pass the
parent role when the worker they start is a relay."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from remotekit import HERE, Sshd

ROOT = HERE.parent.parent
CANDIDATES = ROOT / "interop" / "candidates"
RUN_TIMEOUT = 900
#: Each scenario's time, scaled: every start of a worker now includes an ssh connection.
SCALE = "4"


def _node() -> str | None:
    sys.path.insert(0, str(ROOT / "tests"))
    from nodes import find_nodes

    found: list[str] = find_nodes()
    return found[0] if found else None


def _implementations() -> list[tuple[str, str, list[str]]]:
    py = sys.executable
    found = [
        ("python-asyncio", "worker", [py, str(CANDIDATES / "python_asyncio_worker.py")]),
        ("python-asyncio", "parent", [py, str(CANDIDATES / "python_asyncio_parent.py")]),
        ("python-sync", "worker", [py, str(CANDIDATES / "python_sync_worker.py")]),
        ("python-sync", "parent", [py, str(CANDIDATES / "python_sync_parent.py")]),
    ]
    node = _node()
    if node is not None:
        found += [("node", "worker", [node, str(CANDIDATES / "node_worker.js")]),
                  ("node", "parent", [node, str(CANDIDATES / "node_parent.js")])]
    return found


def _run(role: str, command: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "worker_process", "conformance", role, "--json",
         "--timeout-scale", SCALE, "--", *command],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=ROOT,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


@pytest.mark.slow
@pytest.mark.parametrize(("name", "role", "candidate"), _implementations(),
                         ids=[f"{n}-{r}" for n, r, _ in _implementations()])
def test_conformance_through_the_relay(sshd: Sshd, name: str, role: str,
                                       candidate: list[str]) -> None:
    target = json.dumps(sshd.prefix)
    if role == "worker":
        # The runner's worker is the relay; the candidate worker runs behind serve, with the
        # limit the runner sets in the relay's environment.
        relay = [sys.executable, "-m", "worker_process", "relay", "--env",
                 "WORKER_PROCESS_MAX_MESSAGE_SIZE"]
        if candidate[0] == sys.executable:  # FILE.py: run by the remote python
            command = [*relay, target, "--", *candidate[1:]]
        else:
            command = [*relay, "--command", target, "--", *candidate]
    else:
        command = [sys.executable, str(HERE / "via_relay.py"), target, "--", *candidate]
    report = _run(role, command)
    failures = [f"{r['id']} ({r['level']}): {r['status']}: {r['reason']}"
                for r in report["results"] if r["status"] != "pass"]
    assert not failures, f"{name} {role} through the relay:\n" + "\n".join(failures)
