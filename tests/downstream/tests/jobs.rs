//! The main jobs, as a crate that depends on kuvert writes them (issue 9):
//! seal generated CSV rows onto small volumes, open them given in reverse
//! order and seek, seal a directory as an archive and read one entry,
//! verify after a byte flips in each of two chunks, and read lines through
//! a damaged chunk, matching the typed error after `?`.
//!
//! Only the public API of `kuvert` without default features: no test hooks,
//! random keys, files in a temporary directory.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use kuvert::archive::{ArchiveLimits, EntryKind};
use kuvert::{
    DamageKind, Error, FileSink, FileSource, Opener, Sealer, Volume, X25519Identity, inspect,
};
use kuvert_downstream::{Extract, extract};

/// 1 MiB volumes, so that a few MB of rows make a set of several.
const VOLUME_SIZE: u64 = 1 << 20;
/// 64 KiB chunks: 15 to a volume.
const CHUNK_SIZE: usize = 64 << 10;
/// About 3.3 MB of CSV: four volumes.
const ROWS: usize = 80_000;

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// A sealed extract: the key, the rows, and the volume files in order.
struct Sealed {
    _dir: tempfile::TempDir,
    identity: X25519Identity,
    extract: Extract,
    volumes: Vec<PathBuf>,
}

impl Sealed {
    /// Seals `ROWS` generated rows, written one line at a time through
    /// `SealWriter`, into `register.NNN.kuv` files.
    fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let identity = X25519Identity::generate()?;
        let extract = extract(ROWS, 2026);
        let mut writer = Sealer::new()
            .recipient(identity.to_public())
            .chunk_size(CHUNK_SIZE)
            .volume_size(VOLUME_SIZE)
            .seal(FileSink::new(dir.path().join("register.kuv")))?;
        for index in 0..extract.line_starts.len() {
            writer.write_all(extract.line(index))?;
            writer.write_all(b"\n")?;
        }
        let volumes = writer.finish()?.paths().to_vec();
        Ok(Sealed {
            _dir: dir,
            identity,
            extract,
            volumes,
        })
    }

    fn opener(&self) -> Opener {
        Opener::new().identity(self.identity.clone())
    }

    fn sources(&self, paths: &[PathBuf]) -> Result<Vec<FileSource>, Error> {
        paths.iter().map(FileSource::open).collect()
    }
}

/// Flips the low bit of byte `offset` of the file at `path`.
fn flip(path: &Path, offset: u64) -> Result<()> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut byte)?;
    byte[0] ^= 1;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(&byte)?;
    Ok(())
}

/// Job 1: the rows go onto numbered volumes of at most `VOLUME_SIZE`
/// bytes, each with its own header, and come back byte for byte.
#[test]
fn generated_rows_are_sealed_onto_small_volumes() -> Result<()> {
    let sealed = Sealed::new()?;
    let names: Vec<String> = sealed
        .volumes
        .iter()
        .map(|path| {
            path.file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "register.001.kuv",
            "register.002.kuv",
            "register.003.kuv",
            "register.004.kuv"
        ]
    );
    let sources = sealed.sources(&sealed.volumes)?;
    let first = inspect(&sources[0])?;
    for (number, source) in (1..).zip(&sources) {
        let info = inspect(source)?;
        assert_eq!((info.volume, info.set_id), (number, first.set_id));
        assert_eq!(info.chunk_size, CHUNK_SIZE);
        assert!(
            info.len <= VOLUME_SIZE,
            "volume {number}: {} bytes",
            info.len
        );
    }
    let mut reader = sealed.opener().open(sources)?;
    assert_eq!(reader.volume_count(), 4);
    assert_eq!(reader.len(), sealed.extract.csv.len() as u64);
    let mut csv = Vec::new();
    reader.read_to_end(&mut csv)?;
    assert!(csv == sealed.extract.csv, "the rows differ after opening");
    Ok(())
}

/// Job 2: the volumes given last to first open as one set, and seeking
/// backwards through it lands on the right rows: one across a chunk
/// boundary, one across a volume boundary, the last, the first.
#[test]
fn volumes_given_in_reverse_open_and_seek_to_rows() -> Result<()> {
    let sealed = Sealed::new()?;
    let reversed: Vec<PathBuf> = sealed.volumes.iter().rev().cloned().collect();
    let mut reader = sealed.opener().open(sealed.sources(&reversed)?)?;
    let per_volume = inspect(&FileSource::open(&sealed.volumes[0])?)?.chunks_per_volume;
    let extract = &sealed.extract;
    let last = extract.line_starts.len() - 1;
    // The rows holding the last byte before chunk 3 and before volume 3's
    // first chunk: each straddles the boundary unless a line starts there.
    let across_chunk = extract.line_at(reader.chunk_span(3).start - 1);
    let across_volume = extract.line_at(reader.chunk_span(2 * per_volume).start - 1);
    assert_eq!(reader.locate(reader.chunk_span(2 * per_volume).start).0, 3);
    let mut lines = vec![last, across_volume, across_chunk, ROWS / 2 + 7, 1, 0];
    lines.sort_unstable_by(|a, b| b.cmp(a));
    for line in lines {
        let want = extract.line(line);
        let at = reader.seek(SeekFrom::Start(extract.line_starts[line]))?;
        assert_eq!(at, extract.line_starts[line]);
        let mut got = vec![0; want.len() + 1];
        reader.read_exact(&mut got)?;
        assert_eq!(&got[..want.len()], want, "line {line}");
        assert_eq!(got[want.len()], b'\n', "line {line}");
    }
    // Relative seeks: the last line from the end, then back over it.
    let tail = extract.line(last).len() as i64 + 1;
    reader.seek(SeekFrom::End(-tail))?;
    let mut got = Vec::new();
    reader.read_to_end(&mut got)?;
    assert_eq!(&got[..got.len() - 1], extract.line(last));
    assert_eq!(
        reader.seek(SeekFrom::Current(-tail))?,
        extract.line_starts[last]
    );
    reader.seek(SeekFrom::Start(0))?;
    let mut csv = Vec::new();
    reader.read_to_end(&mut csv)?;
    assert!(
        csv == extract.csv,
        "the rows differ after seeking back to 0"
    );
    Ok(())
}

/// Job 3: a directory sealed as an archive; its index lists every entry,
/// one entry reads back alone, and a name that is not there is an error.
#[test]
fn a_directory_is_sealed_as_an_archive_and_one_entry_read() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("register");
    let persons = extract(20_000, 11).csv;
    let readme = b"persons.csv: one row per person, 2026 extract\n";
    fs::create_dir_all(source.join("notes"))?;
    fs::create_dir(source.join("empty"))?;
    fs::write(source.join("persons.csv"), &persons)?;
    fs::write(source.join("notes/README.txt"), readme)?;

    let identity = X25519Identity::generate()?;
    let mut writer = Sealer::new()
        .recipient(identity.to_public())
        .chunk_size(CHUNK_SIZE)
        .volume_size(VOLUME_SIZE / 2)
        .seal_archive(FileSink::new(dir.path().join("parcel.kuv")))?;
    writer.append_path(&source, "register")?;
    let volumes = writer.finish()?.paths().to_vec();
    assert!(volumes.len() >= 2, "{volumes:?}");

    let sources = volumes
        .iter()
        .rev()
        .map(FileSource::open)
        .collect::<Result<Vec<_>, _>>()?;
    let mut archive = Opener::new()
        .identity(identity)
        .open_archive(sources, &ArchiveLimits::default())?;
    let mut listed: Vec<(&str, EntryKind, u64)> = archive
        .entries()
        .iter()
        .map(|entry| (entry.path.as_str(), entry.kind, entry.size))
        .collect();
    listed.sort_unstable_by_key(|&(path, ..)| path);
    assert_eq!(
        listed,
        [
            ("register", EntryKind::Directory, 0),
            ("register/empty", EntryKind::Directory, 0),
            ("register/notes", EntryKind::Directory, 0),
            (
                "register/notes/README.txt",
                EntryKind::File,
                readme.len() as u64
            ),
            (
                "register/persons.csv",
                EntryKind::File,
                persons.len() as u64
            ),
        ]
    );
    let mut got = Vec::new();
    archive
        .read_entry("register/notes/README.txt")?
        .read_to_end(&mut got)?;
    assert_eq!(got, readme);
    got.clear();
    archive
        .read_entry("register/persons.csv")?
        .read_to_end(&mut got)?;
    assert!(got == persons, "persons.csv differs");
    match archive.read_entry("register/missing.csv") {
        Err(Error::EntryNotFound { path }) => assert_eq!(path, "register/missing.csv"),
        Err(other) => panic!("expected EntryNotFound, got {other:?}"),
        Ok(_) => panic!("an entry that was never sealed was found"),
    }
    Ok(())
}

/// Two chunks of volume 2, damaged by one flipped bit each: where they
/// start in the content and in the file.
struct Damage {
    sealed: Sealed,
    /// Global chunk indices, in order.
    chunks: [u64; 2],
    /// Byte offset of each chunk within volume 2.
    offsets: [u64; 2],
}

impl Damage {
    fn new() -> Result<Self> {
        let sealed = Sealed::new()?;
        let reader = sealed.opener().open(sealed.sources(&sealed.volumes)?)?;
        let per_volume = inspect(&FileSource::open(&sealed.volumes[0])?)?.chunks_per_volume;
        let chunks = [per_volume + 2, per_volume + 9];
        let mut offsets = [0; 2];
        for (at, chunk) in offsets.iter_mut().zip(chunks) {
            let (volume, offset) = reader.locate(reader.chunk_span(chunk).start);
            assert_eq!(volume, 2);
            *at = offset;
            flip(&sealed.volumes[1], offset + 100)?;
        }
        Ok(Damage {
            sealed,
            chunks,
            offsets,
        })
    }
}

/// Job 4: the set verified, given in reverse order, as after burning the
/// discs: the damage map lists both bad chunks, with their volume, byte
/// range and file, and nothing else; each volume verified alone names its
/// first bad chunk.
#[test]
fn verify_maps_both_damaged_chunks_after_byte_flips() -> Result<()> {
    let damage = Damage::new()?;
    let sealed = &damage.sealed;
    let opener = sealed.opener();
    let mut reversed = sealed.volumes.clone();
    reversed.reverse();
    let report = opener.verify_set(&sealed.sources(&reversed)?)?;
    assert!(!report.is_intact());
    assert!(report.check.is_complete(), "all four volumes are there");
    let runs: Vec<_> = report.damage.iter().collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for (run, (&chunk, &offset)) in runs.iter().zip(damage.chunks.iter().zip(&damage.offsets)) {
        assert_eq!(run.kind, DamageKind::Unauthenticated);
        assert_eq!(run.chunks, chunk..chunk + 1);
        assert_eq!(run.at.volume, Volume::Number(2));
        assert_eq!(run.at.offset, Some(offset));
        assert_eq!(run.bytes.start, offset);
        assert_eq!(run.bytes.end - run.bytes.start, CHUNK_SIZE as u64);
        let name = run.at.name.as_deref().expect("a file's name");
        assert!(name.ends_with("register.002.kuv"), "{name}");
    }
    for (number, path) in (1..).zip(&sealed.volumes) {
        let result = opener.verify_volume(&FileSource::open(path)?);
        if number == 2 {
            match result {
                Err(Error::Unauthenticated { chunk, at }) => assert_eq!(
                    (chunk, at.volume, at.offset),
                    (damage.chunks[0], Volume::Number(2), Some(damage.offsets[0]))
                ),
                other => panic!("volume 2: expected Unauthenticated, got {other:?}"),
            }
        } else {
            let report = result?;
            assert_eq!(report.volume, number);
            assert_eq!(report.last_in_set, number == 4);
        }
    }
    Ok(())
}

/// Reads the extract line by line with `?` throughout, as application code
/// does, checking each row against `extract` and counting them in `rows`.
fn read_rows<R: Read>(reader: R, extract: &Extract, rows: &mut usize) -> Result<(), Error> {
    for line in BufReader::new(reader).lines() {
        let line = line?;
        assert_eq!(line.as_bytes(), extract.line(*rows), "line {}", *rows);
        *rows += 1;
    }
    Ok(())
}

/// Job 5: `BufReader::lines` through the damaged set gives every row before
/// the first bad chunk, then, after `?`, kuvert's own error naming that
/// chunk (not a bare `io::Error`).
#[test]
fn lines_through_a_damaged_chunk_end_in_the_typed_error() -> Result<()> {
    let damage = Damage::new()?;
    let sealed = &damage.sealed;
    let reader = sealed.opener().open(sealed.sources(&sealed.volumes)?)?;
    let released = reader.chunk_span(damage.chunks[0]).start as usize;
    let mut rows = 0;
    match read_rows(reader, &sealed.extract, &mut rows) {
        Err(Error::Unauthenticated { chunk, at }) => assert_eq!(
            (chunk, at.volume, at.offset),
            (damage.chunks[0], Volume::Number(2), Some(damage.offsets[0]))
        ),
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
    let complete = sealed.extract.csv[..released]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count();
    assert_eq!(rows, complete, "rows read before the damaged chunk");
    Ok(())
}
