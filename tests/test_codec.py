"""The sans-I/O codec: events, chunking, errors."""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Iterator

import pytest

from worker_process import (
    MAX_PAYLOAD,
    Decoder,
    DecoderState,
    Encoder,
    EncoderState,
    HandshakeByteError,
    HandshakeReceived,
    LocalProtocolError,
    MessageReceived,
    MessageTooLargeError,
    PayloadTooLargeError,
    RemoteProtocolError,
    Role,
    StreamEnded,
    TruncatedStreamError,
)
from worker_process._codec import LARGE_PAYLOAD, PREALLOCATE

Event = HandshakeReceived | MessageReceived | StreamEnded


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def worker_stream(*payloads: bytes) -> bytes:
    """What a worker writes: 0x01 then frames (a parent's decoder reads it)."""
    return b"\x01" + b"".join(frame(p) for p in payloads)


PAYLOADS = [b"", b"a", b"", b"hello", bytes(range(256)) * 3, b"", b"z" * (LARGE_PAYLOAD + 7)]
STREAM = worker_stream(*PAYLOADS)
EXPECTED: list[Event] = [
    HandshakeReceived(),
    *[MessageReceived(payload=p) for p in PAYLOADS],
    StreamEnded(),
]


def decode(chunks: Iterator[bytes] | list[bytes], **kw: int) -> list[Event]:
    dec = Decoder(Role.PARENT, **kw)
    events: list[Event] = []
    for chunk in chunks:
        events += dec.feed(chunk)
    events += dec.feed_eof()
    return events


def splits(data: bytes, step: int = 1) -> Iterator[list[bytes]]:
    for i in range(0, len(data) + 1, step):
        yield [data[:i], data[i:]]


def test_one_chunk() -> None:
    assert decode([STREAM]) == EXPECTED


def test_byte_at_a_time() -> None:
    assert decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_every_split_offset(kind: type) -> None:
    small = worker_stream(b"", b"ab", b"", b"cde" * 10, b"")
    expected: list[Event] = [
        HandshakeReceived(),
        *[MessageReceived(payload=p) for p in (b"", b"ab", b"", b"cde" * 10, b"")],
        StreamEnded(),
    ]
    for chunks in splits(small):
        assert decode([kind(c) for c in chunks]) == expected


def test_every_split_offset_large_payload() -> None:
    # Splits around the header and inside a payload that takes the large-payload path.
    stream = worker_stream(b"x", b"L" * LARGE_PAYLOAD, b"")
    offsets = list(range(0, 20)) + list(range(len(stream) - 20, len(stream) + 1))
    offsets += list(range(20, len(stream) - 20, 4099))
    for i in offsets:
        events = decode([stream[:i], stream[i:]])
        assert [type(e) for e in events] == [
            HandshakeReceived, MessageReceived, MessageReceived, MessageReceived, StreamEnded
        ]
        assert events[2] == MessageReceived(payload=b"L" * LARGE_PAYLOAD)


def test_payloads_are_bytes() -> None:
    for chunk_kind in (bytes, bytearray, memoryview):
        dec = Decoder(Role.PARENT)
        events = dec.feed(chunk_kind(worker_stream(b"abc", b"z" * LARGE_PAYLOAD)))
        for event in events[1:]:
            assert isinstance(event, MessageReceived)
            assert type(event.payload) is bytes


def test_zero_length_frame_delivered_at_its_header() -> None:
    dec = Decoder(Role.PARENT)
    assert dec.feed(b"\x01") == [HandshakeReceived()]
    assert dec.feed(b"\x00\x00\x00") == []
    assert dec.feed(b"\x00") == [MessageReceived(payload=b"")]


def test_get_buffer_path_matches_feed() -> None:
    dec = Decoder(Role.PARENT)
    got: list[bytes] = []
    data = memoryview(STREAM)
    pos = 0
    while pos < len(data):
        buf = dec.get_buffer()
        n = min(len(buf), 1000, len(data) - pos)
        buf[:n] = data[pos : pos + n]
        del buf
        pos += n
        got += dec.buffer_updated(n)
    assert dec.handshake_done
    assert got == PAYLOADS
    assert dec.feed_eof() == [StreamEnded()]


def test_worker_role_expects_zero_byte() -> None:
    dec = Decoder(Role.WORKER)
    assert dec.feed(b"\x00" + frame(b"hi")) == [HandshakeReceived(), MessageReceived(payload=b"hi")]


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "first", "expected"), [(Role.PARENT, 0x00, 0x01), (Role.WORKER, 0x01, 0x00),
                                    (Role.PARENT, 0xFF, 0x01)]
)
def test_bad_handshake_byte(role: Role, first: int, expected: int) -> None:
    dec = Decoder(role)
    with pytest.raises(HandshakeByteError) as info:
        dec.feed(bytes([first]) + frame(b"x"))
    assert (info.value.expected, info.value.got) == (expected, first)
    assert dec.state is DecoderState.ERROR
    with pytest.raises(HandshakeByteError):
        dec.feed(b"\x01")
    with pytest.raises(HandshakeByteError):
        dec.feed_eof()


@pytest.mark.parametrize(
    ("data", "stage", "missing"),
    [
        (b"", "handshake", 1),
        (b"\x01\x00", "header", 3),
        (b"\x01\x00\x00\x00", "header", 1),
        (b"\x01\x00\x00\x00\x05ab", "payload", 3),
        (b"\x01\x00\x00\x00\x00\x00\x00\x00\x02", "payload", 2),
    ],
)
def test_truncated(data: bytes, stage: str, missing: int) -> None:
    for chunks in splits(data):
        dec = Decoder(Role.PARENT)
        for chunk in chunks:
            dec.feed(chunk)
        with pytest.raises(TruncatedStreamError) as info:
            dec.feed_eof()
        assert (info.value.stage, info.value.missing) == (stage, missing)
        assert dec.state is DecoderState.ERROR


def test_large_payload_buffer_grows_as_bytes_arrive() -> None:
    size = 3 * PREALLOCATE + 5
    payload = bytes(range(256)) * (size // 256) + b"tail!"[: size % 256]
    stream = worker_stream(payload)
    dec = Decoder(Role.PARENT)
    got: list[bytes] = []
    view = memoryview(stream)
    pos = 0
    while pos < len(stream):  # the transports' path: receive into the decoder's buffer
        buf = dec.get_buffer()
        n = min(len(buf), 1 << 20, len(stream) - pos)
        buf[:n] = view[pos : pos + n]
        del buf  # the buffer must not outlive buffer_updated()
        pos += n
        got += dec.buffer_updated(n)
    assert got == [payload]
    assert decode([stream[:7], stream[7 : 1 << 25], stream[1 << 25 :]])[1] == MessageReceived(
        payload=payload
    )


def test_truncated_large_payload() -> None:
    dec = Decoder(Role.PARENT)
    dec.feed(b"\x01" + struct.pack(">I", LARGE_PAYLOAD * 2) + b"x" * 10)
    with pytest.raises(TruncatedStreamError) as info:
        dec.feed_eof()
    assert (info.value.stage, info.value.missing) == ("payload", LARGE_PAYLOAD * 2 - 10)


def test_limit_checked_at_header_before_payload() -> None:
    dec = Decoder(Role.PARENT, max_message_size=10)
    assert dec.feed(b"\x01" + frame(b"0123456789")) != []
    with pytest.raises(MessageTooLargeError) as info:
        dec.feed(b"\x00\x00\x00\x0b")  # header only: no payload byte yet
    assert (info.value.length, info.value.limit) == (11, 10)
    assert isinstance(info.value, RemoteProtocolError)


def test_max_length_header_allocates_nothing() -> None:
    dec = Decoder(Role.PARENT)  # default limit: the wire maximum, so the header is legal
    tracemalloc.start()
    try:
        dec.feed(b"\x01" + struct.pack(">I", MAX_PAYLOAD)[:3])
        before = tracemalloc.get_traced_memory()[0]
        dec.feed(struct.pack(">I", MAX_PAYLOAD)[3:])
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # A buffer for bytes that may come (bounded), not the 4 GiB the header claims.
    assert after - before <= PREALLOCATE + 4096
    with pytest.raises(TruncatedStreamError):
        dec.feed_eof()


def test_max_length_header_over_limit() -> None:
    dec = Decoder(Role.WORKER, max_message_size=1 << 20)
    # The handshake event comes first; the error, found in the same chunk, on the next call.
    assert dec.feed(b"\x00\xff\xff\xff\xff") == [HandshakeReceived()]
    assert dec.state is DecoderState.ERROR
    with pytest.raises(MessageTooLargeError) as info:
        dec.feed(b"")
    assert (info.value.length, info.value.limit) == (MAX_PAYLOAD, 1 << 20)
    dec = Decoder(Role.WORKER, max_message_size=1 << 20)
    dec.feed(b"\x00")
    with pytest.raises(MessageTooLargeError):
        dec.feed(b"\xff\xff\xff\xff")  # nothing before it in this chunk: raised at once


def test_frames_before_an_error_are_returned_first() -> None:
    dec = Decoder(Role.PARENT, max_message_size=4)
    events = dec.feed(b"\x01" + frame(b"ok") + frame(b"too long"))
    assert events == [HandshakeReceived(), MessageReceived(payload=b"ok")]
    assert dec.state is DecoderState.ERROR
    with pytest.raises(MessageTooLargeError):
        dec.feed(b"")


def test_data_after_end_of_stream() -> None:
    dec = Decoder(Role.PARENT)
    dec.feed(b"\x01")
    assert dec.feed_eof() == [StreamEnded()]
    assert dec.feed_eof() == []
    with pytest.raises(LocalProtocolError):
        dec.feed(b"\x00")


@pytest.mark.parametrize("bad", [-1, MAX_PAYLOAD + 1, 1.5])
def test_bad_limit(bad: object) -> None:
    with pytest.raises(ValueError):
        Decoder(Role.PARENT, max_message_size=bad)  # type: ignore[arg-type]


# -- encoder --------------------------------------------------------------------------------


def test_encoder() -> None:
    enc = Encoder(Role.PARENT)
    assert enc.state is EncoderState.HANDSHAKE
    with pytest.raises(LocalProtocolError):
        enc.header(1)
    assert enc.handshake() == b"\x00"
    with pytest.raises(LocalProtocolError):
        enc.handshake()
    assert enc.header(0) == b"\x00\x00\x00\x00"
    assert enc.header(MAX_PAYLOAD) == b"\xff\xff\xff\xff"
    payload = bytearray(b"abc")
    header, body = enc.encode(payload)
    assert header == b"\x00\x00\x00\x03" and body is payload
    assert enc.frame(memoryview(b"xy")) == b"\x00\x00\x00\x02xy"
    with pytest.raises(PayloadTooLargeError) as info:
        enc.header(MAX_PAYLOAD + 1)
    assert (info.value.length, info.value.limit) == (MAX_PAYLOAD + 1, MAX_PAYLOAD)
    enc.end()
    with pytest.raises(LocalProtocolError):
        enc.frame(b"")
    assert Encoder(Role.WORKER).handshake() == b"\x01"


def test_round_trip() -> None:
    enc = Encoder(Role.WORKER)
    wire = enc.handshake() + b"".join(enc.frame(p) for p in PAYLOADS)
    assert wire == STREAM
    assert decode([wire]) == EXPECTED
