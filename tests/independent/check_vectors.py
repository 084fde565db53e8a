#!/usr/bin/env python3
"""Check tests/vectors/*/ against the independent decoder (kuvert_decode.py).

Written from SPEC.md alone (§10.1 for the `meta` format). For each case it
decodes the volumes as `meta` says and compares:

- `expect: plaintext`: the payload kind (§6.7), the authenticated content
  length, the SHA-256 and the bytes of the `plaintext` file (the content:
  the payload after its prefix, §10); then §7.4 verify_volume on every
  volume, a few random-access reads (§6.3) and the §12.1 archive reading
  for archive payloads. For an
  archive payload it lists the index entries and checks them against the
  TAR part as Python's tarfile module reads it.
- `archive: entries N` / `archive: error ...` (archive-kind cases): the
  decoded content goes through archive_rules.check_archive (the §12 checks,
  written from SPEC.md alone), which must extract everything as N entries or
  refuse with exactly that variant and those fields. Only `entries` cases
  are also listed and checked against tarfile (a refused archive need not
  tile or agree with its tar stream).
- `expect: error ...`: the variant and exactly the fields §10.1 renders.

It also rebuilds the SPEC.md §3.5 worked example from the values printed
there and opens it, and then runs spec_cases.py: synthetic sets from a small
encoder written from the spec, one per §7.6 row and §12 rejection, each with
the outcome SPEC.md prescribes (skip them with --vectors-only).

Prints one line per case and ends with `N passed, M failed`; exits 1 if any
case failed. Usage: python3 tests/independent/check_vectors.py [--vectors-only] [VECTOR_DIR]
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import archive_rules  # noqa: E402
import blake3_tree  # noqa: E402
import kuvert_decode as kd  # noqa: E402

DEFAULT_DIR = os.path.normpath(os.path.join(HERE, "..", "vectors"))

# §10.1 field names. `what` comes last and may hold spaces; splitting at the
# next ` <known field>=` also reads it correctly.
FIELDS = ("input", "volume", "chunk", "offset", "length", "version", "first",
          "second", "found", "limit", "what", "stanza_types", "path", "other", "signer", "signers")
_FIELD_SPLIT = re.compile(r" (?=(?:%s)=)" % "|".join(FIELDS))


def parse_meta(text: str) -> list[tuple[str, str]]:
    """§10.1: `key: value` per line (colon and one space); keys may repeat."""
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        if ": " not in line:
            raise ValueError(f"meta line {n} has no ': ' separator: {line!r}")
        k, v = line.split(": ", 1)
        out.append((k, v))
    return out


def parse_expected_error(s: str) -> tuple[str, dict[str, str]]:
    """`Variant name=value ...` -> (variant, {name: value})."""
    head, _, rest = s.partition(" ")
    fields: dict[str, str] = {}
    if rest:
        for part in _FIELD_SPLIT.split(rest):
            k, eq, v = part.partition("=")
            if not eq or k not in FIELDS:
                raise ValueError(f"cannot parse expected error field {part!r}")
            if k in fields:
                raise ValueError(f"field {k} given twice")
            fields[k] = v
    return head, fields


def check_archive_expectation(content: bytes, want: str) -> str:
    """§10.1 `archive`: run the §12 checks over the whole content (extract
    everything) and compare with `entries N` or `error Variant fields`."""
    got = archive_rules.check_archive(content)
    if want.startswith("entries "):
        n = int(want[len("entries "):])
        check(isinstance(got, archive_rules.Plan),
              f"archive: expected {want}, archive_rules refuses: {got}")
        # Entries extracted: every plan item but the implicit directories
        # (§12.4: no entry names them; they carry no archived mode).
        made = [i for i in got.items if not (i.kind == "dir" and i.mode is None)]
        check(len(made) == n, f"archive: {len(made)} entries extracted, want {n}")
        return f"archive_rules extracts {n} entries ({len(got.items)} plan items)"
    check(want.startswith("error "), f"cannot parse archive {want!r}")
    variant, fields = parse_expected_error(want[len("error "):])
    check(isinstance(got, archive_rules.Refusal),
          f"archive: expected {want[len('error '):]}, archive_rules extracts "
          f"{len(got.items) if isinstance(got, archive_rules.Plan) else got}")
    have = {k: str(v) for k, v in got.fields.items()}
    check(got.variant == variant and have == fields,
          f"archive: expected {variant} {fields}, archive_rules gives {got}")
    return f"archive_rules refuses: {got}"


def keyless_check(paths: list[str]) -> list:
    """§7.7 for each volume: a DigestReport, its first DigestMismatch, or
    the error that stopped the check. An intact volume's root is checked
    against BLAKE3 of [H_v, E) computed directly, and against `b3sum` when
    it is installed."""
    out = []
    for p in paths:
        try:
            r = kd.verify_digests(p)
        except kd.KuvertError as e:
            out.append(e)
            continue
        if r.damaged:
            out.append(r.damaged[0])
            continue
        data = open(p, "rb").read()
        H = kd.read_header(kd.Source(data), 1).H
        region = data[H:r.E]
        check(blake3_tree.blake3(region) == r.root,
              f"{p}: the table's root is not BLAKE3 of the chunk region")
        if shutil.which("b3sum"):
            got = subprocess.run(["b3sum", "--no-names", "-"], input=region,
                                 capture_output=True, check=True).stdout.decode().strip()
            check(got == r.root.hex(), f"{p}: b3sum says {got}, the table {r.root.hex()}")
        out.append(r)
    return out


def signed_check(paths: list[str], signers: list[bytes], expect: str,
                 signed_by: str | None) -> str:
    """§7.7 with trusted signers, of the whole set: each volume's signatures
    and statement (re-encoded from the volume's own bytes and compared),
    SSHSIG by `cryptography`'s Ed25519, h_v, T and R_v by blake3_tree; the
    outcome must be the case's (the keyless check has no MAC step to fail
    first in these cases)."""
    srcs = [kd.Source(open(p, "rb").read()) for p in paths]
    hdrs = [kd.read_header(s, i + 1) for i, s in enumerate(srcs)]
    n = max(h.v for h in hdrs)
    try:
        by = None
        for i, (s, h) in enumerate(zip(srcs, hdrs)):
            t = kd.read_trailer(s, h, i + 1) if h.trailers else None
            place = "last" if h.v == n else "not-last"
            blob = kd.check_signatures(s, h, t, signers, place, i + 1)
            by = by or blob
    except kd.KuvertError as e:
        check(expect.startswith("error "), f"signed check: {e}, but the case opens")
        variant, fields = parse_expected_error(expect[len("error "):])
        got = rendered_fields(e)
        check(e.variant == variant and got == fields,
              f"signed check: expected {variant} {fields}, got {e.variant} {got}")
        return f"; keyless signed check refuses: {e.render()}"
    check(expect == "plaintext", f"signed check passed, expected {expect}")
    check(kd.fingerprint(by) == signed_by, f"signed by {kd.fingerprint(by)}, meta says {signed_by}")
    return f"; signatures verify (signed by {signed_by})"


def rendered_fields(e: kd.KuvertError) -> dict[str, str]:
    return {k: (",".join(v) if isinstance(v, (list, tuple)) else str(v))
            for k, v in e.fields.items()}


class CaseFailure(Exception):
    pass


def check(cond: bool, msg: str):
    if not cond:
        raise CaseFailure(msg)


# ---------------------------------------------------------------------------
# §12 archive against tar
# ---------------------------------------------------------------------------

TAR_KIND = {tarfile.REGTYPE: 0, tarfile.AREGTYPE: 0, tarfile.DIRTYPE: 1,
            tarfile.SYMTYPE: 2, tarfile.LNKTYPE: 3}


def check_archive_against_tar(payload: bytes, arc: kd.Archive) -> list[str]:
    """Index entries vs the TAR part read by tarfile: names, kinds, sizes,
    header and data offsets, modes, mtimes and link targets."""
    tar = payload[:arc.tar_length]
    check(len(tar) % 512 == 0, f"TAR length {len(tar)} is not a multiple of 512")
    check(len(tar) >= 1024 and tar[-1024:] == bytes(1024),
          "TAR does not end with two zero blocks")
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
        members = tf.getmembers()
    check(len(members) == len(arc.entries),
          f"tar has {len(members)} members, index {len(arc.entries)} entries")
    lines = []
    for m, e in zip(members, arc.entries):
        where = f"entry {e.path!r}"
        check(m.name == e.path, f"{where}: tar name {m.name!r}")
        check(TAR_KIND.get(m.type) == e.kind, f"{where}: tar type {m.type!r}, index kind {e.kind}")
        check(m.size == e.size if e.kind == 0 else e.size == 0,
              f"{where}: tar size {m.size}, index size {e.size}")
        check(m.offset == e.header_offset, f"{where}: tar header at {m.offset}, index {e.header_offset}")
        check(m.offset_data == e.data_offset, f"{where}: tar data at {m.offset_data}, index {e.data_offset}")
        check(m.mode & 0o7777 == e.mode, f"{where}: tar mode {m.mode:o}, index {e.mode:o}")
        check(int(m.mtime) == e.mtime, f"{where}: tar mtime {m.mtime}, index {e.mtime}")
        if e.kind in (2, 3):
            check(m.linkname == e.link, f"{where}: tar link {m.linkname!r}, index {e.link!r}")
        if e.kind == 0:
            data = payload[e.data_offset:e.data_offset + e.size]
            check(len(data) == e.size, f"{where}: data past the payload")
        lines.append(kd.format_entry(e))
    kd.check_extractable(arc.entries)   # §12.3/§12.4: the vector is safe to extract
    return lines


# ---------------------------------------------------------------------------
# one vector case
# ---------------------------------------------------------------------------

def run_case(d: str) -> tuple[str, list[str]]:
    """Returns (summary, extra lines); raises CaseFailure."""
    meta = parse_meta(open(os.path.join(d, "meta"), encoding="utf-8").read())
    keys = [k for k, _ in meta]
    one = {k: v for k, v in meta}
    known = {"description", "identity", "passphrase", "volumes", "expect",
             "payload-kind", "plaintext-length", "plaintext-sha256", "archive",
             "manifest-label", "manifest-created", "manifest-note-sha256", "padding",
             "keyless", "signer", "signed-by"}
    check(set(keys) <= known, f"unknown meta keys {sorted(set(keys) - known)}")
    for k in keys:
        check(k in ("identity", "signer") or keys.count(k) == 1, f"meta key {k} repeats")
    check("volumes" in one and "expect" in one, "meta lacks volumes or expect")
    ids = [kd.parse_identity(v) for k, v in meta if k == "identity"]
    pw = one["passphrase"].encode("utf-8") if "passphrase" in one else None
    names = one["volumes"].split(" ")
    paths = [os.path.join(d, n) for n in names]
    expect = one["expect"]
    signers = [kd.parse_signer(v) for k, v in meta if k == "signer"]
    keyless = keyless_check(paths)
    signed_note = signed_check(paths, signers, expect, one.get("signed-by")) if signers else ""

    if one.get("keyless") == "yes":
        # §7.7: the operation is the keyless check of every volume, in order.
        check(expect.startswith("error "), "a keyless case expects an error")
        variant, fields = parse_expected_error(expect[len("error "):])
        errors = [e for e in keyless if isinstance(e, kd.KuvertError)]
        check(errors, f"expected {variant} {fields}, but every volume's digests match")
        e = errors[0]
        got = rendered_fields(e)
        check(e.variant == variant and got == fields,
              f"keyless: expected {variant} {fields}, got {e.variant} {got}")
        return f"keyless: {e.render()}", []
    digests_note = ""
    if expect == "plaintext" and all(isinstance(r, kd.DigestReport) for r in keyless):
        roots = [r.root.hex()[:16] for r in keyless]
        digests_note = f"; keyless digests match, BLAKE3 roots {','.join(roots)}…"
    elif expect == "plaintext":
        bad = [e for e in keyless if isinstance(e, kd.KuvertError) and e.variant != "NoDigests"]
        check(not bad, f"keyless check of an intact set fails: {bad[:1]}")

    if expect == "plaintext":
        want_len = int(one["plaintext-length"])
        want_sha = one["plaintext-sha256"]
        want_kind = one["payload-kind"]
        want = open(os.path.join(d, "plaintext"), "rb").read()
        want_archive = one.get("archive")
        check((want_archive is not None) == (want_kind == "archive"),
              "`archive` must be given exactly for archive-kind cases")
        try:
            s = kd.open_set(paths, ids, pw, signers=signers)
            check(s.kind == want_kind, f"payload kind {s.kind}, want {want_kind}")
            check(s.length == want_len, f"authenticated length {s.length}, want {want_len}")
            got = s.read_all()
        except kd.KuvertError as e:
            raise CaseFailure(f"expected plaintext, got {e}") from None
        check(len(got) == want_len, f"plaintext length {len(got)}, want {want_len}")
        check(hashlib.sha256(got).hexdigest() == want_sha, "plaintext SHA-256 differs")
        check(got == want, "plaintext differs from the `plaintext` file")
        # §15: the manifest and the padding.
        m = s.manifest
        check(m.get("label") == one.get("manifest-label"),
              f"manifest label {m.get('label')!r}, want {one.get('manifest-label')!r}")
        created = m.get("created")
        created = None if created is None else (
            datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"))
        check(created == one.get("manifest-created"),
              f"manifest created {created}, want {one.get('manifest-created')}")
        note = m.get("note")
        note = None if note is None else hashlib.sha256(note.encode("utf-8")).hexdigest()
        check(note == one.get("manifest-note-sha256"), "manifest note SHA-256 differs")
        padding = f"{m.get('padding', 'none')} {s.padding}"
        check(padding == one.get("padding"), f"padding {padding}, want {one.get('padding')}")
        # §6.3 random access: a few reads across chunk boundaries.
        for o in sorted({0, 1, s.P - 3, s.P, 2 * s.P + 7, max(0, want_len - 5)}):
            check(s.read(o, 9) == got[o:o + 9], f"read({o}, 9) differs")
        check(s.read(want_len, 10) == b"", "read at len is not end of data")
        # §7.4 every volume alone.
        total = 0
        for v, p in enumerate(paths, 1):
            rep = kd.verify_volume(p, ids, pw)
            check(rep.last == (rep.v == len(set(paths))),
                  f"verify_volume({names[v - 1]}): last={rep.last} for volume {rep.v}")
            total += rep.plaintext
        # Payload bytes: the content, its prefix and manifest (§6.7), the padding.
        check(total == s.payload_length,
              f"verify_volume plaintext sum {total}, want {s.payload_length}")
        check(s.payload_length == s.start + want_len + (
            kd.PADDING_FIELD + s.padding if "padding" in s.manifest else 0),
              "payload length is not prefix, manifest, content and padding")
        if want_archive is not None and want_archive.startswith("error "):
            # A refused archive: only the §12 checks; the set itself opened.
            s.close()
            return (f"plaintext {want_len} bytes, archive; "
                    f"{check_archive_expectation(got, want_archive)}"), []
        # §12.1: archives by their kind only.
        arc = kd.read_archive(s)
        same = kd.read_archive_bytes(got, kind=s.kind)
        check((arc is None) == (same is None) == (s.kind == "stream"),
              "archive reading differs between reads or from the kind")
        s.close()
        if arc is None:
            return (f"plaintext {want_len} bytes, stream, {s.volumes} volume(s)"
                    f"{digests_note}{signed_note}"), []
        lines = check_archive_against_tar(got, arc)
        rules = check_archive_expectation(got, want_archive)
        return (f"plaintext {want_len} bytes, archive: TAR {arc.tar_length} bytes, "
                f"index {arc.index_length} bytes, {len(arc.entries)} entries match tar; "
                f"{rules}"), lines

    check(expect.startswith("error "), f"cannot parse expect {expect!r}")
    variant, fields = parse_expected_error(expect[len("error "):])
    released = 0
    try:
        s = kd.open_set(paths, ids, pw, signers=signers)
        for pt in s.chunks():
            released += len(pt)
        s.close()
    except kd.KuvertError as e:
        got = rendered_fields(e)
        check(e.variant == variant and got == fields,
              f"expected {variant} {fields}, got {e.variant} {got}"
              + (f" ({e.reason})" if e.reason else ""))
        where = f", after {released} authenticated bytes" if released else ""
        if e.render() != expect[len("error "):]:
            where += " (same fields; the meta line orders them differently)"
        return f"{e.render()}{where}", []
    raise CaseFailure(f"expected {variant} {fields}, but the set opened and read "
                      f"({released} bytes)")


# ---------------------------------------------------------------------------
# SPEC.md §3.5 worked example
# ---------------------------------------------------------------------------

EXAMPLE = dict(
    identity="AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZ9K4CN",
    identity_kuvert="KUVERT-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSTWVX4D",
    r="01" * 32,
    R="a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a209",
    R_kuvert="kuvert15nsf9y4k28p83wth93tf7hafhvfajp45d2mge80ems45gz0c5gys6hqdh4",
    R_age="age15nsf9y4k28p83wth93tf7hafhvfajp45d2mge80ems45gz0c5gys3me64l",
    FK="221b4bf2002e2c2b2353681054427a0b",
    SID="27f450da63c4f0fd762a721e7160da7f32334e1f514cfede45f8d2b4ec72f0cc",
    e="e5fce506de1581ec5c8d332695ac1c5710a56a6fac4c13e34be69bf7cc424ec9",
    E="be2c406cd7ca81ee7182d30d26cf83e981dd377629bdf13514d6334c359f9a54",
    E_base64="vixAbNfKge5xgtMNJs+D6YHdN3YpvfE1FNYzTDWfmlQ",
    Z="7dbd6738f1bdcec6a79d98b2ec07079d99b9e9ebc2ca6371fcf807ba22325668",
    wk="c8af406ba93f86d8553e9e723f7dcc1067b97e7174c79b224fbfab880a41ec7f",
    W="bd9e793f9edbacc4d9c8246fe20967d2b674ab7a853c79d9375ab441135be7ea",
    K_hdr="eaed95f55877d18c5bc1991d72bcb233154cabe44cfdb0bad039e47bccae9488",
    MAC="19c8694a251832670481074a50e340df2ecc114bae6c39da9d03e9258d767161",
    K_payload="3616f73a60bad1808dc78b293fd5b2b2cfbad08ede9c19cbb302516949778cee",
    nonce="000000000000000000000001",
    chunk0="0c0344d5d7b686c2a79d6c14ce8a105a10b98eb4cbe923bdf1",
)

TEXT_FIELDS = ("identity", "identity_kuvert", "R_kuvert", "R_age", "E_base64")


def run_example() -> str:
    x = {k: (bytes.fromhex(v) if k not in TEXT_FIELDS else v) for k, v in EXAMPLE.items()}
    r = kd.parse_identity(x["identity"])
    check(r == x["r"], "identity string does not decode to r")
    check(kd.parse_identity(x["identity_kuvert"]) == r, "kuvert v1 identity does not decode to r")
    check(kd.encode_identity(r, age=True) == x["identity"], "identity does not re-encode")
    R = kd.x25519_base(r)
    check(R == x["R"], "R != X25519(r, BASE)")
    check(kd.parse_recipient(x["R_kuvert"]) == R, "kuvert1... does not decode to R")
    check(kd.parse_recipient(x["R_age"]) == R, "age1... does not decode to R")
    check(kd.encode_recipient(R, age=True) == x["R_age"], "age recipient does not re-encode")
    check(kd.x25519_base(x["e"]) == x["E"], "E != X25519(e, BASE)")
    check(kd.b64_decode_canonical(x["E_base64"]) == x["E"], "the share argument is not E")
    check(kd.x25519(x["e"], R) == x["Z"], "Z != X25519(e, R)")
    check(kd.x25519(r, x["E"]) == x["Z"], "Z != X25519(r, E)")
    check(kd.hkdf(x["Z"], x["E"] + R, kd.LABEL_X25519) == x["wk"], "wrap key differs")
    check(kd.unwrap(x["wk"], x["W"]) == x["FK"], "W does not unwrap to FK")
    check(kd.hkdf(x["FK"], x["SID"], kd.LABEL_HEADER) == x["K_hdr"], "K_hdr differs")
    check(kd.payload_key(x["FK"], x["SID"]) == x["K_payload"], "K_payload differs")
    check(kd.nonce(0, 1) == x["nonce"], "nonce(0, 01) differs")
    # The table of §3.5, byte for byte.
    share = x["E_base64"].encode("ascii")
    stanza = (bytes([2]) + struct.pack(">H", 6) + b"X25519" + struct.pack(">H", len(share))
              + share + struct.pack(">H", len(x["W"])) + x["W"])
    check(len(stanza) == 88, f"stanza is {len(stanza)} bytes, table says 88")
    mac_input = (kd.MAGIC + struct.pack(">HI", 2, 186) + struct.pack(">H", 0) + x["SID"]
                 + bytes([12]) + struct.pack(">Q", 0) + bytes([1]) + stanza
                 + struct.pack(">IHH", 1, 0, 0))
    check(len(mac_input) == 154, f"MAC input is {len(mac_input)} bytes, table says 154")
    check(kd.hmac_sha256(x["K_hdr"], mac_input) == x["MAC"], "MAC differs")
    vol = mac_input + x["MAC"] + bytes(2048 - 186) + x["chunk0"]
    check(len(vol) == 2073, f"volume is {len(vol)} bytes, §3.5 says 2073")
    h = kd.read_header(vol)
    check((h.L, h.H, h.S, h.v, h.K, h.C) == (186, 2048, 146, 1, 0, 4096), "header fields differ")
    s = kd.open_set([vol], [r])
    check(s.read_payload(0, 9) == b"\x00\x00\x00\x00hello", "payload is not prefix + hello")
    data = s.read_all()
    check(s.kind == "stream" and data == b"hello", f"{s.kind} content {data!r}")
    rep = kd.verify_volume(vol, [r])
    check(rep.last and rep.chunks == 1 and rep.plaintext == 9, "verify_volume report differs")
    # §3.5 arithmetic: X25519 + argon2id gives L = 291; n X25519 stanzas L = 98 + 88n.
    check(186 + 1 + 2 + 8 + 2 + 92 == 291, "X25519 + argon2id L")
    check(98 + 88 * 22 <= 2048 < 98 + 88 * 23, "H grows to 4096 at n = 23")
    return "SPEC.md §3.5 values reproduce the 2073-byte volume; a stream of b'hello'"


# ---------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    args = argv[1:]
    vectors_only = "--vectors-only" in args
    args = [a for a in args if a != "--vectors-only"]
    root = args[0] if args else DEFAULT_DIR
    cases = sorted(c for c in os.listdir(root)
                   if os.path.isfile(os.path.join(root, c, "meta")))
    passed = failed = skipped = 0
    width = max([len(c) for c in cases] + [12])
    for c in cases:
        meta_text = open(os.path.join(root, c, "meta"), encoding="utf-8").read()
        if "identity: AGE-SECRET-KEY-PQ-1" in meta_text and not kd.mlkem768x25519.AVAILABLE:
            print(f"SKIP {c:{width}}  {kd.mlkem768x25519.WHY_NOT}")
            skipped += 1
            continue
        try:
            summary, extra = run_case(os.path.join(root, c))
            print(f"PASS {c:{width}}  {summary}")
            for line in extra:
                print(f"       {line}")
            passed += 1
        except CaseFailure as e:
            print(f"FAIL {c:{width}}  {e}")
            failed += 1
        except Exception as e:  # noqa: BLE001 - a crash is a failure too
            print(f"FAIL {c:{width}}  crashed: {e!r}")
            traceback.print_exc(file=sys.stdout)
            failed += 1
    if not cases:
        print(f"FAIL no vector cases found under {root}")
        failed += 1
    counts = [f"{len(cases)} vector cases"]
    name = "spec-3.5"
    try:
        print(f"PASS {name:{width}}  {run_example()}")
        passed += 1
    except Exception as e:  # noqa: BLE001
        print(f"FAIL {name:{width}}  {e!r}")
        failed += 1
    counts.append("the §3.5 example")
    if not vectors_only:
        import spec_cases
        n = 0
        try:
            for cname, ok, detail in spec_cases.run_all():
                n += 1
                print(f"{'PASS' if ok else 'FAIL'} spec: {cname}  {detail}")
                passed += ok
                failed += not ok
        except Exception as e:  # noqa: BLE001
            print(f"FAIL spec cases crashed after {n}: {e!r}")
            traceback.print_exc(file=sys.stdout)
            failed += 1
        counts.append(f"{n} spec cases")
    print("(" + ", ".join(counts) + ")")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
