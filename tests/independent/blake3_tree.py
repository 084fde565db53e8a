"""BLAKE3 in pure Python, with the subtree chaining values SPEC.md §13.4
uses (written from the BLAKE3 paper, §2.1-2.6, not from any library).

Test code: slow (about 10 µs per byte is fine for the 4 KiB-chunk
vectors), and checked against `b3sum` when that tool is installed.
"""

from __future__ import annotations

IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
      0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
PERM = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
CHUNK_START, CHUNK_END, PARENT, ROOT = 1, 2, 4, 8
CHUNK_LEN = 1024
BLOCK_LEN = 64
M32 = 0xFFFFFFFF


def _g(s, a, b, c, d, x, y):
    s[a] = (s[a] + s[b] + x) & M32
    v = s[d] ^ s[a]
    s[d] = ((v >> 16) | (v << 16)) & M32
    s[c] = (s[c] + s[d]) & M32
    v = s[b] ^ s[c]
    s[b] = ((v >> 12) | (v << 20)) & M32
    s[a] = (s[a] + s[b] + y) & M32
    v = s[d] ^ s[a]
    s[d] = ((v >> 8) | (v << 24)) & M32
    s[c] = (s[c] + s[d]) & M32
    v = s[b] ^ s[c]
    s[b] = ((v >> 7) | (v << 25)) & M32


def compress(cv, block: bytes, counter: int, block_len: int, flags: int) -> list[int]:
    """The compression function: 16 output words."""
    m = list(int.from_bytes(block[i:i + 4], "little") for i in range(0, 64, 4))
    s = list(cv) + list(IV[:4]) + [counter & M32, (counter >> 32) & M32, block_len, flags]
    for r in range(7):
        _g(s, 0, 4, 8, 12, m[0], m[1])
        _g(s, 1, 5, 9, 13, m[2], m[3])
        _g(s, 2, 6, 10, 14, m[4], m[5])
        _g(s, 3, 7, 11, 15, m[6], m[7])
        _g(s, 0, 5, 10, 15, m[8], m[9])
        _g(s, 1, 6, 11, 12, m[10], m[11])
        _g(s, 2, 7, 8, 13, m[12], m[13])
        _g(s, 3, 4, 9, 14, m[14], m[15])
        if r < 6:
            m = [m[p] for p in PERM]
    return [s[i] ^ s[i + 8] for i in range(8)] + [s[i + 8] ^ cv[i] for i in range(8)]


def _words_to_bytes(words) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in words)


def _chunk(data: bytes, counter: int, root: bool) -> bytes:
    """One chunk (≤ 1024 bytes): its chaining value, or the root hash."""
    cv = list(IV)
    blocks = [data[i:i + BLOCK_LEN] for i in range(0, len(data), BLOCK_LEN)] or [b""]
    for i, block in enumerate(blocks):
        flags = (CHUNK_START if i == 0 else 0)
        last = i == len(blocks) - 1
        if last:
            flags |= CHUNK_END | (ROOT if root else 0)
        out = compress(cv, block.ljust(BLOCK_LEN, b"\0"), counter, len(block), flags)
        cv = out[:8]
    return _words_to_bytes(cv)


def _parent(left: bytes, right: bytes, root: bool) -> bytes:
    out = compress(IV, left + right, 0, BLOCK_LEN, PARENT | (ROOT if root else 0))
    return _words_to_bytes(out[:8])


def left_subtree_len(n: int) -> int:
    """The left subtree of n > 1024 bytes: the largest power of two of
    whole chunks that leaves at least one byte on the right."""
    half = (n + 1) // 2
    p = 1
    while p < half:
        p <<= 1
    return p


def subtree_cv(data: bytes, offset: int) -> bytes:
    """The non-root chaining value of `data`, a whole subtree that starts
    at byte `offset` of the message (a multiple of its size class)."""
    counter = offset // CHUNK_LEN
    if len(data) <= CHUNK_LEN:
        return _chunk(data, counter, False)
    left = left_subtree_len(len(data))
    return _parent(subtree_cv(data[:left], offset), subtree_cv(data[left:], offset + left), False)


def blake3(data: bytes) -> bytes:
    """BLAKE3-256 of `data` (what `b3sum` prints)."""
    if len(data) <= CHUNK_LEN:
        return _chunk(data, 0, True)
    left = left_subtree_len(len(data))
    return _parent(subtree_cv(data[:left], 0), subtree_cv(data[left:], left), True)


def root_from_cvs(cvs: list[bytes], region_len: int, chunk_len: int) -> bytes | None:
    """R = BLAKE3 of a region of `region_len` bytes from the chaining values
    of its `chunk_len`-byte pieces (SPEC.md §13.4); None for one piece."""
    if region_len <= chunk_len:
        return None

    def merge(first: int, n: int, root: bool) -> bytes:
        if n <= chunk_len:
            return cvs[first]
        left = left_subtree_len(n)
        return _parent(merge(first, left, False),
                       merge(first + left // chunk_len, n - left, False), root)

    return merge(0, region_len, True)


if __name__ == "__main__":  # the BLAKE3 paper's test input pattern
    import sys
    for n in (0, 1, 1023, 1024, 1025, 2048, 2049, 3072, 8193):
        sys.stdout.write(f"{n} {blake3(bytes(i % 251 for i in range(n))).hex()}\n")
