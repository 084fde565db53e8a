//! `OpenReader` as `Read + Seek`, compared step by step with a plain
//! in-memory cursor over the same plaintext, across chunk and volume
//! boundaries.

mod common;

use std::io::{self, Cursor, Read, Seek, SeekFrom};

use kuvert::{OpenReader, Opener};
use proptest::prelude::*;

use common::{Failure, H1, data, expect_io_err, failure, identity, must_open, seal};

const C: usize = 4096;
const P: usize = C - 16;
/// Content offset o lies at payload offset o + PREFIX (the payload prefix,
/// SPEC.md §6.7), so chunk g holds content [g·P − PREFIX, (g+1)·P − PREFIX).
const PREFIX: usize = 4;

fn open_set(len: usize, per_volume: u64, seed: u64) -> (OpenReader<Vec<u8>>, Vec<u8>) {
    open_set_with_threads(len, per_volume, seed, 1)
}

fn open_set_with_threads(
    len: usize,
    per_volume: u64,
    seed: u64,
    threads: usize,
) -> (OpenReader<Vec<u8>>, Vec<u8>) {
    let plaintext = data(len, seed);
    let volume_size = (per_volume > 0).then(|| H1 + per_volume * C as u64);
    let volumes = seal(&plaintext, C, volume_size, &identity(1));
    let reader = must_open(
        &Opener::new().identity(identity(1)).threads(threads),
        volumes,
    );
    (reader, plaintext)
}

#[derive(Debug, Clone)]
enum Op {
    Seek(SeekFrom),
    /// One `read` call into a buffer of this size.
    Read(usize),
    /// `read` until this many bytes or the end.
    ReadFull(usize),
    /// `copy_to` with this limit.
    CopyTo(u64),
}

fn op(len: usize) -> impl Strategy<Value = Op> {
    let len = len as i64;
    let span = 2 * C as i64;
    prop_oneof![
        3 => (0..=len as u64 + 2 * P as u64).prop_map(|o| Op::Seek(SeekFrom::Start(o))),
        2 => (-(len + 10)..=10i64).prop_map(|d| Op::Seek(SeekFrom::End(d))),
        3 => (-span..=span).prop_map(|d| Op::Seek(SeekFrom::Current(d))),
        // Chunk boundaries, where off-by-one errors live.
        2 => (0..=6u64, -2i64..=2).prop_map(|(k, d)| {
            Op::Seek(SeekFrom::Start((k * P as u64).saturating_add_signed(d)))
        }),
        1 => prop_oneof![
            Just(Op::Seek(SeekFrom::Start(u64::MAX))),
            Just(Op::Seek(SeekFrom::Current(i64::MIN))),
            Just(Op::Seek(SeekFrom::Current(i64::MAX))),
            Just(Op::Seek(SeekFrom::End(i64::MIN))),
            Just(Op::Seek(SeekFrom::End(i64::MAX))),
        ],
        4 => (0usize..=2 * C).prop_map(Op::Read),
        2 => (0usize..=3 * P + 5).prop_map(Op::ReadFull),
        1 => prop_oneof![Just(u64::MAX), 0..=3 * P as u64 + 5].prop_map(Op::CopyTo),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, u64, Vec<Op>)> {
    (0usize..=6 * P, prop_oneof![Just(0u64), 1u64..=3]).prop_flat_map(|(len, per_volume)| {
        (
            Just(len),
            Just(per_volume),
            prop::collection::vec(op(len), 1..40),
        )
    })
}

/// Applies `ops` to the reader and to a `Cursor` over the plaintext and
/// compares every result and position.
fn compare(reader: &mut OpenReader<Vec<u8>>, plaintext: &[u8], ops: &[Op]) {
    let mut model = Cursor::new(plaintext);
    let mut buf = vec![0u8; 3 * P + 5];
    for (step, op) in ops.iter().enumerate() {
        let pos = model.position();
        match *op {
            Op::Seek(target) => {
                let got = reader.seek(target);
                let want = model.seek(target);
                match (&got, &want) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "step {step}: {op:?}"),
                    (Err(err), Err(_)) => {
                        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "step {step}");
                    }
                    _ => panic!("step {step}: {op:?}: reader {got:?}, cursor {want:?}"),
                }
            }
            Op::Read(n) => {
                let got = reader.read(&mut buf[..n]).expect("intact set reads");
                let available = (plaintext.len() as u64).saturating_sub(pos) as usize;
                if n == 0 || available == 0 {
                    assert_eq!(got, 0, "step {step}: {op:?} at {pos}");
                } else {
                    assert!(
                        (1..=n.min(available)).contains(&got),
                        "step {step}: read {got} of {n} at {pos}"
                    );
                }
                let start = pos.min(plaintext.len() as u64) as usize;
                assert!(
                    buf[..got] == plaintext[start..start + got],
                    "step {step}: bytes at {pos}"
                );
                model.seek(SeekFrom::Current(got as i64)).expect("forward");
            }
            Op::CopyTo(limit) => {
                let mut got = Vec::new();
                let copied = reader.copy_to(&mut got, limit).expect("intact set copies");
                let mut want = Vec::new();
                io::copy(&mut model.by_ref().take(limit), &mut want).expect("memory");
                assert_eq!(copied, got.len() as u64, "step {step}: {op:?} at {pos}");
                assert!(got == want, "step {step}: {op:?} at {pos}");
            }
            Op::ReadFull(n) => {
                let mut got = Vec::new();
                reader
                    .by_ref()
                    .take(n as u64)
                    .read_to_end(&mut got)
                    .expect("intact set reads");
                let mut want = Vec::new();
                model
                    .by_ref()
                    .take(n as u64)
                    .read_to_end(&mut want)
                    .expect("memory");
                assert!(got == want, "step {step}: {op:?} at {pos}");
            }
        }
        assert_eq!(
            reader.stream_position().expect("position"),
            model.position(),
            "step {step}: position after {op:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn seeks_and_reads_match_a_plain_buffer(
        (len, per_volume, ops) in scenario(),
        seed in any::<u64>(),
        threads in 1usize..=3,
    ) {
        let (mut reader, plaintext) = open_set_with_threads(len, per_volume, seed, threads);
        prop_assert_eq!(reader.len(), len as u64);
        compare(&mut reader, &plaintext, &ops);
    }
}

#[test]
fn every_volume_boundary_reads_across() {
    // K = 1: every chunk boundary is a volume boundary.
    let (mut reader, plaintext) = open_set(5 * P + 77, 1, 1);
    assert_eq!(reader.volume_count(), 6);
    for k in 1..=5u64 {
        for back in 1..=3u64 {
            let start = k * P as u64 - back;
            reader.seek(SeekFrom::Start(start)).expect("seek");
            let mut buf = [0u8; 6];
            reader.read_exact(&mut buf).expect("read across");
            let start = start as usize;
            assert_eq!(buf, plaintext[start..start + 6], "at {start}");
        }
    }
    // Backwards over every boundary, one byte at a time from the end.
    reader.seek(SeekFrom::End(0)).expect("seek");
    let mut backwards = Vec::new();
    while reader.stream_position().expect("position") > 0 {
        reader.seek(SeekFrom::Current(-1)).expect("seek back");
        let mut byte = [0u8; 1];
        reader.read_exact(&mut byte).expect("read");
        backwards.push(byte[0]);
        reader.seek(SeekFrom::Current(-1)).expect("seek back");
    }
    backwards.reverse();
    assert!(backwards == plaintext);
}

#[test]
fn seeking_past_the_end_reads_nothing() {
    for (len, per_volume) in [(0, 0), (1, 0), (P, 1), (3 * P + 1, 2)] {
        let (mut reader, _) = open_set(len, per_volume, 2);
        assert_eq!(reader.len(), len as u64);
        assert_eq!(reader.is_empty(), len == 0);
        let mut buf = [7u8; 64];
        for target in [
            SeekFrom::End(0),
            SeekFrom::End(1),
            SeekFrom::Start(len as u64 + 1),
            SeekFrom::Start(len as u64 + 10 * C as u64),
            SeekFrom::Start(u64::MAX),
        ] {
            let pos = reader
                .seek(target)
                .expect("seeking past the end is allowed");
            assert!(pos >= len as u64);
            assert_eq!(reader.read(&mut buf).expect("read"), 0, "{target:?}");
            assert_eq!(buf, [7u8; 64], "nothing written into the buffer");
            assert_eq!(reader.stream_position().expect("position"), pos);
        }
        // From u64::MAX nothing further forward exists.
        reader.seek(SeekFrom::Start(u64::MAX)).expect("seek");
        assert!(reader.seek(SeekFrom::Current(1)).is_err());
        assert_eq!(reader.stream_position().expect("position"), u64::MAX);
    }
}

#[test]
fn seeking_before_the_start_fails_and_keeps_the_position() {
    let (mut reader, plaintext) = open_set(2 * P + 10, 1, 3);
    let len = plaintext.len() as i64;
    for (at, target) in [
        (0, SeekFrom::Current(-1)),
        (5, SeekFrom::Current(-6)),
        (5, SeekFrom::End(-(len + 1))),
        (P as u64, SeekFrom::End(i64::MIN)),
        (P as u64, SeekFrom::Current(i64::MIN)),
    ] {
        reader.seek(SeekFrom::Start(at)).expect("seek");
        let err = reader.seek(target).expect_err("before the start");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{target:?}");
        assert_eq!(reader.stream_position().expect("position"), at);
        let mut byte = [0u8; 1];
        reader.read_exact(&mut byte).expect("still reads");
        assert_eq!(byte[0], plaintext[at as usize]);
    }
    // Exactly to the start is fine.
    assert_eq!(reader.seek(SeekFrom::End(-len)).expect("to 0"), 0);
    assert_eq!(reader.stream_position().expect("stay"), 0);
}

#[test]
fn locate_names_the_volume_and_chunk_offset_of_a_position() {
    let (reader, _) = open_set(5 * P + 1, 2, 4);
    let c = C as u64;
    let p = P as u64;
    let prefix = PREFIX as u64;
    assert_eq!(reader.locate(0), (1, H1));
    assert_eq!(reader.locate(p - prefix - 1), (1, H1));
    assert_eq!(reader.locate(p - prefix), (1, H1 + c));
    assert_eq!(reader.locate(2 * p - prefix - 1), (1, H1 + c));
    assert_eq!(reader.locate(2 * p - prefix), (2, H1));
    assert_eq!(reader.locate(4 * p + 5), (3, H1));
    assert_eq!(reader.locate(5 * p - prefix), (3, H1 + c));
}

#[test]
fn a_damaged_chunk_fails_only_where_it_is_read() {
    let plaintext = data(6 * P, 5);
    let mut volumes = seal(&plaintext, C, Some(H1 + 2 * C as u64), &identity(1));
    // Damage chunk 2: the first chunk of volume 2.
    volumes[1][H1 as usize + 10] ^= 1;
    let mut reader = must_open(&Opener::new().identity(identity(1)), volumes);
    let unauthenticated = Failure::Unauthenticated {
        chunk: 2,
        volume: 2,
        offset: H1,
    };

    // Seeking over it costs nothing and reads after it work.
    let at = 3 * P - PREFIX + 1;
    reader.seek(SeekFrom::Start(at as u64)).expect("seek");
    let mut buf = vec![0u8; P];
    reader
        .read_exact(&mut buf)
        .expect("chunk 3 and 4 are intact");
    assert!(buf == plaintext[at..at + P]);

    // Into it, from anywhere, fails, and the position does not move.
    let (first, last) = ((2 * P - PREFIX) as u64, (3 * P - PREFIX) as u64 - 1);
    for at in [first, last, first + 100] {
        reader.seek(SeekFrom::Start(at)).expect("seek");
        let mut byte = [0u8; 1];
        assert_eq!(expect_io_err(reader.read(&mut byte)), unauthenticated);
        assert_eq!(byte, [0]);
        assert_eq!(reader.stream_position().expect("position"), at);
    }
    // A read that starts before it stops at its start, then fails.
    reader.seek(SeekFrom::Start(first - 3)).expect("seek");
    let mut buf = [0u8; 10];
    assert_eq!(reader.read(&mut buf).expect("the tail of chunk 1"), 3);
    assert_eq!(buf[..3], plaintext[first as usize - 3..first as usize]);
    assert_eq!(expect_io_err(reader.read(&mut buf)), unauthenticated);
    // The chunk before is still readable afterwards.
    reader.seek(SeekFrom::Start(0)).expect("seek");
    let mut head = vec![0u8; first as usize];
    reader.read_exact(&mut head).expect("chunks 0 and 1");
    assert!(head == plaintext[..first as usize]);
}

#[test]
fn copy_to_stops_exactly_at_a_damaged_chunk_on_any_thread_count() {
    // 700 chunks: about three opening batches of 256 chunks. Damage at the
    // start, inside and at the edges of batches; copy from several starts.
    let plaintext = data(700 * P + 99, 6);
    let volumes = seal(&plaintext, C, Some(H1 + 300 * C as u64), &identity(1));
    assert_eq!(volumes.len(), 3);
    for damaged in [0u64, 1, 255, 256, 257, 511, 512, 699] {
        let mut broken = volumes.clone();
        let (volume, local) = ((damaged / 300) as usize, damaged % 300);
        broken[volume][(H1 + local * C as u64) as usize + 5] ^= 0x10;
        let want = Failure::Unauthenticated {
            chunk: damaged,
            volume: volume as u32 + 1,
            offset: H1 + local * C as u64,
        };
        for threads in [1, 2, 3] {
            let opener = Opener::new().identity(identity(1)).threads(threads);
            if damaged == 0 {
                // Chunk 0 holds the payload prefix: `open` authenticates it.
                let got = opener.open(broken.clone()).map(drop).map_err(failure);
                assert_eq!(got, Err(want.clone()), "{threads} threads");
                continue;
            }
            let mut reader = must_open(&opener, broken.clone());
            for start in [0u64, 1, P as u64 * 255 + 7, P as u64 * 600] {
                reader.seek(SeekFrom::Start(start)).expect("seek");
                let mut out = Vec::new();
                let result = reader.copy_to(&mut out, u64::MAX);
                // Content offset where the damaged chunk starts.
                let stop = damaged * P as u64 - PREFIX as u64;
                if stop + P as u64 > start {
                    // The damaged chunk lies in the copied range.
                    let got = result.map_err(failure).expect_err("damage stops the copy");
                    assert_eq!(got, want, "{threads} threads from {start}");
                    let expected = &plaintext[start as usize..stop.max(start) as usize];
                    assert!(
                        out == expected,
                        "{threads} threads from {start}: {} bytes released, want {}",
                        out.len(),
                        expected.len()
                    );
                    assert_eq!(
                        reader.stream_position().expect("position"),
                        start,
                        "a failed copy leaves the position where it started"
                    );
                } else {
                    let copied = result.expect("the damage lies before the start");
                    assert_eq!(copied, plaintext.len() as u64 - start);
                    assert!(out == plaintext[start as usize..]);
                }
            }
            // A limit that ends before the damaged chunk never touches it.
            {
                reader.seek(SeekFrom::Start(0)).expect("seek");
                let mut out = Vec::new();
                let limit = damaged * P as u64 - PREFIX as u64;
                assert_eq!(reader.copy_to(&mut out, limit).expect("before"), limit);
                assert!(out == plaintext[..limit as usize]);
                assert_eq!(reader.stream_position().expect("position"), limit);
            }
        }
    }
}

/// Accepts `room` bytes, then fails.
struct FullDisc {
    written: Vec<u8>,
    room: usize,
}

impl io::Write for FullDisc {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written.len() >= self.room {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disc full"));
        }
        let n = buf.len().min(self.room - self.written.len());
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn copy_to_reports_a_failing_writer_and_keeps_the_position() {
    let (mut reader, plaintext) = open_set_with_threads(600 * P, 0, 7, 2);
    for room in [0usize, 1, P, 300 * P + 1] {
        reader.seek(SeekFrom::Start(10)).expect("seek");
        let mut out = FullDisc {
            written: Vec::new(),
            room,
        };
        let got = reader.copy_to(&mut out, u64::MAX).map_err(failure);
        assert_eq!(
            got,
            Err(Failure::Io(io::ErrorKind::StorageFull)),
            "room {room}"
        );
        assert!(out.written == plaintext[10..10 + room]);
        assert_eq!(reader.stream_position().expect("position"), 10);
    }
    // Past the end, or with no room asked for, nothing is written.
    let mut out = FullDisc {
        written: Vec::new(),
        room: 0,
    };
    reader.seek(SeekFrom::End(5)).expect("seek");
    assert_eq!(
        reader.copy_to(&mut out, u64::MAX).expect("nothing to do"),
        0
    );
    reader.seek(SeekFrom::Start(0)).expect("seek");
    assert_eq!(reader.copy_to(&mut out, 0).expect("nothing to do"), 0);
}
