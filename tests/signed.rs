//! Signed sets (SPEC.md §14): round trips with a required signer, and the
//! attacks of issue 11, each refused with its exact error before any
//! plaintext is released: re-signing, stripping, a co-recipient's chunk
//! substitution, a swapped volume, a cut trailer, a forged table, another
//! volume's statement, re-addressing, a cut set; and the keyless check.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, UNIX_EPOCH};

use kuvert::sign::parse_allowed_signers;
use kuvert::{
    Argon2Params, Error, MemorySink, Opener, Passphrase, Sealer, SignatureStatus, SignerKey,
    SigningKey, TrustedSigners, Volume, X25519Identity, verify_signed_set, verify_signed_volume,
};

const CHUNK: usize = 4096;
const SECTOR: usize = 2048;
const HEADER: usize = 2048;
const STATEMENT: u16 = 0x8002;
const SIGNATURE: u16 = 0x8003;

fn identity() -> X25519Identity {
    X25519Identity::from_bytes([7; 32])
}

fn institute() -> SigningKey {
    SigningKey::from_seed([1; 32])
}

fn trusted() -> SignerKey {
    *institute().public()
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A deterministic sealer: sets sealed with one seed share their file key
/// and set id, as a co-recipient who knows the file key can arrange.
fn sealer(seed: u8) -> Sealer {
    Sealer::new()
        .recipient(identity().to_public())
        .chunk_size(CHUNK)
        .threads(1)
        .insecure_deterministic_seed([seed; 32])
        .created(Some(UNIX_EPOCH + Duration::from_secs(1_764_547_200)))
}

fn seal(sealer: &Sealer, data: &[u8]) -> Vec<Vec<u8>> {
    let mut writer = sealer.seal(MemorySink::new()).expect("seal");
    writer.write_all(data).expect("write");
    writer.finish().expect("finish").into_volumes()
}

fn signed(seed: u8, data: &[u8]) -> Vec<Vec<u8>> {
    seal(&sealer(seed).sign_with(institute()), data)
}

/// A volume size that holds `chunks` chunks and a trailer.
fn volume_size(chunks: usize) -> u64 {
    (HEADER + chunks * CHUNK + 4 * SECTOR) as u64
}

fn opener() -> Opener {
    Opener::new().identity(identity()).require_signer(trusted())
}

/// Opens and reads everything; the error if either fails.
fn open_all(opener: &Opener, volumes: Vec<Vec<u8>>) -> Result<Vec<u8>, Error> {
    let mut reader = opener.open(volumes)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(Error::from_io)?;
    Ok(out)
}

/// E: where the volume's chunks end, from its end record.
fn chunk_end(volume: &[u8]) -> usize {
    let end = &volume[volume.len() - SECTOR..];
    u64::from_be_bytes(end[48..56].try_into().expect("8 bytes")) as usize
}

/// The trailer's records of a volume, each `(type, body)`, table first.
fn records(volume: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let end = &volume[volume.len() - SECTOR..];
    let chunk_end = u64::from_be_bytes(end[48..56].try_into().expect("8 bytes")) as usize;
    let region_len = u64::from_be_bytes(end[56..64].try_into().expect("8 bytes")) as usize;
    let start = chunk_end.div_ceil(SECTOR) * SECTOR;
    let mut at = start + 72;
    let mut out = Vec::new();
    while at < start + region_len {
        let kind = u16::from_be_bytes([volume[at], volume[at + 1]]);
        let len = u32::from_be_bytes(volume[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        out.push((kind, volume[at + 8..at + 8 + len].to_vec()));
        at += 8 + len;
    }
    out
}

/// The volume with its trailer rewritten around `records`: consistent
/// (head, M, D), as anyone can write one without any key.
fn with_records(volume: &[u8], records: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let end = &volume[volume.len() - SECTOR..];
    let chunk_end = u64::from_be_bytes(end[48..56].try_into().expect("8 bytes")) as usize;
    let start = chunk_end.div_ceil(SECTOR) * SECTOR;
    let mut body = Vec::new();
    for (kind, record) in records {
        body.extend_from_slice(&kind.to_be_bytes());
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&(record.len() as u32).to_be_bytes());
        body.extend_from_slice(record);
    }
    let mut head = end[..72].to_vec();
    head[56..64].copy_from_slice(&(72 + body.len() as u64).to_be_bytes());
    let mut region = head.clone();
    region.extend_from_slice(&body);
    let digest = blake3::hash(&region);
    let mut out = volume[..start].to_vec();
    out.extend_from_slice(&region);
    out.resize(start + region.len().div_ceil(SECTOR) * SECTOR, 0);
    let end_at = out.len();
    out.extend_from_slice(&head);
    out.extend_from_slice(digest.as_bytes());
    out.resize(end_at + SECTOR, 0);
    out
}

fn bad_signature_by(result: Result<Vec<u8>, Error>, signer: SignerKey) {
    match result {
        Err(Error::BadSignature { signer: found, .. }) => assert_eq!(found, signer),
        other => panic!("expected BadSignature, got {other:?}"),
    }
}

#[test]
fn signed_sets_round_trip_with_a_required_signer() {
    let data = content(50_000);
    // One volume, one signer.
    let volumes = signed(1, &data);
    assert_eq!(open_all(&opener(), volumes.clone()).expect("open"), data);
    let reader = opener().open(volumes.clone()).expect("open");
    assert_eq!(
        reader.signature(),
        &SignatureStatus::Checked {
            signer: trusted(),
            principals: None
        }
    );
    assert_eq!(reader.signers(), &[trusted()]);
    // Without a required signer the claim is reported, not checked.
    let reader = Opener::new()
        .identity(identity())
        .open(volumes)
        .expect("open");
    assert_eq!(
        reader.signature(),
        &SignatureStatus::NotChecked {
            signers: vec![trusted()]
        }
    );
    assert!(reader.signature().to_string().contains("not checked"));

    // Two signers, many volumes, either one required, by allowed_signers.
    let second = SigningKey::from_seed([2; 32]);
    let second_public = *second.public();
    let two = sealer(1)
        .sign_with(institute())
        .sign_with(second)
        .volume_size(volume_size(3));
    let volumes = seal(&two, &data);
    assert!(volumes.len() >= 4);
    let line = format!("office@example.org {}", second_public.to_openssh(""));
    let file = parse_allowed_signers(&line).expect("allowed_signers");
    let by_file = Opener::new()
        .identity(identity())
        .require_allowed_signers(&file);
    let mut reader = by_file.open(volumes.clone()).expect("open");
    assert_eq!(
        reader.signature(),
        &SignatureStatus::Checked {
            signer: second_public,
            principals: Some("office@example.org".into())
        }
    );
    // Random access, every chunk checked against the signed table.
    for pos in [40_000u64, 0, 12_345, 49_999] {
        reader.seek(SeekFrom::Start(pos)).expect("seek");
        let mut byte = [0u8];
        reader.read_exact(&mut byte).expect("read");
        assert_eq!(byte[0], data[pos as usize]);
    }
    assert_eq!(open_all(&opener(), volumes.clone()).expect("open"), data);
    let mut copied = Vec::new();
    let mut reader = opener().threads(2).open(volumes).expect("open");
    reader.copy_to(&mut copied, u64::MAX).expect("copy");
    assert_eq!(copied, data);
}

#[test]
fn an_unsigned_set_is_refused_when_a_signer_is_required() {
    let volumes = seal(&sealer(1), &content(10_000));
    assert!(matches!(
        open_all(&opener(), volumes.clone()),
        Err(Error::Unsigned {
            at: kuvert::Location {
                volume: Volume::Number(1),
                ..
            }
        })
    ));
    let reader = Opener::new()
        .identity(identity())
        .open(volumes)
        .expect("open");
    assert_eq!(reader.signature(), &SignatureStatus::Unsigned);
    // Without trailers too.
    let volumes = seal(&sealer(1).digests(false), &content(100));
    assert!(matches!(
        open_all(&opener(), volumes),
        Err(Error::Unsigned { .. })
    ));
}

#[test]
fn a_passphrase_set_is_checked_alike() {
    let passphrase = || Passphrase::from("correct horse battery staple");
    let sealer = Sealer::new()
        .passphrase(passphrase())
        .argon2_params(Argon2Params::MINIMUM)
        .chunk_size(CHUNK);
    let data = content(9_000);
    let opener = Opener::new()
        .passphrase(passphrase())
        .require_signer(trusted());
    let volumes = seal(&sealer.clone().sign_with(institute()), &data);
    assert_eq!(open_all(&opener, volumes).expect("open"), data);
    let volumes = seal(&sealer, &data);
    assert!(matches!(
        open_all(&opener, volumes),
        Err(Error::Unsigned { .. })
    ));
}

#[test]
fn a_set_signed_by_another_key_is_refused() {
    let mallory = SigningKey::from_seed([9; 32]);
    let mallory_public = *mallory.public();
    let volumes = seal(&sealer(1).sign_with(mallory), &content(10_000));
    match open_all(&opener(), volumes.clone()) {
        Err(err @ Error::WrongSigner { .. }) => {
            assert!(err.to_string().contains(&mallory_public.fingerprint()));
            let Error::WrongSigner { signers, .. } = err else {
                unreachable!()
            };
            assert_eq!(signers, vec![mallory_public]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        verify_signed_volume(volumes[0].as_slice(), &trusted().into(), 1),
        Err(Error::WrongSigner { .. })
    ));
}

#[test]
fn stripped_signatures_are_bad_signatures() {
    let volumes = signed(1, &content(10_000));
    let all = records(&volumes[0]);
    assert_eq!(
        all.iter().map(|(kind, _)| *kind).collect::<Vec<_>>(),
        [0x8001, STATEMENT, SIGNATURE]
    );
    // No signature; neither statement nor signature.
    for keep in [2, 1] {
        let stripped = with_records(&volumes[0], &all[..keep]);
        bad_signature_by(open_all(&opener(), vec![stripped.clone()]), trusted());
        assert!(matches!(
            verify_signed_volume(stripped.as_slice(), &trusted().into(), 1),
            Err(Error::BadSignature { .. })
        ));
    }
    // The trailer as rebuilt unchanged still opens: the helper is faithful.
    let same = with_records(&volumes[0], &all);
    assert_eq!(same, volumes[0]);
}

/// Chunk `j` of a single-volume set: its bytes.
fn chunk_range(j: usize) -> std::ops::Range<usize> {
    HEADER + j * CHUNK..HEADER + (j + 1) * CHUNK
}

#[test]
fn a_co_recipients_chunk_is_never_released() {
    let data = content(30_000);
    let genuine = signed(1, &data);
    // Same seed: the same file key and set id, as a co-recipient who
    // knows the file key writes chunks; no signing key.
    let mut forged_data = data.clone();
    forged_data[20_000..24_000].fill(0xAA);
    forged_data[..100].fill(0xBB);
    let forgery = seal(&sealer(1), &forged_data);
    for (j, offset) in [(4usize, 4 * (CHUNK - 16)), (0, 0)] {
        let mut volume = genuine[0].clone();
        volume[chunk_range(j)].copy_from_slice(&forgery[0][chunk_range(j)]);
        // Without a required signer the substitution opens: the attack.
        let plain = Opener::new().identity(identity());
        assert_ne!(open_all(&plain, vec![volume.clone()]).expect("opens"), data);
        // With one, never: chunk 0 at open, a later chunk when read.
        match opener().open(vec![volume.clone()]) {
            Err(Error::DigestMismatch { chunk, at }) => {
                assert_eq!((j, chunk, at.chunk), (0, Some(0), Some(0)));
            }
            Ok(mut reader) => {
                let mut out = Vec::new();
                let err = Error::from_io(reader.read_to_end(&mut out).expect_err("refused"));
                assert!(
                    matches!(err, Error::DigestMismatch { chunk: Some(c), .. } if c == j as u64),
                    "{err:?}"
                );
                // Only what precedes the chunk was released, and it is genuine.
                assert!(out.len() <= offset, "{} bytes", out.len());
                assert_eq!(out[..], data[..out.len()]);
            }
            Err(other) => panic!("{other:?}"),
        }
        match verify_signed_volume(volume.as_slice(), &trusted().into(), 2) {
            Err(Error::DigestMismatch { chunk, .. }) => assert_eq!(chunk, Some(j as u64)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_forged_table_or_statement_is_a_bad_signature() {
    let data = content(30_000);
    let genuine = signed(1, &data);
    let mut forged_data = data.clone();
    forged_data[20_000] ^= 1;
    let forgery = seal(&sealer(1), &forged_data);
    let mut volume = genuine[0].clone();
    volume[chunk_range(4)].copy_from_slice(&forgery[0][chunk_range(4)]);
    // The table of the forged chunks (from the unsigned forgery), the
    // statement rewritten to match it, the old signature kept.
    let mut all = records(&genuine[0]);
    let forged_table = records(&forgery[0])[0].1.clone();
    let old_table = std::mem::replace(&mut all[0].1, forged_table.clone());
    let statement = String::from_utf8(all[1].1.clone()).expect("ascii");
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let statement = statement
        .replace(
            &hex(blake3::hash(&old_table).as_bytes()),
            &hex(blake3::hash(&forged_table).as_bytes()),
        )
        .replace(
            &hex(blake3::hash(&genuine[0][HEADER..chunk_end(&genuine[0])]).as_bytes()),
            &hex(blake3::hash(&volume[HEADER..chunk_end(&volume)]).as_bytes()),
        );
    assert_ne!(statement.as_bytes(), all[1].1.as_slice());
    all[1].1 = statement.into_bytes();
    let forged = with_records(&volume, &all);
    bad_signature_by(open_all(&opener(), vec![forged.clone()]), trusted());
    assert!(matches!(
        verify_signed_volume(forged.as_slice(), &trusted().into(), 1),
        Err(Error::BadSignature { .. })
    ));
    // The table alone rewritten: the statement no longer matches it.
    let mut table_only = records(&genuine[0]);
    table_only[0].1 = forged_table;
    bad_signature_by(
        open_all(&opener(), vec![with_records(&volume, &table_only)]),
        trusted(),
    );
}

#[test]
fn a_statement_of_another_volume_is_a_bad_signature() {
    let volumes = seal(
        &sealer(1).sign_with(institute()).volume_size(volume_size(3)),
        &content(40_000),
    );
    assert!(volumes.len() >= 3);
    let mut first = records(&volumes[0]);
    let second = records(&volumes[1]);
    first[1] = second[1].clone();
    first[2] = second[2].clone();
    let mut set = volumes.clone();
    set[0] = with_records(&volumes[0], &first);
    bad_signature_by(open_all(&opener(), set), trusted());
}

#[test]
fn a_volume_of_another_signed_set_is_foreign() {
    let volumes = seal(
        &sealer(1).sign_with(institute()).volume_size(volume_size(3)),
        &content(40_000),
    );
    let other = seal(
        &sealer(2).sign_with(institute()).volume_size(volume_size(3)),
        &content(40_000),
    );
    let mut set = volumes.clone();
    set[1] = other[1].clone();
    assert!(matches!(
        open_all(&opener(), set.clone()),
        Err(Error::ForeignVolume { .. })
    ));
    assert!(matches!(
        verify_signed_set(&set, &trusted().into(), 1),
        Err(Error::ForeignVolume { .. })
    ));
}

#[test]
fn a_cut_set_and_a_misplaced_last_volume_are_refused() {
    let data = content(40_000);
    let split = sealer(1).sign_with(institute()).volume_size(volume_size(3));
    let volumes = seal(&split, &data);
    let n = volumes.len() as u32;
    let cut = volumes[..volumes.len() - 1].to_vec();
    assert!(matches!(
        open_all(&opener(), cut.clone()),
        Err(Error::VolumeMissing { volume }) if volume == n
    ));
    assert!(matches!(
        verify_signed_set(&cut, &trusted().into(), 1),
        Err(Error::VolumeMissing { volume }) if volume == n
    ));
    let reports = verify_signed_set(&volumes, &trusted().into(), 1).expect("whole set");
    assert_eq!(reports.len(), volumes.len());
    assert!(
        reports[..reports.len() - 1]
            .iter()
            .all(|r| r.last().is_none())
    );
    assert_eq!(
        reports.last().and_then(|r| r.last()).map(|l| l.volumes),
        Some(n)
    );

    // Volume 1 of a one-volume set of the same seed is signed as the last:
    // before volume 2 of the longer set it is refused.
    let short = seal(&split, &data[..1000]);
    assert_eq!(short.len(), 1);
    let mut mixed = volumes.clone();
    mixed[0] = short[0].clone();
    bad_signature_by(open_all(&opener(), mixed), trusted());
}

#[test]
fn a_truncated_trailer_is_truncated() {
    let volumes = signed(1, &content(10_000));
    for cut in [1, SECTOR, SECTOR + 1, 3 * SECTOR] {
        let volume = volumes[0][..volumes[0].len() - cut].to_vec();
        assert!(
            matches!(
                open_all(&opener(), vec![volume.clone()]),
                Err(Error::Truncated { .. })
            ),
            "cut {cut}"
        );
        assert!(matches!(
            verify_signed_volume(volume.as_slice(), &trusted().into(), 1),
            Err(Error::Truncated { .. })
        ));
    }
}

#[test]
fn a_re_addressed_set_is_a_bad_signature() {
    let data = content(10_000);
    let genuine = signed(1, &data);
    // A key holder adds a recipient and recomputes the header MAC: the
    // same seed gives the same file key, set id and first stanza.
    let other = X25519Identity::from_bytes([8; 32]);
    let readdressed = seal(
        &sealer(1)
            .recipient(other.to_public())
            .sign_with(institute()),
        &data,
    );
    let mut volume = readdressed[0][..HEADER].to_vec();
    volume.extend_from_slice(&genuine[0][HEADER..]);
    // The header authenticates, the chunks decrypt: only the signature
    // (h_v) tells.
    let plain = Opener::new().identity(identity());
    assert!(open_all(&plain, vec![volume.clone()]).is_ok());
    bad_signature_by(open_all(&opener(), vec![volume.clone()]), trusted());
    assert!(matches!(
        verify_signed_volume(volume.as_slice(), &trusted().into(), 1),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn every_flipped_trailer_byte_is_refused() {
    let data = content(5_000);
    let volume = signed(1, &data).remove(0);
    let end = u64::from_be_bytes(
        volume[volume.len() - SECTOR + 48..volume.len() - SECTOR + 56]
            .try_into()
            .expect("8 bytes"),
    ) as usize;
    let trusted: TrustedSigners = trusted().into();
    let opener = opener().threads(1);
    for at in end..volume.len() {
        let mut bad = volume.clone();
        bad[at] ^= 0x01;
        assert!(
            opener.open(vec![bad.clone()]).is_err(),
            "byte {at} flipped opens"
        );
        assert!(
            verify_signed_volume(bad.as_slice(), &trusted, 1).is_err(),
            "byte {at} flipped verifies"
        );
    }
    // And the header's bytes: the MAC, the signature (h_v) or both refuse.
    for at in (0..HEADER).step_by(7) {
        let mut bad = volume.clone();
        bad[at] ^= 0x80;
        assert!(opener.open(vec![bad.clone()]).is_err(), "header byte {at}");
        assert!(verify_signed_volume(bad.as_slice(), &trusted, 1).is_err());
    }
}

#[test]
fn the_keyless_check_reports_the_signer() {
    let key = SigningKey::from_seed([3; 32]);
    let public = *key.public();
    let volumes = seal(
        &sealer(1).sign_with(institute()).sign_with(key),
        &content(20_000),
    );
    let file = parse_allowed_signers(&format!("archive@example.org {}", public.to_openssh("")))
        .expect("allowed_signers");
    let report =
        verify_signed_volume(volumes[0].as_slice(), &TrustedSigners::from(&file), 2).expect("ok");
    assert_eq!(report.signer, public);
    assert_eq!(report.principals.as_deref(), Some("archive@example.org"));
    assert_eq!(report.volume(), 1);
    assert!(report.digests.is_intact());
    assert_eq!(
        report.statement.region_digest,
        report.digests.chunk_region_blake3
    );
}

#[test]
fn verifying_a_volume_with_a_key_checks_its_signature_too() {
    let data = content(30_000);
    let genuine = signed(1, &data);
    let report = opener()
        .verify_volume(genuine[0].as_slice())
        .expect("intact");
    assert_eq!(
        report.signature,
        SignatureStatus::Checked {
            signer: trusted(),
            principals: None
        }
    );
    let unchecked = Opener::new().identity(identity());
    assert!(matches!(
        unchecked
            .verify_volume(genuine[0].as_slice())
            .expect("intact")
            .signature,
        SignatureStatus::NotChecked { .. }
    ));
    // A co-recipient's chunk authenticates under the file key, but does not
    // match the signed table.
    let forgery = seal(&sealer(1), &vec![0xAA; 30_000]);
    let mut volume = genuine[0].clone();
    volume[chunk_range(3)].copy_from_slice(&forgery[0][chunk_range(3)]);
    assert!(unchecked.verify_volume(volume.as_slice()).is_ok());
    assert!(matches!(
        opener().verify_volume(volume.as_slice()),
        Err(Error::DigestMismatch { chunk: Some(3), .. })
    ));
    let scanned = opener().scan_volume(volume.as_slice()).expect("scan");
    assert_eq!(scanned.damage.iter().count(), 1);
    let mallory = Opener::new()
        .identity(identity())
        .require_signer(*SigningKey::from_seed([9; 32]).public());
    assert!(matches!(
        mallory.verify_volume(genuine[0].as_slice()),
        Err(Error::WrongSigner { .. })
    ));
}

/// Runs `program args…` with `stdin`; its output.
fn run(program: &str, dir: &std::path::Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[test]
fn a_sealed_volume_checks_with_ssh_keygen_and_b3sum() {
    let found = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--help")
            .output()
            .is_ok()
    };
    if !found("ssh-keygen") || !found("b3sum") {
        assert!(
            std::env::var_os("KUVERT_REQUIRE_STOCK_TOOLS").is_none(),
            "ssh-keygen or b3sum not found, and KUVERT_REQUIRE_STOCK_TOOLS is set"
        );
        eprintln!("note: ssh-keygen or b3sum not found; skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let volumes = seal(
        &sealer(1).sign_with(institute()).volume_size(volume_size(3)),
        &content(40_000),
    );
    let allowed = format!("institute@example.org {}\n", trusted().to_openssh(""));
    std::fs::write(dir.path().join("allowed_signers"), allowed).expect("write");
    for (index, volume) in volumes.iter().enumerate() {
        let all = records(volume);
        let (statement, signature) = (&all[1].1, &all[2].1);
        std::fs::write(dir.path().join("v.sig"), signature).expect("write");
        let args = [
            "-Y",
            "verify",
            "-f",
            "allowed_signers",
            "-I",
            "institute@example.org",
            "-n",
            "kuvert",
            "-s",
            "v.sig",
        ];
        let out = run("ssh-keygen", dir.path(), &args, statement);
        assert!(out.status.success(), "volume {}: {:?}", index + 1, out);
        let mut changed = statement.clone();
        changed[30] ^= 1;
        assert!(
            !run("ssh-keygen", dir.path(), &args, &changed)
                .status
                .success()
        );
        // The statement's last line is b3sum's for the chunk region.
        let text = String::from_utf8(statement.clone()).expect("ascii");
        let last = text.lines().last().expect("a last line");
        let region = &volume[HEADER..chunk_end(volume)];
        let out = run("b3sum", dir.path(), &[], region);
        assert_eq!(
            String::from_utf8(out.stdout).expect("utf-8").trim_end(),
            last
        );
        assert_eq!(text.contains("# last volume"), index + 1 == volumes.len());
    }
}
