"""``python -m worker_process`` (also the ``worker-process`` command).

Subcommands:

- ``conformance worker|parent [--json] [--only ID] [--list] -- CMD [ARGS...]``: run the
  conformance kit against a candidate implementation (``spec/conformance.md``).
- ``vectors --write|--check [--dir DIR]``: regenerate or check the test vectors.
- ``relay [--command] TARGET -- FILE [ARGS...]`` and ``serve [--command] -- FILE [ARGS...]``:
  the two ends of a remote worker (``spec/protocol.md``, "Relays").
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_HELP = """\
usage: worker-process COMMAND [ARGS...]     (also: python -m worker_process)

Tools for the worker-process protocol (a parent and the worker it spawns, framed bytes on
fd 3). `worker-process COMMAND --help` describes a command in full.

commands:
  conformance worker|parent [--json] [--only ID] [--list] [--timeout-scale F] -- CMD [ARGS...]
      Run the live conformance kit against a program written with another implementation:
      in the `worker` role the kit is its parent, in the `parent` role the program starts
      the kit's probe worker. Prints a table (or JSON) of MUST/SHOULD scenarios; exit 0 when
      every MUST passes. The contract a candidate follows: {contract}

  vectors --write|--check [--dir DIR]
      Regenerate (--write) or verify (--check: exit 1 when a file is missing or stale) the
      language-neutral test vectors derived from the protocol grammar, by default in
      {vectors}

  relay [--command] [--remote-python PY] [--keepalive S] [--env NAME]... TARGET -- FILE [ARGS...]
      Run FILE on another host as this process's worker (start the relay as an ordinary
      worker, channel on fd 3). TARGET is ssh://[user@]host[:port] or a JSON array, the argv
      prefix of a command that carries a byte stream (["docker","exec","-i","box"]). The
      relay runs `python3 -m worker_process serve` there and passes every byte through.

  serve [--command] [--grace S] [--env NAME=VALUE]... -- FILE [ARGS...]
      The far end of a relay: start FILE as a worker with its socket on fd 3 and carry its
      channel, exit status and stdout over stdin/stdout (spec/protocol.md, "Relays").

  --version
      Print the version.
"""


def _help() -> str:
    from .conformance.files import contract_path, vectors_directory

    return _HELP.format(contract=contract_path(), vectors=vectors_directory())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        (sys.stdout if args else sys.stderr).write(_help())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "--version":
        from . import __version__

        print(f"worker-process {__version__}")
        return 0
    if command == "conformance":
        from .conformance.runner import main as conformance_main

        return conformance_main(rest)
    if command == "relay":  # remote workers: spec/protocol.md, "Relays"
        from ._relay import main as relay_main

        return int(relay_main(rest))
    if command == "serve":
        from ._host import main as host_main

        return int(host_main(rest))
    if command == "vectors":
        from .conformance.vectors import main as vectors_main

        return vectors_main(rest, prog="worker-process vectors")
    sys.stderr.write(f"unknown command {command!r}\n\n{_help()}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
