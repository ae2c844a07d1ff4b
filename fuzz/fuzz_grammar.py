"""Invariant: fast codec == construct grammar (differential).

For any byte stream, sender role and ``max_message_size``, the fast :class:`Decoder` (fed in
the chunking the input chooses, then the end of stream) and the construct grammar's
reference parser ``_grammar.parse_stream`` agree exactly: the same list of payloads when the
stream is valid, or the same error (class and every attribute: ``expected``/``got``,
``length``/``limit``, ``stage``/``missing``) when it is not.

Run: ``python fuzz/fuzz_grammar.py [libFuzzer flags] [CORPUS ...]`` (see fuzz/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_common import error_key, main, parse_input, run_decoder

from worker_process import ProtocolError
from worker_process._grammar import parse_stream


def test_one_input(data: bytes) -> None:
    scenario = parse_input(data)
    scenario.eof = True  # the grammar describes whole streams
    fast = run_decoder(scenario)
    sender = scenario.role.peer
    try:
        expected = parse_stream(sender, scenario.stream, max_message_size=scenario.limit)
    except ProtocolError as exc:
        assert error_key(fast.error) == error_key(exc), (
            f"grammar raised {error_key(exc)!r}, the decoder {error_key(fast.error)!r}"
            f" (after payloads {fast.payloads!r})"
        )
        return
    assert fast.error is None, f"the grammar accepts the stream, the decoder raised {fast.error!r}"
    assert fast.payloads == expected, "the decoder's payloads differ from the grammar's"
    assert fast.ended


if __name__ == "__main__":
    main(test_one_input)
