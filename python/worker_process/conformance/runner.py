"""The live runner: ``python -m worker_process conformance worker|parent [options] -- CMD...``.

Runs every scenario of a role against fresh candidate processes, one at a time, each bounded
by its timeout (a scenario that overruns is stopped and its processes killed), and reports a
table or JSON. Exit status: 0 when every MUST scenario passed, 1 when one failed, 2 for a
usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, TextIO, TypeVar

from ._procs import StartFail, become_subreaper, kill_stray_children
from ._raw import Deadline, Fail
from .files import candidates_directory, contract_path
from .report import render_table
from .scenarios import Level, Result, Scenario, ScenarioSet, Status

__all__ = ["main", "run_role"]

Ctx = TypeVar("Ctx")


class _Overrun(BaseException):
    """Raised in the scenario by the timer when it runs past its timeout."""


@contextlib.contextmanager
def _hard_timeout(seconds: float) -> Iterator[None]:
    """Interrupt the block with :class:`_Overrun` after ``seconds`` (a guard behind the
    scenarios' own deadlines, so that nothing can hang the run)."""

    def fire(signum: int, frame: FrameType | None) -> None:
        raise _Overrun()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run_one(
    scenario: Scenario[Ctx],
    make_context: Callable[[Deadline], Ctx],
    cleanup: Callable[[Ctx], None],
    scale: float,
) -> Result:
    timeout = scenario.timeout * scale
    deadline = Deadline(timeout)
    started = time.monotonic()
    status, reason, stderr = Status.PASS, "", ""
    ctx: Ctx | None = None
    try:
        # The guard fires a little after the deadline every wait honours.
        with _hard_timeout(timeout + 5.0):
            try:
                ctx = make_context(deadline)
                scenario.run(ctx)
            finally:
                if ctx is not None:
                    cleanup(ctx)
    except Fail as exc:
        status, reason = Status.FAIL, str(exc)
        stderr = exc.stderr if isinstance(exc, StartFail) else ""
    except _Overrun:
        status, reason = Status.TIMEOUT, f"still running after {timeout:g} s; stopped"
    except Exception as exc:
        status = Status.ERROR
        where = traceback.extract_tb(exc.__traceback__)[-1]
        reason = (f"the runner failed: {type(exc).__name__}: {exc} "
                  f"({os.path.basename(where.filename)}:{where.lineno})")
    finally:
        kill_stray_children()
    if status is Status.FAIL and time.monotonic() > deadline.at:
        status = Status.TIMEOUT
    return Result(scenario.id, scenario.level, scenario.section, scenario.summary, status,
                  reason.replace("\n", " "), time.monotonic() - started, stderr)


def run_role(
    role: str,
    argv: Sequence[str],
    *,
    only: list[str] | None = None,
    scale: float = 1.0,
    progress: Callable[[Result, int, int], None] | None = None,
) -> list[Result]:
    """Run the scenarios of ``role`` (``"worker"`` or ``"parent"``) against the candidate
    command ``argv``: the pre-flight scenario ``starts`` first (also when ``only`` leaves it
    out), then the others, which are skipped if it failed. ``progress(result, done, total)``
    is called as each one finishes. Meant for a process of its own: it makes the process a
    child subreaper and reaps every child it has after each scenario.

    Raises:
        ValueError: unknown role or scenario id.
    """
    become_subreaper()
    env = dict(os.environ)
    make_context: Callable[[Deadline], Any]
    cleanup: Callable[[Any], None]
    if role == "worker":
        from .worker_scenarios import SCENARIOS as WORKER
        from .worker_scenarios import WorkerContext

        catalogue: ScenarioSet[Any] = WORKER
        make_context, cleanup = (lambda d: WorkerContext(argv, env, d)), WorkerContext.cleanup
    elif role == "parent":
        from .parent_scenarios import SCENARIOS as PARENT
        from .parent_scenarios import ParentContext

        catalogue = PARENT
        make_context, cleanup = (lambda d: ParentContext(argv, env, d)), ParentContext.cleanup
    else:
        raise ValueError(f"unknown role {role!r}: 'worker' or 'parent'")
    preflight = catalogue.scenarios[0]
    chosen = [preflight, *(s for s in catalogue.select(only) if s is not preflight)]
    results: list[Result] = []
    for scenario in chosen:
        if results and results[0].passed is False:
            result = Result(scenario.id, scenario.level, scenario.section, scenario.summary,
                            Status.SKIPPED, f"not run: the candidate failed the pre-flight "
                            f"scenario {preflight.id!r}", 0.0)
        else:
            result = _run_one(scenario, make_context, cleanup, scale)
        results.append(result)
        if progress:
            progress(result, len(results), len(chosen))
    return results


def must_failures(results: Sequence[Result]) -> list[Result]:
    return [r for r in results if r.level is Level.MUST and not r.passed]


def list_scenarios(role: str) -> list[Scenario[Any]]:
    """Every scenario of ``role``.

    Raises:
        ValueError: unknown role.
    """
    if role == "worker":
        from .worker_scenarios import SCENARIOS as WORKER

        return list(WORKER.scenarios)
    if role == "parent":
        from .parent_scenarios import SCENARIOS as PARENT

        return list(PARENT.scenarios)
    raise ValueError(f"unknown role {role!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker_process conformance",
        description="Check an implementation of the worker-process protocol against live "
        f"scenarios. The candidate program follows the contract in {contract_path()}.",
        epilog="examples:\n"
        "  python -m worker_process conformance worker -- node my_worker.js\n"
        "  python -m worker_process conformance parent --json -- ./my_parent\n"
        "  python -m worker_process conformance worker --list\n"
        f"reference candidates (Python): {candidates_directory()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("role", choices=("worker", "parent"),
                        help="the role the candidate program plays")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--only", action="append", metavar="ID",
                        help="run only this scenario (repeatable)")
    parser.add_argument("--timeout-scale", type=float, default=1.0, metavar="F",
                        help="multiply every scenario's timeout by F (slow machines)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--name", help="the candidate's name in the report (default: CMD)")
    parser.usage = ("python -m worker_process conformance {worker,parent} [options] "
                    "-- CMD [ARGS...]")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    stream = sys.stdout if out is None else out
    parser = _parser()
    words = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in words:
        cut = words.index("--")
        words, command = words[:cut], words[cut + 1 :]
    args = parser.parse_args(words)
    if args.list:
        for s in list_scenarios(args.role):
            print(f"{s.id:28} {s.level.value:6} {s.section:17} {s.summary}", file=stream)
        return 0
    if not command:
        parser.print_usage(sys.stderr)
        print("error: give the candidate program after --", file=sys.stderr)
        return 2
    if args.timeout_scale <= 0:
        parser.error("--timeout-scale must be positive")
    name = args.name or " ".join(command)

    def progress(result: Result, done: int, total: int) -> None:
        # One line per scenario as it finishes, for a person watching (never into a file).
        if sys.stderr.isatty():
            print(f"[{done:{len(str(total))}}/{total}] {result.id:28} {result.status.value:7}"
                  f" {result.seconds:6.2f}s", file=sys.stderr, flush=True)

    try:
        results = run_role(args.role, command, only=args.only, scale=args.timeout_scale,
                           progress=progress)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = must_failures(results)
    if args.json:
        json.dump({"role": args.role, "candidate": name, "command": command,
                   "ok": not failed, "results": [r.to_json() for r in results]},
                  stream, indent=1)
        stream.write("\n")
    else:
        stream.write(render_table(args.role, name, results))
    stream.flush()
    return 1 if failed else 0
