//! Round trips through the public API: every payload length around chunk
//! and volume boundaries, every way of splitting writes and reads, volumes
//! in any order, several recipients, passphrases, `inspect`,
//! `verify_volume`, and the file sink and source.

mod common;

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use kuvert::{
    Argon2Params, FileSink, FileSource, Identity, MemorySink, Opener, Passphrase, Sealer,
    VolumeSink, Warning, X25519Identity, inspect,
};
use proptest::prelude::*;

use common::forge::hex;
use common::{
    Failure, H1, ShortReads, data, expect_err, failure, identity, must_open, open, open_err,
    open_with, permutation, plain, read_all, read_released, same_identity, seal, seal_with, sealer,
    types,
};

/// What one volume of a set must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    chunks: u64,
    plaintext: u64,
    len: u64,
}

/// Bytes of the payload prefix (SPEC.md §6.7) before the content sealed.
const PREFIX: u64 = 4;

/// The volumes the format prescribes for a stream of `len` content bytes
/// (a payload of PREFIX + `len` bytes) in chunks of `chunk` bytes,
/// `per_volume` chunks per volume (0 = unsplit), behind a padded header of
/// `header` bytes (SPEC.md §6.1, §6.5, §6.7). `plaintext` counts payload
/// bytes, as [`kuvert::VolumeReport::plaintext_len`] does.
fn expected_shapes(len: usize, chunk: usize, per_volume: u64, header: u64) -> Vec<Shape> {
    let p = plain(chunk) as u64;
    let len = len as u64 + PREFIX;
    let chunks = len.div_ceil(p).max(1);
    let final_plain = len - (chunks - 1) * p;
    let per = if per_volume == 0 { chunks } else { per_volume };
    let mut shapes = Vec::new();
    let mut first = 0;
    while first < chunks {
        let count = per.min(chunks - first);
        let is_last = first + count == chunks;
        let plaintext = if is_last {
            (count - 1) * p + final_plain
        } else {
            count * p
        };
        let len = header + (count - 1) * chunk as u64 + plaintext - (count - 1) * p + TAG_U64;
        shapes.push(Shape {
            chunks: count,
            plaintext,
            len,
        });
        first += count;
    }
    shapes
}

const TAG_U64: u64 = common::TAG as u64;

#[test]
fn expected_shapes_model_is_itself_right() {
    // One full-volume example worked by hand: 4096-byte chunks, P = 4080,
    // 2 chunks per volume, 5 full chunks and 7 bytes: 6 chunks, 3 volumes.
    let shapes = expected_shapes(5 * 4080 + 7 - 4, 4096, 2, 2048);
    assert_eq!(
        shapes,
        [
            Shape {
                chunks: 2,
                plaintext: 8160,
                len: 2048 + 8192
            },
            Shape {
                chunks: 2,
                plaintext: 8160,
                len: 2048 + 8192
            },
            Shape {
                chunks: 2,
                plaintext: 4087,
                len: 2048 + 4096 + 7 + 16
            },
        ]
    );
    assert_eq!(
        expected_shapes(0, 4096, 0, 2048),
        [Shape {
            chunks: 1,
            plaintext: 4,
            len: 2048 + 4 + 16
        }]
    );
}

/// One round-trip case.
#[derive(Debug, Clone)]
struct Case {
    chunk: usize,
    len: usize,
    /// Chunks per volume asked for (0 = no volume size) and the slack added
    /// to the volume size, below one chunk.
    per_volume: u64,
    slack: u64,
    write_splits: Vec<usize>,
    read_splits: Vec<usize>,
    short_max: usize,
    shuffle: u64,
    seed: u64,
    /// Sealing and opening threads.
    threads: usize,
    /// Read with `copy_to` into a writer taking this many bytes per call,
    /// instead of `read`.
    copy_to: Option<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![Just(4096usize), Just(8192), Just(16384)].prop_flat_map(|chunk| {
        let p = plain(chunk);
        // Half the lengths sit on a chunk boundary k·P or one byte either side.
        let boundary =
            (0usize..=5, -1isize..=1).prop_map(move |(k, d)| (k * p).saturating_add_signed(d));
        let len = prop_oneof![boundary, 0..=5 * p];
        let split = prop_oneof![1usize..=64, 1usize..=3 * chunk];
        let geometry = (
            len,
            prop_oneof![Just(0u64), 1u64..=4],
            prop_oneof![Just(0u64), 1..chunk as u64, Just(chunk as u64 - 1)],
        );
        let io = (
            prop::collection::vec(split.clone(), 1..4),
            prop::collection::vec(split, 1..4),
            prop_oneof![Just(1usize), 1usize..=2 * chunk, Just(usize::MAX)],
            1usize..=3,
            prop_oneof![3 => Just(None), 1 => (1usize..=3 * chunk).prop_map(Some)],
        );
        (geometry, io, any::<u64>(), any::<u64>()).prop_map(
            move |(
                (len, per_volume, slack),
                (write_splits, read_splits, short_max, threads, copy_to),
                shuffle,
                seed,
            )| Case {
                chunk,
                len,
                per_volume,
                slack,
                write_splits,
                read_splits,
                short_max,
                shuffle,
                seed,
                threads,
                copy_to,
            },
        )
    })
}

fn check_round_trip(case: &Case) -> Result<(), TestCaseError> {
    let me = identity(1);
    let plaintext = data(case.len, case.seed);
    let volume_size =
        (case.per_volume > 0).then(|| H1 + case.per_volume * case.chunk as u64 + case.slack);
    let sealer = sealer(&me, case.chunk, volume_size).threads(case.threads);

    let mut writer = sealer.seal(MemorySink::new()).expect("valid options");
    prop_assert_eq!(writer.chunks_per_volume(), case.per_volume);
    prop_assert_eq!(writer.header_len(), H1);
    common::write_split(&mut writer, &plaintext, &case.write_splits).expect("memory write");
    let volumes = writer.finish().expect("finish").into_volumes();

    let shapes = expected_shapes(case.len, case.chunk, case.per_volume, H1);
    let lens: Vec<u64> = volumes.iter().map(|v| v.len() as u64).collect();
    let want: Vec<u64> = shapes.iter().map(|s| s.len).collect();
    prop_assert_eq!(lens, want);
    if let Some(size) = volume_size {
        prop_assert!(volumes.iter().all(|v| v.len() as u64 <= size));
    }

    // Header facts, readable without a key.
    let infos: Vec<_> = volumes
        .iter()
        .map(|v| inspect(v.as_slice()).expect("inspect"))
        .collect();
    for (index, (info, shape)) in infos.iter().zip(&shapes).enumerate() {
        prop_assert_eq!(info.version, 2);
        prop_assert_eq!(info.set_id, infos[0].set_id);
        prop_assert_eq!(info.volume as usize, index + 1);
        prop_assert_eq!(info.chunk_size, case.chunk);
        prop_assert_eq!(info.chunks_per_volume, case.per_volume);
        prop_assert_eq!(&info.stanza_types, &types(&["X25519"]));
        prop_assert_eq!(info.header_len, H1);
        prop_assert_eq!(info.len, shape.len);
        prop_assert_eq!(info.is_split(), case.per_volume > 0);
        prop_assert_eq!(
            info.is_full(),
            case.per_volume > 0 && shape.len == H1 + case.per_volume * case.chunk as u64
        );
        prop_assert!(!info.passphrase_is_unauthenticated());
    }

    // Each volume on its own.
    let verifier = Opener::new().identity(identity(1));
    let mut total = 0;
    for (index, (volume, shape)) in volumes.iter().zip(&shapes).enumerate() {
        let report = verifier.verify_volume(volume).expect("intact volume");
        prop_assert_eq!(report.volume as usize, index + 1);
        prop_assert_eq!(report.set_id, infos[0].set_id);
        prop_assert_eq!(report.chunks, shape.chunks);
        prop_assert_eq!(report.plaintext_len, shape.plaintext);
        prop_assert_eq!(report.last_in_set, index + 1 == volumes.len());
        total += report.plaintext_len;
    }
    prop_assert_eq!(total, case.len as u64 + PREFIX);

    // The whole set, handed over in a shuffled order, read with short reads.
    let order = permutation(volumes.len(), case.shuffle);
    let shuffled: Vec<Vec<u8>> = order.iter().map(|&i| volumes[i].clone()).collect();
    let mut reader = must_open(&Opener::new().identity(me).threads(case.threads), shuffled);
    prop_assert_eq!(reader.len(), case.len as u64);
    prop_assert_eq!(reader.is_empty(), case.len == 0);
    prop_assert_eq!(reader.volume_count(), volumes.len());
    prop_assert_eq!(reader.chunk_size(), case.chunk);
    prop_assert_eq!(reader.set_id(), &infos[0].set_id);
    if let Some(max) = case.copy_to {
        let mut out = common::ShortWrites {
            inner: Vec::new(),
            max,
        };
        let copied = reader.copy_to(&mut out, u64::MAX).expect("intact set");
        prop_assert_eq!(copied, case.len as u64);
        prop_assert!(out.inner == plaintext, "copied plaintext differs");
        prop_assert_eq!(reader.copy_to(&mut out, u64::MAX).expect("at the end"), 0);
        prop_assert_eq!(reader.into_volumes(), volumes);
        return Ok(());
    }
    let mut short = ShortReads {
        inner: reader,
        max: case.short_max,
    };
    let released = read_released(&mut short, &case.read_splits);
    prop_assert!(released.error.is_none(), "{:?}", released.error);
    prop_assert!(released.bytes == plaintext, "plaintext differs");
    // The reader gives the volumes back in volume order.
    prop_assert_eq!(short.inner.into_volumes(), volumes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn round_trip_over_lengths_chunks_volumes_and_splits(case in case()) {
        check_round_trip(&case)?;
    }
}

#[test]
fn every_boundary_length_round_trips_unsplit_and_split() {
    // The deterministic core of the property above, so that the boundaries
    // are covered on every run and not only when proptest draws them.
    for chunk in [4096usize, 8192, 16384] {
        let p = plain(chunk);
        for k in 0..=5 {
            for len in [k * p, k * p + 1, (k * p).saturating_sub(1)] {
                for per_volume in [0, 1, 2, 3, 4] {
                    let case = Case {
                        chunk,
                        len,
                        per_volume,
                        slack: if per_volume % 2 == 0 { 0 } else { 1000 },
                        write_splits: vec![usize::MAX],
                        read_splits: vec![p - 1, 1, chunk],
                        short_max: p + 1,
                        shuffle: (k * 31 + per_volume as usize) as u64,
                        seed: len as u64,
                        threads: 1 + k % 3,
                        copy_to: (k % 2 == 1).then_some(chunk + 1),
                    };
                    check_round_trip(&case).unwrap_or_else(|err| panic!("{case:?}: {err}"));
                }
            }
        }
    }
}

#[test]
fn payload_ending_on_a_volume_boundary_has_no_empty_volume() {
    let me = identity(1);
    for per_volume in 1..=3u64 {
        let len = 2 * per_volume as usize * plain(4096) - PREFIX as usize;
        let volumes = seal(&data(len, 3), 4096, Some(H1 + per_volume * 4096), &me);
        assert_eq!(volumes.len(), 2, "K = {per_volume}");
        let last = inspect(volumes[1].as_slice()).expect("inspect");
        assert!(last.is_full());
        let report = Opener::new()
            .identity(identity(1))
            .verify_volume(&volumes[1])
            .expect("verify");
        assert!(report.last_in_set);
        let first = Opener::new()
            .identity(identity(1))
            .verify_volume(&volumes[0])
            .expect("verify");
        assert!(!first.last_in_set);
        assert_eq!(open(volumes, identity(1)).expect("open"), data(len, 3));
    }
}

#[test]
fn large_headers_shift_the_chunks_and_shrink_the_volumes() {
    // 25 recipients: L = 14 + 44 + 25·89 + 8 + 32 = 2323, so H = 4096.
    let ids: Vec<X25519Identity> = (0..25).map(|i| identity(100 + i)).collect();
    let sealer = Sealer::new()
        .digests(false) // lengths below count chunks only (no trailer)
        .recipients(ids.iter().map(|id| id.to_public()))
        .chunk_size(4096)
        .volume_size(4096 + 2 * 4096 + 4095);
    let plaintext = data(5 * plain(4096), 9);
    let volumes = seal_with(&sealer, &plaintext, &[1000]);
    assert_eq!(volumes.len(), 3);
    let info = inspect(&volumes[0]).expect("inspect");
    assert_eq!(info.header_len, 4096);
    assert_eq!(info.chunks_per_volume, 2);
    assert_eq!(info.stanza_types.len(), 25);
    assert_eq!(volumes[0].len(), 4096 + 2 * 4096);
    // The last recipient opens as well as the first.
    assert_eq!(
        open(volumes.clone(), same_identity(&ids[24])).expect("open"),
        plaintext
    );
    assert_eq!(
        open(volumes, same_identity(&ids[0])).expect("open"),
        plaintext
    );
}

#[test]
fn every_recipient_opens_and_a_stranger_is_told_which_stanzas_there_are() {
    let ids = [identity(11), identity(12), identity(13)];
    let sealer = Sealer::new()
        .digests(false) // lengths below count chunks only (no trailer)
        .recipients(ids.iter().map(|id| id.to_public()))
        .chunk_size(4096)
        .volume_size(H1 + 2 * 4096);
    let plaintext = data(3 * plain(4096) + 5, 4);
    let volumes = seal_with(&sealer, &plaintext, &[4096]);
    assert_eq!(volumes.len(), 2);
    let info = inspect(&volumes[1]).expect("inspect");
    assert_eq!(info.stanza_types, types(&["X25519", "X25519", "X25519"]));
    assert!(!info.passphrase_is_unauthenticated());

    for id in &ids {
        assert_eq!(
            open(volumes.clone(), same_identity(id)).expect("a recipient opens"),
            plaintext
        );
    }
    assert_eq!(
        open_err(&Opener::new().identity(identity(99)), volumes.clone()),
        Failure::NoMatchingKey {
            stanza_types: types(&["X25519", "X25519", "X25519"])
        }
    );
    assert_eq!(
        open_err(&Opener::new(), volumes.clone()),
        Failure::NoMatchingKey {
            stanza_types: types(&["X25519", "X25519", "X25519"])
        }
    );
    // Strangers tried before the right identity do not stop it.
    let opener = Opener::new()
        .identity(identity(98))
        .identity(identity(99))
        .identity(same_identity(&ids[2]));
    assert_eq!(
        open_with(&opener, volumes.clone()).expect("open"),
        plaintext
    );

    // An identity file works the same way.
    let file = format!(
        "# two keys\n{}\n\n{}\n",
        identity(99).to_secret_string().as_str(),
        ids[1].to_age_secret_string().as_str()
    );
    let parsed = Identity::parse_file(&file).expect("identity file");
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[1].to_recipient(), Some(ids[1].to_public().into()));
    let opener = Opener::new().identities(parsed);
    assert_eq!(open_with(&opener, volumes).expect("open"), plaintext);
}

#[test]
fn the_same_recipient_twice_gets_one_stanza() {
    let me = identity(1);
    let volumes = seal_with(
        &Sealer::new()
            .recipient(me.to_public())
            .recipient(me.to_public())
            .chunk_size(4096),
        b"once",
        &[1],
    );
    let info = inspect(&volumes[0]).expect("inspect");
    assert_eq!(info.stanza_types, types(&["X25519"]));
    assert_eq!(open(volumes, me).expect("open"), b"once");
}

/// One Argon2id derivation costs ~0.1 s at `MINIMUM`; this test runs five.
#[test]
fn x25519_and_passphrase_each_open_a_mixed_set() {
    let me = identity(21);
    let sealer = Sealer::new()
        .digests(false) // lengths below count chunks only (no trailer)
        .recipient(me.to_public())
        .passphrase(Passphrase::new("correct horse battery staple"))
        .argon2_params(Argon2Params::MINIMUM)
        .chunk_size(4096)
        .volume_size(H1 + 4096)
        .created(None)
        .pad(kuvert::Padding::None);
    let plaintext = data(2 * plain(4096) + 100, 5);
    let volumes = seal_with(&sealer, &plaintext, &[usize::MAX]);
    assert_eq!(volumes.len(), 3);

    let info = inspect(&volumes[0]).expect("inspect");
    assert_eq!(info.stanza_types, types(&["X25519", "argon2id"]));
    assert!(info.passphrase_is_unauthenticated());

    // The key alone: the x25519 stanza comes first, so no Argon2 runs.
    assert_eq!(
        open(volumes.clone(), same_identity(&me)).expect("open"),
        plaintext
    );
    // The passphrase alone.
    let by_passphrase = Opener::new().passphrase("correct horse battery staple".into());
    assert_eq!(
        open_with(&by_passphrase, volumes.clone()).expect("open"),
        plaintext
    );
    // A wrong passphrase is named as such, with or without a stranger's key.
    let wrong = Opener::new().passphrase("Correct horse battery staple".into());
    assert_eq!(open_err(&wrong, volumes.clone()), Failure::WrongPassphrase);
    let wrong = Opener::new()
        .identity(identity(99))
        .passphrase("tr0ub4dor&3".into());
    assert_eq!(open_err(&wrong, volumes.clone()), Failure::WrongPassphrase);
    // The right key beside a wrong passphrase opens: the first stanza decides.
    let both = Opener::new()
        .identity(same_identity(&me))
        .passphrase("wrong".into());
    assert_eq!(open_with(&both, volumes.clone()).expect("open"), plaintext);
    // No key and no passphrase.
    assert_eq!(
        open_err(&Opener::new(), volumes.clone()),
        Failure::NoMatchingKey {
            stanza_types: types(&["X25519", "argon2id"])
        }
    );
    // One volume verified with the passphrase.
    let report = by_passphrase.verify_volume(&volumes[2]).expect("verify");
    assert!(report.last_in_set);
    assert_eq!(report.plaintext_len, 100 + PREFIX);
    // Opened by the passphrase, the set says the passphrase proves nothing;
    // opened by the key, nothing to say.
    let reader = must_open(&by_passphrase, volumes.clone());
    assert_eq!(reader.warnings(), [Warning::PassphraseBesidePublicKeys]);
    let reader = must_open(&Opener::new().identity(same_identity(&me)), volumes);
    assert_eq!(reader.warnings(), []);
}

#[test]
fn passphrase_only_set_proves_its_sender_knew_the_passphrase() {
    let volumes = seal_with(
        &Sealer::new()
            .passphrase(Passphrase::new("pässphrase ünicode"))
            .argon2_params(Argon2Params::MINIMUM)
            .chunk_size(8192),
        b"minutes of the meeting",
        &[3],
    );
    let info = inspect(&volumes[0]).expect("inspect");
    assert_eq!(info.stanza_types, types(&["argon2id"]));
    assert!(!info.passphrase_is_unauthenticated());
    assert!(!info.is_split());
    assert!(!info.is_full());
    assert_eq!(
        open_with(
            &Opener::new().passphrase("pässphrase ünicode".into()),
            volumes.clone()
        )
        .expect("open"),
        b"minutes of the meeting"
    );
    // The UTF-8 bytes are used as given: no normalisation, no trimming.
    assert_eq!(
        open_err(
            &Opener::new().passphrase("pässphrase ünicode ".into()),
            volumes.clone()
        ),
        Failure::WrongPassphrase
    );
    // An identity cannot open a passphrase-only set.
    assert_eq!(
        open_err(&Opener::new().identity(identity(1)), volumes),
        Failure::NoMatchingKey {
            stanza_types: types(&["argon2id"])
        }
    );
}

#[test]
fn invalid_sealing_options_are_refused_before_any_work() {
    let me = identity(1);
    assert_eq!(
        expect_err(Sealer::new().seal(MemorySink::new())),
        Failure::InvalidOption
    );
    assert_eq!(
        expect_err(
            Sealer::new()
                .passphrase(Passphrase::new(""))
                .argon2_params(Argon2Params::MINIMUM)
                .seal(MemorySink::new())
        ),
        Failure::InvalidOption
    );
    for chunk in [0, 1, 2048, 4095, 4097, 3 * 4096, 1 << 25] {
        assert_eq!(
            expect_err(sealer(&me, chunk, None).seal(MemorySink::new())),
            Failure::InvalidOption,
            "chunk {chunk}"
        );
    }
    for chunk in [4096, 1 << 24] {
        sealer(&me, chunk, None)
            .seal(MemorySink::new())
            .expect("chunk sizes 4 KiB and 16 MiB are allowed");
    }
    // A volume must hold the header and one chunk.
    assert_eq!(
        expect_err(sealer(&me, 4096, Some(H1 + 4095)).seal(MemorySink::new())),
        Failure::InvalidOption
    );
    assert_eq!(
        expect_err(sealer(&me, 4096, Some(0)).seal(MemorySink::new())),
        Failure::InvalidOption
    );
    let writer = sealer(&me, 4096, Some(H1 + 4096))
        .seal(MemorySink::new())
        .expect("one chunk per volume");
    assert_eq!(writer.chunks_per_volume(), 1);
    assert!(Argon2Params::new(32 * 1024, 3, 4).is_err());
    assert!(Argon2Params::new(64 * 1024, 2, 4).is_err());
    assert!(Argon2Params::new(64 * 1024, 3, 17).is_err());
    assert!(Argon2Params::new(64 * 1024, 3, 0).is_err());
}

#[test]
fn nothing_to_open_is_its_own_error() {
    assert_eq!(
        open_err(&Opener::new().identity(identity(1)), Vec::<Vec<u8>>::new()),
        Failure::NoVolumes
    );
}

#[test]
fn memory_slices_open_as_well_as_vectors() {
    let me = identity(1);
    let plaintext = data(3 * plain(4096), 8);
    let volumes = seal(&plaintext, 4096, Some(H1 + 4096), &me);
    let slices: Vec<&[u8]> = volumes.iter().map(Vec::as_slice).collect();
    assert_eq!(open(slices, same_identity(&me)).expect("open"), plaintext);
    let one = seal(b"x", 4096, None, &me);
    let mut reader = Opener::new()
        .identity(me)
        .open_one(one[0].as_slice())
        .expect("open_one");
    assert_eq!(read_all(&mut reader), b"x");
}

/// Fails the `fail_at`-th `write_all` (counting from 0).
#[derive(Debug)]
struct FailingSink {
    inner: MemorySink,
    writes: usize,
    fail_at: usize,
}

impl VolumeSink for FailingSink {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        self.inner.start_volume(number)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writes += 1;
        if self.writes - 1 == self.fail_at {
            return Err(io::Error::other("disc full"));
        }
        self.inner.append(bytes)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.inner.finish()
    }
}

/// Bytes that the documented memory bound of a sealer with `threads`
/// threads ("threads × 2 batches" of about 1 MiB) cannot hold back: writing
/// this much must have reached the sink.
fn beyond_the_memory_bound(threads: usize) -> usize {
    (2 * threads + 3) << 20
}

#[test]
fn a_failed_write_poisons_the_writer() {
    let me = identity(1);
    let plaintext = data(beyond_the_memory_bound(1), 1);
    for fail_at in [0, 1, 2, 3, 1000] {
        let sink = FailingSink {
            inner: MemorySink::new(),
            writes: 0,
            fail_at,
        };
        let mut writer = sealer(&me, 4096, Some(H1 + 100 * 4096))
            .threads(1)
            .seal(sink)
            .expect("seal");
        let written = common::write_split(&mut writer, &plaintext, &[65536]);
        if let Err(err) = written {
            assert_eq!(err.to_string(), "disc full", "fail at {fail_at}");
            // Every later write fails too.
            assert!(writer.write(b"more").is_err(), "fail at {fail_at}");
        }
        let finished = writer.finish();
        if fail_at == 1000 {
            // Far beyond the writes this set needs: a control.
            let volumes = finished.expect("no failure").inner.into_volumes();
            assert_eq!(open(volumes, same_identity(&me)).expect("open"), plaintext);
        } else {
            // The set is never completed with a hole in it.
            assert_eq!(
                expect_err(finished),
                Failure::Io(io::ErrorKind::Other),
                "fail at {fail_at}"
            );
        }
    }
}

/// What opening must say about the volumes a dropped writer left: whole
/// chunks only, and never a complete set.
fn expected_for_abandoned(volumes: &[Vec<u8>], per_volume: u64) -> Failure {
    let Some(last) = volumes.last() else {
        return Failure::NoVolumes;
    };
    let full = H1 + per_volume * 4096;
    for volume in &volumes[..volumes.len() - 1] {
        assert_eq!(volume.len() as u64, full, "only the last volume is partial");
    }
    let len = last.len() as u64;
    assert_eq!((len - H1) % 4096, 0, "only whole sealed chunks are written");
    if len == full {
        Failure::VolumeMissing {
            volume: volumes.len() as u32 + 1,
        }
    } else {
        Failure::Truncated {
            volume: volumes.len() as u32,
            length: len,
        }
    }
}

#[test]
fn a_dropped_writer_never_opens_as_complete() {
    let me = identity(1);
    for (threads, per_volume) in [(1, 100), (2, 100), (3, 256), (2, 1)] {
        let mut sink = MemorySink::new();
        {
            let mut writer = sealer(&me, 4096, Some(H1 + per_volume * 4096))
                .threads(threads)
                .seal(&mut sink)
                .expect("seal");
            writer
                .write_all(&data(beyond_the_memory_bound(threads), 2))
                .expect("write");
        }
        let volumes = sink.into_volumes();
        assert!(
            !volumes.is_empty(),
            "{threads} threads held everything back"
        );
        let want = expected_for_abandoned(&volumes, per_volume);
        assert_eq!(
            failure(open(volumes, same_identity(&me)).expect_err("incomplete")),
            want,
            "{threads} threads, K = {per_volume}"
        );
    }
}

fn listing(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list the directory")
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    names.sort();
    names
}

#[test]
fn file_sink_and_source_round_trip_one_volume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("parcel.kuv");
    let me = identity(1);
    let plaintext = data(2 * plain(4096) + 3, 6);
    let mut writer = sealer(&me, 4096, None)
        .seal(FileSink::new(&path))
        .expect("seal");
    writer.write_all(&plaintext).expect("write");
    let sink = writer.finish().expect("finish");
    assert_eq!(sink.paths(), std::slice::from_ref(&path));
    drop(sink);
    assert_eq!(listing(dir.path()), std::slice::from_ref(&path));

    let source = FileSource::open(&path).expect("open file");
    assert_eq!(source.path(), path);
    assert_eq!(
        inspect(&source).expect("inspect").len,
        2048 + 2 * 4096 + PREFIX + 3 + 16
    );
    assert_eq!(open(vec![source], me).expect("open"), plaintext);
}

#[test]
fn file_sink_names_split_volumes_after_the_stem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let me = identity(1);
    let plaintext = data(5 * plain(4096), 7);
    let mut writer = sealer(&me, 4096, Some(H1 + 2 * 4096))
        .seal(FileSink::new(dir.path().join("parcel.kuv")))
        .expect("seal");
    common::write_split(&mut writer, &plaintext, &[333, 4096 * 3]).expect("write");
    let sink = writer.finish().expect("finish");
    let want: Vec<PathBuf> = ["parcel.001.kuv", "parcel.002.kuv", "parcel.003.kuv"]
        .iter()
        .map(|name| dir.path().join(name))
        .collect();
    assert_eq!(sink.paths(), want.as_slice());
    drop(sink);
    assert_eq!(listing(dir.path()), want);

    // Any order, as files.
    let sources: Vec<FileSource> = [2, 0, 1]
        .iter()
        .map(|&i| FileSource::open(&want[i]).expect("open file"))
        .collect();
    assert_eq!(open(sources, same_identity(&me)).expect("open"), plaintext);
    for (index, path) in want.iter().enumerate() {
        let source = FileSource::open(path).expect("open file");
        let report = Opener::new()
            .identity(same_identity(&me))
            .verify_volume(&source)
            .expect("verify");
        assert_eq!(report.volume as usize, index + 1);
        assert_eq!(report.last_in_set, index == 2);
    }
}

#[test]
fn a_dropped_unfinished_file_writer_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("parcel.kuv");
    let me = identity(1);
    for volume_size in [Some(H1 + 256 * 4096), None] {
        let mut writer = sealer(&me, 4096, volume_size)
            .threads(2)
            .seal(FileSink::new(&path))
            .expect("seal");
        writer
            .write_all(&data(beyond_the_memory_bound(2), 1))
            .expect("write");
        // Volumes are being written, but under hidden temporary names: no
        // file carries a final name yet.
        let names = listing(dir.path());
        assert!(!names.is_empty(), "the memory bound forces writes");
        assert!(names.iter().all(|name| {
            let name = name.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with('.') && name.ends_with(".kuvert-partial")
        }));
        drop(writer);
        assert_eq!(listing(dir.path()), Vec::<PathBuf>::new());
    }
    // Also when nothing was written at all.
    {
        let _writer = sealer(&me, 4096, None)
            .seal(FileSink::new(&path))
            .expect("seal");
    }
    assert_eq!(listing(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn an_empty_payload_is_one_tag_sized_chunk() {
    let me = identity(1);
    for volume_size in [None, Some(H1 + 4096)] {
        let volumes = seal(b"", 4096, volume_size, &me);
        assert_eq!(volumes.len(), 1);
        // The payload is the 4-byte stream prefix alone.
        assert_eq!(volumes[0].len() as u64, H1 + PREFIX + 16);
        let reader = must_open(&Opener::new().identity(same_identity(&me)), volumes);
        assert!(reader.is_empty());
        assert_eq!(reader.len(), 0);
    }
}

#[test]
fn sets_are_fresh_every_time() {
    // Same key, same data: different set id, different bytes everywhere
    // after the magic and lengths.
    let me = identity(1);
    let plaintext = data(1000, 1);
    let a = seal(&plaintext, 4096, None, &me);
    let b = seal(&plaintext, 4096, None, &me);
    assert_ne!(
        inspect(&a[0]).expect("a").set_id,
        inspect(&b[0]).expect("b").set_id
    );
    assert_ne!(a[0][H1 as usize..], b[0][H1 as usize..]);
}

#[test]
fn io_errors_carry_the_typed_error() {
    // The reader's io::Error wraps the typed error, and from_io recovers it;
    // a foreign io::Error stays an Io error.
    let err: io::Error = kuvert::Error::Truncated {
        at: kuvert::Location::volume(2).byte(9),
    }
    .into();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(
        failure(kuvert::Error::from_io(err)),
        Failure::Truncated {
            volume: 2,
            length: 9
        }
    );
    let err: io::Error = kuvert::Error::Unauthenticated {
        chunk: 1,
        at: kuvert::Location::volume(1).byte(2).chunk(1),
    }
    .into();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let plain_io = io::Error::new(io::ErrorKind::PermissionDenied, "nope");
    assert_eq!(
        failure(kuvert::Error::from_io(plain_io)),
        Failure::Io(io::ErrorKind::PermissionDenied)
    );
    let bare = io::Error::from(io::ErrorKind::BrokenPipe);
    assert_eq!(
        failure(kuvert::Error::from_io(bare)),
        Failure::Io(io::ErrorKind::BrokenPipe)
    );
}

#[test]
fn at_most_255_stanzas_fit_a_header() {
    let ids: Vec<X25519Identity> = (0..=255u16)
        .map(|i| {
            let mut bytes = [0x42; 32];
            bytes[..2].copy_from_slice(&i.to_be_bytes());
            X25519Identity::from_bytes(bytes)
        })
        .collect();
    let recipients = || ids.iter().map(|id| id.to_public());
    // 256 recipients, or 255 and a passphrase: refused before any wrapping
    // (and before any Argon2 work).
    assert_eq!(
        expect_err(
            Sealer::new()
                .recipients(recipients())
                .seal(MemorySink::new())
        ),
        Failure::InvalidOption
    );
    assert_eq!(
        expect_err(
            Sealer::new()
                .recipients(recipients().take(255))
                .passphrase("p".into())
                .seal(MemorySink::new())
        ),
        Failure::InvalidOption
    );
    // 255 fit: L = 98 + 89·255 = 22793, H = 24576.
    let volumes = seal_with(
        &Sealer::new()
            .recipients(recipients().take(255))
            .chunk_size(4096),
        b"many",
        &[1],
    );
    let info = inspect(&volumes[0]).expect("inspect");
    assert_eq!(info.stanza_types.len(), 255);
    assert_eq!(info.header_len, 24576);
    assert_eq!(
        open(volumes, same_identity(&ids[254])).expect("open"),
        b"many"
    );
}

#[test]
fn the_largest_volume_size_gives_one_volume_and_opens() {
    for chunk in [4096usize, 1 << 24] {
        let me = identity(1);
        let plaintext = data(3 * plain(4096) + 1, 2);
        let volumes = seal(&plaintext, chunk, Some(u64::MAX), &me);
        assert_eq!(volumes.len(), 1);
        let info = inspect(&volumes[0]).expect("inspect");
        assert_eq!(info.chunks_per_volume, (u64::MAX - H1) / chunk as u64);
        assert!(info.is_split());
        assert!(!info.is_full());
        let report = Opener::new()
            .identity(same_identity(&me))
            .verify_volume(&volumes[0])
            .expect("verify");
        assert!(report.last_in_set);
        assert_eq!(open(volumes, me).expect("open"), plaintext);
    }
}

#[test]
fn sixteen_mebibyte_chunks_round_trip_at_their_boundary() {
    let me = identity(1);
    let chunk = 1usize << 24;
    let plaintext = data(plain(chunk) - PREFIX as usize + 1, 3);
    let volumes = seal(&plaintext, chunk, None, &me);
    assert_eq!(volumes[0].len(), 2048 + chunk + 1 + 16);
    assert_eq!(open(volumes, me).expect("open"), plaintext);
}

#[test]
fn a_file_sink_in_a_missing_directory_fails_with_the_io_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no such directory").join("parcel.kuv");
    let me = identity(1);
    let mut writer = sealer(&me, 4096, None)
        .seal(FileSink::new(&path))
        .expect("nothing is created before the first chunk");
    writer
        .write_all(b"short")
        .expect("buffered in the pending chunk");
    assert_eq!(
        expect_err(writer.finish()),
        Failure::Io(io::ErrorKind::NotFound)
    );
    assert_eq!(listing(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn file_sink_appends_the_numbering_to_names_without_the_kuv_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    let me = identity(1);
    let mut writer = sealer(&me, 4096, Some(H1 + 4096))
        .seal(FileSink::new(dir.path().join("backup.tar")))
        .expect("seal");
    writer.write_all(&data(plain(4096) + 1, 1)).expect("write");
    let sink = writer.finish().expect("finish");
    let want = [
        dir.path().join("backup.tar.001.kuv"),
        dir.path().join("backup.tar.002.kuv"),
    ];
    assert_eq!(sink.paths(), want);
    drop(sink);
    assert_eq!(listing(dir.path()), want);
}

#[test]
fn volume_files_changed_after_opening_fail_when_read() {
    // Every chunk is authenticated when read, including the final chunk
    // that was already authenticated at open: a file swapped or cut under
    // an open reader never yields unauthenticated bytes.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("parcel.kuv");
    let me = identity(1);
    let plaintext = data(3 * plain(4096) + 50, 4);
    let mut writer = sealer(&me, 4096, None)
        .seal(FileSink::new(&path))
        .expect("seal");
    writer.write_all(&plaintext).expect("write");
    drop(writer.finish().expect("finish"));

    let reader = Opener::new()
        .identity(same_identity(&me))
        .open(vec![FileSource::open(&path).expect("open file")])
        .expect("intact");
    // Change one byte of the final chunk in place.
    let mut bytes = fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).expect("write");
    let mut short = ShortReads {
        inner: reader,
        max: 1000,
    };
    let released = read_released(&mut short, &[4096]);
    assert_eq!(
        released.error.map(failure),
        Some(Failure::Unauthenticated {
            chunk: 3,
            volume: 1,
            offset: H1 + 3 * 4096
        })
    );
    assert!(released.bytes == plaintext[..3 * plain(4096) - PREFIX as usize]);

    // Cut the file under an open reader: the read fails with the I/O error.
    bytes[last] ^= 1;
    fs::write(&path, &bytes).expect("write");
    let mut reader = Opener::new()
        .identity(same_identity(&me))
        .open(vec![FileSource::open(&path).expect("open file")])
        .expect("intact again");
    fs::write(&path, &bytes[..H1 as usize + 4096 + 10]).expect("truncate");
    let released = read_released(&mut reader, &[4096]);
    assert_eq!(
        released.error.map(failure),
        Some(Failure::Io(io::ErrorKind::UnexpectedEof))
    );
    assert!(released.bytes == plaintext[..plain(4096) - PREFIX as usize]);
}

#[test]
fn the_spec_worked_example_opens_byte_for_byte() {
    // SPEC.md §3.5, assembled from its table and values.
    let example: X25519Identity =
        "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZ9K4CN"
            .parse()
            .expect("the example identity");
    let recipient = example.to_public();
    assert_eq!(
        recipient.to_bytes().to_vec(),
        hex("a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a209")
    );
    assert_eq!(
        recipient.to_string(),
        "age15nsf9y4k28p83wth93tf7hafhvfajp45d2mge80ems45gz0c5gys3me64l"
    );
    // kuvert v1's encodings of the same keys are still read.
    assert_eq!(
        "kuvert15nsf9y4k28p83wth93tf7hafhvfajp45d2mge80ems45gz0c5gys6hqdh4"
            .parse::<kuvert::X25519Recipient>()
            .expect("kuvert v1 recipient"),
        recipient
    );
    assert_eq!(
        "KUVERT-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSTWVX4D"
            .parse::<X25519Identity>()
            .expect("kuvert v1 identity")
            .to_public(),
        recipient
    );
    assert_eq!(
        X25519Identity::from_bytes([1; 32]).to_public(),
        recipient,
        "the identity is the raw scalar 01…01"
    );

    let mut volume = hex("894b55560d0a1a0a 0002 000000ba 0000");
    volume.extend(hex(
        "27f450da63c4f0fd762a721e7160da7f32334e1f514cfede45f8d2b4ec72f0cc",
    ));
    volume.extend(hex("0c 0000000000000000 01 02 0006"));
    volume.extend(b"X25519");
    volume.extend(hex("002b"));
    volume.extend(b"vixAbNfKge5xgtMNJs+D6YHdN3YpvfE1FNYzTDWfmlQ");
    volume.extend(hex("0020"));
    volume.extend(hex(
        "bd9e793f9edbacc4d9c8246fe20967d2b674ab7a853c79d9375ab441135be7ea",
    ));
    volume.extend(hex("00000001 0000 0000"));
    volume.extend(hex(
        "19c8694a251832670481074a50e340df2ecc114bae6c39da9d03e9258d767161",
    ));
    assert_eq!(volume.len(), 186);
    volume.resize(2048, 0);
    // Chunk 0: the stream prefix 00000000 and "hello", sealed (§6.7).
    volume.extend(hex("0c0344d5d7b686c2a79d6c14ce8a105a10b98eb4cbe923bdf1"));
    assert_eq!(volume.len(), 2073);

    let info = inspect(&volume).expect("inspect");
    assert_eq!(info.header_len, 2048);
    assert_eq!(info.chunk_size, 4096);
    assert_eq!(info.stanza_types, types(&["X25519"]));
    let report = Opener::new()
        .identity(X25519Identity::from_bytes([1; 32]))
        .verify_volume(&volume)
        .expect("verify");
    assert_eq!((report.chunks, report.plaintext_len), (1, 4 + 5));
    assert!(report.last_in_set);
    assert_eq!(open(vec![volume.clone()], example).expect("open"), b"hello");
    // Any other identity is a stranger to it.
    assert_eq!(
        open_err(&Opener::new().identity(identity(1)), vec![volume]),
        Failure::NoMatchingKey {
            stanza_types: types(&["X25519"])
        }
    );
}

#[test]
fn every_thread_count_writes_the_same_bytes_across_batch_boundaries() {
    // Sealing works in batches of about 1 MiB (256 chunks of 4 KiB): lengths
    // and volume sizes around them, sealed from one fixed seed (a doc-hidden
    // option for test vectors) on 1 to 3 threads, must give identical bytes
    // that open to the payload.
    let me = identity(1);
    let p = plain(4096);
    for len in [256 * p - 1, 256 * p, 256 * p + 1, 512 * p + 1] {
        let plaintext = data(len, len as u64);
        for per_volume in [0u64, 3, 100, 256, 257] {
            let sealed: Vec<Vec<Vec<u8>>> = (1..=3)
                .map(|threads| {
                    let sealer =
                        sealer(&me, 4096, (per_volume > 0).then(|| H1 + per_volume * 4096))
                            .threads(threads)
                            .insecure_deterministic_seed([7; 32]);
                    seal_with(&sealer, &plaintext, &[100_000, 3, 4096 * 300])
                })
                .collect();
            assert!(
                sealed[1] == sealed[0],
                "len {len}, K {per_volume}: 2 threads differ"
            );
            assert!(
                sealed[2] == sealed[0],
                "len {len}, K {per_volume}: 3 threads differ"
            );
            let shapes = expected_shapes(len, 4096, per_volume, H1);
            let lens: Vec<u64> = sealed[0].iter().map(|v| v.len() as u64).collect();
            assert_eq!(lens, shapes.iter().map(|s| s.len).collect::<Vec<_>>());
            let mut reader = must_open(
                &Opener::new().identity(same_identity(&me)).threads(2),
                sealed[0].clone(),
            );
            let mut out = Vec::new();
            reader.copy_to(&mut out, u64::MAX).expect("copy");
            assert!(out == plaintext, "len {len}, K {per_volume}");
        }
    }
}

#[test]
fn zero_sealing_threads_is_an_invalid_option() {
    assert_eq!(
        expect_err(
            sealer(&identity(1), 4096, None)
                .threads(0)
                .seal(MemorySink::new())
        ),
        Failure::InvalidOption
    );
}
