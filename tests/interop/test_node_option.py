"""Which Node.js runs a ``.js`` worker: the ``node=`` argument of ``create_worker`` (both
APIs), else ``$WORKER_PROCESS_NODE``, else ``node`` on PATH."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import worker_process
import worker_process.sync
from worker_process import WorkerStartError

#: Sends back which launcher started it, then ends.
WORKER_JS = """\
const { connect } = require(%r);
connect().then(async (conn) => {
  await conn.send(Buffer.from(process.env.LAUNCHED_BY || 'plain'));
  await conn.finish();
});
"""
ROOT = Path(__file__).resolve().parents[2]


def _launcher(folder: Path, name: str, node: str) -> Path:
    """An executable that runs the real ``node`` with LAUNCHED_BY set to its own name."""
    path = folder / name
    path.write_text(f'#!/bin/sh\nLAUNCHED_BY={name} exec "{node}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def worker_js(tmp_path: Path) -> Path:
    path = tmp_path / "which.js"
    path.write_text(WORKER_JS % str(ROOT / "interop" / "node"))
    return path


def _sync_reply(worker_js: Path, **kwargs: Any) -> bytes:
    with worker_process.sync.create_worker(worker_js, **kwargs) as worker:
        return worker.recv(timeout=60)


def _aio_reply(worker_js: Path, **kwargs: Any) -> bytes:
    async def main() -> bytes:
        worker = await worker_process.create_worker(worker_js, **kwargs)
        async with worker:
            return await asyncio.wait_for(worker.recv(), 60)

    return asyncio.run(main())


@pytest.mark.parametrize("reply", [_sync_reply, _aio_reply], ids=["sync", "asyncio"])
def test_node_argument_picks_the_executable(
    reply: Callable[..., bytes], node: str, worker_js: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_path = _launcher(tmp_path, "by-path", node)
    _launcher(tmp_path, "by-name", node)
    from_env = _launcher(tmp_path, "from-env", node)
    monkeypatch.setenv("WORKER_PROCESS_NODE", str(from_env))
    assert reply(worker_js) == b"from-env"
    assert reply(worker_js, node=by_path) == b"by-path"
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    assert reply(worker_js, node="by-name", env=env) == b"by-name"
    with pytest.raises(WorkerStartError, match="no-such-node"):
        reply(worker_js, node=str(tmp_path / "no-such-node"))
