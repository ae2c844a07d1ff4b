"""The examples in README.md and examples/ run and print what they should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nodes import find_nodes

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(command: list[str]) -> str:
    env = dict(os.environ, WORKER_PROCESS_PYTHON=sys.executable)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_quickstart() -> None:
    out = run_example([sys.executable, str(EXAMPLES / "parent.py")])
    assert "{'hello': 'world', 'length': 5}" in out
    assert "worker exited with 0" in out


@pytest.mark.parametrize("node", find_nodes() or ["no-node-found"])
def test_python_drives_node(node: str) -> None:
    os.environ["WORKER_PROCESS_NODE"] = node
    try:
        out = run_example([sys.executable, str(EXAMPLES / "python_drives_node.py")])
    finally:
        del os.environ["WORKER_PROCESS_NODE"]
    assert "'hello': 'world', 'from': 'node v" in out
    assert "node worker exited with 0" in out


@pytest.mark.parametrize("node", find_nodes() or ["no-node-found"])
def test_node_drives_python(node: str) -> None:
    out = run_example([node, str(EXAMPLES / "node_drives_python.js")])
    assert "hello: 'world', from: 'python" in out
    assert "python worker exited with 0" in out


@pytest.mark.parametrize("node", find_nodes() or ["no-node-found"])
def test_node_pool(node: str) -> None:
    out = run_example([node, str(EXAMPLES / "node_pool.js")])
    assert "hashed 2000 chunks; in order and correct: true" in out
    assert "crashed on chunk 1000, which was retried" in out
    assert "workers running after close(): 0" in out


@pytest.mark.parametrize("name", ["pool_hash", "pool_hash_sync"])
def test_pool_hashes_through_a_crash(name: str) -> None:
    out = run_example([sys.executable, str(EXAMPLES / f"{name}.py")])
    assert "2000 digests, in input order; a worker crashed: True" in out


@pytest.mark.parametrize("node", find_nodes() or ["no-node-found"])
def test_python_pool_of_node(node: str) -> None:
    os.environ["WORKER_PROCESS_NODE"] = node
    try:
        out = run_example([sys.executable, str(EXAMPLES / "python_pool_of_node.py")])
    finally:
        del os.environ["WORKER_PROCESS_NODE"]
    assert "node workers: 2" in out
    assert "500 digests from Node.js, in input order" in out
