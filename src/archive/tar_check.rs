//! The tar headers must say what the index says (SPEC.md §12.8): the index
//! is what kuvert extracts by, the tar stream is what `tar -x` extracts by,
//! and a sealer could make them disagree. Each entry's header blocks are
//! parsed and compared field by field before the entry is used.

use super::index::BLOCK;
use super::{Entry, EntryKind};
use crate::error::Error;

/// Offset of the checksum field in a tar header block.
const CKSUM_AT: usize = 148;
const CKSUM_LEN: usize = 8;
/// Pax records a header of ours may hold; anything else (GNU sparse maps,
/// uid, xattrs) could change what a tar reader does with the entry.
const PAX_KEYS: [&str; 4] = ["path", "linkpath", "size", "mtime"];

/// Checks the header blocks `region` (the bytes at [header offset, data
/// offset) of `entry`) against the entry.
pub(crate) fn check_header(region: &[u8], entry: &Entry) -> Result<(), Error> {
    let fail = |at: usize, reason: &'static str| Error::TarMismatch {
        path: entry.path.clone(),
        offset: entry.header_offset + at as u64,
        reason,
    };
    let block = BLOCK as usize;
    if region.len() < block || !region.len().is_multiple_of(block) {
        return Err(fail(0, "header blocks of the wrong length"));
    }
    let mut pax = Pax::default();
    let ustar_at = region.len() - block;
    if region.len() > block {
        let first = block_header(&region[..block]).map_err(|reason| fail(0, reason))?;
        if first.entry_type() != tar::EntryType::XHeader {
            return Err(fail(0, "more than one header block without a pax header"));
        }
        let body_len = first
            .size()
            .map_err(|_| fail(0, "pax header size unreadable"))?;
        let body_end = block as u64 + body_len;
        if body_end.div_ceil(BLOCK) * BLOCK != ustar_at as u64 {
            return Err(fail(0, "pax header size does not fill the header blocks"));
        }
        pax = parse_pax(&region[block..body_end as usize]).map_err(|reason| fail(0, reason))?;
    }
    let header = block_header(&region[ustar_at..]).map_err(|reason| fail(ustar_at, reason))?;
    let expect_type = match entry.kind {
        EntryKind::File => tar::EntryType::Regular,
        EntryKind::Directory => tar::EntryType::Directory,
        EntryKind::Symlink => tar::EntryType::Symlink,
        EntryKind::Hardlink => tar::EntryType::Link,
    };
    if header.entry_type() != expect_type || header.as_bytes()[156] == 0 {
        return Err(fail(ustar_at, "entry type differs from the index"));
    }
    let path = pax.path.unwrap_or_else(|| header.path_bytes().into_owned());
    let expect_path = match entry.kind {
        EntryKind::Directory => format!("{}/", entry.path),
        _ => entry.path.clone(),
    };
    if path != expect_path.as_bytes() {
        return Err(fail(ustar_at, "path differs from the index"));
    }
    let link = match pax.linkpath {
        Some(link) => link,
        None => header
            .link_name_bytes()
            .map(|link| link.into_owned())
            .unwrap_or_default(),
    };
    if link != entry.link.as_deref().unwrap_or("").as_bytes() {
        return Err(fail(ustar_at, "link target differs from the index"));
    }
    let size = match pax.size {
        Some(size) => size,
        None => header
            .size()
            .map_err(|_| fail(ustar_at, "size field unreadable"))?,
    };
    if size != entry.size {
        return Err(fail(ustar_at, "size differs from the index"));
    }
    let mode = header
        .mode()
        .map_err(|_| fail(ustar_at, "mode field unreadable"))?;
    if mode & 0o7777 != entry.mode {
        return Err(fail(ustar_at, "mode differs from the index"));
    }
    Ok(())
}

/// A ustar header block with a valid checksum.
fn block_header(block: &[u8]) -> Result<&tar::Header, &'static str> {
    let header = tar::Header::from_byte_slice(block);
    if header.as_ustar().is_none() {
        return Err("not a ustar header block");
    }
    let sum: u32 = block[..CKSUM_AT]
        .iter()
        .chain(&[b' '; CKSUM_LEN])
        .chain(&block[CKSUM_AT + CKSUM_LEN..])
        .map(|&b| u32::from(b))
        .sum();
    if header.cksum().ok() != Some(sum) {
        return Err("header checksum does not match");
    }
    Ok(header)
}

#[derive(Debug, Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
}

/// Parses pax records, `"LEN key=value\n"` with LEN counting the whole
/// record (POSIX.1-2001 pax), allowing only [`PAX_KEYS`], each once.
fn parse_pax(mut body: &[u8]) -> Result<Pax, &'static str> {
    let mut pax = Pax::default();
    let mut seen = Vec::new();
    while !body.is_empty() {
        let space = body
            .iter()
            .take(20)
            .position(|&b| b == b' ')
            .ok_or("pax record without a length")?;
        let len: usize = std::str::from_utf8(&body[..space])
            .ok()
            .filter(|digits| !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse().ok())
            .ok_or("pax record length is not a decimal number")?;
        if len <= space + 2 || len > body.len() || body[len - 1] != b'\n' {
            return Err("pax record length does not fit the record");
        }
        let record = &body[space + 1..len - 1];
        let equals = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("pax record without `=`")?;
        let key = std::str::from_utf8(&record[..equals]).map_err(|_| "pax key not UTF-8")?;
        let value = &record[equals + 1..];
        if !PAX_KEYS.contains(&key) {
            return Err("pax record of a kind kuvert does not write");
        }
        if seen.contains(&key) {
            return Err("pax record given twice");
        }
        seen.push(key);
        match key {
            "path" => pax.path = Some(value.to_vec()),
            "linkpath" => pax.linkpath = Some(value.to_vec()),
            "size" => {
                pax.size = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|digits| digits.parse().ok())
                        .ok_or("pax size is not a decimal number")?,
                );
            }
            _ => {}
        }
        body = &body[len..];
    }
    Ok(pax)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_parse_exactly() {
        let pax = parse_pax(b"12 path=a\nb\n11 size=42\n").expect("valid");
        assert_eq!(pax.path.as_deref(), Some(&b"a\nb"[..]));
        assert_eq!(pax.size, Some(42));
        for bad in [
            &b"12 path=ab\n"[..],
            b"11 path=ab",
            b"011 path=a\n",
            b"20 GNU.sparse.map=1\n",
            b"9 path=\n9 path=\n",
            b"x path=a\n",
        ] {
            assert!(
                parse_pax(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
