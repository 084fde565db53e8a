//! The parallel pipeline: the same bytes for every thread count, in order,
//! errors raised inside workers, and early drops.

use std::io::{self, Read, Seek, SeekFrom, Write};

use kuvert::{Error, MemorySink, Opener, PAYLOAD_PREFIX_LEN, Sealer, VolumeSink, X25519Identity};

fn identity() -> X25519Identity {
    X25519Identity::from_bytes([3; 32])
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
}

fn seal(threads: usize, chunk: usize, volume: Option<u64>, payload: &[u8]) -> Vec<Vec<u8>> {
    let mut sealer = Sealer::new()
        .recipient(identity().to_public())
        .chunk_size(chunk)
        .threads(threads)
        .insecure_deterministic_seed([9; 32])
        // No manifest and no padding: chunk offsets are content offsets + 4.
        .created(None)
        .pad(kuvert::Padding::None);
    if let Some(size) = volume {
        sealer = sealer.volume_size(size);
    }
    let mut writer = sealer.seal(MemorySink::new()).expect("seal");
    // Odd-sized writes, so batches fill across write calls.
    for piece in payload.chunks(100_003) {
        writer.write_all(piece).expect("write");
    }
    writer.finish().expect("finish").into_volumes()
}

#[test]
fn every_thread_count_writes_the_same_bytes() {
    let payload = data(5_000_000);
    let volume = Some(2048 + 300 * 4096);
    let reference = seal(1, 4096, volume, &payload);
    assert!(
        reference.len() > 3,
        "several volumes, so headers land inside batches"
    );
    for threads in 2..=8 {
        assert!(
            seal(threads, 4096, volume, &payload) == reference,
            "{threads} threads"
        );
    }
    let unsplit = seal(1, 65536, None, &payload);
    for threads in [2, 3, 8] {
        assert!(
            seal(threads, 65536, None, &payload) == unsplit,
            "{threads} threads, unsplit"
        );
    }
}

/// Seals `payload` with one `write_all` into `sink`.
fn seal_at_once<S: VolumeSink>(
    threads: usize,
    volume_chunks: u64,
    payload: &[u8],
    sink: S,
) -> Result<S, Error> {
    let mut writer = Sealer::new()
        .recipient(identity().to_public())
        .chunk_size(4096)
        .threads(threads)
        .volume_size(2048 + volume_chunks * 4096)
        .insecure_deterministic_seed([9; 32])
        .created(None)
        .pad(kuvert::Padding::None)
        .seal(sink)?;
    writer.write_all(payload)?;
    writer.finish()
}

/// A sink that keeps volumes in memory but lends no room: every byte goes
/// through the batch buffers.
#[derive(Default)]
struct NoLending(MemorySink);

impl VolumeSink for NoLending {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        self.0.start_volume(number)
    }
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.append(bytes)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }
}

/// A [`MemorySink`] that counts the bytes it lent.
#[derive(Default)]
struct Counting(MemorySink, usize);

impl VolumeSink for Counting {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        self.0.start_volume(number)
    }
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.append(bytes)
    }
    fn append_in_place(&mut self, len: usize) -> io::Result<Option<&mut [u8]>> {
        self.1 += len;
        self.0.append_in_place(len)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }
}

#[test]
fn one_large_write_into_lent_room_writes_the_same_bytes() {
    // 4 KiB chunks hold 4,080 bytes; large writes go straight into the
    // sink only above 4 batches (about 4.2 MB), so these all do. Volumes of
    // 256 chunks put a volume start right where the lent run begins (after
    // the first batch); 300 put one inside it.
    for volume_chunks in [256, 300] {
        for len in [4080 * 1500 - 1, 4080 * 1500, 4080 * 1500 + 1] {
            let payload = data(len);
            let reference = seal(1, 4096, Some(2048 + volume_chunks * 4096), &payload);
            for threads in [1, 2, 3] {
                let Counting(lent, lent_len) =
                    seal_at_once(threads, volume_chunks, &payload, Counting::default())
                        .expect("seal");
                // All but the first batch and the last chunk went straight
                // in (the payload prefix comes first).
                let chunks = (len + PAYLOAD_PREFIX_LEN).div_ceil(4080);
                assert_eq!(
                    lent_len,
                    (chunks - 256 - 1) * 4096,
                    "{threads} threads, {len} bytes"
                );
                let lent = lent.into_volumes();
                assert!(
                    lent == reference,
                    "{threads} threads, {len} bytes, lent room"
                );
                let copied = seal_at_once(threads, volume_chunks, &payload, NoLending::default())
                    .expect("seal")
                    .0
                    .into_volumes();
                assert!(
                    copied == reference,
                    "{threads} threads, {len} bytes, no room lent"
                );
            }
        }
    }
}

#[test]
fn a_memory_sink_sized_from_the_plan_holds_the_same_volumes() {
    let volume_chunks = 300;
    let sealer = |threads| {
        Sealer::new()
            .recipient(identity().to_public())
            .chunk_size(4096)
            .threads(threads)
            .volume_size(2048 + volume_chunks * 4096)
            .insecure_deterministic_seed([9; 32])
            .created(None)
            .pad(kuvert::Padding::None)
    };
    for len in [0, 10, 4080 * 1500, 4080 * 1500 + 1] {
        let payload = data(len);
        let reference = seal(1, 4096, Some(2048 + volume_chunks * 4096), &payload);
        // The right plan, one for a shorter payload (volumes grow) and one
        // for a longer one (the rest is dropped).
        for planned in [len, len / 2, len * 2 + 5000] {
            let plan = sealer(2).plan(planned as u64).expect("plan");
            let mut writer = sealer(2).seal(MemorySink::for_plan(&plan)).expect("seal");
            writer.write_all(&payload).expect("write");
            let volumes = writer.finish().expect("finish").into_volumes();
            assert!(volumes == reference, "{len} bytes, planned for {planned}");
        }
    }
}

/// Lends one byte too few.
#[derive(Default)]
struct ShortLender(Vec<u8>);

impl VolumeSink for ShortLender {
    fn start_volume(&mut self, _number: u32) -> io::Result<()> {
        Ok(())
    }
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
    fn append_in_place(&mut self, len: usize) -> io::Result<Option<&mut [u8]>> {
        let start = self.0.len();
        self.0.resize(start + len.saturating_sub(1), 0);
        Ok(Some(&mut self.0[start..]))
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_sink_that_lends_the_wrong_length_fails_the_set() {
    let payload = data(4080 * 1500);
    let mut writer = Sealer::new()
        .recipient(identity().to_public())
        .chunk_size(4096)
        .threads(2)
        .seal(ShortLender::default())
        .expect("seal");
    let err = writer.write_all(&payload).expect_err("short room");
    assert!(err.to_string().contains("wrong length"), "{err}");
    assert!(
        writer.write_all(b"more").is_err(),
        "the writer stays failed"
    );
    assert!(matches!(writer.finish(), Err(Error::Io(_))));
}

#[test]
fn copy_to_matches_read_for_every_thread_count_and_start() {
    let payload = data(3_000_000);
    let volumes = seal(2, 4096, Some(2048 + 200 * 4096), &payload);
    for threads in 1..=4 {
        let mut reader = Opener::new()
            .identity(identity())
            .threads(threads)
            .open(volumes.clone())
            .expect("open");
        for start in [0u64, 1, 4079, 4080, 1_000_000, 2_999_999, 3_000_000] {
            reader.seek(SeekFrom::Start(start)).expect("seek");
            let mut out = Vec::new();
            let written = reader.copy_to(&mut out, u64::MAX).expect("copy");
            assert_eq!(written as usize, payload.len() - start as usize);
            assert!(
                out == payload[start as usize..],
                "{threads} threads from {start}"
            );
            assert_eq!(
                reader.stream_position().expect("position"),
                payload.len() as u64
            );
        }
        reader.seek(SeekFrom::Start(10)).expect("seek");
        let mut out = Vec::new();
        assert_eq!(reader.copy_to(&mut out, 5000).expect("limited"), 5000);
        assert_eq!(out, payload[10..5010]);
        let mut rest = vec![0u8; 10];
        reader.read_exact(&mut rest).expect("read after copy");
        assert_eq!(rest, payload[5010..5020]);
    }
}

#[test]
fn a_damaged_chunk_stops_the_copy_after_the_authenticated_prefix() {
    let payload = data(3_000_000);
    let mut volumes = seal(2, 4096, None, &payload);
    // Chunk 500 sits at H + 500·C; damage its ciphertext.
    volumes[0][2048 + 500 * 4096 + 17] ^= 0x40;
    for threads in 1..=4 {
        let mut reader = Opener::new()
            .identity(identity())
            .threads(threads)
            .open(volumes.clone())
            .expect("open");
        let mut out = Vec::new();
        let err = reader.copy_to(&mut out, u64::MAX).expect_err("damaged");
        assert!(
            matches!(&err, Error::Unauthenticated { chunk: 500, at } if *at == kuvert::Location::volume(1).byte(2048 + 500 * 4096).chunk(500)),
            "{err:?}"
        );
        // Everything before chunk 500, less the 4-byte payload prefix.
        let before = 500 * 4080 - 4;
        assert_eq!(out.len(), before, "{threads} threads");
        assert!(out == payload[..before]);
    }
}

/// A writer that fails after `budget` bytes.
struct FailingWriter {
    budget: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::Error::other("disk full"));
        }
        let n = buf.len().min(self.budget);
        self.budget -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_output_error_stops_the_workers() {
    let payload = data(4_000_000);
    let volumes = seal(2, 4096, None, &payload);
    let mut reader = Opener::new()
        .identity(identity())
        .threads(4)
        .open(volumes)
        .expect("open");
    let err = reader
        .copy_to(&mut FailingWriter { budget: 1_500_000 }, u64::MAX)
        .expect_err("output fails");
    assert!(
        matches!(err, Error::Io(ref inner) if inner.to_string() == "disk full"),
        "{err:?}"
    );
    // The reader is still usable afterwards.
    reader.seek(SeekFrom::Start(0)).expect("seek");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).expect("read");
    assert!(out == payload);
}

#[test]
fn dropping_a_threaded_writer_mid_stream_stops_cleanly() {
    for threads in [2, 8] {
        let mut sink = MemorySink::new();
        {
            let mut writer = Sealer::new()
                .recipient(identity().to_public())
                .threads(threads)
                .seal(&mut sink)
                .expect("seal");
            writer.write_all(&data(20 << 20)).expect("write");
        }
        let volumes = sink.into_volumes();
        let result = Opener::new().identity(identity()).open(volumes);
        assert!(
            matches!(result, Err(Error::Truncated { .. })),
            "{threads}: {result:?}"
        );
    }
}

#[test]
fn zero_threads_is_refused() {
    let result = Sealer::new()
        .recipient(identity().to_public())
        .threads(0)
        .seal(MemorySink::new());
    assert!(matches!(result, Err(Error::InvalidOption { .. })));
}

#[test]
fn the_volume_verifier_agrees_with_verify_volume_and_names_damage() {
    let payload = data(2_000_000);
    let mut volumes = seal(2, 4096, Some(2048 + 200 * 4096), &payload);
    let opener = Opener::new().identity(identity());
    let mut verifier = opener.volume_verifier();
    for volume in &volumes {
        let alone = opener.verify_volume(volume.as_slice()).expect("intact");
        assert_eq!(verifier.verify(volume.as_slice()).expect("intact"), alone);
    }
    // A damaged MAC on a volume whose set part is already known.
    let mac_end = u32::from_be_bytes(volumes[1][10..14].try_into().expect("L")) as usize;
    volumes[1][mac_end - 1] ^= 1;
    assert!(matches!(
        verifier.verify(volumes[1].as_slice()),
        Err(Error::HeaderDamaged { volume: 2, at }) if at == kuvert::Location::input(1)
    ));
    // A damaged chunk in the middle of a volume, found on several threads.
    volumes[0][2048 + 100 * 4096 + 5] ^= 1;
    for threads in [1, 3] {
        let opener = Opener::new().identity(identity()).threads(threads);
        assert!(matches!(
            opener.verify_volume(volumes[0].as_slice()),
            Err(Error::Unauthenticated { chunk: 100, at }) if at == kuvert::Location::volume(1).byte(2048 + 100 * 4096).chunk(100)
        ));
    }
}
