"""Fault matrix, worker side: a Python worker (``connect``) facing a rogue parent, which is
this test writing raw bytes on its end of the socketpair.

Scenario ids (W01...) match the table in ``tests/faults/README.md``.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest
from faultkit import PY, RawChild, program, recv_exactly, recv_until_eof, rogue_parent, wait_until

LIB = program("lib_worker.py")
BROKE = "worker-process: channel to the parent broke:"


def frame(payload: bytes) -> bytes:
    return struct.pack(">L", len(payload)) + payload


def worker(*args: str) -> list[str]:
    return [PY, LIB, *args]


def connect_error(child: RawChild) -> dict[str, object]:
    assert child.wait(20, "the worker") == 4, child.stderr
    error: dict[str, object] = child.report("connect-failed")["error"]
    return error


def test_w01_bad_handshake_byte() -> None:
    with rogue_parent(worker("recv")) as (sock, child):
        sock.sendall(b"\x07")
        error = connect_error(child)
        assert (error["type"], error["expected"], error["got"]) == ("HandshakeByteError", 0, 7)
        assert recv_until_eof(sock) == b"", "the worker must not answer a bad handshake"


@pytest.mark.parametrize("how", ["half-close", "close"])
def test_w02_w03_eof_before_handshake(how: str) -> None:
    with rogue_parent(worker("recv")) as (sock, child):
        if how == "half-close":
            sock.shutdown(socket.SHUT_WR)
        else:
            sock.close()
        error = connect_error(child)
        assert (error["type"], error["stage"], error["missing"]) == (
            "TruncatedStreamError", "handshake", 1)


def test_w04_parent_never_handshakes() -> None:
    with rogue_parent(worker("recv", "--handshake-timeout", "0.5")) as (_sock, child):
        start = time.monotonic()
        error = connect_error(child)
        elapsed = time.monotonic() - start
        assert error["type"] == "HandshakeTimeoutError"
        assert elapsed < 10


def test_w05_clean_end_after_handshake() -> None:
    with rogue_parent(worker("recv")) as (sock, child):
        sock.sendall(b"\x00" + frame(b"one") + frame(b""))
        assert recv_exactly(sock, 1) == b"\x01"
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_eof(sock) == b"", "the worker ends its stream after ours"
        assert child.wait(20) == 0, child.stderr
        done = child.report("done")
        assert done["messages"] == ["6f6e65", ""]
        assert done["end"]["type"] == "EndOfStream"


def test_w06_parent_closes_without_finishing() -> None:
    with rogue_parent(worker("recv")) as (sock, child):
        sock.sendall(b"\x00")
        assert recv_exactly(sock, 1) == b"\x01"
        sock.close()
        assert child.wait(5) == 1
        assert BROKE in child.stderr and "gone" in child.stderr


@pytest.mark.parametrize(
    ("tail", "stage", "missing"),
    [(b"\x00\x00", "header", 2), (frame(b"0123456789")[:7], "payload", 7)],
)
@pytest.mark.parametrize("exit_on_broken", [True, False])
def test_w07_w08_truncated_frame(
    tail: bytes, stage: str, missing: int, exit_on_broken: bool
) -> None:
    args = ["recv"] if exit_on_broken else ["recv", "--no-exit-on-broken"]
    with rogue_parent(worker(*args)) as (sock, child):
        sock.sendall(b"\x00" + frame(b"ok") + tail)
        sock.shutdown(socket.SHUT_WR)
        if exit_on_broken:
            assert child.wait(5) == 1
            assert BROKE in child.stderr and f"inside the {stage}" in child.stderr
        else:
            assert child.wait(5) == 0
            done = child.report("done")
            assert done["messages"] == ["6f6b"]
            end = done["end"]
            assert end["type"] == "BrokenResourceError"
            assert (end["cause"]["type"], end["cause"]["stage"], end["cause"]["missing"]) == (
                "TruncatedStreamError", stage, missing)


def test_w09_header_over_max_message_size_exits_at_once() -> None:
    with rogue_parent(worker("recv", "--limit", "1024")) as (sock, child):
        sock.sendall(b"\x00" + struct.pack(">L", 0xFFFFFFFF))
        start = time.monotonic()
        assert child.wait(5) == 1
        assert time.monotonic() - start < 2
        assert BROKE in child.stderr and "max_message_size is 1024" in child.stderr


def test_w10_header_over_max_message_size_typed_and_without_allocation() -> None:
    with rogue_parent(worker("recv", "--limit", "1024", "--no-exit-on-broken")) as (sock, child):
        sock.sendall(b"\x00" + frame(b"a") + struct.pack(">L", 0xFFFFFFFF))
        assert child.wait(5) == 0  # the socket stays open: the header alone decided
        done = child.report("done")
        assert done["messages"] == ["61"]
        end = done["end"]
        assert end["type"] == "BrokenResourceError"
        cause = end["cause"]
        assert (cause["type"], cause["length"], cause["limit"]) == (
            "MessageTooLargeError", 0xFFFFFFFF, 1024)
        assert done["hwm_growth_kib"] < 64 * 1024


def test_w11_parent_sends_frames_before_the_worker_answered() -> None:
    with rogue_parent(worker("recv")) as (sock, child):
        sock.sendall(b"\x00" + frame(b"a") + frame(b"b"))
        sock.shutdown(socket.SHUT_WR)
        assert child.wait(20) == 0, child.stderr
        assert child.report("done")["messages"] == ["61", "62"]
        assert recv_until_eof(sock) == b"\x01"


def test_w12_parent_gone_right_after_its_handshake_byte() -> None:
    # The parent writes 0x00 and its socket is released before the worker even connects:
    # the worker completes its handshake into a dead channel and must exit 1, not report a
    # clean end of stream.
    with rogue_parent(worker("recv")) as (sock, child):
        sock.sendall(b"\x00")
        sock.close()
        assert child.wait(20) == 1, f"stdout={child.stdout!r} stderr={child.stderr!r}"
        assert BROKE in child.stderr


def test_w13_parent_closes_while_the_worker_is_blocked_in_send() -> None:
    with rogue_parent(worker("flood")) as (sock, child):
        sock.sendall(b"\x00")
        assert recv_exactly(sock, 1) == b"\x01"
        wait_until(lambda: any(r.get("event") == "blocked" for r in child.reports()), 20,
                   "the worker blocked in send")
        sock.close()
        start = time.monotonic()
        assert child.wait(5) == 1
        assert time.monotonic() - start < 1.0
        assert BROKE in child.stderr
