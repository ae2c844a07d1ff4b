"""Regression tests for what the fuzz harnesses found, and the harnesses themselves run over
their committed seed corpus (so a harness that rots fails here, not in a campaign)."""

from __future__ import annotations

import importlib
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from worker_process import (
    Decoder,
    DecoderState,
    HandshakeReceived,
    MessageReceived,
    MessageTooLargeError,
    Role,
    TruncatedStreamError,
)

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
sys.path.insert(0, str(FUZZ))


@pytest.mark.parametrize("role", list(Role))
def test_handshake_event_comes_before_an_error_in_the_same_chunk(role: Role) -> None:
    # Found by fuzz_decoder.py (chunking invariance): fed as one chunk, a good handshake byte
    # followed by an oversized header raised at once and lost HandshakeReceived, while fed
    # byte by byte it gave the event first. The event now comes first, the error next call.
    first = b"\x01" if role is Role.PARENT else b"\x00"
    decoder = Decoder(role, max_message_size=10)
    assert decoder.feed(first + struct.pack(">L", 11)) == [HandshakeReceived()]
    assert decoder.state is DecoderState.ERROR
    with pytest.raises(MessageTooLargeError) as info:
        decoder.feed(b"")
    assert (info.value.length, info.value.limit) == (11, 10)
    with pytest.raises(MessageTooLargeError) as again:
        decoder.feed_eof()
    assert again.value is info.value


def test_frames_then_error_in_the_handshake_chunk_keep_their_order() -> None:
    decoder = Decoder(Role.WORKER, max_message_size=4)
    stream = b"\x00" + struct.pack(">L", 1) + b"a" + struct.pack(">L", 5)
    assert decoder.feed(stream) == [HandshakeReceived(), MessageReceived(payload=b"a")]
    with pytest.raises(MessageTooLargeError):
        decoder.feed(b"")


def test_a_stored_truncation_is_raised_again() -> None:
    decoder = Decoder(Role.PARENT)
    decoder.feed(b"\x01\x00\x00")
    with pytest.raises(TruncatedStreamError) as info:
        decoder.feed_eof()
    with pytest.raises(TruncatedStreamError) as again:
        decoder.feed(b"more")
    assert again.value is info.value and (info.value.stage, info.value.missing) == ("header", 2)


def _harness(name: str) -> Callable[[bytes], None]:
    module = importlib.import_module(f"fuzz_{name}")
    harness: Callable[[bytes], None] = module.test_one_input
    return harness


@pytest.mark.parametrize("name", ["decoder", "grammar", "roundtrip"])
def test_every_seed_passes_its_harness(name: str) -> None:
    seeds = sorted((FUZZ / "seeds" / name).iterdir())
    assert seeds, f"no seeds for {name}"
    harness = _harness(name)
    for seed in seeds:
        harness(seed.read_bytes())


@pytest.mark.parametrize("name", ["decoder", "grammar", "roundtrip"])
def test_harness_survives_odd_inputs(name: str) -> None:
    harness = _harness(name)
    for data in (b"", b"\x00", b"\xff" * 7, bytes(range(256)), b"\x01" * 6 + b"\x01\xff\xff\xff"):
        harness(data)


def test_seed_corpus_matches_the_vectors() -> None:
    done = subprocess.run([sys.executable, str(FUZZ / "seeds.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
