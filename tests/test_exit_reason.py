"""A worker's death explains itself: send/recv/request after it died say how (returncode,
signal, the last lines of its stderr), and close(check=True) raises; asyncio and blocking."""

from __future__ import annotations

import signal
import sys

import pytest

from test_pool import AIO, SYNC, WORKERS, run
from worker_process import (
    BrokenResourceError,
    EndOfStream,
    NoReplyError,
    WorkerExitError,
    create_worker,
    sync,
)


def test_recv_after_sigkill_says_so() -> None:
    async def main() -> None:
        async with await create_worker(AIO) as worker:
            await worker.send(b"die")
            with pytest.raises(WorkerExitError) as info:
                await worker.recv()
            # Still the error it replaces, whichever the kernel reported.
            assert isinstance(info.value, EndOfStream | BrokenResourceError)
            assert info.value.signal == signal.SIGKILL
            assert "was killed by SIGKILL" in str(info.value)
            with pytest.raises(WorkerExitError) as sent:
                for _ in range(64):  # the first sends may still be buffered
                    await worker.send(b"x" * 65536)
            assert isinstance(sent.value, BrokenResourceError)
            assert sent.value.returncode == -signal.SIGKILL

    run(main())
    with sync.create_worker(SYNC) as worker:
        worker.send(b"exit:4")
        with pytest.raises(WorkerExitError) as info:
            worker.recv(timeout=30)
        assert isinstance(info.value, EndOfStream | BrokenResourceError)
        assert (info.value.returncode, info.value.signal) == (4, None)


def test_a_clean_end_is_still_end_of_stream() -> None:
    async def main() -> None:
        async with await create_worker(WORKERS / "aio_exit.py", ["0"], check=True) as worker:
            assert await worker.recv() == b"ready"
            with pytest.raises(EndOfStream) as info:
                await worker.recv()
            assert not isinstance(info.value, WorkerExitError)
        async with await create_worker(WORKERS / "aio_exit.py", ["kill"]) as worker:
            assert await worker.recv() == b"ready"
            with pytest.raises(WorkerExitError) as died:
                await worker.recv()
            assert isinstance(died.value, EndOfStream) and died.value.signal == signal.SIGKILL

    run(main())


def test_stderr_tail_in_the_errors(capfd: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        worker = await create_worker(AIO, stderr_tail=3)
        async with worker:
            with pytest.raises(NoReplyError) as info:
                await worker.request(b"stderr:first\nsecond\nthird\nfourth")
            assert info.value.returncode == 5
            assert "second\nthird\nfourth" in str(info.value)
            assert "first" not in str(info.value)

    run(main())
    # Still forwarded to the parent's stderr, whole.
    assert "first\nsecond\nthird\nfourth" in capfd.readouterr().err
    with sync.create_worker(SYNC, stderr_tail=2) as worker:
        worker.send(b"stderr:boom\nlast words")
        with pytest.raises(WorkerExitError) as died:
            worker.recv(timeout=30)
        assert "boom\nlast words" in str(died.value)
    with pytest.raises(ValueError):
        sync.create_worker(SYNC, stderr_tail=2, stderr=sys.stderr)


def test_close_check_raises_on_an_unsuccessful_exit() -> None:
    async def main() -> None:
        worker = await create_worker(AIO, stderr_tail=5)
        await worker.send(b"stderr:why it failed")
        await worker.wait()
        with pytest.raises(WorkerExitError) as info:
            await worker.close(check=True)
        assert info.value.returncode == 5 and "why it failed" in str(info.value)
        with pytest.raises(WorkerExitError):
            async with await create_worker(AIO, check=True) as checked:
                await checked.send(b"exit:2")
                await checked.wait()
        async with await create_worker(AIO) as unchecked:  # default: as before
            await unchecked.send(b"exit:2")
        assert unchecked.returncode == 2

    run(main())
    with pytest.raises(WorkerExitError) as info, sync.create_worker(SYNC, check=True) as worker:
        worker.send(b"exit:6")
        worker.wait(30)
    assert info.value.returncode == 6
    worker = sync.create_worker(SYNC)
    worker.send(b"exit:6")
    worker.close()  # default: does not raise
    with pytest.raises(WorkerExitError):
        worker.close(check=True)
