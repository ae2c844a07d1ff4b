"""Fault matrix, process life cycle: a parent SIGKILLed under its worker, a worker that is
itself a parent dying in the middle of a chain, and fd 3 that is not the channel.

Orphans are re-parented to ``programs/reaper.py`` (a subreaper), which waits for them and
times each exit from the kill: the test process never adopts anything.
Scenario ids match the table in ``tests/faults/README.md``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from faultkit import PY, event, program, run_reaper, spawn_raw

LIB = program("lib_worker.py")
MIDDLE = program("middle_parent.py")
TOP = program("top_parent.py")
BROKE = "worker-process: channel to the parent broke:"


@pytest.mark.parametrize(
    ("behaviour", "kill_on"),
    [("idle", ["ready", "middle"]), ("flood", ["blocked", "middle"])],
    ids=["p37-idle", "p38-blocked-in-send"],
)
def test_p37_p38_parent_sigkilled_worker_exits_1_within_1s(
    behaviour: str, kill_on: list[str]
) -> None:
    report, stderr = run_reaper([PY, MIDDLE, LIB, behaviour], kill_on=kill_on)
    assert report["killed"]
    middle = event(report, "middle")
    worker = str(middle["worker"])
    assert report["reaped"][str(middle["pid"])]["code"] == -9
    exit_ = report["reaped"][worker]
    assert exit_["code"] == 1, f"the orphaned worker exited with {exit_['code']}"
    assert exit_["after_kill"] < 1.0, f"the worker took {exit_['after_kill']} s to exit"
    assert BROKE in stderr


def test_p28_nested_middle_dies_grandchild_does_not_hold_the_channel() -> None:
    report, stderr = run_reaper([PY, TOP, "nested"])
    top = event(report, "top")
    assert top["end"] == "EndOfStream", "the top parent's channel must end with the middle"
    assert top["end_after"] < 2.0
    assert (top["lifetime"], top["returncode"]) == ("WorkerExitError", -9)
    grandchild = report["reaped"][str(top["grandchild"])]
    assert grandchild["code"] == 1, "the grandchild's parent is gone: it must exit 1"
    assert top["grandchild_gone_after"] < 1.5
    assert BROKE in stderr


def test_p29_plain_subprocess_of_a_worker_does_not_hold_the_channel() -> None:
    report, _ = run_reaper([PY, TOP, "spawn-plain-then-die"])
    top = event(report, "top")
    assert top["grandchild_alive"], "the plain subprocess should still be running"
    assert top["end"] == "EndOfStream"
    assert top["end_after"] < 2.0, "a subprocess that inherited fds kept the channel open"
    assert report["reaped"][str(top["grandchild"])]["code"] == -9


# -- fd 3 is not the channel -------------------------------------------------------------------


@contextmanager
def regular_file(tmp: Path) -> Iterator[int]:
    fd = os.open(tmp / "plain", os.O_RDWR | os.O_CREAT)
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def pipe(_: Path) -> Iterator[int]:
    r, w = os.pipe()
    try:
        yield r
    finally:
        os.close(r)
        os.close(w)


@contextmanager
def char_device(_: Path) -> Iterator[int]:
    fd = os.open(os.devnull, os.O_RDWR)
    try:
        yield fd
    finally:
        os.close(fd)


def _socket(family: int, kind: int) -> Callable[[Path], AbstractContextManager[int]]:
    @contextmanager
    def make(_: Path) -> Iterator[int]:
        with socket.socket(family, kind) as sock:
            yield sock.fileno()

    return make


@contextmanager
def closed(_: Path) -> Iterator[None]:
    yield None


@pytest.mark.parametrize("api", ["probe", "probe-sync"], ids=["asyncio", "sync"])
@pytest.mark.parametrize(
    ("make", "words"),
    [
        (closed, "is not open"),
        (regular_file, "is a regular file"),
        (pipe, "is a pipe"),
        (char_device, "is a character device"),
        (_socket(socket.AF_INET, socket.SOCK_STREAM), "AF_INET/SOCK_STREAM"),
        (_socket(socket.AF_UNIX, socket.SOCK_DGRAM), "AF_UNIX/SOCK_DGRAM"),
    ],
    ids=["p30-closed", "p31-file", "p32-pipe", "p33-chardev", "p34-inet", "p35-unix-dgram"],
)
def test_p30_to_p35_fd3_is_not_the_channel(
    make: Callable[[Path], AbstractContextManager[int | None]], words: str, api: str,
    tmp_path: Path,
) -> None:
    with make(tmp_path) as fd:
        child = spawn_raw([PY, LIB, api], fd)
    assert child.wait(20, "the probe") == 4, child.stderr
    error = child.report("unavailable")["error"]
    assert error["type"] == "ChannelUnavailableError"
    # The asyncio probe's loop takes the free number 3 before connect() runs; connect()
    # still says that fd 3 was not open (it noted fd 3 when the package was imported).
    assert words in error["message"], error["message"]
