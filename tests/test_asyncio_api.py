"""The asyncio API over real processes: Python parent, Python worker."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

from worker_process import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfStream,
    HandshakeByteError,
    HandshakeTimeoutError,
    MaxDurationExceededError,
    WorkerExitError,
    WorkerStartError,
    create_worker,
)

WORKERS = Path(__file__).parent / "workers"
T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    """Run ``coro`` on a fresh loop, failing the test if it takes longer than ``timeout``."""

    async def bounded() -> T:
        try:
            return await asyncio.wait_for(coro, timeout)
        except (TimeoutError, asyncio.TimeoutError):
            pytest.fail(f"did not finish within {timeout} s")

    return asyncio.run(bounded())


def w(name: str) -> str:
    return str(WORKERS / name)


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 16 * 1024 * 1024])
def test_echo_sizes(size: int) -> None:
    payload = os.urandom(size)

    async def main() -> None:
        async with await create_worker(w("aio_echo.py")) as worker:
            await worker.send(payload)
            assert await worker.recv() == payload
        assert worker.returncode == 0
        assert worker.lifetime.result() is None

    run(main())


def test_ten_thousand_messages_both_directions_at_once() -> None:
    count = 10_000

    async def main() -> None:
        async with await create_worker(w("aio_echo.py")) as worker:

            async def sender() -> None:
                for i in range(count):
                    await worker.send(i.to_bytes(4, "big") * (i % 7))

            task = asyncio.create_task(sender())
            for i in range(count):
                assert await worker.recv() == i.to_bytes(4, "big") * (i % 7)
            await task
        assert worker.returncode == 0

    run(main())


def test_finish_then_immediate_exit_loses_nothing() -> None:
    async def main() -> None:
        worker = await create_worker(w("aio_burst_exit.py"), ["5000", "0"])
        received = [message async for message in worker]
        await worker.lifetime
        assert received == [i.to_bytes(4, "big") * 64 for i in range(5000)]
        await worker.close()

    run(main())


def test_lifetime_waits_for_every_message_with_a_handler() -> None:
    async def main() -> None:
        worker = await create_worker(w("aio_burst_exit.py"), ["3000", "0"])
        received: list[bytes] = []
        worker.onmessage = received.append
        await worker.lifetime
        assert len(received) == 3000
        await worker.close()

    run(main())


def test_messages_before_a_handler_is_attached_are_kept() -> None:
    async def main() -> None:
        worker = await create_worker(w("aio_burst_exit.py"), ["50", "0"])
        await worker.wait()  # everything was sent and the worker is gone
        received: list[bytes] = []
        worker.onmessage = received.append
        assert received == [i.to_bytes(4, "big") * 64 for i in range(50)]
        await worker.close()

    run(main())


@pytest.mark.parametrize(
    ("arg", "returncode", "signal_number"),
    [("3", 3, None), ("kill", -signal.SIGKILL, signal.SIGKILL)],
)
def test_lifetime_failures(arg: str, returncode: int, signal_number: int | None) -> None:
    async def main() -> None:
        async with await create_worker(w("aio_exit.py"), [arg]) as worker:
            assert await worker.recv() == b"ready"
            with pytest.raises(WorkerExitError) as info:
                await worker.lifetime
            assert info.value.returncode == returncode
            assert info.value.signal == signal_number
        assert worker.returncode == returncode

    run(main())


def test_lifetime_success() -> None:
    async def main() -> None:
        async with await create_worker(w("aio_exit.py"), ["0"]) as worker:
            assert await worker.recv() == b"ready"
            assert await worker.lifetime is None
            with pytest.raises(EndOfStream):
                await worker.recv()

    run(main())


def test_bad_handshake_byte_fails_at_once() -> None:
    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(HandshakeByteError) as info:
            await create_worker(w("raw_handshake.py"), ["07"], handshake_timeout=30)
        assert time.monotonic() - started < 1.0
        assert (info.value.expected, info.value.got) == (1, 7)

    run(main())


def test_no_handshake_times_out_and_kills() -> None:
    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(HandshakeTimeoutError):
            await create_worker(w("silent.py"), handshake_timeout=0.5)
        assert 0.5 <= time.monotonic() - started < 5

    run(main())


def test_child_that_cannot_start() -> None:
    async def main() -> None:
        with pytest.raises(WorkerStartError) as info:
            await create_worker("/nonexistent/program", is_command=True)
        assert isinstance(info.value.__cause__, FileNotFoundError)
        with pytest.raises(WorkerStartError) as info:
            await create_worker("no-such-program-anywhere", is_command=True)
        assert "not found" in str(info.value)

    run(main())


def test_child_that_exits_before_the_handshake() -> None:
    async def main() -> None:
        with pytest.raises(WorkerStartError) as info:
            await create_worker(sys.executable, ["-c", "raise SystemExit(4)"], is_command=True)
        assert info.value.returncode == 4

    run(main())


def test_close_ends_a_loop_worker_cleanly() -> None:
    async def main() -> None:
        worker = await create_worker(w("aio_echo.py"))
        await worker.send(b"one")
        assert await worker.recv() == b"one"
        started = time.monotonic()
        await worker.close()
        assert time.monotonic() - started < 4  # ended by end of stream, not by signals
        assert worker.returncode == 0
        assert worker.lifetime.result() is None
        with pytest.raises(ClosedResourceError):
            await worker.send(b"late")

    run(main())


def test_callback_worker_answers_then_ends_at_end_of_stream() -> None:
    async def main() -> None:
        async with await create_worker(w("aio_callback.py")) as worker:
            for i in range(100):
                await worker.send(b"%d" % i)
            for i in range(100):
                assert await worker.recv() == b"re:%d" % i
        assert worker.returncode == 0

    run(main())


def test_close_escalates_to_sigkill() -> None:
    async def main() -> None:
        worker = await create_worker(w("aio_sleeper.py"), ["stubborn"])
        assert await worker.recv() == b"ready"
        started = time.monotonic()
        await worker.close(timeout=0.3)
        assert worker.returncode == -signal.SIGKILL
        assert time.monotonic() - started < 5

    run(main())


def test_close_sigterm_is_enough_for_a_polite_worker() -> None:
    async def main() -> None:
        worker = await create_worker(w("aio_sleeper.py"))
        assert await worker.recv() == b"ready"
        await worker.close(timeout=0.3)
        assert worker.returncode == -signal.SIGTERM

    run(main())


def test_max_duration() -> None:
    async def main() -> None:
        worker = await create_worker(w("aio_sleeper.py"), max_duration=0.5)
        with pytest.raises(MaxDurationExceededError) as info:
            await worker.lifetime
        assert info.value.returncode == -signal.SIGKILL
        assert info.value.max_duration == 0.5
        await worker.close()

    run(main())


def test_parent_sigkill_makes_idle_worker_exit_1_quickly() -> None:
    result = subprocess.run(
        [sys.executable, w("orphan_driver.py"), sys.executable, w("middle_parent.py"),
         sys.executable, w("aio_idle.py")],
        capture_output=True, text=True, timeout=90,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["exit_code"] == 1
    assert report["seconds"] < 1.0
    assert report["fd3_inheritable_in_worker"] == "False"  # close-on-exec after connect()


def test_worker_gets_fds_0_to_3_only() -> None:
    extra = [os.open(os.devnull, os.O_RDONLY) for _ in range(20)]
    for fd in extra:
        os.set_inheritable(fd, True)
    try:

        async def main() -> None:
            async with await create_worker(w("fd_report.py")) as worker:
                fds, inheritable = ast.literal_eval((await worker.recv()).decode())
                assert fds == [0, 1, 2, 3]
                assert inheritable is False

        run(main())
    finally:
        for fd in extra:
            os.close(fd)


def test_parent_fd_3_untouched() -> None:
    before = os.fstat(3) if _fd_open(3) else None

    async def main() -> None:
        async with await create_worker(w("aio_echo.py")) as worker:
            await worker.send(b"x")
            assert await worker.recv() == b"x"

    run(main())
    after = os.fstat(3) if _fd_open(3) else None
    assert (before is None) == (after is None)
    if before is not None and after is not None:
        assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_stdout_passthrough_and_pipe() -> None:
    script = (
        "import asyncio, sys\n"
        "from worker_process import create_worker\n"
        "async def main():\n"
        f"    async with await create_worker({w('aio_stdout.py')!r}) as worker:\n"
        "        assert await worker.recv() == b'done'\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "hello on stdout" in result.stdout
    assert "hello on stderr" in result.stderr

    async def main() -> None:
        async with await create_worker(
            w("aio_stdout.py"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as worker:
            assert await worker.recv() == b"done"
            assert worker.stdout is not None
            output = await worker.stdout.read()
        assert b"hello on stdout" in output and b"hello on stderr" in output

    run(main())


def test_cwd_and_env() -> None:
    async def main() -> None:
        async with await create_worker(
            sys.executable,
            ["-c", "import asyncio, os\n"
                   "from worker_process import connect\n"
                   "async def main():\n"
                   "    async with await connect() as c:\n"
                   "        await c.send((os.getcwd() + '|' + os.environ['X_TEST']).encode())\n"
                   "asyncio.run(main())"],
            is_command=True, cwd="/tmp", env={**os.environ, "X_TEST": "42"},
        ) as worker:
            assert await worker.recv() == b"/tmp|42"

    run(main())


def test_send_after_worker_exit_is_broken() -> None:
    async def main() -> None:
        async with await create_worker(w("aio_exit.py"), ["0"]) as worker:
            await worker.wait()
            with pytest.raises(BrokenResourceError):
                await worker.send(b"anyone?")

    run(main())
