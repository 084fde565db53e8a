#!/usr/bin/env python3
"""Archive cases for SPEC.md §12.1–§12.8, built from the spec's words.

Written from SPEC.md alone, without reading src/. Each case is an archive
content (TAR ‖ INDEX ‖ TRAILER, §12.1–§12.2) built here byte by byte: pax
`x` headers when needed, ustar headers, data padded to 512, two zero end
blocks, then the index and the trailer. No `tarfile`: the builder must be
able to write exactly the wrong bytes a case needs.

`CASES` is a list of Case(name, content, selection, limits, expect), where
expect is a Refusal (variant and the fields §12 names; the reason text is
never compared) or the Plan.brief() list archive_rules.check_archive must
return. Cases whose expectation rests on a reading of an unclear sentence
are tagged `[reading]` in their name; the readings are listed in
READINGS below and in archive_rules.py (`READING:` comments).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from archive_rules import Limits, Refusal, TRAILER_MAGIC

F, D, S, H = 0, 1, 2, 3
DEFAULT_MODE = {F: 0o644, D: 0o755, S: 0o777, H: 0o644}
MTIME = 1_700_000_000

READINGS = """\
R1  §12.2 table: rows are checked in table order; per entry all rows give
    the same offset, so only count>len/45 (MalformedArchive) before the
    entry bound (LimitExceeded) is visible.
R2  Stage order: trailer, index, selection (EntryNotFound), §12.4 tree pass
    over all selected entries, then one pass over the links (§12.5/§12.6)
    in index order, then §12.8 tar agreement of the selected entries in
    index order, then (full extraction only) the two end blocks.
R3  §12.4 per entry: validity, then per component from the root (alias,
    runs-through), then "names an existing node", then the depth limit,
    then the file-data limit (running total, found = total so far).
R4  NameCollision.other is the existing tree node's path as first spelled
    (a prefix such as "Dir" when a parent component aliases).
R5  A failure met while resolving a nested symlink names the nested link
    (innermost). A loop a->b->a found while checking a names b.
R6  TarMismatch.offset: the header offset for a bad pax header (not a
    ustar `x` block, size not fitting the span, bad record, key not
    allowed); data offset - 512 (the ustar header) for a bad ustar header
    and for every value that disagrees (typeflag, path, link, size, mode),
    even when the value came from a pax record; the first nonzero byte for
    data padding and end blocks.
    End blocks: path = last entry's path ("" if none); checked only when
    everything is extracted.
R7  Selection names match paths byte for byte; a name that selects nothing
    is EntryNotFound{path=name}, first in caller order, before §12.4.
R8  A late directory entry keeps the place of the implicit directory first
    created for it; implicit directories appear where first needed.
"""


@dataclass
class E:
    kind: int
    path: str
    link: str = ""
    data: bytes = b""
    mode: int | None = None
    mtime: int = MTIME
    # tar-side overrides
    t_path: bytes | None = None
    t_link: bytes | None = None
    t_size: int | None = None
    t_mode: int | None = None
    t_type: bytes | None = None
    t_magic: bytes = b"ustar\x00"
    t_version: bytes = b"00"
    t_chk: int = 0
    force_pax: bool = False
    pax_extra: list = field(default_factory=list)   # (key, value bytes)
    pax_body: bytes | None = None
    pax_size: int | None = None
    pax_type: bytes = b"x"
    pax_records: list | None = None                 # replaces the default records
    extra_header_blocks: int = 0                    # zero blocks after the pax body
    pad: bytes | None = None
    t_ustar_name: bytes | None = None               # ustar name under a pax path
    idx: dict = field(default_factory=dict)         # index field overrides

    def __post_init__(self):
        if self.mode is None:
            self.mode = DEFAULT_MODE[self.kind]


def f(path, data=b"x", **kw):
    return E(F, path, data=data, **kw)


def d(path, **kw):
    return E(D, path, **kw)


def s(path, target, **kw):
    return E(S, path, link=target, **kw)


def h(path, target, **kw):
    return E(H, path, link=target, **kw)


# ---------------------------------------------------------------------------
# tar (§12.1, §12.8)
# ---------------------------------------------------------------------------

def _put(h: bytearray, off: int, width: int, val: bytes):
    val = val[:width]
    h[off:off + len(val)] = val


def ustar(name, mode, size, mtime, typeflag, linkname=b"", prefix=b"",
          magic=b"ustar\x00", version=b"00", chk_delta=0) -> bytes:
    hd = bytearray(512)
    _put(hd, 0, 100, name)
    _put(hd, 100, 8, b"%07o\x00" % mode)
    _put(hd, 108, 8, b"0000000\x00")
    _put(hd, 116, 8, b"0000000\x00")
    _put(hd, 124, 12, b"%011o\x00" % size)
    _put(hd, 136, 12, b"%011o\x00" % mtime)
    hd[148:156] = b" " * 8
    _put(hd, 156, 1, typeflag)
    _put(hd, 157, 100, linkname)
    _put(hd, 257, 6, magic)
    _put(hd, 263, 2, version)
    _put(hd, 265, 32, b"root")
    _put(hd, 297, 32, b"root")
    _put(hd, 329, 8, b"0000000\x00")
    _put(hd, 337, 8, b"0000000\x00")
    _put(hd, 345, 155, prefix)
    chk = sum(hd) + chk_delta
    hd[148:156] = b"%06o\x00 " % chk
    return bytes(hd)


def pax_record(k: str, v: bytes) -> bytes:
    body = b" " + k.encode() + b"=" + v + b"\n"
    n = len(body) + len(str(len(body)))
    if len(str(n)) != len(str(n - len(body))):
        n = len(body) + len(str(n))
    return str(n).encode() + body


def split_ustar(p: bytes):
    if len(p) <= 100:
        return b"", p
    for i in range(len(p)):
        if p[i:i + 1] == b"/" and i <= 155 and 0 < len(p) - i - 1 <= 100:
            return p[:i], p[i + 1:]
    return None


def _pad(n: int) -> int:
    return -n % 512


def header_blocks(e: E) -> bytes:
    tpath = e.t_path if e.t_path is not None else (
        e.path.encode("utf-8", "surrogatepass") + (b"/" if e.kind == D else b""))
    tlink = e.t_link if e.t_link is not None else e.link.encode("utf-8", "surrogatepass")
    size = e.t_size if e.t_size is not None else len(e.data)
    tmode = e.t_mode if e.t_mode is not None else e.mode
    ttype = e.t_type if e.t_type is not None else {F: b"0", D: b"5", S: b"2", H: b"1"}[e.kind]
    split = split_ustar(tpath)
    big_link = len(tlink) > 100 or not tlink.isascii() or b"\x00" in tlink
    need = (e.force_pax or e.pax_extra or e.pax_body is not None or e.pax_records is not None
            or split is None or not tpath.isascii() or b"\x00" in tpath or big_link
            or e.mtime < 0 or e.mtime >= 8 ** 11)
    out = b""
    if need:
        if e.pax_records is not None:
            recs = list(e.pax_records)
        else:
            recs = [("path", tpath)]
            if big_link:
                recs.append(("linkpath", tlink))
            if e.mtime < 0 or e.mtime >= 8 ** 11:
                recs.append(("mtime", str(e.mtime).encode()))
        recs += e.pax_extra
        body = e.pax_body if e.pax_body is not None else b"".join(pax_record(k, v) for k, v in recs)
        xs = e.pax_size if e.pax_size is not None else len(body)
        out += ustar(b"PaxHeader/entry", 0o644, xs, 0, e.pax_type)
        out += body + bytes(_pad(len(body))) + bytes(512 * e.extra_header_blocks)
        if e.t_ustar_name is not None:
            prefix, name = b"", e.t_ustar_name
        elif split is not None and tpath.isascii() and b"\x00" not in tpath:
            prefix, name = split
        else:
            prefix, name = b"", b"pax-named-entry" + (b"/" if e.kind == D else b"")
        lname = b"" if big_link else tlink
    else:
        prefix, name = split
        lname = tlink
    mt = min(max(e.mtime, 0), 8 ** 11 - 1)
    out += ustar(name, tmode, size, mt, ttype, lname, prefix, e.t_magic, e.t_version, e.t_chk)
    return out


@dataclass
class Built:
    content: bytes
    ioff: int
    ilen: int
    at: list        # content offset of each index entry
    hoff: list
    doff: list
    end: list


def build(entries, end_blocks=bytes(1024), tar_tail=b"", idx_tail=b"", count=None,
          trailer=None, version=1) -> Built:
    tar = bytearray()
    recs, hoffs, doffs, ends = [], [], [], []
    for e in entries:
        hoff = len(tar)
        tar += header_blocks(e)
        doff = len(tar)
        tar += e.data
        padn = _pad(len(e.data))
        tar += e.pad if e.pad is not None else bytes(padn)
        ends.append(len(tar))
        r = dict(kind=e.kind, mode=e.mode, mtime=e.mtime, size=len(e.data), hoff=hoff,
                 doff=doff, path=e.path.encode("utf-8", "surrogatepass"),
                 link=e.link.encode("utf-8", "surrogatepass"))
        r.update(e.idx)
        recs.append(r)
        hoffs.append(hoff)
        doffs.append(doff)
    tar += end_blocks + tar_tail
    ioff = len(tar)
    index = bytearray(struct.pack(">Q", len(recs) if count is None else count))
    at = []
    for r in recs:
        at.append(ioff + len(index))
        index += struct.pack(">BIqQQQII", r["kind"], r["mode"], r["mtime"], r["size"],
                             r["hoff"], r["doff"], r.get("plen", len(r["path"])),
                             r.get("llen", len(r["link"])))
        index += r["path"] + r["link"]
    index += idx_tail
    io, il = (ioff, len(index)) if trailer is None else trailer
    magic = TRAILER_MAGIC[:15] + bytes([version])
    content = bytes(tar) + bytes(index) + struct.pack(">QQ", io % 2 ** 64, il % 2 ** 64) + magic
    return Built(content, ioff, len(index), at, hoffs, doffs, ends)


# ---------------------------------------------------------------------------
# expectations
# ---------------------------------------------------------------------------

def MA(offset):
    return Refusal("MalformedArchive", {"offset": offset})


def LE(found, limit, what):
    return Refusal("LimitExceeded", {"found": found, "limit": limit, "what": what})


def UE(path):
    return Refusal("UnsafeEntry", {"path": path})


def NC(path, other):
    return Refusal("NameCollision", {"path": path, "other": other})


def TM(path, offset):
    return Refusal("TarMismatch", {"path": path, "offset": offset})


def NF(path):
    return Refusal("EntryNotFound", {"path": path})


def pf(path, data=b"x"):
    return ("file", path, data)


def pd(path, mode=None):
    return ("dir", path, mode)


def ps(path, target):
    return ("symlink", path, target)


def ph(path, target):
    return ("hardlink", path, target)


@dataclass
class Case:
    name: str
    content: bytes
    expect: object
    selection: list | None = None
    limits: Limits = Limits()


CASES: list[Case] = []


def case(name, content, expect, selection=None, limits=Limits()):
    if isinstance(content, Built):
        content = content.content
    CASES.append(Case(name, content, expect, selection, limits))


def ents(*es):
    return build(list(es))


# ---------------------------------------------------------------------------
# §12.1 trailer
# ---------------------------------------------------------------------------

good = ents(f("a", b"hello"))
n = len(good.content)
case("12.1 empty content", b"", MA(0))
case("12.1 39 bytes", bytes(39), MA(0))
case("12.1 39 bytes ending in the magic", bytes(23) + TRAILER_MAGIC, MA(0))
# 40 bytes: an 8-byte index at offset 0 holding count 0; last end (0) + 1024
# != index offset 0, so MalformedArchive at the index offset.
case("12.1 40 bytes, empty index at offset 0",
     struct.pack(">Q", 0) + struct.pack(">QQ", 0, 8) + TRAILER_MAGIC, MA(0))
bad = bytearray(good.content)
bad[n - 16] ^= 0x20
case("12.1 magic first byte", bytes(bad), MA(n - 16))
bad = bytearray(good.content)
bad[n - 2] = 1
case("12.1 magic byte 15", bytes(bad), MA(n - 16))
bad[n - 1] = 2
case("12.1 magic and version both bad: magic first", bytes(bad), MA(n - 16))
case("12.1 version 2", build([f("a")], version=2), MA(len(ents(f("a")).content) - 1))
case("12.1 version 0", build([f("a")], version=0), MA(len(ents(f("a")).content) - 1))
case("12.1 index offset + length != len-32",
     build([f("a")], trailer=(good.ioff + 1, good.ilen)), MA(n - 32))
case("12.1 offset + length wraps u64",
     build([f("a", b"hello")], trailer=(2 ** 64 - 1, good.ilen + good.ioff + 1)), MA(n - 32))
case("12.1 index length above the bound", good, LE(good.ilen, good.ilen - 1, "archive index length"),
     limits=Limits(index_length=good.ilen - 1))
case("12.1 index length at the bound", good, [pf("a", b"hello")],
     limits=Limits(index_length=good.ilen))
case("12.1 sum check before index bound",
     build([f("a", b"hello")], trailer=(good.ioff, good.ilen + 1)), MA(n - 32),
     limits=Limits(index_length=1))

# ---------------------------------------------------------------------------
# §12.2 index
# ---------------------------------------------------------------------------

short = bytes(1024) + b"\x00\x00\x00\x00" + struct.pack(">QQ", 1024, 4) + TRAILER_MAGIC
case("12.2 index shorter than its count", short, MA(1024))
case("12.2 empty archive", build([]), [])
case("12.2 empty archive, tar 1536 bytes", build([], end_blocks=bytes(1536)), MA(1536))
case("12.2 empty archive, tar 512 bytes", build([], end_blocks=bytes(512)), MA(512))
b1 = ents(f("a"))
case("12.2 count > index length / 45", build([f("a")], count=2), MA(b1.ioff))
one_short = (bytes(1024) + struct.pack(">Q", 1) + bytes(44)
             + struct.pack(">QQ", 1024, 52) + TRAILER_MAGIC)
case("12.2 count fits /45 but entry runs past", one_short, MA(1024 + 8))
b2 = ents(f("a"), f("b"))
case("12.2 entry bound", b2, LE(2, 1, "archive entries"), limits=Limits(entries=1))
case("12.2 count/45 before entry bound", build([f("a")], count=3), MA(b1.ioff),
     limits=Limits(entries=1))
bb = build([f("a"), f("b", idx={"plen": 11})])
case("12.2 path length runs past the index", bb, MA(bb.at[1]))
bb = build([f("a"), f("b", idx={"kind": 4})])
case("12.2 kind 4", bb, MA(bb.at[1]))
bb = build([f("a", idx={"kind": 255})])
case("12.2 kind 255", bb, MA(bb.at[0]))
bb = build([f("a", mode=0o7777)])
case("12.2 mode 0o7777 ok", bb, [pf("a")])
bb = build([f("a"), f("b", idx={"mode": 0o10000})])
case("12.2 mode 0o10000", bb, MA(bb.at[1]))
long_p = "p" * 4097
bb = build([f(long_p)])
case("12.2 path 4097 bytes", bb, MA(bb.at[0]))
ok_p = "/".join(["q" * 99] * 40) + "/" + "r" * 95    # 4095 bytes
ok_p = ok_p + "r" * (4096 - len(ok_p.encode()))
bb = build([f(ok_p)])
case("12.2 path 4096 bytes ok (pax path)", bb, [pd("/".join(["q" * 99] * i)) for i in range(1, 41)]
     + [pf(ok_p)])
bb = build([s("l", "t" * 4097)])
case("12.2 link 4097 bytes", bb, MA(bb.at[0]))
bb = build([f("a"), f("b", idx={"path": b"\xff"})])
case("12.2 path not UTF-8", bb, MA(bb.at[1]))
bb = build([s("l", "x", idx={"link": b"a\xc3"})])
case("12.2 link not UTF-8", bb, MA(bb.at[0]))
bb = build([f("a", idx={"path": b"\xed\xa0\x80"})])
case("12.2 path is a UTF-8 surrogate", bb, MA(bb.at[0]))
bb = build([f("a", idx={"hoff": 512, "doff": 1024})])
case("12.2 first header offset != 0", bb, MA(bb.at[0]))
bb = build([f("a"), f("b")])
bb = build([f("a"), f("b", idx={"hoff": bb.hoff[1] + 512, "doff": bb.doff[1] + 512})])
case("12.2 header offset != previous end", bb, MA(bb.at[1]))
bb = build([f("a", idx={"doff": 700})])
case("12.2 data - header offset not a multiple of 512", bb, MA(bb.at[0]))
bb = build([f("a", idx={"doff": 0})])
case("12.2 data offset = header offset", bb, MA(bb.at[0]))
bb = build([f("a"), f("b")])
bb = build([f("a"), f("b", idx={"doff": bb.hoff[1] - 512})])
case("12.2 data offset below header offset (underflow)", bb, MA(bb.at[1]))
bb = build([f("a", idx={"doff": 16384 + 512}), f("b", b"y" * 20000)])
case("12.2 header span above 16384", bb, MA(bb.at[0]))
bb = build([f("a", b"x" * 10, idx={"size": 600})])
case("12.2 end + 1024 above index offset", bb, MA(bb.at[0]))
bb = build([f("a", idx={"size": 2 ** 64 - 1})])
case("12.2 huge size (no u64 wrap)", bb, MA(bb.at[0]))
bb = build([d("d", idx={"size": 1})])
case("12.2 size != 0 for a directory", bb, MA(bb.at[0]))
bb = build([f("a"), h("b", "a", idx={"size": 1})])
case("12.2 size != 0 for a hard link", bb, MA(bb.at[1]))
bb = build([s("l", "x", idx={"link": b""})])
case("12.2 symlink without link", bb, MA(bb.at[0]))
bb = build([f("a"), h("b", "a", idx={"link": b""})])
case("12.2 hard link without link", bb, MA(bb.at[1]))
bb = build([f("a", idx={"link": b"z"})])
case("12.2 link on a file", bb, MA(bb.at[0]))
bb = build([d("d", idx={"link": b"z"})])
case("12.2 link on a directory", bb, MA(bb.at[0]))
bb = build([f("a")], idx_tail=b"\x00")
case("12.2 bytes after the last entry", bb, MA(bb.ioff + bb.ilen - 1))
bb = build([f("a")], end_blocks=bytes(1536))
case("12.2 last end + 1024 != index offset", bb, MA(bb.ioff))

# ---------------------------------------------------------------------------
# §12.3 / §12.4 paths and the tree
# ---------------------------------------------------------------------------

for p in ["/abs", "a//b", "a/./b", "a/../b", "..", ".", "./a", "a/..", "a\\b", "a\x00b", "", "a/"]:
    case(f"12.3 invalid path {p!r}", ents(f("ok"), f(p)), UE(p))
case("12.3 directory path with trailing / in the index", ents(d("d/")), UE("d/"))
case("12.3 invalid path inside a valid dir", ents(d("d"), f("d/../x")), UE("d/../x"))

alias_pairs = [
    ("A", "a"), ("ABC", "abc"), ("\u00c4", "A\u0308"), ("\u00c4", "\u00e4"), ("A\u0308", "\u00e4"),
    ("STRASSE", "stra\u00dfe"), ("ss", "\u00df"), ("K", "\u212a"), ("\u00e9", "e\u0301"),
    ("fi", "\ufb01"), ("\u0130", "i\u0307"), ("\u03a3", "\u03c2"), ("\u1e9e", "ss"),
]
for a, b in alias_pairs:
    case(f"12.3 alias {a!r} / {b!r}", ents(f(a), f(b)), NC(b, a))
for a, b in [("I", "\u0131"), ("a", "\u00e1"), ("i", "\u0130"), ("e", "\u00e9")]:
    case(f"12.3 not alias {a!r} / {b!r}", ents(f(a), f(b)), [pf(a), pf(b)])
case("12.4 alias in a parent component [reading]", ents(f("Dir/x"), f("dir/y")), NC("dir/y", "Dir"))
case("12.4 alias of an explicit dir as parent", ents(d("Dir"), f("dir/y")), NC("dir/y", "Dir"))
case("12.4 late dir entry spelled differently", ents(f("d/x"), d("D")), NC("D", "d"))
case("12.4 alias of a deep parent [reading]", ents(f("a/B/c"), f("a/b/d")), NC("a/b/d", "a/B"))
case("12.4 duplicate file", ents(f("f"), f("f")), NC("f", "f"))
case("12.4 duplicate dir", ents(d("d"), d("d")), NC("d", "d"))
case("12.4 dir, contents, dir again", ents(d("d"), f("d/x"), d("d")), NC("d", "d"))
case("12.4 implicit dir then a file of that name", ents(f("d/x"), f("d")), NC("d", "d"))
case("12.4 implicit dir then a symlink of that name", ents(f("d/x"), s("d", "e")), NC("d", "d"))
case("12.4 implicit dir then a hard link of that name", ents(f("a"), f("d/x"), h("d", "a")), NC("d", "d"))
case("12.4 late dir twice", ents(f("d/x"), d("d"), d("d")), NC("d", "d"))
case("12.4 file then dir of that name", ents(f("d"), d("d")), NC("d", "d"))
case("12.4 runs through a file", ents(f("f"), f("f/x")), UE("f/x"))
case("12.4 dir runs through a file", ents(f("f"), d("f/x")), UE("f/x"))
case("12.4 runs through a hard link", ents(f("f"), h("g", "f"), f("g/x")), UE("g/x"))
case("12.4 runs through a symlink", ents(d("d"), s("l", "d"), f("l/x")), UE("l/x"))
case("12.4 runs through a symlink, deep", ents(s("l", "."), f("l/a/b")), UE("l/a/b"))
case("12.4 alias wins over runs-through [reading]", ents(f("f"), f("F/x")), NC("F/x", "f"))
case("12.4 runs-through wins over depth [reading]", ents(f("f"), f("f/a/b/c")), UE("f/a/b/c"),
     limits=Limits(depth=2))
deep = "/".join(["a"] * 257)
case("12.7 path depth 257", ents(f(deep)), LE(257, 256, "archive path depth"))
deep256 = "/".join(["a"] * 256)
case("12.7 path depth 256 ok", ents(f(deep256)),
     [pd("/".join(["a"] * i)) for i in range(1, 256)] + [pf(deep256)])
case("12.7 path depth, caller bound", ents(f("a/b/c/d")), LE(4, 3, "archive path depth"),
     limits=Limits(depth=3))
case("12.7 depth of a directory entry", ents(d("a/b/c/d")), LE(4, 3, "archive path depth"),
     limits=Limits(depth=3))
case("12.7 file data above bound [reading: running total]",
     ents(f("a", b"123456"), f("b", b"123456"), f("c", b"123456")),
     LE(12, 10, "archive file data"), limits=Limits(file_data=10))
case("12.7 file data at bound", ents(f("a", b"12345"), f("b", b"12345")),
     [pf("a", b"12345"), pf("b", b"12345")], limits=Limits(file_data=10))
case("12.7 hard links count nothing", ents(f("a", b"123456"), h("b", "a"), h("c", "a")),
     [pf("a", b"123456"), ph("b", "a"), ph("c", "a")], limits=Limits(file_data=6))
case("12.7 only the selection's data counts", ents(f("a", b"123456"), f("b", b"123456")),
     [pf("b", b"123456")], selection=["b"], limits=Limits(file_data=10))
case("12.7 entries bound counts the index, not the selection", ents(f("a"), f("b")),
     LE(2, 1, "archive entries"), selection=["b"], limits=Limits(entries=1))

# positive trees
case("12.4 missing parent entries", ents(f("a/b/c", b"C"), f("a/b/d", b"D"), f("e", b"E")),
     [pd("a"), pd("a/b"), pf("a/b/c", b"C"), pf("a/b/d", b"D"), pf("e", b"E")])
case("12.4 late directory entry [reading R8]", ents(f("a/b/c", b"C"), d("a", mode=0o700), d("a/b")),
     [pd("a", 0o700), pd("a/b", 0o755), pf("a/b/c", b"C")])
case("12.4 dir entry before contents", ents(d("a", mode=0o750), f("a/x")),
     [pd("a", 0o750), pf("a/x")])
case("12.9 order: dirs+files, hard links, symlinks",
     ents(s("l", "a/b/c"), f("a/b/c", b"C"), h("hl", "a/b/c"), d("a"), f("z", b"Z"), s("m", "z")),
     [pd("a", 0o755), pd("a/b"), pf("a/b/c", b"C"), pf("z", b"Z"), ph("hl", "a/b/c"),
      ps("l", "a/b/c"), ps("m", "z")])
case("12.4 unicode names kept as spelled", ents(f("\u00c4/\u00e9"), f("\u00c4/e")),
     [pd("\u00c4"), pf("\u00c4/\u00e9"), pf("\u00c4/e")])
case("12.4 same names in different dirs", ents(f("a/x"), f("b/X"), f("b/y"), f("a/Y")),
     [pd("a"), pf("a/x"), pd("b"), pf("b/X"), pf("b/y"), pf("a/Y")])

# ---------------------------------------------------------------------------
# §12.5 symlinks
# ---------------------------------------------------------------------------

case("12.5 reported exploit d/, d/up -> .., esc -> d/up/../..",
     ents(d("d"), s("d/up", ".."), s("esc", "d/up/../..")), UE("esc"))
case("12.5 exploit with an implicit d", ents(s("d/up", ".."), s("esc", "d/up/../..")), UE("esc"))
case("12.5 x -> a/missing/../..", ents(d("a"), s("x", "a/missing/../..")), UE("x"))
case("12.5 x -> missing/..", ents(s("x", "missing/..")), UE("x"))
case("12.5 top-level .. ", ents(s("l", "..")), UE("l"))
case("12.5 d/l -> ../..", ents(d("d"), s("d/l", "../..")), UE("d/l"))
case("12.5 d/l -> ../x dangling inside", ents(d("d"), s("d/l", "../x")), [pd("d", 0o755), ps("d/l", "../x")])
case("12.5 absolute target", ents(s("l", "/etc/passwd")), UE("l"))
case("12.5 backslash in target", ents(s("l", "a\\b")), UE("l"))
case("12.5 NUL in target", ents(s("l", "a\x00b")), UE("l"))
case("12.5 target through a file", ents(f("f"), s("l", "f/x")), UE("l"))
case("12.5 target f/ on a file", ents(f("f"), s("l", "f/")), UE("l"))
case("12.5 target f/.. on a file", ents(f("f"), s("l", "f/..")), UE("l"))
case("12.5 target through a hard link", ents(f("f"), h("g", "f"), s("l", "g/x")), UE("l"))
case("12.5 target through a name not held", ents(s("l", "nothing/x")), UE("l"))
case("12.5 target nothing/ [literal rule 3]", ents(s("l", "nothing/")), UE("l"))
case("12.5 target alias of a dir", ents(d("Dir"), s("l", "dir")), UE("l"))
case("12.5 target alias deep", ents(f("Dir/x"), s("l", "Dir/X")), UE("l"))
case("12.5 target alias of a missing-case file", ents(f("A"), s("l", "a")), UE("l"))
case("12.5 self loop", ents(s("l", "l")), UE("l"))
case("12.5 self loop via path", ents(s("l", "l/x")), UE("l"))
case("12.5 loop a -> b -> a (first in index order)", ents(s("a", "b"), s("b", "a")), UE("a"))
case("12.5 loop through dirs (first in index order)", ents(s("d/a", "../e/b"), s("e/b", "../d/a")), UE("d/a"))
chain40 = [s(f"l{i}", f"l{i + 1}") for i in range(39)] + [s("l39", "f"), f("f")]
case("12.5 chain of 40 links ok", ents(*chain40),
     [pf("f")] + [ps(f"l{i}", f"l{i + 1}") for i in range(39)] + [ps("l39", "f")])
chain41 = [s(f"l{i}", f"l{i + 1}") for i in range(40)] + [s("l40", "f"), f("f")]
case("12.5 chain of 41 links", ents(*chain41), UE("l0"))
chain41r = list(reversed(chain41))
case("12.5 chain of 41 links, reverse index order", ents(*chain41r), UE("l0"))
case("12.5 links through links inside the tree",
     ents(f("real/f", b"R"), s("a", "real"), s("b", "a/f"), s("c", "b")),
     [pd("real"), pf("real/f", b"R"), ps("a", "real"), ps("b", "a/f"), ps("c", "b")])
case("12.5 lib/libfoo.so -> ../lib64/libfoo.so.1",
     ents(f("lib64/libfoo.so.1"), s("lib/libfoo.so", "../lib64/libfoo.so.1")),
     [pd("lib64"), pf("lib64/libfoo.so.1"), pd("lib"), ps("lib/libfoo.so", "../lib64/libfoo.so.1")])
case("12.5 dangling link kept", ents(s("l", "nowhere")), [ps("l", "nowhere")])
case("12.5 missing name then ..", ents(s("d/l", "x/../y")), UE("d/l"))
case("12.5 target to a later entry", ents(s("l", "late/f"), f("late/f")),
     [pd("late"), pf("late/f"), ps("l", "late/f")])
case("12.5 d/up -> .. then down again", ents(d("d"), s("d/up", ".."), s("ok", "d/up/d/up/d")),
     [pd("d", 0o755), ps("d/up", ".."), ps("ok", "d/up/d/up/d")])
case("12.5 .. after a link is physical (stays in)",
     ents(d("a/b"), s("l", "a/b"), s("m", "l/../../x")),
     [pd("a"), pd("a/b", 0o755), ps("l", "a/b"), ps("m", "l/../../x")])
case("12.5 .. after a link is physical (leaves)",
     ents(d("a/b"), s("l", "a/b"), s("m", "l/../../..")), UE("m"))
case("12.5 . and empty components stay", ents(f("a/f"), s("l", "./a//f")),
     [pd("a"), pf("a/f"), ps("l", "./a//f")])
case("12.5 trailing / on a dir link", ents(d("d"), s("l", "d"), s("m", "l/")),
     [pd("d", 0o755), ps("l", "d"), ps("m", "l/")])
case("12.5 link to a dangling link, then further", ents(s("l", "gone"), s("m", "l/x")), UE("m"))
case("12.5 link to a file link, then further", ents(f("f"), s("l", "f"), s("m", "l/x")), UE("m"))
case("12.5 link to a link that escapes, escaper first", ents(s("up", ".."), s("m", "up")), UE("up"))
case("12.5 link to a link that escapes, escaper later [reading R5]",
     ents(s("m", "d/up"), s("d/up", "../..")), UE("m"))
case("12.5 link to an implicit dir", ents(f("a/b/f"), s("l", "a/b"), s("m", "l/f")),
     [pd("a"), pd("a/b"), pf("a/b/f"), ps("l", "a/b"), ps("m", "l/f")])

# ---------------------------------------------------------------------------
# §12.6 hard links
# ---------------------------------------------------------------------------

case("12.6 hard link to an earlier file", ents(f("f", b"F"), h("d/h", "f")),
     [pf("f", b"F"), pd("d"), ph("d/h", "f")])
case("12.6 hard link before its file", ents(h("h", "f"), f("f")), UE("h"))
case("12.6 hard link to a directory", ents(d("d"), h("h", "d")), UE("h"))
case("12.6 hard link to an implicit directory", ents(f("d/x"), h("h", "d")), UE("h"))
case("12.6 hard link to a symlink", ents(f("f"), s("s", "f"), h("h", "s")), UE("h"))
case("12.6 hard link to a hard link", ents(f("f"), h("h1", "f"), h("h2", "h1")), UE("h2"))
case("12.6 hard link target spelled differently", ents(f("f"), h("h", "F")), UE("h"))
case("12.6 hard link target ./f", ents(f("f"), h("h", "./f")), UE("h"))
case("12.6 hard link to nothing", ents(h("h", "nothing")), UE("h"))
case("12.6 hard link to itself", ents(h("h", "h")), UE("h"))
case("12.6 hard link target not selected", ents(f("a/f"), h("b/h", "a/f")), UE("b/h"),
     selection=["b"])
case("12.6 hard link target selected", ents(f("a/f"), h("b/h", "a/f")),
     [pd("a"), pf("a/f"), pd("b"), ph("b/h", "a/f")], selection=["b", "a"])

# ---------------------------------------------------------------------------
# §12.4 selection
# ---------------------------------------------------------------------------

pair = ents(f("A", b"1"), f("a", b"2"), f("b", b"3"))
case("12.4 case pair outside the selection does not block", pair, [pf("b", b"3")], selection=["b"])
case("12.4 selection is byte-exact [reading R7]", pair, [pf("a", b"2")], selection=["a"])
case("12.4 case pair inside the selection", pair, NC("a", "A"), selection=["a", "A"])
case("12.4 case pair, full extraction", pair, NC("a", "A"))
tree = ents(f("d/x"), f("dx"), f("d/y/z"), f("e"))
case("12.4 selection takes the subtree, not siblings by prefix", tree,
     [pd("d"), pf("d/x"), pd("d/y"), pf("d/y/z")], selection=["d"])
case("12.4 selection of a deep subtree", tree, [pd("d"), pd("d/y"), pf("d/y/z")], selection=["d/y"])
case("12.4 entry not found", tree, NF("nope"), selection=["nope"])
case("12.4 second name not found [reading R7]", tree, NF("nope"), selection=["e", "nope"])
case("12.4 not found beats a collision [reading R7]", pair, NF("c"), selection=["a", "A", "c"])
case("12.4 selection order is index order", tree, [pf("dx"), pf("e")], selection=["e", "dx"])
case("12.4 symlink alone, target outside the selection", ents(f("d/f"), s("l", "d/f")), UE("l"),
     selection=["l"])
case("12.4 symlink alone, target not selected is dangling", ents(f("f"), s("l", "f")),
     [ps("l", "f")], selection=["l"])
case("12.4 relative link into an unselected sibling", ents(f("b/f"), s("a/l", "../b/f")),
     UE("a/l"), selection=["a"])
case("12.4 relative link into a selected sibling", ents(f("b/f"), s("a/l", "../b/f")),
     [pd("b"), pf("b/f"), pd("a"), ps("a/l", "../b/f")])
case("12.4 escape outside the selection does not block",
     ents(d("d"), s("d/up", ".."), s("esc", "d/up/../.."), f("ok")), [pf("ok")], selection=["ok"])

# ---------------------------------------------------------------------------
# §12.8 index and tar agree
# ---------------------------------------------------------------------------

def tm_case(name, e, where="ustar", extra=(), selection=None, expect_override=None):
    es = list(extra) + [e]
    bb = build(es)
    i = len(es) - 1
    off = {"ustar": bb.doff[i] - 512, "pax": bb.hoff[i]}.get(where, where)
    if callable(off):
        off = off(bb, i)
    case(name, bb, expect_override or TM(e.path, off), selection=selection)


tm_case("12.8 typeflag 5 for a file", f("a", t_type=b"5"))
tm_case("12.8 typeflag NUL for a file", f("a", t_type=b"\x00"))
tm_case("12.8 typeflag 0 for a dir", d("d", t_type=b"0"))
tm_case("12.8 typeflag 1 for a symlink", s("l", "x", t_type=b"1"))
tm_case("12.8 typeflag 2 for a hard link", h("h", "a", t_type=b"2"), extra=[f("a")])
tm_case("12.8 GNU magic", f("a", t_magic=b"ustar ", t_version=b" \x00"))
tm_case("12.8 version 01", f("a", t_version=b"01"))
tm_case("12.8 checksum off by one", f("a", t_chk=1))
tm_case("12.8 path differs", f("a", t_path=b"b"))
tm_case("12.8 directory without / in tar", d("d", t_path=b"d"))
tm_case("12.8 file with / in tar", f("a", t_path=b"a/"))
tm_case("12.8 link differs", s("l", "x", t_link=b"y"))
tm_case("12.8 link on a dir in tar", d("d", t_link=b"y"))
tm_case("12.8 ustar size differs", f("a", b"hello", t_size=6))
tm_case("12.8 ustar size of a dir nonzero", d("d", t_size=1))
tm_case("12.8 mode differs", f("a", t_mode=0o755))
tm_case("12.8 pax key uid", f("a", pax_extra=[("uid", b"0")]), "pax")
tm_case("12.8 pax GNU sparse map", f("a", pax_extra=[("GNU.sparse.map", b"0,1")]), "pax")
tm_case("12.8 pax xattr", f("a", pax_extra=[("SCHILY.xattr.user.x", b"1")]), "pax")
tm_case("12.8 pax path twice", f("a", pax_extra=[("path", b"a")]), "pax")
tm_case("12.8 pax LEN leading zero", f("a", pax_body=b"011 path=a\n"), "pax")
tm_case("12.8 pax LEN wrong", f("a", pax_body=b"11 path=a\n"), "pax")
tm_case("12.8 pax record without =", f("a", pax_body=b"8 patha\n"), "pax")
tm_case("12.8 pax size does not fit the blocks", f("a", force_pax=True, extra_header_blocks=1), "pax")
tm_case("12.8 pax first block typeflag g", f("a", force_pax=True, pax_type=b"g"), "pax")
tm_case("12.8 pax path differs", f("a", pax_records=[("path", b"b")]), "ustar")
tm_case("12.8 pax path of a dir without /", d("d", pax_records=[("path", b"d")]))
tm_case("12.8 pax size differs", f("a", b"hello", pax_records=[("path", b"a"), ("size", b"4")]))
tm_case("12.8 nonzero padding after data", f("a", b"hello", pad=b"\x00\x01" + bytes(505)),
        lambda bb, i: bb.doff[i] + 5)
tm_case("12.8 second entry mismatch", f("b", t_mode=0o600), extra=[f("a")])

bb = build([f("a")], end_blocks=bytes(1000) + b"\x01" + bytes(23))
case("12.8 nonzero end block", bb, MA(bb.ioff - 1024))
bb = build([], end_blocks=bytes(511) + b"\x01" + bytes(512))
case("12.8 nonzero end block, no entries", bb, MA(0))
bb = build([f("a"), f("b")], end_blocks=bytes(1023) + b"\x01")
case("12.8 end blocks not checked for a selection [reading R6]", bb, [pf("a")], selection=["a"])
bb = build([f("a", t_mode=0o600), f("b")])
case("12.8 mismatch outside the selection does not block", bb, [pf("b")], selection=["b"])
case("12.8 mismatch inside the selection", bb, TM("a", 0), selection=["a"])

# positive tar forms
case("12.8 non-ASCII path via pax", ents(f("\u00e4/\u00df", b"u")), [pd("\u00e4"), pf("\u00e4/\u00df", b"u")])
case("12.8 long link via pax linkpath", ents(s("l", "./" * 60 + "x")), [ps("l", "./" * 60 + "x")])
case("12.8 negative mtime via pax", ents(f("a", mtime=-5)), [pf("a")])
case("12.8 mtime may differ", ents(f("a", pax_extra=[("mtime", b"12.5")])), [pf("a")])
case("12.8 pax size wins over the ustar field",
     ents(f("a", b"hello", t_size=0, pax_records=[("path", b"a"), ("size", b"5")])), [pf("a", b"hello")])
case("12.8 ustar prefix + name", ents(f("p" * 120 + "/" + "n" * 90)),
     [pd("p" * 120), pf("p" * 120 + "/" + "n" * 90)])
case("12.8 mode field with type bits", ents(f("a", t_mode=0o100644)), [pf("a")])
case("12.8 empty pax header", ents(f("a", pax_body=b"", t_path=b"a")), [pf("a")])
case("12.8 pax record with a 2-digit LEN edge",
     ents(f("a" * 92, pax_records=[("path", b"a" * 92)])), [pf("a" * 92)])
case("12.8 pax path overrides ustar name", ents(f("real", force_pax=True, t_ustar_name=b"other")), [pf("real")])
case("12.8 file data read from its offset", ents(f("a", bytes(range(256)) * 3), f("b", b"B")),
     [pf("a", bytes(range(256)) * 3), pf("b", b"B")])

# ---------------------------------------------------------------------------
# orders when two rules are broken (readings)
# ---------------------------------------------------------------------------

case("order: invalid path before its tar mismatch [reading R2]", ents(f("/x", t_path=b"y")), UE("/x"))
case("order: collision later beats tar mismatch earlier [reading R2]",
     ents(f("a", t_mode=0o600), f("b"), f("B")), NC("B", "b"))
case("order: symlink escape beats tar mismatch [reading R2]",
     ents(f("a", t_mode=0o600), s("l", "..")), UE("l"))
case("order: tree rule of a later entry beats an earlier link [reading R2]",
     ents(s("l", ".."), f("x"), f("x/y")), UE("x/y"))
case("order: links in index order, hard before sym [reading R2]",
     ents(h("h", "nothing"), s("l", "..")), UE("h"))
case("order: links in index order, sym before hard [reading R2]",
     ents(s("l", ".."), h("h", "nothing")), UE("l"))
case("order: depth before file data [reading R3]", ents(f("a/b/c", b"123456")),
     LE(3, 2, "archive path depth"), limits=Limits(depth=2, file_data=1))
case("order: collision before depth [reading R3]", ents(f("a"), f("A/b/c")),
     NC("A/b/c", "a"), limits=Limits(depth=2))

# ---------------------------------------------------------------------------
# more readings
# ---------------------------------------------------------------------------

case("12.8 pax path with an empty value [reading: present, compared]",
     ents(f("a", pax_records=[("path", b"")], t_ustar_name=b"a")), TM("a", 512 + 512))
case("12.4 selection name with a trailing /", ents(f("d/x")), [pd("d", None), pf("d/x")], selection=["d/"])
case("12.4 selection name aliasing an entry [reading R7]", ents(f("D/x")), NF("d"), selection=["d"])
case("12.5 hard link node is a file for rule 3", ents(f("f"), h("g", "f"), s("l", "g/")), UE("l"))
