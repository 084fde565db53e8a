#!/usr/bin/env python3
"""Parity volumes across a set (SPEC.md §17), written from the SPEC alone and
checked against tests/parity-volume-vectors/ (SPEC.md §17.7).

Each case regenerates its data volumes and set id from the rule in §17.7,
encodes stripe s = sector s of every data volume (zero beyond its length)
with the Leopard high-rate encoder of leopard.py (§16.4), and rebuilds every
byte of every parity volume: head, body, digest block and the head's copy.
Run: python3 tests/independent/parity_volumes.py
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blake3_tree import blake3  # noqa: E402
from leopard import case_bytes, encode, read_meta  # noqa: E402

SECTOR = 2048
MAGIC = b"\x89KUP\r\n\x1a\n"
GROUP = 32


def head(n: int, p: int, q: int, set_id: bytes, stripes: int, block: bytes,
         volumes: list[bytes]) -> bytes:
    """The head of §17.2, padded to whole sectors."""
    out = (MAGIC + bytes([1, 1]) + n.to_bytes(2, "big") + p.to_bytes(2, "big")
           + q.to_bytes(2, "big") + set_id + stripes.to_bytes(8, "big") + blake3(block))
    for volume in volumes:
        out += len(volume).to_bytes(8, "big") + blake3(volume)
    out += blake3(out)
    return out + bytes(-len(out) % SECTOR)


def parity_volumes(volumes: list[bytes], set_id: bytes, p: int) -> list[bytes]:
    """Every parity volume of §17.3 and §17.2 over `volumes`."""
    stripes = max(-(-len(v) // SECTOR) for v in volumes)
    runs = [v.ljust(stripes * SECTOR, b"\0") for v in volumes]
    # The code works symbol position by symbol position: the whole body of
    # each volume is one run (§16.4, "Shards").
    bodies = encode(runs, p)
    out = []
    for q, body in enumerate(bodies, start=1):
        block = b"".join(blake3(body[g:g + GROUP * SECTOR])
                         for g in range(0, len(body), GROUP * SECTOR))
        block += bytes(-len(block) % SECTOR)
        h = head(len(volumes), p, q, set_id, stripes, block, volumes)
        out.append(h + body + block + h)
    return out


def check_case(case: Path) -> None:
    meta = read_meta(case / "meta")
    n, p = int(meta["n"]), int(meta["parity"])
    lengths = [int(x) for x in meta["lengths"].split()]
    assert len(lengths) == n
    volumes = [case_bytes(f"{case.name}/{v + 1}", length) for v, length in enumerate(lengths)]
    for volume, digest in zip(volumes, meta["data-sha256"].split()):
        assert hashlib.sha256(volume).hexdigest() == digest, "data rule"
    set_id = case_bytes(f"{case.name}/set", 32)
    assert set_id.hex() == meta["set-id"], "set id rule"
    for q, got in enumerate(parity_volumes(volumes, set_id, p), start=1):
        stored = (case / f"p{q:02}.kuv").read_bytes()
        assert got == stored, f"p{q:02}.kuv"


def main() -> int:
    root = Path(__file__).resolve().parent.parent / "parity-volume-vectors"
    cases = sorted(p for p in root.iterdir() if p.is_dir())
    if not cases:
        print("no parity volume vectors found", file=sys.stderr)
        return 1
    for case in cases:
        check_case(case)
        print(f"ok {case.name}")
    print(f"{len(cases)} parity volume vectors: every byte of every parity volume matches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
