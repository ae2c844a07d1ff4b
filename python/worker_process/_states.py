"""Renders the channel's state machine (:mod:`._core`) into ``spec/states.md``, so that the
prose and the code cannot drift: ``python -m worker_process._states --write`` regenerates
it, ``--check`` fails if it is stale (the test command runs that). What each call raises in
each state is found by asking a :class:`~._core.ChannelCore` put in that state.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._core import (
    READ_EVENTS,
    READ_STATES,
    READ_TABLE,
    WRITE_EVENTS,
    WRITE_STATES,
    WRITE_TABLE,
    ChannelCore,
    ReadState,
    WriteState,
)
from ._grammar import write_or_check
from ._inbox import READ_HIGH_WATER, READ_LOW_WATER

__all__ = ["SPEC_PATH", "main", "render"]

SPEC_PATH = Path(__file__).resolve().parents[2] / "spec" / "states.md"


def _direction(
    title: str,
    states: dict[str, str],
    events: dict[str, str],
    table: dict[tuple[str, str], str],
) -> list[str]:
    """One direction's section: its states, its events, its transition table."""
    lines = [f"## {title}", ""]
    lines += [f"- **{state}**: {text}" for state, text in states.items()]
    lines += ["", "Events:", ""]
    lines += [f"- `{event}`: {text}" for event, text in events.items()]
    lines += ["", "| state | " + " | ".join(f"`{e}`" for e in events) + " |"]
    lines.append("|---" * (len(events) + 1) + "|")
    for state in states:
        cells = [table.get((state, event), "·") for event in events]
        lines.append(f"| **{state}** | " + " | ".join(cells) + " |")
    return lines


def _raised(error: BaseException | None) -> str:
    if error is None:
        return "—"
    cause = " (`__cause__`: the error)" if error.__cause__ is not None else ""
    return f"`{type(error).__name__}`: {error}{cause}"


def _core_in(read: str = ReadState.OPEN, write: str = WriteState.OPEN) -> ChannelCore:
    core = ChannelCore()
    core.read_state, core.write_state = read, write
    if read == ReadState.BROKEN:
        core.read_error = OSError("the error")
    if write == WriteState.BROKEN:
        core.write_error = OSError("the error")
    return core


def _recv_outcome(state: str) -> str:
    error = _core_in(read=state).recv_error()
    return "waits" if error is None else _raised(error)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


def render() -> str:
    """The text of ``spec/states.md``."""
    out = [
        "# Channel states",
        "",
        "<!-- Generated from python/worker_process/_core.py by"
        " `python -m worker_process._states --write`; do not edit. -->",
        "",
        "Each end of a channel keeps one state per direction. Both Python transports (asyncio",
        "and blocking) keep it in the same I/O-free `ChannelCore`; they report what happened",
        "and raise what it says. A cell names the next state; `·` means the event leaves the",
        "state unchanged (BROKEN and CLOSED are sticky: a broken channel never works again).",
        "",
        *_direction("Reading (the peer's stream)", READ_STATES, READ_EVENTS, READ_TABLE),
        "",
        *_direction("Writing (this side's stream)", WRITE_STATES, WRITE_EVENTS, WRITE_TABLE),
        "",
        "## What the calls raise",
        "",
        "`recv` first returns every message already received; then, by read state:",
        "",
        "| read state | `recv` raises |",
        "|---|---|",
        *(f"| {state} | {_recv_outcome(state)} |" for state in READ_STATES),
        "",
        "| write state | `send` raises | `drain`/`finish` waiting for queued bytes raises |",
        "|---|---|---|",
        *(
            f"| {state} | {_raised(_core_in(write=state).send_error())}"
            f" | {_raised(_core_in(write=state).flush_error())} |"
            for state in WRITE_STATES
        ),
        "",
        "## Received messages",
        "",
        "Received messages wait in one queue per end (`MessageQueue`, `_inbox.py`). An end that",
        f"reads ahead of its consumer stops reading once more than {_mib(READ_HIGH_WATER)} of",
        f"messages wait, and reads again once at most {_mib(READ_LOW_WATER)} do, so a slow",
        "consumer holds the peer's sends back instead of growing memory. An end that reads only",
        "when asked for a message (the blocking transport) holds at most one read's worth.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    return write_or_check(argv, SPEC_PATH, render, "worker_process._states")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
