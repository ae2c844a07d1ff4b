"""The conformance kit: what an implementation of the protocol, in any language, is checked with.

- :mod:`.vectors`: the language-neutral test vectors in ``spec/vectors/`` (generated from the
  construct grammar; ``python -m worker_process.conformance.vectors --write | --check``).
- :mod:`.runner`: the live runner behind ``python -m worker_process conformance worker|parent``,
  which runs a candidate program through the scenarios of :mod:`.worker_scenarios` and
  :mod:`.parent_scenarios` and reports a table (or JSON).

The contracts a candidate program follows are in ``spec/conformance.md``. Nothing here is on a
worker's start-up path: this subpackage may import asyncio and construct.
"""

from __future__ import annotations
