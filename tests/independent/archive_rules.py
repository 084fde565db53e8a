#!/usr/bin/env python3
"""Archive-content checks of SPEC.md §12.1–§12.8, written from SPEC.md alone.

This module was written without reading the reference implementation
(src/). It takes an archive *content* (the payload after its prefix, §12)
and either refuses it, naming the reference variant and the fields §12
gives it, or returns the plan of what an extractor creates, in the order of
§12.9. It writes nothing to the file system. Python 3.11, stdlib only; the
tar stream is parsed here by hand (no `tarfile`).

    r = check_archive(content)                 # everything
    r = check_archive(content, ["docs"])       # a selection (§12.4)
    if isinstance(r, Refusal): print(r)        # e.g. "UnsafeEntry path=esc"
    else: for item in r.items: ...             # PlanItem, §12.9 order

Where SPEC.md leaves a choice open (check order between rules, which
offset a TarMismatch names, ...), the choice made here is marked
`READING:` in a comment; archive_cases.py's docstring lists them all.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------
# §12.1 / §12.2 / §12.7 constants
# ---------------------------------------------------------------------------

TRAILER_MAGIC = b"kuvert-index" + b"\x00\x00\x00\x01"
TRAILER_LEN = 32
MIN_CONTENT = 40
ENTRY_MIN = 45
MAX_NAME = 4096
MAX_HEADER_SPAN = 16384
BLOCK = 512

KIND_FILE, KIND_DIR, KIND_SYMLINK, KIND_HARDLINK = 0, 1, 2, 3
TYPEFLAG = {KIND_FILE: b"0", KIND_DIR: b"5", KIND_SYMLINK: b"2", KIND_HARDLINK: b"1"}
PAX_KEYS = ("path", "linkpath", "size", "mtime")
MAX_LINKS = 40          # §12.5 rule 4: 40 in all when the link is opened


@dataclass(frozen=True)
class Limits:
    """§12.1/§12.2/§12.7 reference bounds (`ArchiveLimits`)."""
    index_length: int = 256 << 20
    entries: int = 1 << 20
    depth: int = 256
    file_data: int = 1 << 40


# ---------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------

# Field order per variant. LimitExceeded follows §10.1 (`found limit what`).
FIELD_ORDER = {
    "MalformedArchive": ("offset",),
    "LimitExceeded": ("found", "limit", "what"),
    "UnsafeEntry": ("path",),
    "NameCollision": ("path", "other"),
    "TarMismatch": ("path", "offset"),
    "EntryNotFound": ("path",),
}


@dataclass
class Refusal(Exception):
    variant: str
    fields: dict
    reason: str = ""          # informative, never compared

    def key(self) -> tuple:
        return (self.variant, tuple(sorted(self.fields.items())))

    def __eq__(self, other):
        return isinstance(other, Refusal) and self.key() == other.key()

    def __str__(self):
        parts = [self.variant] + [f"{k}={self.fields[k]}" for k in
                                  FIELD_ORDER.get(self.variant, sorted(self.fields))]
        s = " ".join(parts)
        return s + (f" ({self.reason})" if self.reason else "")


def _ma(offset, reason):
    return Refusal("MalformedArchive", {"offset": offset}, reason)


def _unsafe(path, reason):
    return Refusal("UnsafeEntry", {"path": path}, reason)


def _collide(path, other, reason):
    return Refusal("NameCollision", {"path": path, "other": other}, reason)


def _limit(found, limit, what):
    return Refusal("LimitExceeded", {"found": found, "limit": limit, "what": what})


def _tar(path, offset, reason):
    return Refusal("TarMismatch", {"path": path, "offset": offset}, reason)


@dataclass
class PlanItem:
    """One thing to create. kind: dir | file | hardlink | symlink.

    dir: mode/mtime are the archived ones, or None for an implicit
    directory (§12.4: 0o777 masked, time of extraction). file: data holds
    its bytes. hardlink/symlink: target is the index link.
    """
    kind: str
    path: str
    mode: int | None = None
    mtime: int | None = None
    data: bytes = b""
    target: str = ""

    def brief(self) -> tuple:
        if self.kind == "dir":
            return ("dir", self.path, self.mode)
        if self.kind == "file":
            return ("file", self.path, self.data)
        return (self.kind, self.path, self.target)


@dataclass
class Plan:
    items: list[PlanItem] = field(default_factory=list)

    def brief(self) -> list[tuple]:
        return [i.brief() for i in self.items]


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
    at: int              # content offset of the index entry
    end: int             # §12.2 end(e)


# ---------------------------------------------------------------------------
# §12.1 trailer, §12.2 index
# ---------------------------------------------------------------------------

def parse_trailer(content: bytes, limits: Limits) -> tuple[int, int]:
    n = len(content)
    if n < MIN_CONTENT:
        raise _ma(0, "content shorter than 40 bytes")
    t = content[n - TRAILER_LEN:]
    if t[16:31] != TRAILER_MAGIC[:15]:
        raise _ma(n - 16, "no trailer magic")
    if t[31] != TRAILER_MAGIC[15]:
        raise _ma(n - 1, "archive layout version is not 1")
    ioff, ilen = struct.unpack(">QQ", t[:16])
    if ioff + ilen != n - TRAILER_LEN:       # Python ints: no overflow
        raise _ma(n - TRAILER_LEN, "index offset + length != len - 32")
    if ilen > limits.index_length:
        raise _limit(ilen, limits.index_length, "archive index length")
    return ioff, ilen


def _ceil512(x: int) -> int:
    return -(-x // BLOCK) * BLOCK


def parse_index(content: bytes, ioff: int, ilen: int, limits: Limits) -> list[Entry]:
    # READING: the rows of the §12.2 table are checked in table order; all
    # rows of one entry give the same offset, so their order is invisible.
    idx = content[ioff:ioff + ilen]
    if ilen < 8:
        raise _ma(ioff, "index shorter than its count")
    count = struct.unpack(">Q", idx[:8])[0]
    if count * ENTRY_MIN > ilen:             # count > ilen / 45, exactly
        raise _ma(ioff, "count > index length / 45")
    if count > limits.entries:
        raise _limit(count, limits.entries, "archive entries")
    pos = 8
    prev_end = 0
    out: list[Entry] = []
    for _ in range(count):
        at = ioff + pos
        if pos + ENTRY_MIN > ilen:
            raise _ma(at, "entry runs past the index")
        kind = idx[pos]
        mode, mtime, size, hoff, doff, plen, llen = struct.unpack(
            ">IqQQQII", idx[pos + 1:pos + ENTRY_MIN])
        if pos + ENTRY_MIN + plen + llen > ilen:
            raise _ma(at, "entry runs past the index")
        if kind > 3:
            raise _ma(at, "kind > 3")
        if mode > 0o7777:
            raise _ma(at, "mode > 0o7777")
        if plen > MAX_NAME or llen > MAX_NAME:
            raise _ma(at, "path or link longer than 4096 bytes")
        p0 = pos + ENTRY_MIN
        try:
            path = idx[p0:p0 + plen].decode("utf-8")
            link = idx[p0 + plen:p0 + plen + llen].decode("utf-8")
        except UnicodeDecodeError:
            raise _ma(at, "path or link not UTF-8") from None
        if hoff != prev_end:
            raise _ma(at, "header offset != previous end")
        span = doff - hoff
        if span < BLOCK or span % BLOCK or span > MAX_HEADER_SPAN:
            raise _ma(at, "data offset - header offset")
        end = _ceil512(doff + size)
        if end + 1024 > ioff:
            raise _ma(at, "entry runs into the end blocks or the index")
        if size != 0 and kind != KIND_FILE:
            raise _ma(at, "size != 0 for a non-file")
        if (llen != 0) != (kind in (KIND_SYMLINK, KIND_HARDLINK)):
            raise _ma(at, "link present/absent wrongly")
        out.append(Entry(kind, mode, mtime, size, hoff, doff, path, link, at, end))
        prev_end = end
        pos = p0 + plen + llen
    if pos != ilen:
        raise _ma(ioff + pos, "bytes after the last entry")
    if prev_end + 1024 != ioff:
        raise _ma(ioff, "last end + 1024 != index offset")
    return out


# ---------------------------------------------------------------------------
# §12.3 paths and names
# ---------------------------------------------------------------------------

def key(c: str) -> str:
    """§12.3: NFC(toCasefold(NFD(c)))."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", c).casefold())


def path_valid(p: str) -> bool:
    if not p or len(p.encode("utf-8")) > MAX_NAME or p.startswith("/"):
        return False
    if "\x00" in p or "\\" in p:
        return False
    return all(c not in ("", ".", "..") for c in p.split("/"))


# ---------------------------------------------------------------------------
# §12.4 tree
# ---------------------------------------------------------------------------

class Node:
    __slots__ = ("name", "path", "parent", "children", "kind", "explicit",
                 "entry", "item", "resolving", "resolved")

    def __init__(self, name, path, parent, kind):
        self.name = name          # spelling
        self.path = path
        self.parent = parent
        self.children: dict[str, Node] = {}
        self.kind = kind          # "root" | "dir" | "file" | "hardlink" | "symlink"
        self.explicit = False     # some entry names it
        self.entry: Entry | None = None
        self.item: PlanItem | None = None
        self.resolving = False
        self.resolved = None      # (end position, links followed)


NOTHING = object()                # §12.5: a position that names nothing

KIND_NODE = {KIND_FILE: "file", KIND_DIR: "dir", KIND_SYMLINK: "symlink",
             KIND_HARDLINK: "hardlink"}


def select(entries: list[Entry], selection: list[str] | None) -> list[Entry]:
    if selection is None:
        return list(entries)
    # §12.4: names match entry paths byte for byte (not by key) once
    # trailing `/` are removed; a name that selects no entry at all is
    # EntryNotFound{path = that name}, the first such name in the caller's
    # order, checked before every §12.4 rule.
    selection = [name.rstrip("/") for name in selection]
    for name in selection:
        if not any(e.path == name or e.path.startswith(name + "/") for e in entries):
            raise Refusal("EntryNotFound", {"path": name})
    return [e for e in entries
            if any(e.path == n or e.path.startswith(n + "/") for n in selection)]


def build_tree(sel: list[Entry], content: bytes, limits: Limits):
    root = Node("", "", None, "root")
    dirs_files: list[PlanItem] = []
    links: list[tuple[Entry, Node]] = []
    total = 0
    for e in sel:
        # READING: bullets of §12.4 are checked in the order written, per
        # component from the root: validity, then (per component) alias,
        # runs-through, then "names an existing node", then limits.
        if not path_valid(e.path):
            raise _unsafe(e.path, "path is not valid")
        comps = e.path.split("/")
        node = root
        for i, c in enumerate(comps[:-1]):
            child = node.children.get(key(c))
            if child is None:
                p = "/".join(comps[:i + 1])
                child = Node(c, p, node, "dir")
                node.children[key(c)] = child
                child.item = PlanItem("dir", p)          # implicit so far
                dirs_files.append(child.item)
            elif child.name != c:
                # READING: `other` is the tree node's path as first spelled
                # (a prefix when the alias is a parent component).
                raise _collide(e.path, child.path, "component aliases an existing name")
            elif child.kind in ("file", "hardlink"):
                raise _unsafe(e.path, "path runs through a file")
            elif child.kind == "symlink":
                raise _unsafe(e.path, "path runs through a symlink")
            node = child
        last = comps[-1]
        k = key(last)
        child = node.children.get(k)
        if child is not None:
            if child.name != last:
                raise _collide(e.path, child.path, "name aliases an existing name")
            if not (child.kind == "dir" and not child.explicit and e.kind == KIND_DIR):
                raise _collide(e.path, child.path, "path names an existing entry")
        if len(comps) > limits.depth:
            raise _limit(len(comps), limits.depth, "archive path depth")
        if e.kind == KIND_FILE:
            total += e.size
            # READING: the file-data limit is checked as each file entry is
            # taken; `found` is the running total of the selection so far.
            if total > limits.file_data:
                raise _limit(total, limits.file_data, "archive file data")
        if child is None:
            child = Node(last, e.path, node, KIND_NODE[e.kind])
            node.children[k] = child
        child.explicit = True
        child.entry = e
        if e.kind == KIND_DIR:
            if child.item is None:
                child.item = PlanItem("dir", e.path)
                dirs_files.append(child.item)
            # READING: a late directory entry stays at the place where its
            # implicit directory was first created; it gets mode and mtime.
            child.item.mode, child.item.mtime = e.mode, e.mtime
        elif e.kind == KIND_FILE:
            child.item = PlanItem("file", e.path, e.mode, e.mtime,
                                  content[e.data_offset:e.data_offset + e.size])
            dirs_files.append(child.item)
        else:
            links.append((e, child))
    return root, dirs_files, links


# ---------------------------------------------------------------------------
# §12.5 symlinks, §12.6 hard links
# ---------------------------------------------------------------------------

def target_valid(t: str) -> bool:
    return (bool(t) and len(t.encode("utf-8")) <= MAX_NAME and "\x00" not in t
            and "\\" not in t and not t.startswith("/"))


def resolve(link: Node, root: Node):
    """§12.5: returns (end position, links followed incl. this one)."""
    if link.resolved is not None:
        return link.resolved
    t = link.entry.link
    # §12.5: a refusal met while resolving a nested link is reported by
    # check_links under the link being checked (the outer one).
    if not target_valid(t):
        raise _unsafe(link.path, "symlink target is not valid")
    link.resolving = True
    pos = link.parent
    followed = 1
    for i, c in enumerate(t.split("/")):
        if i > 0:
            if pos is NOTHING:
                raise _unsafe(link.path, "link target runs through a name the archive does not hold")
            if pos.kind not in ("dir", "root"):
                raise _unsafe(link.path, "link target runs through a file")
        if c in ("", "."):
            continue
        if c == "..":
            if pos.kind == "root":
                raise _unsafe(link.path, "symlink leads out of the destination")
            pos = pos.parent
            continue
        child = pos.children.get(key(c))
        if child is None:
            pos = NOTHING
        elif child.name != c:
            raise _unsafe(link.path, "link target component aliases a name")
        elif child.kind == "symlink":
            if child.resolving:
                raise _unsafe(link.path, "symlink loop")
            pos, n = resolve(child, root)
            followed += n
            if followed > MAX_LINKS:
                raise _unsafe(link.path, "too many levels of symbolic links")
        else:
            pos = child
    link.resolving = False
    link.resolved = (pos, followed)
    return link.resolved


def check_links(links, root, sel_index: dict[int, int]):
    """§12.5 and §12.6, one pass over the link entries in index order."""
    # READING: links are checked after the §12.4 pass over every selected
    # entry (a symlink may point at a later entry), in index order, hard
    # and symbolic links interleaved as the index has them.
    hard, sym = [], []
    for e, node in links:
        if e.kind == KIND_HARDLINK:
            tgt = sel_index.get(e.link)
            if tgt is None or tgt[0] >= sel_index[e.path][0] or tgt[1] != KIND_FILE:
                raise _unsafe(e.path, "hard link target is not an earlier selected file")
            hard.append(PlanItem("hardlink", e.path, target=e.link))
        else:
            try:
                resolve(node, root)
            except Refusal as refusal:
                if refusal.variant == "UnsafeEntry":
                    raise _unsafe(e.path, refusal.reason) from None
                raise
            sym.append(PlanItem("symlink", e.path, e.mode, e.mtime, target=e.link))
    return hard, sym


# ---------------------------------------------------------------------------
# §12.8 index and tar agree
# ---------------------------------------------------------------------------

def _octal(field: bytes) -> int | None:
    # READING: a ustar number is optional leading spaces, octal digits, then
    # NUL/space padding to the field's end; anything else (base-256, empty)
    # disagrees.
    s = field.lstrip(b" ")
    digits = s.rstrip(b"\x00 ")
    if not digits or any(ch not in b"01234567" for ch in digits):
        return None
    return int(digits, 8)


def _ustar_ok(h: bytes) -> bool:
    if h[257:263] != b"ustar\x00" or h[263:265] != b"00":
        return False
    want = _octal(h[148:156])
    return want is not None and want == sum(h[:148]) + 32 * 8 + sum(h[156:])


def _cstr(b: bytes) -> bytes:
    i = b.find(b"\x00")
    return b if i < 0 else b[:i]


def _pax_records(body: bytes) -> dict[str, bytes] | None:
    rec: dict[str, bytes] = {}
    pos = 0
    while pos < len(body):
        sp = body.find(b" ", pos)
        if sp < 0:
            return None
        num = body[pos:sp]
        if not num or not num.isdigit() or (num[0:1] == b"0"):
            return None
        n = int(num)
        r = body[pos:pos + n]
        if len(r) != n or n <= len(num) + 1 or not r.endswith(b"\n"):
            return None
        kv = r[len(num) + 1:-1]
        eq = kv.find(b"=")
        if eq < 0:
            return None
        k = kv[:eq].decode("utf-8", "replace")
        if k not in PAX_KEYS or k in rec:
            return None
        rec[k] = kv[eq + 1:]
        pos += n
    return rec


def check_tar(content: bytes, e: Entry):
    # READING: offset = start of the header block in which the disagreement
    # lies (header offset for the pax header and its records, data offset -
    # 512 for the ustar header), or the first nonzero byte of the padding.
    hoff, doff = e.header_offset, e.data_offset
    ust_at = doff - BLOCK
    pax: dict[str, bytes] = {}
    if doff - hoff > BLOCK:
        x = content[hoff:hoff + BLOCK]
        if not _ustar_ok(x) or x[156:157] != b"x":
            raise _tar(e.path, hoff, "first block is not a pax x header")
        s = _octal(x[124:136])
        if s is None or _ceil512(BLOCK + s) != doff - hoff - BLOCK:
            raise _tar(e.path, hoff, "pax size does not fit the header span")
        recs = _pax_records(content[hoff + BLOCK:hoff + BLOCK + s])
        if recs is None:
            raise _tar(e.path, hoff, "pax records malformed or key not allowed")
        pax = recs
    h = content[ust_at:doff]
    if not _ustar_ok(h):
        raise _tar(e.path, ust_at, "not a ustar header")
    if h[156:157] != TYPEFLAG[e.kind]:
        raise _tar(e.path, ust_at, "typeflag disagrees")
    if "path" in pax:
        tpath = pax["path"]
    else:
        name, prefix = _cstr(h[0:100]), _cstr(h[345:500])
        # READING: an empty prefix means the name alone (no leading `/`).
        tpath = prefix + b"/" + name if prefix else name
    want = e.path.encode("utf-8") + (b"/" if e.kind == KIND_DIR else b"")
    if tpath != want:
        raise _tar(e.path, ust_at, "path disagrees")
    tlink = pax["linkpath"] if "linkpath" in pax else _cstr(h[157:257])
    if tlink != e.link.encode("utf-8"):
        raise _tar(e.path, ust_at, "link disagrees")
    if "size" in pax:
        v = pax["size"]
        # READING: a pax size is plain decimal digits.
        tsize = int(v) if v.isdigit() else None
    else:
        tsize = _octal(h[124:136])
    if tsize != e.size:
        raise _tar(e.path, ust_at, "size disagrees")
    m = _octal(h[100:108])
    if m is None or (m & 0o7777) != e.mode:
        raise _tar(e.path, ust_at, "mode disagrees")
    pad = content[doff + e.size:e.end]
    if pad.strip(b"\x00"):
        raise _tar(e.path, doff + e.size, "nonzero padding")


def check_end_blocks(content: bytes, entries: list[Entry], ioff: int):
    start = ioff - 1024
    blk = content[start:ioff]
    if blk.strip(b"\x00"):
        # §12.8: MalformedArchive at index offset - 1024.
        raise Refusal("MalformedArchive", {"offset": start}, "nonzero end block")


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def check_archive(content: bytes, selection: list[str] | None = None,
                  limits: Limits = Limits()) -> Plan | Refusal:
    """§12.1–§12.8 on an archive content; a Plan in §12.9 order or a Refusal.

    READING (order of the stages): trailer (§12.1), index (§12.2),
    selection (EntryNotFound), tree (§12.4, §12.7), links (§12.5, §12.6),
    then tar agreement (§12.8) of the selected entries in index order and,
    when everything is extracted, the two end blocks.
    """
    try:
        ioff, ilen = parse_trailer(content, limits)
        entries = parse_index(content, ioff, ilen, limits)
        sel = select(entries, selection)
        sel_index = {e.path: (i, e.kind) for i, e in enumerate(sel)}
        root, dirs_files, links = build_tree(sel, content, limits)
        hard, sym = check_links(links, root, sel_index)
        for e in sel:
            check_tar(content, e)
        if selection is None:
            check_end_blocks(content, entries, ioff)
        return Plan(dirs_files + hard + sym)
    except Refusal as r:
        return r
