"""Python and Node.js, with real processes, in both directions (and Node.js to Node.js as a
sanity row), under every Node.js found."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import msgpack
import pytest

from worker_process import (
    HandshakeByteError,
    WorkerExitError,
    create_worker,
)

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ROOT / "interop" / "drivers"
WORKERS = ROOT / "tests" / "workers"
T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 120.0) -> T:
    async def bounded() -> T:
        try:
            return await asyncio.wait_for(coro, timeout)
        except (TimeoutError, asyncio.TimeoutError):
            pytest.fail(f"did not finish within {timeout} s")

    return asyncio.run(bounded())


def node_worker(node: str, *args: str) -> list[str]:
    return [node, str(DRIVERS / "node_worker.js"), *args]


def python_worker(name: str, *args: str) -> list[str]:
    return [sys.executable, str(WORKERS / name), *args]


def node_parent(node: str, scenario: list[str], worker: list[str]) -> dict[str, Any]:
    """Run the Node.js parent driver; return the JSON it printed."""
    result = subprocess.run(
        [node, str(DRIVERS / "node_parent.js"), *scenario, "--", *worker],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, f"node parent failed:\n{result.stderr}"
    lines = result.stdout.strip().splitlines()
    assert lines, f"node parent printed nothing:\n{result.stderr}"
    report: dict[str, Any] = json.loads(lines[-1])
    return report


# -- Python parent -> Node.js worker ---------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 16 * 1024 * 1024, 64 * 1024 * 1024])
def test_python_parent_node_worker_echo(node: str, size: int) -> None:
    payload = os.urandom(size)

    async def main() -> None:
        argv = node_worker(node, "echo")
        async with await create_worker(argv[0], argv[1:], is_command=True) as worker:
            await worker.send(payload)
            assert await worker.recv() == payload
        assert worker.returncode == 0
        assert worker.lifetime.result() is None

    run(main())


def test_python_parent_node_worker_10k_both_ways(node: str) -> None:
    count = 10_000

    async def main() -> None:
        argv = node_worker(node, "echo")
        async with await create_worker(argv[0], argv[1:], is_command=True) as worker:

            async def sender() -> None:
                for i in range(count):
                    await worker.send(i.to_bytes(4, "big") * (i % 7))

            task = asyncio.create_task(sender())
            for i in range(count):
                assert await worker.recv() == i.to_bytes(4, "big") * (i % 7)
            await task
        assert worker.returncode == 0

    run(main())


def test_python_parent_node_worker_msgpack(node: str) -> None:
    values: list[Any] = [
        {"name": "world", "n": 42, "list": [1, 2.5, "three", None, True]},
        {"nested": {"bin": b"\x00\x01\xff", "big": 2**40}},
        "a string", -7, [],
    ]

    async def main() -> None:
        argv = node_worker(node, "msgpack")
        async with await create_worker(argv[0], argv[1:], is_command=True) as worker:
            for value in values:
                await worker.send(msgpack.packb(value, use_bin_type=True))
                answer = msgpack.unpackb(await worker.recv(), raw=False)
                assert answer == {"lang": "node", "echo": value}

    run(main())


def test_python_parent_node_worker_finish_and_exit(node: str) -> None:
    async def main() -> None:
        argv = node_worker(node, "burst", "5000", "0")
        worker = await create_worker(argv[0], argv[1:], is_command=True)
        received = [message async for message in worker]
        assert await worker.lifetime is None
        await worker.close()
        assert len(received) == 5000
        for i, message in enumerate(received):
            assert message == i.to_bytes(4, "big") * 64

    run(main())


@pytest.mark.parametrize(("arg", "returncode"), [("3", 3), ("kill", -signal.SIGKILL)])
def test_python_parent_node_worker_exit_status(node: str, arg: str, returncode: int) -> None:
    async def main() -> None:
        argv = node_worker(node, "exit", arg)
        async with await create_worker(argv[0], argv[1:], is_command=True) as worker:
            assert await worker.recv() == b"ready"
            with pytest.raises(WorkerExitError) as info:
                await worker.lifetime
            assert info.value.returncode == returncode

    run(main())


def test_python_parent_node_worker_js_file_runs_under_node(node: str) -> None:
    async def main() -> None:
        os.environ["WORKER_PROCESS_NODE"] = node
        try:
            async with await create_worker(DRIVERS / "node_worker.js", ["echo"]) as worker:
                await worker.send(b"ping")
                assert await worker.recv() == b"ping"
        finally:
            del os.environ["WORKER_PROCESS_NODE"]

    run(main())


# -- Node.js parent -> Python worker ---------------------------------------------------------


def test_node_parent_python_worker_echo(node: str) -> None:
    report = node_parent(node, ["echo-sizes"], python_worker("aio_echo.py"))
    assert [r["equal"] for r in report["results"]] == [True] * 5
    assert report["lifetime"] == {"ok": True}
    assert report["status"] == {"exitCode": 0, "signal": None}


def test_node_parent_python_worker_10k_both_ways(node: str) -> None:
    report = node_parent(node, ["stream", "10000"], python_worker("aio_echo.py"))
    assert report["received"] == report["inOrder"] == 10_000
    assert report["lifetime"] == {"ok": True}


def test_node_parent_python_worker_msgpack(node: str) -> None:
    report = node_parent(node, ["msgpack"], python_worker("aio_msgpack.py"))
    assert report["answers"] == [{"lang": "python", "same": True}] * 5


def test_node_parent_python_worker_finish_and_exit(node: str) -> None:
    report = node_parent(node, ["burst"], python_worker("aio_burst_exit.py", "5000", "0"))
    assert report["count"] == 5000
    assert report["lifetime"] == {"ok": True}


@pytest.mark.parametrize(("arg", "exit_code", "sig"), [("3", 3, None), ("kill", None, "SIGKILL")])
def test_node_parent_python_worker_exit_status(
    node: str, arg: str, exit_code: int | None, sig: str | None
) -> None:
    report = node_parent(node, ["lifetime"], python_worker("aio_exit.py", arg))
    assert report["first"] == "ready"
    assert report["lifetime"]["ok"] is False
    assert (report["lifetime"]["exitCode"], report["lifetime"]["signal"]) == (exit_code, sig)


def test_node_parent_bad_handshake_fails_at_once(node: str) -> None:
    report = node_parent(node, ["handshake"], python_worker("raw_handshake.py", "07"))
    assert report["ok"] is False
    assert report["code"] == "ERR_BAD_HANDSHAKE"
    assert report["seconds"] < 1.0


def test_python_parent_bad_handshake_from_node_side_fails_at_once(node: str) -> None:
    # A rogue worker started by Node.js's own interpreter, answering 0x05.
    rogue = "const fs=require('fs');fs.readSync(3,Buffer.alloc(1));fs.writeSync(3,Buffer.of(5));"

    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(HandshakeByteError) as info:
            await create_worker(node, ["-e", rogue + "setTimeout(()=>{},30000)"],
                                is_command=True)
        assert info.value.got == 5
        assert time.monotonic() - started < 1.0

    run(main())


# -- Node.js parent -> Node.js worker (sanity row) -------------------------------------------


def test_node_parent_node_worker(node: str) -> None:
    report = node_parent(node, ["echo-sizes"], node_worker(node, "echo"))
    assert [r["equal"] for r in report["results"]] == [True] * 5
    assert report["lifetime"] == {"ok": True}
    report = node_parent(node, ["stream", "10000"], node_worker(node, "echo"))
    assert report["received"] == report["inOrder"] == 10_000
    report = node_parent(node, ["msgpack"], node_worker(node, "msgpack"))
    assert report["answers"] == [{"lang": "node", "same": True}] * 5


# -- parent killed with SIGKILL -> the worker exits 1 within 1 s -----------------------------


def orphan(middle: list[str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(WORKERS / "orphan_driver.py"), *middle],
        capture_output=True, text=True, timeout=90,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_python_parent_killed_node_worker_exits_1(node: str) -> None:
    report = orphan([sys.executable, str(WORKERS / "middle_parent.py"),
                     *node_worker(node, "idle")])
    assert report["exit_code"] == 1
    assert report["seconds"] < 1.0


def test_node_parent_killed_python_worker_exits_1(node: str) -> None:
    report = orphan([node, str(DRIVERS / "node_parent.js"), "middle", "--",
                     *python_worker("aio_idle.py")])
    assert report["exit_code"] == 1
    assert report["seconds"] < 1.0


def test_node_parent_killed_node_worker_exits_1(node: str) -> None:
    report = orphan([node, str(DRIVERS / "node_parent.js"), "middle", "--",
                     *node_worker(node, "idle")])
    assert report["exit_code"] == 1
    assert report["seconds"] < 1.0
