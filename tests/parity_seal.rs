//! The sealer's parity (SPEC.md §16.11): the header flag and p, the parity
//! record, the bulk and the end record's geometry; plans that account for
//! it exactly; readers that accept such volumes and ignore the bulk.

use std::io::{Read, Write};

use kuvert::{
    Error, FileSink, MemorySink, Opener, OptionError, Parity, Sealer, SigningKey, TrustedSigners,
    WriteSink, X25519Identity, verify_digests, verify_signed_volume,
};

const CHUNK: usize = 4096;

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn sealer(identity: &X25519Identity) -> Sealer {
    Sealer::new()
        .recipient(identity.to_public())
        .chunk_size(CHUNK)
        .threads(1)
        .parity(Parity::Percent(20))
}

fn seal(sealer: &Sealer, data: &[u8]) -> Vec<Vec<u8>> {
    let plan = sealer.plan(data.len() as u64).expect("plan");
    let mut writer = sealer.seal(MemorySink::for_plan(&plan)).expect("seal");
    writer.write_all(data).expect("write");
    let volumes = writer.finish().expect("finish").into_volumes();
    let planned: Vec<u64> = (1..=plan.volume_count() as u32)
        .map(|v| plan.volume_len(v).expect("planned volume"))
        .collect();
    let written: Vec<u64> = volumes.iter().map(|v| v.len() as u64).collect();
    assert_eq!(
        planned,
        written,
        "planned == written for {} bytes",
        data.len()
    );
    assert_eq!(plan.total_len(), written.iter().sum::<u64>());
    volumes
}

fn open(identity: &X25519Identity, volumes: Vec<Vec<u8>>) -> Result<Vec<u8>, Error> {
    let mut reader = Opener::new()
        .identity(
            identity
                .to_secret_string()
                .parse::<X25519Identity>()
                .expect("own identity"),
        )
        .open(volumes)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(Error::from_io)?;
    Ok(out)
}

#[test]
fn parity_volumes_round_trip_and_plans_are_exact() {
    let identity = X25519Identity::generate().expect("os randomness");
    let one = sealer(&identity);
    // Three volumes: each one sized with its parity inside.
    let size = 64 * 1024;
    let three = one.clone().volume_size(size);
    let signed = three.clone().sign_with(SigningKey::from_seed([9; 32]));
    let signed_one = one.clone().sign_with(SigningKey::from_seed([9; 32]));
    for (sealer, len, count) in [
        (&one, 0, 1),
        (&one, 100_000, 1),
        (&three, 100_000, 3),
        (&signed_one, 50_000, 1),
        (&signed, 100_000, 3),
    ] {
        let data = content(len);
        let volumes = seal(sealer, &data);
        assert_eq!(volumes.len(), count, "{len} bytes");
        for volume in &volumes[..volumes.len() - 1] {
            assert!(
                volume.len() as u64 <= size,
                "a volume fits its size, parity included"
            );
        }
        for volume in &volumes {
            verify_digests(volume.as_slice(), 1).expect("keyless verify accepts parity");
        }
        assert_eq!(open(&identity, volumes).expect("open"), data);
    }
    let volumes = seal(&signed, &content(100_000));
    let trusted: TrustedSigners = (*SigningKey::from_seed([9; 32]).public()).into();
    for volume in &volumes {
        verify_signed_volume(volume.as_slice(), &trusted, 1).expect("signed verify");
    }
}

#[test]
fn parity_options_are_checked() {
    let identity = X25519Identity::generate().expect("os randomness");
    for percent in [0, 2, 201, 1000] {
        let sealer = sealer(&identity).parity(Parity::Percent(percent));
        assert!(matches!(
            sealer.seal(MemorySink::new()),
            Err(Error::InvalidOption {
                reason: OptionError::ParityPercent { found, min: 3, max: 200 }
            }) if found == percent
        ));
        assert!(matches!(
            sealer.plan(10),
            Err(Error::InvalidOption {
                reason: OptionError::ParityPercent { .. }
            })
        ));
    }
    assert!(matches!(
        sealer(&identity).digests(false).seal(MemorySink::new()),
        Err(Error::InvalidOption {
            reason: OptionError::ParityWithoutDigests
        })
    ));
    assert!(matches!(
        sealer(&identity).seal(WriteSink::new(Vec::new())),
        Err(Error::InvalidOption {
            reason: OptionError::ParityNeedsPositionedSink
        })
    ));
    // Parity::None is no parity: the same lengths as without the option.
    let plain = Sealer::new()
        .recipient(identity.to_public())
        .chunk_size(CHUNK);
    let none = plain.clone().parity(Parity::None);
    assert_eq!(
        plain.plan(12_345).expect("plan"),
        none.plan(12_345).expect("plan")
    );
}

#[test]
fn file_and_memory_sinks_write_the_same_parity() {
    let identity = X25519Identity::generate().expect("os randomness");
    let sealer = sealer(&identity)
        .volume_size(48 * 1024)
        .insecure_deterministic_seed([5; 32])
        .created(None);
    let data = content(70_000);
    let in_memory = seal(&sealer, &data);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut writer = sealer
        .seal(FileSink::new(dir.path().join("set.kuv")))
        .expect("seal");
    writer.write_all(&data).expect("write");
    let sink = writer.finish().expect("finish");
    let on_disk: Vec<Vec<u8>> = sink
        .paths()
        .iter()
        .map(|path| std::fs::read(path).expect("read volume"))
        .collect();
    assert_eq!(on_disk, in_memory);
}

/// The bytes after the data span are the codec's parity of it, its digest
/// block, the check block and the end sector with the geometry body at 104
/// (SPEC.md §16.11, §16.13);
/// the header has PARITY and p after the stanzas.
#[test]
fn the_bulk_is_the_codecs_parity_of_the_data_span() {
    use kuvert::testing::parity::{ParityGeometry, SectorChecks, encode_parity};
    let identity = X25519Identity::generate().expect("os randomness");
    for percent in [3, 20, 200] {
        let sealer = sealer(&identity).parity(Parity::Percent(percent));
        let volume = &seal(&sealer, &content(300_000))[0];
        let sector = 2048;
        let end = &volume[volume.len() - sector..];
        let flags = u16::from_be_bytes([volume[14], volume[15]]);
        assert_eq!(flags, 0x0001 | 0x0004, "TRAILERS | PARITY");
        let (geometry, digest_hash) = ParityGeometry::from_body(&end[104..160]).expect("body");
        assert!(end[160..].iter().all(|&b| b == 0));
        let data_len = geometry.data_sectors() as usize * sector;
        assert_eq!(
            geometry,
            ParityGeometry::from_data(geometry.data_sectors(), percent).expect("geometry")
        );
        let parity = encode_parity(&geometry, &volume[..data_len], 7).expect("encode");
        assert_eq!(&volume[data_len..data_len + parity.len()], &parity[..]);
        let block = geometry.digest_block(&parity);
        let block_at = data_len + parity.len();
        assert_eq!(&volume[block_at..block_at + block.len()], &block[..]);
        assert_eq!(&digest_hash, blake3::hash(&block).as_bytes());
        // The check block (SPEC.md §16.13): a CRC-32 per covered sector.
        let mut checks = SectorChecks::new(geometry.checked_sectors());
        checks.record(0, &volume[..data_len]);
        checks.record(geometry.data_sectors(), &parity);
        let checks = checks.block();
        let checks_at = block_at + block.len();
        assert_eq!(&volume[checks_at..checks_at + checks.len()], &checks[..]);
        assert_eq!(checks_at + checks.len() + sector, volume.len());
        // B in the end record.
        let bulk = u64::from_be_bytes(end[64..72].try_into().expect("8 bytes"));
        assert_eq!(bulk as usize, parity.len() + block.len() + checks.len());
    }
}

/// The parity pass encodes batches of 16 stripes on the sealer's threads:
/// a volume of several batches is the same, byte for byte, on 1, 2 and 3
/// threads, and its bulk is the codec's parity and digest block.
#[test]
fn parity_of_many_batches_is_the_same_on_every_thread_count() {
    use kuvert::testing::parity::{ParityGeometry, encode_parity};
    let identity = X25519Identity::generate().expect("os randomness");
    let data = content(24 << 20);
    let sealed: Vec<Vec<Vec<u8>>> = [1, 2, 3]
        .into_iter()
        .map(|threads| {
            let sealer = sealer(&identity)
                .chunk_size(64 << 10)
                .threads(threads)
                .parity(Parity::Percent(200))
                .insecure_deterministic_seed([9; 32])
                .created(None);
            seal(&sealer, &data)
        })
        .collect();
    assert_eq!(sealed[0].len(), 1, "one volume");
    assert!(sealed[1] == sealed[0], "2 threads write the bytes of 1");
    assert!(sealed[2] == sealed[0], "3 threads write the bytes of 1");
    let volume = &sealed[0][0];
    let sector = 2048;
    let end = &volume[volume.len() - sector..];
    let (geometry, digest_hash) = ParityGeometry::from_body(&end[104..160]).expect("body");
    assert!(
        geometry.layer_sectors() > 4 * 32,
        "several batches: {geometry:?}"
    );
    let data_len = geometry.data_sectors() as usize * sector;
    let parity = encode_parity(&geometry, &volume[..data_len], 64).expect("encode");
    assert!(volume[data_len..data_len + parity.len()] == parity[..]);
    let block = geometry.digest_block(&parity);
    let block_at = data_len + parity.len();
    assert!(volume[block_at..block_at + block.len()] == block[..]);
    assert_eq!(&digest_hash, blake3::hash(&block).as_bytes());
}

/// SPEC.md §13.3 with PARITY: each parity field, changed, is refused with
/// its own rule and byte (the keyless check reads the trailer).
#[test]
fn changed_parity_fields_are_refused_by_rule() {
    use kuvert::TrailerError;
    let identity = X25519Identity::generate().expect("os randomness");
    let volume = seal(&sealer(&identity), &content(60_000)).remove(0);
    let sector = 2048;
    let end_at = volume.len() - sector;
    let refusal = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bad = volume.clone();
        edit(&mut bad);
        match verify_digests(bad.as_slice(), 1) {
            Err(Error::MalformedTrailer { at, reason }) => (at.offset, reason),
            other => panic!("expected MalformedTrailer, got {other:?}"),
        }
    };
    // The geometry body: k changed.
    assert_eq!(
        refusal(&|v| v[end_at + 104 + 3] ^= 1),
        (Some(end_at as u64 + 104), TrailerError::ParityGeometry)
    );
    // n_d changed: not this volume's span.
    assert_eq!(
        refusal(&|v| v[end_at + 104 + 19] ^= 1),
        (Some(end_at as u64 + 104), TrailerError::ParityGeometry)
    );
    // B changed, in both copies of the head (so the head still matches).
    let head_at = {
        let e = u64::from_be_bytes(volume[end_at + 48..end_at + 56].try_into().expect("8"));
        e.div_ceil(2048) as usize * 2048
    };
    assert_eq!(
        refusal(&|v| {
            v[end_at + 71] ^= 1;
            v[head_at + 71] ^= 1;
        }),
        (Some(end_at as u64 + 64), TrailerError::BulkLength)
    );
    // A nonzero byte after the 160-byte end record.
    assert_eq!(
        refusal(&|v| v[end_at + 160] = 1),
        (Some(end_at as u64 + 160), TrailerError::Padding)
    );
    // Bytes of the bulk are not read: a changed parity sector still verifies.
    let mut parity_changed = volume.clone();
    parity_changed[end_at - 3 * sector] ^= 0xff;
    verify_digests(parity_changed.as_slice(), 1).expect("bulk ignored for reading");
    // Cut off the end sector: no end record where the length says.
    let cut = &volume[..end_at];
    assert!(matches!(
        verify_digests(cut, 1),
        Err(Error::Truncated { .. })
    ));
}
