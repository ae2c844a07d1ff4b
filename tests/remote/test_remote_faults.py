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


@pytest.mark.parametrize("cut", ["ssh client killed", "sshd session killed"])
def test_link_cut_while_running(sshd: Sshd, tmp_path: Path, cut: str) -> None:
    marker = tag()
    err = tmp_path / "stderr"
    with open(err, "wb") as stderr:
        worker = wp_sync.create_worker(WORKERS / "echo.py", [marker], remote=sshd.prefix,
                                       stderr=stderr)
    _echo_once(worker)
    if cut == "ssh client killed":
        ssh = [pid for pid in processes_with(marker) if _comm(pid) == "ssh"]
        assert len(ssh) == 1
        os.kill(ssh[0], signal.SIGKILL)
    else:
        sshd.abort_sessions()
    _expect_link_failure(worker, err)
    assert "the link to" in err.read_text()
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


#: A piece missing on the way: (relay options, target prefix or None for the server's, the
#: returncode of the failed start, what the relay's line on stderr says). ``{marker}`` is the
#: test's tag.
_MISSING = {
    "program": (["--command"], None, 127, "cannot start '/nonexistent/{marker}'"),
    "python3": (["--remote-python", "python3-not-there"], None, 127,
                "has no 'python3-not-there'"),
    # -S: no site-packages, so the package is not importable there.
    "package": (["--remote-python", "python3 -S"], None, 127,
                "cannot import worker_process: install the worker-process package"),
    "ssh connection": ([], ["-p", "1"], 255, "ssh could not connect to"),
}


@pytest.mark.parametrize("missing", list(_MISSING))
def test_missing_piece_fails_the_start(sshd: Sshd, tmp_path: Path, missing: str) -> None:
    options, extra, code, message = _MISSING[missing]
    marker = tag()
    err = tmp_path / "stderr"
    prefix = [sshd.ssh, "-F", str(sshd.config), *extra, "wp-test"] if extra else None
    file = Path(f"/nonexistent/{marker}") if missing == "program" else WORKERS / "echo.py"
    with open(err, "wb") as stderr, pytest.raises(WorkerStartError) as info:
        _relay(sshd, marker, *options, file=file, prefix=prefix, stderr=stderr)
    assert info.value.returncode == code
    assert message.format(marker=marker) in err.read_text()
    wait_no_processes(marker)


def test_missing_program_through_the_api(sshd: Sshd, tmp_path: Path) -> None:
    marker = tag()
    err = tmp_path / "stderr"
    with open(err, "wb") as stderr, pytest.raises(WorkerStartError) as info:
        wp_sync.create_worker(f"/nonexistent/{marker}", is_command=True, remote=sshd.prefix,
                              stderr=stderr)
    assert info.value.returncode == 127
    assert f"cannot start '/nonexistent/{marker}'" in err.read_text()


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
