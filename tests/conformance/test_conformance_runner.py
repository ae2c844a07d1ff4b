"""The live runner itself: its scenario catalogue, its command line, and that it tells a
correct candidate from deliberately broken ones — each defect fails exactly the scenarios
meant to catch it, and a candidate that hangs cannot hang the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from worker_process.conformance.runner import list_scenarios
from worker_process.conformance.scenarios import SECTIONS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BROKEN_WORKER = [sys.executable, str(HERE / "broken_worker.py")]
BROKEN_PARENT = [sys.executable, str(HERE / "broken_parent.py")]
SYNC_WORKER = [sys.executable, str(ROOT / "interop" / "candidates" / "python_sync_worker.py")]
SYNC_PARENT = [sys.executable, str(ROOT / "interop" / "candidates" / "python_sync_parent.py")]
#: Bound on one runner invocation (the scenarios bound themselves far below this).
RUN_TIMEOUT = 240


def conformance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker_process", "conformance", *args],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=ROOT,
    )


def run_json(role: str, command: list[str], *only: str, scale: float = 0.2) -> dict[str, Any]:
    args = [role, "--json", "--timeout-scale", str(scale)]
    for scenario_id in only:
        args += ["--only", scenario_id]
    proc = conformance(*args, "--", *command)
    assert proc.returncode in (0, 1), proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    assert report["ok"] == (proc.returncode == 0)
    return report


def failed(report: dict[str, Any]) -> set[str]:
    return {r["id"] for r in report["results"] if r["status"] != "pass"}


@pytest.mark.parametrize("role", ["worker", "parent"])
def test_catalogue(role: str) -> None:
    scenarios = list_scenarios(role)
    assert len(scenarios) >= 15
    ids = [s.id for s in scenarios]
    assert len(ids) == len(set(ids))
    for s in scenarios:
        assert s.section in SECTIONS
        assert s.summary and s.timeout > 0
    assert {s.level.value for s in scenarios} == {"MUST", "SHOULD"}


def test_cli_lists_and_rejects_bad_usage() -> None:
    listed = conformance("worker", "--list")
    assert listed.returncode == 0
    assert "parent-death" in listed.stdout
    no_command = conformance("worker")
    assert no_command.returncode == 2
    assert "after --" in no_command.stderr
    unknown = conformance("parent", "--only", "no-such-scenario", "--", "true")
    assert unknown.returncode == 2
    assert "no-such-scenario" in unknown.stderr


def test_cli_entry_point_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "worker_process", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "conformance worker|parent" in proc.stdout


def test_correct_worker_conforms_and_prints_a_table() -> None:
    proc = conformance("worker", "--", *SYNC_WORKER)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("verdict: CONFORMS")
    assert sum(1 for line in lines if "  pass  " in line) == len(list_scenarios("worker"))


def test_correct_parent_conforms() -> None:
    report = run_json("parent", SYNC_PARENT, scale=1.0)
    assert failed(report) == set()
    assert {r["id"] for r in report["results"]} == {s.id for s in list_scenarios("parent")}
    assert all(set(r) >= {"id", "level", "section", "summary", "status", "reason", "seconds"}
               for r in report["results"])


def test_raw_reference_candidates_conform_on_the_scenarios_used_below() -> None:
    worker = run_json("worker", [*BROKEN_WORKER, "none"], *_WORKER_PROBED)
    assert failed(worker) == set()
    parent = run_json("parent", [*BROKEN_PARENT, "none"], *_PARENT_PROBED)
    assert failed(parent) == set()


#: defect -> the scenarios (among those run) that must fail, and no others.
WORKER_DEFECTS = {
    "ignore-handshake": {"bad-handshake-byte"},
    "write-early": {"no-write-before-handshake", "bad-handshake-byte", "eof-before-handshake"},
    "delay-empty": {"zero-length-alone", "echo-empty"},
    "exit0-on-gone": {"parent-death", "parent-full-close"},
    "lose-on-exit": {"finish-then-exit"},
}
_WORKER_PROBED = sorted({"handshake-answer", "coalesced-frames", "byte-at-a-time",
                         *set().union(*WORKER_DEFECTS.values())})

PARENT_DEFECTS = {
    "ignore-bad-handshake": {"bad-handshake-byte"},
    "write-before-handshake": {"no-write-before-handshake", "bad-handshake-byte"},
    "full-close": {"close-half-closes"},
    "keep-bad-worker": {"over-limit", "truncated-payload"},
}
_PARENT_PROBED = sorted({"handshake-once", "echo-empty", "close-escalates",
                         *set().union(*PARENT_DEFECTS.values())})


@pytest.mark.parametrize("defect", sorted(WORKER_DEFECTS))
def test_broken_worker_fails_the_right_scenarios(defect: str) -> None:
    report = run_json("worker", [*BROKEN_WORKER, defect], *_WORKER_PROBED)
    assert failed(report) == WORKER_DEFECTS[defect], report["results"]
    assert not report["ok"]
    for result in report["results"]:
        if result["status"] != "pass":
            assert result["reason"] and "\n" not in result["reason"]


@pytest.mark.parametrize("defect", sorted(PARENT_DEFECTS))
def test_broken_parent_fails_the_right_scenarios(defect: str) -> None:
    report = run_json("parent", [*BROKEN_PARENT, defect], *_PARENT_PROBED)
    assert failed(report) == PARENT_DEFECTS[defect], report["results"]
    assert not report["ok"]


def test_a_hanging_worker_cannot_hang_the_run() -> None:
    started = time.monotonic()
    report = run_json("worker", [*BROKEN_WORKER, "hang"], "handshake-answer",
                      "parent-half-close", scale=0.2)
    took = time.monotonic() - started
    assert failed(report) == {"starts", "handshake-answer", "parent-half-close"}
    assert "no handshake byte" in report["results"][0]["reason"]
    assert [r["status"] for r in report["results"]] == ["timeout", "skipped", "skipped"]
    # Two scenarios of 10 s each, scaled by 0.2, plus process start-up: far below a minute.
    assert took < 60, f"the run took {took:.0f} s"


def test_a_should_failure_alone_keeps_exit_status_zero() -> None:
    # exit0-on-gone fails parent-full-close (SHOULD) and parent-death (MUST): run the SHOULD
    # one alone.
    proc = conformance("worker", "--timeout-scale", "0.3", "--only", "parent-full-close", "--",
                       *BROKEN_WORKER, "exit0-on-gone")
    assert proc.returncode == 0, proc.stdout
    assert "FAIL" in proc.stdout and "SHOULD failures: 1" in proc.stdout
    proc = conformance("worker", "--timeout-scale", "0.3", "--only", "parent-death", "--",
                       *BROKEN_WORKER, "exit0-on-gone")
    assert proc.returncode == 1
    assert "DOES NOT CONFORM" in proc.stdout


def test_a_missing_program_fails_every_scenario_quickly() -> None:
    report = run_json("worker", ["/nonexistent/candidate"], "handshake-answer", "echo-empty")
    assert failed(report) == {"starts", "handshake-answer", "echo-empty"}
    assert "cannot start" in report["results"][0]["reason"]


#: Bound on a whole role's run against a candidate that cannot start: every scenario used to
#: wait for its full timeout (about 315 s for the parent role); now the pre-flight fails as
#: soon as the candidate is gone (well under a second) and the rest are skipped.
FAST = 30.0


@pytest.mark.parametrize("role", ["worker", "parent"])
def test_a_candidate_that_exits_at_once_finishes_fast(role: str) -> None:
    command = [*(BROKEN_WORKER if role == "worker" else BROKEN_PARENT), "exit-at-once"]
    started = time.monotonic()
    report = run_json(role, command, scale=1.0)
    took = time.monotonic() - started
    assert took < FAST, f"the run took {took:.0f} s"
    first, *rest = report["results"]
    assert (first["id"], first["status"]) == ("starts", "fail")
    assert "exit 1" in first["reason"]
    assert first["stderr"] == "cannot load my library"
    assert len(rest) == len(list_scenarios(role)) - 1
    assert {r["status"] for r in rest} == {"skipped"}


def test_a_parent_that_ends_without_starting_the_worker_fails_at_once() -> None:
    started = time.monotonic()
    report = run_json("parent", ["true"], "handshake-first", scale=1.0)
    assert time.monotonic() - started < FAST
    assert "ended without starting the probe worker (it ended: exit 0)" in \
        report["results"][0]["reason"]


def test_the_preflight_failure_shows_stderr_in_the_table() -> None:
    proc = conformance("worker", "--only", "echo-empty", "--", sys.executable, "-c",
                       "import no_such_library_here")
    assert proc.returncode == 1
    assert "the candidate's stderr:" in proc.stdout
    assert "| ModuleNotFoundError: No module named 'no_such_library_here'" in proc.stdout
    assert "1 skipped (the pre-flight failed)" in proc.stdout


def test_progress_lines_on_a_terminal() -> None:
    import pty

    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "worker_process", "conformance", "worker", "--only",
             "echo-empty", "--only", "echo-sizes", "--", *SYNC_WORKER],
            stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=RUN_TIMEOUT, cwd=ROOT)
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert proc.returncode == 0, proc.stdout
    lines = shown.decode().replace("\r", "").splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["[1/3]", "starts", "pass"], ["[2/3]", "echo-sizes", "pass"],
        ["[3/3]", "echo-empty", "pass"]]
    # Not on a terminal: nothing on stderr.
    assert conformance("worker", "--only", "echo-empty", "--", *SYNC_WORKER).stderr == ""


@pytest.mark.parametrize("role", ["worker", "parent"])
def test_every_scenario_is_documented(role: str) -> None:
    doc = (ROOT / "spec" / "conformance.md").read_text()
    heading = f"## {role.capitalize()} scenarios"
    section = doc.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(" `"): line for line in section.splitlines()
            if line.startswith("| `")}
    scenarios = list_scenarios(role)
    assert set(rows) == {s.id for s in scenarios}
    for s in scenarios:
        cells = [cell.strip() for cell in rows[s.id].split("|")]
        assert cells[2:4] == [s.level.value, s.section], s.id
