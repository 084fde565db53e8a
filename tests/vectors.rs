//! Test vectors (SPEC.md §10): containers written once from fixed seeds and
//! committed under tests/vectors/<case>/, each with a `meta` file saying how
//! to open it and what must happen.
//!
//! `vectors_open_as_recorded` checks the committed files against their
//! `meta`; `archive_vectors_extract_as_recorded` extracts every archive-kind
//! case and compares with its `archive` line; `vectors_are_reproducible`
//! proves this implementation still writes them byte for byte. Regenerate (only when the format changes, together
//! with SPEC.md) with:
//!
//! ```text
//! cargo test --release --test vectors -- --ignored write_vectors
//! ```

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use kuvert::archive::{ArchiveLimits, ExtractOptions, Payload};
use kuvert::{
    Argon2Params, Error, HybridIdentity, Identity, Limits, MemorySink, Opener, Padding, Passphrase,
    PayloadKind, Sealer, SigningKey, TrustedSigners, X25519Identity, padme, rfc3339_utc,
};
use sha2::{Digest, Sha256};

use common::craft::{Craft, Spec, craft, dir, file, hardlink, symlink};
use common::forge;

const CHUNK: usize = 4096;
const PLAIN: usize = CHUNK - 16;
const PASSPHRASE: &str = "kuvert test vector passphrase";
/// The creation time every vector's manifest records: 2025-12-01T00:00:00Z.
const CREATED: u64 = 1_764_547_200;
/// Payload bytes a manifest of only the created record takes: the 4-byte
/// prefix and the 12-byte record (SPEC.md §15.1).
const PREFIX_AND_CREATED: usize = 4 + 12;

/// One vector: its volumes (in the order a decoder is given them), its
/// plaintext if it opens, and its meta lines.
struct Case {
    name: &'static str,
    description: &'static str,
    identities: Vec<[u8; 32]>,
    passphrase: Option<&'static str>,
    volumes: Vec<Vec<u8>>,
    /// Order in which the volumes are handed to the decoder (1-based file numbers).
    order: Vec<usize>,
    outcome: Outcome,
    /// For an archive-kind case: what extracting everything gives, as the
    /// `archive` meta line says it (`entries N` or `error …`, SPEC.md §10.1).
    archive: Option<String>,
    /// Whether the operation is the keyless check of every volume (SPEC.md
    /// §7.7), not opening: meta `keyless: yes`.
    keyless: bool,
    /// Seeds of the signing keys a decoder requires (SPEC.md §14): meta
    /// `signer: kuvertsign1…`, and `signed-by:` the fingerprint of the one
    /// that the check names if the case opens.
    signers: Vec<[u8; 32]>,
}

enum Outcome {
    /// The set opens to this content (the payload after its prefix) of
    /// this kind (SPEC.md §6.7).
    Plaintext(PayloadKind, Vec<u8>),
    Error(String),
}

fn identity(byte: u8) -> [u8; 32] {
    let mut secret = [byte; 32];
    secret[0] = 0x40 | byte;
    secret
}

/// Deterministic, recognisable plaintext: a register-like CSV.
fn plaintext(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut record = 0u64;
    while out.len() < len {
        writeln!(
            out,
            "{record:011},19{:02}-{:02}-{:02},F,J45.{}",
            record % 100,
            record % 12 + 1,
            record % 28 + 1,
            record % 10
        )
        .expect("writing to a Vec");
        record += 1;
    }
    out.truncate(len);
    out
}

/// Seals without volume trailers: the chunk-layer vectors keep the
/// lengths SPEC.md §6 gives; [`seal_trailered`] adds the trailer (§13).
fn seal(sealer: Sealer, seed: u8, data: &[u8]) -> Vec<Vec<u8>> {
    seal_trailered(sealer.digests(false), seed, data)
}

/// Seals as `sealer` says, trailers included unless it turned them off.
fn seal_trailered(sealer: Sealer, seed: u8, data: &[u8]) -> Vec<Vec<u8>> {
    let mut writer = sealer
        .chunk_size(CHUNK)
        .insecure_deterministic_seed([seed; 32])
        .seal(MemorySink::new())
        .expect("valid options");
    writer.write_all(data).expect("memory sink");
    writer.finish().expect("memory sink").into_volumes()
}

/// Seals `payload` as the whole payload, its first bytes taken as the
/// prefix whatever they are (SPEC.md §6.7), through the test hook.
fn seal_raw(sealer: Sealer, seed: u8, payload: &[u8]) -> Vec<Vec<u8>> {
    let sealer = sealer
        .chunk_size(CHUNK)
        .digests(false)
        .insecure_deterministic_seed([seed; 32]);
    let mut writer =
        kuvert::testing::seal_raw_payload(&sealer, MemorySink::new()).expect("valid options");
    writer.write_all(payload).expect("memory sink");
    writer.finish().expect("memory sink").into_volumes()
}

/// The stream prefix followed by `content`: a whole stream payload.
fn stream_payload(content: &[u8]) -> Vec<u8> {
    let mut payload = common::STREAM_PREFIX.to_vec();
    payload.extend_from_slice(content);
    payload
}

/// One extension record (SPEC.md §3.3): type, length, body.
fn extension(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend_from_slice(&u16::try_from(body.len()).expect("short body").to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Offset S of the volume record in a forged header with the §3.5 stanza
/// (88 bytes: count, type, share, body).
const FORGED_S: usize = 58 + 88;

/// The sealer of the vectors: a fixed creation time, and no padding, so
/// that the chunk layout of each case is what its description says; the
/// `pad-*` and `manifest` cases set their own padding.
fn base() -> Sealer {
    Sealer::new()
        .created(Some(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(CREATED),
        ))
        .pad(Padding::None)
}

fn to(byte: u8) -> Sealer {
    base().recipient(X25519Identity::from_bytes(identity(byte)).to_public())
}

/// Offset of the first chunk in these vectors (one sector of header).
const H: usize = 2048;

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut ok =
        |name, description, identities: Vec<[u8; 32]>, passphrase, volumes: Vec<Vec<u8>>, data| {
            let order = (1..=volumes.len()).collect();
            cases.push(Case {
                name,
                description,
                identities,
                passphrase,
                volumes,
                order,
                outcome: Outcome::Plaintext(PayloadKind::Stream, data),
                archive: None,
                keyless: false,
                signers: Vec::new(),
            });
        };

    let small = plaintext(1000);
    ok(
        "x25519",
        "one X25519 recipient, one volume, one chunk",
        vec![identity(1)],
        None,
        seal(to(1), 1, &small),
        small.clone(),
    );

    let passphrase_sealer = base()
        .passphrase(Passphrase::new(PASSPHRASE))
        .argon2_params(Argon2Params::MINIMUM);
    ok(
        "passphrase",
        "one argon2id recipient (64 MiB, 3 passes, 4 lanes)",
        vec![],
        Some(PASSPHRASE),
        seal(passphrase_sealer, 2, &small),
        small.clone(),
    );

    let several = to(1)
        .recipient(X25519Identity::from_bytes(identity(2)).to_public())
        .recipient(X25519Identity::from_bytes(identity(3)).to_public());
    ok(
        "several-recipients",
        "three X25519 recipients; opened with the third identity",
        vec![identity(3)],
        None,
        seal(several, 3, &small),
        small.clone(),
    );

    let mixed = to(1)
        .passphrase(Passphrase::new(PASSPHRASE))
        .argon2_params(Argon2Params::MINIMUM);
    ok(
        "mixed-recipients",
        "an X25519 and an argon2id recipient; opened with the passphrase",
        vec![],
        Some(PASSPHRASE),
        seal(mixed, 4, &small),
        small.clone(),
    );

    let multi = plaintext(5 * PLAIN + 123);
    let multi_volumes = seal(to(1).volume_size((H + 2 * CHUNK) as u64), 5, &multi);
    ok(
        "multi-volume",
        "three volumes of at most two 4 KiB chunks: 2 + 2 + 2 chunks, the last one partial",
        vec![identity(1)],
        None,
        multi_volumes.clone(),
        multi.clone(),
    );

    ok(
        "empty",
        "empty stream: one chunk holding the payload prefix, the manifest's created record and \
         a tag",
        vec![identity(1)],
        None,
        seal(to(1), 6, b""),
        Vec::new(),
    );

    // Payloads fill whole chunks when the content is the prefix and the
    // created record (16 bytes) short of them.
    let exact = plaintext(3 * PLAIN - PREFIX_AND_CREATED);
    ok(
        "exact-multiple",
        "payload (prefix and content) of exactly three full chunks: the final chunk is full",
        vec![identity(1)],
        None,
        seal(to(1), 7, &exact),
        exact.clone(),
    );

    let boundary = plaintext(4 * PLAIN - PREFIX_AND_CREATED);
    ok(
        "volume-boundary",
        "payload ends exactly at the end of volume 2: no empty third volume",
        vec![identity(1)],
        None,
        seal(to(1).volume_size((H + 2 * CHUNK) as u64), 8, &boundary),
        boundary.clone(),
    );

    let age = base().recipient(
        "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
            .parse::<kuvert::X25519Recipient>()
            .expect("age recipient"),
    );
    ok(
        "age-key",
        "sealed to an age recipient (age1…); opened with the matching AGE-SECRET-KEY-1…",
        vec![age_identity_bytes()],
        None,
        seal(age, 9, &small),
        small.clone(),
    );
    ok(
        "kuvert-key",
        "sealed to identity 5; opened with it in kuvert v1's encoding (KUVERT-SECRET-KEY-1…), \
         still read",
        vec![identity(5)],
        None,
        seal(to(5), 13, &small),
        small.clone(),
    );

    // Hybrid post-quantum recipients (SPEC.md §4.6): the meta file records
    // these cases' identities as AGE-SECRET-KEY-PQ-1… seeds (see `meta`).
    let hybrid_to = |byte: u8| HybridIdentity::from_bytes(identity(byte)).to_public();
    ok(
        "hybrid",
        "one mlkem768x25519 recipient (ML-KEM-768 + X25519, age v1.3's hybrid type)",
        vec![identity(20)],
        None,
        seal(base().recipient(hybrid_to(20)), 20, &small),
        small.clone(),
    );
    let hybrid_x25519 = base()
        .recipient(hybrid_to(21))
        .recipient(X25519Identity::from_bytes(identity(22)).to_public())
        .allow_classical(true);
    ok(
        "hybrid-x25519",
        "an mlkem768x25519 and an X25519 recipient, sealed with allow_classical; opened with the \
         hybrid identity",
        vec![identity(21)],
        None,
        seal(hybrid_x25519, 21, &small),
        small.clone(),
    );

    let mut archive = to(1)
        .chunk_size(CHUNK)
        .insecure_deterministic_seed([10; 32])
        .seal_archive(MemorySink::new())
        .expect("seal");
    archive
        .append_dir("extract", 0o755, 1_700_000_000)
        .expect("dir");
    archive
        .append_file(
            "extract/patients.csv",
            &small[..],
            small.len() as u64,
            0o640,
            1_700_000_000,
        )
        .expect("file");
    archive
        .append_symlink("extract/latest.csv", "patients.csv", 1_700_000_000)
        .expect("symlink");
    let archive_volumes = archive.finish().expect("finish").into_volumes();
    let archive_payload = {
        let mut reader = Opener::new()
            .identity(X25519Identity::from_bytes(identity(1)))
            .open(archive_volumes.clone())
            .expect("open");
        let mut out = Vec::new();
        reader.read_to_end(&mut out).expect("read");
        out
    };
    let archive_case = Case {
        name: "archive",
        description: "an archive payload (SPEC.md §12): directory, file and symlink, with index \
                      and trailer",
        identities: vec![identity(1)],
        passphrase: None,
        volumes: archive_volumes,
        order: vec![1],
        outcome: Outcome::Plaintext(PayloadKind::Archive, archive_payload.clone()),
        archive: Some("entries 3".into()),
        keyless: false,
        signers: Vec::new(),
    };

    // A stream whose last 32 bytes are exactly the archive's trailer: the
    // prefix says stream, so it is one, byte for byte.
    let mut like_archive = plaintext(500);
    like_archive.extend_from_slice(&archive_payload[archive_payload.len() - 32..]);
    ok(
        "stream-ending-in-trailer",
        "a stream whose last 32 bytes are an archive trailer: still a stream (SPEC.md §12.1)",
        vec![identity(1)],
        None,
        seal(to(1), 11, &like_archive),
        like_archive.clone(),
    );

    // Key-holder vectors forged from SPEC.md §3.5's file key and stanza
    // (tests/common/forge.rs): what the reference encoder never writes.
    let forged = forge::Set::new(0);
    let note = extension(0x0001, b"note");
    ok(
        "extension-skipped",
        "a non-critical extension record (type 0x0001, 4 bytes) in the volume record: skipped",
        vec![[1; 32]],
        None,
        forged.seal(&stream_payload(&small), &|_| note.clone()),
        small.clone(),
    );
    let mut unknown = forge::Set::new(0);
    unknown
        .stanzas
        .insert(0, (b"future-pq".to_vec(), vec![0x5A; 40]));
    ok(
        "unknown-stanza-beside",
        "an unknown stanza type before the X25519 stanza: skipped, and the X25519 one opens",
        vec![[1; 32]],
        None,
        unknown.seal(&stream_payload(&small), &|_| Vec::new()),
        small.clone(),
    );
    let mut grease = forge::Set::new(0);
    let mut line = b"grease".to_vec();
    for index in 0..254u32 {
        // 254 arguments of 1 to 3 bytes, every VCHAR among them.
        let first = 0x21 + (index % 94) as u8;
        line.push(b' ');
        line.extend(std::iter::repeat_n(first, 1 + index as usize % 3));
    }
    grease.stanzas.insert(0, (line, vec![0xA5; 7]));
    ok(
        "grease-args",
        "an unknown stanza with 255 arguments (the most a stanza holds) before the X25519 stanza: \
         skipped, and the X25519 one opens",
        vec![[1; 32]],
        None,
        grease.seal(&stream_payload(&small), &|_| Vec::new()),
        small.clone(),
    );
    // Volume 2's header holds a 2000-byte non-critical record, so its H is
    // 4096 while volumes 1 and 3 have H = 2048 (SPEC.md §3.4).
    let split = forge::Set::new(2);
    let long_note = extension(0x0002, &[0x33; 2000]);
    let differing = split.seal(&stream_payload(&multi), &|v| match v {
        2 => long_note.clone(),
        _ => Vec::new(),
    });
    assert_eq!(differing[1].len(), 4096 + 2 * CHUNK);
    ok(
        "differing-h",
        "volume 2 of 3 has a longer header (a non-critical extension record), so H = 4096 there \
         and 2048 elsewhere: each volume's chunks follow its own H",
        vec![[1; 32]],
        None,
        differing,
        multi.clone(),
    );
    cases.push(archive_case);
    cases.extend(archive_cases());
    cases.extend(manifest_cases());

    // Negative vectors, derived from the positive ones.
    let mut bad = |name,
                   description,
                   identities: Vec<[u8; 32]>,
                   passphrase,
                   volumes: Vec<Vec<u8>>,
                   order: Vec<usize>,
                   error: String| {
        cases.push(Case {
            name,
            description,
            identities,
            passphrase,
            volumes,
            order,
            outcome: Outcome::Error(error),
            archive: None,
            keyless: false,
            signers: Vec::new(),
        });
    };

    // Extension records that break SPEC.md §3.3: refused before any key.
    let critical = extension(0x8001, b"note");
    bad(
        "extension-critical",
        "a critical extension record (type 0x8001) in the volume record",
        vec![[1; 32]],
        None,
        forged.seal(&stream_payload(&small), &|_| critical.clone()),
        vec![1],
        format!("MalformedHeader input=1 offset={}", FORGED_S + 8),
    );
    let mut past = extension(0x0001, b"note");
    past[2..4].copy_from_slice(&10u16.to_be_bytes());
    bad(
        "extension-past-area",
        "an extension record whose length (10) runs past its 8-byte extension area",
        vec![[1; 32]],
        None,
        forged.seal(&stream_payload(&small), &|_| past.clone()),
        vec![1],
        format!("MalformedHeader input=1 offset={}", FORGED_S + 8),
    );
    let mut alone = forge::Set::new(0);
    alone.stanzas = vec![(b"future-pq".to_vec(), vec![0x5A; 40])];
    bad(
        "unknown-stanza",
        "a header whose only stanza has an unknown type: skipped, so no key matches",
        vec![[1; 32]],
        None,
        alone.seal(&stream_payload(&small), &|_| Vec::new()),
        vec![1],
        "NoMatchingKey stanza_types=future-pq".into(),
    );
    let mut shortest = forge::Set::new(0);
    shortest.stanzas = vec![(b"x".to_vec(), Vec::new())];
    let min = shortest.seal(&stream_payload(&small), &|_| Vec::new());
    assert_eq!(header_len(&min[0]), 104, "MIN_HEADER_LEN");
    bad(
        "min-header",
        "the shortest header (L = 104): one stanza of type `x` with no other argument and no \
         body; skipped, so no key matches",
        vec![[1; 32]],
        None,
        min,
        vec![1],
        "NoMatchingKey stanza_types=x".into(),
    );

    // Payload prefixes that break SPEC.md §6.7, sealed with the test hook.
    let with_prefix = |prefix: [u8; 4]| {
        let mut payload = prefix.to_vec();
        payload.extend_from_slice(&small);
        payload
    };
    for (name, description, payload, offset) in [
        (
            "payload-kind-unknown",
            "payload prefix with kind 0x02",
            with_prefix([2, 0, 0, 0]),
            0,
        ),
        (
            "payload-flags",
            "payload prefix with flags 0x02 (only 0x01, PADDED, is defined)",
            with_prefix([0, 2, 0, 0]),
            1,
        ),
        (
            "payload-records",
            "payload prefix of kind archive with a records length of 1: too short for a \
             record's 4-byte head",
            with_prefix([1, 0, 0, 1]),
            4,
        ),
        (
            "payload-short",
            "a 3-byte payload: it ends inside its prefix",
            vec![0; 3],
            3,
        ),
        (
            "payload-empty",
            "an empty payload (one chunk of only a tag): no prefix at all",
            Vec::new(),
            0,
        ),
    ] {
        bad(
            name,
            description,
            vec![identity(1)],
            None,
            seal_raw(to(1), 12, &payload),
            vec![1],
            format!("MalformedPayload offset={offset}"),
        );
    }
    let single = seal(to(1), 1, &small);
    let three = multi_volumes;

    let mut v = single.clone();
    v[0][0] = b'K';
    bad(
        "bad-magic",
        "first magic byte changed",
        vec![identity(1)],
        None,
        v,
        vec![1],
        "NotKuvert input=1".into(),
    );

    let mut v = single.clone();
    v[0][9] = 1;
    bad(
        "unsupported-v1",
        "format version 1, the unreleased first layout (SPEC.md §11)",
        vec![identity(1)],
        None,
        v,
        vec![1],
        "UnsupportedVersion input=1 version=1".into(),
    );
    let mut v = single.clone();
    v[0][9] = 3;
    bad(
        "version-3",
        "format version 3",
        vec![identity(1)],
        None,
        v,
        vec![1],
        "UnsupportedVersion input=1 version=3".into(),
    );

    // Stanza encodings that break SPEC.md §3.2 and §4.2: refused before any key.
    let mut v = single.clone();
    v[0][58] = 0;
    bad(
        "arg-count",
        "the X25519 stanza's argument count set to 0 (no type)",
        vec![identity(1)],
        None,
        v,
        vec![1],
        "MalformedHeader input=1 offset=58".into(),
    );
    let (args, _) = first_stanza(&single[0]);
    let mut v = single.clone();
    v[0][args[1].start + 5] = b' ';
    bad(
        "arg-vchar",
        "a space (0x20, outside VCHAR) in the X25519 share argument",
        vec![identity(1)],
        None,
        v,
        vec![1],
        format!("MalformedHeader input=1 offset={}", args[1].start + 5),
    );
    let mut v = single.clone();
    let last = args[1].end - 1;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let index = alphabet
        .iter()
        .position(|&c| c == v[0][last])
        .expect("base64");
    assert_eq!(
        index % 4,
        0,
        "the last of 43 characters carries 2 zero bits"
    );
    v[0][last] = alphabet[index + 1];
    bad(
        "x25519-noncanonical-share",
        "the X25519 share's last base64 character changed so that its 2 trailing bits are not \
         zero: not canonical",
        vec![identity(1)],
        None,
        v,
        vec![1],
        "MalformedHeader input=1 offset=58".into(),
    );

    let mut v = single.clone();
    let mac_at = header_len(&v[0]) - 1;
    v[0][mac_at] ^= 0x01;
    bad(
        "header-mac",
        "last byte of the header MAC flipped",
        vec![identity(1)],
        None,
        v,
        vec![1],
        "HeaderDamaged volume=1".into(),
    );

    let mut v = single.clone();
    v[0][header_len(&single[0])] = 1;
    bad(
        "padding",
        "first padding byte set to 1",
        vec![identity(1)],
        None,
        v,
        vec![1],
        format!("MalformedHeader input=1 offset={}", header_len(&single[0])),
    );

    let mut v = three.clone();
    v[1][H + CHUNK + 10] ^= 0x01;
    bad(
        "chunk-flipped",
        "a ciphertext byte of chunk 3 (volume 2, second chunk) flipped; chunks 0–2 open",
        vec![identity(1)],
        None,
        v,
        vec![1, 2, 3],
        format!("Unauthenticated chunk=3 volume=2 offset={}", H + CHUNK),
    );

    let mut v = single.clone();
    let last = v[0].len() - 1;
    v[0][last] ^= 0x80;
    bad(
        "tag-flipped",
        "last tag byte of the only chunk flipped",
        vec![identity(1)],
        None,
        v,
        vec![1],
        format!("Unauthenticated chunk=0 volume=1 offset={H}"),
    );

    bad(
        "missing-middle",
        "volume 2 of 3 not given",
        vec![identity(1)],
        None,
        three.clone(),
        vec![1, 3],
        "VolumeMissing volume=2".into(),
    );
    bad(
        "missing-last",
        "volume 3 of 3 not given: volume 2 ends with an end-of-volume chunk",
        vec![identity(1)],
        None,
        three.clone(),
        vec![1, 2],
        "VolumeMissing volume=3".into(),
    );
    bad(
        "duplicate",
        "volume 2 given twice",
        vec![identity(1)],
        None,
        three.clone(),
        vec![1, 2, 2, 3],
        "DuplicateVolume volume=2 first=2 second=3".into(),
    );

    let other = seal(to(1).volume_size((H + 2 * CHUNK) as u64), 50, &multi);
    let mut v = three.clone();
    v[1] = other[1].clone();
    bad(
        "foreign",
        "volume 2 taken from another set sealed to the same key from the same data",
        vec![identity(1)],
        None,
        v,
        vec![1, 2, 3],
        "ForeignVolume input=2 volume=2".into(),
    );

    let mut v = three.clone();
    v[0].extend_from_slice(b"trailing");
    bad(
        "trailing-full-volume",
        "bytes appended to a full volume",
        vec![identity(1)],
        None,
        v,
        vec![1, 2, 3],
        format!("TrailingData volume=1 offset={}", H + 2 * CHUNK),
    );

    let mut v = seal(to(1), 7, &exact);
    assert_eq!(v[0].len(), H + 3 * CHUNK, "the final chunk is full");
    v[0].extend_from_slice(&[0u8; 40]);
    bad(
        "trailing-last-volume",
        "40 bytes appended after a full final chunk",
        vec![identity(1)],
        None,
        v,
        vec![1],
        format!("TrailingData volume=1 offset={}", H + 3 * CHUNK),
    );

    let mut v = seal(to(1), 7, &exact);
    v[0].truncate(H + 2 * CHUNK);
    bad(
        "truncated-at-chunk",
        "unsplit volume cut after its second chunk",
        vec![identity(1)],
        None,
        v,
        vec![1],
        format!("Truncated volume=1 length={}", H + 2 * CHUNK),
    );

    let mut v = three.clone();
    v[2].truncate(H + 10);
    bad(
        "truncated-in-tag",
        "last volume cut 10 bytes into its first chunk",
        vec![identity(1)],
        None,
        v,
        vec![1, 2, 3],
        format!("Truncated volume=3 length={}", H + 10),
    );

    bad(
        "wrong-passphrase",
        "the passphrase vector opened with another passphrase",
        vec![],
        Some("not the passphrase"),
        seal(
            base()
                .passphrase(Passphrase::new(PASSPHRASE))
                .argon2_params(Argon2Params::MINIMUM),
            2,
            &small,
        ),
        vec![1],
        "WrongPassphrase".into(),
    );

    bad(
        "no-matching-key",
        "the X25519 vector opened with another identity",
        vec![identity(9)],
        None,
        single.clone(),
        vec![1],
        "NoMatchingKey stanza_types=X25519".into(),
    );

    let mut v = single.clone();
    // 43 `A`s: the all-zero point in unpadded base64.
    v[0][args[1].clone()].fill(b'A');
    bad(
        "low-order-share",
        "X25519 ephemeral share replaced by the all-zero point",
        vec![identity(1)],
        None,
        v,
        vec![1],
        "MalformedHeader input=1 offset=58".into(),
    );

    let mut v = seal(
        base()
            .passphrase(Passphrase::new(PASSPHRASE))
            .argon2_params(Argon2Params::MINIMUM),
        2,
        &small,
    );
    let memory = first_stanza(&v[0]).1 + 16;
    v[0][memory..memory + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    bad(
        "argon2-over-cap",
        "argon2id memory cost set to 2^32−1 KiB: refused before any work",
        vec![],
        Some(PASSPHRASE),
        v,
        vec![1],
        format!(
            "LimitExceeded found={} limit={} what=argon2id memory (KiB)",
            u32::MAX,
            Limits::default().argon2_max_memory_kib
        ),
    );

    cases.extend(trailer_cases());
    cases.extend(signed_cases());
    cases
}

/// A signing key of the vectors: RFC 8032 seed `[byte; 32]`.
fn signing_key(byte: u8) -> SigningKey {
    SigningKey::from_seed([byte; 32])
}

/// The volume with its trailer's records replaced by `records` (each a
/// type and a body), head, M and D rewritten as anyone can without a key.
fn with_records(volume: &[u8], records: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let start = records_at(volume);
    let end = &volume[volume.len() - 2048..];
    let mut head = end[..72].to_vec();
    let body: Vec<u8> = records
        .iter()
        .flat_map(|(kind, b)| record_bytes(*kind, b))
        .collect();
    head[56..64].copy_from_slice(&(72 + body.len() as u64).to_be_bytes());
    let mut region = head.clone();
    region.extend_from_slice(&body);
    let digest = blake3::hash(&region);
    let mut out = volume[..start].to_vec();
    out.extend_from_slice(&region);
    out.resize(start + region.len().div_ceil(2048) * 2048, 0);
    let end_at = out.len();
    out.extend_from_slice(&head);
    out.extend_from_slice(digest.as_bytes());
    out.resize(end_at + 2048, 0);
    out
}

/// A trailer record: type, reserved, u32 length, body (SPEC.md §13.2).
fn record_bytes(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A volume's trailer records after the head, in order.
fn trailer_records(volume: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let start = records_at(volume);
    let end = volume.len() - 2048;
    let len = u64::from_be_bytes(volume[end + 56..end + 64].try_into().expect("8")) as usize;
    let mut at = start + 72;
    let mut out = Vec::new();
    while at < start + len {
        let kind = u16::from_be_bytes([volume[at], volume[at + 1]]);
        let n = u32::from_be_bytes(volume[at + 4..at + 8].try_into().expect("4")) as usize;
        out.push((kind, volume[at + 8..at + 8 + n].to_vec()));
        at += 8 + n;
    }
    out
}

/// Signed sets (SPEC.md §14): what opens with a required signer, and the
/// attacks refused before any plaintext.
fn signed_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut case = |name, description, volumes: Vec<Vec<u8>>, outcome, signers: Vec<u8>| {
        let order = (1..=volumes.len()).collect();
        cases.push(Case {
            name,
            description,
            identities: vec![identity(1)],
            passphrase: None,
            volumes,
            order,
            outcome,
            archive: None,
            keyless: false,
            signers: signers.into_iter().map(|b| [b; 32]).collect(),
        });
    };
    let stream = |data: &[u8]| Outcome::Plaintext(PayloadKind::Stream, data.to_vec());
    let content = plaintext(2 * PLAIN + 1000);
    let one = seal_trailered(to(1).sign_with(signing_key(11)), 31, &content);
    case(
        "signed",
        "one volume of 3 chunks signed by one key: statement and SSHSIG in the trailer",
        one.clone(),
        stream(&content),
        vec![11],
    );
    let multi = plaintext(3 * PLAIN + 5);
    // H + 2 chunks + T_max(2) (8,192 bytes): K = 2, as unsigned.
    let multi_volumes = seal_trailered(
        to(1)
            .sign_with(signing_key(11))
            .volume_size((H + 2 * CHUNK + 8192) as u64),
        32,
        &multi,
    );
    assert_eq!(multi_volumes.len(), 2);
    case(
        "signed-multi",
        "two signed volumes: the `# last volume` line on volume 2 only",
        multi_volumes,
        stream(&multi),
        vec![11],
    );
    case(
        "signed-two-signers",
        "signed by two keys in signer-block order; the second is the one trusted",
        seal_trailered(
            to(1).sign_with(signing_key(11)).sign_with(signing_key(12)),
            33,
            &content,
        ),
        stream(&content),
        vec![12],
    );
    let fingerprint = signing_key(11).public().fingerprint();
    case(
        "signed-wrong-signer",
        "signed by one key, another required",
        one.clone(),
        Outcome::Error(format!("WrongSigner volume=1 signers={fingerprint}")),
        vec![13],
    );
    let records = trailer_records(&one[0]);
    assert_eq!(
        records.iter().map(|(kind, _)| *kind).collect::<Vec<_>>(),
        [0x8001, 0x8002, 0x8003]
    );
    case(
        "signed-stripped",
        "the signature record removed and the trailer rewritten; the header still names the signer",
        vec![with_records(&one[0], &records[..2])],
        Outcome::Error(format!("BadSignature volume=1 signer={fingerprint}")),
        vec![11],
    );
    let mut forged = records.clone();
    // A base64 character inside the Ed25519 signature (line 3 of the
    // armor): still canonical armor, no longer a valid signature.
    let at = 29 + 71 * 2 + 10;
    forged[2].1[at] = if forged[2].1[at] == b'A' { b'B' } else { b'A' };
    case(
        "signed-bad-signature",
        "a character of the signature changed and the trailer rewritten",
        vec![with_records(&one[0], &forged)],
        Outcome::Error(format!("BadSignature volume=1 signer={fingerprint}")),
        vec![11],
    );
    case(
        "signed-required-unsigned",
        "an unsigned set opened with a required signer",
        seal_trailered(to(1), 31, &content),
        Outcome::Error("Unsigned volume=1".into()),
        vec![11],
    );
    cases
}

/// E of a trailered volume: the end record's field at offset 48.
fn chunk_end(volume: &[u8]) -> usize {
    let end = volume.len() - 2048;
    u64::from_be_bytes(volume[end + 48..end + 56].try_into().expect("8 bytes")) as usize
}

/// T0: the records region's start, the sector after E.
fn records_at(volume: &[u8]) -> usize {
    chunk_end(volume).div_ceil(2048) * 2048
}

/// Recomputes D, the records digest, as anyone can without a key.
fn rewrite_records_digest(volume: &mut [u8]) {
    let end = volume.len() - 2048;
    let at = records_at(volume);
    let len = u64::from_be_bytes(volume[end + 56..end + 64].try_into().expect("8")) as usize;
    let digest = *blake3::hash(&volume[at..at + len]).as_bytes();
    volume[end + 72..end + 104].copy_from_slice(&digest);
}

/// The volume trailer's vectors (SPEC.md §13).
fn trailer_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut case = |name, description, volumes: Vec<Vec<u8>>, outcome, keyless| {
        let order = (1..=volumes.len()).collect();
        cases.push(Case {
            name,
            description,
            identities: if keyless { vec![] } else { vec![identity(1)] },
            passphrase: None,
            volumes,
            order,
            outcome,
            archive: None,
            keyless,
            signers: Vec::new(),
        });
    };
    let stream = |data: &[u8]| Outcome::Plaintext(PayloadKind::Stream, data.to_vec());
    let content = plaintext(2 * PLAIN + 1000);
    let one = seal_trailered(to(1), 21, &content);
    case(
        "digests",
        "one volume of 3 chunks with its trailer: digest table of 3 entries",
        one.clone(),
        stream(&content),
        false,
    );
    let multi = plaintext(5 * PLAIN + 123);
    // H + 2 chunks + the trailer bound of 2 entries (5,344 bytes: 3 sectors
    // and the end sector): K = 2.
    let multi_volumes =
        seal_trailered(to(1).volume_size((H + 2 * CHUNK + 8192) as u64), 22, &multi);
    assert_eq!(multi_volumes.len(), 3);
    case(
        "digests-multi",
        "three trailered volumes of at most two 4 KiB chunks",
        multi_volumes,
        stream(&multi),
        false,
    );
    case(
        "no-digests",
        "sealed without trailers (set flags 0): opens; a keyless check says NoDigests",
        seal(to(1), 21, &content),
        stream(&content),
        false,
    );
    let mut v = one.clone();
    let len = v[0].len();
    v[0].truncate(len - 2048);
    case(
        "trailer-truncated",
        "the trailer's end sector cut off",
        v,
        Outcome::Error(format!("Truncated volume=1 length={}", len - 2048)),
        false,
    );
    let mut v = one.clone();
    let entry_1 = records_at(&v[0]) + 72 + 8 + 8 + 32 + 32;
    v[0][entry_1] ^= 0x01;
    let end = v[0].len() - 2048;
    case(
        "trailer-records",
        "a byte of the digest table flipped: the records digest D fails",
        v,
        Outcome::Error(format!("MalformedTrailer volume=1 offset={}", end + 72)),
        false,
    );
    let mut v = one.clone();
    v[0][entry_1] ^= 0x01;
    rewrite_records_digest(&mut v[0]);
    case(
        "table-forged",
        "entry 1 of the table changed and D recomputed (anyone can: unsigned); keyless check",
        v,
        Outcome::Error(format!(
            "DigestMismatch chunk=1 volume=1 offset={}",
            H + CHUNK
        )),
        true,
    );
    let mut v = one.clone();
    let e = chunk_end(&v[0]);
    assert_ne!(e % 2048, 0, "room between E and the records");
    v[0][e + 3] = 0x01;
    case(
        "trailer-padding",
        "a nonzero byte between the last chunk and the trailer's records",
        v,
        Outcome::Error(format!("MalformedTrailer volume=1 offset={}", e + 3)),
        false,
    );
    cases
}

/// One manifest record (SPEC.md §15.1): type, length, body.
fn record(kind: u16, body: &[u8]) -> Vec<u8> {
    extension(kind, body)
}

/// A raw stream payload: the prefix with `flags` and the records, then
/// `rest` (content, and padding if the flags say so).
fn raw_payload(flags: u8, records: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut payload = vec![0, flags];
    payload.extend_from_slice(&u16::try_from(records.len()).expect("short").to_be_bytes());
    payload.extend_from_slice(records);
    payload.extend_from_slice(rest);
    payload
}

/// The manifest and padding vectors (SPEC.md §15): each padding rule, a
/// full manifest, and the key-holder payloads a decoder must refuse.
fn manifest_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let content = plaintext(5000);
    // Prefix 4, created record 12, padding record 5, padding length 8.
    let unpadded = (4 + 12 + 5 + content.len() + 8) as u64;
    let padded = padme(unpadded).expect("small");
    assert_eq!((unpadded, padded), (5029, 5120), "SPEC.md §15.2's example");
    let label = "DST project 1234, extract 3 of 4";
    let note = "Rows 1-40,000 of the 2025 extract.\nCall the registry before opening.";
    for (name, description, sealer, seed) in [
        (
            "manifest",
            "a label, a note with a line feed, the creation time and Padmé padding in the \
             encrypted manifest",
            to(1).label(label).note(note).pad(Padding::Padme),
            60,
        ),
        (
            "pad-padme",
            "Padmé padding (the default): 5,029 unpadded payload bytes padded to 5,120",
            to(1).pad(Padding::Padme),
            61,
        ),
        (
            "pad-volume",
            "volume padding: the only volume (K = 2) filled to its full length",
            to(1)
                .volume_size((H + 2 * CHUNK) as u64)
                .pad(Padding::Volume),
            62,
        ),
        (
            "pad-none",
            "no padding: the payload is the prefix, the created record and the content",
            to(1).pad(Padding::None),
            63,
        ),
    ] {
        let volumes = seal(sealer, seed, &content);
        if name == "pad-volume" {
            assert_eq!(volumes[0].len(), H + 2 * CHUNK, "a full volume");
        }
        out.push(Case {
            name,
            description,
            identities: vec![identity(1)],
            passphrase: None,
            order: vec![1],
            volumes,
            outcome: Outcome::Plaintext(PayloadKind::Stream, content.clone()),
            archive: None,
            keyless: false,
            signers: Vec::new(),
        });
    }

    let created = record(0x0001, &CREATED.to_be_bytes());
    let small = plaintext(1000);
    let mut bad = |name, description, payload: Vec<u8>, offset: usize| {
        out.push(Case {
            name,
            description,
            identities: vec![identity(1)],
            passphrase: None,
            volumes: seal_raw(to(1), 64, &payload),
            order: vec![1],
            outcome: Outcome::Error(format!("MalformedPayload offset={offset}")),
            archive: None,
            keyless: false,
            signers: Vec::new(),
        });
    };
    let critical = [created.clone(), record(0x8005, b"future")].concat();
    bad(
        "manifest-critical",
        "a critical manifest record of an unknown type (0x8005) after the created record",
        raw_payload(0, &critical, &small),
        4 + created.len(),
    );
    let label_record = record(0x0002, label.as_bytes());
    let backwards = [label_record.clone(), created.clone()].concat();
    bad(
        "manifest-order",
        "the label record before the created record: types not increasing",
        raw_payload(0, &backwards, &small),
        4 + label_record.len(),
    );
    // 1000 content bytes, 2000 padding zeros (one of them set in the final
    // chunk, decrypted when the set is opened), the padding length.
    let padding_rule = record(0x0004, &[1]);
    let records = [created.clone(), padding_rule.clone()].concat();
    let mut rest = small.clone();
    let zeros_at = rest.len();
    rest.resize(zeros_at + 5000, 0);
    let dirty = zeros_at + 4900;
    rest[dirty] = 0x01;
    rest.extend_from_slice(&5000u64.to_be_bytes());
    let start = 4 + records.len();
    assert_eq!(
        (start + dirty) / PLAIN,
        (start + rest.len() - 1) / PLAIN,
        "the byte is in the final chunk"
    );
    bad(
        "padding-nonzero",
        "a padded payload with one padding byte set to 01 in its final chunk",
        raw_payload(1, &records, &rest),
        start + dirty,
    );
    let mut rest = small.clone();
    rest.extend_from_slice(&1001u64.to_be_bytes());
    let len = start + rest.len();
    bad(
        "padding-length",
        "a padding length one above the bytes between the manifest and it",
        raw_payload(1, &records, &rest),
        len - 8,
    );
    out
}

/// Seals `content` as the content of an archive-kind payload, whatever it
/// holds (SPEC.md §6.7), through the test hook: the public `ArchiveWriter`
/// refuses to write most of these.
fn seal_archive_content(sealer: Sealer, seed: u8, content: &[u8]) -> Vec<Vec<u8>> {
    let sealer = sealer
        .chunk_size(CHUNK)
        .digests(false)
        .insecure_deterministic_seed([seed; 32]);
    let mut writer =
        kuvert::testing::seal_content(&sealer, MemorySink::new(), PayloadKind::Archive)
            .expect("valid options");
    writer.write_all(content).expect("memory sink");
    writer.finish().expect("memory sink").into_volumes()
}

/// The index offset an archive content's trailer gives (SPEC.md §12.1).
fn index_offset(content: &[u8]) -> u64 {
    let at = content.len() - 32;
    u64::from_be_bytes(content[at..at + 8].try_into().expect("8 bytes"))
}

/// The §12 vectors: archive contents crafted by hand (tests/common/craft.rs),
/// each set opening to its content, and what extracting everything must
/// give (SPEC.md §10.1 `archive`).
fn archive_cases() -> Vec<Case> {
    let at = |i: u64| 1_700_000_000 + i as i64;
    let mut out = Vec::new();
    let mut add = |name, description, seed, content: Vec<u8>, archive: String| {
        out.push(Case {
            name,
            description,
            identities: vec![identity(1)],
            passphrase: None,
            volumes: seal_archive_content(to(1), seed, &content),
            order: vec![1],
            outcome: Outcome::Plaintext(PayloadKind::Archive, content),
            archive: Some(archive),
            keyless: false,
            signers: Vec::new(),
        });
    };

    add(
        "archive-escape-via-link",
        "the reported exploit: d/, d/up -> .., esc -> d/up/../..; d/up ends at the root, so \
         esc's second `..` climbs above it",
        20,
        craft(vec![
            dir("d"),
            symlink("d/up", ".."),
            symlink("esc", "d/up/../.."),
        ]),
        "error UnsafeEntry path=esc".into(),
    );
    add(
        "archive-absolute-symlink",
        "a symlink whose target is absolute: d/passwd -> /etc/passwd",
        21,
        craft(vec![dir("d"), symlink("d/passwd", "/etc/passwd")]),
        "error UnsafeEntry path=d/passwd".into(),
    );
    add(
        "archive-dotdot-path",
        "an entry path with `..` components: docs/../../escaped.txt after docs/",
        22,
        craft(vec![
            dir("docs"),
            file("docs/../../escaped.txt", b"outside\n"),
        ]),
        "error UnsafeEntry path=docs/../../escaped.txt".into(),
    );
    add(
        "archive-case-collision",
        "Report.csv and report.csv: one file on a case-folding file system",
        23,
        craft(vec![
            file("Report.csv", b"upper\n"),
            file("report.csv", b"lower\n"),
        ]),
        "error NameCollision path=report.csv other=Report.csv".into(),
    );
    let (nfc, nfd) = ("m\u{e4}rz.csv", "ma\u{308}rz.csv");
    add(
        "archive-nfc-nfd",
        "m\u{e4}rz.csv spelt with U+00E4 (NFC), then with a + U+0308 (NFD): canonically \
         equivalent names collide",
        24,
        craft(vec![file(nfc, b"nfc\n"), file(nfd, b"nfd\n")]),
        format!("error NameCollision path={nfd} other={nfc}"),
    );
    add(
        "archive-file-as-parent",
        "a file f, then f/x: the path runs through a file",
        25,
        craft(vec![file("f", b"file\n"), file("f/x", b"below a file\n")]),
        "error UnsafeEntry path=f/x".into(),
    );
    add(
        "archive-hardlink-forward",
        "a hard link h -> f before the file f: a hard link names an earlier file",
        26,
        craft(vec![hardlink("h", "f"), file("f", b"later\n")]),
        "error UnsafeEntry path=h".into(),
    );
    // The second entry's ustar header says ../../b where the index says b.
    let tar_path = Craft::new(vec![
        file("a", b"first"),
        file("b", b"second").tar(|t| t.path = Some(b"../../b".to_vec())),
    ]);
    let (content, placed) = tar_path.build();
    add(
        "archive-tar-path",
        "the tar header of entry b gives the path ../../b: tar -x would write elsewhere than \
         the index says",
        27,
        content,
        format!("error TarMismatch path=b offset={}", placed[1].ustar_offset),
    );
    let mut gap = vec![file("a", b"first"), file("b", b"second")];
    gap[0].tar.gap_after = 1;
    let content = craft(gap);
    // Entry 1 starts after the count (8) and entry 0 (45 + its 1-byte path).
    let entry_1 = index_offset(&content) + 8 + 46;
    add(
        "archive-gap",
        "a zero block between entries a and b: b's header offset is not a's end, so the tar \
         stream does not tile",
        28,
        content,
        format!("error MalformedArchive offset={entry_1}"),
    );
    let mut end_blocks = vec![0u8; 1024];
    end_blocks[1023] = 0x01;
    let end_block = Craft {
        end_blocks: Some(end_blocks),
        ..Craft::new(vec![file("a", b"first")])
    };
    let content = end_block.payload();
    let end_at = index_offset(&content) - 1024;
    add(
        "archive-end-block",
        "the last byte of the second end block is 01: refused when the whole stream is read",
        29,
        content,
        format!("error MalformedArchive offset={end_at}"),
    );
    let deep = vec!["d"; 257].join("/");
    add(
        "archive-path-depth",
        "a file at depth 257 (one above the 256 components allowed)",
        30,
        craft(vec![file(&deep, b"deep\n")]),
        format!(
            "error LimitExceeded found=257 limit={} what=archive path depth",
            ArchiveLimits::new().max_depth
        ),
    );

    // Sound archives the checks must accept.
    let inside: Vec<Spec> = vec![
        dir("a"),
        dir("a/b"),
        file("a/b/f", b"data"),
        symlink("a/b/self", "."),
        symlink("a/up", ".."),
        symlink("a/b/to_f", "../b/f"),
        symlink("via", "a/up/a/b/self/self/to_f"),
        symlink("a/b/c", "../../a/./b//f"),
        symlink("a/b/dangling", "../nothing-here"),
        symlink("a/b/chain", "../up/a/b/c"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, spec)| spec.mtime(at(i as u64)))
    .collect();
    add(
        "archive-links-inside",
        "links through links that stay inside: a/up -> .., via -> a/up/a/b/self/self/to_f, \
         a/b/chain -> ../up/a/b/c, a dangling a/b/dangling -> ../nothing-here",
        31,
        craft(inside),
        "entries 10".into(),
    );
    add(
        "archive-hardlinks-implicit-dirs",
        "a file under parents no entry names (data/, data/2024/) and two hard links to it, one \
         under another missing parent (backup/)",
        32,
        craft(vec![
            file("data/2024/report.csv", b"id,value\n1,42\n"),
            hardlink("copy.csv", "data/2024/report.csv"),
            hardlink("backup/report.csv", "data/2024/report.csv"),
        ]),
        "entries 3".into(),
    );
    out
}

/// The identity of the age recipient used above, from age's documentation.
fn age_identity_bytes() -> [u8; 32] {
    // AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX
    [0x42; 32]
}

/// Header length L, read from the preamble.
fn header_len(volume: &[u8]) -> usize {
    u32::from_be_bytes(volume[10..14].try_into().expect("4 bytes")) as usize
}

/// Where the first stanza's arguments (type first) lie, and where its
/// body starts: after the fixed prefix (58 bytes), the argument count, each
/// argument with its length, and the body length (SPEC.md §3.2).
fn first_stanza(volume: &[u8]) -> (Vec<std::ops::Range<usize>>, usize) {
    let mut at = 59;
    let mut args = Vec::new();
    for _ in 0..volume[58] {
        let len = usize::from(u16::from_be_bytes([volume[at], volume[at + 1]]));
        args.push(at + 2..at + 2 + len);
        at += 2 + len;
    }
    (args, at + 2)
}

/// The number SPEC.md §10.1 renders for a location's volume: its input
/// position or its volume number, whichever the variant names it by.
fn volume_field(at: &kuvert::Location) -> String {
    match at.volume {
        kuvert::Volume::Number(number) => number.to_string(),
        kuvert::Volume::Input(input) => input.to_string(),
        other => format!("{other:?}"),
    }
}

/// A location's byte offset, as SPEC.md §10.1 renders it.
fn offset_field(at: &kuvert::Location) -> String {
    at.offset
        .map_or_else(|| "none".to_owned(), |offset| offset.to_string())
}

/// The error as one line: variant name and fields (SPEC.md §10 `meta`).
fn describe(err: &Error) -> String {
    match err {
        Error::NotKuvert { at } => format!("NotKuvert input={}", volume_field(at)),
        Error::UnsupportedVersion { at, version } => {
            format!(
                "UnsupportedVersion input={} version={version}",
                volume_field(at)
            )
        }
        Error::MalformedHeader { at, .. } => {
            format!(
                "MalformedHeader input={} offset={}",
                volume_field(at),
                offset_field(at)
            )
        }
        Error::LimitExceeded { what, found, limit } => {
            format!("LimitExceeded found={found} limit={limit} what={what}")
        }
        Error::NoMatchingKey { stanza_types } => {
            format!("NoMatchingKey stanza_types={}", stanza_types.join(","))
        }
        Error::WrongPassphrase => "WrongPassphrase".into(),
        Error::HeaderDamaged { volume, .. } => format!("HeaderDamaged volume={volume}"),
        Error::Unauthenticated { chunk, at } => format!(
            "Unauthenticated chunk={chunk} volume={} offset={}",
            volume_field(at),
            offset_field(at)
        ),
        Error::Truncated { at } => format!(
            "Truncated volume={} length={}",
            volume_field(at),
            offset_field(at)
        ),
        Error::VolumeMissing { volume } => format!("VolumeMissing volume={volume}"),
        Error::DuplicateVolume { volume, at, first } => format!(
            "DuplicateVolume volume={volume} first={} second={}",
            volume_field(first),
            volume_field(at)
        ),
        Error::ForeignVolume { at, volume } => {
            format!("ForeignVolume input={} volume={volume}", volume_field(at))
        }
        Error::TrailingData { at } => format!(
            "TrailingData volume={} offset={}",
            volume_field(at),
            offset_field(at)
        ),
        Error::MalformedChunk { chunk, at, .. } => {
            format!("MalformedChunk chunk={chunk} volume={}", volume_field(at))
        }
        Error::MalformedPayload { offset, .. } => format!("MalformedPayload offset={offset}"),
        Error::MalformedTrailer { at, .. } => format!(
            "MalformedTrailer volume={} offset={}",
            volume_field(at),
            offset_field(at)
        ),
        Error::DigestMismatch { chunk, at } => format!(
            "DigestMismatch chunk={} volume={} offset={}",
            chunk.map_or_else(|| "header".to_owned(), |c| c.to_string()),
            volume_field(at),
            offset_field(at)
        ),
        Error::NoDigests { at } => format!("NoDigests volume={}", volume_field(at)),
        Error::Unsigned { at } => format!("Unsigned volume={}", volume_field(at)),
        Error::WrongSigner { at, signers } => {
            let prints: Vec<String> = signers.iter().map(|k| k.fingerprint()).collect();
            format!(
                "WrongSigner volume={} signers={}",
                volume_field(at),
                prints.join(",")
            )
        }
        Error::BadSignature { at, signer } => format!(
            "BadSignature volume={} signer={}",
            volume_field(at),
            signer.fingerprint()
        ),
        Error::MalformedArchive { offset, .. } => format!("MalformedArchive offset={offset}"),
        Error::UnsafeEntry { path, .. } => format!("UnsafeEntry path={path}"),
        Error::NameCollision { path, other } => format!("NameCollision path={path} other={other}"),
        Error::TarMismatch { path, offset, .. } => {
            format!("TarMismatch path={path} offset={offset}")
        }
        other => format!("{other:?}"),
    }
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn volume_name(number: usize) -> String {
    format!("v.{number:03}.kuv")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn meta(case: &Case) -> String {
    let mut out = format!("description: {}\n", case.description);
    for secret in &case.identities {
        let identity = X25519Identity::from_bytes(*secret);
        // Keys are recorded in age's encoding, which kuvert writes; the
        // kuvert-key vector records kuvert v1's, which it still reads; the
        // hybrid vectors' identities are mlkem768x25519 seeds.
        let text = if case.name.starts_with("hybrid") {
            HybridIdentity::from_bytes(*secret).to_secret_string()
        } else if case.name == "kuvert-key" {
            let hrp = bech32::Hrp::parse("kuvert-secret-key-").expect("hrp");
            zeroize::Zeroizing::new(
                bech32::encode_upper::<bech32::Bech32>(hrp, secret).expect("32 bytes"),
            )
        } else {
            identity.to_secret_string()
        };
        out.push_str(&format!("identity: {}\n", text.as_str()));
    }
    if let Some(passphrase) = case.passphrase {
        out.push_str(&format!("passphrase: {passphrase}\n"));
    }
    for seed in &case.signers {
        let key = SigningKey::from_seed(*seed);
        out.push_str(&format!("signer: {}\n", key.public()));
    }
    let order: Vec<String> = case.order.iter().map(|&n| volume_name(n)).collect();
    out.push_str(&format!("volumes: {}\n", order.join(" ")));
    match &case.outcome {
        Outcome::Plaintext(kind, data) => {
            out.push_str("expect: plaintext\n");
            let kind = match kind {
                PayloadKind::Archive => "archive",
                _ => "stream",
            };
            out.push_str(&format!("payload-kind: {kind}\n"));
            out.push_str(&format!("plaintext-length: {}\n", data.len()));
            out.push_str(&format!(
                "plaintext-sha256: {}\n",
                hex(&Sha256::digest(data))
            ));
            out.push_str(&manifest_meta(case));
            if !case.signers.is_empty() {
                let trusted: Vec<_> = case
                    .signers
                    .iter()
                    .map(|seed| *SigningKey::from_seed(*seed).public())
                    .collect();
                let opener = trusted.iter().fold(
                    Opener::new().identity(X25519Identity::from_bytes(case.identities[0])),
                    |opener, key| opener.require_signer(*key),
                );
                let reader = opener
                    .open(case.volumes.clone())
                    .expect("a signed plaintext case opens with its signers");
                if let kuvert::SignatureStatus::Checked { signer, .. } = reader.signature() {
                    out.push_str(&format!("signed-by: {}\n", signer.fingerprint()));
                }
            }
        }
        Outcome::Error(error) => out.push_str(&format!("expect: error {error}\n")),
    }
    if let Some(archive) = &case.archive {
        out.push_str(&format!("archive: {archive}\n"));
    }
    if case.keyless {
        out.push_str("keyless: yes\n");
    }
    out
}

/// The manifest lines of a case that opens (SPEC.md §10.1): what its
/// manifest says, and the padding rule and length.
fn manifest_meta(case: &Case) -> String {
    let mut opener = Opener::new();
    for secret in &case.identities {
        let identity = if case.name.starts_with("hybrid") {
            Identity::from(HybridIdentity::from_bytes(*secret))
        } else {
            Identity::from(X25519Identity::from_bytes(*secret))
        };
        opener = opener.identity(identity);
    }
    if let Some(passphrase) = case.passphrase {
        opener = opener.passphrase(Passphrase::new(passphrase));
    }
    let reader = opener
        .open(case.volumes.clone())
        .expect("a plaintext case opens");
    let manifest = reader.manifest();
    let mut out = String::new();
    if let Some(label) = manifest.label() {
        out.push_str(&format!("manifest-label: {label}\n"));
    }
    if let Some(created) = manifest.created() {
        out.push_str(&format!("manifest-created: {}\n", rfc3339_utc(created)));
    }
    if let Some(note) = manifest.note() {
        out.push_str(&format!(
            "manifest-note-sha256: {}\n",
            hex(&Sha256::digest(note.as_bytes()))
        ));
    }
    out.push_str(&format!(
        "padding: {}\n",
        padding_field(manifest, &case.volumes, reader.len())
    ));
    out
}

/// `RULE p` for the `padding` line: the rule the manifest names and the
/// padding length, from the payload length less everything else (SPEC.md
/// §15.2), with the manifest's length counted from its fields.
fn padding_field(manifest: &kuvert::Manifest, volumes: &[Vec<u8>], content: u64) -> String {
    let Some(rule) = manifest.padding() else {
        return "none 0".into();
    };
    let payload: u64 = volumes
        .iter()
        .map(|v| {
            let data = (v.len() - header_len(v).next_multiple_of(2048)) as u64;
            data - 16 * data.div_ceil(CHUNK as u64)
        })
        .sum();
    let text = |t: Option<&str>| t.map_or(0, |t| 4 + t.len() as u64);
    let records =
        manifest.created().map_or(0, |_| 12) + text(manifest.label()) + text(manifest.note()) + 5;
    format!("{} {}", rule.name(), payload - 4 - records - content - 8)
}

#[test]
#[ignore = "writes tests/vectors/; run on purpose when the format changes"]
fn write_vectors() {
    let dir = vectors_dir();
    for case in cases() {
        let case_dir = dir.join(case.name);
        let _ = fs::remove_dir_all(&case_dir);
        fs::create_dir_all(&case_dir).expect("create vector dir");
        for (index, volume) in case.volumes.iter().enumerate() {
            fs::write(case_dir.join(volume_name(index + 1)), volume).expect("write volume");
        }
        if let Outcome::Plaintext(_, data) = &case.outcome {
            fs::write(case_dir.join("plaintext"), data).expect("write plaintext");
        }
        fs::write(case_dir.join("meta"), meta(&case)).expect("write meta");
    }
}

#[test]
fn vectors_are_reproducible() {
    let dir = vectors_dir();
    let cases = cases();
    for case in &cases {
        let case_dir = dir.join(case.name);
        for (index, volume) in case.volumes.iter().enumerate() {
            let path = case_dir.join(volume_name(index + 1));
            let committed = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                committed == *volume,
                "{} differs from what this implementation writes",
                path.display()
            );
        }
        let committed_meta = fs::read_to_string(case_dir.join("meta")).expect("meta");
        assert_eq!(committed_meta, meta(case), "{}/meta", case.name);
    }
    let on_disk = fs::read_dir(&dir)
        .expect("vectors dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count();
    assert_eq!(
        on_disk,
        cases.len(),
        "a vector directory is not generated by cases()"
    );
}

/// Parses a `meta` file into its fields (`identity` may repeat).
fn parse_meta(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let (key, value) = line.split_once(": ").expect("meta lines are `key: value`");
        fields.entry(key.into()).or_default().push(value.into());
    }
    fields
}

/// Opens one committed vector as its meta says, using only the files.
/// What opening a vector gave: the payload kind and the content.
type Opened = Result<(PayloadKind, Vec<u8>), Error>;

fn open_vector(case_dir: &Path) -> (BTreeMap<String, Vec<String>>, Opened) {
    let fields = parse_meta(&fs::read_to_string(case_dir.join("meta")).expect("meta"));
    let (opener, volumes) = opener_and_volumes(case_dir, &fields);
    let result = opener.open(volumes).and_then(|mut reader| {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(Error::from_io)?;
        Ok((reader.kind(), out))
    });
    (fields, result)
}

/// The opener a vector's meta describes, and its volumes in meta order.
fn opener_and_volumes(
    case_dir: &Path,
    fields: &BTreeMap<String, Vec<String>>,
) -> (Opener, Vec<Vec<u8>>) {
    let mut opener = Opener::new();
    for text in fields.get("identity").into_iter().flatten() {
        opener = opener.identities(Identity::parse_file(text).expect("identity"));
    }
    if let Some(passphrase) = fields.get("passphrase") {
        opener = opener.passphrase(Passphrase::new(passphrase[0].clone()));
    }
    for text in fields.get("signer").into_iter().flatten() {
        opener = opener.require_signer(text.parse().expect("signer key"));
    }
    let volumes: Vec<Vec<u8>> = fields["volumes"][0]
        .split(' ')
        .map(|name| fs::read(case_dir.join(name)).expect("volume"))
        .collect();
    (opener, volumes)
}

/// What extracting everything of an archive vector into an empty directory
/// gives, rendered as the `archive` meta line (SPEC.md §10.1).
fn archive_outcome(case_dir: &Path, fields: &BTreeMap<String, Vec<String>>) -> String {
    let (opener, volumes) = opener_and_volumes(case_dir, fields);
    let reader = opener.open(volumes).expect("an archive vector's set opens");
    let dest = tempfile::tempdir().expect("tempdir");
    let result = Payload::detect(reader, &ArchiveLimits::new()).and_then(|payload| match payload {
        Payload::Archive(mut archive) => archive.extract(dest.path(), &ExtractOptions::new()),
        Payload::Stream(_) => panic!(
            "{}: an archive-kind set read as a stream",
            case_dir.display()
        ),
    });
    match result {
        Ok(report) => format!("entries {}", report.extracted.len()),
        Err(err) => {
            let left = fs::read_dir(dest.path()).expect("dest").count();
            assert_eq!(
                left,
                0,
                "{}: a refusal left {left} names behind",
                case_dir.display()
            );
            format!("error {}", describe(&err))
        }
    }
}

/// The keyless check (SPEC.md §7.7) of every volume of a vector, in meta
/// order: for a `keyless: yes` case it gives the expected error; for a
/// trailered case that opens, every volume is intact.
fn check_keyless(case_dir: &Path, fields: &BTreeMap<String, Vec<String>>) {
    let name = case_dir.display();
    let expect = &fields["expect"][0];
    let mut first_error = None;
    let mut trailered = true;
    for file in fields["volumes"][0].split(' ') {
        let volume = fs::read(case_dir.join(file)).expect("volume");
        match kuvert::verify_digests(volume.as_slice(), 2) {
            Ok(report) => {
                let region = &volume[report.chunk_start as usize..report.chunk_end as usize];
                assert_eq!(
                    report.chunk_region_blake3,
                    *blake3::hash(region).as_bytes(),
                    "{name}: the table's root is b3sum of the chunk region"
                );
            }
            Err(Error::NoDigests { .. }) => trailered = false,
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    if let Some(signers) = fields.get("signer") {
        // With its signers, the keyless check proves who signed it (§7.7).
        let trusted: TrustedSigners = signers
            .iter()
            .map(|text| text.parse().expect("signer key"))
            .collect();
        let volumes: Vec<Vec<u8>> = fields["volumes"][0]
            .split(' ')
            .map(|file| fs::read(case_dir.join(file)).expect("volume"))
            .collect();
        match (
            kuvert::verify_signed_set(&volumes, &trusted, 2),
            expect.strip_prefix("error "),
        ) {
            (Ok(reports), None) => {
                let by = reports[0].signer.fingerprint();
                assert_eq!(Some(&vec![by]), fields.get("signed-by"), "{name}");
            }
            (Err(err), Some(error)) => assert_eq!(describe(&err), error, "{name}: keyless"),
            (other, _) => panic!("{name}: keyless signed check gave {other:?}"),
        }
    }
    if fields.contains_key("keyless") {
        let error = first_error.unwrap_or_else(|| panic!("{name}: keyless check passed"));
        assert_eq!(
            Some(describe(&error).as_str()),
            expect.strip_prefix("error "),
            "{name}"
        );
    } else if expect == "plaintext" && trailered {
        assert!(first_error.is_none(), "{name}: {first_error:?}");
    }
}

#[test]
fn vectors_open_as_recorded() {
    let mut checked = 0;
    for entry in fs::read_dir(vectors_dir()).expect("vectors dir") {
        let case_dir = entry.expect("entry").path();
        if !case_dir.is_dir() {
            continue;
        }
        let (fields, result) = open_vector(&case_dir);
        let expect = &fields["expect"][0];
        let name = case_dir.display();
        check_keyless(&case_dir, &fields);
        if fields.contains_key("keyless") {
            checked += 1;
            continue;
        }
        match (expect.strip_prefix("error "), result) {
            (None, Ok((kind, data))) => {
                assert_eq!(expect, "plaintext", "{name}");
                let kind = match kind {
                    PayloadKind::Archive => "archive",
                    _ => "stream",
                };
                assert_eq!(kind, fields["payload-kind"][0], "{name}");
                assert_eq!(
                    data.len().to_string(),
                    fields["plaintext-length"][0],
                    "{name}"
                );
                assert_eq!(
                    hex(&Sha256::digest(&data)),
                    fields["plaintext-sha256"][0],
                    "{name}"
                );
                assert_eq!(
                    fs::read(case_dir.join("plaintext")).expect("plaintext"),
                    data,
                    "{name}"
                );
                check_manifest_lines(&case_dir, &fields);
            }
            (Some(error), Err(err)) => assert_eq!(describe(&err), error, "{name}"),
            (None, Err(err)) => panic!("{name}: expected plaintext, got {err}"),
            (Some(error), Ok(_)) => panic!("{name}: expected {error}, but it opened"),
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} vectors found");
}

/// The manifest and padding lines of a vector that opens agree with what
/// opening it gives.
fn check_manifest_lines(case_dir: &Path, fields: &BTreeMap<String, Vec<String>>) {
    let name = case_dir.display();
    let (opener, volumes) = opener_and_volumes(case_dir, fields);
    let reader = opener.open(volumes.clone()).expect("opens");
    let manifest = reader.manifest();
    let one = |key: &str| fields.get(key).map(|values| values[0].clone());
    assert_eq!(one("manifest-label").as_deref(), manifest.label(), "{name}");
    assert_eq!(
        one("manifest-created"),
        manifest.created().map(rfc3339_utc),
        "{name}"
    );
    assert_eq!(
        one("manifest-note-sha256"),
        manifest.note().map(|n| hex(&Sha256::digest(n.as_bytes()))),
        "{name}"
    );
    assert_eq!(
        one("padding"),
        Some(padding_field(manifest, &volumes, reader.len())),
        "{name}"
    );
}

/// Every archive-kind vector carries an `archive` line, and extracting
/// everything (`Payload::detect`, then `Archive::extract` into an empty
/// directory) gives exactly what it says.
#[test]
fn archive_vectors_extract_as_recorded() {
    let mut checked = 0;
    for entry in fs::read_dir(vectors_dir()).expect("vectors dir") {
        let case_dir = entry.expect("entry").path();
        if !case_dir.is_dir() {
            continue;
        }
        let fields = parse_meta(&fs::read_to_string(case_dir.join("meta")).expect("meta"));
        let name = case_dir.display();
        let is_archive = fields
            .get("payload-kind")
            .is_some_and(|kind| kind[0] == "archive");
        let Some(want) = fields.get("archive") else {
            assert!(
                !is_archive,
                "{name}: an archive-kind case without `archive`"
            );
            continue;
        };
        assert!(
            is_archive,
            "{name}: `archive` on a case that is not archive-kind"
        );
        assert_eq!(archive_outcome(&case_dir, &fields), want[0], "{name}");
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} archive vectors found");
}

#[test]
fn chunk_errors_release_only_the_authenticated_prefix() {
    let case_dir = vectors_dir().join("chunk-flipped");
    let fields = parse_meta(&fs::read_to_string(case_dir.join("meta")).expect("meta"));
    let volumes: Vec<Vec<u8>> = fields["volumes"][0]
        .split(' ')
        .map(|name| fs::read(case_dir.join(name)).expect("volume"))
        .collect();
    let mut reader = Opener::new()
        .identity(X25519Identity::from_bytes(identity(1)))
        .open(volumes)
        .expect("only chunk 3 is damaged");
    let mut released = Vec::new();
    let mut buf = [0u8; 1000];
    let err = loop {
        match reader.read(&mut buf) {
            Ok(0) => panic!("read to the end past a damaged chunk"),
            Ok(n) => released.extend_from_slice(&buf[..n]),
            Err(err) => break Error::from_io(err),
        }
    };
    assert_eq!(
        describe(&err),
        format!("Unauthenticated chunk=3 volume=2 offset={}", H + CHUNK)
    );
    let original = fs::read(vectors_dir().join("multi-volume/plaintext")).expect("plaintext");
    // Chunks 0–2, less the payload prefix and the manifest (SPEC.md §6.7).
    assert_eq!(released, original[..3 * PLAIN - PREFIX_AND_CREATED]);
}
