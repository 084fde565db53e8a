//! The library as a tool author meets it: keys parsed with `FromStr` and
//! from files, builders that take keys of one kind, sources of several
//! types opened as one set, and a set sealed to a plain `Write`.

use std::fs;
use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime};

use kuvert::{
    Error, FileSource, Identity, KeyError, MemorySink, Opener, Recipient, Sealer, VolumeSource,
    WriteSink, X25519Identity, X25519Recipient, parse_recipients_file,
};

/// Content bytes that are not all alike.
fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// The typed error, whether `?` left it inside an `Error::Io` or not.
fn typed(err: Error) -> Error {
    match err {
        Error::Io(inner) => Error::from_io(inner),
        other => other,
    }
}

fn split_set(identity: &X25519Identity, content: &[u8]) -> Vec<Vec<u8>> {
    let mut writer = Sealer::new()
        .recipient(identity.to_public())
        .chunk_size(4096)
        .volume_size(4 * 4096)
        .threads(1)
        .seal(MemorySink::new())
        .expect("seal");
    writer.write_all(content).expect("write");
    writer.finish().expect("finish").into_volumes()
}

#[test]
fn file_and_memory_volumes_open_as_one_set() {
    let identity = X25519Identity::generate().expect("os randomness");
    let content = data(40_000);
    let volumes = split_set(&identity, &content);
    assert!(volumes.len() >= 3, "{} volumes", volumes.len());
    let dir = tempfile::tempdir().expect("tempdir");
    // Odd volumes from files, even ones from memory, given last first.
    let mut sources: Vec<Box<dyn VolumeSource + Send + Sync>> = Vec::new();
    for (index, volume) in volumes.iter().enumerate() {
        if index % 2 == 0 {
            let path = dir.path().join(format!("set.{:03}.kuv", index + 1));
            fs::write(&path, volume).expect("write volume");
            let source = FileSource::open(&path).expect("open volume");
            assert_eq!(source.name(), Some(path.to_string_lossy().as_ref()));
            sources.push(Box::new(source));
        } else {
            sources.push(Box::new(volume.clone()));
        }
    }
    sources.reverse();
    let opener = Opener::new().identity(identity).threads(2);
    let mut reader = opener.clone().open(sources).expect("open mixed set");
    let mut opened = Vec::new();
    reader.copy_to(&mut opened, u64::MAX).expect("copy");
    assert_eq!(opened, content);

    // Without `Send + Sync` the boxes still open and read.
    let plain: Vec<Box<dyn VolumeSource>> = volumes
        .iter()
        .map(|volume| Box::new(&volume[..]) as Box<dyn VolumeSource>)
        .collect();
    let mut again = Vec::new();
    opener
        .open(plain)
        .expect("open")
        .read_to_end(&mut again)
        .expect("read");
    assert_eq!(again, content);
}

#[test]
fn a_write_sink_round_trips_and_refuses_a_split() {
    let identity = X25519Identity::generate().expect("os randomness");
    let content = data(70_000);
    let sealer = Sealer::new().recipient(identity.to_public()).threads(1);
    let mut writer = sealer
        .clone()
        .seal(WriteSink::new(io::BufWriter::new(Vec::new())))
        .expect("seal");
    writer.write_all(&content).expect("write");
    let out = writer.finish().expect("finish").into_inner();
    let volume = out.into_inner().expect("flushed by finish");
    // The same bytes a memory sink gets, volume for volume.
    let mut opened = Vec::new();
    Opener::new()
        .identity(identity.clone())
        .open_one(volume)
        .expect("open")
        .read_to_end(&mut opened)
        .expect("read");
    assert_eq!(opened, content);

    // A set that needs a second volume: refused when volume 2 starts,
    // through `Write` and through `finish` alike.
    let split = sealer.chunk_size(4096).volume_size(4 * 4096);
    let mut writer = split.seal(WriteSink::new(Vec::new())).expect("seal");
    // Batches of about 1 MiB go out as more arrive: 4 MiB reach volume 2.
    let err = writer.write_all(&data(4 << 20)).expect_err("volume 2");
    assert!(matches!(
        Error::from_io(err),
        Error::SplitRefused { volume: 2 }
    ));
    let mut writer = split.seal(WriteSink::new(Vec::new())).expect("seal");
    writer
        .write_all(&content[..20_000])
        .expect("fits volume 1 so far");
    let err = writer.finish().map(drop).expect_err("volume 2 at the end");
    assert!(
        matches!(typed(err), Error::SplitRefused { volume: 2 }),
        "split refusal"
    );
}

#[test]
fn keys_round_trip_through_from_str_and_display() {
    let identity = X25519Identity::generate().expect("os randomness");
    let recipient = identity.to_public();
    for text in [recipient.to_string(), recipient.to_age_string()] {
        assert_eq!(text.parse::<X25519Recipient>().expect("x25519"), recipient);
        let parsed: Recipient = text.parse().expect("recipient");
        assert_eq!(parsed, Recipient::X25519(recipient.clone()));
        assert_eq!(
            parsed.to_string().parse::<Recipient>().expect("again"),
            parsed
        );
    }
    for text in [identity.to_secret_string(), identity.to_age_secret_string()] {
        let parsed: Identity = text.parse().expect("identity");
        assert_eq!(
            parsed.to_recipient(),
            Some(Recipient::X25519(recipient.clone()))
        );
        let Identity::X25519(inner) = &parsed else {
            unreachable!("one kind of identity")
        };
        assert_eq!(inner.to_secret_string(), identity.to_secret_string());
    }
    assert!(matches!(
        recipient.to_string().parse::<Identity>(),
        Err(Error::InvalidKey { .. })
    ));
}

#[test]
fn empty_key_files_are_errors_for_both_parsers() {
    for text in ["", "# created: 2026-11-29T05:01:20Z\n\n  \n"] {
        assert!(matches!(
            Identity::parse_file(text),
            Err(Error::EmptyKeyFile { what: "identity" })
        ));
        assert!(matches!(
            parse_recipients_file(text),
            Err(Error::EmptyKeyFile { what: "recipient" })
        ));
    }
    let identity = X25519Identity::generate().expect("os randomness");
    let text = format!("# ok\n{}\nnonsense\n", identity.to_public());
    let err = parse_recipients_file(&text).expect_err("line 3");
    assert!(matches!(
        &err,
        Error::KeyFileLine {
            what: "recipient",
            line: 3,
            reason: KeyError::Bech32 { what: "recipient" }
        }
    ));
    assert_eq!(
        err.to_string(),
        "line 3 is not a recipient: not a valid recipient: not bech32, or its checksum fails"
    );
}

#[test]
fn written_identity_files_parse_back_in_age_keygen_shape() {
    let identity = X25519Identity::generate().expect("os randomness");
    let created = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_928_480);
    for (file, public, secret) in [
        (
            identity.to_file_string(created),
            identity.to_public().to_string(),
            identity.to_secret_string(),
        ),
        (
            identity.to_age_file_string(created),
            identity.to_public().to_age_string(),
            identity.to_age_secret_string(),
        ),
    ] {
        assert_eq!(
            *file,
            format!(
                "# created: 2026-11-29T05:01:20Z\n# public key: {public}\n{}\n",
                secret.as_str()
            )
        );
        let parsed = Identity::parse_file(&file).expect("parses back");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].to_recipient(), Some(identity.to_public().into()));
    }
}

#[test]
fn builders_take_keys_of_one_kind() {
    let identities: Vec<X25519Identity> = (0..3)
        .map(|_| X25519Identity::generate())
        .collect::<Result<_, _>>()
        .expect("os randomness");
    let recipients: Vec<X25519Recipient> =
        identities.iter().map(X25519Identity::to_public).collect();
    let mut writer = Sealer::new()
        .recipients(recipients)
        .threads(1)
        .seal(MemorySink::new())
        .expect("seal");
    writer.write_all(b"to three").expect("write");
    let volumes = writer.finish().expect("finish").into_volumes();
    // Each identity opens alone; a Vec<X25519Identity> goes in as it is.
    for one in &identities {
        let mut opened = Vec::new();
        Opener::new()
            .identities(vec![one.clone()])
            .open(volumes.clone())
            .expect("open")
            .read_to_end(&mut opened)
            .expect("read");
        assert_eq!(opened, b"to three");
    }
    let mut opened = Vec::new();
    Opener::new()
        .identities(identities)
        .open(volumes)
        .expect("open")
        .read_to_end(&mut opened)
        .expect("read");
    assert_eq!(opened, b"to three");
}
