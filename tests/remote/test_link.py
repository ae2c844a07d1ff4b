"""The relay link's records (spec/protocol.md, "Relays"): split at every offset, through the
kernel (splice) and through user space, they come out as they went in."""

from __future__ import annotations

import contextlib
import os
import socket

import pytest

from worker_process._link import (
    AGAIN,
    DATA,
    END,
    EXIT,
    KEEPALIVE,
    MAGIC,
    OUTPUT,
    SIGNAL,
    LinkError,
    OutBuffer,
    RecordReader,
    exit_payload,
    parse_exit,
    record,
)

RECORDS = [(DATA, b"hello"), (KEEPALIVE, b""), (DATA, b""), (OUTPUT, b"out\n"),
           (SIGNAL, bytes([15])), (DATA, bytes(range(256)) * 3), (END, b""),
           (EXIT, exit_payload(-9))]
STREAM = MAGIC + b"".join(record(kind, payload) for kind, payload in RECORDS)


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_split_at_every_offset(cut: int) -> None:
    pieces: list[tuple[bytes, bytes]] = []
    reader = RecordReader(MAGIC)

    def on_record(kind: bytes, payload: memoryview) -> None:
        pieces.append((kind, bytes(payload)))

    reader.feed(STREAM[:cut], on_record)
    reader.feed(STREAM[cut:], on_record)
    assert _join(pieces) == RECORDS


def _join(pieces: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Stream records arrive in pieces; a record's pieces follow each other (an empty record
    is one empty piece)."""
    out: list[tuple[bytes, bytes]] = []
    want = iter(RECORDS)
    current: tuple[bytes, bytes] | None = None
    acc = b""
    for kind, payload in pieces:
        if current is None:
            current = next(want)
            acc = b""
        assert kind == current[0]
        acc += payload
        if len(acc) == len(current[1]):
            out.append((kind, acc))
            current = None
    return out


def test_byte_at_a_time() -> None:
    pieces: list[tuple[bytes, bytes]] = []
    reader = RecordReader(MAGIC)
    for i in range(len(STREAM)):
        reader.feed(STREAM[i : i + 1], lambda k, p: pieces.append((k, bytes(p))))
    assert _join(pieces) == RECORDS
    assert parse_exit(RECORDS[-1][1]) == -9


def test_not_a_link() -> None:
    with pytest.raises(LinkError, match="instead of starting"):
        RecordReader(MAGIC).feed(b"Welcome to host!\n", lambda k, p: None)
    with pytest.raises(LinkError, match="corrupt"):
        RecordReader().feed(b"z\x00\x00\x00\x00", lambda k, p: None)
    with pytest.raises(LinkError, match="corrupt"):
        RecordReader().feed(b"d\x7f\x00\x00\x00", lambda k, p: None)


@pytest.mark.parametrize("splice", [True, False])
def test_through_a_pipe_into_a_socket(splice: bool) -> None:
    """Sender: a socket's bytes spliced into the link pipe as records (or queued and written);
    receiver: the pipe's DATA payloads spliced into a socket (or read and queued)."""
    payload = os.urandom(3 << 20)
    src_a, src_b = socket.socketpair()
    dst_a, dst_b = socket.socketpair()
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        for s in (src_a, src_b, dst_a, dst_b):
            s.setblocking(False)
        out = OutBuffer(w)
        sink = OutBuffer(dst_a.fileno())
        reader = RecordReader()
        scratch = bytearray(1 << 16)
        received = bytearray()
        kinds: list[bytes] = []

        def on_record(kind: bytes, view: memoryview) -> None:
            kinds.append(kind)
            if kind == DATA:
                sink.write(view)

        sent = 0
        while len(received) < len(payload):
            if sent < len(payload):
                with contextlib.suppress(BlockingIOError):
                    sent += src_a.send(payload[sent : sent + (1 << 16)])
            if splice:
                while out.splice_from(src_b.fileno(), 1 << 20):
                    pass
            else:
                try:
                    data = src_b.recv(1 << 20)
                    out.write_record(DATA, data)
                except BlockingIOError:
                    pass
            out.flush()
            n = reader.pump(r, scratch, on_record, sink if splice else None)
            assert n != 0
            sink.flush()
            sink.own(scratch)
            try:
                received += dst_b.recv(1 << 20)
            except BlockingIOError:
                assert n == AGAIN or n > 0 or sink
        assert bytes(received) == payload
    finally:
        for fd in (r, w):
            os.close(fd)
        for s in (src_a, src_b, dst_a, dst_b):
            s.close()
