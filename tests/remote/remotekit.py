"""Helpers for the remote-worker tests: the SSH server (``sshd.py``, asyncssh) and its client
configuration, and checks that no process is left on either side of the link.

The suite starts the server on 127.0.0.1 with generated keys; the tests reach it with the
system's OpenSSH client and a generated config file (``-F``) when there is one, else with the
asyncssh client in ``ssh_client.py``. Nothing is installed or configured by hand.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKERS = HERE / "workers"
HOST_ALIAS = "wp-test"


@dataclass
class Sshd:
    """The running test server and how to reach it."""

    proc: subprocess.Popen[bytes]
    port: int
    directory: Path
    config: Path
    ssh: str

    @property
    def prefix(self) -> list[str]:
        """An argv prefix TARGET that runs a command on the server."""
        return [self.ssh, "-F", str(self.config), HOST_ALIAS]

    @property
    def url(self) -> str:
        return f"ssh://{HOST_ALIAS}"

    def url_env(self) -> dict[str, str]:
        """The environment under which ``ssh://wp-test`` reaches the server."""
        env = dict(os.environ)
        env["WORKER_PROCESS_SSH"] = f"{self.ssh} -F {self.config}"
        return env

    def abort_sessions(self) -> None:
        """Drop every connection at once, as if sshd's session process was killed."""
        self.proc.send_signal(signal.SIGUSR1)


def _client(directory: Path) -> str:
    """OpenSSH's client, or (without one, or with ``WORKER_PROCESS_TEST_SSH=asyncssh``) an
    ``ssh`` that runs ``ssh_client.py`` under this Python."""
    if os.environ.get("WORKER_PROCESS_TEST_SSH") != "asyncssh":
        found = shutil.which("ssh")
        if found:
            return found
    (directory / "bin").mkdir(exist_ok=True)
    wrapper = directory / "bin" / "ssh"
    wrapper.write_text(f"#!{sys.executable}\nimport runpy\n"
                       f"runpy.run_path({str(HERE / 'ssh_client.py')!r}, run_name='__main__')\n")
    wrapper.chmod(0o755)
    return str(wrapper)


@contextmanager
def start_sshd() -> Iterator[Sshd]:
    directory = Path(tempfile.mkdtemp(prefix="wp-sshd-"))
    home = directory / "home"
    home.mkdir()
    env = dict(os.environ)
    env["SSHD_PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    env["SSHD_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, str(HERE / "sshd.py"), str(directory)],
                            stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline().decode() if ready else ""
        assert line.startswith("port "), f"the test SSH server did not start: {line!r}"
        port = int(line.split()[1])
        host_key = (directory / "host_key.pub").read_text().split()
        (directory / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        config = directory / "ssh_config"
        config.write_text(
            f"Host {HOST_ALIAS}\n"
            f"  HostName 127.0.0.1\n  Port {port}\n  User {os.environ.get('USER', 'test')}\n"
            f"  IdentityFile {directory / 'user_key'}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {directory / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
            "  BatchMode yes\n  LogLevel ERROR\n  ConnectTimeout 60\n"
            "  ServerAliveInterval 2\n  ServerAliveCountMax 3\n"
        )
        yield Sshd(proc, port, directory, config, _client(directory))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (on this host, both sides of the relay)."""
    found = []
    needle = marker.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state not in ("Z", "X"):
            found.append(int(name))
    return found


def wait_no_processes(marker: str, timeout: float = 60.0, keep: tuple[int, ...] = ()) -> None:
    """Wait until no process but ``keep`` has ``marker`` in its command line.

    Raises:
        AssertionError: some are still there after ``timeout`` seconds.
    """
    end = time.monotonic() + timeout
    while True:
        left = [pid for pid in processes_with(marker) if pid not in keep]
        if not left:
            return
        if time.monotonic() > end:
            raise AssertionError(f"processes left behind: {_describe(left)}")
        time.sleep(0.05)  # polling /proc: there is no event for "no such process any more"


def _describe(pids: list[int]) -> str:
    out = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            out.append(f"{pid}: {cmdline[:200]!r}")
        except OSError:
            continue
    return "; ".join(out)
