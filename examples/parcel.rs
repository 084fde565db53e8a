//! The main job, end to end, until the CLI exists: prepare a parcel of
//! discs the way a data office would, and open it the way the recipient
//! would.
//!
//! 1. Generate a synthetic health-register extract (CSV, one record per
//!    person: 5,282,616 by default, the size of the register that was once
//!    posted on two unencrypted CDs), streaming from a fixed-seed PRNG.
//! 2. Generate an X25519 identity for the recipient.
//! 3. Seal the extract straight from the generator onto disc-sized volume
//!    files in a temporary directory, hashing the plaintext as it goes.
//! 4. Inspect every volume without a key, and verify each one on its own
//!    (as after burning a disc).
//! 5. Open the set with the volumes in reversed order (discs arrive in any
//!    order), hash the plaintext and compare.
//!
//! ```text
//! cargo run --release --example parcel
//! cargo run --release --example parcel -- --records 200000 --volume-size 4M
//! cargo run --release --example parcel -- --volume-size cd --keep /tmp/parcel
//! ```
//!
//! With `--extract-to DIR` it seals nothing: it writes the extract as files
//! for the CLI to seal (examples/parcel.sh does that) and exits.
//! `DIR/register/persons.csv` holds the same bytes the default mode seals;
//! `DIR/register/episodes.csv` adds about three hospital episodes per
//! person (from a second generator on the same seed), which makes the
//! default extract about 1.3 GB, more than one CD; `DIR/README.txt`
//! describes the columns.
//!
//! Exits non-zero if any check fails. Every person, id and code in the
//! extract is made up.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use kuvert::{FileSink, FileSource, Opener, Sealer, X25519Identity, inspect};
use sha2::{Digest, Sha256};

/// People in the register once posted on two unencrypted CDs (README.md).
const DEFAULT_RECORDS: u64 = 5_282_616;
/// Seed of the extract: the same record count always gives the same bytes.
const DEFAULT_SEED: u64 = 0x6b75_7665_7274_2021;
/// A 700 MiB (80 minute) CD: 734,003,200 of its 737,280,000 bytes, the
/// rest left for the disc's filesystem. (The CLI's `cd` preset is 699 MiB:
/// it keeps 0.5% of every disc free; see cli/src/size.rs.)
const CD: u64 = 700 << 20;
/// An 8 cm mini-CD (24 minutes): 210 MiB of its 221,184,000 bytes.
const MINI_CD: u64 = 210 << 20;
/// Plaintext handed to the sealer per write.
const BLOCK: usize = 1 << 20;

type Result<T, E = Box<dyn StdError>> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("error: {err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let outcome = match &options.extract_to {
        Some(dir) => write_extract(&options, dir),
        None => run(&options),
    };
    match outcome {
        Ok(()) => {
            // The seal-and-open run checks something; --extract-to only writes.
            if options.extract_to.is_none() {
                println!("OK");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            let mut message = format!("FAILED: {err}");
            let mut source = err.source();
            while let Some(inner) = source {
                let _ = write!(message, ": {inner}");
                source = inner.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "\
usage: parcel [--records N] [--volume-size SIZE] [--chunk-size SIZE] [--seed N] [--keep DIR]
       parcel --extract-to DIR [--records N] [--seed N]

  --records N         people in the synthetic extract (default 5282616)
  --volume-size SIZE  largest volume: auto (default), cd (700 MiB), mini-cd (210 MiB),
                      dvd, dvd-dl, bd, bd-nodm, bd-dl, bd-dl-nodm, fat32, or a size
                      such as 100M, 650MiB,
                      734003200
                      (K, M, G are binary, as in 7-Zip's -v)
  --chunk-size SIZE   ciphertext chunk, a power of two from 4K to 16M (default 64K)
  --seed N            seed of the extract (default fixed)
  --keep DIR          write the volumes to DIR and keep them (default: a temporary directory)
  --extract-to DIR    seal nothing: write DIR/register/persons.csv (the records above),
                      DIR/register/episodes.csv (about 3 hospital episodes per person) and
                      DIR/README.txt, then exit (files that exist are not replaced)

auto picks the CD preset when the extract fills more than one CD, else 8 cm mini-CDs
when it fills more than one of those, else about three volumes of whole MiB, so that the
set is split (an extract under 1 MiB still makes one volume).
";

/// Media presets accepted by `--volume-size`. Beyond the CDs they are the
/// CLI's: the largest whole MiB that leaves 0.5% of the disc for its
/// filesystem, and a MiB under FAT32's largest file.
const PRESETS: &[(&str, u64, &str)] = &[
    ("cd", CD, "700 MiB CD"),
    ("mini-cd", MINI_CD, "210 MiB 8 cm mini-CD"),
    ("dvd", disc_volume(2_295_104), "single-layer DVD"),
    ("dvd-dl", disc_volume(4_171_712), "dual-layer DVD"),
    (
        "bd",
        disc_volume(11_826_176),
        "single-layer BD-R, formatted with defect management",
    ),
    (
        "bd-nodm",
        disc_volume(12_219_392),
        "single-layer BD-R, unformatted",
    ),
    (
        "bd-dl",
        disc_volume(23_652_352),
        "dual-layer BD-R, formatted with defect management",
    ),
    (
        "bd-dl-nodm",
        disc_volume(24_438_784),
        "dual-layer BD-R, unformatted",
    ),
    ("fat32", 4095 << 20, "FAT32 file"),
];

/// The largest whole MiB of a disc of `sectors` 2,048-byte sectors that
/// leaves 0.5% of it free.
const fn disc_volume(sectors: u64) -> u64 {
    let capacity = sectors * 2048;
    (capacity - capacity.div_ceil(200)) / (1 << 20) * (1 << 20)
}

struct Options {
    records: u64,
    volume_size: Option<u64>,
    chunk_size: usize,
    seed: u64,
    keep: Option<PathBuf>,
    extract_to: Option<PathBuf>,
}

impl Options {
    /// `Ok(None)` when help was asked for.
    fn parse(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
        let mut options = Options {
            records: DEFAULT_RECORDS,
            volume_size: None,
            chunk_size: Sealer::DEFAULT_CHUNK_SIZE,
            seed: DEFAULT_SEED,
            keep: None,
            extract_to: None,
        };
        let mut sealing_flags = Vec::new();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value)),
                _ => (arg.clone(), None),
            };
            if flag == "-h" || flag == "--help" {
                return Ok(None);
            }
            const FLAGS: [&str; 6] = [
                "--records",
                "--volume-size",
                "--chunk-size",
                "--seed",
                "--keep",
                "--extract-to",
            ];
            if !FLAGS.contains(&flag.as_str()) {
                return Err(format!("unknown option {flag}"));
            }
            let value = match inline {
                Some(value) => value.to_owned(),
                None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
            };
            if matches!(flag.as_str(), "--volume-size" | "--chunk-size" | "--keep") {
                sealing_flags.push(flag.clone());
            }
            match flag.as_str() {
                "--records" => options.records = parse_count(&value)?,
                "--volume-size" if value.eq_ignore_ascii_case("auto") => {
                    options.volume_size = None;
                }
                "--volume-size" => options.volume_size = Some(parse_size(&value)?),
                "--chunk-size" => {
                    options.chunk_size = usize::try_from(parse_size(&value)?)
                        .map_err(|_| format!("chunk size {value} is too large"))?;
                }
                "--seed" => options.seed = parse_count(&value)?,
                "--keep" => options.keep = Some(PathBuf::from(value)),
                "--extract-to" => options.extract_to = Some(PathBuf::from(value)),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if options.extract_to.is_some()
            && let Some(flag) = sealing_flags.first()
        {
            return Err(format!(
                "--extract-to only writes files: {flag} applies to sealing"
            ));
        }
        Ok(Some(options))
    }
}

fn parse_count(text: &str) -> Result<u64, String> {
    let digits: String = text.chars().filter(|&c| c != '_' && c != ',').collect();
    digits
        .parse()
        .map_err(|_| format!("{text} is not a whole number"))
}

/// A byte size: a preset name, or a number with an optional binary suffix.
fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    if let Some(&(_, bytes, _)) = PRESETS.iter().find(|(name, ..)| *name == lower) {
        return Ok(bytes);
    }
    let number_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(lower.len());
    let (number, suffix) = lower.split_at(number_end);
    let shift = match suffix.trim() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => {
            return Err(format!(
                "{text}: unknown size unit (use K, M, G or a preset)"
            ));
        }
    };
    let number = parse_count(number)?;
    number
        .checked_mul(1 << shift)
        .filter(|&bytes| bytes > 0)
        .ok_or_else(|| format!("{text} is not a usable size"))
}

fn run(options: &Options) -> Result<()> {
    let chunk_size = options.chunk_size;
    println!(
        "kuvert parcel: a synthetic health-register extract, sealed onto volumes and reopened"
    );
    println!();

    // Volume size: the extract is deterministic, so its first records tell
    // its size well enough to pick media before a byte is sealed.
    let estimate = Extract::new(options.seed, options.records).estimate_len();
    let (volume_size, why) = choose_volume_size(options.volume_size, estimate);
    println!("records      {}", group(options.records));
    println!(
        "extract      about {} (estimated from the first records)",
        mb(estimate)
    );
    println!(
        "volume size  {} bytes = {}: {why}",
        group(volume_size),
        mib(volume_size)
    );
    println!("chunk size   {} bytes", group(chunk_size as u64));
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!("threads      {threads} (the default: all cores, for sealing and opening)");

    // (b) The recipient's key.
    let identity = X25519Identity::generate()?;
    let recipient = identity.to_public();
    println!("recipient    {recipient}");

    let temp;
    let dir = match &options.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let set_path = dir.join("register.kuv");

    // (a) + (c) Generate, hash and seal in one pass; nothing holds the
    // whole extract.
    let mut writer = Sealer::new()
        .recipient(recipient)
        .chunk_size(chunk_size)
        .volume_size(volume_size)
        .seal(FileSink::new(&set_path))?;
    let mut extract = Extract::new(options.seed, options.records);
    let mut plain_hasher = Sha256::new();
    let mut block = Vec::with_capacity(BLOCK + Extract::MAX_RECORD_LEN);
    let mut plain_len = 0u64;
    let (mut t_generate, mut t_hash, mut t_seal) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let seal_start = Instant::now();
    loop {
        block.clear();
        let t = Instant::now();
        extract.fill(&mut block, BLOCK);
        t_generate += t.elapsed();
        if block.is_empty() {
            break;
        }
        let t = Instant::now();
        plain_hasher.update(&block);
        t_hash += t.elapsed();
        let t = Instant::now();
        writer.write_all(&block)?;
        t_seal += t.elapsed();
        plain_len += block.len() as u64;
    }
    let t = Instant::now();
    let sink = writer.finish()?;
    let t_finish = t.elapsed();
    let seal_total = seal_start.elapsed();
    let sealed_hash = plain_hasher.finalize();
    let paths = sink.paths().to_vec();
    drop(sink);
    if extract.written != options.records {
        return Err(format!(
            "generated {} records, asked for {}",
            extract.written, options.records
        )
        .into());
    }

    println!();
    println!(
        "sealed       {} bytes of plaintext into {} volume(s) in {}",
        group(plain_len),
        paths.len(),
        dir.display()
    );
    println!(
        "  seal       {} end to end: generate {}, sha-256 {}, seal + write {}, finish (fsync, rename) {}",
        rate(plain_len, seal_total),
        secs(t_generate),
        secs(t_hash),
        secs(t_seal),
        secs(t_finish),
    );
    println!(
        "  sealer     {} (time in write_all and finish: sealing on {threads} thread(s), \
         writing volumes)",
        rate(plain_len, t_seal + t_finish)
    );

    // (d) Every volume on its own: the header without a key, then every
    // chunk authenticated with the key.
    let opener = Opener::new().identity(identity);
    println!();
    println!(
        "{:<18} {:>11} {:>7} {:>14}  {:<4}  inspect + verify",
        "volume", "bytes", "chunks", "plaintext", "last"
    );
    let mut set_id = None;
    let mut carried = 0u64;
    let mut cipher_len = 0u64;
    let verify_start = Instant::now();
    for (index, path) in paths.iter().enumerate() {
        let number = u32::try_from(index + 1)?;
        let source = FileSource::open(path)?;
        let t = Instant::now();
        let info = inspect(&source)?;
        let report = opener
            .verify_volume(&source)
            .map_err(|err| format!("{}: {err}", path.display()))?;
        let took = t.elapsed();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        println!(
            "{:<18} {:>11} {:>7} {:>14}  {:<4}  {}",
            name.unwrap_or_default(),
            group(info.len),
            group(report.chunks),
            group(report.plaintext_len),
            if report.last_in_set { "yes" } else { "no" },
            rate(report.plaintext_len, took),
        );
        let expect_last = index + 1 == paths.len();
        let consistent = info.volume == number
            && report.volume == number
            && info.set_id == report.set_id
            && *set_id.get_or_insert(info.set_id) == info.set_id
            && info.chunk_size == chunk_size
            && info.len <= volume_size
            && info.stanza_types == ["X25519"]
            && (info.is_full() || expect_last)
            && report.last_in_set == expect_last;
        if !consistent {
            return Err(
                format!("volume {number} is not what was sealed: {info:?} {report:?}").into(),
            );
        }
        carried += report.plaintext_len;
        cipher_len += info.len;
    }
    let verify_total = verify_start.elapsed();
    // The volumes carry the payload: its prefix, the manifest, the content
    // and the Padmé padding (under 3.2 % of it, SPEC.md §15.2); the exact
    // content length is checked when the set is opened, below.
    let least = plain_len + kuvert::PAYLOAD_PREFIX_LEN as u64;
    if carried < least || carried - least > 4096 + plain_len / 31 {
        return Err(
            format!("volumes carry {carried} payload bytes, {plain_len} were sealed").into(),
        );
    }
    println!(
        "  verify     {} volume(s) alone in {}: {} of ciphertext, {:.3}% overhead",
        paths.len(),
        secs(verify_total),
        rate(cipher_len, verify_total),
        (cipher_len - plain_len) as f64 * 100.0 / plain_len.max(1) as f64,
    );

    // (e) Open the whole set, discs handed over last first.
    let mut sources = paths
        .iter()
        .map(FileSource::open)
        .collect::<Result<Vec<_>, _>>()?;
    sources.reverse();
    let given: Vec<String> = sources
        .iter()
        .map(|s| {
            s.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let open_start = Instant::now();
    let mut reader = opener.open(sources)?;
    if reader.len() != plain_len {
        return Err(format!(
            "set opens to {} bytes, {plain_len} were sealed",
            reader.len()
        )
        .into());
    }
    // `copy_to` is the whole-payload path: chunks are authenticated on the
    // opener's threads and handed to the hasher in order.
    let mut hashing = HashingWriter {
        hasher: Sha256::new(),
        busy: Duration::ZERO,
    };
    let t = Instant::now();
    let opened = reader.copy_to(&mut hashing, u64::MAX)?;
    let t_read = t.elapsed();
    let t_hash_open = hashing.busy;
    let open_hasher = hashing.hasher;
    let open_total = open_start.elapsed();
    let opened_hash = open_hasher.finalize();
    println!();
    println!(
        "opened       {} bytes from {} (reversed)",
        group(opened),
        given.join(", ")
    );
    println!(
        "  open       {} end to end: open {}, then copy_to (chunks authenticated on {threads} \
         thread(s)) into SHA-256 {}",
        rate(opened, open_total),
        secs(open_total - t_read),
        secs(t_read),
    );
    println!(
        "             of the copy, hashing took {} and waiting for chunks {}",
        secs(t_hash_open),
        secs(t_read.saturating_sub(t_hash_open)),
    );

    println!();
    println!("sha-256 sealed  {}", hex(&sealed_hash));
    println!("sha-256 opened  {}", hex(&opened_hash));
    if opened != plain_len || sealed_hash != opened_hash {
        return Err("the opened plaintext differs from the sealed plaintext".into());
    }
    if options.keep.is_some() {
        println!("kept         {}", dir.display());
    }
    Ok(())
}

/// The default volume size and why, or the one asked for.
fn choose_volume_size(asked: Option<u64>, estimate: u64) -> (u64, String) {
    if let Some(bytes) = asked {
        let name = PRESETS
            .iter()
            .find(|&&(_, size, _)| size == bytes)
            .map_or(String::from("as asked"), |(_, _, what)| {
                format!("as asked ({what})")
            });
        return (bytes, name);
    }
    if estimate > CD {
        return (CD, "auto: the CD preset".into());
    }
    if estimate > MINI_CD {
        return (
            MINI_CD,
            format!(
                "auto: the extract ({}) fits one 700 MiB CD, so it goes on 8 cm mini-CDs to \
                 make a multi-volume set (--volume-size cd for full CDs)",
                mb(estimate)
            ),
        );
    }
    let third = estimate.div_ceil(3).div_ceil(1 << 20).max(1) << 20;
    (
        third,
        format!(
            "auto: the extract ({}) fits one mini-CD, so it is split into about three volumes",
            mb(estimate)
        ),
    )
}

/// Hashes what is written to it, and times the hashing.
struct HashingWriter {
    hasher: Sha256,
    busy: Duration,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let t = Instant::now();
        self.hasher.update(buf);
        self.busy += t.elapsed();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A deterministic synthetic health-register extract, produced on demand.
///
/// One CSV line per person: a fake 11-digit national id (birth date
/// DDMMYY, a 4-digit serial and a Luhn check digit: shaped like a Nordic id,
/// valid in none), birth date, sex, a 3-digit municipality code, one to three
/// ICD-10 codes separated by `;`, admission and discharge dates.
struct Extract {
    rng: SplitMix64,
    records: u64,
    written: u64,
    header_done: bool,
}

impl Extract {
    const HEADER: &'static [u8] =
        b"person_id,birth_date,sex,municipality,icd10,admission_date,discharge_date\n";
    /// Longest possible line: 11+1+10+1+1+1+3+1+(3*5+2)+1+10+1+10+1.
    const MAX_RECORD_LEN: usize = 69;
    /// Records sampled by [`Extract::estimate_len`].
    const SAMPLE: u64 = 100_000;

    fn new(seed: u64, records: u64) -> Self {
        Extract {
            rng: SplitMix64(seed),
            records,
            written: 0,
            header_done: false,
        }
    }

    /// Total length: exact up to `SAMPLE` records, extrapolated beyond.
    fn estimate_len(mut self) -> u64 {
        let total = self.records;
        self.records = total.min(Self::SAMPLE);
        let mut buf = Vec::with_capacity(BLOCK + Self::MAX_RECORD_LEN);
        let mut len = 0u64;
        loop {
            buf.clear();
            self.fill(&mut buf, BLOCK);
            if buf.is_empty() {
                break;
            }
            len += buf.len() as u64;
        }
        if total <= Self::SAMPLE || self.records == 0 {
            return len;
        }
        let records_len = len - Self::HEADER.len() as u64;
        Self::HEADER.len() as u64 + (records_len as f64 * total as f64 / self.records as f64) as u64
    }

    /// Appends whole lines until `buf` holds at least `target` bytes or the
    /// extract ends.
    fn fill(&mut self, buf: &mut Vec<u8>, target: usize) {
        if !self.header_done {
            buf.extend_from_slice(Self::HEADER);
            self.header_done = true;
        }
        while buf.len() < target && self.written < self.records {
            self.record(buf);
            self.written += 1;
        }
    }

    /// Appends one person's line; returns what the episodes table needs.
    fn record(&mut self, out: &mut Vec<u8>) -> Person {
        let rng = &mut self.rng;
        // Born 1920-01-01 ..= 2023-12-31.
        let first = days_from_civil(1920, 1, 1);
        let last = days_from_civil(2023, 12, 31);
        let born = first + rng.below((last - first + 1) as u64) as i64;
        let (year, month, day) = civil_from_days(born);

        let mut id = [0u8; 11];
        put_digits(&mut id[0..2], u64::from(day));
        put_digits(&mut id[2..4], u64::from(month));
        put_digits(&mut id[4..6], year.rem_euclid(100) as u64);
        put_digits(&mut id[6..10], rng.below(10_000));
        id[10] = b'0' + luhn_check(&id[..10]);
        out.extend_from_slice(&id);
        out.push(b',');
        push_date(out, year, month, day);
        out.push(b',');
        out.push(if rng.below(2) == 0 { b'F' } else { b'M' });
        out.push(b',');
        push_digits(out, 5 + rng.below(988), 3);
        out.push(b',');

        let codes = 1 + rng.below(3);
        push_icd10(out, rng, codes);
        out.push(b',');

        // Admitted 2015-01-01 ..= 2023-12-31, never before birth; most stays
        // are short.
        let from = born.max(days_from_civil(2015, 1, 1));
        let admitted = from + rng.below((last - from + 1) as u64) as i64;
        let stay = if rng.below(10) < 6 {
            rng.below(4)
        } else {
            rng.below(31)
        };
        let (y, m, d) = civil_from_days(admitted);
        push_date(out, y, m, d);
        out.push(b',');
        let (y, m, d) = civil_from_days(admitted + stay as i64);
        push_date(out, y, m, d);
        out.push(b'\n');
        Person { id, born }
    }
}

/// What an episode line takes from its person.
struct Person {
    id: [u8; 11],
    /// Days since 1970-01-01.
    born: i64,
}

/// ICD-10 codes separated by `;`: a letter (U is reserved), two digits, and
/// half the time a subcategory digit.
fn push_icd10(out: &mut Vec<u8>, rng: &mut SplitMix64, codes: u64) {
    const CHAPTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTVWXYZ";
    for i in 0..codes {
        if i > 0 {
            out.push(b';');
        }
        let detail = rng.next();
        out.push(CHAPTERS[(detail % CHAPTERS.len() as u64) as usize]);
        push_digits(out, (detail >> 8) % 100, 2);
        if detail >> 63 == 1 {
            out.push(b'.');
            out.push(b'0' + ((detail >> 16) % 10) as u8);
        }
    }
}

/// The hospital episodes of the extract's people, produced on demand from
/// a generator of their own, so that `persons.csv` keeps the bytes the
/// default mode seals.
///
/// One CSV line per episode: the person's id, an episode id (numbered from
/// 1 across the table), admission and discharge dates (the person's
/// episodes in admission order), a ward code, one to four ICD-10 codes
/// (the first the main diagnosis), and an NCSP-style procedure code (three
/// letters, two digits).
struct Episodes {
    rng: SplitMix64,
    written: u64,
}

impl Episodes {
    const HEADER: &'static [u8] =
        b"person_id,episode_id,admission_date,discharge_date,ward,icd10,procedure\n";
    /// Longest possible line: 11+1+20+1+10+1+10+1+5+1+(4*5+3)+1+5+1.
    const MAX_RECORD_LEN: usize = 91;
    /// Mixed into the seed so that the two tables draw different numbers.
    const SEED_TWEAK: u64 = 0x6570_6973_6f64_6573;
    const WARDS: [&'static [u8; 3]; 12] = [
        b"MED", b"SUR", b"ORT", b"CAR", b"NEU", b"ONC", b"PED", b"PSY", b"OBG", b"GER", b"ICU",
        b"EMR",
    ];

    fn new(seed: u64) -> Self {
        Episodes {
            rng: SplitMix64(seed ^ Self::SEED_TWEAK),
            written: 0,
        }
    }

    /// Appends one to five lines (three on average) for `person`; returns
    /// how many.
    fn for_person(&mut self, person: &Person, out: &mut Vec<u8>) -> u64 {
        let rng = &mut self.rng;
        let count = 1 + rng.below(5);
        let from = person.born.max(days_from_civil(2015, 1, 1));
        let last = days_from_civil(2023, 12, 31);
        let mut admitted = [0i64; 5];
        for day in &mut admitted[..count as usize] {
            *day = from + rng.below((last - from + 1) as u64) as i64;
        }
        admitted[..count as usize].sort_unstable();
        for &day in &admitted[..count as usize] {
            self.written += 1;
            out.extend_from_slice(&person.id);
            out.push(b',');
            push_decimal(out, self.written);
            out.push(b',');
            let (y, m, d) = civil_from_days(day);
            push_date(out, y, m, d);
            out.push(b',');
            let stay = if rng.below(10) < 6 {
                rng.below(4)
            } else {
                rng.below(31)
            };
            let (y, m, d) = civil_from_days(day + stay as i64);
            push_date(out, y, m, d);
            out.push(b',');
            out.extend_from_slice(Self::WARDS[rng.below(Self::WARDS.len() as u64) as usize]);
            push_digits(out, 1 + rng.below(20), 2);
            out.push(b',');
            // Mostly a main diagnosis alone, sometimes up to three more.
            let codes = match rng.below(10) {
                0..4 => 1,
                4..7 => 2,
                7..9 => 3,
                _ => 4,
            };
            push_icd10(out, rng, codes);
            out.push(b',');
            let letters = rng.next();
            for shift in [0, 8, 16] {
                out.push(b'A' + ((letters >> shift) % 26) as u8);
            }
            push_digits(out, (letters >> 32) % 100, 2);
            out.push(b'\n');
        }
        count
    }
}

/// `--extract-to DIR`: the extract as files, for the CLI to seal.
fn write_extract(options: &Options, dir: &Path) -> Result<()> {
    let started = Instant::now();
    let register = dir.join("register");
    fs::create_dir_all(&register)?;
    let create = |path: &Path| -> Result<BufWriter<File>> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|err| format!("cannot create {}: {err}", path.display()))?;
        Ok(BufWriter::with_capacity(BLOCK, file))
    };
    let persons_path = register.join("persons.csv");
    let episodes_path = register.join("episodes.csv");
    let mut persons_out = create(&persons_path)?;
    let mut episodes_out = create(&episodes_path)?;

    let mut persons = Extract::new(options.seed, options.records);
    let mut episodes = Episodes::new(options.seed);
    persons_out.write_all(Extract::HEADER)?;
    episodes_out.write_all(Episodes::HEADER)?;
    persons.header_done = true;
    let mut line = Vec::with_capacity(5 * Episodes::MAX_RECORD_LEN);
    while persons.written < persons.records {
        line.clear();
        let person = persons.record(&mut line);
        persons.written += 1;
        persons_out.write_all(&line)?;
        line.clear();
        episodes.for_person(&person, &mut line);
        episodes_out.write_all(&line)?;
    }
    for (out, path) in [(persons_out, &persons_path), (episodes_out, &episodes_path)] {
        out.into_inner()
            .map_err(|err| format!("cannot write {}: {}", path.display(), err.error()))?;
    }

    let readme_path = dir.join("README.txt");
    let mut readme = create(&readme_path)?;
    readme.write_all(readme_text(options, episodes.written).as_bytes())?;
    readme
        .into_inner()
        .map_err(|err| format!("cannot write {}: {}", readme_path.display(), err.error()))?;

    let mut total = 0;
    for (path, rows) in [
        (&readme_path, None),
        (&persons_path, Some(persons.written)),
        (&episodes_path, Some(episodes.written)),
    ] {
        let len = fs::metadata(path)?.len();
        total += len;
        let rows = rows.map_or(String::new(), |n| format!(", {} records", group(n)));
        println!("wrote {} ({} bytes{rows})", path.display(), group(len));
    }
    println!(
        "extract: {} bytes in {} ({})",
        group(total),
        secs(started.elapsed()),
        rate(total, started.elapsed())
    );
    Ok(())
}

fn readme_text(options: &Options, episodes: u64) -> String {
    format!(
        "\
Synthetic health-register extract (kuvert examples/parcel.rs)

Every person, id, date and code in these files is made up. The same seed
and record count always give the same bytes.

  seed      {seed}
  persons   {persons}
  episodes  {episodes}

register/persons.csv: one line per person, with a header line.
  person_id       11 digits: birth date DDMMYY, a 4-digit serial, a Luhn
                  check digit (shaped like a Nordic id, valid in none)
  birth_date      YYYY-MM-DD
  sex             F or M
  municipality    3-digit code
  icd10           1 to 3 ICD-10 codes separated by ';'
  admission_date  YYYY-MM-DD, 2015-01-01 to 2023-12-31, never before birth
                  (drawn apart from episodes.csv)
  discharge_date  YYYY-MM-DD

register/episodes.csv: hospital episodes, 1 to 5 per person (3 on
average), with a header line.
  person_id       as in persons.csv
  episode_id      numbered from 1 across the file
  admission_date  YYYY-MM-DD, 2015-01-01 to 2023-12-31, never before birth;
                  a person's episodes in admission order
  discharge_date  YYYY-MM-DD
  ward            3-letter specialty and 2-digit ward number (MED07)
  icd10           1 to 4 ICD-10 codes separated by ';', the main diagnosis
                  first
  procedure       NCSP-style code: 3 letters, 2 digits
",
        seed = options.seed,
        persons = group(options.records),
        episodes = group(episodes),
    )
}

/// splitmix64 (Steele, Lea, Flood 2014): small, fast, and plenty for
/// synthetic data. Not for anything secret.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is far below
    /// anything synthetic data cares about).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn push_date(out: &mut Vec<u8>, year: i64, month: u32, day: u32) {
    push_digits(out, year as u64, 4);
    out.push(b'-');
    push_digits(out, u64::from(month), 2);
    out.push(b'-');
    push_digits(out, u64::from(day), 2);
}

/// Appends `value` as exactly `width` zero-padded decimal digits.
fn push_digits(out: &mut Vec<u8>, value: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, 0);
    put_digits(&mut out[start..], value);
}

/// Appends `value` in decimal, without padding.
fn push_decimal(out: &mut Vec<u8>, value: u64) {
    let width = value.checked_ilog10().map_or(1, |log| log as usize + 1);
    push_digits(out, value, width);
}

fn put_digits(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The Luhn check digit of ASCII digits.
fn luhn_check(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// 5282616 → "5,282,616".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn rate(bytes: u64, d: Duration) -> String {
    format!("{:.0} MB/s", bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn luhn_matches_known_number() {
        assert_eq!(luhn_check(b"7992739871"), 3);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("cd"), Ok(734_003_200));
        assert_eq!(parse_size("650MiB"), Ok(650 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("7x").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn lines_are_well_formed_and_fit_the_bound() {
        let mut extract = Extract::new(1, 20_000);
        let mut buf = Vec::new();
        extract.fill(&mut buf, usize::MAX);
        let text = String::from_utf8(buf).expect("ascii");
        let mut lines = text.lines();
        assert_eq!(
            lines.next().map(str::as_bytes),
            Some(&Extract::HEADER[..Extract::HEADER.len() - 1])
        );
        for line in lines {
            assert!(line.len() < Extract::MAX_RECORD_LEN, "{line}");
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 7, "{line}");
            assert_eq!(fields[0].len(), 11);
            assert_eq!(
                luhn_check(&fields[0].as_bytes()[..10]),
                fields[0].as_bytes()[10] - b'0'
            );
            assert!(fields[5] <= fields[6] && fields[1] <= fields[5], "{line}");
        }
    }

    #[test]
    fn episode_lines_are_well_formed_and_follow_their_person() {
        let mut persons = Extract::new(1, 20_000);
        let mut episodes = Episodes::new(1);
        let (mut person_line, mut lines) = (Vec::new(), Vec::new());
        let mut counts = [0u64; 6];
        for _ in 0..20_000 {
            person_line.clear();
            lines.clear();
            let person = persons.record(&mut person_line);
            let first_id = episodes.written + 1;
            let count = episodes.for_person(&person, &mut lines);
            counts[count as usize] += 1;
            let person_line = std::str::from_utf8(&person_line).expect("ascii");
            let person_fields: Vec<&str> = person_line.trim_end().split(',').collect();
            let text = std::str::from_utf8(&lines).expect("ascii");
            assert_eq!(text.lines().count() as u64, count);
            let mut previous_admission = "";
            for (line, id) in text.lines().zip(first_id..) {
                assert!(line.len() < Episodes::MAX_RECORD_LEN, "{line}");
                let fields: Vec<&str> = line.split(',').collect();
                assert_eq!(fields.len(), 7, "{line}");
                assert_eq!(fields[0], person_fields[0], "{line}");
                assert_eq!(fields[1], id.to_string(), "{line}");
                for date in &fields[2..4] {
                    assert_eq!(date.len(), 10, "{line}");
                    assert_eq!((&date[4..5], &date[7..8]), ("-", "-"), "{line}");
                }
                // Born before admission, admitted before discharge, and a
                // person's episodes in admission order.
                assert!(person_fields[1] <= fields[2], "{line}");
                assert!(fields[2] <= fields[3], "{line}");
                assert!(previous_admission <= fields[2], "{line}");
                previous_admission = fields[2];
                let ward = fields[4].as_bytes();
                assert_eq!(ward.len(), 5, "{line}");
                assert!(Episodes::WARDS.iter().any(|w| w[..] == ward[..3]), "{line}");
                assert!(ward[3..].iter().all(u8::is_ascii_digit), "{line}");
                let codes: Vec<&str> = fields[5].split(';').collect();
                assert!((1..=4).contains(&codes.len()), "{line}");
                for code in codes {
                    let code = code.as_bytes();
                    assert!(code.len() == 3 || (code.len() == 5 && code[3] == b'.'));
                    assert!(code[0].is_ascii_uppercase() && code[0] != b'U', "{line}");
                    assert!(code[1..3].iter().all(u8::is_ascii_digit), "{line}");
                }
                let procedure = fields[6].as_bytes();
                assert_eq!(procedure.len(), 5, "{line}");
                assert!(procedure[..3].iter().all(u8::is_ascii_uppercase), "{line}");
                assert!(procedure[3..].iter().all(u8::is_ascii_digit), "{line}");
            }
        }
        // One to five episodes a person, three on average.
        assert_eq!(counts[0], 0);
        assert!(counts[1..].iter().all(|&n| n > 3_000), "{counts:?}");
        let mean = episodes.written as f64 / 20_000.0;
        assert!((2.9..3.1).contains(&mean), "{mean}");
    }

    #[test]
    fn extract_mode_takes_no_sealing_flags() {
        let parse = |args: &[&str]| Options::parse(args.iter().map(|a| a.to_string()));
        let options = parse(&["--extract-to", "x", "--records", "10"])
            .expect("parses")
            .expect("not help");
        assert_eq!(options.extract_to, Some(PathBuf::from("x")));
        assert_eq!(options.records, 10);
        assert!(parse(&["--extract-to=x", "--volume-size", "cd"]).is_err());
        assert!(parse(&["--keep", "k", "--extract-to", "x"]).is_err());
    }
}
