#!/usr/bin/env python3
"""Independent kuvert v1 decoder, written from SPEC.md alone.

This module was written without reading the reference implementation
(src/). Every rule cites the SPEC.md section it comes from. It needs Python
3.11 and the `cryptography` package (>= 44, for Argon2id); bech32 is done by
hand here.

Library use:

    ids = [parse_identity("KUVERT-SECRET-KEY-1...")]
    s = open_set(["v.001.kuv", "v.002.kuv"], identities=ids)
    s.kind                               # "stream" or "archive" (§6.7)
    data = s.read_all()                  # the content; or s.read(offset, n)
    arc = read_archive(s)                # None for a stream payload (§12.1)

CLI:

    kuvert_decode.py open    [-i ID | -I FILE]... [-p PASS | -P FILE] [-o OUT] VOL...
    kuvert_decode.py verify  [-i ID | -I FILE]... [-p PASS | -P FILE] VOL
    kuvert_decode.py list    [-i ID | -I FILE]... [-p PASS | -P FILE] VOL...
    kuvert_decode.py inspect VOL

Errors are raised as KuvertError, whose `variant` is the reference's Error
variant name (§7.6) and whose `fields` are rendered as in §10.1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import struct
import sys
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import blake3_tree  # §13.4, beside this file
import mlkem768x25519  # §4.6, beside this file

try:  # cryptography >= 44
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
except ImportError:  # pragma: no cover - reported when a passphrase is tried
    Argon2id = None

# ---------------------------------------------------------------------------
# §1.3 Constants
# ---------------------------------------------------------------------------

MAGIC = b"\x89KUV\r\n\x1a\n"
# §13: the volume trailer
VOLUME_TRAILER_MAGIC = b"\x89KUT\r\n\x1a\n"
SET_FLAG_TRAILERS = 0x0001
TRAILER_HEAD = 72              # magic, version, flags, v, SID, E, M, B
TRAILER_END_RECORD = 104       # head and D
TABLE_RECORD, STATEMENT_RECORD, SIGNATURE_RECORD = 0x8001, 0x8002, 0x8003
RESERVED_RECORDS = 5 * (8 + 1024)
VERSION = 2
SECTOR = 2048
TAG = 16
MIN_HEADER_LEN = 104
MAX_HEADER_LEN = 1 << 20
U64_MAX = (1 << 64) - 1
BASE = b"\x09" + bytes(31)

LABEL_HEADER = b"kuvert/v2 header"
LABEL_PAYLOAD = b"kuvert/v2 payload"
LABEL_X25519 = b"age-encryption.org/v1/X25519"   # age's, §4.2
LABEL_A2_WRAP = b"kuvert/v2 argon2id wrap"
LABEL_A2_COMMIT = b"kuvert/v2 argon2id commit"
FILE_KEY_LEN = 16

FLAG_INTERIOR = 0x00
FLAG_END_OF_SET = 0x01
FLAG_END_OF_VOLUME = 0x02

# §4.2 parse-time low-order check scalar (any clamped scalar works).
LOW_ORDER_PROBE = bytes([0x5A]) * 32

# §6.7 payload prefix: kind, flags, records length
PREFIX_LEN = 4
PAYLOAD_KINDS = {0x00: "stream", 0x01: "archive"}
# §15 manifest and padding
FLAG_PADDED = 0x01
MAX_MANIFEST = 4076          # P − 4 at C = 4 KiB: the manifest is in chunk 0
PADDING_FIELD = 8
MANIFEST_CREATED, MANIFEST_LABEL, MANIFEST_NOTE, MANIFEST_PADDING = 1, 2, 3, 4
PADDING_RULES = {1: "padme", 2: "volume"}

# §12.1
TRAILER_MAGIC = b"kuvert-index" + b"\x00\x00\x00\x01"
TRAILER_LEN = 32
MIN_ARCHIVE_LEN = 40
# §12.2
INDEX_ENTRY_MIN = 45
MAX_ENTRY_PATH = 4096
DEFAULT_INDEX_CAP = 256 * 1024 * 1024  # reference default, §12.2

# ---------------------------------------------------------------------------
# Errors (§7.6, rendered as in §10.1)
# ---------------------------------------------------------------------------

class KuvertError(Exception):
    """An outcome named by the reference variant (§7.6).

    `fields` holds exactly the fields §10.1 renders, in the order of the
    variant's fields in §7.6 (`chunk`/`volume` names for g/v); `reason` is
    informative text that is not rendered (MalformedHeader's reason, §7.1,
    and extra detail on other variants).
    """

    def __init__(self, variant: str, reason: str = "", **fields):
        self.variant = variant
        self.fields = fields
        self.reason = reason
        super().__init__(self.render())

    def render(self) -> str:
        parts = [self.variant]
        for k, v in self.fields.items():   # constructed in §7.6 field order
            if isinstance(v, (list, tuple)):
                v = ",".join(v)
            parts.append(f"{k}={v}")
        return " ".join(parts)

    def __str__(self) -> str:
        s = self.render()
        return f"{s} ({self.reason})" if self.reason else s


def _mh(inp: int, offset: int, reason: str) -> KuvertError:
    return KuvertError("MalformedHeader", reason, input=inp, offset=offset)


# ---------------------------------------------------------------------------
# §1.2 Primitives
# ---------------------------------------------------------------------------

def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                info=info).derive(ikm)


def hmac_sha256(k: bytes, m: bytes) -> bytes:
    return hmac.new(k, m, hashlib.sha256).digest()


def x25519(k: bytes, u: bytes) -> bytes:
    """RFC 7748 X25519. Returns 0^32 for a low-order u.

    The library refuses to return an all-zero shared secret (it raises);
    the spec's checks are phrased in terms of the zero output, so map it.
    """
    priv = X25519PrivateKey.from_private_bytes(k)
    try:
        return priv.exchange(X25519PublicKey.from_public_bytes(u))
    except ValueError:
        return bytes(32)


def x25519_base(k: bytes) -> bytes:
    return x25519(k, BASE)


def aead_open(key: bytes, nonce: bytes, data: bytes) -> bytes | None:
    """AEAD Open with empty AD (§1.2); None if the tag does not verify."""
    if len(data) < TAG:
        return None
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, bytes(data), b"")
    except InvalidTag:
        return None


def nonce(g: int, flag: int) -> bytes:
    """§6.2: 00 00 00 || u64(g) || u8(flag)."""
    return b"\x00\x00\x00" + struct.pack(">Q", g) + bytes([flag])


def unwrap(wk: bytes, w: bytes) -> bytes | None:
    """§4.1 UNWRAP(wk, W) = Open(wk, 0^12, "", W)."""
    return aead_open(wk, bytes(12), w)


# ---------------------------------------------------------------------------
# §4.5 Key encodings (bech32, BIP 173, written by hand)
# ---------------------------------------------------------------------------

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32_CONST = 1          # bech32; bech32m would be 0x2bc830a3
BECH32M_CONST = 0x2BC830A3
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)

HRP_RECIPIENT = ("kuvert", "age")
HRP_IDENTITY = ("kuvert-secret-key-", "age-secret-key-")


def _polymod(values) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GEN[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_decode(s: str) -> tuple[str, list[int]]:
    """BIP 173 decoding. Returns (lowercase hrp, 5-bit data without checksum)."""
    if len(s) > 90:
        raise KuvertError("InvalidKey", "longer than 90 characters")
    if any(ord(c) < 33 or ord(c) > 126 for c in s):
        raise KuvertError("InvalidKey", "character outside US-ASCII 33..126")
    if s.lower() != s and s.upper() != s:
        raise KuvertError("InvalidKey", "mixed case")
    s = s.lower()
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s):
        raise KuvertError("InvalidKey", "no separator, empty HRP or short checksum")
    hrp = s[:pos]
    try:
        data = [BECH32_CHARSET.index(c) for c in s[pos + 1:]]
    except ValueError:
        raise KuvertError("InvalidKey", "character outside the bech32 charset") from None
    chk = _polymod(_hrp_expand(hrp) + data)
    if chk == BECH32M_CONST:
        raise KuvertError("InvalidKey", "bech32m checksum, expected bech32")
    if chk != BECH32_CONST:
        raise KuvertError("InvalidKey", "bad bech32 checksum")
    return hrp, data[:-6]


def bech32_encode(hrp: str, data5: list[int]) -> str:
    pm = _polymod(_hrp_expand(hrp) + data5 + [0] * 6) ^ BECH32_CONST
    chk = [(pm >> (5 * (5 - i))) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[d] for d in data5 + chk)


def _from5(data: list[int]) -> bytes:
    """5-bit groups to bytes, MSB first; exactly 32 bytes, 4 zero pad bits."""
    acc = 0
    bits = 0
    out = bytearray()
    for d in data:
        acc = (acc << 5) | d
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if len(out) != 32 or bits != 4:
        raise KuvertError("InvalidKey", "data is not exactly 32 bytes")
    if acc & ((1 << bits) - 1):
        raise KuvertError("InvalidKey", "nonzero padding bits")
    return bytes(out)


def _to5(b: bytes) -> list[int]:
    acc = 0
    bits = 0
    out = []
    for x in b:
        acc = (acc << 8) | x
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def _decode_key(s: str, want: tuple[str, ...], other: tuple[str, ...],
                kind: str) -> bytes:
    s = s.strip()
    hrp, data = bech32_decode(s)
    if hrp in other:
        other_kind = "recipient" if kind == "identity" else "identity"
        raise KuvertError("InvalidKey", f"{other_kind} HRP {hrp!r} where {kind} is expected")
    if hrp not in want:
        raise KuvertError("InvalidKey", f"unknown HRP {hrp!r}")
    return _from5(data)


class HybridIdentity(bytes):
    """§4.6: the 32-byte seed of an mlkem768x25519 identity, told apart
    from an X25519 scalar by its type."""


HRP_HYBRID_IDENTITY = "age-secret-key-pq-"


def parse_identity(s: str) -> bytes:
    """§4.5: an identity string (kuvert or age HRP) to the raw scalar r;
    §4.6: `AGE-SECRET-KEY-PQ-1…` to a HybridIdentity seed."""
    hrp, data = bech32_decode(s.strip())
    if hrp == HRP_HYBRID_IDENTITY:
        return HybridIdentity(_from5(data))
    return _decode_key(s, HRP_IDENTITY, HRP_RECIPIENT, "identity")


P25519 = (1 << 255) - 19


def parse_recipient(s: str) -> bytes:
    """§4.5 plus §4.2: a recipient string to R; non-canonical or low-order R
    is refused (InvalidKey)."""
    r = _decode_key(s, HRP_RECIPIENT, HRP_IDENTITY, "recipient")
    u = int.from_bytes(r, "little")
    if u >= P25519:  # covers the top bit as well
        raise KuvertError("InvalidKey", "non-canonical recipient key")
    if x25519(LOW_ORDER_PROBE, r) == bytes(32):
        raise KuvertError("InvalidKey", "low-order recipient key")
    return r


def encode_identity(r: bytes, age: bool = False) -> str:
    return bech32_encode(HRP_IDENTITY[1 if age else 0], _to5(r)).upper()


def encode_recipient(pub: bytes, age: bool = False) -> str:
    return bech32_encode(HRP_RECIPIENT[1 if age else 0], _to5(pub))


def _key_file_lines(text: str):
    for n, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        yield n, line


def parse_identity_file(text: str) -> list[bytes]:
    """§4.5 identity files."""
    out = []
    for n, line in _key_file_lines(text):
        try:
            out.append(parse_identity(line))
        except KuvertError as e:
            raise KuvertError("InvalidKey", f"line {n}: {e.reason}") from None
    if not out:
        raise KuvertError("InvalidKey", "identity file holds no identity")
    return out


def parse_recipient_file(text: str) -> list[bytes]:
    out = []
    for n, line in _key_file_lines(text):
        try:
            out.append(parse_recipient(line))
        except KuvertError as e:
            raise KuvertError("InvalidKey", f"line {n}: {e.reason}") from None
    return out


# ---------------------------------------------------------------------------
# Volume sources
# ---------------------------------------------------------------------------

class Source:
    """A volume: bytes in memory or a file, read by offset."""

    def __init__(self, data_or_path, name: str | None = None):
        if isinstance(data_or_path, (bytes, bytearray, memoryview)):
            self._data = bytes(data_or_path)
            self._f = None
            self.length = len(self._data)
            self.name = name or "<bytes>"
        else:
            self._data = None
            self._f = open(data_or_path, "rb")
            self._f.seek(0, os.SEEK_END)
            self.length = self._f.tell()
            self.name = name or os.fspath(data_or_path)

    def read_at(self, off: int, n: int) -> bytes:
        n = max(0, min(n, self.length - off))
        if self._data is not None:
            return self._data[off:off + n]
        self._f.seek(off)
        return self._f.read(n)

    def close(self):
        if self._f is not None:
            self._f.close()


def _source(x) -> Source:
    return x if isinstance(x, Source) else Source(x)


# ---------------------------------------------------------------------------
# §3 Header, §7.1 reading a volume's header
# ---------------------------------------------------------------------------

@dataclass
class Stanza:
    type: str            # argument 0
    args: list[str]      # arguments 1..
    body: bytes
    offset: int          # a_s: offset of the argument count A


SET_TRAILERS = 0x0001
SET_SIGNED = 0x0002
SET_PARITY = 0x0004
PARITY_RECORD = 0x8010
# string("ssh-ed25519") ‖ u32 32: the first 19 bytes of a signer blob.
ED25519_BLOB_PREFIX = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20"
_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P


def _ed_add(a, b):
    """Extended twisted Edwards addition (RFC 8032 §5.1.4)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    A = (y1 - x1) * (y2 - x2) % _P
    B = (y1 + x1) * (y2 + x2) % _P
    C = 2 * t1 * t2 * _D % _P
    Dd = 2 * z1 * z2 % _P
    E, F, G, Hh = B - A, Dd - C, Dd + C, B + A
    return (E * F % _P, G * Hh % _P, F * G % _P, E * Hh % _P)


def ed25519_point_ok(a: bytes) -> bool:
    """A decompresses (RFC 8032 §5.1.3), is canonical (y < p, no x = 0 with
    the sign bit) and is not of small order ([8]A ≠ identity)."""
    y = int.from_bytes(a, "little") & ((1 << 255) - 1)
    sign = a[31] >> 7
    if y >= _P:
        return False
    u, w = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(w, 3, _P) * pow(u * pow(w, 7, _P), (_P - 5) // 8, _P) % _P
    if (w * x * x - u) % _P != 0:
        x = x * pow(2, (_P - 1) // 4, _P) % _P
        if (w * x * x - u) % _P != 0:
            return False
    if x == 0 and sign:
        return False
    if x & 1 != sign:
        x = _P - x
    q = (x, y, 1, x * y % _P)
    for _ in range(3):
        q = _ed_add(q, q)
    # The identity in extended coordinates: X = 0 and Y = Z.
    return not (q[0] % _P == 0 and (q[1] - q[2]) % _P == 0)


@dataclass
class Header:
    input: int
    volume_length: int
    version: int
    L: int
    H: int
    set_flags: int
    sid: bytes
    c: int
    K: int
    stanzas: list[Stanza]
    S: int
    v: int
    volume_flags: int
    extensions: list[tuple[int, bytes]]
    raw: bytes = field(repr=False)      # header[0, L)
    signers: list = field(default_factory=list)   # §3.2 signer block blobs, in order
    parity: int | None = None                     # §3.2 parity field p, with PARITY

    @property
    def C(self) -> int:
        return 1 << self.c

    @property
    def trailers(self) -> bool:
        """§3.2 set flag TRAILERS: every volume ends with a trailer (§13)."""
        return bool(self.set_flags & SET_FLAG_TRAILERS)

    @property
    def set_part(self) -> bytes:
        return self.raw[14:self.S]

    @property
    def mac_input(self) -> bytes:
        return self.raw[:self.L - 32]

    @property
    def mac(self) -> bytes:
        return self.raw[self.L - 32:self.L]

    @property
    def stanza_types(self) -> list[str]:
        return [s.type for s in self.stanzas]


_VCHAR = frozenset(range(0x21, 0x7F))

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64_decode_canonical(text: str) -> bytes | None:
    """§1.2: unpadded base64 (RFC 4648 §4), canonical: no padding, only the
    standard alphabet, zero trailing bits. None if it is not."""
    if len(text) % 4 == 1 or any(c not in _B64 for c in text):
        return None
    acc, bits, out = 0, 0, bytearray()
    for c in text:
        acc = (acc << 6) | _B64.index(c)
        bits += 6
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if acc & ((1 << bits) - 1):
        return None
    return bytes(out)


def read_header(src, inp: int = 1) -> Header:
    """§7.1 steps 1-8, with the offsets of §7.6 H1-H26. Uses no key."""
    src = _source(src)
    n = src.length
    # 1. magic (H1)
    pre = src.read_at(0, 14)
    if n < 8 or pre[:8] != MAGIC:
        raise KuvertError("NotKuvert", input=inp)
    # 2. version (H2, H3)
    if n < 10:
        raise _mh(inp, 8, "volume ends inside the version field")
    version = struct.unpack(">H", pre[8:10])[0]
    if version != VERSION:
        raise KuvertError("UnsupportedVersion", input=inp, version=version)
    if n < 14:
        raise _mh(inp, 10, "volume ends inside the header length field")
    # 3., 4. header length (H4, H5, H6)
    L = struct.unpack(">I", pre[10:14])[0]
    if L < MIN_HEADER_LEN:
        raise _mh(inp, 10, f"header length {L} below {MIN_HEADER_LEN}")
    if L > MAX_HEADER_LEN:
        raise _mh(inp, 10, f"header length {L} above {MAX_HEADER_LEN}")
    if L > n:
        raise _mh(inp, 10, f"header length {L} exceeds the volume length {n}")
    raw = src.read_at(0, L)
    H = -(-L // SECTOR) * SECTOR

    # 5. parse §3.2 and §3.3 in field order.
    pos = 14

    def take(k: int, what: str) -> bytes:
        nonlocal pos
        if pos + k > L:
            raise _mh(inp, pos, f"{what} runs past the header length")
        b = raw[pos:pos + k]
        pos += k
        return b

    def uint(k: int, what: str) -> int:
        return int.from_bytes(take(k, what), "big")

    at = pos
    set_flags = uint(2, "set flags")
    if set_flags & ~(SET_TRAILERS | SET_SIGNED | SET_PARITY):
        raise _mh(inp, at, "set flags: unknown bits set")
    if set_flags & SET_SIGNED and not set_flags & SET_TRAILERS:
        raise _mh(inp, at, "set flags: SIGNED without TRAILERS")
    if set_flags & SET_PARITY and not set_flags & SET_TRAILERS:
        raise _mh(inp, at, "set flags: PARITY without TRAILERS")
    sid = take(32, "set id")
    at = pos
    c = uint(1, "chunk size exponent")
    if not 12 <= c <= 24:
        raise _mh(inp, at, f"chunk size exponent {c} outside 12..=24")
    K = uint(8, "chunks per volume")
    at = pos
    ns = uint(1, "stanza count")
    if ns == 0:
        raise _mh(inp, at, "no stanza")
    stanzas = []
    for _ in range(ns):
        a_s = pos
        A = uint(1, "stanza argument count")
        if A == 0:
            raise _mh(inp, a_s, "stanza with no arguments (no type)")
        args = []
        for _ in range(A):
            a_at = pos
            n_arg = uint(2, "stanza argument length")
            if n_arg == 0:
                raise _mh(inp, a_at, "empty stanza argument")
            arg = take(n_arg, "stanza argument")
            for i, b in enumerate(arg):
                if b not in _VCHAR:
                    raise _mh(inp, a_at + 2 + i, "stanza argument byte outside 0x21-0x7E")
            args.append(arg.decode("ascii"))
        B = uint(2, "stanza body length")
        body = take(B, "stanza body")
        stanzas.append(Stanza(args[0], args[1:], body, a_s))
    signers = []
    if set_flags & SET_SIGNED:
        # §3.2 signer block: N_k, N_k lengths (51), N_k ssh-ed25519 blobs.
        block_at = pos
        nk = uint(1, "signer count")
        if not 1 <= nk <= 4:
            raise _mh(inp, block_at, "signer count outside 1..=4")
        for _ in range(nk):
            m_at = pos
            if uint(2, "signer key length") != 51:
                raise _mh(inp, m_at, "signer key length is not 51")
        for _ in range(nk):
            b_at = pos
            blob = take(51, "signer key")
            if blob[:19] != ED25519_BLOB_PREFIX or not ed25519_point_ok(blob[19:]):
                raise _mh(inp, b_at, "signer key is not a canonical ssh-ed25519 point of large order")
            if blob in signers:
                raise _mh(inp, b_at, "signer key named twice")
            signers.append(blob)
    parity = None
    if set_flags & SET_PARITY:
        # §3.2 parity field: u16 p, 3..=200.
        p_at = pos
        parity = uint(2, "parity percent")
        if not 3 <= parity <= 200:
            raise _mh(inp, p_at, "parity percent outside 3..=200")
    S = pos
    C = 1 << c
    v = uint(4, "volume number")
    if v == 0:
        raise _mh(inp, S, "volume number 0")
    if K == 0 and v != 1:
        raise _mh(inp, S, "unsplit set with volume number other than 1")
    if K >= 1 and (v * K > U64_MAX or H + K * C > U64_MAX):
        raise _mh(inp, S, "chunk index or offset overflows u64")
    at = pos
    volume_flags = uint(2, "volume flags")
    if volume_flags != 0:
        raise _mh(inp, at, "volume flags are not zero")
    e = uint(2, "extension area length")
    area_at = pos
    area = take(e, "extension area")
    extensions = []
    q = 0
    while q < e:
        rec = area_at + q
        if q + 4 > e:
            raise _mh(inp, rec, "extension record head runs past the area")
        etype, elen = struct.unpack(">HH", area[q:q + 4])
        if q + 4 + elen > e:
            raise _mh(inp, rec, "extension record body runs past the area")
        if etype & 0x8000:
            raise _mh(inp, rec, f"unknown critical extension record {etype:#06x}")
        extensions.append((etype, area[q + 4:q + 4 + elen]))
        q += 4 + elen
    take(32, "MAC")
    if pos != L:
        raise _mh(inp, pos, "bytes between the end of the MAC and L")

    # 6. stanza checks (§4.1-§4.3), in header order.
    seen_argon = False
    for s in stanzas:
        if s.type == "X25519":
            if len(s.args) != 1:
                raise _mh(inp, s.offset, "X25519 stanza needs exactly one argument after its type")
            E = b64_decode_canonical(s.args[0])
            if E is None or len(E) != 32:
                raise _mh(inp, s.offset, "X25519 share is not canonical base64 of 32 bytes")
            if len(s.body) != 32:
                raise _mh(inp, s.offset, "X25519 body is not 32 bytes")
            if x25519(LOW_ORDER_PROBE, E) == bytes(32):
                raise _mh(inp, s.offset, "X25519 ephemeral share is low-order")
        elif s.type == mlkem768x25519.STANZA_TYPE:
            checked = mlkem768x25519.check(s.args, s.body)
            if isinstance(checked, str):
                raise _mh(inp, s.offset, f"mlkem768x25519: {checked}")
        elif s.type == "argon2id":
            if seen_argon:
                raise _mh(inp, s.offset, "second argon2id stanza")
            seen_argon = True
            if s.args:
                raise _mh(inp, s.offset, "argon2id stanza has arguments")
            if len(s.body) != 92:
                raise _mh(inp, s.offset, "argon2id body is not 92 bytes")
            m, t, p = struct.unpack(">III", s.body[16:28])
            if not (1 <= p <= (1 << 24) - 1 and t >= 1 and m >= 8 * p):
                raise _mh(inp, s.offset, "argon2id parameters invalid")

    # 7. volume shorter than H (H25)
    if n < H:
        raise _mh(inp, n, "volume shorter than the padded header")
    # 8. padding (H26)
    pad = src.read_at(L, H - L)
    for i, b in enumerate(pad):
        if b:
            raise _mh(inp, L + i, "nonzero padding byte")

    return Header(input=inp, volume_length=n, version=version, L=L, H=H,
                  set_flags=set_flags, sid=sid, c=c, K=K, stanzas=stanzas,
                  S=S, v=v, volume_flags=volume_flags, extensions=extensions,
                  raw=raw, signers=signers, parity=parity)


# ---------------------------------------------------------------------------
# §13 the volume trailer
# ---------------------------------------------------------------------------

@dataclass
class Trailer:
    E: int              # end of the chunk region [H_v, E)
    k: int              # chunks in the volume
    header_digest: bytes
    entries_at: int     # offset of table entry 0
    statement: tuple | None = None   # (offset, length) of the 0x8002 body, signed sets
    signatures: list = field(default_factory=list)  # (offset, length) of each 0x8003 body


class _Prefix(Source):
    """The first `length` bytes of a source: a trailered volume as §7.2
    steps 5-6 see it (E in place of the volume length, §13.3)."""

    def __init__(self, src: Source, length: int):
        self._src = src
        self.length = length
        self.name = src.name

    def read_at(self, off: int, n: int) -> bytes:
        return self._src.read_at(off, max(0, min(n, self.length - off)))

    def close(self):
        self._src.close()


def read_trailer(src: Source, h: Header, volume: int) -> Trailer:
    """§13.3 steps 1-7. `volume` names the volume in errors (its number
    once the header authenticated, its input position without a key)."""
    n = src.length
    Hv, C = h.H, h.C

    def bad(offset: int, reason: str) -> KuvertError:
        return KuvertError("MalformedTrailer", reason, volume=volume, offset=offset)

    truncated = KuvertError("Truncated", "no end record at the end", volume=volume, length=n)
    # 1.
    if n < Hv + 3 * SECTOR or n % SECTOR:
        raise truncated
    Z = n - SECTOR
    end = src.read_at(Z, SECTOR)
    if end[:8] != VOLUME_TRAILER_MAGIC:
        raise truncated
    be = lambda b, a, k: int.from_bytes(b[a:a + k], "big")  # noqa: E731
    # 2.
    if be(end, 8, 2) != 1:
        raise bad(Z + 8, "trailer version")
    if be(end, 10, 2) != 0:
        raise bad(Z + 10, "trailer flags")
    if be(end, 12, 4) != h.v:
        raise bad(Z + 12, "volume number")
    if end[16:48] != h.sid:
        raise bad(Z + 16, "set id")
    E = be(end, 48, 8)
    if not Hv < E < Z:
        raise bad(Z + 48, "E out of range")
    k = -(-(E - Hv) // C)
    M = be(end, 56, 8)
    if not TRAILER_HEAD <= M <= TRAILER_HEAD + 8 + 40 + 32 * k + RESERVED_RECORDS:
        raise bad(Z + 56, "records length out of range")
    T0 = -(-E // SECTOR) * SECTOR
    T1 = T0 + -(-M // SECTOR) * SECTOR
    B = be(end, 64, 8)
    end_record = TRAILER_END_RECORD
    if h.parity is None:
        if B != 0:
            raise bad(Z + 64, "bulk length")
    else:
        # §16.11: the geometry body at Z+104 is that of n_d = T1/2048 at p.
        gbody = end[TRAILER_END_RECORD:TRAILER_END_RECORD + 56]
        kk, mm, LL = parity_geometry(T1 // SECTOR, h.parity)
        d = parity_digest_block_len(mm * LL)
        expected = (bytes([1, 0]) + kk.to_bytes(2, "big") + mm.to_bytes(2, "big") + bytes(2)
                    + LL.to_bytes(4, "big") + (T1 // SECTOR).to_bytes(8, "big")
                    + d.to_bytes(4, "big"))
        if gbody[:24] != expected:
            raise bad(Z + TRAILER_END_RECORD, "parity geometry")
        # §16.8: the check block, a CRC-32 per data-span and parity sector.
        c = -(-(T1 // SECTOR + mm * LL) // 511)
        if B != mm * LL * SECTOR + d + c * SECTOR:
            raise bad(Z + 64, "bulk length")
        end_record = TRAILER_END_RECORD + 56
    if T1 + B + SECTOR != n:
        raise truncated
    for i in range(end_record, SECTOR):
        if end[i]:
            raise bad(Z + i, "end sector padding")
    # 3.
    gap = src.read_at(E, T0 - E)
    for i, b in enumerate(gap):
        if b:
            raise bad(E + i, "padding before the records")
    # 4.
    head = src.read_at(T0, TRAILER_HEAD)
    for i in range(TRAILER_HEAD):
        if head[i] != end[i]:
            raise bad(T0 + i, "head differs from the end record")
    # 5.
    region = src.read_at(T0, M)
    if blake3_tree.blake3(region) != end[TRAILER_HEAD:TRAILER_END_RECORD]:
        raise bad(Z + TRAILER_HEAD, "records digest D")
    # 6.
    rest = src.read_at(T0 + M, T1 - T0 - M)
    for i, b in enumerate(rest):
        if b:
            raise bad(T0 + M + i, "padding after the records")
    # 7.
    at, table, parity_seen = TRAILER_HEAD, None, False
    while at < M:
        if M - at < 8:
            raise bad(T0 + at, "record head past the region")
        kind, reserved, ln = be(region, at, 2), be(region, at + 2, 2), be(region, at + 4, 4)
        if reserved or ln > M - at - 8:
            raise bad(T0 + at, "record past the region")
        body = at + 8
        if kind == TABLE_RECORD and table is None and at == TRAILER_HEAD:
            if ln != 40 + 32 * k or be(region, body, 8) != k:
                raise bad(T0 + at, "table length")
            table = Trailer(E=E, k=k, header_digest=region[body + 8:body + 40],
                            entries_at=T0 + body + 40)
        elif table is None or kind == TABLE_RECORD:
            raise bad(T0 + at, "table not first, or twice")
        elif kind in (STATEMENT_RECORD, SIGNATURE_RECORD) and not h.signers:
            raise bad(T0 + at, "signature record in an unsigned set")
        elif kind == STATEMENT_RECORD:
            if table.statement is not None or at != TRAILER_HEAD + 8 + 40 + 32 * k or ln > 1024:
                raise bad(T0 + at, "statement out of place, repeated or too long")
            table.statement = (T0 + body, ln)
        elif kind == SIGNATURE_RECORD:
            if table.statement is None or len(table.signatures) >= len(h.signers) or ln > 1024:
                raise bad(T0 + at, "signature out of place, extra or too long")
            table.signatures.append((T0 + body, ln))
        elif kind == PARITY_RECORD:
            # §16.11: once, last, the end record's body with its hash zero.
            if (h.parity is None or parity_seen or body + ln != M or ln != 56
                    or region[body:body + 56] != end[TRAILER_END_RECORD:TRAILER_END_RECORD + 24] + bytes(32)):
                raise bad(T0 + at, "parity record")
            parity_seen = True
        elif kind & 0x8000:
            raise bad(T0 + at, "unknown critical record")
        at = body + ln
    if table is None:
        raise bad(T0 + TRAILER_HEAD, "no table")
    if h.parity is not None and not parity_seen:
        raise bad(T0 + M, "parity record")
    return table


def parity_geometry(n_d: int, p: int):
    """k, m, L of §16.5."""
    m = (510 * p + 100 + p) // (200 + 2 * p)
    k = 255 - m
    if n_d < k:
        return n_d, max(1, -(-n_d * p // 100)), 1
    return k, m, -(-n_d // k)


def parity_digest_block_len(parity_sectors: int) -> int:
    """§16.7: 32 bytes per group of 32 parity sectors, whole sectors."""
    groups = -(-parity_sectors // 32)
    return -(-32 * groups // SECTOR) * SECTOR


# ---------------------------------------------------------------------------
# §14 statements and signatures, §7.2 step 4b
# ---------------------------------------------------------------------------

def fingerprint(blob: bytes) -> str:
    """§4.5: `SHA256:` and unpadded base64 of SHA-256 over the key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_signer(s: str) -> bytes:
    """A `kuvertsign1…` key (§4.5): its 51-byte blob."""
    hrp, data = bech32_decode(s.strip().lower())
    if hrp != "kuvertsign":
        raise ValueError("not a kuvertsign1 key")
    a = _from5(data)
    if len(a) != 32 or not ed25519_point_ok(a):
        raise ValueError("not a canonical ed25519 point of large order")
    return ED25519_BLOB_PREFIX + a


def encode_statement(sid, v, g0, k, C, H, hv, E, T, last, R) -> bytes:
    """§14.1, exactly; `last` is (n, g_f) or None."""
    lines = ["# kuvert volume statement 1", f"# set {sid.hex()}", f"# volume {v}",
             f"# chunks {g0} {k} {C}", f"# header {H} blake3 {hv.hex()}", f"# length {E}",
             f"# table blake3 {T.hex()}"]
    if last is not None:
        lines.append(f"# last volume {last[0]} final chunk {last[1]}")
    lines.append(f"{R.hex()}  -")
    return ("\n".join(lines) + "\n").encode("ascii")


def _ssh_string(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


SSHSIG_BEGIN = b"-----BEGIN SSH SIGNATURE-----\n"
SSHSIG_END = b"-----END SSH SIGNATURE-----\n"


def sshsig_armor(blob: bytes) -> bytes:
    text = base64.b64encode(blob)
    return SSHSIG_BEGIN + b"".join(text[i:i + 70] + b"\n" for i in range(0, len(text), 70)) + SSHSIG_END


def sshsig_check(armored: bytes, message: bytes, signer_blob: bytes) -> str | None:
    """§14.2: None if `armored` is a valid signature by `signer_blob` over
    `message`, else why not. Ed25519 by the `cryptography` package."""
    if len(armored) > 1024 or not armored.startswith(SSHSIG_BEGIN) or not armored.endswith(SSHSIG_END):
        return "armor"
    try:
        blob = base64.b64decode(armored[len(SSHSIG_BEGIN):-len(SSHSIG_END)].replace(b"\n", b""),
                                validate=True)
    except ValueError:
        return "armor"
    if sshsig_armor(blob) != armored:
        return "armor"
    pos = 0

    def take(n):
        nonlocal pos
        if pos + n > len(blob):
            raise ValueError("truncated")
        out = blob[pos:pos + n]
        pos += n
        return out

    def string():
        return take(int.from_bytes(take(4), "big"))
    try:
        if take(6) != b"SSHSIG" or int.from_bytes(take(4), "big") != 1:
            return "magic or version"
        public, ns, reserved, hash_alg, sig_field = string(), string(), string(), string(), string()
    except ValueError:
        return "truncated"
    if pos != len(blob):
        return "trailing bytes"
    if ns != b"kuvert" or reserved or hash_alg != b"sha512":
        return "namespace, reserved or hash"
    if not sig_field.startswith(_ssh_string(b"ssh-ed25519")):
        return "signature type"
    sig = sig_field[15:]
    if len(sig) != 68 or int.from_bytes(sig[:4], "big") != 64:
        return "signature length"
    if public != signer_blob:
        return "another key"
    signed = (b"SSHSIG" + _ssh_string(b"kuvert") + _ssh_string(b"") + _ssh_string(b"sha512")
              + _ssh_string(hashlib.sha512(message).digest()))
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    try:
        Ed25519PublicKey.from_public_bytes(signer_blob[19:]).verify(sig[4:], signed)
    except InvalidSignature:
        return "does not verify"
    return None


def check_signatures(src: Source, h: Header, t: Trailer | None, trusted: list,
                     position: str, volume: int) -> bytes:
    """§7.2 step 4b for one volume (`position`: "last", "not-last" or
    "unknown"); returns the blob of the first trusted signer."""
    if not h.signers or t is None:
        raise KuvertError("Unsigned", volume=volume)
    mine = [b for b in h.signers if b in trusted]
    if not mine:
        raise KuvertError("WrongSigner", volume=volume,
                          signers=[fingerprint(b) for b in h.signers])
    first = mine[0]

    def bad(blob, why):
        return KuvertError("BadSignature", why, volume=volume, signer=fingerprint(blob))
    if t.statement is None:
        raise bad(first, "no statement")
    stored = src.read_at(*t.statement)
    for i, blob in enumerate(h.signers):
        if i >= len(t.signatures):
            raise bad(blob, "no signature")
        why = sshsig_check(src.read_at(*t.signatures[i]), stored, blob)
        if why:
            raise bad(blob, why)
    C, H = h.C, h.H
    entries = src.read_at(t.entries_at, 32 * t.k)
    cvs = [entries[32 * j:32 * j + 32] for j in range(t.k)]
    T = blake3_tree.blake3(t.k.to_bytes(8, "big") + t.header_digest + entries)
    R = blake3_tree.root_from_cvs(cvs, t.E - H, C)
    if R is None:
        R = blake3_tree.blake3(src.read_at(H, t.E - H))
    g0 = (h.v - 1) * h.K
    fields = (h.sid, h.v, g0, t.k, C, H, blake3_tree.blake3(src.read_at(0, H)), t.E, T)
    as_last = encode_statement(*fields, (h.v, g0 + t.k - 1), R)
    not_last = encode_statement(*fields, None, R)
    if stored == as_last:
        if position == "not-last":
            raise bad(first, "a last-volume statement before the last volume")
    elif stored == not_last:
        if position == "last":
            raise KuvertError("VolumeMissing", "sealed with more volumes", volume=h.v + 1)
    else:
        raise bad(first, "the statement does not describe this volume")
    return first


def with_trailer(src: Source, h: Header, volume: int) -> Source:
    """A trailered volume cut to its chunk region's end E; others as they are."""
    if not h.trailers:
        return src
    return _Prefix(src, read_trailer(src, h, volume).E)


@dataclass
class DigestReport:
    v: int
    k: int
    E: int
    root: bytes      # BLAKE3 of [H_v, E), from the table
    damaged: list    # DigestMismatch errors, header first, then by chunk


def verify_digests(volume) -> DigestReport:
    """§7.7: the keyless check of one volume (input 1)."""
    src = _source(volume)
    h = read_header(src, 1)
    if not h.trailers:
        raise KuvertError("NoDigests", volume=1)
    t = read_trailer(src, h, 1)
    C = h.C
    damaged = []
    if blake3_tree.blake3(src.read_at(0, h.H)) != t.header_digest:
        damaged.append(KuvertError("DigestMismatch", chunk="header", volume=h.v, offset=0))
    entries = src.read_at(t.entries_at, 32 * t.k)
    cvs = [entries[32 * j:32 * j + 32] for j in range(t.k)]
    g0 = (h.v - 1) * h.K
    for j in range(t.k):
        off = h.H + j * C
        chunk = src.read_at(off, min(C, t.E - off))
        if blake3_tree.subtree_cv(chunk, j * C) != cvs[j]:
            damaged.append(KuvertError("DigestMismatch", chunk=g0 + j, volume=h.v, offset=off))
    region_len = t.E - h.H
    root = blake3_tree.root_from_cvs(cvs, region_len, C)
    if root is None:
        root = blake3_tree.blake3(src.read_at(h.H, region_len))
    return DigestReport(v=h.v, k=t.k, E=t.E, root=root, damaged=damaged)


# ---------------------------------------------------------------------------
# §4 Unlocking, §5 key schedule
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Caps:
    """§4.3 decoder caps."""
    memory_kib: int = 2_097_152
    passes: int = 8
    lanes: int = 16


DEFAULT_CAPS = Caps()


def header_mac_ok(h: Header, fk: bytes) -> bool:
    """§5.1, compared in constant time."""
    k_hdr = hkdf(fk, h.sid, LABEL_HEADER)
    return hmac.compare_digest(hmac_sha256(k_hdr, h.mac_input), h.mac)


def payload_key(fk: bytes, sid: bytes) -> bytes:
    return hkdf(fk, sid, LABEL_PAYLOAD)


def _try_x25519(s: Stanza, identities) -> bytes | None:
    E, W = b64_decode_canonical(s.args[0]), s.body
    for r in identities:
        R = x25519_base(r)
        S = x25519(r, E)   # nonzero: E passed the low-order check
        wk = hkdf(S, E + R, LABEL_X25519)
        fk = unwrap(wk, W)
        if fk is not None:
            return fk
    return None


def _try_hybrid(s: Stanza, identities) -> bytes | None:
    """§4.6, for a stanza that passed its parse-time checks."""
    if not identities:
        return None
    if not mlkem768x25519.AVAILABLE:
        raise RuntimeError(mlkem768x25519.WHY_NOT)
    enc = mlkem768x25519.check(s.args, s.body)
    for seed in identities:
        fk = mlkem768x25519.unwrap(seed, enc, s.body)
        if fk is not None:
            return fk
    return None


def _argon2id(pw: bytes, salt: bytes, m: int, t: int, p: int) -> bytes:
    if Argon2id is None:
        raise RuntimeError("cryptography >= 44 is needed for Argon2id")
    return Argon2id(salt=salt, length=32, iterations=t, lanes=p,
                    memory_cost=m).derive(pw)


def unlock(h: Header, identities=(), passphrase: bytes | str | None = None,
           caps: Caps = DEFAULT_CAPS) -> bytes:
    """§4.4: returns FK or raises."""
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    wrong_passphrase = False
    for s in h.stanzas:
        fk = None
        if s.type == "X25519":
            fk = _try_x25519(s, [r for r in identities if not isinstance(r, HybridIdentity)])
        elif s.type == mlkem768x25519.STANZA_TYPE:
            fk = _try_hybrid(s, [r for r in identities if isinstance(r, HybridIdentity)])
        elif s.type == "argon2id" and passphrase is not None:
            salt = s.body[0:16]
            m, t, p = struct.unpack(">III", s.body[16:28])
            gamma = s.body[28:60]
            W = s.body[60:92]
            # 1. caps: m, then t, then p
            for what, val, cap in (("argon2id memory (KiB)", m, caps.memory_kib),
                                   ("argon2id passes", t, caps.passes),
                                   ("argon2id lanes", p, caps.lanes)):
                if val > cap:
                    raise KuvertError("LimitExceeded", what=what, found=val, limit=cap)
            # 2. A, wk, commitment
            A = _argon2id(passphrase, salt, m, t, p)
            wk = hkdf(A, salt, LABEL_A2_WRAP)
            gamma2 = hkdf(A, salt, LABEL_A2_COMMIT)
            # 3. constant-time comparison
            if not hmac.compare_digest(gamma2, gamma):
                wrong_passphrase = True
            else:
                # 4. unwrap
                fk = unwrap(wk, W)
                if fk is None:
                    raise KuvertError("HeaderDamaged", "argon2id commitment matched but W did not unwrap",
                                      volume=h.v)
        if fk is not None:
            if not header_mac_ok(h, fk):
                raise KuvertError("HeaderDamaged", "header MAC does not verify", volume=h.v)
            return fk
    if wrong_passphrase:
        raise KuvertError("WrongPassphrase")
    raise KuvertError("NoMatchingKey", stanza_types=h.stanza_types)


# ---------------------------------------------------------------------------
# §6 chunks, §7.2 opening a set, §7.3 reading
# ---------------------------------------------------------------------------

def _classify_last(src: Source, h: Header, v: int, K: int, C: int,
                   kp: bytes) -> tuple[str, int, int, int, int]:
    """§7.2 step 6 (also §7.4 steps 2-3) for volume v whose header is h.

    Returns (kind, g, r, k, off) with kind "end-of-set" or "end-of-volume".
    """
    n = src.length
    Hv = h.H
    D = n - Hv
    if D == 0:
        raise KuvertError("Truncated", volume=v, length=n)
    if K >= 1 and D > K * C:
        raise KuvertError("TrailingData", volume=v, offset=Hv + K * C)
    k = -(-D // C)
    r = D - (k - 1) * C
    g = (v - 1) * K + k - 1
    off = Hv + (k - 1) * C
    X = src.read_at(off, r)
    if r >= TAG:
        if aead_open(kp, nonce(g, FLAG_END_OF_SET), X) is not None:
            if r == TAG and g != 0:
                raise KuvertError("MalformedChunk", chunk=g, volume=v,
                                  what="empty final chunk after data")
            return "end-of-set", g, r, k, off
        if K >= 1 and aead_open(kp, nonce(g, FLAG_END_OF_VOLUME), X) is not None:
            if (g + 1) % K != 0 or r != C:
                raise KuvertError("MalformedChunk", chunk=g, volume=v,
                                  what="end-of-volume chunk before the volume is full")
            return "end-of-volume", g, r, k, off
        if aead_open(kp, nonce(g, FLAG_INTERIOR), X) is not None:
            raise KuvertError("Truncated", "cut at a chunk boundary", volume=v, length=n)
    if k >= 2 and aead_open(kp, nonce(g - 1, FLAG_END_OF_SET),
                            src.read_at(off - C, C)) is not None:
        raise KuvertError("TrailingData", "bytes after the final chunk", volume=v, offset=off)
    if r < TAG or (r == TAG and g != 0):
        # No final chunk after data is a bare tag: what is left was longer.
        raise KuvertError("Truncated", volume=v, length=n)
    raise KuvertError("Unauthenticated", chunk=g, volume=v, offset=off)


def _manifest_text(body: bytes, at: int, limit: int, line_feeds: bool) -> str:
    """§15.1: UTF-8, 1..limit bytes, no C0/DEL/C1 control (LF in a note)."""
    bad = KuvertError("MalformedPayload", "manifest text breaks its rules", offset=at)
    if not 1 <= len(body) <= limit:
        raise bad
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad from None
    for ch in text:
        o = ord(ch)
        if (o <= 0x1F or 0x7F <= o <= 0x9F) and not (line_feeds and ch == "\n"):
            raise bad
    return text


def parse_manifest(records: bytes, padded: bool) -> dict:
    """§15.1: records `type u16 ‖ len u16 ‖ body`, types strictly increasing,
    filling R exactly. Offsets are payload offsets (4 + offset in R)."""
    out: dict = {}
    at, previous = 0, None
    while at < len(records):
        off = PREFIX_LEN + at
        if at + 4 > len(records):
            raise KuvertError("MalformedPayload", "record head past the manifest", offset=off)
        kind, ln = struct.unpack(">HH", records[at:at + 4])
        if at + 4 + ln > len(records):
            raise KuvertError("MalformedPayload", "record body past the manifest", offset=off)
        if previous is not None and kind <= previous:
            raise KuvertError("MalformedPayload", "record types not increasing", offset=off)
        previous = kind
        body = records[at + 4:at + 4 + ln]
        if kind == MANIFEST_CREATED:
            if ln != 8:
                raise KuvertError("MalformedPayload", "created is not 8 bytes", offset=off)
            out["created"] = struct.unpack(">q", body)[0]
        elif kind == MANIFEST_LABEL:
            out["label"] = _manifest_text(body, off, 256, False)
        elif kind == MANIFEST_NOTE:
            out["note"] = _manifest_text(body, off, 3072, True)
        elif kind == MANIFEST_PADDING:
            if ln != 1 or body[0] not in PADDING_RULES or not padded:
                raise KuvertError("MalformedPayload", "bad padding record", offset=off)
            out["padding"] = PADDING_RULES[body[0]]
        elif kind & 0x8000:
            raise KuvertError("MalformedPayload", "unknown critical record", offset=off)
        at += 4 + ln
    return out


class KuvertSet:
    """An opened set (§7.2). Reads chunks lazily (§7.3)."""

    def __init__(self, ref: Header, headers: dict[int, Header],
                 sources: dict[int, Source], kp: bytes, g_f: int, r_f: int):
        self.reference = ref
        self.sid = ref.sid
        self.c = ref.c
        self.C = ref.C
        self.P = self.C - TAG
        self.K = ref.K
        self.headers = headers      # v -> header
        self.sources = sources      # v -> source
        self._kp = kp
        self.g_f = g_f
        self.r_f = r_f
        self.payload_length = g_f * self.P + r_f - TAG   # §6.3
        self.volumes = len(headers)
        self._cache: tuple[int, bytes] | None = None
        self.manifest: dict = {}
        self.padding = 0
        self.kind, self.start, padded = self._read_prefix()   # §6.7, §7.2 step 7
        self.length = self._read_padding(padded)              # content length (§15.2)

    def _read_prefix(self) -> tuple[str, int, bool]:
        """§6.7 / §7.2 step 7 / §15.1: the payload prefix and the manifest, from chunk 0."""
        n = self.payload_length
        if n < PREFIX_LEN:
            raise KuvertError("MalformedPayload", "payload ends inside its prefix", offset=n)
        first = self.chunk(0)                # authenticates chunk 0 first
        pre = first[:PREFIX_LEN]
        if pre[0] not in PAYLOAD_KINDS:
            raise KuvertError("MalformedPayload", f"unknown kind {pre[0]:#04x}", offset=0)
        flags = pre[1]
        if flags & ~FLAG_PADDED:
            raise KuvertError("MalformedPayload", "unknown payload flags", offset=1)
        R = struct.unpack(">H", pre[2:4])[0]
        if R > MAX_MANIFEST or PREFIX_LEN + R > n:
            raise KuvertError("MalformedPayload", "manifest too long", offset=2)
        self.manifest = parse_manifest(first[PREFIX_LEN:PREFIX_LEN + R], bool(flags & FLAG_PADDED))
        return PAYLOAD_KINDS[pre[0]], PREFIX_LEN + R, bool(flags & FLAG_PADDED)

    def _read_padding(self, padded: bool) -> int:
        """§15.2: the padding length from the payload's last 8 bytes; every
        padding byte must be zero (this decoder decrypts them all)."""
        n = self.payload_length
        if not padded:
            return n - self.start
        if n < self.start + PADDING_FIELD:
            raise KuvertError("MalformedPayload", "payload ends inside its padding length",
                              offset=n)
        p = struct.unpack(">Q", self.read_payload(n - PADDING_FIELD, PADDING_FIELD))[0]
        if p > n - PADDING_FIELD - self.start:
            raise KuvertError("MalformedPayload", "padding length too long",
                              offset=n - PADDING_FIELD)
        self.padding = p
        zeros_from = n - PADDING_FIELD - p
        zeros = self.read_payload(zeros_from, p)
        for i, b in enumerate(zeros):
            if b:
                raise KuvertError("MalformedPayload", "padding byte not zero",
                                  offset=zeros_from + i)
        return zeros_from - self.start

    # §6.2
    def flag(self, g: int) -> int:
        if g == self.g_f:
            return FLAG_END_OF_SET
        if self.K >= 1 and (g + 1) % self.K == 0:
            return FLAG_END_OF_VOLUME
        return FLAG_INTERIOR

    # §6.3
    def locate(self, g: int) -> tuple[int, int]:
        if self.K == 0:
            v, i = 1, g
        else:
            v, i = g // self.K + 1, g % self.K
        return v, self.headers[v].H + i * self.C

    def chunk(self, g: int) -> bytes:
        """Plaintext of chunk g (§7.3); raises Unauthenticated."""
        if not 0 <= g <= self.g_f:
            raise IndexError(g)
        if self._cache and self._cache[0] == g:
            return self._cache[1]
        v, off = self.locate(g)
        ln = self.r_f if g == self.g_f else self.C
        pt = aead_open(self._kp, nonce(g, self.flag(g)), self.sources[v].read_at(off, ln))
        if pt is None:
            raise KuvertError("Unauthenticated", chunk=g, volume=v, offset=off)
        self._cache = (g, pt)
        return pt

    def chunks(self):
        for g in range(self.g_f + 1):
            yield self.chunk(g)

    def read_payload(self, o: int, n: int) -> bytes:
        """Bytes [o, o+n) of the payload, clipped at len (§6.3, §7.3)."""
        out = bytearray()
        end = min(self.payload_length, o + n)
        while o < end:
            g, within = divmod(o, self.P)
            pt = self.chunk(g)
            take = pt[within:within + (end - o)]
            out += take
            o += len(take)
        return bytes(out)

    def read(self, o: int, n: int) -> bytes:
        """Bytes [o, o+n) of the content (the payload after its prefix)."""
        if o >= self.length:
            return b""
        return self.read_payload(self.start + o, min(n, self.length - o))

    def read_all(self) -> bytes:
        """The content: every chunk, in order, less the prefix, the manifest
        and the padding."""
        out = bytearray()
        for pt in self.chunks():
            out += pt
        return bytes(out[self.start:self.start + self.length])

    def close(self):
        for s in self.sources.values():
            s.close()


MAX_CANDIDATES = 3


def open_set(volumes, identities=(), passphrase=None,
             caps: Caps = DEFAULT_CAPS, signers=()) -> KuvertSet:
    """§7.2. `volumes`: paths, bytes or Source objects, in input order;
    `signers`: the signer-key blobs required (§7.2 step 4b), if any."""
    # 1.
    if not volumes:
        raise KuvertError("NoVolumes")
    srcs = [_source(x) for x in volumes]
    try:
        return _open_set(srcs, identities, passphrase, caps, signers)
    except BaseException:
        for s, x in zip(srcs, volumes):
            if s is not x:
                s.close()
        raise


def _open_set(srcs: list[Source], identities, passphrase, caps: Caps,
              signers=()) -> KuvertSet:
    hdrs = [read_header(s, i + 1) for i, s in enumerate(srcs)]

    # 2. find the file key
    groups: list[list[int]] = []          # first-member order = input order
    index: dict[bytes, int] = {}
    for i, h in enumerate(hdrs):
        sp = h.set_part
        if sp in index:
            groups[index[sp]].append(i)
        else:
            index[sp] = len(groups)
            groups.append([i])
    counts = [sum(1 for h in hdrs if h.sid == hdrs[g[0]].sid) for g in groups]
    order = sorted(range(len(groups)), key=lambda j: (-counts[j], groups[j][0]))
    fk = None
    ref = None
    first_err = None
    for j in order[:MAX_CANDIDATES]:
        cand = hdrs[groups[j][0]]
        try:
            fk = unlock(cand, identities, passphrase, caps)
            ref = cand
            break
        except KuvertError as e:
            if first_err is None:
                first_err = e
    if fk is None:
        raise first_err

    # 3. check every header, in input order
    for i, h in enumerate(hdrs):
        if h.sid != ref.sid:
            raise KuvertError("ForeignVolume", input=i + 1, volume=h.v)
        if not header_mac_ok(h, fk):
            raise KuvertError("HeaderDamaged", "header MAC does not verify", volume=h.v)
        if h.set_part != ref.set_part:
            raise KuvertError("HeaderDamaged", "set part differs", volume=h.v)
    K, C = ref.K, ref.C

    # 4. order
    entries = sorted((h.v, i + 1) for i, h in enumerate(hdrs))
    m = len(entries)
    for j in range(1, m):
        (va, ia), (vb, ib) = entries[j - 1], entries[j]
        if va == vb:
            raise KuvertError("DuplicateVolume", volume=va, first=ia, second=ib)
        if va != j:
            raise KuvertError("VolumeMissing", volume=j)
    if entries[m - 1][0] != m:
        raise KuvertError("VolumeMissing", volume=m)
    by_v = {v: i - 1 for v, i in entries}
    headers = {v: hdrs[i] for v, i in by_v.items()}
    # 4a. §13.3: each volume's trailer, in volume order; E stands for its length.
    sources = {v: with_trailer(srcs[i], hdrs[i], v) for v, i in by_v.items()}
    # 4b. with required signers, every volume's signatures, in volume order.
    if signers:
        for v, i in by_v.items():
            t = read_trailer(srcs[i], hdrs[i], v) if hdrs[i].trailers else None
            check_signatures(srcs[i], hdrs[i], t, list(signers), "last" if v == m else "not-last", v)

    # 5. full volumes
    for v in range(1, m):
        full = headers[v].H + K * C
        n = sources[v].length
        if n < full:
            raise KuvertError("Truncated", volume=v, length=n)
        if n > full:
            raise KuvertError("TrailingData", volume=v, offset=full)

    # 6. final chunk
    kp = payload_key(fk, ref.sid)   # §5.2: only after the MACs verified
    kind, g, r, _k, _off = _classify_last(sources[m], headers[m], m, K, C, kp)
    if kind == "end-of-volume":
        raise KuvertError("VolumeMissing", "last volume ends with an end-of-volume chunk",
                          volume=m + 1)
    return KuvertSet(ref, headers, sources, kp, g, r)


# ---------------------------------------------------------------------------
# §7.4 verifying a single volume, §7.5 inspecting
# ---------------------------------------------------------------------------

@dataclass
class VolumeReport:
    v: int
    sid: bytes
    chunks: int
    plaintext: int
    last: bool


def verify_volume(volume, identities=(), passphrase=None,
                  caps: Caps = DEFAULT_CAPS) -> VolumeReport:
    """§7.4."""
    src = _source(volume)
    try:
        return _verify_volume(src, identities, passphrase, caps)
    finally:
        if src is not volume:
            src.close()


def _verify_volume(src: Source, identities, passphrase, caps: Caps) -> VolumeReport:
    h = read_header(src, 1)                                # 1.
    fk = unlock(h, identities, passphrase, caps)
    src = with_trailer(src, h, h.v)                        # §13.3
    kp = payload_key(fk, h.sid)                            # 2.
    K, C, v = h.K, h.C, h.v
    kind, g, r, k, _off = _classify_last(src, h, v, K, C, kp)  # 2., 3.
    for j in range(k - 1):                                 # 4.
        gj = (v - 1) * K + j
        off = h.H + j * C
        if aead_open(kp, nonce(gj, FLAG_INTERIOR), src.read_at(off, C)) is None:
            raise KuvertError("Unauthenticated", chunk=gj, volume=v, offset=off)
    return VolumeReport(v=v, sid=h.sid, chunks=k, plaintext=(k - 1) * (C - TAG) + r - TAG,
                        last=(kind == "end-of-set"))


def inspect(volume, inp: int = 1) -> dict:
    """§7.5: unauthenticated facts from §7.1 alone."""
    src = _source(volume)
    h = read_header(src, inp)
    full = h.K >= 1 and src.length == h.H + h.K * h.C
    types = h.stanza_types
    return {
        "version": h.version, "sid": h.sid.hex(), "volume": h.v,
        "chunk_size": h.C, "chunks_per_volume": h.K, "stanza_types": types,
        "header_length": h.L, "padded_header_length": h.H,
        "volume_length": src.length, "full": full,
        "argon2id_mixed": "argon2id" in types and len(types) > 1,
    }


# ---------------------------------------------------------------------------
# §12 archive payload
# ---------------------------------------------------------------------------

KIND_NAMES = {0: "file", 1: "directory", 2: "symlink", 3: "hardlink"}


@dataclass
class Entry:
    kind: int
    mode: int
    mtime: int
    size: int
    header_offset: int
    data_offset: int
    path: str
    link: str
    index_offset: int   # payload offset of this entry in the index

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind]


@dataclass
class Archive:
    index_offset: int
    index_length: int
    entries: list[Entry]

    @property
    def tar_length(self) -> int:
        return self.index_offset


def _ma(offset: int, reason: str) -> KuvertError:
    return KuvertError("MalformedArchive", reason, offset=offset)


def parse_trailer(length: int, trailer: bytes) -> tuple[int, int]:
    """§12.1, on an archive's content of `length` bytes: (index offset,
    index length) or raise. Offsets are content offsets."""
    if length < MIN_ARCHIVE_LEN:
        raise _ma(0, "archive shorter than an index count and its trailer")
    if trailer[16:31] != TRAILER_MAGIC[:15]:
        raise _ma(length - 16, "archive does not end in the trailer magic")
    if trailer[31] != TRAILER_MAGIC[15]:
        raise _ma(length - 1, "archive layout version is not 1")
    ioff, ilen = struct.unpack(">QQ", trailer[:16])
    if ioff + ilen != length - TRAILER_LEN:
        raise _ma(length - TRAILER_LEN, "index offset + length != payload length - 32")
    return ioff, ilen


def parse_index(index: bytes, ioff: int) -> list[Entry]:
    """§12.2, with every rejection it lists. Offsets named are payload offsets."""
    ilen = len(index)
    if ilen < 8:
        raise _ma(ioff, "index shorter than its count field")
    count = struct.unpack(">Q", index[:8])[0]
    if count * INDEX_ENTRY_MIN > ilen:   # count > ilen / 45
        raise _ma(ioff, f"count {count} exceeds index length / 45")
    pos = 8
    entries: list[Entry] = []
    prev_end = None
    for _ in range(count):
        at = ioff + pos
        if pos + INDEX_ENTRY_MIN > ilen:
            raise _ma(at, "entry runs past the index")
        kind = index[pos]
        mode, mtime, size, hoff, doff, plen, llen = struct.unpack(
            ">IqQQQII", index[pos + 1:pos + 45])
        if kind > 3:
            raise _ma(at, f"kind {kind} > 3")
        if mode > 0o7777:
            raise _ma(at, "mode has bits above 0o7777")
        if plen > MAX_ENTRY_PATH or llen > MAX_ENTRY_PATH:
            raise _ma(at, "path or link longer than 4096 bytes")
        end = pos + 45 + plen + llen
        if end > ilen:
            raise _ma(at, "entry runs past the index")
        try:
            path = index[pos + 45:pos + 45 + plen].decode("utf-8")
            link = index[pos + 45 + plen:end].decode("utf-8")
        except UnicodeDecodeError:
            raise _ma(at, "path or link is not UTF-8") from None
        if prev_end is not None and hoff < prev_end:
            raise _ma(at, "header offset below the previous entry's data end")
        if doff <= hoff:
            raise _ma(at, "data offset <= header offset")
        if doff + size > ioff:
            raise _ma(at, "data runs past the index offset")
        if kind != 0 and size != 0:
            raise _ma(at, "nonzero size for a non-file")
        if (kind in (2, 3)) != (llen > 0):
            raise _ma(at, "link missing on a link or present on a non-link")
        entries.append(Entry(kind, mode, mtime, size, hoff, doff, path, link, at))
        prev_end = doff + size
        pos = end
    if pos != ilen:
        raise _ma(ioff + pos, "bytes follow the last entry")
    return entries


def read_archive(s: KuvertSet, index_cap: int = DEFAULT_INDEX_CAP) -> Archive | None:
    """§12.1-§12.2 on an opened set: None for a stream payload (§6.7: the
    kind, not the last bytes, decides)."""
    if s.kind != "archive":
        return None
    n = s.length
    tail = s.read(n - TRAILER_LEN, TRAILER_LEN) if n >= MIN_ARCHIVE_LEN else b""
    ioff, ilen = parse_trailer(n, tail)
    if ilen > index_cap:
        raise KuvertError("LimitExceeded", what="archive index length", found=ilen, limit=index_cap)
    return Archive(ioff, ilen, parse_index(s.read(ioff, ilen), ioff))


def read_archive_bytes(payload: bytes, index_cap: int = DEFAULT_INDEX_CAP,
                       kind: str = "archive") -> Archive | None:
    """As read_archive, on content of the given kind held in memory."""
    if kind != "archive":
        return None
    n = len(payload)
    ioff, ilen = parse_trailer(n, payload[n - TRAILER_LEN:] if n >= MIN_ARCHIVE_LEN else b"")
    if ilen > index_cap:
        raise KuvertError("LimitExceeded", what="archive index length", found=ilen, limit=index_cap)
    return Archive(ioff, ilen, parse_index(payload[ioff:ioff + ilen], ioff))


def path_valid(p: str) -> bool:
    """§12.3."""
    b = p.encode("utf-8")
    if not b or len(b) > MAX_ENTRY_PATH or p.startswith("/"):
        return False
    if "\x00" in p or "\\" in p:
        return False
    return all(c not in ("", ".", "..") for c in p.split("/"))


def check_extractable(entries: list[Entry]) -> None:
    """§12.4 refusals (UnsafeEntry), checked before anything is written."""
    seen: set[str] = set()
    seen_lower: set[str] = set()
    symlinks: list[str] = []
    files: set[str] = set()
    for e in entries:
        if not path_valid(e.path):
            raise KuvertError("UnsafeEntry", "invalid path", path=e.path)
        if e.path in seen or e.path.lower() in seen_lower:
            raise KuvertError("UnsafeEntry", "duplicate path", path=e.path)
        for l in symlinks:
            if e.path.startswith(l + "/"):
                raise KuvertError("UnsafeEntry", "path runs through a symlink", path=e.path)
        if e.kind == 2:
            t = e.link
            if t.startswith("/") or "\\" in t:
                raise KuvertError("UnsafeEntry", "symlink target absolute or has \\", path=e.path)
            depth = len(e.path.split("/")) - 1
            for comp in t.split("/"):
                if comp in ("", "."):
                    continue
                if comp == "..":
                    depth -= 1
                    if depth < 0:
                        raise KuvertError("UnsafeEntry", "symlink climbs above the destination",
                                          path=e.path)
                else:
                    depth += 1
            symlinks.append(e.path)
        seen.add(e.path)
        seen_lower.add(e.path.lower())
        if e.kind == 0:
            files.add(e.path)
    for e in entries:
        if e.kind == 3 and e.link not in files:
            raise KuvertError("UnsafeEntry", "hard link target is not a file entry", path=e.path)


def format_entry(e: Entry) -> str:
    link = f" -> {e.link}" if e.kind == 2 else (f" link to {e.link}" if e.kind == 3 else "")
    return (f"{e.kind_name:9} {e.mode:04o} mtime={e.mtime} size={e.size} "
            f"header@{e.header_offset} data@{e.data_offset} {e.path}{link}")


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def _keys(args) -> tuple[list[bytes], bytes | None]:
    ids = [parse_identity(s) for s in args.identity or []]
    for f in args.identity_file or []:
        with open(f, encoding="utf-8") as fh:
            ids += parse_identity_file(fh.read())
    pw = None
    if args.passphrase is not None:
        pw = args.passphrase.encode("utf-8")
    elif args.passphrase_file:
        with open(args.passphrase_file, "rb") as fh:
            pw = fh.read().rstrip(b"\r\n")
    return ids, pw


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="independent kuvert v1 decoder (SPEC.md only)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("open", "verify", "list", "inspect"):
        p = sub.add_parser(name)
        if name != "inspect":
            p.add_argument("-i", "--identity", action="append", help="identity string")
            p.add_argument("-I", "--identity-file", action="append", help="identity file (§4.5)")
            p.add_argument("-p", "--passphrase")
            p.add_argument("-P", "--passphrase-file")
        if name == "open":
            p.add_argument("-o", "--output", help="write the payload here (default stdout)")
        p.add_argument("volumes", nargs="+")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "inspect":
            for i, v in enumerate(args.volumes, 1):
                for k, val in inspect(v, i).items():
                    print(f"{k}: {val}")
            return 0
        ids, pw = _keys(args)
        if args.cmd == "verify":
            if len(args.volumes) != 1:
                ap.error("verify takes one volume")
            rep = verify_volume(args.volumes[0], ids, pw)
            print(f"volume {rep.v} of set {rep.sid.hex()}: {rep.chunks} chunks, "
                  f"{rep.plaintext} plaintext bytes, {'last' if rep.last else 'not last'}")
            return 0
        s = open_set(args.volumes, ids, pw)
        if args.cmd == "list":
            arc = read_archive(s)
            if arc is None:
                print(f"stream, {s.length} bytes")
            else:
                for e in arc.entries:
                    print(format_entry(e))
            return 0
        out = open(args.output, "wb") if args.output else sys.stdout.buffer
        written = 0
        try:
            for g, pt in enumerate(s.chunks()):
                pt = pt[s.start:] if g == 0 else pt      # the content only
                out.write(pt)
                written += len(pt)
        except KuvertError:
            sys.stderr.write(f"kuvert_decode: only the first {written} bytes were written "
                             "and authenticated\n")
            raise
        finally:
            if args.output:
                out.close()
        return 0
    except KuvertError as e:
        sys.stderr.write(f"kuvert_decode: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
