"""The contracts candidate programs follow (``spec/conformance.md``), as constants.

A candidate *worker* echoes every message back, except control messages; a candidate
*parent* starts the probe worker named by :data:`PROBE_ENV`, greets it, echoes what it sends,
and prints one JSON outcome line when the worker has ended.
"""

from __future__ import annotations

__all__ = [
    "BURST_PREFIX",
    "CLOSE",
    "CLOSE_TIMEOUT_ENV",
    "CONTROL_PREFIX",
    "GREETING",
    "LIMIT_ENV",
    "OUTCOMES",
    "PROBE_ENV",
    "QUIET",
    "burst_message",
    "burst_payload",
]

#: Every control message starts with these bytes (0xff is never the first byte of a message
#: the runner asks to be echoed).
CONTROL_PREFIX = b"\xffconformance:"

#: Worker contract: ``burst <count> <size>`` (ASCII decimal): send ``count`` messages of
#: ``size`` bytes (message ``i`` is ``size`` bytes of value ``i % 256``), then finish and exit
#: 0 at once.
BURST_PREFIX = CONTROL_PREFIX + b"burst "

#: Parent contract: call ``close`` on the worker (with the timeout from
#: :data:`CLOSE_TIMEOUT_ENV`), keep receiving, stop echoing.
CLOSE = CONTROL_PREFIX + b"close"
#: Parent contract: stop echoing (keep counting).
QUIET = CONTROL_PREFIX + b"quiet"

#: Parent contract: the message a parent sends as soon as the worker has started.
GREETING = b"hello"

#: Both contracts: when set, the candidate's ``max_message_size`` (decimal bytes).
LIMIT_ENV = "WORKER_PROCESS_MAX_MESSAGE_SIZE"
#: Parent contract: the probe worker's command line, a JSON array of strings.
PROBE_ENV = "WORKER_PROCESS_PROBE"
#: Parent contract: when set, the ``close`` timeout in seconds (default 5).
CLOSE_TIMEOUT_ENV = "WORKER_PROCESS_CLOSE_TIMEOUT"

#: Parent contract: the values of ``outcome`` in the final JSON line.
OUTCOMES = ("ok", "start_failed", "exited", "killed", "protocol_error", "error")


def burst_message(count: int, size: int) -> bytes:
    """The control message asking a worker for a burst."""
    return BURST_PREFIX + f"{count} {size}".encode()


def burst_payload(index: int, size: int) -> bytes:
    """Message ``index`` of a burst."""
    return bytes([index % 256]) * size
