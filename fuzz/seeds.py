"""The committed seed corpus: ``fuzz/seeds/<harness>/``, built from the language-neutral test
vectors in ``spec/vectors/`` plus a few hand-picked streams.

``python fuzz/seeds.py --write`` regenerates the files; ``--check`` fails if they are stale.
"""

from __future__ import annotations

import json
import re
import struct
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fuzz_common import API_BUFFER, API_FEED, API_MIXED, API_PAYLOADS, make_input  # noqa: E402

from worker_process import Role  # noqa: E402

VECTORS = HERE.parent / "spec" / "vectors"
SEEDS = HERE / "seeds"
HARNESSES = ("decoder", "grammar", "roundtrip")
LARGE_MARK = 0xFF00
#: Seeds stay small (the campaign's -max_len): longer vectors are left out.
MAX_SEED = 8192


def hex_bytes(value: Any) -> bytes:
    """A vector byte string: hex, or a list of hex / {"repeat", "count"} segments."""
    if isinstance(value, str):
        return bytes.fromhex(value)
    out = b""
    for segment in value:
        if isinstance(segment, str):
            out += bytes.fromhex(segment)
        else:
            out += bytes.fromhex(segment["repeat"]) * int(segment["count"])
    return out


def roundtrip_input(sender: Role, payloads: list[bytes], seed: int) -> bytes:
    """A ``fuzz_roundtrip`` input for ``payloads`` (a large payload becomes the nearest
    large-payload mark, filled with its first byte)."""
    out = bytes([1 if sender is Role.WORKER else 0]) + struct.pack(">L", seed)
    for payload in payloads:
        if len(payload) < LARGE_MARK:
            out += struct.pack(">H", len(payload)) + payload
        else:
            step = min(0xFF, max(0, (len(payload) - 65536) // 37 + 128))
            out += struct.pack(">H", LARGE_MARK + step) + payload[:1]
    return out


def _name(case_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", case_id)


def build() -> dict[str, dict[str, bytes]]:
    """Every seed file, by harness then file name."""
    seeds: dict[str, dict[str, bytes]] = {h: {} for h in HARNESSES}
    apis = (API_FEED, API_PAYLOADS, API_BUFFER, API_MIXED)
    if VECTORS.is_dir():
        for path in sorted(VECTORS.glob("decode-*.json")):
            for index, case in enumerate(json.loads(path.read_text())["cases"]):
                role = Role(case["role"])
                stream = b"".join(hex_bytes(chunk) for chunk in case["chunks"])
                data = make_input(role, stream, limit=case["max_message_size"],
                                  api=apis[index % 4], eof=case["eof"], seed=index)
                if len(data) > MAX_SEED:
                    continue
                seeds["decoder"][_name(case["id"])] = data
                seeds["grammar"][_name(case["id"])] = data
        encode = VECTORS / "encode.json"
        if encode.exists():
            for index, case in enumerate(json.loads(encode.read_text())["cases"]):
                if case.get("kind") != "stream":
                    continue
                payloads = [hex_bytes(p) for p in case["payloads"]]
                seeds["roundtrip"][_name(case["id"])] = roundtrip_input(
                    Role(case["role"]), payloads, index)
    # Hand-picked: both roles, a frame at the large-payload threshold, a limit at 0.
    for role in Role:
        first = b"\x01" if role is Role.PARENT else b"\x00"
        stream = first + struct.pack(">L", 3) + b"abc" + struct.pack(">L", 0)
        seeds["decoder"][f"hand-{role.value}-frames"] = make_input(role, stream, api=API_MIXED,
                                                                   seed=7)
        big = first + struct.pack(">L", 65536) + b"\x00" * 100
        seeds["grammar"][f"hand-{role.value}-cut-large"] = make_input(role, big, seed=3)
        seeds["roundtrip"][f"hand-{role.value}-mixed"] = roundtrip_input(
            role.peer, [b"", b"x", b"\xff" * 300, b"\x00" * 65535], 11)
    return seeds


def main(argv: list[str]) -> int:
    seeds = build()
    stale = []
    for harness, files in seeds.items():
        folder = SEEDS / harness
        if argv == ["--write"]:
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.iterdir():
                if old.name not in files:
                    old.unlink()
            for name, data in files.items():
                (folder / name).write_bytes(data)
        elif argv == ["--check"]:
            present = {p.name: p.read_bytes() for p in folder.glob("*")} if folder.is_dir() else {}
            if present != files:
                stale.append(harness)
        else:
            print("usage: python fuzz/seeds.py --write | --check", file=sys.stderr)
            return 2
    if stale:
        print(f"fuzz seeds are stale for {stale}: run python fuzz/seeds.py --write",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
