"""A minimal ssh client on asyncssh, for machines without OpenSSH's: what the remote-worker
tests need of ``ssh [-F CONFIG] [-T] [-x] [-o KEY=VALUE]... [-p PORT] [-l USER] [--] HOST
COMMAND...``. Reads Host/HostName/Port/User/IdentityFile/UserKnownHostsFile/
ServerAliveInterval/ServerAliveCountMax from the config; passes stdin (and its end) to the
command, its stdout and stderr back; exits with its status (255 for a connection failure or a
signal, as ssh does)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import asyncssh


def _parse(argv: list[str]) -> tuple[dict[str, str], str, list[str]]:
    options: dict[str, str] = {}
    config = ""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("-"):
            break
        if word in ("-T", "-x"):
            i += 1
            continue
        value = argv[i + 1]
        if word == "-F":
            config = value
        elif word == "-o":
            key, _, val = value.partition("=")
            options[key.lower()] = val
        elif word == "-p":
            options["port"] = value
        elif word == "-l":
            options["user"] = value
        i += 2
    host, command = argv[i], argv[i + 1 :]
    settings: dict[str, str] = {}
    if config:
        matched = False
        for line in Path(config).read_text().splitlines():
            parts = line.split(None, 1)
            if len(parts) != 2:
                continue
            key, value = parts[0].lower(), parts[1].strip()
            if key == "host":
                matched = value == host
            elif matched:
                settings.setdefault(key, value)
    settings.update(options)
    return settings, host, command


async def _run(settings: dict[str, str], host: str, command: list[str]) -> int:
    options: dict[str, Any] = {
        "port": int(settings.get("port", "22")),
        "username": settings.get("user", os.environ.get("USER", "root")),
        "known_hosts": settings.get("userknownhostsfile"),
        "client_keys": [settings["identityfile"]] if "identityfile" in settings else None,
        "keepalive_interval": float(settings.get("serveraliveinterval", "0")),
        "keepalive_count_max": int(settings.get("serveralivecountmax", "3")),
    }
    try:
        conn = await asyncssh.connect(settings.get("hostname", host), **options)
    except (OSError, asyncssh.Error) as exc:
        sys.stderr.write(f"ssh: connect to host {host}: {exc}\n")
        return 255
    loop = asyncio.get_running_loop()
    async with conn:
        proc = await conn.create_process(" ".join(command), encoding=None)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                     os.fdopen(0, "rb", buffering=0))

        async def pump_in() -> None:
            while data := await reader.read(1 << 18):
                proc.stdin.write(data)
                await proc.stdin.drain()
            proc.stdin.write_eof()

        async def pump_out(stream: Any, fd: int) -> None:
            while data := await stream.read(1 << 18):
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]

        feeder = asyncio.ensure_future(pump_in())
        try:
            await asyncio.gather(pump_out(proc.stdout, 1), pump_out(proc.stderr, 2))
            await proc.wait_closed()
        except (OSError, asyncssh.Error) as exc:
            sys.stderr.write(f"ssh: connection to {host} lost: {exc}\n")
            return 255
        finally:
            feeder.cancel()
        status = proc.exit_status
        return 255 if status is None or status < 0 else int(status)


def main() -> None:
    settings, host, command = _parse(sys.argv[1:])
    os._exit(asyncio.run(_run(settings, host, command)))


if __name__ == "__main__":
    main()
