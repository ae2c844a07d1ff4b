"""Fault matrix, parent side: a Python parent (``create_worker``) facing workers that lie,
stall, crash or exit badly. Each test asserts the typed outcome and a bound on time.

Scenario ids (P01...) match the table in ``tests/faults/README.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from faultkit import open_fds, process_gone, program, run_bounded, wait_until

from worker_process import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfStream,
    HandshakeByteError,
    HandshakeTimeoutError,
    MaxDurationExceededError,
    MessageTooLargeError,
    TruncatedStreamError,
    Worker,
    WorkerExitError,
    WorkerProcessError,
    WorkerStartError,
    create_worker,
)

ROGUE = program("rogue_worker.py")
LIB = program("lib_worker.py")
MiB = 1 << 20


async def drain(worker: Worker, per_message: float = 10.0) -> tuple[list[bytes], BaseException]:
    """Every message until recv() raises; the messages and the exception."""
    got: list[bytes] = []
    while True:
        try:
            got.append(await asyncio.wait_for(worker.recv(), per_message))
        except WorkerProcessError as exc:
            return got, exc


async def lifetime_error(worker: Worker, timeout: float = 10.0) -> BaseException | None:
    try:
        await asyncio.wait_for(asyncio.shield(worker.lifetime), timeout)
    except WorkerProcessError as exc:
        return exc
    return None


def max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def pid_from(path: Path) -> int:
    wait_until(lambda: path.exists() and path.read_text() != "", 10, f"{path} written")
    return int(path.read_text())


# -- the handshake -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "got"), [("bad-handshake", 2), ("bad-handshake-first", 0x7F)])
def test_p01_p02_bad_handshake_byte(behaviour: str, got: int, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"

    async def scenario() -> float:
        start = time.monotonic()
        with pytest.raises(HandshakeByteError) as info:
            await create_worker(ROGUE, [behaviour],
                                env={**os.environ, "WP_PIDFILE": str(pidfile)})
        assert (info.value.expected, info.value.got) == (1, got)
        return time.monotonic() - start

    elapsed = run_bounded(scenario, 20, "bad handshake byte")
    assert elapsed < 5, f"a bad handshake byte took {elapsed:.2f} s to be reported"
    pid = pid_from(pidfile)
    assert process_gone(pid), "the lying worker was not killed and reaped"


def test_p03_exit_before_handshake() -> None:
    async def scenario() -> None:
        with pytest.raises(WorkerStartError) as info:
            await create_worker(ROGUE, ["exit-before-handshake"])
        assert info.value.returncode == 5
        assert "exited with code 5 before the handshake" in str(info.value)

    run_bounded(scenario, 20, "exit before the handshake")


def test_p04_eof_before_handshake_then_exit() -> None:
    async def scenario() -> None:
        with pytest.raises(WorkerStartError) as info:
            await create_worker(ROGUE, ["eof-before-handshake"])
        assert info.value.returncode == 0

    run_bounded(scenario, 20, "EOF before the handshake")


def test_p05_eof_before_handshake_worker_lives_on(tmp_path: Path) -> None:
    # The worker closes fd 3 but does not exit: the parent waits min(handshake_timeout, 5 s)
    # for an exit status, then kills the worker and fails the start, the cut stream as cause.
    pidfile = tmp_path / "pid"

    async def scenario() -> float:
        start = time.monotonic()
        with pytest.raises(WorkerStartError) as info:
            await create_worker(ROGUE, ["eof-before-handshake-linger"], handshake_timeout=1.0,
                                env={**os.environ, "WP_PIDFILE": str(pidfile)})
        assert info.value.returncode is None  # it had not exited: it was killed
        assert isinstance(info.value.__cause__, BrokenResourceError | TruncatedStreamError)
        return time.monotonic() - start

    elapsed = run_bounded(scenario, 20, "EOF before the handshake, worker alive")
    assert elapsed < 5
    assert process_gone(pid_from(pidfile)), "the worker was left running"


def test_p13_worker_never_handshakes(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"

    async def scenario() -> float:
        start = time.monotonic()
        with pytest.raises(HandshakeTimeoutError) as info:
            await create_worker(ROGUE, ["silent"], handshake_timeout=0.5,
                                env={**os.environ, "WP_PIDFILE": str(pidfile)})
        assert isinstance(info.value, TimeoutError)
        return time.monotonic() - start

    elapsed = run_bounded(scenario, 20, "handshake timeout")
    assert 0.5 <= elapsed < 5, f"handshake_timeout=0.5 fired after {elapsed:.2f} s"
    assert process_gone(pid_from(pidfile)), "the silent worker was not killed and reaped"


def test_p14_worker_writes_frames_before_reading_the_parent_byte() -> None:
    # The parent cannot tell (and need not): the frames arrive after 0x01, in order.
    async def scenario() -> None:
        worker = await create_worker(ROGUE, ["early-frames"])
        got = [await asyncio.wait_for(worker.recv(), 10) for _ in range(3)]
        assert got == [b"early-1", b"", b"early-2"]
        await worker.close()
        assert worker.returncode == 0
        assert await lifetime_error(worker) is None

    run_bounded(scenario, 20, "early frames")


# -- the end of the worker's stream --------------------------------------------------------


def test_p06_eof_after_handshake() -> None:
    async def scenario() -> None:
        worker = await create_worker(ROGUE, ["eof-after-handshake"])
        got, exc = await drain(worker)
        assert got == []
        assert isinstance(exc, EndOfStream)
        assert await lifetime_error(worker) is None
        assert worker.returncode == 0
        await worker.close()

    run_bounded(scenario, 20, "EOF after the handshake")


@pytest.mark.parametrize(
    ("behaviour", "stage", "missing", "before"),
    [
        ("truncated-header", "header", 2, [b"whole"]),
        ("truncated-payload", "payload", 7, [b"whole"]),
        ("truncated-payload-large", "payload", (1 << 20) - 1000, []),
    ],
)
def test_p07_p08_p09_truncated_frame(
    behaviour: str, stage: str, missing: int, before: list[bytes]
) -> None:
    async def scenario() -> None:
        worker = await create_worker(ROGUE, [behaviour])
        got, exc = await drain(worker)
        assert got == before, "the frames before the cut must be delivered"
        assert isinstance(exc, BrokenResourceError)
        cause = exc.__cause__
        assert isinstance(cause, TruncatedStreamError)
        assert (cause.stage, cause.missing) == (stage, missing)
        life = await lifetime_error(worker)
        assert isinstance(life, BrokenResourceError), f"lifetime: {life!r}"
        assert isinstance(life.__cause__, TruncatedStreamError)
        await worker.close()

    run_bounded(scenario, 20, behaviour)


def test_p10_header_over_max_message_size_fails_at_the_header() -> None:
    # 4 GiB - 1 announced, nothing follows, the worker keeps the socket open: the error must
    # come from the 4 header bytes alone, without buffering or allocating the payload.
    async def scenario() -> None:
        rss_before = max_rss_kib()
        start = time.monotonic()
        worker = await create_worker(ROGUE, ["oversized"], max_message_size=MiB)
        got, exc = await drain(worker)
        elapsed = time.monotonic() - start
        assert got == [b"before"]
        assert isinstance(exc, BrokenResourceError)
        cause = exc.__cause__
        assert isinstance(cause, MessageTooLargeError)
        assert (cause.length, cause.limit) == (0xFFFFFFFF, MiB)
        assert elapsed < 5, f"the oversized header was reported after {elapsed:.2f} s"
        life = await lifetime_error(worker)
        assert isinstance(life, BrokenResourceError)
        assert isinstance(life.__cause__, MessageTooLargeError)
        assert worker.returncode == -signal.SIGKILL, "the lying worker must be SIGKILLed"
        growth = max_rss_kib() - rss_before
        assert growth < 64 * 1024, f"peak RSS grew by {growth} KiB"
        await worker.close()

    run_bounded(scenario, 20, "oversized header")


def test_p11_oversized_header_in_the_handshake_chunk() -> None:
    async def scenario() -> None:
        worker = await create_worker(ROGUE, ["oversized-with-handshake"], max_message_size=MiB)
        got, exc = await drain(worker)
        assert got == []
        assert isinstance(exc, BrokenResourceError)
        assert isinstance(exc.__cause__, MessageTooLargeError)
        assert isinstance(await lifetime_error(worker), BrokenResourceError)
        assert worker.returncode == -signal.SIGKILL
        await worker.close()

    run_bounded(scenario, 20, "oversized header with the handshake byte")


def test_p12_huge_announced_length_within_the_limit_costs_no_memory() -> None:
    # With the default limit (the wire maximum) a 4 GiB - 1 header is legal: the parent waits
    # for the payload, but must not allocate what was merely announced.
    async def scenario() -> None:
        rss_before = max_rss_kib()
        worker = await create_worker(ROGUE, ["oversized"])
        assert await asyncio.wait_for(worker.recv(), 10) == b"before"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(worker.recv(), 0.5)  # nothing more comes
        growth = max_rss_kib() - rss_before
        assert growth < 64 * 1024, f"a 4 GiB announcement grew peak RSS by {growth} KiB"
        await worker.close(timeout=0.5)
        assert worker.returncode == -signal.SIGTERM
        life = await lifetime_error(worker)
        assert isinstance(life, BrokenResourceError)
        assert isinstance(life.__cause__, TruncatedStreamError)

    run_bounded(scenario, 20, "huge legal announcement")


def test_p15_truncated_after_a_flood_while_reading_is_paused() -> None:
    # Regression: the worker floods past the read high-water mark (reading pauses), cuts a
    # header and exits 0. The exit is noticed before the cut is read; lifetime must still
    # fail with the protocol error, not resolve as a clean exit.
    async def scenario() -> None:
        worker = await create_worker(ROGUE, ["flood-then-truncated"])
        assert await asyncio.wait_for(worker.wait(), 10) == 0
        life = await lifetime_error(worker)
        assert isinstance(life, BrokenResourceError), f"lifetime: {life!r}"
        cause = life.__cause__
        assert isinstance(cause, TruncatedStreamError)
        assert (cause.stage, cause.missing) == ("header", 1)
        got, exc = await drain(worker)
        assert len(got) == 66 and all(len(m) == 65536 for m in got)
        assert isinstance(exc, BrokenResourceError)
        await worker.close()

    run_bounded(scenario, 30, "truncated after a flood")


# -- crashes and exit statuses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "returncode"),
    [("sigkill", -signal.SIGKILL), ("sigsegv", -signal.SIGSEGV), ("abort", -signal.SIGABRT),
     ("exit137", 137)],
)
def test_p16_to_p19_crash_between_frames(command: str, returncode: int) -> None:
    async def scenario() -> None:
        worker = await create_worker(LIB, ["crash-on-command"])
        first = [await asyncio.wait_for(worker.recv(), 10) for _ in range(3)]
        assert first == [b"m0", b"m1", b"m2"]
        await worker.send(command.encode())
        got, exc = await drain(worker)
        assert got == [] and isinstance(exc, EndOfStream)
        life = await lifetime_error(worker)
        assert isinstance(life, WorkerExitError) and not isinstance(life, MaxDurationExceededError)
        assert life.returncode == returncode
        assert life.signal == (-returncode if returncode < 0 else None)
        assert worker.returncode == returncode
        await worker.close()

    run_bounded(scenario, 20, f"crash by {command}")


def test_p20_crash_inside_a_frame() -> None:
    async def scenario() -> None:
        worker = await create_worker(LIB, ["crash-on-command"])
        for _ in range(3):
            await asyncio.wait_for(worker.recv(), 10)
        await worker.send(b"half-frame-sigkill")
        got, exc = await drain(worker)
        assert got == [] and isinstance(exc, BrokenResourceError)
        assert isinstance(exc.__cause__, TruncatedStreamError)
        assert (exc.__cause__.stage, exc.__cause__.missing) == ("payload", 96)
        life = await lifetime_error(worker)
        assert isinstance(life, BrokenResourceError), f"lifetime: {life!r}"
        assert worker.returncode == -signal.SIGKILL
        await worker.close()

    run_bounded(scenario, 20, "crash inside a frame")


def test_p21_exit_nonzero_after_finishing() -> None:
    async def scenario() -> None:
        worker = await create_worker(LIB, ["finish-exit", "--code", "3"])
        got, exc = await drain(worker)
        assert got == [b"bye"] and isinstance(exc, EndOfStream)
        life = await lifetime_error(worker)
        assert isinstance(life, WorkerExitError)
        assert (life.returncode, life.signal) == (3, None)
        await worker.close()

    run_bounded(scenario, 20, "exit 3 after finishing")


def test_p22_max_duration_exceeded() -> None:
    async def scenario() -> float:
        start = time.monotonic()
        worker = await create_worker(LIB, ["idle"], max_duration=0.5)
        life = await lifetime_error(worker)
        elapsed = time.monotonic() - start
        assert isinstance(life, MaxDurationExceededError)
        assert life.max_duration == 0.5
        assert life.returncode == -signal.SIGKILL and life.signal == signal.SIGKILL
        got, exc = await drain(worker)
        assert got == [] and isinstance(exc, EndOfStream)
        await worker.close()
        return elapsed

    elapsed = run_bounded(scenario, 20, "max_duration")
    assert 0.5 <= elapsed < 10


# -- close() and use after the end -------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "returncode", "min_elapsed"),
    [("ignore-term", -signal.SIGKILL, 1.0), ("linger-after-eof", -signal.SIGTERM, 0.5)],
)
def test_p23_p24_close_escalation(behaviour: str, returncode: int, min_elapsed: float) -> None:
    async def scenario() -> float:
        worker = await create_worker(LIB, [behaviour])
        start = time.monotonic()
        await worker.close(timeout=0.5)
        elapsed = time.monotonic() - start
        assert worker.returncode == returncode
        assert process_gone(worker.pid), "close() must reap the worker"
        life = await lifetime_error(worker)
        assert isinstance(life, WorkerExitError) and life.returncode == returncode
        return elapsed

    elapsed = run_bounded(scenario, 30, f"close() on {behaviour}")
    assert min_elapsed - 0.05 <= elapsed < 10, f"close took {elapsed:.2f} s"


def test_p25_send_after_close() -> None:
    async def scenario() -> None:
        worker = await create_worker(LIB, ["echo"])
        await worker.close()
        assert worker.returncode == 0
        with pytest.raises(ClosedResourceError):
            await worker.send(b"late")
        with pytest.raises(ClosedResourceError):
            await worker.recv()
        await worker.close()  # idempotent

    run_bounded(scenario, 20, "send after close")


def test_p26_recv_after_the_worker_finished() -> None:
    async def scenario() -> None:
        worker = await create_worker(LIB, ["finish-exit"])
        assert await asyncio.wait_for(worker.recv(), 10) == b"bye"
        for _ in range(3):
            with pytest.raises(EndOfStream):
                await asyncio.wait_for(worker.recv(), 10)
        assert [m async for m in worker] == []
        await worker.close()

    run_bounded(scenario, 20, "recv after the end")


def test_p27_send_after_the_worker_exited() -> None:
    async def scenario() -> None:
        worker = await create_worker(LIB, ["finish-exit"])
        assert await asyncio.wait_for(worker.wait(), 10) == 0
        with pytest.raises(BrokenResourceError) as info:
            await worker.send(b"to nobody")
        assert isinstance(info.value.__cause__, OSError)
        await worker.close()

    run_bounded(scenario, 20, "send after exit")


# -- descriptors -----------------------------------------------------------------------------


def test_p36_extra_inheritable_fds_are_not_inherited() -> None:
    extra = []
    try:
        for _ in range(100):
            fd = os.open(os.devnull, os.O_RDONLY)
            os.set_inheritable(fd, True)
            extra.append(fd)

        async def scenario() -> set[int]:
            worker = await create_worker(ROGUE, ["handshake-then-wait"])
            try:
                return open_fds(worker.pid)
            finally:
                await worker.close()

        fds = run_bounded(scenario, 20, "fd inheritance")
    finally:
        for fd in extra:
            os.close(fd)
    assert fds == {0, 1, 2, 3}, f"the worker has fds {sorted(fds)}"


def test_p39_no_fd_leak_in_the_parent_after_faults() -> None:
    # Every failure path above releases the parent's descriptors: run a few, count.
    async def scenario() -> None:
        for behaviour in ("bad-handshake", "exit-before-handshake", "truncated-payload"):
            try:
                worker = await create_worker(ROGUE, [behaviour], handshake_timeout=5)
            except WorkerProcessError:
                continue
            await drain(worker)
            await worker.close()

    run_bounded(scenario, 30, "warm-up")
    before = open_fds(os.getpid())
    run_bounded(scenario, 30, "faults")
    assert open_fds(os.getpid()) == before



# -- closing while the worker still talks; cancelled receives ---------------------------------


@pytest.mark.parametrize(("mib", "returncode"), [(2, 0), (16, -signal.SIGTERM)])
def test_p40_close_while_the_worker_sends_its_last_results(mib: int, returncode: int) -> None:
    # close() half-closes, then waits for the exit while reading what the worker still sends,
    # up to the read high-water mark (4 MiB): 2 MiB of results all arrive; 16 MiB cannot be
    # absorbed by a parent that does not read, so the worker is blocked and gets SIGTERM.
    async def scenario() -> None:
        worker = await create_worker(LIB, ["results-after-eof", "--code", str(mib)])
        await worker.close(timeout=1.0)
        assert worker.returncode == returncode
        got, exc = await drain(worker)  # after close(): what arrived, then ClosedResourceError
        assert isinstance(exc, ClosedResourceError)
        if returncode == 0:
            assert len(got) == mib * 16
            assert await lifetime_error(worker) is None
        else:
            assert 4 * MiB <= sum(map(len, got)) < mib * MiB

    run_bounded(scenario, 30, f"close() with {mib} MiB of results in flight")


def test_p41_recv_cancelled_by_a_timeout_can_be_retried() -> None:
    # Regression: a recv() cancelled by asyncio.wait_for left its waiter behind, so every
    # later recv() raised RuntimeError("already being awaited") until data arrived.
    async def scenario() -> None:
        worker = await create_worker(ROGUE, ["split-frame-on-cue"])
        for _ in range(3):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(worker.recv(), 0.2)
        await worker.send(b"go")
        assert await asyncio.wait_for(worker.recv(), 10) == b"abcdef"
        await worker.close()

    run_bounded(scenario, 30, "recv after a timeout")


# -- payloads bigger than the host can hold; frame boundaries ---------------------------------


def limited_parent(behaviour: str, limit_mib: int, api: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, program("limited_parent.py"), str(limit_mib), behaviour, api],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


TRUNCATED_3GIB = {"type": "BrokenResourceError", "cause": {
    "type": "TruncatedStreamError", "stage": "payload", "missing": (3 << 30) - 100}}


@pytest.mark.parametrize("api", ["async", "sync"])
@pytest.mark.parametrize(
    ("behaviour", "limit_mib", "before"),
    [("announce-huge-on-cue", 1024, []), ("announce-huge-on-cue", 0, []),
     ("large-then-huge-on-cue", 1024, [70000])],
    ids=["rlimit-1GiB", "no-limit", "after-a-large-frame-rlimit-1GiB"],
)
def test_p42_huge_announcement_then_exit(
    behaviour: str, limit_mib: int, before: list[int], api: str
) -> None:
    # Regression: with RLIMIT_AS below the announced 3 GiB, reserving the payload at once
    # raised MemoryError: uncaught in the asyncio bulk thread (the channel stalled for good,
    # the cut stream was never reported) and out of the blocking recv() untyped.
    report = limited_parent(behaviour, limit_mib, api)
    assert report["messages"] == before
    assert report["recv"] == TRUNCATED_3GIB
    assert report["recv_after"] < 5
    assert report["lifetime"] == TRUNCATED_3GIB
    assert report["asyncio_log_records"] == 0


@pytest.mark.parametrize("api", ["async", "sync"])
def test_p43_payload_bigger_than_the_address_space(api: str) -> None:
    # Regression: a MemoryError while the payload arrived escaped the asyncio reader callback
    # (logged and called again, forever) and the blocking recv() and close() (which then
    # left the worker unreaped). Now the channel breaks with the MemoryError as cause.
    report = limited_parent("stream-huge-on-cue", 1024, api)
    assert report["recv"] == {"type": "BrokenResourceError", "cause": {"type": "MemoryError"}}
    assert report["asyncio_log_records"] == 0
    assert report["lifetime"]["type"] == "WorkerExitError"  # close() sent SIGTERM


def test_p44_a_large_frames_header_read_alone_is_not_a_frame_boundary() -> None:
    # Regression: once a large frame's header was read with none of its payload, the decoder
    # reported 0 bytes buffered; the transport took that for a frame boundary and read the
    # payload's first 4 bytes as the next header (a stall, or a message of the wrong length).
    async def scenario() -> None:
        worker = await create_worker(ROGUE, ["header-then-pause"])
        got = [await asyncio.wait_for(worker.recv(), 10) for _ in range(3)]
        assert [len(m) for m in got] == [70000, 100000, 1]
        assert got[1] == struct.pack(">L", 2 << 20) + b"p" * (100000 - 4)
        await worker.close()
        assert await lifetime_error(worker) is None

    run_bounded(scenario, 30, "a header read alone")
