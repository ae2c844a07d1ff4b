"""Remote targets: what ``relay TARGET`` and ``create_worker(..., remote=TARGET)`` accept, and
the command lines they turn into."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["Target", "parse_target", "relay_argv"]

#: A command line for ssh (split like a shell would), instead of ``ssh`` on PATH.
SSH_ENV = "WORKER_PROCESS_SSH"
#: The Python to run on the remote host (default ``python3``).
REMOTE_PYTHON_ENV = "WORKER_PROCESS_REMOTE_PYTHON"


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where a worker runs: the argv prefix that runs a command there, whether that prefix
    hands the command to a shell (ssh does: each word is then quoted), and a name for
    messages."""

    prefix: tuple[str, ...]
    shell: bool
    name: str
    is_ssh: bool


def parse_target(
    text: str, *, keepalive: float = 15.0, keepalive_count: int = 3
) -> Target:
    """``ssh://[user@]host[:port]``, or a JSON array of strings: an argv prefix such as
    ``["docker", "exec", "-i", "box"]`` or ``["ssh", "-F", "cfg", "host"]``.

    Raises:
        ValueError: neither form, or an empty host or prefix.
    """
    if text.startswith("ssh://"):
        parts = urlsplit(text)
        host = parts.hostname
        if not host or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"bad ssh target {text!r}: expected ssh://[user@]host[:port]")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"bad port in {text!r}") from None
        ssh = shlex.split(os.environ.get(SSH_ENV) or "ssh")
        prefix = [*ssh, "-T", "-x",
                  "-o", f"ServerAliveInterval={max(1, round(keepalive))}",
                  "-o", f"ServerAliveCountMax={max(1, keepalive_count)}"]
        if port is not None:
            prefix += ["-p", str(port)]
        if parts.username:
            prefix += ["-l", unquote(parts.username)]
        prefix += ["--", host]
        return Target(prefix=tuple(prefix), shell=True, name=host, is_ssh=True)
    if text.startswith("["):
        try:
            words = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"bad target {text!r}: not a JSON array ({exc})") from None
        if not words or not all(isinstance(w, str) for w in words):
            raise ValueError(f"bad target {text!r}: a non-empty JSON array of strings expected")
        is_ssh = os.path.basename(words[0]) == "ssh"
        return Target(prefix=tuple(words), shell=is_ssh, name=" ".join(words), is_ssh=is_ssh)
    raise ValueError(
        f"bad target {text!r}: expected ssh://[user@]host[:port] or a JSON array (an argv"
        " prefix such as [\"docker\", \"exec\", \"-i\", \"box\"])"
    )


def remote_command(target: Target, words: Sequence[str]) -> list[str]:
    """The full argv that runs ``words`` on the target."""
    tail = [shlex.quote(w) for w in words] if target.shell else list(words)
    return [*target.prefix, *tail]


def target_text(remote: str | Sequence[str]) -> str:
    """The relay's TARGET argument for ``create_worker(remote=...)``.

    Raises:
        TypeError: neither a string nor a sequence of strings.
    """
    if isinstance(remote, str):
        return remote
    words = list(remote)
    if not all(isinstance(w, str) for w in words):
        raise TypeError("remote must be 'ssh://...' or a list of strings (an argv prefix)")
    return json.dumps(words)


def relay_argv(
    remote: str | Sequence[str], file: str | os.PathLike[str], args: Sequence[str],
    is_command: bool,
) -> list[str]:
    """The local command that starts ``file`` on ``remote``: this Python running the relay."""
    target = target_text(remote)
    parse_target(target)  # a bad target fails here, not in the child
    flag = ["--command"] if is_command else []
    return [sys.executable, "-m", "worker_process", "relay", *flag, target, "--",
            os.fspath(file), *map(str, args)]
