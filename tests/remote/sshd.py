"""A real SSH server for the remote-worker tests (asyncssh), on 127.0.0.1.

    python sshd.py DIR

Generates a host key and a user key in DIR (``host_key``, ``user_key``), accepts only that user
key, and runs each exec request as ``/bin/sh -c COMMAND`` with its stdin, stdout and stderr on
pipes, as OpenSSH's sshd does without a terminal: the channel's data and end of file go to the
command's stdin, its stdout/stderr come back, its exit code or signal ends the session, and
signal requests reach it. When the connection is lost the command's pipes are closed (it sees
the end of its stdin). SIGUSR1 aborts every connection at once (a killed session process).

Prints ``port N`` on stdout when it listens. Commands run with ``$PATH`` and ``$HOME`` from
``SSHD_PATH`` / ``SSHD_HOME`` (default: the server's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import asyncssh

_HIGH = 1 << 20


class _Session(asyncssh.SSHServerSession):  # type: ignore[misc]
    def __init__(self, server: _Server) -> None:
        self._server = server
        self._chan: Any = None
        self._command = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._early: list[bytes] = []
        self._eof = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._tasks: list[asyncio.Task[None]] = []

    def connection_made(self, chan: Any) -> None:
        self._chan = chan

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def session_started(self) -> None:
        self._tasks.append(asyncio.ensure_future(self._run()))

    async def _run(self) -> None:
        env = dict(os.environ)
        env["PATH"] = os.environ.get("SSHD_PATH", env.get("PATH", ""))
        env["HOME"] = os.environ.get("SSHD_HOME", env.get("HOME", "/"))
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", self._command, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
            cwd=env["HOME"], start_new_session=True,
        )
        self._proc = proc
        self._server.procs.add(proc)
        assert proc.stdin is not None
        for data in self._early:
            proc.stdin.write(data)
        self._early.clear()
        if self._eof:
            proc.stdin.close()
        out = asyncio.ensure_future(self._copy(proc.stdout, None))
        err = asyncio.ensure_future(self._copy(proc.stderr, asyncssh.EXTENDED_DATA_STDERR))
        self._tasks += [out, err]
        code = await proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(out, err)
        self._server.procs.discard(proc)
        chan = self._chan
        if chan is None:
            return
        with contextlib.suppress(Exception):
            if code < 0:
                chan.exit_with_signal(signal.Signals(-code).name[3:])
            else:
                chan.exit(code)

    async def _copy(self, stream: asyncio.StreamReader | None, datatype: int | None) -> None:
        assert stream is not None
        while True:
            data = await stream.read(1 << 18)
            if not data:
                return
            await self._writable.wait()
            if self._chan is None:
                return
            self._chan.write(data, datatype)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes, datatype: int | None) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            self._early.append(data)
            return
        with contextlib.suppress(Exception):
            proc.stdin.write(data)
            if proc.stdin.transport.get_write_buffer_size() > _HIGH:
                self._chan.pause_reading()
                self._tasks.append(asyncio.ensure_future(self._drain(proc.stdin)))

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await writer.drain()
        if self._chan is not None:
            self._chan.resume_reading()

    def eof_received(self) -> bool:
        self._eof = True
        if self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.close()
        return True

    def signal_received(self, name: str) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, AttributeError):
                self._proc.send_signal(getattr(signal, "SIG" + name))

    def connection_lost(self, exc: Exception | None) -> None:
        # As sshd: the command's pipes close; it sees the end of its stdin.
        self._chan = None
        self._writable.set()
        proc = self._proc
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                transport = getattr(pipe, "transport", None) or getattr(pipe, "_transport", None)
                if transport is not None:
                    transport.close()


class _Server(asyncssh.SSHServer):  # type: ignore[misc]
    def __init__(self, registry: set[Any], procs: set[Any]) -> None:
        self.registry = registry
        self.procs = procs
        self.conn: Any = None

    def connection_made(self, conn: Any) -> None:
        self.conn = conn
        self.registry.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.registry.discard(self.conn)

    def session_requested(self) -> _Session:
        return _Session(self)


async def serve(directory: Path) -> None:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(str(directory / "host_key"))
    user_key.write_private_key(str(directory / "user_key"))
    (directory / "user_key").chmod(0o600)
    user_key.write_public_key(str(directory / "user_key.pub"))
    host_key.write_public_key(str(directory / "host_key.pub"))
    connections: set[Any] = set()
    procs: set[Any] = set()
    server = await asyncssh.create_server(
        lambda: _Server(connections, procs), "127.0.0.1", 0,
        server_host_keys=[str(directory / "host_key")],
        authorized_client_keys=str(directory / "user_key.pub"),
        encoding=None, keepalive_interval=0,
    )
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()

    def abort_all() -> None:
        for conn in list(connections):
            conn.abort()

    loop.add_signal_handler(signal.SIGUSR1, abort_all)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(f"port {port}", flush=True)
    await stop.wait()
    server.close()
    abort_all()


def main() -> None:
    asyncio.run(serve(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
