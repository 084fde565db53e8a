//! Errors a tool author meets through the public API: typed errors that
//! survive `?` out of `Read` adapters, read failures of a source reported
//! with their location, cuts reported as truncation, every located error
//! naming the file it is about, and option errors to match on.

mod common;

use std::io::{BufRead, BufReader};

use kuvert::{Error, FileSource, Location, MemorySink, Opener, OptionError, Sealer, Volume};

use common::{H1, identity, same_identity, seal};

const C: usize = 4096;

/// Text lines, long enough for several chunks.
fn lines(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| format!("row {i:06},some,csv,fields\n").into_bytes())
        .collect()
}

/// Counts the lines of an opened set with `?` straight into `kuvert::Error`.
fn count_lines(volumes: Vec<Vec<u8>>, identity: kuvert::X25519Identity) -> Result<usize, Error> {
    let reader = Opener::new().identity(identity).open(volumes)?;
    let mut count = 0;
    for line in BufReader::new(reader).lines() {
        line?;
        count += 1;
    }
    Ok(count)
}

#[test]
fn question_mark_through_buf_read_lines_keeps_the_typed_error() {
    let key = identity(9);
    let data = lines(2000);
    let mut volumes = seal(&data, C, None, &key);
    assert_eq!(
        count_lines(volumes.clone(), same_identity(&key)).expect("an intact set opens"),
        2000
    );
    // Damage chunk 3.
    let offset = H1 + 3 * C as u64;
    volumes[0][offset as usize + 100] ^= 0x40;
    match count_lines(volumes, same_identity(&key)) {
        Err(Error::Unauthenticated { chunk: 3, at }) => {
            assert_eq!(at, Location::volume(1).byte(offset).chunk(3));
        }
        other => panic!("expected chunk 3 unauthenticated, got {other:?}"),
    }
}

/// EIO, as an unreadable disc sector gives it.
const EIO: i32 = 5;

/// A volume in memory, named like a file, whose bytes at `bad` cannot be
/// read: any read overlapping that byte fails with EIO.
struct FailingSource {
    bytes: Vec<u8>,
    bad: u64,
    name: String,
}

impl kuvert::VolumeSource for FailingSource {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if (offset..offset + buf.len() as u64).contains(&self.bad) {
            return Err(std::io::Error::from_raw_os_error(EIO));
        }
        self.bytes.read_exact_at(buf, offset)
    }

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
}

/// Chunk C = 4096, 4 chunks per volume: volume 2 holds chunks 4..8 at
/// H + (chunk − 4)·C, volume 3 the rest.
fn three_volumes(key: &kuvert::X25519Identity) -> Vec<Vec<u8>> {
    let volume_size = H1 + 4 * C as u64;
    let volumes = seal(&lines(1700), C, Some(volume_size), key);
    assert_eq!(volumes.len(), 3, "the fixture has three volumes");
    volumes
}

/// The volumes as sources, volume `failing` (from 1) unreadable at `bad`.
fn sources(volumes: &[Vec<u8>], failing: usize, bad: u64) -> Vec<FailingSource> {
    volumes
        .iter()
        .enumerate()
        .map(|(index, bytes)| FailingSource {
            bytes: bytes.clone(),
            bad: if index + 1 == failing { bad } else { u64::MAX },
            name: format!("disc/register.{:03}.kuv", index + 1),
        })
        .collect()
}

/// Checks `err` is a read failure at exactly this place (volume number,
/// and the number in the file name), with EIO as its
/// source, and how it reads.
fn assert_read_at(err: &Error, (volume, file): (Volume, u32), offset: u64, chunk: Option<u64>) {
    let Error::Read { at, source } = err else {
        panic!("expected a read failure, got {err:?}");
    };
    let expected = Location::new(volume)
        .byte(offset)
        .name(Some(format!("disc/register.{file:03}.kuv")));
    let expected = match chunk {
        Some(chunk) => expected.chunk(chunk),
        None => expected,
    };
    assert_eq!(at, &expected);
    assert_eq!(source.raw_os_error(), Some(EIO));
    let source = std::error::Error::source(err).expect("the OS error is the source");
    assert_eq!(
        source.to_string(),
        std::io::Error::from_raw_os_error(EIO).to_string()
    );
    let mut text = format!(
        "cannot read disc/register.{file:03}.kuv ({volume}) at byte {}",
        grouped(offset)
    );
    if let Some(chunk) = chunk {
        text.push_str(&format!(" (chunk {chunk})"));
    }
    assert_eq!(err.to_string(), text);
}

#[test]
fn an_unreadable_sector_is_reported_where_it_is_by_every_path() {
    let key = identity(10);
    let volumes = three_volumes(&key);
    let opener = Opener::new().identity(same_identity(&key));
    // Chunk 5 is the second chunk of volume 2.
    let offset = H1 + C as u64;
    let bad = offset + 1234;

    // Read, and `?` out of it.
    let mut reader = opener
        .open(sources(&volumes, 2, bad))
        .expect("the bad sector is not read when opening");
    let mut out = Vec::new();
    let err = Error::from(std::io::Read::read_to_end(&mut reader, &mut out).expect_err("EIO"));
    assert_read_at(&err, (Volume::Number(2), 2), offset, Some(5));
    assert_eq!(
        out.len() as u64,
        reader.chunk_span(4).end,
        "everything before chunk 5"
    );

    // copy_to, on the opener's threads.
    let mut reader = opener.open(sources(&volumes, 2, bad)).expect("opens");
    let err = reader.copy_to(&mut Vec::new(), u64::MAX).expect_err("EIO");
    assert_read_at(&err, (Volume::Number(2), 2), offset, Some(5));

    // The verifiers.
    let failing = sources(&volumes, 2, bad);
    let err = opener.verify_volume(&failing[1]).expect_err("EIO");
    assert_read_at(&err, (Volume::Number(2), 2), offset, Some(5));
    let err = opener
        .volume_verifier()
        .verify(&failing[1])
        .expect_err("EIO");
    assert_read_at(&err, (Volume::Number(2), 2), offset, Some(5));
    opener.verify_volume(&failing[0]).expect("volume 1 reads");

    // A header: the volume's number is not known yet, so its position
    // among the inputs stands for it.
    let err = opener.open(sources(&volumes, 2, 100)).expect_err("EIO");
    assert_read_at(&err, (Volume::Input(2), 2), 0, None);
    let err = kuvert::inspect(&sources(&volumes, 3, 100)[2]).expect_err("EIO");
    assert_read_at(&err, (Volume::Input(1), 3), 0, None);

    // The last chunk, read while opening.
    let len = volumes[2].len() as u64;
    let last = (len - H1).div_ceil(C as u64) - 1;
    let err = opener.open(sources(&volumes, 3, len - 1)).expect_err("EIO");
    assert_read_at(
        &err,
        (Volume::Number(3), 3),
        H1 + last * C as u64,
        Some(8 + last),
    );
}

#[test]
fn a_cut_that_the_length_proves_is_truncation() {
    let key = identity(11);
    let volumes = three_volumes(&key);
    let opener = Opener::new().identity(same_identity(&key));
    let cut = |len: u64| {
        let mut cut = volumes.clone();
        cut[2].truncate(len as usize);
        opener.open(cut).map(|_| ()).expect_err("cut")
    };
    // Volume 3 cut 16 bytes into its second chunk: a final chunk after
    // data holds more than its tag, so this is what is left of a longer one.
    for len in [H1 + C as u64 + 1, H1 + C as u64 + 15, H1 + C as u64 + 16] {
        match cut(len) {
            Error::Truncated { at } => assert_eq!(at, Location::volume(3).byte(len)),
            other => panic!("cut to {len}: expected truncation, got {other:?}"),
        }
    }
    // 17 bytes could be a whole final chunk of one byte, damaged.
    assert!(matches!(
        cut(H1 + C as u64 + 17),
        Error::Unauthenticated {
            chunk: 9,
            at: Location {
                volume: Volume::Number(3),
                chunk: Some(9),
                ..
            },
        }
    ));
    // A volume other than the last, cut inside a chunk: its length must
    // be that of a full volume.
    let mut short = volumes.clone();
    short[1].truncate(H1 as usize + C + 100);
    assert!(matches!(
        opener.open(short).map(|_| ()).expect_err("cut"),
        Error::Truncated { at } if at == Location::volume(2).byte(H1 + C as u64 + 100)
    ));
}

/// `1234567` as `1,234,567`, as locations print byte offsets.
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Writes `volumes` as files `v.001.kuv`, … in `dir` and opens them as
/// sources, in the order of `order` (indices into `volumes`).
fn file_sources(
    dir: &std::path::Path,
    volumes: &[Vec<u8>],
    order: &[usize],
) -> (Vec<String>, Vec<FileSource>) {
    let names: Vec<String> = (0..volumes.len())
        .map(|index| {
            let path = dir.join(format!("v.{:03}.kuv", index + 1));
            std::fs::write(&path, &volumes[index]).expect("write a volume file");
            path.to_string_lossy().into_owned()
        })
        .collect();
    let sources = order
        .iter()
        .map(|&index| FileSource::open(&names[index]).expect("open a volume file"))
        .collect();
    (names, sources)
}

/// Opens `volumes` from files given in `order`, expecting an error.
fn open_files(
    volumes: &[Vec<u8>],
    order: &[usize],
    key: &kuvert::X25519Identity,
) -> (Vec<String>, Error) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (names, sources) = file_sources(dir.path(), volumes, order);
    let err = Opener::new()
        .identity(same_identity(key))
        .open(sources)
        .map(|_| ())
        .expect_err("the set is broken");
    (names, err)
}

/// The name of the file at `index`, as a location carries it.
fn named(names: &[String], index: usize) -> Option<&str> {
    Some(names[index].as_str())
}

#[test]
fn every_located_error_from_files_names_the_file() {
    let key = identity(12);
    let volumes = three_volumes(&key);

    // Not a kuvert volume, given second: named by position and file.
    let mut garbage = volumes.clone();
    garbage[1] = b"PK\x03\x04 a zip file, not a volume".to_vec();
    let (names, err) = open_files(&garbage, &[0, 1, 2], &key);
    match &err {
        Error::NotKuvert { at } => {
            assert_eq!(at, &Location::input(2).name(named(&names, 1)));
        }
        other => panic!("expected NotKuvert, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("{} (input 2): not a kuvert volume", names[1])
    );

    // A malformed header: the byte of the offending field.
    let mut malformed = volumes.clone();
    malformed[2][10..14].copy_from_slice(&u32::MAX.to_be_bytes());
    let (names, err) = open_files(&malformed, &[2, 0, 1], &key);
    match &err {
        Error::MalformedHeader { at, reason } => {
            assert_eq!(at, &Location::input(1).byte(10).name(named(&names, 2)));
            assert_eq!(*reason, "header length above 1 MiB");
        }
        other => panic!("expected MalformedHeader, got {other:?}"),
    }

    // A damaged chunk, met while opening: the last of volume 3.
    let mut damaged = volumes.clone();
    let len = damaged[2].len();
    damaged[2][len - 1] ^= 1;
    let (names, err) = open_files(&damaged, &[2, 1, 0], &key);
    let last = (len as u64 - H1).div_ceil(C as u64) - 1;
    let offset = H1 + last * C as u64;
    match &err {
        Error::Unauthenticated { chunk, at } => {
            assert_eq!(*chunk, 8 + last);
            assert_eq!(
                at,
                &Location::volume(3)
                    .byte(offset)
                    .chunk(8 + last)
                    .name(named(&names, 2))
            );
        }
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "{} (volume 3) at byte {} (chunk {}): failed authentication",
            names[2],
            grouped(offset),
            8 + last
        )
    );

    // A volume before the last, cut short or with bytes after its end.
    let full = volumes[1].len() as u64;
    let mut cut = volumes.clone();
    cut[1].truncate(full as usize - 10);
    let (names, err) = open_files(&cut, &[0, 1, 2], &key);
    match &err {
        Error::Truncated { at } => {
            assert_eq!(
                at,
                &Location::volume(2).byte(full - 10).name(named(&names, 1))
            );
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    let mut long = volumes.clone();
    long[1].extend_from_slice(&[0; 10]);
    let (names, err) = open_files(&long, &[0, 1, 2], &key);
    match &err {
        Error::TrailingData { at } => {
            assert_eq!(at, &Location::volume(2).byte(full).name(named(&names, 1)));
        }
        other => panic!("expected TrailingData, got {other:?}"),
    }

    // A header that fails authentication: named by position, with the
    // number it claims beside.
    let mut altered = volumes.clone();
    let header_len = u32::from_be_bytes(altered[1][10..14].try_into().expect("L")) as usize;
    altered[1][header_len - 1] ^= 1;
    let (names, err) = open_files(&altered, &[0, 1, 2], &key);
    match &err {
        Error::HeaderDamaged { at, volume: 2 } => {
            assert_eq!(at, &Location::input(2).name(named(&names, 1)));
        }
        other => panic!("expected HeaderDamaged, got {other:?}"),
    }

    // The same volume twice: both copies named.
    let twice = vec![volumes[0].clone(), volumes[1].clone(), volumes[1].clone()];
    let (names, err) = open_files(&twice, &[0, 1, 2], &key);
    match &err {
        Error::DuplicateVolume {
            volume: 2,
            at,
            first,
        } => {
            assert_eq!(at, &Location::input(3).name(named(&names, 2)));
            assert_eq!(**first, Location::input(2).name(named(&names, 1)));
        }
        other => panic!("expected DuplicateVolume, got {other:?}"),
    }
}

/// Seals with options a tool took from its user, with `?` straight into
/// `kuvert::Error`.
fn seal_with_chunk_size(chunk_size: usize) -> Result<Vec<Vec<u8>>, Error> {
    let mut writer = Sealer::new()
        .recipient(identity(13).to_public())
        .chunk_size(chunk_size)
        .seal(MemorySink::new())?;
    std::io::Write::write_all(&mut writer, b"rows")?;
    Ok(writer.finish()?.into_volumes())
}

#[test]
fn option_errors_are_matchable_after_the_question_mark() {
    assert_eq!(
        seal_with_chunk_size(C).expect("a valid chunk size").len(),
        1
    );
    match seal_with_chunk_size(5000) {
        Err(Error::InvalidOption {
            reason: OptionError::ChunkSize { found, min, max },
        }) => assert_eq!((found, min, max), (5000, 4096, 16 << 20)),
        other => panic!("expected a chunk size error, got {other:?}"),
    }
    let err = Sealer::new()
        .seal(MemorySink::new())
        .map(|_| ())
        .expect_err("nobody to seal to");
    assert!(matches!(
        err,
        Error::InvalidOption {
            reason: OptionError::NoRecipients
        }
    ));
    assert_eq!(
        err.to_string(),
        "invalid option: no recipient and no passphrase"
    );
    assert!(matches!(
        Opener::new().threads(0).open(vec![Vec::<u8>::new()]),
        Err(Error::InvalidOption {
            reason: OptionError::NoThreads
        })
    ));
}
