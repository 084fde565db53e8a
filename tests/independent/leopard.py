#!/usr/bin/env python3
"""Leopard GF(2^16) high-rate encoding, written from SPEC.md §16 alone, and
checked against tests/parity-vectors/ (SPEC.md §16.12).

Pure Python, no dependency beyond the standard library and the BLAKE3 of
blake3_tree.py (for the parity digest block). Each case regenerates its data
from the rule in SPEC.md §16.12, encodes it, and compares the parity (and,
for volume cases, the geometry, the digest block, the check block and the
56-byte body) with the files the reference wrote. Run: python3 tests/independent/leopard.py
"""

from __future__ import annotations

import hashlib
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blake3_tree import blake3  # noqa: E402

SECTOR = 2048
ORDER = 1 << 16
MODULUS = ORDER - 1  # 65535: also the log of 0
POLYNOMIAL = 0x1002D
CANTOR = (0x0001, 0xACCA, 0x3C0E, 0x163E, 0xC582, 0xED2E, 0x914C, 0x4012,
          0x6C98, 0x10D8, 0x6A72, 0xB900, 0xFDB8, 0xFB34, 0xFF38, 0x991E)


def field_tables():
    """LOG and EXP over elements written in the Cantor basis (§16.2)."""
    dlog = [0] * ORDER  # discrete log of a polynomial-basis element
    state = 1
    for i in range(MODULUS):
        dlog[state] = i
        state <<= 1
        if state >= ORDER:
            state ^= POLYNOMIAL
    dlog[0] = MODULUS
    # phi(x): the polynomial-basis element of Cantor coordinates x.
    phi = [0] * ORDER
    for bit in range(16):
        width = 1 << bit
        for j in range(width):
            phi[j + width] = phi[j] ^ CANTOR[bit]
    log = [dlog[phi[x]] for x in range(ORDER)]
    exp = [0] * ORDER
    for x in range(ORDER):
        exp[log[x]] = x
    exp[MODULUS] = exp[0]
    return log, exp


LOG, EXP = field_tables()


def add_mod(a: int, b: int) -> int:
    s = a + b
    return (s + (s >> 16)) & 0xFFFF


def mul(x: int, log_m: int) -> int:
    return 0 if x == 0 else EXP[add_mod(LOG[x], log_m)]


def skew_table():
    """SKEW[0 .. 65534] (§16.3), as logs."""
    skew = [0] * MODULUS
    temp = [1 << i for i in range(1, 16)]
    for m in range(15):
        step = 1 << (m + 1)
        skew[(1 << m) - 1] = 0
        for i in range(m, 15):
            s = 1 << (i + 1)
            for j in range((1 << m) - 1, s, step):
                skew[j + s] = skew[j] ^ temp[i]
        temp[m] = MODULUS - LOG[mul(temp[m], LOG[temp[m] ^ 1])]
        for i in range(m + 1, 15):
            temp[i] = mul(temp[i], add_mod(LOG[temp[i] ^ 1], temp[m]))
    return [LOG[v] for v in skew]


SKEW = skew_table()


def mul_vec(vec: list[int], log_m: int) -> list[int]:
    exp, log = EXP, LOG
    return [0 if x == 0 else exp[add_mod(log[x], log_m)] for x in vec]


def ifft(work: list[list[int]], pos: int, size: int, delta: int) -> None:
    """In-place IFFT of work[pos .. pos+size) with skew offset delta (§16.3)."""
    dist = 1
    while dist < size:
        for r in range(0, size, 2 * dist):
            log_m = SKEW[r + dist + delta - 1]
            for i in range(r, r + dist):
                a, b = work[pos + i], work[pos + i + dist]
                b = [x ^ y for x, y in zip(a, b)]
                if log_m != MODULUS:
                    a = [x ^ y for x, y in zip(a, mul_vec(b, log_m))]
                work[pos + i], work[pos + i + dist] = a, b
        dist *= 2


def fft(work: list[list[int]], pos: int, size: int, delta: int) -> None:
    """In-place FFT of work[pos .. pos+size) with skew offset delta (§16.3)."""
    dist = size // 2
    while dist > 0:
        for r in range(0, size, 2 * dist):
            log_m = SKEW[r + dist + delta - 1]
            for i in range(r, r + dist):
                a, b = work[pos + i], work[pos + i + dist]
                if log_m != MODULUS:
                    a = [x ^ y for x, y in zip(a, mul_vec(b, log_m))]
                b = [x ^ y for x, y in zip(a, b)]
                work[pos + i], work[pos + i + dist] = a, b
        dist //= 2


def to_symbols(run: bytes) -> list[int]:
    """A run of whole 64-byte blocks: 32 low bytes, then 32 high bytes."""
    out = []
    for b in range(0, len(run), 64):
        lo, hi = run[b:b + 32], run[b + 32:b + 64]
        out.extend(l | (h << 8) for l, h in zip(lo, hi))
    return out


def from_symbols(symbols: list[int]) -> bytes:
    out = bytearray()
    for b in range(0, len(symbols), 32):
        block = symbols[b:b + 32]
        out += bytes(x & 0xFF for x in block) + bytes(x >> 8 for x in block)
    return bytes(out)


def encode(data_runs: list[bytes], m: int) -> list[bytes]:
    """High-rate encoding (§16.4): k data runs to m parity runs."""
    k = len(data_runs)
    width = len(to_symbols(data_runs[0]))
    n = 1
    while n < m:
        n *= 2
    chunks = -(-k // n)
    work = [to_symbols(run) for run in data_runs] + [[0] * width for _ in range(chunks * n - k)]
    for c in range(chunks):
        ifft(work, c * n, n, (c + 1) * n)
    for c in range(1, chunks):
        for i in range(n):
            work[i] = [x ^ y for x, y in zip(work[i], work[c * n + i])]
    fft(work, 0, n, 0)
    return [from_symbols(work[q]) for q in range(m)]


def case_bytes(name: str, length: int) -> bytes:
    """The data rule of §16.12: SHA-256(name ‖ u32 counter), concatenated."""
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(name.encode() + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:length])


def geometry(n_d: int, p: int):
    """k, m, L of §16.5."""
    m = (510 * p + 100 + p) // (200 + 2 * p)
    k = 255 - m
    if n_d < k:
        return n_d, max(1, -(-n_d * p // 100)), 1
    return k, m, -(-n_d // k)


def read_meta(path: Path) -> dict[str, str]:
    meta = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(": ")
        meta[key] = value
    return meta


def check_case(case: Path) -> None:
    meta = read_meta(case / "meta")
    parity = (case / "parity").read_bytes()
    k, m = int(meta["k"]), int(meta["m"])
    if meta["kind"] == "codec":
        run = int(meta["run-sectors"]) * SECTOR
        data = case_bytes(case.name, k * run)
        runs = [data[j * run:(j + 1) * run] for j in range(k)]
        got = b"".join(encode(runs, m))
    else:
        n_d, p = int(meta["data-sectors"]), int(meta["percent"])
        kk, mm, layer = geometry(n_d, p)
        assert (kk, mm, layer) == (k, m, int(meta["layer-sectors"])), (kk, mm, layer)
        span = case_bytes(case.name, n_d * SECTOR).ljust(k * layer * SECTOR, b"\0")
        layer_bytes = layer * SECTOR
        runs = [span[j * layer_bytes:(j + 1) * layer_bytes] for j in range(k)]
        got = b"".join(encode(runs, m))
        groups = [blake3(got[g:g + 32 * SECTOR]) for g in range(0, len(got), 32 * SECTOR)]
        block = b"".join(groups)
        block += bytes(-len(block) % SECTOR)
        assert block == (case / "digests").read_bytes(), "digest block"
        body = (bytes([1, 0]) + k.to_bytes(2, "big") + m.to_bytes(2, "big") + bytes(2)
                + layer.to_bytes(4, "big") + n_d.to_bytes(8, "big")
                + len(block).to_bytes(4, "big") + blake3(block))
        assert body.hex() == meta["body"], "geometry body"
        # §16.8: a CRC-32 per covered sector (data span, then parity), 511
        # little-endian entries per sector, its own CRC-32 at byte 2044.
        covered = span[:n_d * SECTOR] + got
        crcs = [zlib.crc32(covered[s:s + SECTOR]) for s in range(0, len(covered), SECTOR)]
        checks = b""
        for at in range(0, len(crcs), 511):
            sector = b"".join(c.to_bytes(4, "little") for c in crcs[at:at + 511]).ljust(2044, b"\0")
            checks += sector + zlib.crc32(sector).to_bytes(4, "little")
        assert checks == (case / "checks").read_bytes(), "check block"
    assert got == parity, "parity"


def main() -> int:
    root = Path(__file__).resolve().parent.parent / "parity-vectors"
    cases = sorted(p for p in root.iterdir() if p.is_dir())
    if not cases:
        print("no parity-codec vectors found", file=sys.stderr)
        return 1
    for case in cases:
        check_case(case)
        print(f"ok {case.name}")
    print(f"{len(cases)} parity-codec vectors: Leopard high-rate parity matches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
