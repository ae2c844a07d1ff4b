"""Remote workers over a real SSH server: the life cycle survives the trip (spec/protocol.md,
"Relays"). Each test tags its processes with a unique argument and checks, through /proc, that
none is left on either side of the link."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest
from remotekit import WORKERS, Sshd, wait_no_processes

from worker_process import EndOfStream, WorkerExitError, create_worker
from worker_process import sync as wp_sync

TIMEOUT = 60.0  # generous: the machine is shared


def tag() -> str:
    return f"wp-tag-{uuid.uuid4().hex[:12]}"


def test_echo_then_close_is_a_clean_end(sshd: Sshd) -> None:
    marker = tag()
    with wp_sync.create_worker(WORKERS / "echo.py", [marker], remote=sshd.prefix) as worker:
        for payload in (b"ping", b"", b"x" * (3 << 20)):
            worker.send(payload)
            assert worker.recv(timeout=TIMEOUT) == payload
    # close(): our half-close reached the remote worker as a clean end: it exited 0.
    assert worker.returncode == 0
    worker.result()
    wait_no_processes(marker)


def test_node_with_remote_is_refused_before_anything_starts() -> None:
    # node= is a local path; the far end picks its own Node.js. Saying both is a mistake,
    # not something to ignore.
    with pytest.raises(ValueError, match="with remote= the far end"):
        wp_sync.create_worker("worker.js", remote=["env"], node="/opt/node/bin/node")


def test_ssh_url_target_and_asyncio_api(sshd: Sshd, no_asyncio_errors: None) -> None:
    marker = tag()

    async def main() -> None:
        worker = await create_worker(WORKERS / "aio_echo.py", [marker], remote=sshd.url,
                                     env=sshd.url_env())
        async with worker:
            for i in range(100):
                await worker.send(b"m%d" % i)
            for i in range(100):
                assert await asyncio.wait_for(worker.recv(), TIMEOUT) == b"m%d" % i
        assert await worker.lifetime is None
        assert worker.returncode == 0

    asyncio.run(main())
    wait_no_processes(marker)


def test_finish_reaches_the_parent_with_nothing_lost(sshd: Sshd) -> None:
    marker = tag()
    with wp_sync.create_worker(WORKERS / "echo.py", [marker], remote=sshd.prefix) as worker:
        worker.send(b"burst 2000 1000")
        for i in range(2000):
            assert worker.recv(timeout=TIMEOUT) == bytes([i % 256]) * 1000
        with pytest.raises(EndOfStream):
            worker.recv(timeout=TIMEOUT)
        worker.result(timeout=TIMEOUT)
    wait_no_processes(marker)


def test_exit_code_comes_back(sshd: Sshd) -> None:
    marker = tag()
    with wp_sync.create_worker(WORKERS / "echo.py", [marker], remote=sshd.prefix) as worker:
        worker.send(b"exit 7")
        with pytest.raises(WorkerExitError) as info:
            worker.result(timeout=TIMEOUT)
    assert info.value.returncode == 7 and info.value.signal is None
    wait_no_processes(marker)


def test_signal_comes_back(sshd: Sshd) -> None:
    marker = tag()
    with wp_sync.create_worker(WORKERS / "echo.py", [marker], remote=sshd.prefix) as worker:
        worker.send(b"signal 10")  # SIGUSR1: the remote worker dies of it
        with pytest.raises(WorkerExitError) as info:
            worker.result(timeout=TIMEOUT)
    assert info.value.returncode == -10 and info.value.signal == 10
    wait_no_processes(marker)


def test_stdout_comes_back_to_the_relays_stdout(sshd: Sshd) -> None:
    marker = tag()
    with wp_sync.create_worker(WORKERS / "echo.py", [marker], remote=sshd.prefix,
                               stdout=subprocess.PIPE) as worker:
        worker.send(b"print hello from afar")
        assert worker.recv(timeout=TIMEOUT) == b"printed"
        assert worker.stdout is not None
        assert worker.stdout.readline() == b"hello from afar\n"
    wait_no_processes(marker)


def test_close_escalation_ends_the_remote_worker(sshd: Sshd, tmp_path: Path) -> None:
    marker = tag()
    with open(tmp_path / "stderr", "wb+") as err:
        worker = wp_sync.create_worker(WORKERS / "stubborn.py", [marker], remote=sshd.prefix,
                                       stderr=err)
        worker.send(b"hi")
        assert worker.recv(timeout=TIMEOUT) == b"hi"
        # The end of stream is ignored, so is SIGTERM (the relay passes it on): SIGKILL ends
        # the relay, and the link's end makes serve kill the remote worker.
        worker.close(timeout=2.0)
        assert worker.returncode == -9
        wait_no_processes(marker)
        err.seek(0)
        assert b"stubborn: got SIGTERM" in err.read()
