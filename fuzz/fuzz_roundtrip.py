"""Invariant: encode -> decode is the identity.

For any list of payloads (empty ones and ones past the 64 KiB large-payload threshold
included) and either role, the bytes the :class:`Encoder` writes (``handshake()``, then each
frame through ``header()`` + payload, ``encode()`` or ``frame()``) are exactly the grammar's
``build_stream`` bytes, and the peer's :class:`Decoder`, fed them in any chunking through any
input path, gives back the same payloads, in order, then ``StreamEnded``.

Input layout: byte 0 bit 0 = the sender's role; bytes 1-4 seed the chunking and the encoder
call used per frame; then payloads, each a 2-byte big-endian length L followed by L bytes
(L >= 0xFF00 means a payload around the 64 KiB large-payload threshold: 65536 + (L - 0xFF80)
* 37 copies of the next byte, from 60800 to 70255 bytes; at most 4 of these per input).

Run: ``python fuzz/fuzz_roundtrip.py [libFuzzer flags] [CORPUS ...]`` (see fuzz/README.md).
"""

from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_common import CHUNK_CAPS, Scenario, main, run_decoder

from worker_process import Encoder, LocalProtocolError, Role
from worker_process._grammar import build_stream
from worker_process._wire import MAX_PAYLOAD

LARGE_MARK = 0xFF00


def payloads_from(data: bytes) -> list[bytes]:
    """The payload list an input describes (see the module docstring)."""
    out: list[bytes] = []
    i = large = 0
    while i + 2 <= len(data) and len(out) < 64:
        (size,) = struct.unpack_from(">H", data, i)
        i += 2
        if size >= LARGE_MARK:
            fill = data[i : i + 1] or b"\x00"
            i += 1
            if large < 4:
                large += 1
                out.append(fill * (65536 + (size - LARGE_MARK - 128) * 37))
        else:
            out.append(data[i : i + size])
            i += size
    return out


def encode_with(encoder: Encoder, payloads: list[bytes], rng: random.Random) -> bytes:
    parts = [encoder.handshake()]
    for payload in payloads:
        how = rng.randrange(3)
        if how == 0:
            parts += [encoder.header(len(payload)), payload]
        elif how == 1:
            header, body = encoder.encode(bytearray(payload))
            parts += [header, bytes(body)]
        else:
            parts.append(encoder.frame(memoryview(payload)))
    encoder.end()
    return b"".join(parts)


def test_one_input(data: bytes) -> None:
    if len(data) < 5:
        return
    sender = Role.WORKER if data[0] & 1 else Role.PARENT
    (seed,) = struct.unpack_from(">L", data, 1)
    payloads = payloads_from(data[5:])
    encoder = Encoder(sender)
    wire = encode_with(encoder, payloads, random.Random(seed))
    for payload in (b"", b"x"):
        try:
            encoder.frame(payload)
        except LocalProtocolError:
            pass
        else:
            raise AssertionError("the encoder framed a payload after end()")
    assert wire == build_stream(sender, payloads), "encoder bytes differ from the grammar's"
    try:
        Encoder(sender).header(MAX_PAYLOAD + 1 + (seed & 0xFF))
    except LocalProtocolError:
        pass
    else:
        raise AssertionError("the encoder framed a payload over 2**32 - 1 bytes")
    for api in range(4):
        scenario = Scenario(role=sender.peer, api=api, eof=True, limit=MAX_PAYLOAD,
                            seed=seed + api, stream=wire)
        cap = CHUNK_CAPS[(seed + api) % len(CHUNK_CAPS)]
        if len(wire) > 20_000 and 0 < cap < 4096:
            cap = 4096  # byte-at-a-time over large payloads only slows the campaign down
        got = run_decoder(scenario, cap=cap)
        assert got.error is None, f"decoding the encoder's bytes raised {got.error!r}"
        assert got.handshakes == 1 and got.ended
        assert got.payloads == payloads, "decode(encode(payloads)) != payloads"


if __name__ == "__main__":
    main(test_one_input)
