"""Checksummed full-duplex transfer: the worker side, and the stream generator both sides use.

Usage: ``res_transfer.py MODE SEED NBYTES REPORT_PATH``

Both directions run at once. The worker sends NBYTES in messages of random sizes (from SEED)
while it receives the parent's messages, hashing each direction; at the end it writes a JSON
report (digest, bytes and message count of what it sent and of what it received).

- ``library``: the asyncio API (``connect``, ``send``, ``recv``).
- ``raw``: no transport from the package: the handshake by hand, frames (from the sans-I/O
  ``Encoder``) written in random-sized pieces, from 1 byte to 256 KiB, with a blocking socket,
  and the parent's bytes read in random-sized ``recv`` calls into the sans-I/O ``Decoder``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from typing import Any

from worker_process import Decoder, Encoder, EndOfStream, Role, connect

BLOCK = 8 << 20
_EDGES = (0, 1, 65535, 65536, 65537)


def message_sizes(rng: random.Random, total: int) -> Iterator[int]:
    """Random sizes summing to ``total``: tiny, small, medium, large and edge cases."""
    left = total
    while left > 0:
        pick = rng.random()
        if pick < 0.05:
            size = rng.choice(_EDGES)
        elif pick < 0.35:
            size = rng.randint(0, 64)
        elif pick < 0.60:
            size = rng.randint(65, 16 << 10)
        elif pick < 0.85:
            size = rng.randint(16 << 10, 256 << 10)
        else:
            size = rng.randint(256 << 10, 4 << 20)
        size = min(size, left)
        left -= size
        yield size


def messages(seed: int, total: int) -> Iterator[bytes]:
    """The stream of payloads a side with ``seed`` sends: ``total`` bytes in all."""
    rng = random.Random(seed)
    block = rng.randbytes(BLOCK)
    for size in message_sizes(rng, total):
        offset = rng.randrange(BLOCK - size + 1)
        yield block[offset : offset + size]


class Tally:
    """Digest, byte count and message count of one direction (message boundaries count)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.bytes = 0
        self.count = 0

    def add(self, payload: bytes) -> None:
        self._hash.update(struct.pack(">Q", len(payload)))
        self._hash.update(payload)
        self.bytes += len(payload)
        self.count += 1

    def summary(self) -> dict[str, Any]:
        return {"digest": self._hash.hexdigest(), "bytes": self.bytes, "count": self.count}


async def run_library(seed: int, total: int) -> tuple[Tally, Tally]:
    sent, received = Tally(), Tally()
    conn = await connect()

    async def send_all() -> None:
        for payload in messages(seed, total):
            await conn.send(payload)
            sent.add(payload)
        await conn.finish()

    async def recv_all() -> None:
        while True:
            try:
                received.add(await conn.recv())
            except EndOfStream:
                return

    await asyncio.gather(send_all(), recv_all())
    return sent, received


def run_raw(seed: int, total: int) -> tuple[Tally, Tally]:
    sent, received = Tally(), Tally()
    sock = socket.socket(fileno=3)
    if sock.recv(1) != b"\x00":
        raise SystemExit("bad parent handshake")
    rng = random.Random(seed ^ 0xC0FFEE)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            decoder = Decoder(Role.WORKER)
            decoder.feed_payloads(b"\x00")
            read_rng = random.Random(seed ^ 0xBEEF)
            while True:
                data = sock.recv(read_rng.choice((1, 7, 4096, 65536, 262144)))
                if not data:
                    decoder.feed_eof()
                    return
                for payload in decoder.feed_payloads(data):
                    received.add(payload)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    encoder = Encoder(Role.WORKER)
    sock.sendall(encoder.handshake())
    pending = bytearray()
    for payload in messages(seed, total):
        pending += encoder.header(len(payload))
        pending += payload
        sent.add(payload)
        while len(pending) >= (256 << 10):
            piece = rng.randint(1, 8) if rng.random() < 0.1 else rng.randint(1, 256 << 10)
            sock.sendall(pending[:piece])
            del pending[:piece]
    while pending:
        piece = rng.randint(1, 64 << 10)
        sock.sendall(pending[:piece])
        del pending[:piece]
    encoder.end()
    sock.shutdown(socket.SHUT_WR)
    thread.join()
    if errors:
        raise errors[0]
    return sent, received


def main(mode: str, seed: int, total: int, report_path: str) -> None:
    if mode == "library":
        sent, received = asyncio.run(run_library(seed, total))
    else:
        sent, received = run_raw(seed, total)
    with open(report_path, "w") as f:
        json.dump({"sent": sent.summary(), "received": received.summary()}, f)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
