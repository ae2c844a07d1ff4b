"""What a user gets from a built wheel and from the command line: one version everywhere,
the licence, the conformance kit's reference files (equal to ``spec/``), and help that
describes every command."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import worker_process
from worker_process.conformance.files import candidates_directory, vectors_directory
from worker_process.conformance.vectors import VECTOR_FILES

ROOT = Path(__file__).resolve().parent.parent
VERSION = "0.2.0"


def _project_field(name: str) -> str:
    """A ``[project]`` field of pyproject.toml, as written (tomllib is Python 3.11+)."""
    text = (ROOT / "pyproject.toml").read_text().split("[project]", 1)[1].split("\n[", 1)[0]
    match = re.search(rf"^{name} = (.+)$", text, re.M)
    assert match, name
    return match.group(1)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker_process", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_one_version_everywhere() -> None:
    assert _project_field("version") == f'"{VERSION}"'
    assert worker_process.__version__ == VERSION
    assert cli("--version").stdout.split() == ["worker-process", VERSION]


def test_license_file_is_mit_by_the_authors() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) the worker-process authors" in text
    assert _project_field("license") == '{ text = "MIT" }'


def test_project_urls_are_real_addresses_or_absent() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    urls = text.split("[project.urls]", 1)[1].split("\n[", 1)[0] if "[project.urls]" in text \
        else ""
    for name, url in re.findall(r'^(\S+) = "(.*)"$', urls, re.M):
        assert url.startswith("https://"), name
        assert not re.search(r"example\.(com|org)|your-|<|TODO|placeholder", url), (name, url)


def _dispatched_commands() -> list[str]:
    """Every command ``__main__.main`` dispatches on, read from its source."""
    source = (ROOT / "python" / "worker_process" / "__main__.py").read_text()
    return re.findall(r'command == "([^"]+)"', source)


def test_help_describes_every_command() -> None:
    proc = cli("--help")
    assert proc.returncode == 0
    commands = _dispatched_commands()
    assert {"conformance", "vectors", "--version"} <= set(commands)
    blocks = re.split(r"\n(?=  \S)", proc.stdout.split("commands:", 1)[1])
    described = {}
    for block in blocks:
        lines = [line for line in block.strip("\n").splitlines() if line.strip()]
        if lines:
            described[lines[0].split()[0]] = " ".join(line.strip() for line in lines[1:])
    for command in commands:
        assert len(described.get(command, "")) >= 10, f"{command} is not described"
    assert "--dir DIR" in proc.stdout
    assert str(vectors_directory()) in proc.stdout.replace("\n      ", " ")


def test_vectors_help_shows_dir_and_check_says_missing(tmp_path: Path) -> None:
    helped = cli("vectors", "--help")
    assert helped.returncode == 0 and "--dir DIR" in helped.stdout
    (tmp_path / VECTOR_FILES[0]).write_text("{}\n")
    proc = cli("vectors", "--check", "--dir", str(tmp_path))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert f"{tmp_path / VECTOR_FILES[0]} is stale" in lines[-1]
    for name in VECTOR_FILES[1:]:
        assert f"{tmp_path / name} is missing" in lines
    assert cli("vectors", "--check").returncode == 0


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "--disable-pip-version-check", "-w", str(out), str(ROOT)],
                   check=True, timeout=600, capture_output=True)
    (found,) = out.glob("worker_process-*.whl")
    return found


def test_wheel_ships_the_spec_files_unchanged(wheel: Path) -> None:
    assert wheel.name.startswith(f"worker_process-{VERSION}-")
    shipped = "worker_process/conformance/shipped/"
    expected = {f"vectors/{name}": ROOT / "spec" / "vectors" / name for name in VECTOR_FILES}
    expected["conformance.md"] = ROOT / "spec" / "conformance.md"
    for path in sorted((ROOT / "interop" / "candidates").glob("python_*.py")):
        expected[f"candidates/{path.name}"] = path
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        in_wheel = {n[len(shipped):] for n in names if n.startswith(shipped)}
        assert in_wheel == set(expected)
        for name, source in expected.items():
            assert zf.read(shipped + name) == source.read_bytes(), name
        licences = [n for n in names if n.endswith("/LICENSE") and ".dist-info/" in n]
        assert licences and zf.read(licences[0]) == (ROOT / "LICENSE").read_bytes()


def test_checkout_uses_its_own_spec_files() -> None:
    assert vectors_directory() == ROOT / "spec" / "vectors"
    assert candidates_directory() == ROOT / "interop" / "candidates"


def test_readme_documents_every_environment_variable_the_libraries_read() -> None:
    sources = [*(ROOT / "python" / "worker_process").glob("*.py"),
               ROOT / "interop" / "node" / "index.js"]
    names = {name for path in sources
             for name in re.findall(r"WORKER_PROCESS_[A-Z_]+", path.read_text())}
    assert {"WORKER_PROCESS_NODE", "WORKER_PROCESS_PYTHON"} <= names
    readme = (ROOT / "README.md").read_text()
    rows = {line.split("|")[1].strip(" `") for line in readme.splitlines()
            if line.startswith("| `WORKER_PROCESS_")}
    assert names <= rows, names - rows


def test_node_package_has_its_own_name_and_the_same_version() -> None:
    import json

    package = json.loads((ROOT / "interop" / "node" / "package.json").read_text())
    assert (package["name"], package["version"]) == ("worker-process-node", VERSION)


def _side_by_side_python_cells() -> list[tuple[str, str]]:
    """``(table heading, cell)`` for the Python column of the README's side-by-side tables."""
    section = (ROOT / "README.md").read_text().split("## Python and Node.js side by side", 1)[1]
    section = section.split("\n## ", 1)[0]
    cells = []
    heading = ""
    for line in section.splitlines():
        if line.startswith("| option |"):
            heading = line.split("|")[2].strip()
        elif line.startswith("| ") and not line.startswith("| ---"):
            cells.append((heading, line.split("|")[2]))
    return cells


def test_side_by_side_table_states_pythons_real_defaults() -> None:
    import inspect

    from worker_process._launch import DEFAULTS

    def defaults(function: Callable[..., Any]) -> dict[str, Any]:
        found = {name: p.default for name, p in inspect.signature(function).parameters.items()}
        if function.__name__ == "create_worker":  # **options: Unpack[WorkerOptions]
            found.update(DEFAULTS)
        return found

    import worker_process.sync as sync
    from worker_process import _parent, _worker

    apis = {
        "create_worker": [_parent.create_worker, sync.create_worker, _parent.Worker.close,
                          sync.Worker.close],
        "connect": [_worker.connect, sync.connect],
    }
    checked = 0
    for heading, cell in _side_by_side_python_cells():
        functions = next(fs for name, fs in apis.items() if name in heading)
        pairs = [(n, v, False) for n, v in re.findall(r"`([\w/`]+)=([^`]+)`", cell)]
        pairs += [(n, v, True)  # close(timeout=5.0): the method's own default
                  for n, v in re.findall(r"`\w+\((\w+)=([^)`]+)\)`", cell)]
        for names, value, of_method in pairs:
            for name in names.replace("`", "").split("/"):
                params = [f for f in functions if name in defaults(f)
                          and (f.__name__ == "close") == of_method]
                assert params, f"{heading}: no parameter {name!r}"
                for function in params:
                    default = defaults(function)[name]
                    assert default == eval(value), (function, name, default, value)
                    checked += 1
    assert checked >= 12
