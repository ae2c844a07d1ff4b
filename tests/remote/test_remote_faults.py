"""Faults on the way to a remote worker, with a real SSH server: each has a typed outcome at
the parent, and no process is left on either side (checked in /proc)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from remotekit import HERE, WORKERS, Sshd, processes_with, wait_no_processes

from worker_process import WorkerExitError, WorkerStartError
from worker_process import sync as wp_sync

TIMEOUT = 60.0


def tag() -> str:
    return f"wp-tag-{uuid.uuid4().hex[:12]}"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _relay(sshd: Sshd, marker: str, *options: str, file: Path = WORKERS / "echo.py",
           prefix: list[str] | None = None, stderr: object = None) -> wp_sync.Worker:
    """A relay started by hand (to pass options the API keeps at their defaults)."""
    argv = ["-m", "worker_process", "relay", *options, json.dumps(prefix or sshd.prefix), "--",
            str(file), marker]
    return wp_sync.create_worker(sys.executable, argv, is_command=True,
                                 stderr=stderr)  # type: ignore[arg-type]


def _echo_once(worker: wp_sync.Worker) -> None:
    worker.send(b"ping")
    assert worker.recv(timeout=TIMEOUT) == b"ping"


def _expect_link_failure(worker: wp_sync.Worker, err: Path) -> None:
    with pytest.raises(WorkerExitError) as info:
        worker.result(timeout=TIMEOUT)
    assert info.value.returncode == 255, err.read_text()
    worker.close()


def test_killed_ssh_client(sshd: Sshd, tmp_path: Path) -> None:
    marker = tag()
    err = tmp_path / "stderr"
    with open(err, "wb") as stderr:
        worker = wp_sync.create_worker(WORKERS / "echo.py", [marker], remote=sshd.prefix,
                                       stderr=stderr)
    _echo_once(worker)
    ssh = [pid for pid in processes_with(marker) if _comm(pid) == "ssh"]
    assert len(ssh) == 1
    os.kill(ssh[0], signal.SIGKILL)
    _expect_link_failure(worker, err)
    assert "link to" in err.read_text()
    wait_no_processes(marker)


def test_killed_sshd_session(sshd: Sshd, tmp_path: Path) -> None:
    marker = tag()
    err = tmp_path / "stderr"
    with open(err, "wb") as stderr:
        worker = wp_sync.create_worker(WORKERS / "echo.py", [marker], remote=sshd.prefix,
                                       stderr=stderr)
    _echo_once(worker)
    sshd.abort_sessions()
    _expect_link_failure(worker, err)
    wait_no_processes(marker)


def test_stalled_relay_past_the_keepalive(sshd: Sshd, tmp_path: Path) -> None:
    marker = tag()
    err = tmp_path / "stderr"
    with open(err, "wb") as stderr:
        worker = _relay(sshd, marker, "--keepalive", "0.5", "--keepalive-count", "4",
                        stderr=stderr)
    _echo_once(worker)
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        # serve hears nothing for 2 s: the worker sees a gone parent, exits 1, and the
        # session ends; only the stopped relay is left.
        wait_no_processes(marker, keep=(worker.pid,))
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    _expect_link_failure(worker, err)
    assert "the parent is gone" in err.read_text()
    wait_no_processes(marker)


def test_remote_worker_crash(sshd: Sshd) -> None:
    marker = tag()
    worker = wp_sync.create_worker(WORKERS / "echo.py", [marker], remote=sshd.prefix)
    _echo_once(worker)
    worker.send(b"signal %d" % signal.SIGSEGV)
    with pytest.raises(WorkerExitError) as info:
        worker.result(timeout=TIMEOUT)
    assert info.value.signal == signal.SIGSEGV
    worker.close()
    wait_no_processes(marker)


def _start_failure(start: object, err: Path) -> tuple[WorkerStartError, str]:
    with pytest.raises(WorkerStartError) as info:
        start()  # type: ignore[operator]
    return info.value, err.read_text()


def test_remote_program_missing(sshd: Sshd, tmp_path: Path) -> None:
    marker = tag()
    err = tmp_path / "stderr"
    with open(err, "wb") as stderr:
        exc, text = _start_failure(lambda: wp_sync.create_worker(
            f"/nonexistent/{marker}", is_command=True, remote=sshd.prefix, stderr=stderr), err)
    assert exc.returncode == 127
    assert f"cannot start '/nonexistent/{marker}'" in text
    wait_no_processes(marker)


def test_remote_python_missing(sshd: Sshd, tmp_path: Path) -> None:
    marker = tag()
    err = tmp_path / "stderr"
    with open(err, "wb") as stderr:
        exc, text = _start_failure(lambda: _relay(
            sshd, marker, "--remote-python", "python3-not-there", stderr=stderr), err)
    assert exc.returncode == 127
    assert "has no 'python3-not-there'" in text
    wait_no_processes(marker)


def test_remote_package_missing(sshd: Sshd, tmp_path: Path) -> None:
    marker = tag()
    err = tmp_path / "stderr"
    with open(err, "wb") as stderr:
        # -S: no site-packages, so the package is not importable there.
        exc, text = _start_failure(lambda: _relay(
            sshd, marker, "--remote-python", "python3 -S", stderr=stderr), err)
    assert exc.returncode == 127
    assert "cannot import worker_process: install the worker-process package" in text
    wait_no_processes(marker)


def test_ssh_cannot_connect(sshd: Sshd, tmp_path: Path) -> None:
    marker = tag()
    err = tmp_path / "stderr"
    prefix = [sshd.ssh, "-F", str(sshd.config), "-p", "1", "wp-test"]
    with open(err, "wb") as stderr:
        exc, text = _start_failure(lambda: _relay(sshd, marker, prefix=prefix, stderr=stderr),
                                   err)
    assert exc.returncode == 255
    assert "ssh could not connect to" in text
    wait_no_processes(marker)


def test_parent_killed_makes_the_remote_worker_exit_1(sshd: Sshd, tmp_path: Path) -> None:
    marker = tag()
    err = tmp_path / "stderr"
    with open(err, "wb") as stderr:
        parent = subprocess.Popen(
            [sys.executable, str(HERE / "parent_then_wait.py"), json.dumps(sshd.prefix),
             str(WORKERS / "echo.py"), marker], stdout=subprocess.PIPE, stderr=stderr)
    try:
        assert parent.stdout is not None
        ready, _, _ = select.select([parent.stdout], [], [], TIMEOUT)
        assert ready and parent.stdout.readline().startswith(b"ready"), err.read_text()
        parent.kill()
        parent.wait()
        wait_no_processes(marker)
    finally:
        parent.kill()
        parent.wait()
    # The remote worker saw a gone parent (not a clean end): its line came back over ssh.
    assert "channel to the parent broke: the parent is gone" in err.read_text()
