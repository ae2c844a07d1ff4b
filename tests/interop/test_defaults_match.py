"""The Python and Node.js APIs have the same defaults.

Python's defaults are read from the signatures of ``Worker.close`` and ``connect`` (asyncio
and blocking) and from the defaults both ``create_worker`` apply to their options; Node.js's
from the ``defaults`` object that ``interop/node`` exports. Durations are seconds in Python
and milliseconds in Node.js; ``None`` and ``null`` both mean "no limit". An option one API
has and the other lacks must be listed in ``ONE_SIDED`` with the reason; a difference in any
shared default fails.
"""

from __future__ import annotations

import inspect
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import worker_process
import worker_process.sync
from worker_process._launch import DEFAULTS

NODE_PACKAGE = Path(__file__).resolve().parents[2] / "interop" / "node"


def _same(value: Any) -> Any:
    return value


def _seconds_to_ms(value: Any) -> Any:
    if value is None:
        return None
    return round(value * 1000)


def _stdio(value: Any) -> Any:
    # Python's stdin/stdout/stderr=None is Node.js's 'inherit'.
    return "inherit" if value is None else value


def _follows_create_worker(value: Any) -> Any:
    # Python's close(check=None) follows create_worker(check=False).
    return False if value is None else value


def _count(value: Any) -> Any:
    # A line count where None and 0 both mean "keep none".
    return 0 if value is None else value


#: Python parameter -> (Node.js option, conversion of the Python default to Node.js's terms).
PAIRS: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {
    "createWorker": {
        "is_command": ("isCommand", _same),
        "handshake_timeout": ("handshakeTimeout", _seconds_to_ms),
        "max_duration": ("maxDuration", _seconds_to_ms),
        "max_message_size": ("maxMessageSize", _same),
        "stdin": ("stdio", _stdio),
        "stdout": ("stdio", _stdio),
        "stderr": ("stdio", _stdio),
        "remote": ("remote", _same),
        "stderr_tail": ("stderrTail", _count),
    },
    "close": {
        "timeout": ("timeout", _seconds_to_ms),
        "check": ("check", _follows_create_worker),
    },
    "connect": {
        "handshake_timeout": ("handshakeTimeout", _seconds_to_ms),
        "max_message_size": ("maxMessageSize", _same),
    },
}

#: Options only one API has (Python parameter or Node.js option name), and why.
ONE_SIDED: dict[str, dict[str, str]] = {
    "createWorker": {
        "cwd": "Node.js passes cwd on to child_process.spawn (same default: the parent's)",
        "env": "Node.js passes env on to child_process.spawn (same default: the parent's)",
        "node": "Python's interpreter choice for .js workers; Node.js runs them under itself",
        "python": "Node.js's interpreter choice for .py workers; Python runs them under itself",
        "check": "Python also takes check at create_worker (for `with`); Node.js only at close()",
    },
    "close": {
        "check": "close(check=...): compared once both APIs have the option",
    },
    "connect": {
        "exit_on_broken": "a Node.js worker always exits 1 on a broken channel (Python's default)",
    },
}

PYTHON_APIS: dict[str, list[tuple[str, Callable[..., Any]]]] = {
    "createWorker": [("asyncio create_worker", worker_process.create_worker),
                     ("blocking create_worker", worker_process.sync.create_worker)],
    "close": [("asyncio Worker.close", worker_process.Worker.close),
              ("blocking Worker.close", worker_process.sync.Worker.close)],
    "connect": [("asyncio connect", worker_process.connect),
                ("blocking connect", worker_process.sync.connect)],
}


def _python_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    found = {name: p.default for name, p in inspect.signature(function).parameters.items()
             if p.default is not inspect.Parameter.empty}
    if function.__name__ == "create_worker":  # **options: Unpack[WorkerOptions]
        found.update(DEFAULTS)
    return found


def _node_defaults(node: str) -> dict[str, dict[str, Any]]:
    package = json.dumps(str(NODE_PACKAGE))
    script = f"process.stdout.write(JSON.stringify(require({package}).defaults))"
    proc = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"interop/node does not export defaults: {proc.stderr}"
    found: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    return found


@pytest.mark.parametrize("api", list(PAIRS))
def test_defaults_match(node: str, api: str) -> None:
    node_defaults = _node_defaults(node)
    assert api in node_defaults, f"Node.js defaults have no {api!r}: {sorted(node_defaults)}"
    js = node_defaults[api]
    pairs, one_sided = PAIRS[api], ONE_SIDED[api]
    differences = []
    for label, function in PYTHON_APIS[api]:
        python = _python_defaults(function)
        for name, default in python.items():
            if name == "args" or (name == "self"):
                continue
            pair = pairs.get(name)
            if pair is None or pair[0] not in js:
                if name not in one_sided:
                    differences.append(f"{label}: {name}={default!r} has no Node.js counterpart")
                continue
            expected = pair[1](default)
            if js[pair[0]] != expected:
                differences.append(f"{label}: {name}={default!r} but Node.js {pair[0]}: "
                                   f"{js[pair[0]]!r} (expected {expected!r})")
        for option in js:
            names = [n for n, (o, _) in pairs.items() if o == option]
            if not any(n in python for n in names) and option not in one_sided:
                differences.append(f"{label}: Node.js {option}: {js[option]!r} has no Python "
                                   "counterpart")
    assert not differences, "\n".join(differences)


def test_a_difference_is_detected(node: str) -> None:
    """The comparison itself can fail: a Node.js default of 60 s is not Python's None."""
    assert _seconds_to_ms(None) is None
    js = _node_defaults(node)["createWorker"]
    assert js["maxDuration"] != _seconds_to_ms(60.0)
    assert js["handshakeTimeout"] == _seconds_to_ms(60.0)
