"""The API contract suite once more, with every asyncio loop on uvloop: the parent's (its
asyncio driver makes a uvloop loop) and every asyncio worker's (``uvloop_site`` on
PYTHONPATH sets uvloop's policy in each child). The asyncio API must behave the same."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

import test_api_contract as contract
from test_api_contract import *  # noqa: F403  # the same tests, collected again here

SITE = Path(__file__).parent / "uvloop_site"


@pytest.fixture(autouse=True)
def on_uvloop(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(contract, "new_event_loop", uvloop.new_event_loop)
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{SITE}{os.pathsep}{path}" if path else str(SITE))
    monkeypatch.setenv("WORKER_PROCESS_TEST_LOOP", "uvloop")
    yield


def test_workers_and_parent_really_run_on_uvloop() -> None:
    loop = contract.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    probe = (
        "import asyncio\n"
        "async def main():\n"
        "    print(type(asyncio.get_running_loop()).__module__)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip().startswith("uvloop"), done.stdout
