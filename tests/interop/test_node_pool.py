"""A Node.js pool (``createPool``) of Python workers exchanging msgpack, under every Node.js
found: replies in input order, a worker crash mid-request retried on another worker, every
worker reaped by ``close()``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "interop" / "drivers" / "node_pool.js"
WORKER = ROOT / "tests" / "workers" / "sync_msgpack_jobs.py"


def test_node_pool_of_python_workers_msgpack(node: str, tmp_path: Path) -> None:
    crash_file = tmp_path / "crashed"
    result = subprocess.run(
        [node, str(DRIVER), "200", str(crash_file), "--", sys.executable, str(WORKER)],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, f"node pool failed:\n{result.stderr}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["inOrder"], report
    assert report["hashesMatch"], report
    assert crash_file.exists(), "no worker crashed"
    # The crashed worker was replaced: some reply came from a worker started later.
    assert set(report["workersThatReplied"]) - set(report["started"]), report
    assert report["pidsAfterClose"] == []
    for pid in report["started"] + report["workersThatReplied"]:
        assert not os.path.exists(f"/proc/{pid}"), f"worker {pid} is still there"
