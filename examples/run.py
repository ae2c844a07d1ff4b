#!/usr/bin/env python3
"""Run an example from a fresh clone: ``python3 examples/run.py [NAME]`` (default ``parent``).

Sets up ``.venv`` at the repository root the first time (the package and msgpack), then runs
``examples/NAME.py`` with it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from run import ensure_venv  # noqa: E402

name = sys.argv[1] if len(sys.argv) > 1 else "parent"
python = ensure_venv("examples")
sys.exit(subprocess.run([str(python), str(HERE / f"{name}.py"), *sys.argv[2:]]).returncode)
