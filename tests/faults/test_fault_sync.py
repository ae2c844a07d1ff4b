"""Fault matrix for the blocking API (``worker_process.sync``): the same lies, stalls and
crashes as for the asyncio API, with the outcomes the blocking API documents (``result()``
raising what ``lifetime`` fails with).

Scenario ids (S01...) match the table in ``tests/faults/README.md``.
"""

from __future__ import annotations

import signal
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from faultkit import PY, event, process_gone, program, recv_exactly, rogue_parent, run_reaper

from worker_process import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfStream,
    HandshakeByteError,
    HandshakeTimeoutError,
    MaxDurationExceededError,
    MessageTooLargeError,
    TruncatedStreamError,
    WorkerExitError,
    WorkerStartError,
)
from worker_process.sync import Worker, create_worker

ROGUE = program("rogue_worker.py")
LIB = program("lib_worker.py")
SYNC = program("sync_worker.py")
MIDDLE = program("middle_parent.py")
BROKE = "worker-process: channel to the parent broke:"


def outcome(worker: Worker) -> BaseException | None:
    try:
        worker.result(timeout=10)
    except (WorkerExitError, BrokenResourceError) as exc:
        return exc
    return None


def drain(worker: Worker) -> tuple[list[bytes], BaseException]:
    got: list[bytes] = []
    while True:
        try:
            got.append(worker.recv(timeout=10))
        except (EndOfStream, BrokenResourceError) as exc:
            return got, exc


def test_s01_bad_handshake_byte() -> None:
    start = time.monotonic()
    with pytest.raises(HandshakeByteError) as info:
        create_worker(ROGUE, ["bad-handshake"], handshake_timeout=10)
    assert (info.value.expected, info.value.got) == (1, 2)
    assert time.monotonic() - start < 5


def test_s02_exit_before_handshake() -> None:
    with pytest.raises(WorkerStartError) as info:
        create_worker(ROGUE, ["exit-before-handshake"], handshake_timeout=10)
    assert info.value.returncode == 5


def test_s03_never_handshakes(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(HandshakeTimeoutError):
        create_worker(ROGUE, ["silent"], handshake_timeout=0.5)
    assert 0.5 <= time.monotonic() - start < 5


@pytest.mark.parametrize(("behaviour", "stage", "missing"),
                         [("truncated-header", "header", 2), ("truncated-payload", "payload", 7)])
def test_s04_truncated_frame(behaviour: str, stage: str, missing: int) -> None:
    with create_worker(ROGUE, [behaviour], handshake_timeout=10) as worker:
        got, exc = drain(worker)
        assert got == [b"whole"] and isinstance(exc, BrokenResourceError)
        assert isinstance(exc.__cause__, TruncatedStreamError)
        assert (exc.__cause__.stage, exc.__cause__.missing) == (stage, missing)
        result = outcome(worker)
        assert isinstance(result, BrokenResourceError), result


def test_s05_header_over_max_message_size() -> None:
    start = time.monotonic()
    with create_worker(ROGUE, ["oversized"], max_message_size=1 << 20) as worker:
        got, exc = drain(worker)
        assert got == [b"before"] and isinstance(exc, BrokenResourceError)
        assert isinstance(exc.__cause__, MessageTooLargeError)
        assert time.monotonic() - start < 5
        assert isinstance(outcome(worker), BrokenResourceError)
        assert worker.returncode == -signal.SIGKILL


def test_s06_truncated_after_a_flood_the_parent_did_not_read() -> None:
    with create_worker(ROGUE, ["flood-then-truncated"]) as worker:
        assert worker.wait(timeout=10) == 0
        result = outcome(worker)
        assert isinstance(result, BrokenResourceError), f"result(): {result!r}"
        got, exc = drain(worker)
        assert len(got) == 66 and isinstance(exc, BrokenResourceError)


def test_s07_crash_between_frames_and_inside_a_frame() -> None:
    with create_worker(SYNC, ["crash-on-command"]) as worker:
        assert [worker.recv(timeout=10) for _ in range(3)] == [b"m0", b"m1", b"m2"]
        worker.send(b"sigkill")
        got, exc = drain(worker)
        assert got == [] and isinstance(exc, EndOfStream)
        result = outcome(worker)
        assert isinstance(result, WorkerExitError) and result.returncode == -signal.SIGKILL
    with create_worker(ROGUE, ["half-frame-then-sigkill"]) as worker:
        got, exc = drain(worker)
        assert got == [b"whole"] and isinstance(exc, BrokenResourceError)
        assert isinstance(outcome(worker), BrokenResourceError)


def test_s08_exit_nonzero_after_finishing() -> None:
    with create_worker(SYNC, ["finish-exit", "--code", "3"]) as worker:
        got, exc = drain(worker)
        assert got == [b"bye"] and isinstance(exc, EndOfStream)
        result = outcome(worker)
        assert isinstance(result, WorkerExitError) and (result.returncode, result.signal) == (3,
                                                                                             None)


def test_s09_max_duration() -> None:
    start = time.monotonic()
    with create_worker(LIB, ["idle"], max_duration=0.5) as worker:
        with pytest.raises(MaxDurationExceededError) as info:
            worker.result(timeout=10)
        assert info.value.returncode == -signal.SIGKILL and info.value.max_duration == 0.5
    assert 0.5 <= time.monotonic() - start < 10


def test_s10_close_escalation_and_use_after_close() -> None:
    worker = create_worker(LIB, ["ignore-term"])
    start = time.monotonic()
    worker.close(timeout=0.5)
    assert 0.95 <= time.monotonic() - start < 10
    assert worker.returncode == -signal.SIGKILL
    assert process_gone(worker.pid)
    with pytest.raises(ClosedResourceError):
        worker.send(b"late")
    worker.close()  # idempotent


def test_s11_recv_timeout_keeps_a_partial_message() -> None:
    with create_worker(ROGUE, ["split-frame-on-cue"]) as worker:
        with pytest.raises(TimeoutError):
            worker.recv(timeout=0.3)
        worker.send(b"go")
        assert worker.recv(timeout=10) == b"abcdef"


# -- a rogue parent, the blocking worker -----------------------------------------------------


def frame(payload: bytes) -> bytes:
    return struct.pack(">L", len(payload)) + payload


def test_s12_sync_worker_bad_handshake_byte() -> None:
    with rogue_parent([PY, SYNC, "recv"]) as (sock, child):
        sock.sendall(b"\x07")
        assert child.wait(10) == 4
        error = child.report("connect-failed")["error"]
        assert (error["type"], error["expected"], error["got"]) == ("HandshakeByteError", 0, 7)


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"\x00" + frame(b"ok") + b"\x00\x00", "inside the header"),
     (b"\x00" + struct.pack(">L", 0xFFFFFFFF), "max_message_size is 1024")],
    ids=["truncated-header", "oversized"],
)
def test_s13_sync_worker_exits_1_on_bad_bytes(data: bytes, words: str) -> None:
    with rogue_parent([PY, SYNC, "recv", "--limit", "1024"]) as (sock, child):
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        assert child.wait(5) == 1
        assert BROKE in child.stderr and words in child.stderr


@pytest.mark.parametrize("when", ["right-after-its-byte", "after-the-handshake"])
def test_s14_sync_worker_parent_closes_without_finishing(when: str) -> None:
    with rogue_parent([PY, SYNC, "idle-not-reading"]) as (sock, child):
        sock.sendall(b"\x00")
        if when == "after-the-handshake":
            assert recv_exactly(sock, 1) == b"\x01"
        sock.close()
        start = time.monotonic()
        assert child.wait(5) == 1
        assert time.monotonic() - start < 1.0
        assert BROKE in child.stderr


@pytest.mark.parametrize(
    ("behaviour", "kill_on"),
    [("idle-not-reading", ["ready", "middle"]), ("flood", ["blocked", "middle"])],
    ids=["s15-idle-not-reading", "s16-blocked-in-send"],
)
def test_s15_s16_parent_sigkilled_sync_worker_exits_1(behaviour: str, kill_on: list[str]) -> None:
    report, stderr = run_reaper([PY, MIDDLE, SYNC, behaviour], kill_on=kill_on)
    middle = event(report, "middle")
    exit_ = report["reaped"][str(middle["worker"])]
    assert exit_["code"] == 1 and exit_["after_kill"] < 1.0, exit_
    assert BROKE in stderr


def test_s17_a_large_frames_header_read_alone_is_not_a_frame_boundary() -> None:
    # Regression (see P44): recv() without a timeout read the large payload's first 4 bytes
    # as the next header, and blocked for the 2 MiB they announced.
    got: list[bytes] = []
    with create_worker(ROGUE, ["header-then-pause"]) as worker:
        reader = threading.Thread(target=lambda: got.extend(worker.recv() for _ in range(3)))
        reader.start()
        reader.join(10)
        if reader.is_alive():
            worker.kill(signal.SIGKILL)  # unblocks recv(), which then raises
            reader.join(10)
            pytest.fail("recv() blocked: the payload was read as a header")
    assert [len(m) for m in got] == [70000, 100000, 1]
