//! Writer faults and crashes: a sink that fails at its k-th call for every
//! k (with nothing written, or with half of the bytes written, as a full
//! disk does), and the file sink under the same faults and under a rename
//! that fails. The CLI killed with SIGKILL while sealing and while opening
//! is cli/tests/killed.rs.
//!
//! What must hold (SPEC.md §6.6 item 7, §12.4): the writer reports the
//! failure; nothing it leaves opens as a complete set; nothing carries a
//! final name half-written; leftovers of a killed process are hidden and
//! named as partial (`.NAME.NNN.PID.kuvert-partial`,
//! `.kuvert-staging-PID-RANDOM`).

mod common;

use std::io::{self, Write};

use kuvert::{Error, FileSink, MemorySink, Opener, Sealer, VolumeSink};

use common::{Failure, data, failure, identity, listing, read_released};

const C: usize = 4096;
const P: usize = C - 16;
const H: u64 = 2048;
const L: u64 = 187;

/// The message of every injected failure.
const INJECTED: &str = "injected fault";

fn injected() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, INJECTED)
}

fn is_injected(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::StorageFull && err.to_string() == INJECTED
}

/// One call a sealer made to its sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Start(u32),
    Write(usize),
    Finish,
}

/// How the failing call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing of the call happens.
    Clean,
    /// Half of it happens first: a volume is created but stays empty, or
    /// half of the bytes reach the volume (a disk filling up).
    Torn,
}

/// Keeps volumes in memory like [`MemorySink`] and fails at call `fail_at`
/// (counted from 1), recording every call.
#[derive(Debug)]
struct FaultySink {
    volumes: Vec<Vec<u8>>,
    calls: Vec<Call>,
    fail_at: usize,
    fault: Fault,
}

impl FaultySink {
    fn new(fail_at: usize, fault: Fault) -> Self {
        FaultySink {
            volumes: Vec::new(),
            calls: Vec::new(),
            fail_at,
            fault,
        }
    }

    /// Records `call`; whether it is the one to fail.
    fn call(&mut self, call: Call) -> bool {
        self.calls.push(call);
        self.calls.len() == self.fail_at
    }
}

impl VolumeSink for FaultySink {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        if self.call(Call::Start(number)) {
            if self.fault == Fault::Torn {
                self.volumes.push(Vec::new());
            }
            return Err(injected());
        }
        self.volumes.push(Vec::new());
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let fails = self.call(Call::Write(bytes.len()));
        let volume = self.volumes.last_mut().expect("a volume was started");
        if fails {
            if self.fault == Fault::Torn {
                volume.extend_from_slice(&bytes[..bytes.len() / 2]);
            }
            return Err(injected());
        }
        volume.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.call(Call::Finish) {
            return Err(injected());
        }
        Ok(())
    }
}

/// A container to break: its plaintext, chunks per volume, and the volume
/// size that gives them.
struct Shape {
    name: &'static str,
    len: usize,
    k: u64,
}

const SHAPES: [Shape; 2] = [
    // Three volumes: [0x00 0x02] [0x00 0x02] [0x00 0x01 partial]; one
    // batch, so one write per volume.
    Shape {
        name: "three small volumes",
        len: 5 * P + 1000,
        k: 2,
    },
    // 601 chunks, 100 per volume, in batches of 256 chunks: writes are cut
    // at volume and at batch boundaries.
    Shape {
        name: "seven volumes across three batches",
        len: 600 * P + 123,
        k: 100,
    },
];

impl Shape {
    fn plaintext(&self) -> Vec<u8> {
        data(self.len, self.len as u64)
    }

    fn sealer(&self, threads: usize) -> Sealer {
        Sealer::new()
            .digests(false) // lengths below count chunks only (no trailer)
            .recipient(identity(1).to_public())
            .chunk_size(C)
            .volume_size(H + self.k * C as u64)
            .threads(threads)
            .insecure_deterministic_seed([42; 32])
            .created(None)
            .pad(kuvert::Padding::None)
    }

    /// The volumes sealed without a fault, and the calls that made them.
    fn reference(&self) -> (Vec<Vec<u8>>, Vec<Call>) {
        let mut sink = FaultySink::new(usize::MAX, Fault::Clean);
        let mut writer = self.sealer(1).seal(&mut sink).expect("seal");
        writer.write_all(&self.plaintext()).expect("write");
        writer.finish().expect("finish");
        let mut memory = self.sealer(2).seal(MemorySink::new()).expect("seal");
        memory.write_all(&self.plaintext()).expect("write");
        assert_eq!(
            memory.finish().expect("finish").into_volumes(),
            sink.volumes,
            "{}: the seed fixes the bytes, whatever the threads",
            self.name
        );
        (sink.volumes, sink.calls)
    }

    /// SPEC.md §7.1 and §7.2 for the volumes a sealer handed over before it
    /// stopped: volumes 1 … m whole but the last, which is a prefix of its
    /// reference (given in volume order).
    fn expected(&self, reference: &[Vec<u8>], held: &[Vec<u8>]) -> Result<(), Failure> {
        let m = held.len();
        if m == 0 {
            return Err(Failure::NoVolumes);
        }
        let len = held[m - 1].len() as u64;
        let input = m;
        if len < 8 {
            return Err(Failure::NotKuvert { input });
        }
        if len < 10 {
            return Err(Failure::MalformedHeader { input, offset: 8 });
        }
        if len < L {
            return Err(Failure::MalformedHeader { input, offset: 10 });
        }
        if len < H {
            return Err(Failure::MalformedHeader { input, offset: len });
        }
        let volume = m as u32;
        let truncated = Failure::Truncated {
            volume,
            length: len,
        };
        let d = len - H;
        if d == 0 {
            return Err(truncated);
        }
        let c = C as u64;
        let physical = d.div_ceil(c);
        let r = d - (physical - 1) * c;
        let g = u64::from(volume - 1) * self.k + physical - 1;
        let offset = H + (physical - 1) * c;
        // The chunk sealed into that slot, and its flag.
        let sealed_len = (reference[m - 1].len() as u64 - offset).min(c);
        let last_chunk = (self.len as u64).div_ceil(P as u64) - 1;
        if r >= 16 && r == sealed_len {
            return if g == last_chunk {
                Ok(())
            } else if (g + 1).is_multiple_of(self.k) {
                Err(Failure::VolumeMissing { volume: volume + 1 })
            } else {
                Err(truncated)
            };
        }
        // A bare tag after data is never a whole final chunk (SPEC.md §7.2
        // step 6.3): the length proves the cut.
        if r < 16 || (r == 16 && g != 0) {
            return Err(truncated);
        }
        Err(Failure::Unauthenticated {
            chunk: g,
            volume,
            offset,
        })
    }
}

/// Opens `volumes` and reads everything; released bytes must be plaintext.
fn open_all(volumes: &[Vec<u8>], plaintext: &[u8]) -> Result<(), Failure> {
    let opener = Opener::new().identity(identity(1)).threads(1);
    let mut reader = opener.open(volumes.to_vec()).map_err(failure)?;
    let released = read_released(&mut reader, &[65536]);
    assert!(released.bytes == plaintext[..released.bytes.len()]);
    match released.error {
        None => {
            assert!(released.bytes == plaintext);
            Ok(())
        }
        Some(err) => Err(failure(err)),
    }
}

#[test]
fn a_sink_failing_at_any_call_never_leaves_a_set_that_opens() {
    let mut cases = 0;
    for shape in &SHAPES {
        let plaintext = shape.plaintext();
        let (reference, calls) = shape.reference();
        assert_eq!(calls.last(), Some(&Call::Finish));
        let volume_count = reference.len() as u32;
        let starts: Vec<Call> = (1..=volume_count).map(Call::Start).collect();
        assert_eq!(
            calls
                .iter()
                .filter(|c| matches!(c, Call::Start(_)))
                .copied()
                .collect::<Vec<_>>(),
            starts
        );
        eprintln!(
            "{}: {} volumes, {} sink calls",
            shape.name,
            reference.len(),
            calls.len()
        );
        for threads in [1, 2] {
            for fault in [Fault::Clean, Fault::Torn] {
                for fail_at in 1..=calls.len() {
                    let what = format!(
                        "{}, {threads} threads, {fault:?} fault at call {fail_at}",
                        shape.name
                    );
                    let mut sink = FaultySink::new(fail_at, fault);
                    let mut writer = shape.sealer(threads).seal(&mut sink).expect("seal");
                    let written = writer.write_all(&plaintext);
                    let finished = writer.finish();
                    match (&written, &finished) {
                        // The fault surfaced in `write`; `finish` refuses.
                        (Err(err), Err(Error::Io(after))) => {
                            assert!(is_injected(err), "{what}: write said {err:?}");
                            assert!(!is_injected(after), "{what}");
                            assert!(after.to_string().contains("earlier write failed"), "{what}");
                        }
                        // The fault surfaced in `finish` itself.
                        (Ok(()), Err(Error::Io(err))) => {
                            assert!(is_injected(err), "{what}: finish said {err:?}");
                        }
                        _ => {
                            panic!("{what}: the fault was not reported: {written:?}, {finished:?}")
                        }
                    }
                    // The sealer stopped at the fault: no call after it.
                    assert_eq!(sink.calls.len(), fail_at, "{what}: calls after the fault");
                    assert_eq!(sink.calls[..], calls[..fail_at], "{what}");

                    // What the sink holds is a prefix of the set.
                    let held = &sink.volumes;
                    assert!(held.len() <= reference.len(), "{what}");
                    for (index, volume) in held.iter().enumerate() {
                        let whole = &reference[index];
                        if index + 1 < held.len() {
                            assert!(volume == whole, "{what}: volume {} differs", index + 1);
                        } else {
                            assert!(
                                whole.starts_with(volume),
                                "{what}: last volume is no prefix"
                            );
                        }
                    }
                    let want = shape.expected(&reference, held);
                    let got = open_all(held, &plaintext);
                    assert_eq!(got, want, "{what}");
                    if fail_at < calls.len() {
                        assert!(got.is_err(), "{what}: opened as complete");
                    } else {
                        // Only the sink's own `finish` failed: every byte was
                        // handed over, and the writer said it had failed.
                        // Keeping such bytes out of sight is the sink's part
                        // (the file sink's: see the next test).
                        assert!(held[..] == reference[..], "{what}");
                    }
                    cases += 1;
                }
            }
        }
    }
    eprintln!("{cases} faults injected");
}

#[test]
fn a_failing_sink_also_reports_the_fault_to_a_writer_that_goes_on() {
    // After a failed write the caller writes again and calls finish: each
    // refuses, and the sink hears nothing more. (With 2 threads, 4 batches
    // may be in flight, so the 3 batches here reach the sink only in
    // `finish`, which reports the fault itself.)
    let shape = &SHAPES[1];
    let plaintext = shape.plaintext();
    for threads in [1, 2] {
        let mut sink = FaultySink::new(4, Fault::Torn);
        let mut writer = shape.sealer(threads).seal(&mut sink).expect("seal");
        let mut results = Vec::new();
        for piece in plaintext.chunks(100_000) {
            results.push(writer.write_all(piece));
        }
        let finished = writer.finish();
        match results.iter().position(Result::is_err) {
            Some(first) => {
                assert!(is_injected(results[first].as_ref().expect_err("failed")));
                assert!(
                    results[first..].iter().all(Result::is_err),
                    "{threads} threads"
                );
                assert!(results.len() - first > 1, "a write after the fault");
                assert!(finished.is_err());
            }
            None => {
                assert_eq!(threads, 2);
                assert!(matches!(&finished, Err(Error::Io(err)) if is_injected(err)));
            }
        }
        assert_eq!(sink.calls.len(), 4, "{threads} threads");
    }
}

// ------------------------------------------------------------ file sink

/// Delegates to a real sink and fails at call `fail_at` (from 1), after
/// passing half of the bytes on if the fault is torn.
#[derive(Debug)]
struct Flaky<S> {
    inner: S,
    calls: usize,
    fail_at: usize,
    fault: Fault,
}

impl<S: VolumeSink> VolumeSink for Flaky<S> {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        self.calls += 1;
        if self.calls == self.fail_at {
            if self.fault == Fault::Torn {
                self.inner.start_volume(number)?;
            }
            return Err(injected());
        }
        self.inner.start_volume(number)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.calls += 1;
        if self.calls == self.fail_at {
            if self.fault == Fault::Torn {
                self.inner.append(&bytes[..bytes.len() / 2])?;
            }
            return Err(injected());
        }
        self.inner.append(bytes)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.calls += 1;
        if self.calls == self.fail_at {
            return Err(injected());
        }
        self.inner.finish()
    }
}

/// Whether `name` is a final name of the set `-o set.kuv`.
fn is_final(name: &str) -> bool {
    name == "set.kuv"
        || name
            .strip_prefix("set.")
            .and_then(|rest| rest.strip_suffix(".kuv"))
            .is_some_and(|number| number.len() == 3 && number.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `name` is a partial volume of this process for `set.kuv`.
fn is_own_partial(name: &str) -> bool {
    let suffix = format!(".{}.kuvert-partial", std::process::id());
    name.strip_prefix(".set.kuv.")
        .and_then(|rest| rest.strip_suffix(suffix.as_str()))
        .is_some_and(|number| number.len() == 3 && number.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn a_file_sink_failing_at_any_call_leaves_no_final_name_and_nothing_once_dropped() {
    let shape = &SHAPES[0];
    let plaintext = shape.plaintext();
    let (_, calls) = shape.reference();
    let mut cases = 0;
    for threads in [1, 2] {
        for fault in [Fault::Clean, Fault::Torn] {
            for fail_at in 1..=calls.len() {
                let what = format!("{threads} threads, {fault:?} fault at call {fail_at}");
                let dir = tempfile::tempdir().expect("tempdir");
                let mut sink = Flaky {
                    inner: FileSink::new(dir.path().join("set.kuv")),
                    calls: 0,
                    fail_at,
                    fault,
                };
                let mut writer = shape.sealer(threads).seal(&mut sink).expect("seal");
                let written = writer.write_all(&plaintext);
                // Right after the fault, before anything is cleaned up.
                let names = listing(dir.path());
                assert!(names.iter().all(|n| is_own_partial(n)), "{what}: {names:?}");
                let finished = writer.finish();
                let reported = match (&written, &finished) {
                    (Err(err), Err(_)) => is_injected(err),
                    (Ok(()), Err(Error::Io(err))) => is_injected(err),
                    _ => false,
                };
                assert!(reported, "{what}: {written:?}, {finished:?}");
                let names = listing(dir.path());
                assert!(names.iter().all(|n| is_own_partial(n)), "{what}: {names:?}");
                assert!(!names.iter().any(|n| is_final(n)), "{what}");
                drop(sink);
                assert_eq!(
                    listing(dir.path()),
                    Vec::<String>::new(),
                    "{what}: left behind"
                );
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 4 * calls.len());
}

#[test]
fn a_file_sink_whose_rename_fails_leaves_no_final_name() {
    // A directory squats on the final name of volume 2: renaming volume 2
    // fails after volume 1 was renamed.
    let shape = &SHAPES[0];
    let dir = tempfile::tempdir().expect("tempdir");
    let squatter = dir.path().join("set.002.kuv");
    std::fs::create_dir(&squatter).expect("mkdir");
    std::fs::write(squatter.join("keep"), b"x").expect("write");
    let mut writer = shape
        .sealer(1)
        .seal(FileSink::new(dir.path().join("set.kuv")))
        .expect("seal");
    writer.write_all(&shape.plaintext()).expect("write");
    let err = writer.finish().expect_err("the rename of volume 2 fails");
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    let names = listing(dir.path());
    assert_eq!(
        names,
        ["set.002.kuv"],
        "only the squatter may remain: no volume of the failed set under a final name"
    );
}
