"""Codec-level regression tests for bugs the fault matrix (tests/faults) found."""

from __future__ import annotations

import struct

from worker_process import Decoder, Role


def test_a_large_frames_header_counts_as_buffered() -> None:
    # The transports take ``buffered == 0`` for a frame boundary; a large frame whose header
    # arrived without any payload byte reported 0 (tests/faults P44, S17).
    decoder = Decoder(Role.PARENT)
    assert decoder.buffered == 0
    assert decoder.feed_payloads(b"\x01" + struct.pack(">L", 100000)) == []
    assert decoder.buffered == 4
    assert decoder.feed_payloads(b"x" * 10) == []
    assert decoder.buffered == 14
    assert decoder.feed_payloads(b"x" * 99990) == [b"x" * 100000]
    assert decoder.buffered == 0


def test_buffered_through_the_zero_copy_path() -> None:
    decoder = Decoder(Role.WORKER)
    decoder.feed_payloads(b"\x00" + struct.pack(">L", 70000) + b"ab")
    assert decoder.buffered == 6
    buf = decoder.get_buffer()
    buf[:69998] = b"c" * 69998
    del buf
    assert decoder.buffer_updated(69998) == [b"ab" + b"c" * 69998]
    assert decoder.buffered == 0
