"""Back-pressure: a slow reader facing a writer that sends 1 GiB as fast as it can keeps its
memory bounded, because the pressure reaches the writer (whose memory stays bounded too).

RSS is read from ``/proc/<pid>/status`` every few milliseconds by a sampling thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from resourcekit import MiB, RssSampler, program, rss_bytes, run_bounded

from worker_process import Worker, create_worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nodes import find_nodes

GiB = 1 << 30
TOTAL = GiB
SIZE = MiB
#: The reader's RSS may grow at most this much above its baseline.
READER_BOUND = 64 * MiB
#: A Python writer's RSS (interpreter + asyncio + one payload + the bounded write queue).
PY_WRITER_BOUND = 96 * MiB
FLOOD = program("res_flood.py")
NODE_PEER = Path(__file__).resolve().parents[2] / "interop" / "node" / "index.js"
NODES = find_nodes() if NODE_PEER.exists() else []


async def slow_read(worker: Worker, every: int = 8, delay: float = 0.01) -> int:
    """Consume everything, pausing ``delay`` s every ``every`` messages; return the bytes."""
    received = count = 0
    async for message in worker:
        received += len(message)
        count += 1
        if count % every == 0:
            await asyncio.sleep(delay)  # the slow consumer's work
    return received


@pytest.mark.slow
def test_slow_parent_reader_python_worker_floods_1gib() -> None:
    sampler = RssSampler()
    baseline = rss_bytes()
    sampler.watch("self")

    async def scenario() -> float:
        start = time.monotonic()
        async with await create_worker(FLOOD, ["send", str(TOTAL), str(SIZE)]) as worker:
            sampler.watch(worker.pid)
            assert await slow_read(worker) == TOTAL
        assert worker.returncode == 0 and worker.lifetime.result() is None
        sampler.peak["writer"] = sampler.peak.get(worker.pid, 0)
        return time.monotonic() - start

    with sampler.running():
        elapsed = run_bounded(scenario, 180, "1 GiB to a slow parent")
    growth = sampler.peak["self"] - baseline
    assert growth < READER_BOUND, f"the reading parent's RSS grew by {growth / MiB:.1f} MiB"
    writer = sampler.peak["writer"]
    assert 0 < writer < PY_WRITER_BOUND, f"the writer's RSS peaked at {writer / MiB:.1f} MiB"
    print(f"1 GiB to a slow parent: {elapsed:.1f} s, reader +{growth / MiB:.1f} MiB, "
          f"writer peak {writer / MiB:.1f} MiB")


@pytest.mark.slow
def test_slow_worker_reader_python_parent_floods_1gib() -> None:
    sampler = RssSampler()
    baseline = rss_bytes()
    sampler.watch("self")
    payload = b"\x5a" * SIZE

    async def scenario() -> float:
        start = time.monotonic()
        worker = await create_worker(FLOOD, ["slow-read", "8", "0.01"])
        try:
            sampler.watch(worker.pid)
            for _ in range(TOTAL // SIZE):
                await worker.send(payload)
        finally:
            await worker.close(timeout=60)
        assert worker.returncode == 0
        assert int(await worker.recv()) == TOTAL
        sampler.peak["reader"] = sampler.peak.get(worker.pid, 0)
        return time.monotonic() - start

    with sampler.running():
        elapsed = run_bounded(scenario, 180, "1 GiB to a slow worker")
    reader = sampler.peak["reader"]
    assert 0 < reader < PY_WRITER_BOUND, (
        f"the reading worker's RSS peaked at {reader / MiB:.1f} MiB")
    growth = sampler.peak["self"] - baseline
    assert growth < READER_BOUND, f"the writing parent's RSS grew by {growth / MiB:.1f} MiB"
    print(f"1 GiB to a slow worker: {elapsed:.1f} s, worker peak {reader / MiB:.1f} MiB, "
          f"parent +{growth / MiB:.1f} MiB")


@pytest.mark.slow
@pytest.mark.interop
@pytest.mark.skipif(not NODES, reason="no Node.js, or interop/node not there yet")
@pytest.mark.parametrize("node", NODES or ["node"])
def test_slow_parent_reader_node_worker_floods(node: str) -> None:
    total = 256 * MiB
    sampler = RssSampler()
    baseline = rss_bytes()
    sampler.watch("self")

    async def scenario() -> None:
        worker = await create_worker(node, [program("res_node_flood.js"), str(total), str(SIZE)],
                                     is_command=True)
        async with worker:
            sampler.watch(worker.pid)
            assert await slow_read(worker) == total
        assert worker.returncode == 0
        sampler.peak["writer"] = sampler.peak.get(worker.pid, 0)

    with sampler.running():
        run_bounded(scenario, 180, "256 MiB from a Node worker to a slow parent")
    growth = sampler.peak["self"] - baseline
    assert growth < READER_BOUND, f"the reading parent's RSS grew by {growth / MiB:.1f} MiB"
    assert sampler.peak["writer"] < 192 * MiB, "the Node writer buffered what it could not send"


@pytest.mark.slow
@pytest.mark.interop
@pytest.mark.skipif(not NODES, reason="no Node.js, or interop/node not there yet")
@pytest.mark.parametrize("node", NODES or ["node"])
def test_slow_node_parent_reader_python_worker_floods(node: str) -> None:
    total = 256 * MiB
    env = {**os.environ, "WORKER_PROCESS_PYTHON": sys.executable}
    proc = subprocess.Popen(
        [node, program("res_node_slow_parent.js"), FLOOD, str(total), str(SIZE), "1", "10"],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    sampler = RssSampler()
    try:
        assert proc.stdout is not None
        started = json.loads(proc.stdout.readline())
        baseline = rss_bytes(proc.pid)
        sampler.watch(started["pid"])
        with sampler.running():
            out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert json.loads(out.splitlines()[-1])["received"] == total
    growth = sampler.peak[started["pid"]] - baseline
    assert growth < READER_BOUND, f"the slow Node parent's RSS grew by {growth / MiB:.1f} MiB"
