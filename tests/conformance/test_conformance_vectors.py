"""The vectors in spec/vectors/: fresh (regenerated from the grammar, byte for byte), and
passed by the Python codec through both its event API and its zero-copy buffer API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from worker_process import (
    Decoder,
    Encoder,
    HandshakeReceived,
    MessageReceived,
    PayloadTooLargeError,
    ProtocolError,
    Role,
    StreamEnded,
)
from worker_process._events import Event
from worker_process.conformance.vectors import (
    VECTOR_FILES,
    default_directory,
    error_to_json,
    expand_bytes,
    load_cases,
    render_files,
)

CASES = list(load_cases())
DECODE = [c for c in CASES if c["id"].startswith("decode/")]
ENCODE_STREAM = [c for c in CASES if c.get("kind") == "stream"]
ENCODE_HEADER = [c for c in CASES if c.get("kind") == "header"]

Json = dict[str, Any]


def _ids(cases: list[Json]) -> list[str]:
    return [c["id"] for c in cases]


def test_vector_files_match_the_grammar() -> None:
    folder = default_directory()
    for name, text in render_files().items():
        on_disk = (folder / name).read_text()
        assert on_disk == text, (
            f"{folder / name} differs from what the grammar generates: run"
            " python -m worker_process.conformance.vectors --write"
        )


def test_vector_ids_are_unique_and_plentiful() -> None:
    ids = _ids(CASES)
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 25
    assert {c["role"] for c in DECODE} == {"parent", "worker"}
    classes = {c["error"]["class"] for c in DECODE if c["error"]}
    assert classes == {"bad_handshake", "truncated_handshake", "truncated_header",
                       "truncated_payload", "message_too_large"}
    assert set(VECTOR_FILES) == {p.name for p in default_directory().glob("*.json")}


def _event_json(event: Event) -> Json:
    if isinstance(event, HandshakeReceived):
        return {"type": "handshake"}
    if isinstance(event, MessageReceived):
        return {"type": "message", "payload": event.payload}
    assert isinstance(event, StreamEnded)
    return {"type": "end"}


def _expected_events(case: Json) -> list[Json]:
    out = []
    for event in case["events"]:
        if event["type"] == "message":
            out.append({"type": "message", "payload": expand_bytes(event["payload"])})
        else:
            out.append(dict(event))
    return out


def _new_decoder(case: Json) -> Decoder:
    limit = case["max_message_size"]
    role = Role(case["role"])
    return Decoder(role) if limit is None else Decoder(role, max_message_size=limit)


def _run(
    case: Json,
    feed: Callable[[bytes], list[Json]],
    feed_eof: Callable[[], list[Json]],
) -> tuple[list[Json], Json | None]:
    """Run one decode case as spec/vectors.md says; return the events and the error (with the
    call it was raised at) the decoder produced."""
    chunks = [expand_bytes(chunk) for chunk in case["chunks"]]
    expected = case["error"]
    events: list[Json] = []
    for index, chunk in enumerate(chunks):
        try:
            events += feed(chunk)
            if expected is not None and expected["raised_at"] == index:
                events += feed(b"")  # a deferred error must come now
        except ProtocolError as exc:
            return events, {**error_to_json(exc), "raised_at": index}
    if case["eof"]:
        try:
            events += feed_eof()
        except ProtocolError as exc:
            return events, {**error_to_json(exc), "raised_at": "eof"}
    return events, None


def _check(case: Json, events: list[Json], error: Json | None) -> None:
    assert events == _expected_events(case), case["description"]
    assert error == case["error"], case["description"]


@pytest.mark.parametrize("case", DECODE, ids=_ids(DECODE))
def test_decoder_event_api(case: Json) -> None:
    decoder = _new_decoder(case)

    def feed(chunk: bytes) -> list[Json]:
        return [_event_json(e) for e in decoder.feed(chunk)]

    def feed_eof() -> list[Json]:
        return [_event_json(e) for e in decoder.feed_eof()]

    events, error = _run(case, feed, feed_eof)
    _check(case, events, error)
    if error is not None:
        # After an error every call raises the same error.
        with pytest.raises(ProtocolError) as again:
            decoder.feed(b"\x00")
        assert error_to_json(again.value) == {k: v for k, v in error.items() if k != "raised_at"}
        with pytest.raises(ProtocolError):
            decoder.feed_eof()


@pytest.mark.parametrize("case", DECODE, ids=_ids(DECODE))
def test_decoder_buffer_api(case: Json) -> None:
    """The path the asyncio transport takes: recv_into(get_buffer()), buffer_updated(n)."""
    decoder = _new_decoder(case)

    def messages(payloads: list[bytes], handshake_before: bool) -> list[Json]:
        out: list[Json] = []
        if not handshake_before and decoder.handshake_done:
            out.append({"type": "handshake"})
        out += [{"type": "message", "payload": p} for p in payloads]
        return out

    def feed(chunk: bytes) -> list[Json]:
        before = decoder.handshake_done
        if not chunk:
            return messages(decoder.feed_payloads(chunk), before)
        payloads: list[bytes] = []
        view = memoryview(chunk)
        while view:
            buffer = decoder.get_buffer()
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            view = view[n:]
            payloads += decoder.buffer_updated(n)
        return messages(payloads, before)

    def feed_eof() -> list[Json]:
        return [_event_json(e) for e in decoder.feed_eof()]

    seen: list[Json] = []

    def feed_tracking_handshake(chunk: bytes) -> list[Json]:
        # The transport learns of the handshake from ``handshake_done``, even when the same
        # chunk then raises: count it as delivered before the error, as the transport does.
        before = decoder.handshake_done
        try:
            out = feed(chunk)
        except ProtocolError:
            if not before and decoder.handshake_done:
                seen.append({"type": "handshake"})
            raise
        seen.extend(out)
        return []

    _, error = _run(case, feed_tracking_handshake, feed_eof)
    _check(case, seen + ([{"type": "end"}] if case["eof"] and error is None else []), error)


@pytest.mark.parametrize("case", ENCODE_STREAM, ids=_ids(ENCODE_STREAM))
def test_encoder_stream(case: Json) -> None:
    encoder = Encoder(Role(case["role"]))
    out = bytearray(encoder.handshake())
    for payload in case["payloads"]:
        data = expand_bytes(payload)
        header, body = encoder.encode(data)
        out += header
        out += body
        assert encoder.frame(data) == header + data
    assert bytes(out) == expand_bytes(case["bytes"])


@pytest.mark.parametrize("case", ENCODE_HEADER, ids=_ids(ENCODE_HEADER))
def test_encoder_header(case: Json) -> None:
    encoder = Encoder(Role.PARENT)
    encoder.handshake()
    if case["error"] is None:
        assert encoder.header(case["length"]).hex() == case["header"]
        return
    with pytest.raises(PayloadTooLargeError) as info:
        encoder.header(case["length"])
    assert case["error"] == {"class": "payload_too_large", "length": info.value.length,
                             "limit": info.value.limit}
