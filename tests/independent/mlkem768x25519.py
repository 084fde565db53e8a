"""The mlkem768x25519 stanza (SPEC.md §4.6), written from the spec alone.

X-Wing (SHAKE256 key expansion, ML-KEM-768, X25519, the SHA3-256 combiner)
and the RFC 9180 base-mode schedule are written out here with hashlib and
hmac; ML-KEM-768 itself and X25519 come from `cryptography` (ML-KEM needs
cryptography 47 or later, built with OpenSSL 3.5 or later). If ML-KEM is
missing, AVAILABLE is False and WHY_NOT says why: callers skip hybrid cases
with that reason rather than fail.

Run as a script it checks itself against age.md's example key and the CCTV
`hybrid` vector's stanza (known answers in src/keys/testdata/hybrid.txt).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

try:
    from cryptography.hazmat.primitives.asymmetric import mlkem

    mlkem.MLKEM768PrivateKey.from_seed_bytes(bytes(64))
    AVAILABLE = True
    WHY_NOT = ""
except Exception as err:  # ImportError, or UnsupportedAlgorithm from OpenSSL
    AVAILABLE = False
    WHY_NOT = f"ML-KEM-768 is not available in this cryptography build ({err!r})"

STANZA_TYPE = "mlkem768x25519"
INFO = b"age-encryption.org/mlkem768x25519"
ENC_LEN = 1120
ENC_CHARS = 1494
BODY_LEN = 32
PUBLIC_LEN = 1216
SEED_LEN = 32
SUITE_ID = b"HPKE" + bytes([0x64, 0x7A, 0x00, 0x01, 0x00, 0x03])
COMBINER_LABEL = bytes([0x5C, 0x2E, 0x2F, 0x2F, 0x5E, 0x5C])  # "\.//^\"


def b64_canonical(text: str, length: int) -> bytes | None:
    """Canonical unpadded base64 of exactly `length` bytes, else None."""
    if len(text) != (length * 4 + 2) // 3:
        return None
    if not all(c.isascii() and (c.isalnum() or c in "+/") for c in text):
        return None
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except ValueError:
        return None
    # Zero trailing bits: encoding back gives the same text.
    if len(raw) != length or base64.b64encode(raw).decode().rstrip("=") != text:
        return None
    return raw


def _low_order(point: bytes) -> bool:
    """The §4.2 probe: a scalar multiple of 8 sends low-order points to 0."""
    try:
        out = X25519PrivateKey.from_private_bytes(bytes([0x5A] * 32)).exchange(
            X25519PublicKey.from_public_bytes(point)
        )
    except ValueError:  # cryptography refuses the all-zero result
        return True
    return out == bytes(32)


def check(args: list[str], body: bytes) -> bytes | str:
    """The parse-time checks of §4.6, in order: enc, or the reason."""
    if len(args) != 1:
        return "not exactly one argument after the type"
    enc = b64_canonical(args[0], ENC_LEN)
    if enc is None:
        return "enc is not canonical base64 of 1120 bytes"
    if len(body) != BODY_LEN:
        return "body is not 32 bytes"
    if _low_order(enc[1088:]):
        return "the X25519 share of enc is a low-order point"
    return enc


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _labeled_extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + SUITE_ID + label + ikm)


def _labeled_expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + SUITE_ID + label + info, length)


def expand(seed: bytes):
    """(ML-KEM decapsulation key, X25519 secret, recipient bytes)."""
    x = hashlib.shake_256(seed).digest(96)
    dk = mlkem.MLKEM768PrivateKey.from_seed_bytes(x[:64])
    sk_x = X25519PrivateKey.from_private_bytes(x[64:96])
    pk_x = sk_x.public_key().public_bytes_raw()
    ek = dk.public_key().public_bytes_raw()
    return dk, sk_x, ek + pk_x


def recipient(seed: bytes) -> bytes:
    """The 1,216-byte recipient of a 32-byte identity seed."""
    return expand(seed)[2]


def unwrap(seed: bytes, enc: bytes, body: bytes) -> bytes | None:
    """The 16-byte file key, or None if the stanza is not for this seed.
    The stanza passed check()."""
    dk, sk_x, pk = expand(seed)
    pk_x = pk[1184:]
    ct_m, ct_x = enc[:1088], enc[1088:]
    ss_m = dk.decapsulate(ct_m)
    try:
        ss_x = sk_x.exchange(X25519PublicKey.from_public_bytes(ct_x))
    except ValueError:
        return None
    ss = hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + COMBINER_LABEL).digest()
    ctx = (
        b"\x00"
        + _labeled_extract(b"", b"psk_id_hash", b"")
        + _labeled_extract(b"", b"info_hash", INFO)
    )
    secret = _labeled_extract(ss, b"secret", b"")
    key = _labeled_expand(secret, b"key", ctx, 32)
    nonce = _labeled_expand(secret, b"base_nonce", ctx, 12)
    try:
        file_key = ChaCha20Poly1305(key).decrypt(nonce, body, b"")
    except InvalidTag:
        return None
    return file_key if len(file_key) == 16 else None


def _self_test() -> int:
    if not AVAILABLE:
        print(f"mlkem768x25519: skipped: {WHY_NOT}")
        return 0
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import kuvert_decode as kd  # bech32, written by hand there

    known = {}
    path = os.path.join(here, "..", "..", "src", "keys", "testdata", "hybrid.txt")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or ": " not in line:
                continue
            name, value = line.rstrip("\n").split(": ", 1)
            known[name] = value

    def data(text: str, hrp: str) -> bytes:
        """bech32 without the 90-character limit (§4.6), by hand."""
        text = text.lower()
        found, rest = text.rsplit("1", 1)
        assert found == hrp, found
        groups = [kd.BECH32_CHARSET.index(c) for c in rest]
        assert kd._polymod(kd._hrp_expand(found) + groups) == kd.BECH32_CONST
        acc, bits, out = 0, 0, bytearray()
        for g in groups[:-6]:
            acc, bits = (acc << 5) | g, bits + 5
            if bits >= 8:
                bits -= 8
                out.append((acc >> bits) & 0xFF)
        assert bits < 5 and acc & ((1 << bits) - 1) == 0, "padding"
        return bytes(out)

    failures = 0
    seed = data(known["age.md identity"], "age-secret-key-pq-")
    want = data(known["age.md recipient"], "age1pq")
    if len(want) != PUBLIC_LEN or recipient(seed) != want:
        print("FAIL: age.md identity does not derive age.md recipient")
        failures += 1
    seed = data(known["cctv identity"], "age-secret-key-pq-")
    body = base64.b64decode(known["cctv body"] + "=")
    enc = check([known["cctv enc"]], body)
    if isinstance(enc, str):
        print(f"FAIL: CCTV hybrid stanza refused: {enc}")
        failures += 1
    elif unwrap(seed, enc, body) != b"YELLOW SUBMARINE":
        print("FAIL: CCTV hybrid stanza does not open to YELLOW SUBMARINE")
        failures += 1
    else:
        bad = bytearray(enc)
        bad[1088:] = bytes(32)
        refused = check([base64.b64encode(bytes(bad)).decode().rstrip("=")], body)
        if refused != "the X25519 share of enc is a low-order point":
            print(f"FAIL: low-order share not refused: {refused!r}")
            failures += 1
    print(f"mlkem768x25519 self-test: {2 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(_self_test())
