"""A Python pool (asyncio and blocking) of Node.js workers, msgpack payloads: the request
convention of spec/requests.md across languages (served replies written by the Node.js worker
itself, and raw one-for-one replies)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from pathlib import Path

import msgpack
import pytest

from worker_process import NoReplyError, Pool, RemoteError, sync

WORKER = str(Path(__file__).resolve().parents[2] / "interop" / "drivers" / "node_pool_worker.js")


def request(op: str, data: bytes | str) -> bytes:
    packed: bytes = msgpack.packb({"op": op, "data": data})
    return packed


@pytest.mark.parametrize("mode", ["served", "raw"])
def test_asyncio_pool_of_node_workers(node: str, mode: str) -> None:
    chunks = [os.urandom(1000 + i) for i in range(200)]

    async def main() -> None:
        pool = Pool(node, [WORKER, mode], size=2, is_command=True, raw=mode == "raw")
        async with pool:
            requests = (request("hash", c) for c in chunks)
            replies = [msgpack.unpackb(r) async for r in pool.map(requests)]
            assert [r["sha256"] for r in replies] == [hashlib.sha256(c).hexdigest() for c in chunks]
            assert len({r["pid"] for r in replies}) == 2
            if mode == "served":
                with pytest.raises(RemoteError) as info:
                    await pool.submit(request("throw", "not a chunk"))
                assert (info.value.type, info.value.message) == ("TypeError", "not a chunk")
                assert "node_pool_worker.js" in info.value.traceback
            else:
                reply = msgpack.unpackb(await pool.submit(request("throw", "not a chunk")))
                assert reply == {"error": "not a chunk"}
            with pytest.raises(NoReplyError) as died:
                await pool.submit(request("crash", b""))
            assert died.value.signal == signal.SIGKILL
            after = msgpack.unpackb(await pool.submit(request("hash", b"x")))
            assert after["sha256"] == hashlib.sha256(b"x").hexdigest()
            pids = pool.pids
        assert all(not Path(f"/proc/{pid}").exists() for pid in pids)

    asyncio.run(asyncio.wait_for(main(), 120))


def test_blocking_pool_of_node_workers(node: str) -> None:
    chunks = [os.urandom(4096) for _ in range(100)]
    with sync.Pool(node, [WORKER, "served"], size=2, is_command=True) as pool:
        digests = [
            msgpack.unpackb(r)["sha256"] for r in pool.map(request("hash", c) for c in chunks)
        ]
        assert digests == [hashlib.sha256(c).hexdigest() for c in chunks]
        with pytest.raises(RemoteError):
            pool.submit(request("throw", "bad")).result(timeout=60)
