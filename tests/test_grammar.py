"""The construct grammar is the source of truth: the generated wire module and the fast codec
must agree with it."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker_process import (
    Decoder,
    Encoder,
    HandshakeReceived,
    MessageReceived,
    ProtocolError,
    Role,
    StreamEnded,
    _grammar,
    _wire,
)

payloads_st = st.lists(st.binary(max_size=300), max_size=12)
roles_st = st.sampled_from(list(Role))


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def fast_parse(sender: Role, chunks: list[bytes], limit: int | None) -> list[bytes]:
    """The fast codec's reading of everything ``sender`` wrote (its peer's decoder)."""
    kw = {} if limit is None else {"max_message_size": limit}
    dec = Decoder(sender.peer, **kw)
    out: list[bytes] = []
    saw_handshake = False
    for chunk in chunks:
        for event in dec.feed(chunk):
            if isinstance(event, HandshakeReceived):
                saw_handshake = True
            elif isinstance(event, MessageReceived):
                out.append(event.payload)
    for event in dec.feed_eof():
        assert isinstance(event, StreamEnded)
    assert saw_handshake
    return out


def outcome(fn: object, *args: object, **kw: object) -> tuple[str, object]:
    try:
        return ("ok", fn(*args, **kw))  # type: ignore[operator]
    except ProtocolError as exc:
        return (type(exc).__name__, sorted(vars(exc).items()))


def test_wire_module_is_generated_from_the_grammar() -> None:
    source = _grammar.WIRE_MODULE_PATH.read_text()
    assert source == _grammar.render_wire_module()
    check = subprocess.run(
        [sys.executable, "-m", "worker_process._grammar", "--check"], capture_output=True
    )
    assert check.returncode == 0, check.stderr
    assert (_wire.PARENT_HANDSHAKE, _wire.WORKER_HANDSHAKE) == (0, 1)
    assert (_wire.HEADER_FORMAT, _wire.HEADER_SIZE, _wire.MAX_PAYLOAD) == (">L", 4, 2**32 - 1)


def test_codec_does_not_import_construct() -> None:
    code = (
        "import sys, worker_process, worker_process._codec;"
        "assert 'construct' not in sys.modules, 'construct imported';"
        "assert 'asyncio' not in sys.modules, 'asyncio imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@settings(max_examples=300, deadline=None)
@given(sender=roles_st, payloads=payloads_st, cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_build_matches_encoder_and_parse_matches_decoder(
    sender: Role, payloads: list[bytes], cuts: list[int]
) -> None:
    wire = _grammar.build_stream(sender, payloads)
    enc = Encoder(sender)
    assert wire == enc.handshake() + b"".join(enc.frame(p) for p in payloads)
    assert _grammar.parse_stream(sender, wire) == payloads
    assert fast_parse(sender, chunked(wire, cuts), None) == payloads


@settings(max_examples=100, deadline=None)
@given(sender=roles_st, payloads=payloads_st)
def test_byte_at_a_time_matches_grammar(sender: Role, payloads: list[bytes]) -> None:
    wire = _grammar.build_stream(sender, payloads)
    assert fast_parse(sender, [wire[i : i + 1] for i in range(len(wire))], None) == payloads


@settings(max_examples=500, deadline=None)
@given(
    sender=roles_st,
    data=st.one_of(
        st.binary(max_size=64),
        # mostly-valid streams with damage: truncation, a flipped byte, an appended tail
        st.builds(
            lambda s, p, cut, tail: _grammar.build_stream(s, p)[: cut or None] + tail,
            roles_st, payloads_st, st.integers(-20, 0), st.binary(max_size=6),
        ),
    ),
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
    limit=st.one_of(st.none(), st.integers(0, 400)),
)
def test_any_bytes_same_outcome_as_grammar(
    sender: Role, data: bytes, cuts: list[int], limit: int | None
) -> None:
    """Any bytes, any chunking: the fast codec gives the grammar's payloads, or the same
    typed error with the same attributes, and nothing else."""
    expected = outcome(_grammar.parse_stream, sender, data, max_message_size=limit)
    got = outcome(fast_parse, sender, chunked(data, cuts), limit)
    if expected[0] == "ok" or got[0] == "ok":
        assert got == expected
    else:
        # Frames before the error may be delivered first; the error itself must match.
        assert got[0] == expected[0], (got, expected)
        assert got[1] == expected[1]


@pytest.mark.parametrize("sender", list(Role))
def test_grammar_rejects_what_the_codec_rejects(sender: Role) -> None:
    bad = bytes([1 - _grammar.HANDSHAKE[sender].value[0]])
    assert outcome(_grammar.parse_stream, sender, bad)[0] == "HandshakeByteError"
    assert outcome(fast_parse, sender, [bad], None)[0] == "HandshakeByteError"
