"""The language-neutral test vectors in ``spec/vectors/``, generated from the construct grammar.

Every expected outcome here comes from :mod:`worker_process._grammar` alone: stream bytes from
:func:`~worker_process._grammar.build_stream`, headers from ``LENGTH``, and the events or error
a decoder must produce from :func:`~worker_process._grammar.parse_stream`. The fast codec is
never consulted, so running the vectors against it (``tests/conformance``) tests it against
the grammar. The format is described in ``spec/vectors.md``.

Usage::

    python -m worker_process.conformance.vectors --write   # regenerate spec/vectors/*.json
    python -m worker_process.conformance.vectors --check   # fail if they are stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import construct as c  # type: ignore[import-untyped]

from .._errors import (
    HandshakeByteError,
    MessageTooLargeError,
    ProtocolError,
    TruncatedStreamError,
)
from .._grammar import HANDSHAKE, LENGTH, build_stream, parse_stream
from .._roles import Role
from .files import vectors_directory

__all__ = [
    "SCHEMA_VERSION",
    "VECTOR_FILES",
    "default_directory",
    "error_to_json",
    "expand_bytes",
    "load_cases",
    "render_files",
]

#: Bumped when the format in ``spec/vectors.md`` changes incompatibly.
SCHEMA_VERSION = 1

#: The files, in the order they are written.
VECTOR_FILES = ("decode-worker.json", "decode-parent.json", "encode.json")


Json = dict[str, Any]


def default_directory() -> Path:
    """``spec/vectors`` in the source checkout this package runs from, or the copy an
    installed wheel carries."""
    return vectors_directory()


# --- byte strings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Repeat:
    """``count`` copies of ``unit``: a long payload, spelled out when a case is built."""

    unit: bytes
    count: int

    def to_bytes(self) -> bytes:
        return self.unit * self.count


Segment = bytes | Repeat


def _join(segments: Sequence[Segment]) -> bytes:
    return b"".join(s.to_bytes() if isinstance(s, Repeat) else s for s in segments)


#: Runs of one byte at least this long are written as a ``repeat`` segment.
_RUN = 64


def _bytes_json(data: bytes) -> str | list[Any]:
    """A byte string for the JSON files: hex, or a list of hex and ``repeat`` segments when
    it holds long runs of one byte value."""
    segments: list[Any] = []
    start = i = 0
    n = len(data)
    while i < n:
        j = i
        while j < n and data[j] == data[i]:
            j += 1
        if j - i >= _RUN:
            if start < i:
                segments.append(data[start:i].hex())
            segments.append({"repeat": data[i : i + 1].hex(), "count": j - i})
            start = j
        i = j
    if not segments:
        return data.hex()
    if start < n:
        segments.append(data[start:].hex())
    return segments


def expand_bytes(value: str | list[Any]) -> bytes:
    """The bytes a JSON byte string stands for (see ``spec/vectors.md``).

    Raises:
        ValueError: ``value`` is not a valid byte string.
    """
    if isinstance(value, str):
        return bytes.fromhex(value)
    if not isinstance(value, list):
        raise ValueError(f"not a byte string: {value!r}")
    out = bytearray()
    for seg in value:
        if isinstance(seg, str):
            out += bytes.fromhex(seg)
        elif isinstance(seg, dict) and set(seg) == {"repeat", "count"}:
            out += bytes.fromhex(seg["repeat"]) * int(seg["count"])
        else:
            raise ValueError(f"not a byte string segment: {seg!r}")
    return bytes(out)


# --- outcomes, from the grammar -------------------------------------------------------------


def error_to_json(error: ProtocolError) -> Json:
    """The language-neutral name and attributes of a decoding error.

    Raises:
        TypeError: ``error`` is not one a decoder reports.
    """
    if isinstance(error, HandshakeByteError):
        return {"class": "bad_handshake", "expected": error.expected, "got": error.got}
    if isinstance(error, MessageTooLargeError):
        return {"class": "message_too_large", "length": error.length, "limit": error.limit}
    if isinstance(error, TruncatedStreamError):
        return {"class": f"truncated_{error.stage}", "stage": error.stage,
                "missing": error.missing}
    raise TypeError(f"not a decoding error: {error!r}")


def _parse(sender: Role, data: bytes, limit: int | None) -> list[bytes] | ProtocolError:
    try:
        return parse_stream(sender, data, max_message_size=limit)
    except ProtocolError as exc:
        return exc


def _frame_ends(data: bytes) -> list[int]:
    """Offsets where a frame (or the handshake) ends, walking ``data`` with the grammar's
    length field; the walk stops at the first incomplete element."""
    ends = [1] if data else []
    pos = 1
    size = int(LENGTH.sizeof())
    while len(data) - pos >= size:
        end = pos + size + int(LENGTH.parse(data[pos : pos + size]))
        if end > len(data):
            break
        ends.append(end)
        pos = end
    return ends


def _header_ends(data: bytes) -> list[int]:
    size = int(LENGTH.sizeof())
    return [1] + [end + size for end in _frame_ends(data) if end + size <= len(data)]


def _same(a: ProtocolError, b: ProtocolError) -> bool:
    return error_to_json(a) == error_to_json(b)


def _decode_outcome(
    sender: Role, chunks: Sequence[bytes], eof: bool, limit: int | None
) -> tuple[list[Json], Json | None]:
    """The events and the error a decoder must produce, derived from ``parse_stream``."""
    data = b"".join(chunks)
    # Where each byte's chunk is: the error is raised by the chunk holding its last proof byte.
    chunk_of: list[int] = []
    for index, chunk in enumerate(chunks):
        chunk_of.extend([index] * len(chunk))

    full = _parse(sender, data, limit)
    error: ProtocolError | None = None
    raised_at: int | str = "eof"
    if isinstance(full, ProtocolError) and not isinstance(full, TruncatedStreamError):
        # A bad byte or a header over the limit: found by the shortest prefix proving it.
        for end in _header_ends(data):
            early = _parse(sender, data[:end], limit)
            if isinstance(early, ProtocolError) and _same(early, full):
                error, raised_at = full, chunk_of[end - 1]
                break
        else:
            raise AssertionError(f"no prefix proves {full!r}")
    elif isinstance(full, TruncatedStreamError) and eof:
        error = full

    good_end = 0
    for end in _frame_ends(data):
        if error is not None and raised_at != "eof":
            assert isinstance(raised_at, int)
            if not isinstance(_parse(sender, data[:end], limit), list):
                break
        good_end = end
    events: list[Json] = []
    if good_end:
        payloads = _parse(sender, data[:good_end], limit)
        assert isinstance(payloads, list), payloads
        events.append({"type": "handshake"})
        events.extend({"type": "message", "payload": _bytes_json(p)} for p in payloads)
    if error is None and eof:
        events.append({"type": "end"})
    if error is None:
        return events, None
    return events, {**error_to_json(error), "raised_at": raised_at}


# --- the cases ------------------------------------------------------------------------------


def _hs(role: Role) -> bytes:
    return bytes(HANDSHAKE[role].value)


def _header(length: int) -> bytes:
    return bytes(LENGTH.build(length))


def _frames(payloads: Sequence[bytes]) -> bytes:
    """The frames of ``payloads`` without the handshake byte, as the grammar builds them."""
    return build_stream(Role.PARENT, payloads)[1:]


class _DecodeCases:
    """Builds the decode cases for one decoding role."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.sender = role.peer
        self.hs = _hs(self.sender)
        self.cases: list[Json] = []

    def add(
        self,
        name: str,
        description: str,
        chunks: Sequence[Segment | Sequence[Segment]],
        *,
        eof: bool = True,
        limit: int | None = None,
    ) -> None:
        seg_chunks = [
            [chunk] if isinstance(chunk, bytes | Repeat) else list(chunk) for chunk in chunks
        ]
        raw = [_join(chunk) for chunk in seg_chunks]
        events, error = _decode_outcome(self.sender, raw, eof, limit)
        self.cases.append({
            "id": f"decode/{self.role.value}/{name}",
            "description": description,
            "role": self.role.value,
            "max_message_size": limit,
            "chunks": [_bytes_json(chunk) for chunk in raw],
            "eof": eof,
            "events": events,
            "error": error,
        })


def _decode_cases(role: Role) -> list[Json]:
    d = _DecodeCases(role)
    hs, sender = d.hs, d.sender
    wrong = _hs(role)  # this side's own byte: the wrong one to receive
    hello = b"hello"

    # handshake
    d.add("handshake-only", f"the {sender.value}'s handshake byte, then its end of stream",
          [hs])
    d.add("handshake-no-eof", "the handshake byte and nothing else yet", [hs], eof=False)
    d.add("nothing-yet", "no bytes and no end of stream: no events, no error", [], eof=False)
    d.add("empty-chunk", "an empty chunk changes nothing", [b""], eof=False)
    d.add("empty-stream", "end of stream before the handshake byte", [])
    d.add("empty-chunk-then-eof", "an empty chunk, then end of stream", [b""])
    d.add(f"bad-handshake-{wrong.hex()}", "this side's own handshake byte comes back",
          [wrong])
    d.add("bad-handshake-ff", "a byte that is no handshake byte", [b"\xff"])
    d.add("bad-handshake-no-eof", "a bad handshake byte is reported without waiting for more",
          [b"\x7f"], eof=False)
    d.add("bad-handshake-then-frames", "a bad handshake byte in front of good frames: the "
          "frames are not decoded", [b"\x02" + _frames([hello])])
    d.add("bytes-before-handshake", "a frame sent before the handshake byte (its first "
          "length byte is read as the handshake byte)", [_frames([hello])])
    if role is Role.WORKER:
        d.add("bytes-before-handshake-limit", "a frame before the handshake byte: 0x00 passes "
              "as the handshake, the rest as a header over the limit", [_frames([hello])],
              limit=1024)
    else:
        d.add("duplicate-handshake", "the handshake byte twice: the second starts a header "
              "(0x01000000 bytes), over the limit", [hs + hs + _header(0)], limit=1024)
    d.add("handshake-coalesced-with-frames", "the handshake byte and two frames in one chunk",
          [hs + _frames([hello, b"world"])])
    d.add("handshake-separate-chunk", "the handshake byte alone, then frames",
          [hs, _frames([hello, b"world"])])

    # frames
    d.add("one-frame", "one five-byte frame", [hs + _frames([hello])])
    d.add("zero-length-frame", "a zero-length frame: an empty message",
          [hs + _frames([b""])])
    d.add("zero-length-frame-alone", "a zero-length frame in a chunk of its own, no end of "
          "stream: the empty message is produced without further bytes",
          [hs, _header(0)], eof=False)
    d.add("zero-length-frames-only", "three zero-length frames in a row",
          [hs + _frames([b"", b"", b""])])
    d.add("zero-length-between", "zero-length frames between others",
          [hs + _frames([b"", b"a", b"", b"", b"bc", b""])])
    d.add("coalesced-frames", "100 one-byte frames in one chunk",
          [hs + _frames([bytes([i]) for i in range(100)])])
    reference = hs + _frames([b"", b"\x01", hello])
    d.add("byte-at-a-time", "handshake, an empty frame, a 1-byte and a 5-byte frame, one "
          "byte per chunk", [reference[i : i + 1] for i in range(len(reference))])
    for cut in range(1, len(reference)):
        d.add(f"split-at-{cut:02d}", f"the byte-at-a-time stream in two chunks, split after "
              f"byte {cut}", [reference[:cut], reference[cut:]])
    d.add("empty-chunks-interleaved", "empty chunks between every part of a frame",
          [b"", hs, b"", _header(5), b"", b"hel", b"", b"lo", b""])
    d.add("header-split-2-2", "a header split in the middle", [hs + _header(3)[:2],
          _header(3)[2:] + b"abc"])
    big = Repeat(b"\x5a", 70000)
    d.add("large-payload", "a 70000-byte payload (above 64 KiB), header and payload split "
          "over three chunks", [hs + _header(70000)[:3], [_header(70000)[3:], Repeat(b"\x5a",
          30000)], Repeat(b"\x5a", 40000)])
    d.add("large-payload-then-small", "a 70000-byte frame and a small one in one chunk",
          [[hs, _header(70000), big, _frames([hello])]])
    d.add("partial-frame-no-eof", "a complete frame then part of the next, no end of "
          "stream: only the complete one", [hs + _frames([hello]) + _header(9) + b"abc"],
          eof=False)

    # end of stream
    for have in (1, 2, 3):
        d.add(f"truncated-header-{have}", f"end of stream after {have} header byte(s)",
              [hs + _header(7)[:have]])
    d.add("truncated-payload", "end of stream 3 bytes into a 10-byte payload",
          [hs + _header(10) + b"abc"])
    d.add("truncated-payload-none", "end of stream right after a header", [hs + _header(5)])
    d.add("truncated-after-frames", "two frames, then end of stream inside a header",
          [hs + _frames([hello, b""]) + b"\x00\x00"])
    d.add("truncated-large-payload", "end of stream 1000 bytes into a 70000-byte payload",
          [[hs, _header(70000), Repeat(b"\x5a", 1000)]])

    # limits
    d.add("at-limit", "a payload exactly max_message_size long", [hs + _frames([hello])],
          limit=5)
    d.add("over-limit", "a payload one byte over max_message_size",
          [hs + _frames([b"hello!"])], limit=5)
    d.add("over-limit-header-only", "only the header over the limit has arrived: the error "
          "needs no payload byte and no end of stream", [hs + _header(1025)], eof=False,
          limit=1024)
    d.add("over-limit-header-split", "a header over the limit, one byte per chunk: the "
          "error comes with its 4th byte", [hs, *(_header(1025)[i : i + 1] for i in range(4)),
          b"x" * 10], eof=False, limit=1024)
    d.add("limit-zero", "max_message_size 0: empty frames pass, a 1-byte frame does not",
          [hs + _frames([b"", b""]), _frames([b"x"])], limit=0)
    d.add("frames-then-over-limit", "good frames, then a header over the limit, all in one "
          "chunk: the good frames' events come first", [hs + _frames([b"a", b"bc"]) +
          _header(2000) + b"zz"], limit=1024)
    d.add("over-limit-stops-decoding", "chunks after the error are not decoded",
          [hs + _header(2000), _frames([hello])], limit=1024)
    d.add("max-length-header-over-limit", "the largest header (2**32 - 1) against a limit one "
          "below it", [hs + _header(2**32 - 1)], eof=False, limit=2**32 - 2)
    d.add("max-length-header-small-limit", "the largest header against a 1024-byte limit",
          [hs + b"\xff\xff\xff\xff"], limit=1024)
    return d.cases


def _encode_cases() -> list[Json]:
    cases: list[Json] = []
    payload_sets: list[tuple[str, str, list[Segment]]] = [
        ("handshake-only", "no frames: just the handshake byte", []),
        ("one-frame", "one five-byte payload", [b"hello"]),
        ("zero-length", "one empty payload", [b""]),
        ("mixed", "empty and non-empty payloads", [b"", b"a", b"", b"bc", bytes(range(256))]),
        ("binary", "every byte value", [bytes(range(256))]),
        ("large", "a 70000-byte payload", [Repeat(b"\xa5", 70000)]),
    ]
    for role in Role:
        for name, description, payloads in payload_sets:
            raw = [_join([p]) for p in payloads]
            stream = build_stream(role, raw)
            segments: list[Segment] = [_hs(role)]
            for payload, raw_payload in zip(payloads, raw, strict=True):
                segments.append(_header(len(raw_payload)))
                segments.append(payload)
            assert _join(segments) == stream
            cases.append({
                "id": f"encode/{role.value}/{name}",
                "description": f"what a {role.value} writes: {description}",
                "kind": "stream",
                "role": role.value,
                "payloads": [_bytes_json(p) for p in raw],
                "bytes": _bytes_json(stream),
            })
    for length in (0, 1, 255, 256, 65535, 65536, 16777216, 2**32 - 1):
        cases.append({
            "id": f"encode/header/{length}",
            "description": f"the header of a {length}-byte payload",
            "kind": "header",
            "length": length,
            "header": _header(length).hex(),
            "error": None,
        })
    limit = 2 ** (8 * int(LENGTH.sizeof())) - 1
    for length in (2**32, 2**40):
        try:
            LENGTH.build(length)
        except c.ConstructError:
            pass
        else:
            raise AssertionError("the grammar built an over-long length")
        cases.append({
            "id": f"encode/header/too-large-{length}",
            "description": f"a {length}-byte payload cannot be framed",
            "kind": "header",
            "length": length,
            "header": None,
            "error": {"class": "payload_too_large", "length": length, "limit": limit},
        })
    return cases


def render_files() -> dict[str, str]:
    """File name -> JSON text of every vector file, as the grammar defines them."""
    docs = {
        "decode-worker.json": ("decode", "A worker's decoder fed what a parent wrote.",
                               _decode_cases(Role.WORKER)),
        "decode-parent.json": ("decode", "A parent's decoder fed what a worker wrote.",
                               _decode_cases(Role.PARENT)),
        "encode.json": ("encode", "What each role writes for given payloads, and frame "
                        "headers.", _encode_cases()),
    }
    out = {}
    for name in VECTOR_FILES:
        kind, description, cases = docs[name]
        doc = {
            "schema": SCHEMA_VERSION,
            "kind": kind,
            "description": description + " Generated from the construct grammar by "
            "`python -m worker_process.conformance.vectors --write`; do not edit. Format: "
            "spec/vectors.md.",
            "cases": cases,
        }
        out[name] = json.dumps(doc, indent=1) + "\n"
    return out


def load_cases(directory: Path | None = None) -> Iterator[Json]:
    """Every case of every vector file (from ``spec/vectors`` by default)."""
    folder = default_directory() if directory is None else directory
    for name in VECTOR_FILES:
        doc = json.loads((folder / name).read_text())
        yield from doc["cases"]


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker_process.conformance.vectors",
        description="Generate or check the test vectors (spec/vectors/ in the repository; "
        "an installed package carries a copy).",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the files")
    mode.add_argument("--check", action="store_true",
                      help="exit 1 if a file is missing or stale (differs from the grammar)")
    parser.add_argument("--dir", type=Path, default=None, metavar="DIR",
                        help=f"the vectors folder (default: {default_directory()})")
    if prog is not None:
        parser.prog = prog
    args = parser.parse_args(argv)
    folder: Path = default_directory() if args.dir is None else args.dir
    files = render_files()
    if args.write:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        count = sum(len(json.loads(t)["cases"]) for t in files.values())
        print(f"wrote {count} cases to {folder}")
        return 0
    missing = [name for name in files if not (folder / name).is_file()]
    stale = [name for name, text in files.items()
             if name not in missing and (folder / name).read_text() != text]
    for name in missing:
        print(f"{folder / name} is missing", file=sys.stderr)
    for name in stale:
        print(f"{folder / name} is stale: run python -m worker_process.conformance.vectors"
              " --write", file=sys.stderr)
    return 1 if missing or stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
