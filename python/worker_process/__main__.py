"""``python -m worker_process`` (also the ``worker-process`` command).

Subcommands:

- ``conformance worker|parent [--json] [--only ID] [--list] -- CMD [ARGS...]``: run the
  conformance kit against a candidate implementation (``spec/conformance.md``).
- ``vectors --write|--check [--dir DIR]``: regenerate or check the test vectors.
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
    if command == "vectors":
        from .conformance.vectors import main as vectors_main

        return vectors_main(rest, prog="worker-process vectors")
    sys.stderr.write(f"unknown command {command!r}\n\n{_help()}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
