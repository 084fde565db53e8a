//! A test-only crafter of archive contents (SPEC.md §12): entries written
//! by hand, so that a test can make the tar stream, the index and the
//! trailer say anything at all, including what the public `ArchiveWriter`
//! refuses to write. Shared by tests/hostile.rs and tests/vectors.rs (the
//! §12 negative vectors).
//!
//! The result is an archive *content* (TAR ‖ INDEX ‖ TRAILER, no payload
//! prefix); seal it with [`seal_raw_archive`], which uses
//! `kuvert::testing::seal_content(…, PayloadKind::Archive)`.

/// A tar block.
pub const BLOCK: usize = 512;
/// The index trailer's magic, layout version 1 (SPEC.md §12.1).
pub const MAGIC: &[u8; 16] = b"kuvert-index\0\0\0\x01";
/// Largest value of an 11-digit octal ustar field.
pub const USTAR_MAX: i64 = 0o777_7777_7777;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
}

impl Kind {
    pub fn code(self) -> u8 {
        match self {
            Kind::File => 0,
            Kind::Dir => 1,
            Kind::Symlink => 2,
            Kind::Hardlink => 3,
        }
    }

    pub fn tar_type(self) -> tar::EntryType {
        match self {
            Kind::File => tar::EntryType::Regular,
            Kind::Dir => tar::EntryType::Directory,
            Kind::Symlink => tar::EntryType::Symlink,
            Kind::Hardlink => tar::EntryType::Link,
        }
    }
}

/// What an entry's tar header blocks say, where a test wants it to differ
/// from the index (each `None` or default: agree with the index).
#[derive(Clone, Debug, Default)]
pub struct TarSide {
    /// The path as the header gives it (default: the index path, with a
    /// trailing `/` for directories).
    pub path: Option<Vec<u8>>,
    /// The link target as the header gives it.
    pub link: Option<Vec<u8>>,
    /// The ustar prefix field (default empty).
    pub prefix: Option<Vec<u8>>,
    pub entry_type: Option<tar::EntryType>,
    /// The raw typeflag byte, written after everything else.
    pub typeflag: Option<u8>,
    pub mode: Option<u32>,
    pub size: Option<u64>,
    /// Extra pax records after `path` and `linkpath`.
    pub pax: Vec<(String, Vec<u8>)>,
    /// Carry the path in a pax record even when ustar could hold it.
    pub force_pax: bool,
    /// The pax header's size field, if it is to lie.
    pub pax_size: Option<u64>,
    /// Break the ustar header's checksum.
    pub bad_checksum: bool,
    /// Break the pax header's checksum (needs a pax header).
    pub bad_pax_checksum: bool,
    /// A GNU header (magic `ustar  `) instead of ustar.
    pub gnu: bool,
    /// Another valid ustar header block before the real one, without pax.
    pub extra_block: bool,
    /// Byte the data is padded with.
    pub padding: u8,
    /// Zero blocks inserted after the entry's padding.
    pub gap_after: usize,
}

/// Index fields that are to differ from what the tar stream holds.
#[derive(Clone, Debug, Default)]
pub struct IndexSide {
    /// The path as raw bytes (not UTF-8, say).
    pub path_bytes: Option<Vec<u8>>,
    pub kind: Option<u8>,
    pub mode: Option<u32>,
    pub size: Option<u64>,
    pub link: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub kind: Kind,
    pub path: String,
    pub link: String,
    pub mode: u32,
    pub mtime: i64,
    pub data: Vec<u8>,
    pub tar: TarSide,
    pub index: IndexSide,
}

impl Spec {
    pub fn new(kind: Kind, path: &str, link: &str, mode: u32) -> Self {
        Spec {
            kind,
            path: path.to_owned(),
            link: link.to_owned(),
            mode,
            mtime: 1_700_000_000,
            data: Vec::new(),
            tar: TarSide::default(),
            index: IndexSide::default(),
        }
    }

    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    pub fn mtime(mut self, mtime: i64) -> Self {
        self.mtime = mtime;
        self
    }

    /// Changes what the tar header says.
    pub fn tar(mut self, change: impl FnOnce(&mut TarSide)) -> Self {
        change(&mut self.tar);
        self
    }

    /// Changes what the index says.
    pub fn index(mut self, change: impl FnOnce(&mut IndexSide)) -> Self {
        change(&mut self.index);
        self
    }
}

pub fn file(path: &str, data: &[u8]) -> Spec {
    Spec {
        data: data.to_vec(),
        ..Spec::new(Kind::File, path, "", 0o644)
    }
}

pub fn dir(path: &str) -> Spec {
    Spec::new(Kind::Dir, path, "", 0o755)
}

pub fn symlink(path: &str, target: &str) -> Spec {
    Spec::new(Kind::Symlink, path, target, 0o777)
}

pub fn hardlink(path: &str, target: &str) -> Spec {
    Spec::new(Kind::Hardlink, path, target, 0o644)
}

/// A whole payload: entries, and what may be wrong around them.
#[derive(Clone, Debug, Default)]
pub struct Craft {
    pub entries: Vec<Spec>,
    /// The bytes after the last entry (default: two zero blocks).
    pub end_blocks: Option<Vec<u8>>,
    /// The index's entry count, if it is to lie.
    pub index_count: Option<u64>,
    /// The trailer's index offset, if it is to lie.
    pub trailer_index_offset: Option<u64>,
    /// The trailer's layout version byte, if not 1.
    pub trailer_version: Option<u8>,
}

/// Where an entry landed in the crafted tar stream.
#[derive(Clone, Copy, Debug)]
pub struct Placed {
    pub header_offset: u64,
    /// Offset of the ustar header block (after any pax header).
    pub ustar_offset: u64,
    pub data_offset: u64,
}

/// One pax record, `"LEN key=value\n"` with LEN counting itself.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len = len.to_string().len() + rest;
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

pub fn pad(out: &mut Vec<u8>, byte: u8) {
    let padded = out.len().div_ceil(BLOCK) * BLOCK;
    out.resize(padded, byte);
}

/// Writes `value` into a header field verbatim (NUL-padded).
pub fn set_field(header: &mut tar::Header, at: usize, len: usize, value: &[u8]) {
    assert!(value.len() <= len, "field too short for {value:?}");
    let bytes = header.as_mut_bytes();
    bytes[at..at + len].fill(0);
    bytes[at..at + value.len()].copy_from_slice(value);
}

/// Whether a name fits a ustar name or linkname field as it is.
pub fn fits_ustar(name: &[u8]) -> bool {
    name.len() <= 100 && name.is_ascii() && !name.contains(&0)
}

pub fn break_checksum(header: &mut tar::Header) {
    let sum = header.cksum().expect("set_cksum ran");
    set_field(header, 148, 8, format!("{:06o}\0 ", sum + 1).as_bytes());
}

impl Craft {
    pub fn new(entries: Vec<Spec>) -> Self {
        Craft {
            entries,
            ..Craft::default()
        }
    }

    /// The payload (tar stream, index, trailer) and where each entry is.
    pub fn build(&self) -> (Vec<u8>, Vec<Placed>) {
        let mut out = Vec::new();
        let mut placed = Vec::new();
        for spec in &self.entries {
            placed.push(write_entry(&mut out, spec));
        }
        out.extend_from_slice(self.end_blocks.as_deref().unwrap_or(&[0u8; 2 * BLOCK][..]));
        let index_offset = out.len() as u64;
        let mut index = Vec::new();
        let count = self.index_count.unwrap_or(self.entries.len() as u64);
        index.extend_from_slice(&count.to_be_bytes());
        for (spec, at) in self.entries.iter().zip(&placed) {
            let link = spec.index.link.as_deref().unwrap_or(&spec.link);
            let path = spec
                .index
                .path_bytes
                .as_deref()
                .unwrap_or(spec.path.as_bytes());
            index.push(spec.index.kind.unwrap_or(spec.kind.code()));
            index.extend_from_slice(&spec.index.mode.unwrap_or(spec.mode).to_be_bytes());
            index.extend_from_slice(&spec.mtime.to_be_bytes());
            let size = spec.index.size.unwrap_or(spec.data.len() as u64);
            index.extend_from_slice(&size.to_be_bytes());
            index.extend_from_slice(&at.header_offset.to_be_bytes());
            index.extend_from_slice(&at.data_offset.to_be_bytes());
            index.extend_from_slice(&(path.len() as u32).to_be_bytes());
            index.extend_from_slice(&(link.len() as u32).to_be_bytes());
            index.extend_from_slice(path);
            index.extend_from_slice(link.as_bytes());
        }
        out.extend_from_slice(&index);
        let trailer_offset = self.trailer_index_offset.unwrap_or(index_offset);
        out.extend_from_slice(&trailer_offset.to_be_bytes());
        out.extend_from_slice(&(index.len() as u64).to_be_bytes());
        out.extend_from_slice(MAGIC);
        if let Some(version) = self.trailer_version {
            *out.last_mut().expect("magic") = version;
        }
        (out, placed)
    }

    pub fn payload(&self) -> Vec<u8> {
        self.build().0
    }
}

/// Appends one entry's header blocks, data and padding to `out`.
pub fn write_entry(out: &mut Vec<u8>, spec: &Spec) -> Placed {
    let header_offset = out.len() as u64;
    let t = &spec.tar;
    let tar_path = t.path.clone().unwrap_or_else(|| {
        let mut path = spec.path.clone().into_bytes();
        if spec.kind == Kind::Dir {
            path.push(b'/');
        }
        path
    });
    let tar_link = t
        .link
        .clone()
        .unwrap_or_else(|| spec.link.clone().into_bytes());
    let mut header = if t.gnu {
        tar::Header::new_gnu()
    } else {
        tar::Header::new_ustar()
    };
    let mut pax = Vec::new();
    if fits_ustar(&tar_path) && !t.force_pax {
        set_field(&mut header, 0, 100, &tar_path);
    } else {
        pax.extend(pax_record("path", &tar_path));
        set_field(&mut header, 0, 100, b"kuvert-pax/x");
    }
    if let Some(prefix) = &t.prefix {
        set_field(&mut header, 345, 155, prefix);
    }
    if fits_ustar(&tar_link) {
        set_field(&mut header, 157, 100, &tar_link);
    } else {
        pax.extend(pax_record("linkpath", &tar_link));
    }
    for (key, value) in &t.pax {
        pax.extend(pax_record(key, value));
    }
    header.set_entry_type(t.entry_type.unwrap_or(spec.kind.tar_type()));
    header.set_size(t.size.unwrap_or(spec.data.len() as u64));
    header.set_mode(t.mode.unwrap_or(spec.mode));
    header.set_mtime(spec.mtime.clamp(0, USTAR_MAX) as u64);
    if let Some(flag) = t.typeflag {
        header.as_mut_bytes()[156] = flag;
    }
    header.set_cksum();
    if t.bad_checksum {
        break_checksum(&mut header);
    }
    if !pax.is_empty() {
        let mut pax_header = tar::Header::new_ustar();
        set_field(&mut pax_header, 0, 100, b"PaxHeader");
        pax_header.set_entry_type(tar::EntryType::XHeader);
        pax_header.set_size(t.pax_size.unwrap_or(pax.len() as u64));
        pax_header.set_mode(0o644);
        pax_header.set_cksum();
        if t.bad_pax_checksum {
            break_checksum(&mut pax_header);
        }
        out.extend_from_slice(pax_header.as_bytes());
        out.extend_from_slice(&pax);
        pad(out, 0);
    }
    if t.extra_block {
        let mut extra = tar::Header::new_ustar();
        set_field(&mut extra, 0, 100, b"extra");
        extra.set_entry_type(tar::EntryType::Regular);
        extra.set_size(0);
        extra.set_mode(0o644);
        extra.set_cksum();
        out.extend_from_slice(extra.as_bytes());
    }
    let ustar_offset = out.len() as u64;
    out.extend_from_slice(header.as_bytes());
    let data_offset = out.len() as u64;
    out.extend_from_slice(&spec.data);
    pad(out, t.padding);
    out.resize(out.len() + t.gap_after * BLOCK, 0);
    Placed {
        header_offset,
        ustar_offset,
        data_offset,
    }
}

pub fn craft(entries: Vec<Spec>) -> Vec<u8> {
    Craft::new(entries).payload()
}

/// The key the crafted archives are sealed to.
pub fn identity() -> kuvert::X25519Identity {
    kuvert::X25519Identity::from_bytes([0x5A; 32])
}

/// Seals a raw archive content to [`identity`]: the public sealer refuses
/// such archives; this hook seals any content under the archive kind
/// (SPEC.md §6.7).
pub fn seal_raw_archive(payload: &[u8]) -> Vec<Vec<u8>> {
    use std::io::Write as _;
    let sealer = kuvert::Sealer::new()
        .recipient(identity().to_public())
        .chunk_size(4096)
        .threads(1);
    let mut writer = kuvert::testing::seal_content(
        &sealer,
        kuvert::MemorySink::new(),
        kuvert::PayloadKind::Archive,
    )
    .expect("seal");
    writer.write_all(payload).expect("write");
    writer.finish().expect("finish").into_volumes()
}
