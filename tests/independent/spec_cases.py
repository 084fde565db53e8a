#!/usr/bin/env python3
"""Cases built from SPEC.md alone, beyond the shipped vectors.

A small encoder written from §3-§6 seals synthetic sets; each case then
states the outcome SPEC.md prescribes (mostly the §7.6 table with its exact
offsets) and checks kuvert_decode against it. `run_all()` yields
(name, ok, detail) and is called by check_vectors.py.

These cases test the independent decoder against the spec text. They do not
involve the reference implementation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import struct
import tarfile

import kuvert_decode as kd
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

# ---------------------------------------------------------------------------
# RFC 7748 X25519 in pure Python, to check the library's u handling
# (top bit masked, non-canonical u reduced) that §1.2 and §4.2 rely on.
# ---------------------------------------------------------------------------

P = 2**255 - 19
A24 = 121665


def _clamp(k: bytes) -> int:
    b = bytearray(k)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return int.from_bytes(b, "little")


def x25519_ref(k: bytes, u: bytes) -> bytes:
    kk = _clamp(k)
    x1 = (int.from_bytes(u, "little") & ((1 << 255) - 1)) % P
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        kt = (kk >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + A24 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


# ---------------------------------------------------------------------------
# A deterministic encoder from §3-§6
# ---------------------------------------------------------------------------

class Rng:
    def __init__(self, seed: bytes):
        self.seed, self.n = seed, 0

    def bytes(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hmac.new(self.seed, struct.pack(">Q", self.n), hashlib.sha256).digest()
            self.n += 1
        return out[:n]


def data(n: int) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(n))


def wrap(wk: bytes, fk: bytes) -> bytes:
    return ChaCha20Poly1305(wk).encrypt(bytes(12), fk, b"")


def b64(raw: bytes) -> bytes:
    """Unpadded base64 (§1.2), as stanza arguments carry it."""
    return base64.b64encode(raw).rstrip(b"=")


def x_stanza(rng: Rng, fk: bytes, R: bytes) -> tuple[bytes, bytes]:
    """An X25519 stanza (§4.2): its line (type and share) and its body."""
    e = rng.bytes(32)
    E = kd.x25519_base(e)
    S = kd.x25519(e, R)
    wk = kd.hkdf(S, E + R, kd.LABEL_X25519)
    return b"X25519 " + b64(E), wrap(wk, fk)


def a_stanza(rng: Rng, fk: bytes, pw: bytes, m=64, t=1, p=1, tamper_w=False):
    salt = rng.bytes(16)
    A = kd._argon2id(pw, salt, m, t, p)
    wk = kd.hkdf(A, salt, kd.LABEL_A2_WRAP)
    gamma = kd.hkdf(A, salt, kd.LABEL_A2_COMMIT)
    W = bytearray(wrap(wk, fk))
    if tamper_w:
        W[0] ^= 1
    return b"argon2id", salt + struct.pack(">III", m, t, p) + gamma + bytes(W)


def stanza_bytes(line: bytes, body: bytes) -> bytes:
    """§3.2: a stanza from its line (arguments separated by single spaces,
    the type first) and its body."""
    args = line.split(b" ")
    out = bytes([len(args)])
    for arg in args:
        out += struct.pack(">H", len(arg)) + arg
    return out + struct.pack(">H", len(body)) + body


def set_part(sid: bytes, c: int, K: int, stanzas) -> bytes:
    sp = struct.pack(">H", 0) + sid + bytes([c]) + struct.pack(">QB", K, len(stanzas))
    for line, body in stanzas:
        sp += stanza_bytes(line, body)
    return sp


def header(fk: bytes, sid: bytes, sp: bytes, v: int, ext: bytes = b"") -> bytes:
    L = 14 + len(sp) + 8 + len(ext) + 32
    mi = kd.MAGIC + struct.pack(">HI", 2, L) + sp + struct.pack(">IHH", v, 0, len(ext)) + ext
    mac = kd.hmac_sha256(kd.hkdf(fk, sid, kd.LABEL_HEADER), mi)
    H = -(-L // 2048) * 2048
    return mi + mac + bytes(H - L)


STREAM = b"\x00\x00\x00\x00"    # §6.7: kind 0x00, flags 0, records length 0
ARCHIVE = b"\x01\x00\x00\x00"


def seal(content: bytes, stanzas_fn, K=0, c=12, seed=b"seed", flags=None,
         extra=(), ext=None, fk=None, sid=None, prefix=STREAM):
    """Returns (volumes, fk, sid). The payload is `prefix` ‖ `content`
    (§6.7; prefix=b"" seals `content` as the whole payload). `flags`
    overrides chunk flags by g, `extra` appends chunk plaintexts (so the
    payload rule can be broken), `ext(v)` gives volume v's extension area."""
    payload = prefix + content
    rng = Rng(seed)
    fk = fk or rng.bytes(16)
    sid = sid or rng.bytes(32)
    C = 1 << c
    Pl = C - 16
    sp = set_part(sid, c, K, stanzas_fn(rng, fk))
    chunks = [payload[i:i + Pl] for i in range(0, len(payload), Pl)] or [b""]
    chunks += list(extra)
    gf = len(chunks) - 1
    kp = kd.payload_key(fk, sid)
    vols: dict[int, bytearray] = {}
    for g, pt in enumerate(chunks):
        f = 1 if g == gf else (2 if K and (g + 1) % K == 0 else 0)
        if flags and g in flags:
            f = flags[g]
        v = g // K + 1 if K else 1
        if v not in vols:
            vols[v] = bytearray(header(fk, sid, sp, v, ext(v) if ext else b""))
        vols[v] += ChaCha20Poly1305(kp).encrypt(kd.nonce(g, f), pt, b"")
    return [bytes(vols[v]) for v in sorted(vols)], fk, sid


ID_A = bytes([0x11]) * 32
ID_B = bytes([0x22]) * 32
R_A = kd.x25519_base(ID_A)
R_B = kd.x25519_base(ID_B)


def to(*rs):
    return lambda rng, fk: [x_stanza(rng, fk, r) for r in rs]


def expect_error(fn, variant, **fields):
    try:
        res = fn()
        if isinstance(res, kd.KuvertSet):
            res.read_all()
    except kd.KuvertError as e:
        got = {k: (",".join(v) if isinstance(v, list) else v) for k, v in e.fields.items()}
        want = {k: (",".join(v) if isinstance(v, list) else v) for k, v in fields.items()}
        if e.variant == variant and got == want:
            return True, e.render()
        return False, f"expected {variant} {want}, got {e}"
    return False, f"expected {variant} {fields}, got success"


def expect_ok(fn, payload=None):
    try:
        res = fn()
        if isinstance(res, kd.KuvertSet):
            got = res.read_all()
            if payload is not None and got != payload:
                return False, "plaintext differs"
            return True, f"opens, {len(got)} bytes"
        return True, repr(res)
    except kd.KuvertError as e:
        return False, f"expected success, got {e}"


def MH(off, inp=1):
    return dict(input=inp, offset=off)


# ---------------------------------------------------------------------------
# Header rows (§7.1, §7.6 H1-H26)
# ---------------------------------------------------------------------------

def patched(vol: bytes, off: int, new: bytes) -> bytes:
    return vol[:off] + new + vol[off + len(new):]


def build_raw(sp: bytes, v=1, vflags=0, ext=b"", tail=b"", L=None, pad_to=2048,
              version=2) -> bytes:
    """A header with an arbitrary (wrong) MAC for parse-level rows."""
    body = sp + struct.pack(">IHH", v, vflags, len(ext)) + ext + bytes(32) + tail
    L = 14 + len(body) if L is None else L
    raw = kd.MAGIC + struct.pack(">HI", version, L) + body
    return raw + bytes(max(0, pad_to - len(raw))) + bytes(100)


def header_rows():
    rng = Rng(b"hdr")
    fk, sid = rng.bytes(16), rng.bytes(32)
    xs = x_stanza(rng, fk, R_A)
    sp1 = set_part(sid, 12, 0, [xs])            # one X25519 (88 bytes): S = 146
    base = seal(data(100), to(R_A))[0][0]
    rows = []

    def row(name, vol, variant, **f):
        rows.append((name, lambda vol=vol: kd.read_header(vol), variant, f))

    row("H1 7 bytes", base[:7], "NotKuvert", input=1)
    row("H1 bad magic byte 7", patched(base, 7, b"\x0b"), "NotKuvert", input=1)
    row("H2 ends at 9", base[:9], "MalformedHeader", **MH(8))
    row("H2 ends at 12", base[:12], "MalformedHeader", **MH(10))
    row("H3 version 3 at 10 bytes", patched(base, 8, b"\x00\x03")[:10],
        "UnsupportedVersion", input=1, version=3)
    row("H3 version 0", patched(base, 8, b"\x00\x00"), "UnsupportedVersion", input=1, version=0)
    row("H3 version 1 (unreleased, §11)", patched(base, 8, b"\x00\x01"),
        "UnsupportedVersion", input=1, version=1)
    row("H4 L=103", patched(base, 10, struct.pack(">I", 103)), "MalformedHeader", **MH(10))
    big = build_raw(sp1, L=(1 << 20) + 1, pad_to=(1 << 20) + 2048)
    row("H5 L=2^20+1 (volume longer)", big, "MalformedHeader", **MH(10))
    row("H6 L > volume", base[:185], "MalformedHeader", **MH(10))
    row("H7 set flags 0x8000", patched(base, 14, b"\x80\x00"), "MalformedHeader", **MH(14))
    row("H7 before H8", patched(patched(base, 14, b"\x00\x04"), 48, b"\x0b"),
        "MalformedHeader", **MH(14))
    row("H7 SIGNED without TRAILERS", patched(base, 14, b"\x00\x02"), "MalformedHeader", **MH(14))
    row("H8 c=11", patched(base, 48, b"\x0b"), "MalformedHeader", **MH(48))
    row("H8 c=25", patched(base, 48, b"\x19"), "MalformedHeader", **MH(48))
    row("H9 no stanza", patched(base, 57, b"\x00"), "MalformedHeader", **MH(57))
    row("H10 A=0", patched(base, 58, b"\x00"), "MalformedHeader", **MH(58))
    row("H10 empty type", patched(base, 59, b"\x00\x00"), "MalformedHeader", **MH(59))
    row("H10 empty share", patched(base, 67, b"\x00\x00"), "MalformedHeader", **MH(67))
    row("H11 type byte ' '", patched(base, 61, b" "), "MalformedHeader", **MH(61))
    row("H11 type byte 0x7f", patched(base, 66, b"\x7f"), "MalformedHeader", **MH(66))
    row("H11 share byte 0x00", patched(base, 79, b"\x00"), "MalformedHeader", **MH(79))
    # H12: fields running past L (L shortened; bytes beyond are irrelevant)
    for L, off, what in ((104, 69, "share"), (113, 112, "body length"), (120, 114, "body"),
                         (148, 146, "v"), (151, 150, "volume flags"), (153, 152, "e"),
                         (170, 154, "MAC")):
        row(f"H12 {what} past L={L}", build_raw(sp1, L=L), "MalformedHeader", **MH(off))
    row("H12 extension area past L", build_raw(sp1, ext=bytes(8), L=161),
        "MalformedHeader", **MH(154))
    # Stanza 1 (type "a", body 40) is 46 bytes, so stanza 2 starts at 104.
    long_type = set_part(sid, 12, 0, [(b"a", bytes(40)), (b"b" * 32, b"")])
    row("H12 type past L", build_raw(long_type, L=110), "MalformedHeader", **MH(107))
    short = set_part(sid, 12, 0, [(b"a", bytes(40)), (b"b", b"")])
    row("H12 A past L", build_raw(short, L=104), "MalformedHeader", **MH(104))
    row("H12 type length past L", build_raw(short, L=105), "MalformedHeader", **MH(105))
    row("H12 B past L", build_raw(short, L=109), "MalformedHeader", **MH(108))
    row("H13 v=0", build_raw(sp1, v=0), "MalformedHeader", **MH(146))
    row("H14 K=0 v=2", build_raw(sp1, v=2), "MalformedHeader", **MH(146))
    spK = set_part(sid, 12, (1 << 64) - 1, [xs])
    row("H15 v*K overflow", build_raw(spK, v=2), "MalformedHeader", **MH(146))
    spK2 = set_part(sid, 12, 1 << 52, [xs])
    row("H15 H+K*C overflow", build_raw(spK2, v=1), "MalformedHeader", **MH(146))
    spK3 = set_part(sid, 12, (1 << 52) - 1, [xs])
    row("H15 boundary ok -> later H16", build_raw(spK3, v=1, vflags=1),
        "MalformedHeader", **MH(150))
    row("H16 volume flags 1", build_raw(sp1, vflags=1), "MalformedHeader", **MH(150))
    row("H17 record head past area", build_raw(sp1, ext=b"\x00\x01\x00"),
        "MalformedHeader", **MH(154))
    row("H17 second record body past area",
        build_raw(sp1, ext=struct.pack(">HH", 1, 1) + b"z" + struct.pack(">HH", 2, 9) + b"abc"),
        "MalformedHeader", **MH(159))
    row("H18 critical record", build_raw(sp1, ext=struct.pack(">HH", 1, 0) + struct.pack(">HH", 0x8001, 0)),
        "MalformedHeader", **MH(158))
    row("H19 byte after MAC", build_raw(sp1, tail=b"\x00"), "MalformedHeader", **MH(186))
    x31 = set_part(sid, 12, 0, [(xs[0], xs[1][:31])])
    row("H20 X25519 body 31", build_raw(x31), "MalformedHeader", **MH(58))
    unk = (b"unknown-type-1", b"\x01" * 40)       # 59 bytes
    x33 = set_part(sid, 12, 0, [unk, xs, (xs[0], xs[1] + b"\x00")])
    row("H20 third stanza body 33", build_raw(x33), "MalformedHeader", **MH(58 + 59 + 88))
    row("H20 after H18 (step 5 first)",
        build_raw(x31, ext=struct.pack(">HH", 0x8000, 0)), "MalformedHeader", **MH(58 + 87 + 8))
    row("H20 X25519 without its share", build_raw(set_part(sid, 12, 0, [(b"X25519", xs[1])])),
        "MalformedHeader", **MH(58))
    row("H20 X25519 with an extra argument",
        build_raw(set_part(sid, 12, 0, [(xs[0] + b" extra", xs[1])])), "MalformedHeader", **MH(58))
    share = xs[0][len(b"X25519 "):]
    last = kd._B64.index(chr(share[-1]))
    for label, bad in (("padded", share + b"="), ("44 characters", share + b"A"),
                       ("42 characters", share[:-1]),
                       ("trailing bits", share[:-1] + kd._B64[last | 1].encode()),
                       ("URL-safe alphabet", b"-" + share[1:] if share[0:1] != b"-" else b"_" + share[1:]),
                       ("33 bytes", b64(bytes(33)))):
        spb = set_part(sid, 12, 0, [(b"X25519 " + bad, xs[1])])
        row(f"H20 X25519 share {label}", build_raw(spb), "MalformedHeader", **MH(58))
    lo = set_part(sid, 12, 0, [xs, (b"X25519 " + b64(bytes(32)), xs[1])])
    row("H21 second stanza E=0", build_raw(lo), "MalformedHeader", **MH(146))
    a1 = a_stanza(rng, fk, b"pw")                 # 105 bytes
    a2 = set_part(sid, 12, 0, [a1, xs, a1])
    row("H22 second argon2id", build_raw(a2), "MalformedHeader", **MH(58 + 105 + 88))
    a91 = set_part(sid, 12, 0, [xs, (b"argon2id", a1[1][:91])])
    row("H23 argon2id body 91", build_raw(a91), "MalformedHeader", **MH(146))
    aarg = set_part(sid, 12, 0, [(b"argon2id salt", a1[1])])
    row("H23 argon2id with an argument", build_raw(aarg), "MalformedHeader", **MH(58))
    for label, m, t, p in (("p=0", 64, 1, 0), ("p=2^24", 1 << 28, 1, 1 << 24), ("t=0", 64, 0, 1),
                           ("m<8p", 31, 1, 4)):
        body = a1[1][:16] + struct.pack(">III", m, t, p) + a1[1][28:]
        spx = set_part(sid, 12, 0, [(b"argon2id", body)])
        row(f"H24 argon2id {label}", build_raw(spx), "MalformedHeader", **MH(58))
    row("H25 volume = header only", base[:186], "MalformedHeader", **MH(186))
    row("H25 volume 2000 bytes", base[:2000], "MalformedHeader", **MH(2000))
    row("H26 padding byte 2047", patched(base, 2047, b"\x01"), "MalformedHeader", **MH(2047))
    row("H26 first of two", patched(patched(base, 2000, b"\x01"), 300, b"\x80"),
        "MalformedHeader", **MH(300))

    out = []
    for name, fn, variant, f in rows:
        out.append((name,) + expect_error(fn, variant, **f))
    # H21: the low-order rule, against a pure-Python ladder (§4.2).
    lows = [0, 1, P - 1, P, P + 1,
            325606250916557431795983626356110631294008115727848805560023387167927233504,
            39382357235489614581723060781553021112529911719440698176882885853963445705823]
    lows += [u + (1 << 255) for u in lows if u + (1 << 255) < 1 << 256]
    probe = b"\x5a" * 32
    bad = []
    for u in lows:
        E = u.to_bytes(32, "little")
        if x25519_ref(probe, E) != bytes(32):
            bad.append(f"{u} not low-order by the ladder")
        spl = set_part(sid, 12, 0, [(b"X25519 " + b64(E), xs[1])])
        ok, detail = expect_error(lambda spl=spl: kd.read_header(build_raw(spl)),
                                  "MalformedHeader", **MH(58))
        if not ok:
            bad.append(f"u={u}: {detail}")
    out.append(("H21 low-order u values (incl. top bit, >= p)", not bad, "; ".join(bad) or
                f"{len(lows)} encodings rejected @58"))
    # The library agrees with RFC 7748 on ordinary and non-canonical u.
    mism = []
    for i in range(24):
        u = bytearray(hashlib.sha256(b"u%d" % i).digest())
        if i % 3 == 0:
            u[31] |= 0x80
        if i % 4 == 0:
            u = bytearray((P + i).to_bytes(32, "little"))
        k = hashlib.sha256(b"k%d" % i).digest()
        if kd.x25519(k, bytes(u)) != x25519_ref(k, bytes(u)):
            mism.append(i)
    out.append(("X25519 library = RFC 7748 ladder (masked, non-canonical u)", not mism,
                f"mismatch at {mism}" if mism else "24 inputs agree"))
    return out


# ---------------------------------------------------------------------------
# Unlock, set, final-chunk and verify rows
# ---------------------------------------------------------------------------

def set_rows():
    out = []

    def add(name, res):
        out.append((name,) + res)

    P4 = 4080
    pay = data(5 * P4 + 77)                       # 6 chunks, K=2: 3 volumes
    vols, fk, sid = seal(pay, to(R_A), K=2)

    # Unlock (§4.4)
    add("U2 passes over cap", expect_error(
        lambda: kd.open_set(seal(b"x", lambda r, f: [(b"argon2id", r.bytes(16) + struct.pack(">III", 64, 9, 1) + bytes(64))])[0],
                            passphrase=b"pw"),
        "LimitExceeded", what="argon2id passes", found=9, limit=8))
    add("U2 m checked before t", expect_error(
        lambda: kd.open_set(seal(b"x", lambda r, f: [(b"argon2id", r.bytes(16) + struct.pack(">III", 3 << 20, 9, 17) + bytes(64))])[0],
                            passphrase=b"pw"),
        "LimitExceeded", what="argon2id memory (KiB)", found=3 << 20, limit=2097152))
    add("U2 lanes over cap", expect_error(
        lambda: kd.open_set(seal(b"x", lambda r, f: [(b"argon2id", r.bytes(16) + struct.pack(">III", 1024, 1, 17) + bytes(64))])[0],
                            passphrase=b"pw"),
        "LimitExceeded", what="argon2id lanes", found=17, limit=16))
    add("U2 caps not checked without a passphrase", expect_error(
        lambda: kd.open_set(seal(b"x", lambda r, f: [(b"argon2id", r.bytes(16) + struct.pack(">III", 1 << 31, 1, 1) + bytes(64))])[0],
                            [ID_A]),
        "NoMatchingKey", stanza_types=["argon2id"]))
    add("U3 commitment ok, W altered", expect_error(
        lambda: kd.open_set(seal(b"x", lambda r, f: [a_stanza(r, f, b"pw", tamper_w=True)])[0],
                            passphrase=b"pw"), "HeaderDamaged", volume=1))
    add("U3 reports the header's v", expect_error(
        lambda: kd.open_set(seal(data(3 * P4), lambda r, f: [a_stanza(r, f, b"pw", tamper_w=True)], K=1)[0][2:],
                            passphrase=b"pw"), "HeaderDamaged", volume=3))
    add("U5 wrong passphrase, x25519 stanza after it opens", expect_ok(
        lambda: kd.open_set(seal(b"abc", lambda r, f: [a_stanza(r, f, b"pw"), x_stanza(r, f, R_A)])[0],
                            [ID_A], b"nope"), b"abc"))
    add("U5 wrong passphrase, no identity", expect_error(
        lambda: kd.open_set(seal(b"abc", lambda r, f: [a_stanza(r, f, b"pw"), x_stanza(r, f, R_A)])[0],
                            [ID_B], b"nope"), "WrongPassphrase"))
    add("U6 types listed in header order, unknown included", expect_error(
        lambda: kd.open_set(seal(b"abc", lambda r, f: [x_stanza(r, f, R_A), (b"unknown-type-1", b"\x00" * 9),
                                                        a_stanza(r, f, b"pw")])[0], [ID_B]),
        "NoMatchingKey", stanza_types=["X25519", "unknown-type-1", "argon2id"]))
    add("unknown stanza first is skipped", expect_ok(
        lambda: kd.open_set(seal(b"abc", lambda r, f: [(b"zz.-_9", b""), x_stanza(r, f, R_A)])[0], [ID_A]),
        b"abc"))
    add("UTF-8 passphrase, p=16 m=128", expect_ok(
        lambda: kd.open_set(seal(b"abc", lambda r, f: [a_stanza(r, f, "pässwörd".encode(), m=128, t=1, p=16)])[0],
                            passphrase="pässwörd"), b"abc"))
    add("identities tried in caller order; second matches", expect_ok(
        lambda: kd.open_set(vols, [ID_B, ID_A]), pay))
    # U4: first stanza yields a different FK -> MAC fails -> stop, even though stanza 2 is good
    other_fk = Rng(b"other").bytes(16)
    add("U4 MAC fails under stanza 1, stanza 2 not tried", expect_error(
        lambda: kd.open_set(seal(b"abc", lambda r, f: [x_stanza(r, other_fk, R_A), x_stanza(r, f, R_B)])[0],
                            [ID_A, ID_B]), "HeaderDamaged", volume=1))

    # Set (§7.2)
    add("open in shuffled input order", expect_ok(lambda: kd.open_set([vols[2], vols[0], vols[1]], [ID_A]), pay))
    add("U1 no volumes", expect_error(lambda: kd.open_set([], [ID_A]), "NoVolumes"))
    add("§7.1 runs on every input first", expect_error(
        lambda: kd.open_set([vols[0], vols[1][:5]], [ID_B]), "NotKuvert", input=2))
    mac_bad = patched(vols[1], 185, bytes([vols[1][185] ^ 1]))
    add("S2 volume 2 MAC", expect_error(lambda: kd.open_set([vols[0], mac_bad, vols[2]], [ID_A]),
                                        "HeaderDamaged", volume=2))
    # S3: volume 2 re-sealed with another stanza (same FK and SID, valid MAC)
    vols_alt, _, _ = seal(pay, to(R_A), K=2, seed=b"alt", fk=fk, sid=sid)
    add("S3 set part differs, MAC valid", expect_error(
        lambda: kd.open_set([vols[0], vols_alt[1], vols[2]], [ID_A]), "HeaderDamaged", volume=2))
    # Groups of one set all count the same (the count is by SID, not group
    # size), so the first input's set part becomes the reference.
    add("S3 same-SID groups tie: input order decides", expect_error(
        lambda: kd.open_set([vols_alt[0], vols[1], vols[2]], [ID_A]), "HeaderDamaged", volume=2))
    # candidate order by SID count: input 1 is another set for the same key
    other = seal(data(10), to(R_A), seed=b"other")[0]
    add("S1 candidate order by SID count", expect_error(
        lambda: kd.open_set([other[0], vols[0], vols[1], vols[2]], [ID_A]), "ForeignVolume", input=1, volume=1))
    four = [seal(b"q", to(R_B if i < 3 else R_A), seed=b"s%d" % i)[0][0] for i in range(4)]
    add("only 3 candidate groups tried", expect_error(lambda: kd.open_set(four, [ID_A]),
                                                     "NoMatchingKey", stanza_types=["X25519"]))
    add("S4 duplicate v=1", expect_error(lambda: kd.open_set([vols[0], vols[1], vols[0]], [ID_A]),
                                         "DuplicateVolume", volume=1, first=1, second=3))
    add("S5 volume 1 missing", expect_error(lambda: kd.open_set([vols[2], vols[1]], [ID_A]),
                                            "VolumeMissing", volume=1))
    add("S6 volume 1 short", expect_error(lambda: kd.open_set([vols[0][:-1], vols[1], vols[2]], [ID_A]),
                                          "Truncated", volume=1, length=10239))
    add("S8 last volume header only", expect_error(lambda: kd.open_set([vols[0], vols[1], vols[2][:2048]], [ID_A]),
                                                   "Truncated", volume=3, length=2048))
    add("S9 last volume longer than H+K*C", expect_error(
        lambda: kd.open_set([vols[0], vols[1], vols[2] + bytes(8192)], [ID_A]),
        "TrailingData", volume=3, offset=10240))
    # Final chunk (§7.2 step 6)
    add("F1 empty final chunk after data", expect_error(
        lambda: kd.open_set(seal(data(2 * P4 - 4), to(R_A), extra=[b""])[0], [ID_A]),
        "MalformedChunk", chunk=2, volume=1, what="empty final chunk after data"))
    add("F1 also split", expect_error(
        lambda: kd.open_set(seal(data(2 * P4 - 4), to(R_A), K=2, extra=[b""])[0], [ID_A]),
        "MalformedChunk", chunk=2, volume=2, what="empty final chunk after data"))
    add("F2 0x02 before the volume is full", expect_error(
        lambda: kd.open_set(seal(data(P4 + 5), to(R_A), K=3, flags={1: 2})[0], [ID_A]),
        "MalformedChunk", chunk=1, volume=1, what="end-of-volume chunk before the volume is full"))
    add("F2 0x02 on a short chunk at K-1", expect_error(
        lambda: kd.open_set(seal(data(P4 + 5), to(R_A), K=2, flags={1: 2})[0], [ID_A]),
        "MalformedChunk", chunk=1, volume=1, what="end-of-volume chunk before the volume is full"))
    add("F3 0x02 at a full volume end", expect_error(
        lambda: kd.open_set(seal(data(2 * P4 - 4), to(R_A), K=2, flags={1: 2})[0], [ID_A]),
        "VolumeMissing", volume=2))
    add("F5 then S-rule: 0x01 chunk then a full extra chunk", expect_error(
        lambda: kd.open_set([seal(data(2 * P4 - 4), to(R_A))[0][0] + bytes(4096)], [ID_A]),
        "TrailingData", volume=1, offset=2048 + 2 * 4096))
    add("F6 cut 15 bytes into chunk 2", expect_error(
        lambda: kd.open_set([vols[0], vols[1], vols[2][:2048 + 4096 + 15]], [ID_A]),
        "Truncated", volume=3, length=2048 + 4096 + 15))
    add("F6 cut 16 bytes into chunk 5 (a bare tag after data)", expect_error(
        lambda: kd.open_set([vols[0], vols[1], vols[2][:2048 + 4096 + 16]], [ID_A]),
        "Truncated", volume=3, length=2048 + 4096 + 16))
    add("F7 final chunk cut by 1 byte (r >= 16)", expect_error(
        lambda: kd.open_set([vols[0], vols[1], vols[2][:-1]], [ID_A]), "Unauthenticated",
        chunk=5, volume=3, offset=2048 + 4096))
    add("F7 0x01 on interior chunk g=1 of 4", expect_error(
        lambda: kd.open_set(seal(data(3 * P4 + 5), to(R_A), flags={1: 1})[0], [ID_A]),
        "Unauthenticated", chunk=1, volume=1, offset=2048 + 4096))
    # per-volume H (§3.4, §6.3): volume 2 has a 2000-byte optional extension record
    vh, _, _ = seal(pay, to(R_A), K=2, ext=lambda v: (struct.pack(">HH", 9, 1996) + bytes(1996)) if v == 2 else b"")
    add("H per volume (volume 2 has H=4096)", expect_ok(lambda: kd.open_set(vh, [ID_A]), pay))
    add("non-critical extension skipped", expect_ok(
        lambda: kd.open_set(seal(b"hi", to(R_A), ext=lambda v: struct.pack(">HH", 7, 3) + b"abc")[0], [ID_A]),
        b"hi"))
    add("c=24 geometry", expect_ok(lambda: kd.open_set(seal(data(70000), to(R_A), c=24)[0], [ID_A]),
                                   data(70000)))
    many = [bytes([i + 50]) * 32 for i in range(30)]
    add("30 stanzas (H=4096), last identity", expect_ok(
        lambda: kd.open_set(seal(data(100), lambda r, f: [x_stanza(r, f, kd.x25519_base(k)) for k in many])[0],
                            [many[-1]]), data(100)))

    # §7.4 single volumes
    def report(name, v, want):
        try:
            r = kd.verify_volume(v, [ID_A])
            got = (r.v, r.chunks, r.plaintext, r.last)
            out.append((name, got == want, f"(v, chunks, plaintext, last) = {got}"))
        except kd.KuvertError as e:
            out.append((name, False, str(e)))
    report("§7.4 volume 1 of 3", vols[0], (1, 2, 2 * P4, False))
    report("§7.4 volume 3 of 3", vols[2], (3, 2, P4 + 77 + 4, True))
    report("§7.4 empty stream (its prefix alone)", seal(b"", to(R_A))[0][0], (1, 1, 4, True))
    bad_interior = patched(vols[0], 2100, bytes([vols[0][2100] ^ 1]))
    add("§7.4 interior chunk", expect_error(lambda: kd.verify_volume(bad_interior, [ID_A]),
                                            "Unauthenticated", chunk=0, volume=1, offset=2048))
    add("§7.4 step 3 before step 4", expect_error(
        lambda: kd.verify_volume(bad_interior + bytes(5), [ID_A]), "TrailingData", volume=1, offset=10240))
    one = seal(data(3 * P4 - 4), to(R_A))[0][0]
    add("§7.4 trailing after full final (unsplit)", expect_error(
        lambda: kd.verify_volume(patched(one, 2100, b"\xff") + bytes(7), [ID_A]),
        "TrailingData", volume=1, offset=2048 + 3 * 4096))

    # §6.7 payload prefix (§7.2 step 7), all checked when the set is opened
    def raw(payload):
        return seal(payload, to(R_A), prefix=b"")[0]
    add("P1 empty payload (no prefix)", expect_error(
        lambda: kd.open_set(raw(b""), [ID_A]), "MalformedPayload", offset=0))
    add("P1 payload of 3 bytes", expect_error(
        lambda: kd.open_set(raw(b"\x00" * 3), [ID_A]), "MalformedPayload", offset=3))
    add("P2 kind 0x02", expect_error(
        lambda: kd.open_set(raw(b"\x02\x00\x00\x00abc"), [ID_A]), "MalformedPayload", offset=0))
    add("P2 kind 0xff", expect_error(
        lambda: kd.open_set(raw(b"\xff\x00\x00\x00"), [ID_A]), "MalformedPayload", offset=0))
    add("P3 flags 0x80", expect_error(
        lambda: kd.open_set(raw(b"\x01\x80\x00\x00abc"), [ID_A]), "MalformedPayload", offset=1))
    add("P4 records length beyond the payload", expect_error(
        lambda: kd.open_set(raw(b"\x00\x00\x00\x04abc"), [ID_A]), "MalformedPayload", offset=2))
    add("P4 records length above 4076", expect_error(
        lambda: kd.open_set(raw(b"\x00\x00\x0f\xed" + data(5000)), [ID_A]),
        "MalformedPayload", offset=2))
    # §15.1 manifest records, §15.2 padding
    def rec(t, body):
        return struct.pack(">HH", t, len(body)) + body
    def man(flags, records, rest):
        return raw(bytes([0, flags]) + struct.pack(">H", len(records)) + records + rest)
    created = rec(1, struct.pack(">q", 1_764_547_200))
    add("P5 record head past R", expect_error(
        lambda: kd.open_set(raw(b"\x00\x00\x00\x01abc"), [ID_A]), "MalformedPayload", offset=4))
    add("P5 record body past R", expect_error(
        lambda: kd.open_set(man(0, created[:-1], b"abc"), [ID_A]), "MalformedPayload", offset=4))
    add("P6 types not increasing", expect_error(
        lambda: kd.open_set(man(0, rec(2, b"L") + created, b"abc"), [ID_A]),
        "MalformedPayload", offset=9))
    add("P6 a control character in a label", expect_error(
        lambda: kd.open_set(man(0, created + rec(2, b"a\nb"), b"abc"), [ID_A]),
        "MalformedPayload", offset=16))
    add("P6 a C1 control in a note", expect_error(
        lambda: kd.open_set(man(0, rec(3, "\u0085".encode()), b"abc"), [ID_A]),
        "MalformedPayload", offset=4))
    add("P6 a padding record without PADDED", expect_error(
        lambda: kd.open_set(man(0, rec(4, b"\x01"), b"abc"), [ID_A]),
        "MalformedPayload", offset=4))
    add("P7 unknown critical record", expect_error(
        lambda: kd.open_set(man(0, created + rec(0x8009, b""), b"abc"), [ID_A]),
        "MalformedPayload", offset=16))
    add("unknown non-critical record skipped", expect_ok(
        lambda: kd.open_set(man(0, created + rec(0x0009, b"later"), b"abc"), [ID_A]), b"abc"))
    add("P8 padded payload shorter than its padding length", expect_error(
        lambda: kd.open_set(man(1, b"", b"abc"), [ID_A]), "MalformedPayload", offset=7))
    add("P8 padding length past the content's start", expect_error(
        lambda: kd.open_set(man(1, b"", b"abc" + struct.pack(">Q", 4)), [ID_A]),
        "MalformedPayload", offset=7))
    add("P9 nonzero padding byte", expect_error(
        lambda: kd.open_set(man(1, b"", b"abc\x00\x07" + struct.pack(">Q", 2)), [ID_A]),
        "MalformedPayload", offset=8))
    add("padding dropped, split across the last two chunks", expect_ok(
        lambda: kd.open_set(man(1, b"", b"abc" + bytes(P4 - 12) + struct.pack(">Q", P4 - 12)),
                            [ID_A]), b"abc"))
    add("P2 checked before P3 and P4", expect_error(
        lambda: kd.open_set(raw(b"\x07\x01\x01\x01"), [ID_A]), "MalformedPayload", offset=0))
    # Chunk 0 is authenticated before its prefix is looked at: a damaged
    # chunk 0 fails when the set is opened, before any read.
    add("R1 chunk 0 is read at open", expect_error(
        lambda: kd.open_set([patched(vols[0], 2100, bytes([vols[0][2100] ^ 1])), vols[1], vols[2]],
                            [ID_A]),
        "Unauthenticated", chunk=0, volume=1, offset=2048))
    add("kind 0x00: a stream, even ending in an archive trailer", expect_ok(
        lambda: kd.open_set(seal(archive(b"", []), to(R_A))[0], [ID_A]), archive(b"", [])))
    try:
        st = kd.open_set(seal(archive(b"", []), to(R_A))[0], [ID_A])
        arc = kd.read_archive(st)
        out.append(("§12.1 a stream is never read as an archive", arc is None and st.kind == "stream",
                    f"kind {st.kind}, archive {arc}"))
        ar = kd.open_set(seal(archive(b"", []), to(R_A), prefix=ARCHIVE)[0], [ID_A])
        arc = kd.read_archive(ar)
        out.append(("§12.1 kind 0x01 is read as an archive", ar.kind == "archive" and arc is not None
                    and arc.entries == [], f"kind {ar.kind}, archive {arc}"))
    except kd.KuvertError as e:
        out.append(("§12.1 stream and archive kinds", False, str(e)))
    add("§12.1 archive kind without a trailer", expect_error(
        lambda: kd.read_archive(kd.open_set(seal(data(100), to(R_A), prefix=ARCHIVE)[0], [ID_A])),
        "MalformedArchive", offset=100 - 16))
    add("§12.1 archive kind shorter than 40 bytes", expect_error(
        lambda: kd.read_archive(kd.open_set(seal(data(39), to(R_A), prefix=ARCHIVE)[0], [ID_A])),
        "MalformedArchive", offset=0))
    return out


# ---------------------------------------------------------------------------
# Key encodings (§4.5)
# ---------------------------------------------------------------------------

def _b32(hrp: str, data5: list[int], const: int = kd.BECH32_CONST) -> str:
    pm = kd._polymod(kd._hrp_expand(hrp) + data5 + [0] * 6) ^ const
    return hrp + "1" + "".join(kd.BECH32_CHARSET[d] for d in data5 + [(pm >> (5 * (5 - i))) & 31 for i in range(6)])


def key_rows():
    out = []
    r = ID_A
    d5 = kd._to5(r)
    ident = kd.encode_identity(r)
    recip = kd.encode_recipient(R_A)

    def good(name, fn, want):
        try:
            got = fn()
            out.append((name, got == want, "decodes" if got == want else f"decodes to {got!r}"))
        except kd.KuvertError as e:
            out.append((name, False, str(e)))

    def bad(name, fn):
        out.append((name,) + expect_error(fn, "InvalidKey"))

    good("§4.5 identity length 77, recipient 65, age 74/62",
         lambda: (len(ident), len(recip), len(kd.encode_identity(r, True)), len(kd.encode_recipient(R_A, True))),
         (77, 65, 74, 62))
    good("§4.5 surrounding whitespace ignored", lambda: kd.parse_identity(" \t" + ident + "\n "), r)
    good("§4.5 lowercase identity accepted", lambda: kd.parse_identity(ident.lower()), r)
    good("§4.5 AGE-SECRET-KEY-1 accepted", lambda: kd.parse_identity(kd.encode_identity(r, True)), r)
    good("§4.5 uppercase age recipient accepted", lambda: kd.parse_recipient(kd.encode_recipient(R_A, True).upper()), R_A)
    bad("§4.5 mixed case", lambda: kd.parse_identity(ident[:-1] + ident[-1].lower()))
    bad("§4.5 bech32m checksum", lambda: kd.parse_identity(_b32("kuvert-secret-key-", d5, kd.BECH32M_CONST)))
    bad("§4.5 bad checksum", lambda: kd.parse_identity(ident[:-1] + ("Q" if ident[-1] != "Q" else "P")))
    bad("§4.5 recipient where identity expected", lambda: kd.parse_identity(recip))
    bad("§4.5 identity where recipient expected", lambda: kd.parse_recipient(ident))
    bad("§4.5 unknown HRP", lambda: kd.parse_identity(_b32("other-secret-key-", d5)))
    bad("§4.5 nonzero padding bits", lambda: kd.parse_identity(_b32("kuvert-secret-key-", d5[:-1] + [d5[-1] | 1])))
    bad("§4.5 33 bytes", lambda: kd.parse_identity(_b32("kuvert-secret-key-", kd._to5(r + b"\x00"))))
    bad("§4.5 31 bytes", lambda: kd.parse_identity(_b32("kuvert-secret-key-", kd._to5(r[:31]))))
    hi = bytearray(R_A)
    hi[31] |= 0x80
    bad("§4.2 non-canonical recipient (top bit)", lambda: kd.parse_recipient(kd.encode_recipient(bytes(hi))))
    bad("§4.2 non-canonical recipient (u = p + 9)", lambda: kd.parse_recipient(kd.encode_recipient((P + 9).to_bytes(32, "little"))))
    bad("§4.2 low-order recipient", lambda: kd.parse_recipient(kd.encode_recipient(bytes(32))))
    good("§4.5 identity file: CRLF, comments, blank lines",
         lambda: kd.parse_identity_file("# c\r\n\r\n  " + ident + "  \r\n# AGE-SECRET-KEY-1 x\n" + kd.encode_identity(ID_B, True) + "\n"),
         [r, ID_B])
    bad("§4.5 identity file without identity", lambda: kd.parse_identity_file("# only\n\n"))
    bad("§4.5 identity file with a recipient line", lambda: kd.parse_identity_file(ident + "\n" + recip + "\n"))
    good("§4.5 empty recipient file is not an error", lambda: kd.parse_recipient_file("# none\n"), [])
    return out


# ---------------------------------------------------------------------------
# Archive index rows (§12)
# ---------------------------------------------------------------------------

def entry(kind, path, link=b"", size=0, hoff=0, doff=512, mode=0o644, mtime=0):
    p = path.encode() if isinstance(path, str) else path
    l_ = link.encode() if isinstance(link, str) else link
    return (bytes([kind]) + struct.pack(">IqQQQII", mode, mtime, size, hoff, doff, len(p), len(l_)) + p + l_)


def archive(tar: bytes, entries: list[bytes], count=None, extra=b"", ioff=None, ilen=None):
    idx = struct.pack(">Q", len(entries) if count is None else count) + b"".join(entries) + extra
    ioff = len(tar) if ioff is None else ioff
    ilen = len(idx) if ilen is None else ilen
    return tar + idx + struct.pack(">QQ", ioff, ilen) + kd.TRAILER_MAGIC


def archive_rows():
    out = []
    tb = io.BytesIO()
    with tarfile.open(fileobj=tb, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("d")
        ti.type = tarfile.DIRTYPE
        tf.addfile(ti)
        ti = tarfile.TarInfo("d/f")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"abc"))
    tar = tb.getvalue()
    T = len(tar)
    good = [entry(1, "d", hoff=0, doff=512), entry(0, "d/f", size=3, hoff=512, doff=1024)]
    e1 = T + 8 + len(good[0])

    def ok(name, payload, n):
        try:
            a = kd.read_archive_bytes(payload)
            out.append((name, a is not None and len(a.entries) == n, f"{n} entries"))
        except kd.KuvertError as e:
            out.append((name, False, str(e)))

    def bad(name, payload, off, variant="MalformedArchive", **f):
        f = f or dict(offset=off)
        out.append((name,) + expect_error(lambda: kd.read_archive_bytes(payload), variant, **f))

    ok("archive: well formed", archive(tar, good), 2)
    out.append(("archive: a stream is not read, whatever its bytes",
                kd.read_archive_bytes(archive(tar, good), kind="stream") is None, "stream"))
    bad("archive: no trailer magic", data(5000), 5000 - 16)
    bad("archive: magic but 39 bytes", bytes(23) + kd.TRAILER_MAGIC, 0)
    ok("archive: empty index (40 bytes)", struct.pack(">Q", 0) + struct.pack(">QQ", 0, 8) + kd.TRAILER_MAGIC, 0)
    n = len(archive(tar, good))
    bad("archive: offset+length != len-32", archive(tar, good, ioff=T - 1), n - 32)
    bad("archive: count > length/45", archive(tar, good, count=3), T)
    e2 = e1 + len(good[1])
    x3 = entry(1, "xyz", hoff=1536, doff=2048)
    bad("archive: entry head runs past", archive(tar, good + [x3[:44]], count=3), e2)
    bad("archive: entry path runs past", archive(tar, good + [x3[:47]], count=3), e2)
    bad("archive: kind 4", archive(tar, [entry(4, "d")]), T + 8)
    bad("archive: path > 4096", archive(tar, [entry(1, "a" * 4097)]), T + 8)
    bad("archive: link not UTF-8", archive(tar, [entry(2, "s", link=b"\xff")]), T + 8)
    bad("archive: header below previous data end",
        archive(tar, [good[1], entry(1, "e", hoff=1026, doff=1538)]), e1 - len(good[0]) + len(good[1]))
    bad("archive: data offset <= header offset", archive(tar, [entry(1, "d", hoff=512, doff=512)]), T + 8)
    bad("archive: data past index offset", archive(tar, [entry(0, "d", size=T, hoff=0, doff=512)]), T + 8)
    bad("archive: size on a directory", archive(tar, [entry(1, "d", size=1)]), T + 8)
    bad("archive: symlink without link", archive(tar, [entry(2, "d")]), T + 8)
    bad("archive: link on a file", archive(tar, [entry(0, "d", link="x")]), T + 8)
    bad("archive: bytes after last entry", archive(tar, good, extra=b"\x00"), e1 + len(good[1]))
    ilen = 8 + sum(map(len, good))
    out.append(("archive: index over the cap (LimitExceeded)",) + expect_error(
        lambda: kd.read_archive_bytes(archive(tar, good), index_cap=ilen - 1),
        "LimitExceeded", what="archive index length", found=ilen, limit=ilen - 1))
    # §12.4
    for name, es in (("..", [entry(1, "a/../b")]), ("abs", [entry(1, "/a")]),
                     ("case dup", [entry(1, "A"), entry(1, "a", hoff=512, doff=1024)]),
                     ("through symlink", [entry(2, "l", link="d"), entry(0, "l/x", hoff=512, doff=1024)]),
                     ("symlink climbs", [entry(2, "a/l", link="../../x")]),
                     ("hard link to nothing", [entry(3, "h", link="nope")])):
        a = kd.read_archive_bytes(archive(bytes(4096), es))
        out.append((f"§12.4 refuses {name}",) + expect_error(lambda a=a: kd.check_extractable(a.entries),
                                                            "UnsafeEntry", path=a.entries[-1].path))
    a = kd.read_archive_bytes(archive(bytes(4096), [entry(1, "a"), entry(2, "a/l", link="../x", hoff=512, doff=1024)]))
    out.append(("§12.4 symlink a/l -> ../x stays inside",) + expect_ok(lambda: kd.check_extractable(a.entries)))
    return out


# ---------------------------------------------------------------------------
# Robustness: every header byte flipped, every truncation
# ---------------------------------------------------------------------------

def robustness_rows():
    pay = data(3 * 4080 + 9)
    vols, _, _ = seal(pay, to(R_A), K=2)
    crashes, opened = [], []
    for j in range(len(vols)):
        for off in range(0, 2048):
            for bit in (0x01, 0x80):
                m = list(vols)
                m[j] = patched(m[j], off, bytes([m[j][off] ^ bit]))
                try:
                    kd.open_set(m, [ID_A]).read_all()
                    opened.append((j, off, bit))
                except kd.KuvertError:
                    pass
                except Exception as e:  # noqa: BLE001
                    crashes.append((j, off, bit, repr(e)))
    res = [("robustness: every header/padding bit 0/7 flip rejected", not crashes and not opened,
            f"crashes {crashes[:3]} opened {opened[:3]}" if crashes or opened else
            f"{2 * 2048 * len(vols)} mutations rejected")]
    crashes, opened = [], []
    for j in range(len(vols)):
        for n in range(len(vols[j])):
            m = list(vols)
            m[j] = m[j][:n]
            try:
                kd.open_set(m, [ID_A]).read_all()
                opened.append((j, n))
            except kd.KuvertError:
                pass
            except Exception as e:  # noqa: BLE001
                crashes.append((j, n, repr(e)))
    res.append(("robustness: every truncation rejected", not crashes and not opened,
                f"crashes {crashes[:3]} opened {opened[:3]}" if crashes or opened else
                f"{sum(len(v) for v in vols)} truncations rejected"))
    res.append(trailer_sweep())
    return res


def trailer_sweep():
    """§13.3: every byte of the `digests` vector's trailer (the bytes after
    E) flipped in bit 0 and bit 7 is refused by the trailer reader, and the
    volume cut at every sector boundary is refused too."""
    import os
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "..", "vectors", "digests", "v.001.kuv")
    vol = open(path, "rb").read()
    h = kd.read_header(kd.Source(vol), 1)
    E = kd.read_trailer(kd.Source(vol), h, 1).E
    crashes, accepted, tried = [], [], 0
    variants = [patched(vol, off, bytes([vol[off] ^ bit]))
                for off in range(E, len(vol)) for bit in (0x01, 0x80)]
    variants += [vol[:n] for n in range(2048, len(vol), 2048)]
    for m in variants:
        tried += 1
        try:
            kd.read_trailer(kd.Source(m), h, 1)
            accepted.append(tried)
        except kd.KuvertError:
            pass
        except Exception as e:  # noqa: BLE001
            crashes.append(repr(e))
    return ("robustness: every trailer bit 0/7 flip and sector cut rejected",
            not crashes and not accepted,
            f"crashes {crashes[:3]} accepted {accepted[:3]}" if crashes or accepted else
            f"{tried} mutations rejected")


def run_all():
    for group in (header_rows, set_rows, key_rows, archive_rows, robustness_rows):
        yield from group()


if __name__ == "__main__":
    bad = 0
    for name, ok, detail in run_all():
        print(("PASS " if ok else "FAIL ") + name + "  " + detail)
        bad += not ok
    print(f"{bad} failed")
