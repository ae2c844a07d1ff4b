"""What the fuzz harnesses share: turning the fuzzer's bytes into a decoding scenario, running
a decoder over a stream in a chosen chunking, and the two ways to drive a harness.

A harness input is a 6-byte control prefix, then the stream itself::

    byte 0     bit 0: the decoder's role (0 parent, 1 worker); bits 1-2: the decoder API
               (feed, feed_payloads, get_buffer/buffer_updated, a mix); bit 3: no end of stream
    byte 1     the max_message_size choice (see LIMITS; 7 = bytes 2-5 as a u32)
    bytes 2-5  a u32 seeding the chunking (and the custom limit)

Drivers: :func:`main` runs a harness under atheris (coverage-guided, libFuzzer flags), or with
``--random SECONDS [SEED_DIR ...]`` under a plain mutation loop over ``random`` for machines
without atheris.
"""

from __future__ import annotations

import os
import random
import struct
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: When a harness runs under atheris (any run of a ``fuzz_*.py`` script but ``--random``), the
#: package is imported with coverage instrumentation, and nothing else is: the fuzzer steers
#: by the package's branches only.
_instrument: AbstractContextManager[Any] = nullcontext()
if Path(sys.argv[0]).name.startswith("fuzz_") and sys.argv[1:2] != ["--random"]:
    try:
        import atheris  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        pass
    else:
        _instrument = atheris.instrument_imports(include=["worker_process"])

with _instrument:
    import worker_process._grammar  # noqa: F401  (instrumented for the differential harness)
    from worker_process import (
        Decoder,
        DecoderState,
        HandshakeReceived,
        MessageReceived,
        ProtocolError,
        Role,
        StreamEnded,
    )
    from worker_process._codec import LARGE_PAYLOAD
    from worker_process._wire import MAX_PAYLOAD

Harness = Callable[[bytes], None]

PREFIX_SIZE = 6
API_FEED, API_PAYLOADS, API_BUFFER, API_MIXED = range(4)
#: max_message_size choices; index 7 takes the limit from the input.
LIMITS = (0, 1, 5, LARGE_PAYLOAD - 1, LARGE_PAYLOAD, LARGE_PAYLOAD + 1, MAX_PAYLOAD, -1)
#: largest chunk the chunking may cut, by seed; 0 = the whole stream at once.
CHUNK_CAPS = (0, 1, 2, 3, 5, 64, 4096, 70000)


@dataclass
class Scenario:
    """A decoding run described by a harness input."""

    role: Role
    api: int
    eof: bool
    limit: int
    seed: int
    stream: bytes

    def chunk_cap(self) -> int:
        return CHUNK_CAPS[self.seed % len(CHUNK_CAPS)]


def parse_input(data: bytes) -> Scenario:
    """The scenario ``data`` describes (short inputs are padded with zero bytes)."""
    head = data[:PREFIX_SIZE].ljust(PREFIX_SIZE, b"\x00")
    flags, choice = head[0], head[1]
    (seed,) = struct.unpack(">L", head[2:6])
    limit = LIMITS[choice % len(LIMITS)]
    if limit < 0:
        limit = seed
    return Scenario(
        role=Role.WORKER if flags & 1 else Role.PARENT,
        api=(flags >> 1) & 3,
        eof=not flags & 8,
        limit=limit,
        seed=seed,
        stream=data[PREFIX_SIZE:],
    )


def make_input(
    role: Role, stream: bytes, *, limit: int | None = None, api: int = API_FEED,
    eof: bool = True, seed: int = 0,
) -> bytes:
    """The harness input for a scenario (the inverse of :func:`parse_input`)."""
    flags = (1 if role is Role.WORKER else 0) | (api << 1) | (0 if eof else 8)
    if limit is None or limit == MAX_PAYLOAD:
        choice, word = LIMITS.index(MAX_PAYLOAD), seed
    elif limit in LIMITS:
        choice, word = LIMITS.index(limit), seed
    else:
        choice, word = 7, limit
    return bytes([flags, choice]) + struct.pack(">L", word) + stream


def chunks(stream: bytes, seed: int, cap: int) -> Iterator[bytes]:
    """``stream`` cut at points chosen by ``seed``; some chunks are empty."""
    if cap == 0:
        yield stream
        return
    rng = random.Random(seed)
    i = 0
    while i < len(stream):
        size = rng.randint(0, cap)
        yield stream[i : i + size]
        i += size


@dataclass
class Outcome:
    """What a decoder made of a stream: its events up to the first error, and that error."""

    handshakes: int = 0
    payloads: list[bytes] = field(default_factory=list)
    ended: bool = False
    error: ProtocolError | None = None

    def key(self) -> tuple[object, ...]:
        return (self.handshakes, self.payloads, self.ended, error_key(self.error))


def error_key(error: BaseException | None) -> tuple[object, ...] | None:
    """An error's class and attributes (what two decoders must agree on)."""
    if error is None:
        return None
    attrs = {
        name: getattr(error, name)
        for name in ("expected", "got", "length", "limit", "stage", "missing")
        if hasattr(error, name)
    }
    return (type(error).__name__, tuple(sorted(attrs.items())))


def _feed_one(decoder: Decoder, chunk: bytes, api: int, out: Outcome) -> None:
    if api == API_FEED:
        for event in decoder.feed(chunk):
            if isinstance(event, HandshakeReceived):
                out.handshakes += 1
            elif isinstance(event, MessageReceived):
                assert type(event.payload) is bytes, f"payload is {type(event.payload)}"
                out.payloads.append(event.payload)
            else:
                raise AssertionError(f"feed() returned {event!r}")
        return
    # Without events, the handshake shows in ``handshake_done`` (also when the same call
    # then raised: the transports read it that way).
    before = decoder.handshake_done
    got: list[bytes] = []
    try:
        if api == API_PAYLOADS:
            got = decoder.feed_payloads(chunk)
        else:
            # The transports' zero-copy path: receive into the decoder's own buffer, as much
            # of the chunk as it lends room for, the rest on the next round.
            view = memoryview(chunk)
            while True:
                buf = decoder.get_buffer()
                assert len(buf) > 0, "get_buffer() lent an empty buffer"
                n = min(len(buf), len(view))
                buf[:n] = view[:n]
                del buf  # the decoder may resize its buffer once nothing else holds it
                got.extend(decoder.buffer_updated(n))
                view = view[n:]
                if not view:
                    break
    finally:
        if decoder.handshake_done and not before:
            out.handshakes += 1
    for payload in got:
        assert type(payload) is bytes, f"payload is {type(payload)}"
    out.payloads.extend(got)


def run_decoder(scenario: Scenario, *, api: int | None = None, cap: int | None = None) -> Outcome:
    """Feed the scenario's stream to a fresh decoder; stop at the first protocol error.

    Any exception other than :class:`ProtocolError` propagates (a harness failure), and so
    does an :class:`AssertionError` for a broken invariant of the decoder's own state.
    """
    api = scenario.api if api is None else api
    cap = scenario.chunk_cap() if cap is None else cap
    decoder = Decoder(scenario.role, max_message_size=scenario.limit)
    out = Outcome()
    fed = 0
    rng = random.Random(scenario.seed ^ 0x5EED)
    try:
        for chunk in chunks(scenario.stream, scenario.seed, cap):
            use = rng.randrange(3) if api == API_MIXED else api
            _feed_one(decoder, chunk, use, out)
            fed += len(chunk)
            if decoder.state is DecoderState.FRAMES:
                # ``buffered`` is exact: what was fed minus what complete elements used (the
                # transports take 0 for a frame boundary).
                used = out.handshakes + sum(4 + len(p) for p in out.payloads)
                assert decoder.buffered == fed - used, (
                    f"buffered={decoder.buffered}, but {fed - used} bytes are pending")
        if decoder.state is DecoderState.ERROR:
            # Events before an error come first; the error must follow on the next call.
            _feed_one(decoder, b"", API_PAYLOADS, out)
            raise AssertionError("the decoder is in ERROR but the next call did not raise")
        if scenario.eof:
            events = decoder.feed_eof()
            assert events == [StreamEnded()], f"feed_eof() returned {events!r}"
            assert decoder.state is DecoderState.ENDED
            out.ended = True
            assert decoder.feed_eof() == [], "a second feed_eof() must return []"
    except ProtocolError as exc:
        out.error = exc
        assert decoder.state is DecoderState.ERROR, f"raised {exc!r} in {decoder.state}"
        def feed_more() -> object:
            return decoder.feed(b"x")

        for again in (feed_more, decoder.feed_eof):
            try:
                again()
            except ProtocolError as later:
                assert later is exc, f"a later call raised {later!r}, not {exc!r}"
            else:
                raise AssertionError("a call after the error did not raise") from None
    return out


# -- drivers -----------------------------------------------------------------------------------


def _mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randint(0, len(buf))
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and buf:
            del buf[pos : pos + rng.randint(1, 8)]
        elif op == 3:
            buf[pos:pos] = struct.pack(">L", rng.choice((0, 1, 4, 65535, 65536, 70000,
                                                          2**32 - 1, rng.randrange(2**32))))
        elif op == 4 and pool:
            other = rng.choice(pool)
            cut = rng.randint(0, len(other))
            buf = buf[:pos] + bytearray(other[cut:])
        elif op == 5:
            buf[: min(PREFIX_SIZE, len(buf))] = rng.randbytes(PREFIX_SIZE)[: min(PREFIX_SIZE,
                                                                                 len(buf))]
        else:
            buf = buf[:pos]
    return bytes(buf[:8192])


def random_campaign(harness: Harness, seconds: float, seed_dirs: list[Path],
                    crash_dir: Path) -> int:
    """Drive ``harness`` with mutated seeds and random bytes for ``seconds``; return the
    number of crashes (each input is saved in ``crash_dir``)."""
    pool = [p.read_bytes() for d in seed_dirs if d.is_dir() for p in sorted(d.iterdir())
            if p.is_file()]
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))
    deadline = time.monotonic() + seconds
    runs = crashes = 0
    while time.monotonic() < deadline:
        for _ in range(64):
            if pool and rng.random() < 0.8:
                data = _mutate(rng, rng.choice(pool), pool)
            else:
                data = rng.randbytes(rng.randint(0, 64))
            runs += 1
            try:
                harness(data)
            except Exception:
                crashes += 1
                crash_dir.mkdir(parents=True, exist_ok=True)
                path = crash_dir / f"crash-{runs}-{os.getpid()}"
                path.write_bytes(data)
                print(f"CRASH on input saved to {path}:", file=sys.stderr)
                traceback.print_exc()
                if crashes >= 5:
                    break
        if crashes >= 5:
            break
    print(f"random-driver executions: {runs}")
    print(f"random-driver crashes: {crashes}")
    return crashes


def main(harness: Harness) -> None:
    """Entry point of every harness script.

    ``harness.py --random SECONDS [--crash-dir DIR] [SEED_DIR ...]``: the ``random`` driver.
    Otherwise the arguments are libFuzzer's (corpus directories, ``-max_total_time=N``, ...).
    """
    argv = sys.argv[1:]
    if argv[:1] == ["--random"]:
        seconds = float(argv[1])
        rest = argv[2:]
        crash_dir = Path("fuzz/corpus-crashes")
        if rest[:1] == ["--crash-dir"]:
            crash_dir, rest = Path(rest[1]), rest[2:]
        sys.exit(1 if random_campaign(harness, seconds, [Path(d) for d in rest], crash_dir)
                 else 0)
    import atheris  # type: ignore[import-untyped,unused-ignore]

    atheris.Setup(sys.argv, harness)
    atheris.Fuzz()
