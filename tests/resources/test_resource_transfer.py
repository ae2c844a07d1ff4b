"""A checksummed transfer in both directions at once, with random message sizes and random
write chunking, loses no byte and no message boundary.

Each direction carries ``$WORKER_PROCESS_TRANSFER_BYTES`` bytes (default 1 GiB; CI runs the
default). The 10 GiB version::

    WORKER_PROCESS_TRANSFER_BYTES=$((10 << 30)) .venv/bin/python -m pytest \\
        tests/resources/test_resource_transfer.py -p no:cacheprovider -s

Against a ``library`` worker both ends are the asyncio API; against a ``raw`` worker the
worker writes its frames in random pieces (1 byte to 256 KiB) and reads in random-sized
``recv`` calls, so the parent's transport meets every cut.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest
from resourcekit import PROGRAMS, program, run_bounded

from worker_process import EndOfStream, create_worker

sys.path.insert(0, str(PROGRAMS))
from res_transfer import Tally, messages

TRANSFER_BYTES = int(os.environ.get("WORKER_PROCESS_TRANSFER_BYTES", str(1 << 30)))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["library", "raw"])
def test_checksummed_duplex_transfer(mode: str, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    parent_seed, worker_seed = 0x1234, 0x5678 + len(mode)

    async def scenario() -> tuple[Tally, Tally, float]:
        sent, received = Tally(), Tally()
        start = time.monotonic()
        worker = await create_worker(
            program("res_transfer.py"),
            [mode, str(worker_seed), str(TRANSFER_BYTES), str(report_path)],
        )
        try:
            async def send_all() -> None:
                for payload in messages(parent_seed, TRANSFER_BYTES):
                    await worker.send(payload)
                    sent.add(payload)

            async def recv_all() -> None:
                while True:
                    try:
                        received.add(await worker.recv())
                    except EndOfStream:
                        return

            await asyncio.gather(send_all(), recv_all())
        finally:
            await worker.close(timeout=60)
        assert worker.returncode == 0, f"the worker exited with {worker.returncode}"
        return sent, received, time.monotonic() - start

    # 2 minutes per GiB moved (both directions) is far more than this needs on 2 slow cores.
    budget = 60 + 120 * (2 * TRANSFER_BYTES / (1 << 30))
    sent, received, elapsed = run_bounded(scenario, budget, f"{mode} transfer")
    report = json.loads(report_path.read_text())
    assert sent.summary() == report["received"], "parent -> worker lost or changed data"
    assert received.summary() == report["sent"], "worker -> parent lost or changed data"
    assert sent.bytes == received.bytes == TRANSFER_BYTES
    rate = 2 * TRANSFER_BYTES / elapsed / (1 << 20)
    print(f"{mode}: 2 x {TRANSFER_BYTES >> 20} MiB in {elapsed:.1f} s ({rate:.0f} MiB/s), "
          f"{sent.count} + {received.count} messages")
