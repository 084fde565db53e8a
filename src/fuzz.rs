//! Entry points for the fuzz targets in fuzz/ and for the stable test that
//! replays their corpora (tests/fuzz_corpus.rs). Not part of the API.
//!
//! Each hook takes arbitrary bytes and must return without panicking,
//! hanging or allocating beyond the documented bounds, whatever they are.

use std::io::{Read, Write};

use crate::archive::Payload;
use crate::{MemorySink, Opener, Padding, PayloadKind, Sealer, X25519Identity, inspect};

/// The secret of the fixed identity the open targets use; the seed corpora
/// are sealed to it (it is `identity(1)` of tests/vectors.rs).
pub const IDENTITY: [u8; 32] = {
    let mut secret = [1u8; 32];
    secret[0] = 0x41;
    secret
};

/// Splits fuzz input into volumes at each occurrence of this separator.
pub const VOLUME_SEPARATOR: &[u8] = b"--kuvert-volume--";

/// Most volumes a fuzz input is split into.
const MAX_VOLUMES: usize = 8;

/// Parses one volume header without a key.
pub fn header(data: &[u8]) {
    let _ = inspect(data);
}

/// Seed of the signing key the trailer target trusts; the signed seed
/// corpus file is signed by it.
pub const SIGNER_SEED: [u8; 32] = [11; 32];

/// Checks `data` as one volume without a key (SPEC.md §7.7: header,
/// trailer, every digest; with the fixed trusted signer, signatures and
/// statement too), reads it whole through a
/// [`DigestCheckedSource`](crate::DigestCheckedSource), and opens it
/// through that source with the fixed identity, and with the signer
/// required.
pub fn trailer(data: &[u8]) {
    let _ = crate::scan_digests(data, 1);
    let signer = *crate::SigningKey::from_seed(SIGNER_SEED).public();
    let _ = crate::verify_signed_volume(data, &signer.into(), 1);
    let required = Opener::new()
        .identity(X25519Identity::from_bytes(IDENTITY))
        .require_signer(signer)
        .threads(1);
    if let Ok(mut reader) = required.open(vec![data]) {
        let _ = reader.copy_to(&mut std::io::sink(), u64::MAX);
    }
    if let Ok(checked) = crate::DigestCheckedSource::new(data) {
        let mut all = vec![0u8; data.len()];
        let _ = crate::VolumeSource::read_exact_at(&checked, &mut all, 0);
        let opener = Opener::new()
            .identity(X25519Identity::from_bytes(IDENTITY))
            .threads(1);
        if let Ok(mut reader) = opener.open(vec![checked]) {
            let _ = reader.copy_to(&mut std::io::sink(), u64::MAX);
        }
    }
}

/// Opens `data` as a single volume with the fixed identity and reads it to
/// the end; also verifies it as a lone volume.
pub fn open(data: &[u8]) {
    let opener = Opener::new()
        .identity(X25519Identity::from_bytes(IDENTITY))
        .threads(1);
    let _ = opener.verify_volume(data);
    if let Ok(mut reader) = opener.open(vec![data]) {
        let _ = reader.copy_to(&mut std::io::sink(), u64::MAX);
    }
}

/// Seals `data` as the content of an archive-kind payload and reads it as
/// an archive (SPEC.md §12): the trailer, the index, and every entry's
/// data. The index parser sees the bytes exactly as given; sealing only
/// gets them past authentication.
pub fn archive(data: &[u8]) {
    let identity = X25519Identity::from_bytes(IDENTITY);
    let sealer = Sealer::new()
        .recipient(identity.to_public())
        .chunk_size(4096)
        .threads(1);
    let mut writer = crate::testing::seal_content(&sealer, MemorySink::new(), PayloadKind::Archive)
        .expect("valid options");
    writer.write_all(data).expect("memory sink");
    let volumes = writer.finish().expect("memory sink").into_volumes();
    let reader = Opener::new()
        .identity(identity)
        .threads(1)
        .open(volumes)
        .expect("a sealed set opens");
    let limits = crate::archive::ArchiveLimits::new().max_index_len(1 << 20);
    if let Ok(Payload::Archive(mut archive)) = Payload::detect(reader, &limits) {
        // The extraction rules over the whole tree, without a file system.
        let _ = archive.check_entries();
        let paths: Vec<String> = archive.entries().iter().map(|e| e.path.clone()).collect();
        for path in &paths {
            if let Ok(mut data) = archive.read_entry(path) {
                let _ = std::io::copy(&mut data, &mut std::io::sink());
            }
        }
        if let Ok(mut tar) = archive.tar_reader() {
            let _ = std::io::copy(&mut tar, &mut std::io::sink());
        }
    }
}

/// Seals `data` as the whole payload (prefix, manifest, content, padding:
/// SPEC.md §6.7, §15), whatever it holds, and opens and reads it: the
/// prefix, manifest and padding rules see the bytes exactly as given.
pub fn payload(data: &[u8]) {
    let identity = X25519Identity::from_bytes(IDENTITY);
    let sealer = Sealer::new()
        .recipient(identity.to_public())
        .chunk_size(4096)
        .threads(1);
    let mut writer =
        crate::testing::seal_raw_payload(&sealer, MemorySink::new()).expect("valid options");
    writer.write_all(data).expect("memory sink");
    let volumes = writer.finish().expect("memory sink").into_volumes();
    let opener = Opener::new().identity(identity).threads(1);
    if let Ok(mut reader) = opener.open(volumes) {
        let _ = reader.manifest().label();
        let len = reader.len();
        // The content ends before the payload does: padding is never read.
        assert!(len <= data.len() as u64, "content longer than the payload");
        let mut out = Vec::new();
        if reader.read_to_end(&mut out).is_ok() {
            assert_eq!(out.len() as u64, len, "read a length other than len()");
        }
    }
}

/// Splits `data` into volumes at [`VOLUME_SEPARATOR`] and opens them as a set.
pub fn volumes(data: &[u8]) {
    let opener = Opener::new().identity(X25519Identity::from_bytes(IDENTITY));
    read_all(&opener, split_volumes(data));
}

/// Splits fuzz input into at most eight volumes.
pub fn split_volumes(data: &[u8]) -> Vec<&[u8]> {
    let mut volumes = Vec::new();
    let mut rest = data;
    while volumes.len() + 1 < MAX_VOLUMES {
        match find(rest, VOLUME_SEPARATOR) {
            Some(at) => {
                volumes.push(&rest[..at]);
                rest = &rest[at + VOLUME_SEPARATOR.len()..];
            }
            None => break,
        }
    }
    volumes.push(rest);
    volumes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn read_all(opener: &Opener, volumes: Vec<&[u8]>) {
    if let Ok(mut reader) = opener.open(volumes) {
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}

/// Seals the input with a geometry chosen by its first bytes, opens the
/// result and checks that the same bytes come back.
///
/// # Panics
///
/// If the round trip does not give back the input: that is the finding.
pub fn roundtrip(data: &[u8]) {
    let [exp, chunks, extra, rest @ ..] = data else {
        return;
    };
    let chunk = 1usize << (12 + exp % 3);
    let identity = X25519Identity::from_bytes(IDENTITY);
    // Two threads when the input says so: the bytes must not depend on it.
    let threads = 1 + usize::from(exp & 0x80 != 0);
    let mut sealer = Sealer::new()
        .digests(false) // lengths below count chunks only (no trailer)
        .recipient(identity.to_public())
        .chunk_size(chunk)
        .threads(threads);
    // Every padding rule (SPEC.md §15.2); `volume` only for split sets.
    let split = chunks % 4 != 0;
    sealer = sealer.pad(match extra % 3 {
        0 => Padding::Padme,
        1 if split => Padding::Volume,
        _ => Padding::None,
    });
    if split {
        let size = 2048 + u64::from(chunks % 4) * chunk as u64 + u64::from(*extra) * 7;
        sealer = sealer.volume_size(size);
    }
    let mut writer = sealer.seal(MemorySink::new()).expect("valid options");
    for piece in rest.chunks(usize::from(*extra) + 1) {
        writer.write_all(piece).expect("memory sink");
    }
    let mut volumes = writer.finish().expect("memory sink").into_volumes();
    volumes.reverse();
    let mut reader = Opener::new()
        .identity(identity)
        .open(volumes)
        .expect("a sealed set opens");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).expect("a sealed set reads");
    assert_eq!(out, rest, "round trip changed the data");
}

/// The signing parsers (SPEC.md §4.5, §14), one picked by the first byte:
/// the statement (which must re-encode to its bytes), an armored SSHSIG
/// signature, a signer file, a signing key file (kuvert or OpenSSH), a
/// signer key string.
pub fn signing(data: &[u8]) {
    use crate::sign::statement::Statement;
    use crate::sign::{SignerKey, SigningKey, parse_allowed_signers, sshsig};

    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 5 {
        0 => {
            if let Ok(statement) = Statement::parse(rest) {
                assert_eq!(
                    statement.encode().as_bytes(),
                    rest,
                    "statements are canonical"
                );
            }
        }
        1 => {
            let key = SigningKey::from_seed([2; 32]);
            let _ = sshsig::verify(rest, b"", key.public());
        }
        2 => {
            let _ = parse_allowed_signers(&text);
        }
        3 => {
            let _ = SigningKey::parse_file(&text);
        }
        _ => {
            let _ = text.parse::<SignerKey>();
        }
    }
}
