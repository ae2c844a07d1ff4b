"""The protocol's grammar, declared with ``construct``: the source of truth for the wire.

Everything else is derived from it: :mod:`worker_process._wire` (the constants the fast codec
runs on) is generated from this module by ``python -m worker_process._grammar --write``, and a
test regenerates it and fails on any difference. The language-neutral vectors in
``spec/vectors/`` are generated from it too.

This module imports ``construct`` (about 30 ms), so nothing on a worker's start-up path
imports it: only tests, tools and the generator do.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import construct as c  # type: ignore[import-untyped]

from ._errors import HandshakeByteError, MessageTooLargeError, TruncatedStreamError
from ._roles import Role

__all__ = [
    "FRAME",
    "HANDSHAKE",
    "LENGTH",
    "STREAM",
    "build_stream",
    "parse_stream",
    "render_wire_module",
]

#: The frame's length prefix: a 32-bit big-endian unsigned integer.
LENGTH: Any = c.Int32ub

#: The single handshake byte each role writes first.
HANDSHAKE: dict[Role, Any] = {
    Role.PARENT: c.Const(b"\x00"),
    Role.WORKER: c.Const(b"\x01"),
}

#: One frame: the payload length, then the payload.
FRAME: Any = c.Struct(
    "length" / c.Rebuild(LENGTH, c.len_(c.this.payload)),
    "payload" / c.Bytes(c.this.length),
)

#: Everything one role writes, from its first byte to its end of stream.
STREAM: dict[Role, Any] = {
    role: c.Struct(
        "handshake" / HANDSHAKE[role],
        "frames" / c.GreedyRange(FRAME),
        c.Terminated,
    )
    for role in Role
}


def _length_field_max() -> int:
    fmt: str = LENGTH.fmtstr
    if not fmt[-1].isupper():
        raise AssertionError("the length field must be unsigned")
    return int(2 ** (8 * LENGTH.sizeof()) - 1)


def build_stream(sender: Role, payloads: Iterable[bytes]) -> bytes:
    """The exact bytes ``sender`` writes to send ``payloads`` (handshake included)."""
    return bytes(STREAM[sender].build({"frames": [{"payload": p} for p in payloads]}))


def parse_stream(sender: Role, data: bytes, *, max_message_size: int | None = None) -> list[bytes]:
    """Parse everything ``sender`` wrote, up to its end of stream, with the grammar alone.

    This is the reference the fast codec is tested against: slow, but derived from nothing
    but the declarations above.

    Raises:
        HandshakeByteError, TruncatedStreamError, MessageTooLargeError: as the fast decoder
        must for the same bytes.
    """
    limit = _length_field_max() if max_message_size is None else max_message_size
    try:
        parsed = STREAM[sender].parse(data)
    except c.ConstructError:
        pass  # classify below, element by element
    else:
        payloads = [bytes(frame.payload) for frame in parsed.frames]
        for payload in payloads:
            if len(payload) > limit:
                break  # classify below: the limit is checked in stream order
        else:
            return payloads

    stream = io.BytesIO(data)
    expected: bytes = HANDSHAKE[sender].value
    try:
        HANDSHAKE[sender].parse_stream(stream)
    except c.ConstError:
        raise HandshakeByteError(expected=expected[0], got=data[0]) from None
    except c.StreamError:
        raise TruncatedStreamError(stage="handshake", missing=len(expected)) from None
    payloads = []
    while stream.tell() < len(data):
        left = len(data) - stream.tell()
        try:
            length = LENGTH.parse_stream(stream)
        except c.StreamError:
            raise TruncatedStreamError(stage="header", missing=LENGTH.sizeof() - left) from None
        if length > limit:
            raise MessageTooLargeError(length=length, limit=limit)
        left = len(data) - stream.tell()
        try:
            payloads.append(bytes(c.Bytes(length).parse_stream(stream)))
        except c.StreamError:
            raise TruncatedStreamError(stage="payload", missing=length - left) from None
    raise AssertionError("the grammar rejected a stream the element-wise parse accepted")


_TEMPLATE = '''\
"""Wire constants, generated from the construct grammar in ``_grammar.py``.

Do not edit: run ``python -m worker_process._grammar --write`` to regenerate.
This module imports nothing, so a worker can start without ``construct``.
"""

#: The byte a parent writes first.
PARENT_HANDSHAKE = {parent!r}
#: The byte a worker writes first, in answer.
WORKER_HANDSHAKE = {worker!r}
#: ``struct`` format of a frame header (the payload length).
HEADER_FORMAT = {fmt!r}
#: Size of a frame header in bytes.
HEADER_SIZE = {size!r}
#: The largest payload the length field can announce.
MAX_PAYLOAD = {max_payload!r}
'''


def render_wire_module() -> str:
    """The source of ``_wire.py`` as the grammar defines it."""
    return _TEMPLATE.format(
        parent=HANDSHAKE[Role.PARENT].value[0],
        worker=HANDSHAKE[Role.WORKER].value[0],
        fmt=LENGTH.fmtstr,
        size=LENGTH.sizeof(),
        max_payload=_length_field_max(),
    )


WIRE_MODULE_PATH = Path(__file__).with_name("_wire.py")


def write_or_check(argv: list[str], path: Path, render: Callable[[], str], module: str) -> int:
    """The command line of a generated file: ``--write`` writes ``render()`` to ``path``;
    ``--check`` exits 1 if ``path`` differs from it (stale)."""
    if argv == ["--write"]:
        path.write_text(render())
        return 0
    if argv == ["--check"]:
        if not path.exists() or path.read_text() != render():
            print(f"{path} is stale: run `python -m {module} --write`", file=sys.stderr)
            return 1
        return 0
    print(f"usage: python -m {module} --write | --check", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    return write_or_check(argv, WIRE_MODULE_PATH, render_wire_module, "worker_process._grammar")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
