"""Human-readable reports: one run as a table, several runs as a matrix."""

from __future__ import annotations

from collections.abc import Sequence

from .scenarios import Level, Result, Status

__all__ = ["render_matrix", "render_table", "summary_line"]


def _cell(result: Result) -> str:
    return "pass" if result.status is Status.PASS else result.status.value.upper()


def summary_line(results: Sequence[Result]) -> str:
    """``24 scenarios: 23 passed; MUST failures: 0; SHOULD failures: 1``."""
    ran = [r for r in results if r.status is not Status.SKIPPED]
    must = sum(1 for r in ran if r.level is Level.MUST and not r.passed)
    should = sum(1 for r in ran if r.level is Level.SHOULD and not r.passed)
    passed = sum(1 for r in ran if r.passed)
    skipped = len(results) - len(ran)
    return (f"{len(results)} scenarios: {passed} passed; MUST failures: {must};"
            f" SHOULD failures: {should}"
            f"{f'; {skipped} skipped (the pre-flight failed)' if skipped else ''}")


def render_table(role: str, candidate: str, results: Sequence[Result]) -> str:
    """One run: a row per scenario, with the reason under each failure."""
    id_width = max([len("scenario"), *(len(r.id) for r in results)])
    sec_width = max([len("section"), *(len(r.section) for r in results)])
    lines = [
        f"conformance, {role} role: {candidate}",
        f"{'scenario':{id_width}}  {'level':6}  {'section':{sec_width}}  {'result':7}  time",
    ]
    for r in results:
        lines.append(f"{r.id:{id_width}}  {r.level.value:6}  {r.section:{sec_width}}  "
                     f"{_cell(r):7}  {r.seconds:5.2f}s")
        if not r.passed and r.status is not Status.SKIPPED:
            lines.append(f"{'':{id_width}}  -> {r.reason}")
        if r.stderr:
            lines.append(f"{'':{id_width}}  the candidate's stderr:")
            lines.extend(f"{'':{id_width}}  | {line}" for line in r.stderr.splitlines())
    lines.append(summary_line(results))
    verdict = "CONFORMS" if not any(r.level is Level.MUST and not r.passed for r in results) \
        else "DOES NOT CONFORM"
    lines.append(f"verdict: {verdict} (every MUST scenario must pass)")
    return "\n".join(lines) + "\n"


def render_matrix(role: str, runs: Sequence[tuple[str, Sequence[Result]]]) -> str:
    """Several candidates of one role side by side, as a Markdown table."""
    if not runs:
        return ""
    order: list[Result] = []
    seen: set[str] = set()
    for _, results in runs:
        for r in results:
            if r.id not in seen:
                seen.add(r.id)
                order.append(r)
    header = ["scenario", "level", "section", *(name for name, _ in runs)]
    rows = [header, ["---"] * len(header)]
    for proto in order:
        row = [f"`{proto.id}`", proto.level.value, proto.section]
        for _, results in runs:
            match = next((r for r in results if r.id == proto.id), None)
            row.append("-" if match is None else _cell(match))
        rows.append(row)
    totals = ["**MUST failures**", "", ""]
    for _, results in runs:
        totals.append(str(sum(1 for r in results if r.level is Level.MUST and not r.passed)))
    rows.append(totals)
    lines = [f"{role} role:", ""]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
