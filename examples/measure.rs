//! Seal and open throughput of the library next to the raw
//! ChaCha20-Poly1305 it is built on, in one run, median of 5: the raw cipher
//! of each backend compiled in (`chacha20poly1305` always, `ring` with the
//! default feature), then the library, on one thread and on two.
//!
//! ```text
//! cargo run --release --example measure
//! cargo run --release --example measure -- --size 256M --chunk-size 1M --runs 3
//! cargo run --release --example measure --no-default-features   # RustCrypto chunks
//! bash benches/backends.sh   # every backend and build flag, interleaved
//! ```
//!
//! Everything stays in memory: one plaintext buffer, reused by every row
//! (sealed from, opened back into, and checked at the end). The raw rows
//! seal that buffer in place chunk by chunk with the same chunk size and
//! nonce layout as the library, so "vs raw" (against the raw cipher the
//! library uses, on as many threads) is the cost of the library around the
//! cipher. Rows are interleaved run by run, so drift (thermal, neighbours on
//! a shared host) spreads over all of them. "CPU s" is the process's user +
//! system time for the row (all threads, 10 ms ticks): on a busy host it
//! still shows what the library adds to the cipher, which wall time cannot.

use std::error::Error as StdError;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Tag};
use kuvert::{MemorySink, Opener, Sealer, VolumeSink, X25519Identity};

type Result<T, E = Box<dyn StdError>> = std::result::Result<T, E>;

/// Poly1305 tag length.
const TAG: usize = 16;

/// The chunk backend the library was built with (see src/stream.rs).
const LIBRARY_BACKEND: &str = if cfg!(all(feature = "ring", not(feature = "zeroize-chunk-key"))) {
    "ring"
} else {
    "chacha20poly1305"
};

/// What a row times.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    Seal,
    Open,
    Copy,
}

/// One line of the table: a label, its thread count, what it does.
struct Row {
    label: String,
    threads: usize,
    op: Op,
    samples: Vec<Duration>,
    /// CPU seconds of the whole process (all threads) per sample.
    cpu: Vec<f64>,
}

/// When a timed row started, by the wall clock and by CPU time: CPU time
/// says what a row costs even when neighbours on a shared host stretch its
/// wall time.
struct Start {
    wall: Instant,
    cpu: f64,
}

impl Start {
    fn now() -> Self {
        Start {
            wall: Instant::now(),
            cpu: process_cpu_seconds(),
        }
    }
}

/// User + system time of this process so far, every thread (Linux; 0
/// elsewhere), in seconds at the kernel's 100 ticks a second.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the ")" that closes the command name: utime and stime
    // are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

fn main() -> Result<()> {
    let mut size: usize = 1 << 30;
    let mut chunk = Sealer::DEFAULT_CHUNK_SIZE;
    let mut runs = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--size" => size = parse_size(&value)?,
            "--chunk-size" => chunk = parse_size(&value)?,
            "--runs" => runs = value.parse()?,
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    let plain = chunk - TAG;

    let mut buf = vec![0u8; size];
    fill_pattern(&mut buf);
    let identity = X25519Identity::generate()?;
    let sealers = [1, 2].map(|threads| {
        Sealer::new()
            .recipient(identity.to_public())
            .chunk_size(chunk)
            .threads(threads)
    });
    // Without the volume trailer's digests (on by default): the pair to
    // the pre-sized rows, for the digest cost (issue 11: signed ≥ 85 %).
    let bare_sealers = sealers.clone().map(|sealer| sealer.digests(false));
    let openers = [1, 2].map(|threads| {
        let same: X25519Identity = identity
            .to_secret_string()
            .parse()
            .expect("an identity parses its own encoding");
        Opener::new().identity(same).threads(threads)
    });
    let raw_ciphers = raw_ciphers();
    let mut tags = vec![[0u8; TAG]; size.div_ceil(plain)];
    // Pre-touched and reused: the cost of the cipher path without the
    // allocator's.
    let mut reused = ReusedSink {
        // Non-zero, so every page is mapped now: a zeroed vector's pages
        // would fault in during the first timed seal.
        // As long as the plan says the set is (header, tags, padding,
        // trailer): Padmé alone adds up to 3 % to the payload.
        buf: vec![1u8; usize::try_from(sealers[1].plan(size as u64)?.total_len())?],
        len: 0,
    };

    let mut rows = Vec::new();
    let mut row = |label: String, threads: usize, op: Op| {
        rows.push(Row {
            label,
            threads,
            op,
            samples: Vec::new(),
            cpu: Vec::new(),
        });
        rows.len() - 1
    };
    // raw[cipher][threads - 1] = (seal row, open row)
    let raw: Vec<[(usize, usize); 2]> = raw_ciphers
        .iter()
        .map(|(name, _)| {
            [1, 2].map(|threads| {
                (
                    row(format!("raw {name} seal"), threads, Op::Seal),
                    row(format!("raw {name} open"), threads, Op::Open),
                )
            })
        })
        .collect();
    // The raw cipher as a sealer that must leave its input intact runs it:
    // each chunk copied into a second, pre-touched buffer and sealed there,
    // tag after it (the library's output layout). The library's seal rows
    // are compared with this too ("vs copying"), since it never owns the
    // caller's bytes.
    let raw_copying =
        [1, 2].map(|t| row(format!("raw {LIBRARY_BACKEND} seal, copying"), t, Op::Seal));
    let mut sealed_copy = vec![1u8; tags.len() * chunk];
    let seal_memory = row("kuvert seal, MemorySink".into(), 1, Op::Seal);
    let seal_planned = row("kuvert seal, for_plan sink".into(), 2, Op::Seal);
    let seal_sized = [1, 2].map(|t| row("kuvert seal, pre-sized sink".into(), t, Op::Seal));
    let seal_bare = [1, 2].map(|t| row("kuvert seal, pre-sized, no digests".into(), t, Op::Seal));
    // The same sink fed 1 MiB at a time: every byte goes through a batch
    // buffer (what a stream gets), not straight into the sink.
    let seal_pieces = row("kuvert seal, 1 MiB writes".into(), 2, Op::Seal);
    let open_read = row("kuvert open, Read".into(), 1, Op::Open);
    let open_copy = [1, 2].map(|t| row("kuvert open, copy_to".into(), t, Op::Open));
    let no_cipher = row("no cipher: copy into a new Vec".into(), 1, Op::Copy);

    let mut time = |row: usize, t: Start| {
        rows[row].samples.push(t.wall.elapsed());
        rows[row].cpu.push(process_cpu_seconds() - t.cpu);
    };
    for _ in 0..runs {
        // Raw: the buffer becomes ciphertext, then plaintext again.
        for ((_, cipher), rows) in raw_ciphers.iter().zip(&raw) {
            for (threads, &(seal_row, open_row)) in [1, 2].into_iter().zip(rows) {
                let t = Start::now();
                on_threads(threads, &mut buf, plain, &mut tags, |chunk, first, tags| {
                    raw_seal(&**cipher, chunk, plain, first, tags);
                    Ok(())
                })?;
                time(seal_row, t);
                let t = Start::now();
                on_threads(threads, &mut buf, plain, &mut tags, |chunk, first, tags| {
                    raw_open(&**cipher, chunk, plain, first, tags)
                })?;
                time(open_row, t);
            }
        }

        let library_cipher = &*raw_ciphers
            .iter()
            .find(|(name, _)| *name == LIBRARY_BACKEND)
            .ok_or("the library's backend has a raw row")?
            .1;
        for (threads, &row) in [1, 2].into_iter().zip(&raw_copying) {
            let t = Start::now();
            on_threads_copying(threads, &buf, &mut sealed_copy, plain, |from, to, first| {
                raw_seal_copying(library_cipher, from, to, plain, first)
            });
            time(row, t);
        }

        let t = Start::now();
        let mut writer = sealers[0].seal(MemorySink::new())?;
        writer.write_all(&buf)?;
        let volumes = writer.finish()?.into_volumes();
        time(seal_memory, t);

        let t = Start::now();
        let plan = sealers[1].plan(buf.len() as u64)?;
        let mut writer = sealers[1].seal(MemorySink::for_plan(&plan))?;
        writer.write_all(&buf)?;
        std::hint::black_box(writer.finish()?.into_volumes());
        time(seal_planned, t);

        // Each open writes the plaintext back over the buffer.
        let t = Start::now();
        let mut reader = openers[0].open(volumes)?;
        reader.read_exact(&mut buf)?;
        time(open_read, t);
        let volumes = reader.into_volumes();
        for (opener, &row) in openers.iter().zip(&open_copy) {
            let t = Start::now();
            let mut reader = opener.open(volumes.iter().collect())?;
            let mut out: &mut [u8] = &mut buf;
            reader.copy_to(&mut out, u64::MAX)?;
            time(row, t);
        }
        drop(volumes);

        for ((sealer, &row), (bare, &bare_row)) in sealers
            .iter()
            .zip(&seal_sized)
            .zip(bare_sealers.iter().zip(&seal_bare))
        {
            let t = Start::now();
            let mut writer = sealer.seal(&mut reused)?;
            writer.write_all(&buf)?;
            writer.finish()?;
            time(row, t);
            let t = Start::now();
            let mut writer = bare.seal(&mut reused)?;
            writer.write_all(&buf)?;
            writer.finish()?;
            time(bare_row, t);
        }

        let t = Start::now();
        let mut writer = sealers[1].seal(&mut reused)?;
        for piece in buf.chunks(1 << 20) {
            writer.write_all(piece)?;
        }
        writer.finish()?;
        time(seal_pieces, t);

        // What MemorySink pays the operating system: the same growth by
        // chunk-sized appends into fresh memory, without the cipher.
        let t = Start::now();
        let mut fresh = Vec::new();
        for piece in buf.chunks(chunk) {
            fresh.extend_from_slice(piece);
        }
        std::hint::black_box(&fresh);
        time(no_cipher, t);
        drop(fresh);
    }
    if !check_pattern(&buf) {
        return Err("the buffer no longer holds the plaintext it started with".into());
    }

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "{} payload, {} chunks, median of {runs}; \"vs raw\" is against the raw {LIBRARY_BACKEND} on as many threads",
        human(size),
        human(chunk)
    );
    println!(
        "{cpu}, {cores} cores; CPU {}; library chunks: {LIBRARY_BACKEND}; built {} --cfg chacha20_avx512",
        cpu_features(),
        if avx512_cfg() { "with" } else { "without" }
    );
    println!();
    println!(
        "| {:<30} | {:>7} | {:>9} | {:>11} | {:>8} | {:>12} | {:>7} | {:>10} |",
        "", "threads", "MiB/s", "range", "vs raw", "vs copying", "CPU s", "CPU vs raw"
    );
    println!(
        "|{:-<32}|{:->9}|{:->11}|{:->13}|{:->10}|{:->14}|{:->9}|{:->12}|",
        "", ":", ":", ":", ":", ":", ":", ":"
    );
    let mib_s = |t: Duration| size as f64 / f64::from(1 << 20) / t.as_secs_f64();
    let library = raw_ciphers
        .iter()
        .position(|(name, _)| *name == LIBRARY_BACKEND)
        .unwrap_or(0);
    for row in &rows {
        let t = median(&row.samples);
        let slowest = row.samples.iter().max().copied().unwrap_or(t);
        let fastest = row.samples.iter().min().copied().unwrap_or(t);
        let (raw_seal, raw_open) = raw[library][row.threads - 1];
        let against = match row.op {
            Op::Seal | Op::Copy => raw_seal,
            Op::Open => raw_open,
        };
        let vs_copying = match row.op {
            Op::Seal => format!(
                "{:.2}",
                median(&rows[raw_copying[row.threads - 1]].samples).as_secs_f64() / t.as_secs_f64()
            ),
            Op::Open | Op::Copy => "–".into(),
        };
        println!(
            "| {:<30} | {:>7} | {:>9.0} | {:>11} | {:>8.2} | {:>12} | {:>7.2} | {:>10.2} |",
            row.label,
            row.threads,
            mib_s(t),
            format!("{:.0}–{:.0}", mib_s(slowest), mib_s(fastest)),
            median(&rows[against].samples).as_secs_f64() / t.as_secs_f64(),
            vs_copying,
            median_f64(&row.cpu),
            median_f64(&rows[against].cpu) / median_f64(&row.cpu)
        );
    }
    println!();
    let tiny = time_tiny_seal(&sealers[1])?;
    println!(
        "a 14-byte seal to one X25519 recipient (2 threads allowed, none started): {:.0} µs, median of 1000",
        tiny.as_secs_f64() * 1e6
    );
    Ok(())
}

/// What a tiny payload costs end to end: key wrap, header, one chunk.
fn time_tiny_seal(sealer: &Sealer) -> Result<Duration> {
    let mut samples = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let t = Instant::now();
        let mut writer = sealer.seal(MemorySink::new())?;
        writer.write_all(b"fourteen bytes")?;
        std::hint::black_box(writer.finish()?.into_volumes());
        samples.push(t.elapsed());
    }
    Ok(median(&samples))
}

/// A raw ChaCha20-Poly1305 that seals and opens in place.
trait RawAead: Sync {
    fn seal(&self, nonce: [u8; 12], chunk: &mut [u8]) -> [u8; TAG];
    fn open(&self, nonce: [u8; 12], chunk: &mut [u8], tag: &[u8; TAG]) -> bool;
}

impl RawAead for ChaCha20Poly1305 {
    fn seal(&self, nonce: [u8; 12], chunk: &mut [u8]) -> [u8; TAG] {
        self.encrypt_inout_detached(&nonce.into(), &[], chunk.into())
            .expect("a chunk is far below the AEAD's length limit")
            .into()
    }

    fn open(&self, nonce: [u8; 12], chunk: &mut [u8], tag: &[u8; TAG]) -> bool {
        self.decrypt_inout_detached(&nonce.into(), &[], chunk.into(), &Tag::from(*tag))
            .is_ok()
    }
}

#[cfg(feature = "ring")]
impl RawAead for ring::aead::LessSafeKey {
    fn seal(&self, nonce: [u8; 12], chunk: &mut [u8]) -> [u8; TAG] {
        use ring::aead::{Aad, Nonce};
        let tag = self
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), chunk)
            .expect("a chunk is far below the AEAD's length limit");
        let mut bytes = [0u8; TAG];
        bytes.copy_from_slice(tag.as_ref());
        bytes
    }

    fn open(&self, nonce: [u8; 12], chunk: &mut [u8], tag: &[u8; TAG]) -> bool {
        use ring::aead::{Aad, Nonce};
        self.open_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            ring::aead::Tag::from(*tag),
            chunk,
            0..,
        )
        .is_ok()
    }
}

/// Every raw cipher compiled in, by name.
fn raw_ciphers() -> Vec<(&'static str, Box<dyn RawAead>)> {
    let ciphers: Vec<(&'static str, Box<dyn RawAead>)> = vec![(
        "chacha20poly1305",
        Box::new(ChaCha20Poly1305::new(&[7u8; 32].into())),
    )];
    #[cfg(feature = "ring")]
    let ciphers = {
        use ring::aead::{CHACHA20_POLY1305, LessSafeKey, UnboundKey};
        let key = UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).expect("a 32-byte key");
        let mut ciphers = ciphers;
        ciphers.push(("ring", Box::new(LessSafeKey::new(key)) as Box<dyn RawAead>));
        ciphers
    };
    ciphers
}

/// Runs `work(chunks, first chunk index, their tags)` over `buf` on one
/// thread, or on two halves (whole chunks each) at once.
fn on_threads(
    threads: usize,
    buf: &mut [u8],
    plain: usize,
    tags: &mut [[u8; TAG]],
    work: impl Fn(&mut [u8], u64, &mut [[u8; TAG]]) -> Result<(), String> + Sync,
) -> Result<()> {
    if threads == 1 {
        return Ok(work(buf, 0, tags)?);
    }
    let half = tags.len().div_ceil(2);
    let (left, right) = buf.split_at_mut((half * plain).min(buf.len()));
    let (left_tags, right_tags) = tags.split_at_mut(half);
    let (a, b) = std::thread::scope(|scope| {
        let other = scope.spawn(|| work(left, 0, left_tags));
        let here = work(right, half as u64, right_tags);
        (other.join().expect("the raw thread does not panic"), here)
    });
    a?;
    b?;
    Ok(())
}

/// Runs `work(plaintext, sealed room, first chunk index)` over `from` and
/// `to` (chunks of `plain` and `plain + TAG` bytes) on one thread, or on two
/// halves at once.
fn on_threads_copying(
    threads: usize,
    from: &[u8],
    to: &mut [u8],
    plain: usize,
    work: impl Fn(&[u8], &mut [u8], u64) + Sync,
) {
    if threads == 1 {
        return work(from, to, 0);
    }
    let half = from.len().div_ceil(plain).div_ceil(2);
    let (from_left, from_right) = from.split_at((half * plain).min(from.len()));
    let (to_left, to_right) = to.split_at_mut((half * (plain + TAG)).min(to.len()));
    std::thread::scope(|scope| {
        scope.spawn(|| work(from_left, to_left, 0));
        work(from_right, to_right, half as u64);
    });
}

/// Copies each chunk of `from` into `to` and seals it there, tag after it.
fn raw_seal_copying(aead: &dyn RawAead, from: &[u8], to: &mut [u8], plain: usize, first: u64) {
    for (i, (piece, room)) in from
        .chunks(plain)
        .zip(to.chunks_mut(plain + TAG))
        .enumerate()
    {
        let (body, tag) = room.split_at_mut(piece.len());
        body.copy_from_slice(piece);
        tag[..TAG].copy_from_slice(&aead.seal(nonce(first + i as u64), body));
    }
}

/// Seals `buf` in place, chunk `i` under nonce `first + i`, keeping tags.
fn raw_seal(aead: &dyn RawAead, buf: &mut [u8], plain: usize, first: u64, tags: &mut [[u8; TAG]]) {
    for (i, (chunk, tag)) in buf.chunks_mut(plain).zip(tags).enumerate() {
        *tag = aead.seal(nonce(first + i as u64), chunk);
    }
}

fn raw_open(
    aead: &dyn RawAead,
    buf: &mut [u8],
    plain: usize,
    first: u64,
    tags: &[[u8; TAG]],
) -> Result<(), String> {
    for (i, (chunk, tag)) in buf.chunks_mut(plain).zip(tags).enumerate() {
        if !aead.open(nonce(first + i as u64), chunk, tag) {
            return Err(format!("raw chunk {} failed to open", first + i as u64));
        }
    }
    Ok(())
}

/// The library's layout: big-endian counter in bytes 3..11, flag last.
fn nonce(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&counter.to_be_bytes());
    nonce
}

/// One volume in a buffer whose capacity survives from run to run.
struct ReusedSink {
    /// Always full length, so lending room costs nothing; `len` bytes hold
    /// the volume.
    buf: Vec<u8>,
    len: usize,
}

impl ReusedSink {
    /// `len` more bytes of the volume.
    fn grow(&mut self, len: usize) -> io::Result<&mut [u8]> {
        let start = self.len;
        let room = self
            .buf
            .get_mut(start..start + len)
            .ok_or_else(|| io::Error::other("the sink is smaller than the set"))?;
        self.len += len;
        Ok(room)
    }
}

impl VolumeSink for ReusedSink {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        if number != 1 {
            return Err(io::Error::other("this sink holds one volume"));
        }
        self.len = 0;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.grow(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Lends its own memory: the library seals large writes into it.
    fn append_in_place(&mut self, len: usize) -> io::Result<Option<&mut [u8]>> {
        self.grow(len).map(Some)
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn fill_pattern(buf: &mut [u8]) {
    for (i, word) in buf.chunks_mut(8).enumerate() {
        let bytes = mix(i as u64).to_le_bytes();
        word.copy_from_slice(&bytes[..word.len()]);
    }
}

fn check_pattern(buf: &[u8]) -> bool {
    buf.chunks(8)
        .enumerate()
        .all(|(i, word)| word == &mix(i as u64).to_le_bytes()[..word.len()])
}

/// splitmix64's finaliser: incompressible-looking, reproducible bytes.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn median_f64(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn parse_size(text: &str) -> Result<usize> {
    let lower = text.to_ascii_lowercase();
    let (number, shift) = match lower.trim_end_matches("ib").chars().last() {
        Some('k') => (&lower[..lower.find('k').unwrap_or(0)], 10),
        Some('m') => (&lower[..lower.find('m').unwrap_or(0)], 20),
        Some('g') => (&lower[..lower.find('g').unwrap_or(0)], 30),
        _ => (lower.as_str(), 0),
    };
    Ok(number.parse::<usize>()? << shift)
}

fn human(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn cpu_features() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = std::is_x86_feature_detected!("avx512f");
        let avx2 = std::is_x86_feature_detected!("avx2");
        match (avx512, avx2) {
            (true, _) => "has AVX-512F",
            (false, true) => "has AVX2, no AVX-512F",
            _ => "has neither AVX2 nor AVX-512F",
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "is not x86-64"
    }
}

/// Whether this build passed `--cfg chacha20_avx512` (this repository's
/// .cargo/config.toml does); the flag reaches every crate of the build.
#[allow(
    unexpected_cfgs,
    reason = "chacha20's opt-in flag, not a cfg this crate declares"
)]
fn avx512_cfg() -> bool {
    cfg!(chacha20_avx512)
}
