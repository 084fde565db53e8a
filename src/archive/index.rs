//! The archive index and trailer (SPEC.md §12.1, §12.2): encoder and parser
//! side by side, and round-trip tested.

use super::names::MAX_PATH_LEN;
use super::{Entry, EntryKind};
use crate::error::Error;
use crate::format::Reader;

/// Last 16 bytes of an archive payload: marks the 32-byte trailer.
pub(crate) const TRAILER_MAGIC: [u8; 16] = *b"kuvert-index\0\0\0\x01";
/// Index offset, index length, magic.
pub(crate) const TRAILER_LEN: u64 = 32;
/// A tar block.
pub(crate) const BLOCK: u64 = 512;
/// The two zero blocks that end a tar stream.
pub(crate) const TAR_END_LEN: u64 = 2 * BLOCK;
/// Longest run of tar header blocks before an entry's data: a pax header
/// holding a 4,096-byte path and a 4,096-byte link target, and the ustar
/// header, fit in 10 KiB (SPEC.md §12.2).
pub(crate) const MAX_HEADER_REGION: u64 = 16 * 1024;
/// Fixed part of an index entry: kind, mode, mtime, size, two offsets and
/// two length prefixes.
pub(crate) const ENTRY_FIXED_LEN: usize = 1 + 4 + 8 + 8 + 8 + 8 + 4 + 4;

fn kind_code(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::File => 0,
        EntryKind::Directory => 1,
        EntryKind::Symlink => 2,
        EntryKind::Hardlink => 3,
    }
}

fn kind_from_code(code: u8) -> Option<EntryKind> {
    Some(match code {
        0 => EntryKind::File,
        1 => EntryKind::Directory,
        2 => EntryKind::Symlink,
        3 => EntryKind::Hardlink,
        _ => return None,
    })
}

/// Serialises the index (SPEC.md §12.2).
pub(crate) fn encode_index(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + entries.len() * (ENTRY_FIXED_LEN + 32));
    out.extend_from_slice(&(entries.len() as u64).to_be_bytes());
    for entry in entries {
        out.push(kind_code(entry.kind));
        out.extend_from_slice(&entry.mode.to_be_bytes());
        out.extend_from_slice(&entry.mtime.to_be_bytes());
        out.extend_from_slice(&entry.size.to_be_bytes());
        out.extend_from_slice(&entry.header_offset.to_be_bytes());
        out.extend_from_slice(&entry.data_offset.to_be_bytes());
        let link = entry.link.as_deref().unwrap_or("");
        out.extend_from_slice(&(entry.path.len() as u32).to_be_bytes());
        out.extend_from_slice(&(link.len() as u32).to_be_bytes());
        out.extend_from_slice(entry.path.as_bytes());
        out.extend_from_slice(link.as_bytes());
    }
    out
}

/// Parses and checks an index read from offset `index_offset` of a payload
/// (SPEC.md §12.2). The entries must tile the tar stream exactly: the first
/// header at 0, each next header where the previous entry's data and
/// padding end, and the two end blocks just before the index, so a tar
/// reader of the stream meets exactly the entries the index lists.
pub(crate) fn parse_index(
    bytes: &[u8],
    index_offset: u64,
    max_entries: u64,
) -> Result<Vec<Entry>, Error> {
    let malformed = |at: usize, reason: &'static str| Error::MalformedArchive {
        offset: index_offset + at as u64,
        reason,
    };
    // The reader's own errors name a volume header; each is replaced by a
    // `MalformedArchive` below, so the location it carries is never seen.
    let unused = crate::Location::input(0);
    let mut r = Reader::new(bytes, &unused);
    let count = r
        .u64("entry count")
        .map_err(|_| malformed(0, "index shorter than its count"))?;
    if count > (bytes.len() / ENTRY_FIXED_LEN) as u64 {
        return Err(malformed(0, "entry count larger than the index can hold"));
    }
    if count > max_entries {
        return Err(Error::LimitExceeded {
            what: "archive entries",
            found: count,
            limit: max_entries,
        });
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut next_header = 0u64;
    for _ in 0..count {
        let at = r.pos();
        let short = |_| malformed(at, "index ends inside an entry");
        let kind = kind_from_code(r.u8("kind").map_err(short)?)
            .ok_or_else(|| malformed(at, "unknown entry kind"))?;
        let mode = r.u32("mode").map_err(short)?;
        if mode > 0o7777 {
            return Err(malformed(at, "mode has bits above 0o7777"));
        }
        let mtime = r.u64("mtime").map_err(short)? as i64;
        let size = r.u64("size").map_err(short)?;
        let header_offset = r.u64("header offset").map_err(short)?;
        let data_offset = r.u64("data offset").map_err(short)?;
        let path_len = r.u32("path length").map_err(short)? as usize;
        let link_len = r.u32("link length").map_err(short)? as usize;
        if path_len > MAX_PATH_LEN || link_len > MAX_PATH_LEN {
            return Err(malformed(at, "path or link longer than 4096 bytes"));
        }
        let path = r.take(path_len, "path").map_err(short)?;
        let link = r.take(link_len, "link").map_err(short)?;
        let path = std::str::from_utf8(path).map_err(|_| malformed(at, "path is not UTF-8"))?;
        let link = std::str::from_utf8(link).map_err(|_| malformed(at, "link is not UTF-8"))?;
        let region = data_offset.checked_sub(header_offset);
        let end = data_offset
            .checked_add(size)
            .and_then(|end| end.checked_next_multiple_of(BLOCK));
        let tiles = header_offset == next_header
            && region.is_some_and(|r| r >= BLOCK && r % BLOCK == 0 && r <= MAX_HEADER_REGION)
            && end.is_some_and(|end| end.saturating_add(TAR_END_LEN) <= index_offset);
        if !tiles {
            return Err(malformed(
                at,
                "entry offsets do not tile the tar stream in order",
            ));
        }
        if kind != EntryKind::File && size != 0 {
            return Err(malformed(at, "data on an entry that is not a file"));
        }
        if kind.is_link() == link.is_empty() {
            return Err(malformed(
                at,
                "link target missing or on an entry that is not a link",
            ));
        }
        next_header = end.expect("checked above");
        entries.push(Entry {
            path: path.to_owned(),
            kind,
            size,
            mode,
            mtime,
            link: (!link.is_empty()).then(|| link.to_owned()),
            header_offset,
            data_offset,
        });
    }
    let end = r.pos();
    r.finish("bytes after the last entry")
        .map_err(|_| malformed(end, "bytes after the last index entry"))?;
    if next_header + TAR_END_LEN != index_offset {
        return Err(malformed(
            0,
            "the tar stream does not end with two zero blocks right after the last entry",
        ));
    }
    Ok(entries)
}

/// The 32-byte trailer for an index at `index_offset` of `index_len` bytes.
pub(crate) fn encode_trailer(index_offset: u64, index_len: u64) -> [u8; TRAILER_LEN as usize] {
    let mut trailer = [0u8; TRAILER_LEN as usize];
    trailer[..8].copy_from_slice(&index_offset.to_be_bytes());
    trailer[8..16].copy_from_slice(&index_len.to_be_bytes());
    trailer[16..].copy_from_slice(&TRAILER_MAGIC);
    trailer
}

/// Parses the trailer at the end of an archive payload of `len` bytes
/// (SPEC.md §12.1): the index's offset and length.
pub(crate) fn parse_trailer(
    trailer: &[u8; TRAILER_LEN as usize],
    len: u64,
    max_index_len: u64,
) -> Result<(u64, u64), Error> {
    let trailer_at = len - TRAILER_LEN;
    if trailer[16..31] != TRAILER_MAGIC[..15] {
        return Err(Error::MalformedArchive {
            offset: trailer_at + 16,
            reason: "an archive payload does not end with the index trailer",
        });
    }
    if trailer[31] != TRAILER_MAGIC[15] {
        return Err(Error::MalformedArchive {
            offset: trailer_at + 31,
            reason: "archive layout version is not 1",
        });
    }
    let index_offset = u64::from_be_bytes(trailer[..8].try_into().expect("8 bytes"));
    let index_len = u64::from_be_bytes(trailer[8..16].try_into().expect("8 bytes"));
    if index_offset.checked_add(index_len) != Some(trailer_at) {
        return Err(Error::MalformedArchive {
            offset: trailer_at,
            reason: "index offset and length do not meet the trailer",
        });
    }
    if index_len > max_index_len {
        return Err(Error::LimitExceeded {
            what: "archive index length",
            found: index_len,
            limit: max_index_len,
        });
    }
    Ok((index_offset, index_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, link: Option<&str>, header_offset: u64) -> Entry {
        Entry {
            path: path.into(),
            kind,
            size: 0,
            mode: 0o644,
            mtime: -5,
            link: link.map(str::to_owned),
            header_offset,
            data_offset: header_offset + BLOCK,
        }
    }

    fn sample() -> Vec<Entry> {
        vec![
            Entry {
                size: 10,
                ..entry("f", EntryKind::File, None, 0)
            },
            Entry {
                data_offset: 1024 + 3 * BLOCK,
                ..entry("名前/l", EntryKind::Symlink, Some("../f"), 1024)
            },
            entry("h", EntryKind::Hardlink, Some("f"), 1024 + 3 * BLOCK),
        ]
    }

    /// Where the index starts for `sample()`: after the last entry and the
    /// end blocks.
    const INDEX_AT: u64 = 1024 + 4 * BLOCK + TAR_END_LEN;

    #[test]
    fn index_round_trips() {
        let entries = sample();
        let bytes = encode_index(&entries);
        assert_eq!(parse_index(&bytes, INDEX_AT, 10).expect("valid"), entries);
        assert_eq!(
            parse_index(&encode_index(&[]), 1024, 10).expect("empty"),
            vec![]
        );
    }

    #[test]
    fn trailer_round_trips() {
        let trailer = encode_trailer(1000, 200);
        assert_eq!(
            parse_trailer(&trailer, 1232, 1 << 20).expect("valid"),
            (1000, 200)
        );
        assert!(matches!(
            parse_trailer(&trailer, 1233, 1 << 20),
            Err(Error::MalformedArchive { offset: 1201, .. })
        ));
        assert!(matches!(
            parse_trailer(&trailer, 1232, 199),
            Err(Error::LimitExceeded {
                found: 200,
                limit: 199,
                ..
            })
        ));
        let mut other = trailer;
        other[31] = 2;
        assert!(matches!(
            parse_trailer(&other, 1232, 1 << 20),
            Err(Error::MalformedArchive { offset: 1231, .. })
        ));
    }

    #[test]
    fn index_refuses_lies() {
        let entries = sample();
        let bytes = encode_index(&entries);
        let refused = |bytes: &[u8], at: u64| parse_index(bytes, at, 10).is_err();
        assert!(
            refused(&bytes, INDEX_AT - 512),
            "offsets past the tar stream"
        );
        assert!(
            refused(&bytes, INDEX_AT + 512),
            "a gap before the end blocks"
        );
        assert!(refused(&bytes[..bytes.len() - 1], INDEX_AT));
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(refused(&extra, INDEX_AT), "bytes after the last entry");
        let mut huge = bytes.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(refused(&huge, INDEX_AT), "count larger than the index");
        assert!(matches!(
            parse_index(&bytes, INDEX_AT, 2),
            Err(Error::LimitExceeded {
                found: 3,
                limit: 2,
                ..
            })
        ));
        for lie in [
            // A gap between entries: a tar reader would find headers there.
            vec![Entry {
                header_offset: 512,
                data_offset: 1024,
                ..sample()[0].clone()
            }],
            // Header region not a whole number of blocks.
            vec![Entry {
                data_offset: 700,
                ..sample()[0].clone()
            }],
            // Data on a directory.
            vec![Entry {
                size: 1,
                ..entry("d", EntryKind::Directory, None, 0)
            }],
            // A link without a target.
            vec![entry("l", EntryKind::Symlink, None, 0)],
        ] {
            let bytes = encode_index(&lie);
            let at = lie[0].end() + TAR_END_LEN;
            assert!(refused(&bytes, at), "{lie:?}");
        }
    }
}
