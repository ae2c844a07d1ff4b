"""Build hook: the wheel also carries the conformance kit's reference files.

``spec/vectors/*.json``, ``spec/conformance.md`` and the Python reference candidates in
``interop/candidates/`` live outside the package in the repository; they are copied into
``worker_process/conformance/shipped/`` when a wheel is built, so an installed runner and
``worker-process vectors --check`` find them (``worker_process.conformance.files``). An
editable install reads them from the checkout instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent

#: (source in the repository, destination under worker_process/conformance/shipped/).
SHIPPED = [
    *((p, f"vectors/{p.name}") for p in sorted((ROOT / "spec" / "vectors").glob("*.json"))),
    (ROOT / "spec" / "conformance.md", "conformance.md"),
    *((p, f"candidates/{p.name}")
      for p in sorted((ROOT / "interop" / "candidates").glob("python_*.py"))),
]


class BuildWithSpec(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "worker_process" / "conformance" / "shipped"
        shutil.rmtree(target, ignore_errors=True)  # nothing left from an earlier build
        for source, name in SHIPPED:
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)


setup(cmdclass={"build_py": BuildWithSpec})
