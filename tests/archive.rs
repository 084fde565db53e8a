//! The archive layer through the public API: round trips from disk, the
//! index, single-entry reads, tar compatibility and staged extraction.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use kuvert::archive::{ArchiveLimits, ArchiveWriter, EntryKind, ExtractOptions, Payload};
use kuvert::{Error, MemorySink, Opener, Sealer, X25519Identity};

const CHUNK: usize = 4096;

fn identity() -> X25519Identity {
    X25519Identity::from_bytes([7; 32])
}

fn writer() -> ArchiveWriter<MemorySink> {
    Sealer::new()
        .recipient(identity().to_public())
        .chunk_size(CHUNK)
        .volume_size(2048 + 3 * CHUNK as u64)
        .seal_archive(MemorySink::new())
        .expect("seal")
}

fn open(volumes: Vec<Vec<u8>>) -> Payload<Vec<u8>> {
    let reader = Opener::new()
        .identity(identity())
        .open(volumes)
        .expect("open");
    Payload::detect(reader, &ArchiveLimits::new().max_index_len(1 << 20)).expect("detect")
}

fn archive(volumes: Vec<Vec<u8>>) -> kuvert::archive::Archive<Vec<u8>> {
    match open(volumes) {
        Payload::Archive(archive) => archive,
        Payload::Stream(_) => panic!("an archive was sealed"),
    }
}

/// A small tree: nested directories, a multi-chunk file, an empty file and
/// a relative symlink.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("extract/2024")).expect("mkdir");
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(root.join("extract/2024/patients.csv"), &big).expect("write");
    fs::write(root.join("extract/empty.txt"), b"").expect("write");
    fs::write(root.join("extract/readme.txt"), b"register extract\n").expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink("2024/patients.csv", root.join("extract/latest.csv"))
        .expect("symlink");
}

fn sealed_tree() -> (tempfile::TempDir, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().expect("tempdir");
    make_tree(dir.path());
    let mut archive = writer();
    archive
        .append_path(&dir.path().join("extract"), "extract")
        .expect("append");
    let volumes = archive.finish().expect("finish").into_volumes();
    (dir, volumes)
}

#[test]
fn a_tree_round_trips_through_extraction() {
    let (source, volumes) = sealed_tree();
    assert!(volumes.len() > 2, "the tree spans several volumes");
    let mut archive = archive(volumes);
    let paths: Vec<&str> = archive.entries().iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "extract",
            "extract/2024",
            "extract/2024/patients.csv",
            "extract/empty.txt",
            "extract/latest.csv",
            "extract/readme.txt"
        ]
    );
    let dest = tempfile::tempdir().expect("dest");
    let report = archive
        .extract(dest.path(), &ExtractOptions::default())
        .expect("extract");
    assert_eq!(report.extracted.len(), 6);
    for file in ["2024/patients.csv", "empty.txt", "readme.txt"] {
        assert_eq!(
            fs::read(dest.path().join("extract").join(file)).expect("extracted"),
            fs::read(source.path().join("extract").join(file)).expect("source"),
            "{file}"
        );
    }
    #[cfg(unix)]
    assert_eq!(
        fs::read_link(dest.path().join("extract/latest.csv")).expect("link"),
        Path::new("2024/patients.csv")
    );
    // Nothing but the extracted tree: the staging directory is gone.
    assert_eq!(fs::read_dir(dest.path()).expect("list").count(), 1);
}

#[test]
fn one_entry_reads_without_the_rest() {
    let (source, volumes) = sealed_tree();
    let mut archive = archive(volumes);
    let entry = archive.entry("extract/readme.txt").expect("entry").clone();
    assert_eq!(entry.kind, EntryKind::File);
    assert_eq!(entry.size, 17);
    let mut data = Vec::new();
    archive
        .read_entry(&entry.path)
        .expect("seek")
        .read_to_end(&mut data)
        .expect("read");
    assert_eq!(
        data,
        fs::read(source.path().join("extract/readme.txt")).expect("source")
    );

    let dest = tempfile::tempdir().expect("dest");
    let options = ExtractOptions::new().entries(["extract/2024"]);
    let report = archive.extract(dest.path(), &options).expect("extract");
    assert_eq!(
        report.extracted,
        ["extract/2024", "extract/2024/patients.csv"]
    );
    assert!(!dest.path().join("extract/readme.txt").exists());

    let missing = ExtractOptions::new().entries(["nope"]);
    assert!(matches!(
        archive.extract(dest.path(), &missing),
        Err(Error::EntryNotFound { path }) if path == "nope"
    ));
}

#[test]
fn the_tar_stream_is_plain_tar() {
    let (_source, volumes) = sealed_tree();
    let mut archive = archive(volumes);
    let mut tar_bytes = Vec::new();
    archive
        .tar_reader()
        .expect("seek")
        .read_to_end(&mut tar_bytes)
        .expect("read");
    assert_eq!(tar_bytes.len() as u64, archive.tar_len());
    let mut names = Vec::new();
    let mut reader = tar::Archive::new(tar_bytes.as_slice());
    for entry in reader.entries().expect("tar") {
        let entry = entry.expect("tar entry");
        names.push(entry.path().expect("path").display().to_string());
    }
    let indexed: Vec<String> = archive.entries().iter().map(|e| e.path.clone()).collect();
    let names: Vec<String> = names
        .into_iter()
        .map(|n| n.trim_end_matches('/').to_owned())
        .collect();
    assert_eq!(names, indexed);
}

#[test]
fn long_and_unicode_names_use_pax_records() {
    let mut archive = writer();
    let long = format!("{}/{}", "a".repeat(150), "b".repeat(120));
    archive
        .append_file(&long, &b"long"[..], 4, 0o640, 1_700_000_000)
        .expect("long");
    archive
        .append_file("diagnosen/größe.csv", &b"x"[..], 1, 0o600, 1_700_000_000)
        .expect("unicode");
    let volumes = archive.finish().expect("finish").into_volumes();
    let mut archive = self::archive(volumes);
    let mut tar_bytes = Vec::new();
    archive
        .tar_reader()
        .expect("seek")
        .read_to_end(&mut tar_bytes)
        .expect("read");
    let mut reader = tar::Archive::new(tar_bytes.as_slice());
    let names: Vec<String> = reader
        .entries()
        .expect("tar")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(names, [long.as_str(), "diagnosen/größe.csv"]);
}

#[test]
fn a_stream_is_not_an_archive() {
    let mut writer = Sealer::new()
        .recipient(identity().to_public())
        .seal(MemorySink::new())
        .expect("seal");
    writer.write_all(&[0u8; 100]).expect("write");
    let volumes = writer.finish().expect("finish").into_volumes();
    match open(volumes) {
        Payload::Stream(mut reader) => {
            let mut data = Vec::new();
            reader.read_to_end(&mut data).expect("read from the start");
            assert_eq!(data, [0u8; 100]);
        }
        Payload::Archive(_) => panic!("a stream was sealed"),
    }
}

#[test]
fn existing_destinations_are_not_replaced_without_overwrite() {
    let (_source, volumes) = sealed_tree();
    let dest = tempfile::tempdir().expect("dest");
    fs::create_dir(dest.path().join("extract")).expect("existing");
    fs::write(dest.path().join("extract/mine.txt"), b"keep").expect("existing file");
    let mut archive = archive(volumes);
    assert!(matches!(
        archive.extract(dest.path(), &ExtractOptions::default()),
        Err(Error::DestinationExists { .. })
    ));
    assert_eq!(
        fs::read(dest.path().join("extract/mine.txt")).expect("kept"),
        b"keep"
    );
    assert_eq!(fs::read_dir(dest.path()).expect("list").count(), 1);
}

#[test]
fn a_damaged_chunk_leaves_the_destination_untouched_or_is_salvaged() {
    let (_source, volumes) = sealed_tree();
    // Damage the first data chunk of volume 2: inside patients.csv.
    let mut damaged = volumes.clone();
    damaged[1][2048 + 100] ^= 1;

    let dest = tempfile::tempdir().expect("dest");
    let err = archive(damaged.clone())
        .extract(dest.path(), &ExtractOptions::default())
        .expect_err("damaged");
    assert!(
        matches!(&err, Error::Unauthenticated { at, .. } if at.volume == kuvert::Volume::Number(2)),
        "{err:?}"
    );
    assert_eq!(
        fs::read_dir(dest.path()).expect("list").count(),
        0,
        "nothing left behind"
    );

    let salvage = ExtractOptions::new().salvage(true);
    let report = archive(damaged)
        .extract(dest.path(), &salvage)
        .expect("salvage");
    assert_eq!(report.damaged.len(), 1);
    assert_eq!(report.damaged[0].path, "extract/2024/patients.csv");
    assert!(report.damaged[0].start.0 <= 2 && report.damaged[0].end.0 >= 2);
    assert!(!dest.path().join("extract/2024/patients.csv").exists());
    assert_eq!(
        fs::read(dest.path().join("extract/readme.txt")).expect("kept"),
        b"register extract\n"
    );
}

#[test]
fn disk_errors_name_the_file_being_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("gone.csv");
    let mut archive = writer();
    match archive.append_path(&missing, "gone.csv") {
        Err(Error::Input { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Error::Input, got {other:?}"),
    }
}

#[test]
fn open_archive_opens_archives_and_refuses_streams() {
    let (_dir, volumes) = sealed_tree();
    let opener = Opener::new().identity(identity());
    let limits = ArchiveLimits::new().max_index_len(1 << 20);
    let archive = opener.open_archive(volumes, &limits).expect("open_archive");
    assert!(archive.entry("extract/readme.txt").is_some());

    let mut stream = Sealer::new()
        .recipient(identity().to_public())
        .seal(MemorySink::new())
        .expect("seal");
    stream.write_all(b"not an archive").expect("write");
    let volumes = stream.finish().expect("finish").into_volumes();
    assert!(matches!(
        opener.open_archive(volumes, &limits),
        Err(Error::NotAnArchive)
    ));
}

#[test]
fn a_failed_detect_gives_the_reader_back() {
    let (_dir, volumes) = sealed_tree();
    let reader = Opener::new()
        .identity(identity())
        .open(volumes)
        .expect("open");
    let err = Payload::try_detect(reader, &ArchiveLimits::new().max_entries(1))
        .expect_err("six entries are above a limit of one");
    assert!(matches!(err.error(), Error::LimitExceeded { .. }));
    // The same reader, with its key: no second open (or Argon2id run).
    match Payload::try_detect(err.into_reader(), &ArchiveLimits::new()) {
        Ok(Payload::Archive(archive)) => assert_eq!(archive.entries().len(), 6),
        _ => panic!("the archive opens with the reader given back"),
    }
    // And `?` turns the error into an `Error`.
    let reader = Opener::new()
        .identity(identity())
        .open(sealed_tree().1)
        .expect("open");
    let detect = || -> Result<Payload<Vec<u8>>, Error> {
        Ok(Payload::try_detect(
            reader,
            &ArchiveLimits::new().max_entries(1),
        )?)
    };
    assert!(matches!(detect(), Err(Error::LimitExceeded { .. })));
}
