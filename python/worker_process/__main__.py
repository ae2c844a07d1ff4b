"""``python -m worker_process`` (also the ``worker-process`` command).

Subcommands:

- ``conformance worker|parent [--json] [--only ID] [--list] -- CMD [ARGS...]``: run the
  conformance kit against a candidate implementation (``spec/conformance.md``).
- ``vectors --write|--check``: regenerate or check the test vectors in ``spec/vectors/``.
- ``relay [--command] TARGET -- FILE [ARGS...]`` and ``serve [--command] -- FILE [ARGS...]``:
  the two ends of a remote worker (``spec/protocol.md``, "Relays").
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_USAGE = """\
usage: worker-process conformance worker|parent [--json] [--only ID] [--list] -- CMD [ARGS...]
       worker-process vectors --write|--check
       worker-process relay [--command] TARGET -- FILE [ARGS...]
       worker-process serve [--command] -- FILE [ARGS...]
       worker-process --version
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(_USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "--version":
        from . import __version__

        print(f"worker-process {__version__}")
        return 0
    if command == "conformance":
        from .conformance.runner import main as conformance_main

        return conformance_main(rest)
    if command in ("relay", "serve"):  # remote workers: spec/protocol.md, "Relays"
        from importlib import import_module

        run = import_module("._relay" if command == "relay" else "._host", __package__).main
        return int(run(rest))
    if command == "vectors":
        from .conformance.vectors import main as vectors_main

        return vectors_main(rest)
    sys.stderr.write(f"unknown command {command!r}\n{_USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
