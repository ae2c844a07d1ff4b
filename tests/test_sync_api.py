"""What only the blocking API has: timeouts on recv/wait, threads, result()/check(), and a
worker start-up free of asyncio. (What both APIs share is in test_api_contract.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker_process import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfStream,
    MaxDurationExceededError,
    WorkerExitError,
)
from worker_process.sync import Worker, create_worker

WORKERS = Path(__file__).parent / "workers"
LIMIT = 60.0


def script(name: str) -> str:
    return str(WORKERS / name)


@pytest.fixture
def echo() -> Iterator[Worker]:
    with create_worker(script("sync_echo.py"), ["sync"]) as worker:
        yield worker


def test_recv_timeout_then_the_message_still_arrives(echo: Worker) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        echo.recv(timeout=0.2)
    assert time.monotonic() - started >= 0.2
    echo.send(b"late")
    assert echo.recv(timeout=LIMIT) == b"late"
    with pytest.raises(TimeoutError):
        echo.recv(timeout=0)


def test_recv_timeout_keeps_a_partly_received_message(echo: Worker) -> None:
    # A 16 MiB echo takes several reads: short timeouts interrupt it between reads, and the
    # message still comes out whole.
    payload = os.urandom(16 << 20)
    echo.send(payload)
    deadline = time.monotonic() + LIMIT
    while True:
        try:
            got = echo.recv(timeout=0.001)
            break
        except TimeoutError:
            assert time.monotonic() < deadline, "the echo did not arrive"
    assert got == payload


def test_send_from_four_threads_at_once(echo: Worker) -> None:
    # Sizes from 1 B to 256 KiB, each payload filled with its thread's byte: an interleaved
    # frame would show up as a mixed or mis-sized payload.
    per_thread = 200
    sizes = [1 + (i * 7919) % (256 << 10) for i in range(per_thread)]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def sender(tag: int) -> None:
        try:
            start.wait(LIMIT)
            for i, size in enumerate(sizes):
                echo.send(bytes([tag]) * size if i % 2 else bytearray([tag]) * size)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(tag,)) for tag in range(4)]
    for thread in threads:
        thread.start()
    received = [echo.recv(timeout=LIMIT) for _ in range(4 * per_thread)]
    for thread in threads:
        thread.join(LIMIT)
    assert not errors
    by_tag: dict[int, list[int]] = {tag: [] for tag in range(4)}
    for payload in received:
        assert payload and payload == bytes([payload[0]]) * len(payload), "interleaved frame"
        by_tag[payload[0]].append(len(payload))
    assert all(lengths == sizes for lengths in by_tag.values())


def test_recv_from_two_threads_gives_each_message_once(echo: Worker) -> None:
    count = 2000
    got: list[list[bytes]] = [[], []]

    def receiver(index: int) -> None:
        for _ in range(count // 2):
            got[index].append(echo.recv(timeout=LIMIT))

    threads = [threading.Thread(target=receiver, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for i in range(count):
        echo.send(i.to_bytes(4, "big"))
    for thread in threads:
        thread.join(LIMIT)
    numbers = sorted(int.from_bytes(m, "big") for m in got[0] + got[1])
    assert numbers == list(range(count))


def test_iteration_ends_at_worker_finish() -> None:
    with create_worker(script("sync_burst.py"), ["sync", "5", "wait"]) as worker:
        assert [int.from_bytes(m[:4], "big") for m in worker] == list(range(5))
        with pytest.raises(EndOfStream):
            worker.recv(timeout=LIMIT)
        assert worker.returncode is None  # it still waits for our end of stream
    assert worker.returncode == 0


def test_worker_start_up_imports_neither_asyncio_nor_construct() -> None:
    with create_worker(script("sync_modules.py")) as worker:
        loaded = worker.recv(timeout=LIMIT).decode().split(",")
    for heavy in ("asyncio", "construct", "typing", "dataclasses", "threading", "subprocess"):
        assert heavy not in loaded


def test_result_and_check() -> None:
    worker = create_worker(script("sync_exit.py"), ["sync", "3"])
    try:
        assert worker.recv(timeout=LIMIT) == b"up"
        with pytest.raises(WorkerExitError) as info:
            worker.result(timeout=LIMIT)
        assert info.value.returncode == 3
        with pytest.raises(WorkerExitError):
            worker.check()
    finally:
        worker.close()


def test_result_and_wait_time_out_while_running() -> None:
    with create_worker(script("sync_stubborn.py"), ["polite"]) as worker:
        assert worker.recv(timeout=LIMIT) == b"ready"
        worker.check()  # running: nothing to raise
        with pytest.raises(TimeoutError):
            worker.result(timeout=0.1)
        with pytest.raises(TimeoutError):
            worker.wait(timeout=0.1)
        worker.kill(signal.SIGKILL)
        assert worker.wait(timeout=LIMIT) == -signal.SIGKILL


def test_max_duration() -> None:
    worker = create_worker(script("sync_stubborn.py"), ["polite"], max_duration=0.5)
    try:
        with pytest.raises(MaxDurationExceededError) as info:
            worker.result(timeout=LIMIT)
        assert info.value.returncode == -signal.SIGKILL
        assert info.value.max_duration == 0.5
    finally:
        worker.close()


@pytest.mark.parametrize(("how", "returncode"), [("polite", -signal.SIGTERM),
                                                 ("ignore-term", -signal.SIGKILL)])
def test_close_escalates(how: str, returncode: int) -> None:
    worker = create_worker(script("sync_stubborn.py"), [how])
    assert worker.recv(timeout=LIMIT) == b"ready"
    started = time.monotonic()
    worker.close(timeout=0.3)
    assert worker.returncode == returncode
    assert time.monotonic() - started < LIMIT
    worker.close()  # idempotent
    with pytest.raises(ClosedResourceError):
        worker.send(b"x")


def test_send_after_worker_exit_is_broken() -> None:
    with create_worker(script("sync_exit.py"), ["sync", "0"]) as worker:
        assert worker.recv(timeout=LIMIT) == b"up"
        assert worker.wait(timeout=LIMIT) == 0
        with pytest.raises(BrokenResourceError):
            for _ in range(100):  # the first send may still land in the kernel's buffer
                worker.send(b"x" * 65536)


def test_worker_protocol_error_exits_1_with_a_line_on_stderr() -> None:
    with create_worker(script("sync_limited.py"), ["exit"], stderr=subprocess.PIPE) as worker:
        worker.send(b"small")
        assert worker.recv(timeout=LIMIT) == b"small"
        worker.send(b"x" * 17)
        assert worker.wait(timeout=LIMIT) == 1
        assert worker.stderr is not None
        err = worker.stderr.read().decode()
    assert err.startswith("worker-process: channel to the parent broke:"), err
    assert "17" in err


def test_worker_protocol_error_raises_without_exit_on_broken() -> None:
    with create_worker(script("sync_limited.py"), ["raise"]) as worker:
        worker.send(b"x" * 17)
        assert worker.recv(timeout=LIMIT) == b"MessageTooLargeError"
        with pytest.raises(EndOfStream):
            worker.recv(timeout=LIMIT)
    assert worker.returncode == 0


def test_stdio_pipes() -> None:
    with create_worker(
        script("sync_exit.py"), ["sync", "0"], stdout=subprocess.PIPE, stdin=subprocess.PIPE
    ) as worker:
        assert worker.stdin is not None and worker.stdout is not None
        assert worker.recv(timeout=LIMIT) == b"up"
        assert worker.stdout.read() == b""
    assert worker.stdout.closed and worker.stdin.closed
