"""Runs a conformance candidate *parent* so that the worker it starts goes through the relay:
``via_relay.py TARGET -- CANDIDATE...`` rewrites ``$WORKER_PROCESS_PROBE`` (the probe worker's
command line) into ``python -m worker_process relay --command TARGET -- PROBE...`` and runs the
candidate in its place. The candidate itself is unchanged: to it, the relay is a worker."""

from __future__ import annotations

import json
import os
import sys

target, sep, *candidate = sys.argv[1:]
assert sep == "--" and candidate, "usage: via_relay.py TARGET -- CANDIDATE..."
probe = json.loads(os.environ["WORKER_PROCESS_PROBE"])
os.environ["WORKER_PROCESS_PROBE"] = json.dumps(
    [sys.executable, "-m", "worker_process", "relay", "--command", target, "--", *probe])
os.execv(candidate[0], candidate)
