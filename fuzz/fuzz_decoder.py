"""Invariant: any bytes, in any chunking -> events or the protocol error type, nothing else.

For any byte stream, any ``max_message_size``, either role, any cut into chunks and any of the
decoder's three input paths (``feed``, ``feed_payloads``, ``get_buffer``/``buffer_updated``),
the decoder returns only events (exactly one handshake event when, and only when, the first
byte is the peer's handshake byte) or raises a :class:`~worker_process.RemoteProtocolError`;
no other exception escapes. The result does not depend on the chunking or on the path: the
handshake, the payloads before the first error, the end of stream and the error itself (class
and attributes) are the same as when the whole stream is fed at once. After an error the
decoder stays in ``ERROR`` and raises the same error on every later call.

Run: ``python fuzz/fuzz_decoder.py [libFuzzer flags] [CORPUS ...]`` (see fuzz/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_common import API_FEED, API_PAYLOADS, main, parse_input, run_decoder

from worker_process import RemoteProtocolError, Role


def test_one_input(data: bytes) -> None:
    scenario = parse_input(data)
    got = run_decoder(scenario)
    reference = run_decoder(scenario, api=API_PAYLOADS, cap=0)
    assert got.key() == reference.key(), (
        f"chunking/API changed the result:\n  chunked: {got.key()!r}\n  whole:   "
        f"{reference.key()!r}"
    )
    whole_events = run_decoder(scenario, api=API_FEED, cap=0)
    assert whole_events.key() == reference.key(), (
        f"feed() and feed_payloads() disagree:\n  feed: {whole_events.key()!r}\n"
        f"  feed_payloads: {reference.key()!r}"
    )
    if got.error is not None:
        assert isinstance(got.error, RemoteProtocolError), f"raised {got.error!r}"
    stream = scenario.stream
    peer_byte = 1 if scenario.role is Role.PARENT else 0
    assert got.handshakes == (1 if stream and stream[0] == peer_byte else 0), (
        f"{got.handshakes} handshake events for a stream starting {stream[:1]!r}"
    )
    if got.error is None and scenario.eof:
        assert got.ended, "a clean stream with end of stream did not end"
    total = sum(4 + len(p) for p in got.payloads) + got.handshakes
    assert total <= len(stream), "more payload bytes out than stream bytes in"


if __name__ == "__main__":
    main(test_one_input)
