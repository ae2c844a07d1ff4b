#!/usr/bin/env python3
"""Run every fuzz harness for a share of a time budget; exit non-zero on any crash.

    python fuzz/campaign.py --seconds 60            # what CI runs (tests/run.py)
    python fuzz/campaign.py --seconds 3600 --harness decoder

Each harness runs in a subprocess under atheris (coverage-guided libFuzzer) with the committed
seeds (``fuzz/seeds/<harness>/``) and a working corpus (``fuzz/corpus-<harness>/``, not
committed). If atheris cannot be imported, the campaign tries ``pip install atheris`` into
this interpreter's environment; if that fails too (no wheel for this Python), it drives the
same harness functions with mutated seeds and random bytes from ``random`` and says so. It
never fails for lack of atheris.

Crashing inputs are saved in ``fuzz/corpus-crashes/``; reproduce one with
``python fuzz/fuzz_<harness>.py fuzz/corpus-crashes/<file>``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESSES = ("decoder", "grammar", "roundtrip")
CRASHES = HERE / "corpus-crashes"


def _atheris_importable() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import atheris"], capture_output=True,
                           timeout=120)
    return probe.returncode == 0


def ensure_atheris() -> bool:
    """True if atheris can be used, installing it with pip if needed."""
    if _atheris_importable():
        return True
    print("atheris is not importable; trying: pip install atheris", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "atheris"], timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"pip install atheris failed: {exc}", flush=True)
    return _atheris_importable()


def _count(pattern: str, text: str) -> int:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else 0


def run_one(harness: str, seconds: int, coverage: bool) -> tuple[int, int, str]:
    """Run one harness; return (executions, crashes, output tail)."""
    script = HERE / f"fuzz_{harness}.py"
    seeds = HERE / "seeds" / harness
    corpus = HERE / f"corpus-{harness}"
    corpus.mkdir(exist_ok=True)
    CRASHES.mkdir(exist_ok=True)
    before = set(CRASHES.iterdir())
    if coverage:
        cmd = [sys.executable, str(script), str(corpus), str(seeds),
               f"-max_total_time={seconds}", "-print_final_stats=1", "-max_len=8192",
               "-timeout=30", "-rss_limit_mb=4096", f"-artifact_prefix={CRASHES}/{harness}-"]
    else:
        cmd = [sys.executable, str(script), "--random", str(seconds), "--crash-dir",
               str(CRASHES), str(seeds), str(corpus)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 300)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        parts = [p.decode(errors="replace") if isinstance(p, bytes) else p or ""
                 for p in (exc.stdout, exc.stderr)]
        output = "".join(parts) + "\nthe harness overran its time budget"
        code = -1
    if coverage:
        executions = _count(r"stat::number_of_executed_units:\s*(\d+)", output)
        crashes = len(set(CRASHES.iterdir()) - before)
        if code != 0 and crashes == 0:
            crashes = 1  # a failure libFuzzer left no artifact for (timeout, OOM, startup)
    else:
        executions = _count(r"random-driver executions: (\d+)", output)
        crashes = _count(r"random-driver crashes: (\d+)", output)
        if code != 0 and crashes == 0:
            crashes = 1
    tail = "\n".join(output.strip().splitlines()[-40:])
    return executions, crashes, tail


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="total time budget")
    parser.add_argument("--harness", action="append", choices=HARNESSES,
                        help="run only these (repeatable); default: all")
    parser.add_argument("--random", action="store_true",
                        help="use the random driver even if atheris is available")
    opts = parser.parse_args(argv)
    harnesses = opts.harness or list(HARNESSES)
    share = max(1, int(opts.seconds / len(harnesses)))
    coverage = not opts.random and ensure_atheris()
    if coverage:
        print(f"fuzzing with atheris: {len(harnesses)} harnesses x {share} s", flush=True)
    else:
        why = "--random given" if opts.random else "atheris unavailable"
        print(f"{why}: driving the harnesses with random inputs (Python's random module),"
              f" {len(harnesses)} x {share} s", flush=True)
    total_runs = total_crashes = 0
    started = time.monotonic()
    for harness in harnesses:
        executions, crashes, tail = run_one(harness, share, coverage)
        total_runs += executions
        total_crashes += crashes
        print(f"  {harness:<10} {executions:>9} executions  {crashes} crashes", flush=True)
        if crashes:
            print(tail, flush=True)
    print(f"total: {total_runs} executions, {total_crashes} crashes in "
          f"{time.monotonic() - started:.0f} s ({'atheris' if coverage else 'random driver'})")
    if total_crashes:
        print(f"crashing inputs are in {CRASHES}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
