//! `kuvert verify` (with keys) and `kuvert info` (without; with a key it
//! also shows the set's encrypted manifest).

use std::io::{self, Write};
use std::path::PathBuf;

use kuvert::{
    FileSource, Manifest, PostQuantum, Rejection, SetCheck, SetSurvey, SignedReport, VolumeInfo,
    VolumeReport,
};

use crate::cli::{InfoArgs, KeyArgs, VerifyArgs};
use crate::manifest;
use crate::progress;
use crate::report::{Fail, Names, REPAIRABLE, Result, hex, json_str, shown};
use crate::signers::Trusted;
use crate::size::grouped;
use crate::volumes::{Volumes, opener, opener_requiring, warn_unauthenticated_passphrase};

const UNAUTHENTICATED_PASSPHRASE: &str = "a passphrase is mixed with public-key recipients: \
     the set carries no proof that its sender knew the passphrase";

/// Names for messages about one volume checked alone (the library numbers
/// it input 1).
fn single_names(path: &std::path::Path, volume: Option<u32>) -> Names {
    let mut names = Names::new();
    names.push(path, volume);
    names
}

pub fn verify(args: &VerifyArgs, quiet: bool) -> Result<()> {
    crate::parity_volumes::check_parity_volumes();
    let result = verify_volumes(args, quiet);
    crate::parity_volumes::verify_verdict(result, quiet)
}

fn verify_volumes(args: &VerifyArgs, quiet: bool) -> Result<()> {
    let trusted = Trusted::parse(&args.signers.signers)?;
    let keys = &args.keys;
    let keyless = keys.identities.is_empty() && !keys.passphrase && keys.passphrase_file.is_none();
    if args.json && !(keyless && trusted.is_empty()) {
        return Err(Fail::usage(
            "--json: only for verify without a key or --signer",
        ));
    }
    if keyless {
        if trusted.is_empty() {
            return verify_without_key(args, quiet);
        }
        return verify_signed(args, &trusted, quiet);
    }
    let volumes = Volumes::open(&args.volumes)?;
    // With --signer the library checks each volume's signatures before
    // any chunk, and every chunk against the signed table too.
    let (opener, unauthenticated) = opener_requiring(&args.keys, &trusted, &volumes)?;
    // A damaged volume with parity is repaired into a scratch copy, which
    // is authenticated again: damage all of which parity repairs is exit 3.
    let opener = opener.repair(!args.no_repair);
    let paths = volumes.paths.clone();
    let claimed: Vec<Option<u32>> = volumes
        .infos
        .iter()
        .map(|info| info.as_ref().map(|info| info.volume))
        .collect();
    let bar = progress::bar(quiet, Some(volumes.total_len()), "verifying");
    let (sources, _) = volumes.with_progress(&bar, "verifying");

    let mut reports: Vec<(usize, VolumeReport)> = Vec::new();
    let mut failed = 0usize;
    let mut repairable = 0usize;
    // One unlock per set, not per volume (a passphrase costs about a second).
    let mut verifier = opener.volume_verifier();
    for (index, source) in sources.iter().enumerate() {
        let path = shown(&paths[index]);
        let names = single_names(&paths[index], claimed[index]);
        let lines = match verifier.scan(source) {
            Ok(report) => {
                let mut lines = volume_lines(&path, &report, &trusted);
                let problems = report.damage.len() + report.damage.unrecorded() as usize;
                match &report.repair {
                    Some(repair) if problems > 0 => {
                        repairable += problems;
                        lines.push(repairable_line(&path, repair));
                    }
                    _ => failed += problems,
                }
                reports.push((index, report));
                lines
            }
            Err(err) => {
                failed += 1;
                vec![format!("{path}: FAILED: {}", names.message(&err))]
            }
        };
        // Each volume's verdict as soon as it is known, above the bar. A
        // closed standard output (`| head`) does not stop the check: the
        // exit status still says whether the volumes are intact.
        bar.suspend(|| {
            let mut out = io::stdout().lock();
            for line in &lines {
                let _ = writeln!(out, "{line}");
            }
        });
    }
    bar.finish_and_clear();
    if unauthenticated && !reports.is_empty() {
        warn_unauthenticated_passphrase();
    }

    let unchecked: Vec<u32> = (0..paths.len())
        .filter(|index| !reports.iter().any(|(i, _)| i == index))
        .filter_map(|index| claimed[index])
        .collect();
    let set = set_lines(&paths, &reports, &unchecked);
    let mut out = io::stdout().lock();
    for line in &set.lines {
        let _ = writeln!(out, "{line}");
    }
    if let Some((_, report)) = reports.first()
        && let kuvert::SignatureStatus::NotChecked { signers } = &report.signature
    {
        let _ = writeln!(
            out,
            "signed by {} — not checked: pass --signer to check it",
            crate::signers::fingerprints(signers)
        );
    }
    let _ = out.flush();
    failed += set.problems;
    if failed > 0 {
        return Err(Fail::data(format!(
            "{failed} problem{} found: the volumes are not intact",
            if failed == 1 { "" } else { "s" }
        )));
    }
    if let Some(incomplete) = set.incomplete
        && !args.allow_incomplete
    {
        return Err(Fail::data(format!(
            "the set is incomplete: {incomplete} (--allow-incomplete checks volumes alone)"
        )));
    }
    if repairable > 0 {
        return Err(Fail {
            code: REPAIRABLE,
            message: format!(
                "{repairable} problem{} found, all repairable from parity: the data is whole; \
                 refresh the medium (kuvert repair)",
                if repairable == 1 { "" } else { "s" }
            ),
        });
    }
    Ok(())
}

/// For a damaged volume whose parity repairs all of it: what was lost and
/// the margin left (the repaired copy authenticated in full).
fn repairable_line(path: &str, repair: &kuvert::RepairReport) -> String {
    format!(
        "{path}: parity: {} sector{} lost, all repairable (margin {} of {}): the data is whole",
        grouped(repair.sectors_lost),
        if repair.sectors_lost == 1 { "" } else { "s" },
        repair.margin.used,
        repair.margin.of
    )
}

/// Shown after a check without a key: what it proves and what it does not.
const KEYLESS_NOTE: &str = "checked without a key against each volume's trailer digests: \
     a match shows no damage since sealing, not who sealed the volumes \
     (anyone can rewrite an unsigned trailer); -i or -p also authenticates them";

/// `kuvert verify` with no key: every volume's header structure, trailer,
/// header digest and chunk digests (SPEC.md §7.7), each volume alone.
fn verify_without_key(args: &VerifyArgs, quiet: bool) -> Result<()> {
    let volumes = Volumes::open(&args.volumes)?;
    let paths = volumes.paths.clone();
    let signers: Vec<kuvert::SignerKey> = volumes
        .infos
        .iter()
        .flatten()
        .next()
        .map(|info| info.signers.clone())
        .unwrap_or_default();
    let bar = progress::bar(quiet, Some(volumes.total_len()), "verifying");
    let (sources, _) = volumes.with_progress(&bar, "verifying");
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut verdicts: Vec<KeylessVerdict> = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let path = shown(&paths[index]);
        let names = single_names(&paths[index], None);
        let mut verdict = KeylessVerdict {
            path: paths[index].display().to_string(),
            volume: None,
            lines: Vec::new(),
            problems: Vec::new(),
            unrecorded: 0,
            parity: None,
        };
        match kuvert::scan_digests(source, threads) {
            Ok(report) if report.is_intact() => {
                verdict.volume = Some(report.volume);
                verdict.lines.push(format!(
                    "{path}: volume {}: digests match ({} chunks; b3sum of bytes {}..{}: {})",
                    report.volume,
                    grouped(report.chunks),
                    report.chunk_start,
                    report.chunk_end,
                    hex(&report.chunk_region_blake3)
                ));
            }
            Ok(report) => {
                verdict.volume = Some(report.volume);
                for damage in report.damage.iter() {
                    let mut unnamed = damage.clone();
                    unnamed.at.name = None;
                    verdict.problems.push(unnamed.to_string());
                }
                verdict.unrecorded = report.damage.unrecorded() as usize;
            }
            Err(err) => verdict.problems.push(names.message(&err)),
        }
        verdict.lines.extend(
            verdict
                .problems
                .iter()
                .map(|p| format!("{path}: FAILED: {p}")),
        );
        if !verdict.problems.is_empty() {
            verdict.parity = parity_check(source);
            verdict.lines.extend(parity_lines(&path, &verdict.parity));
        }
        if !args.json {
            bar.suspend(|| {
                let mut out = io::stdout().lock();
                for line in &verdict.lines {
                    let _ = writeln!(out, "{line}");
                }
            });
        }
        verdicts.push(verdict);
    }
    bar.finish_and_clear();
    let mut out = io::stdout().lock();
    if args.json {
        let _ = writeln!(out, "{}", keyless_json(&verdicts, &signers));
    } else {
        if !signers.is_empty() {
            let _ = writeln!(
                out,
                "signed by {} — not checked: pass --signer to check it",
                crate::signers::fingerprints(&signers)
            );
        }
        let _ = writeln!(out, "{KEYLESS_NOTE}");
    }
    let _ = out.flush();
    let failed: usize = verdicts
        .iter()
        .map(|v| v.problems.len() + v.unrecorded)
        .sum();
    let whole = verdicts.iter().all(KeylessVerdict::is_whole);
    if failed > 0 {
        let message = format!(
            "{failed} problem{} found: the volumes are not intact",
            if failed == 1 { "" } else { "s" }
        );
        if whole {
            return Err(Fail::repairable(format!(
                "{message}, and all of it is repairable from parity (kuvert repair -o DIR)"
            )));
        }
        return Err(Fail::data(message));
    }
    Ok(())
}

/// Cells of the volume map `kuvert verify` draws for a damaged volume.
const MAP_CELLS: usize = 64;

/// One volume's keyless verdict: what the digests say and, if damaged,
/// what its parity can do.
struct KeylessVerdict {
    path: String,
    volume: Option<u32>,
    lines: Vec<String>,
    problems: Vec<String>,
    /// Damaged runs beyond the damage map's limit, not in `problems`.
    unrecorded: usize,
    /// `None` when the volume is intact or carries no parity.
    parity: Option<std::result::Result<kuvert::RepairReport, String>>,
}

impl KeylessVerdict {
    /// Intact, or damaged and all of it repairable from parity.
    fn is_whole(&self) -> bool {
        self.problems.is_empty() || matches!(&self.parity, Some(Ok(report)) if report.is_whole())
    }
}

/// For a damaged volume with parity: what a best-effort repair restores,
/// into a scratch file under the temporary directory, removed after
/// (SPEC.md §16.10); `None` without parity.
fn parity_check<S: kuvert::VolumeSource + ?Sized>(
    source: &S,
) -> Option<std::result::Result<kuvert::RepairReport, String>> {
    let scratch = std::env::temp_dir().join(format!(
        ".kuvert-verify-{}-{}",
        std::process::id(),
        SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut file = match std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&scratch)
    {
        Ok(file) => file,
        Err(err) => {
            return Some(Err(format!(
                "cannot create scratch file {}: {err}",
                shown(&scratch)
            )));
        }
    };
    let result = kuvert::repair_volume_best_effort(source, &mut file);
    drop(file);
    let _ = std::fs::remove_file(&scratch);
    match result {
        Ok(report) => Some(Ok(report)),
        Err(kuvert::Error::NoParity { .. }) => None,
        Err(err) => Some(Err(crate::report::chain(&err))),
    }
}

/// Numbers the scratch files of one run.
static SCRATCH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The parity line and the map line of a damaged volume.
fn parity_lines(
    path: &str,
    parity: &Option<std::result::Result<kuvert::RepairReport, String>>,
) -> Vec<String> {
    match parity {
        None => Vec::new(),
        Some(Err(err)) => vec![format!("{path}: parity: not repairable: {err}")],
        Some(Ok(report)) => {
            let verdict = if report.is_whole() {
                "kuvert repair -o DIR writes the repaired copy"
            } else {
                "not all of it repairable"
            };
            vec![
                format!(
                    "{path}: parity: {} sectors lost, {} repairable, {} unrecoverable, margin {} of {} (worst stripe {}; {verdict})",
                    report.sectors_lost,
                    report.sectors_repaired,
                    report.sectors_unrecoverable,
                    report.margin.used,
                    report.margin.of,
                    report.margin.worst_stripe
                ),
                format!(
                    "{path}: map [{}] (. good, r repaired, X unrecoverable)",
                    map_cells(report)
                ),
            ]
        }
    }
}

/// The volume's 64-cell map: `.` good, `r` repaired, `X` unrecoverable.
fn map_cells(report: &kuvert::RepairReport) -> String {
    report
        .map
        .cells(MAP_CELLS)
        .into_iter()
        .map(|cell| match cell {
            kuvert::SectorState::Good => '.',
            kuvert::SectorState::Repaired => 'r',
            kuvert::SectorState::Unrecoverable => 'X',
        })
        .collect()
}

/// `kuvert verify --json` without a key: every volume's verdict.
fn keyless_json(verdicts: &[KeylessVerdict], signers: &[kuvert::SignerKey]) -> String {
    let volumes: Vec<String> = verdicts
        .iter()
        .map(|verdict| {
            let problems: Vec<String> = verdict.problems.iter().map(|p| json_str(p)).collect();
            let parity = match &verdict.parity {
                None => "null".to_owned(),
                Some(Err(err)) => format!("{{\"error\":{}}}", json_str(err)),
                Some(Ok(report)) => format!(
                    "{{\"sectors\":{},\"sectors_lost\":{},\"sectors_repaired\":{},\"sectors_unrecoverable\":{},\"margin\":{{\"used\":{},\"of\":{},\"worst_stripe\":{}}},\"map\":{}}}",
                    report.map.sectors(),
                    report.sectors_lost,
                    report.sectors_repaired,
                    report.sectors_unrecoverable,
                    report.margin.used,
                    report.margin.of,
                    report.margin.worst_stripe,
                    json_str(&map_cells(report))
                ),
            };
            let state = if verdict.problems.is_empty() {
                "intact"
            } else if verdict.is_whole() {
                "repairable"
            } else {
                "damaged"
            };
            format!(
                "{{\"path\":{},\"volume\":{},\"state\":\"{state}\",\"problems\":[{}],\"parity\":{parity}}}",
                json_str(&verdict.path),
                verdict
                    .volume
                    .map_or("null".to_owned(), |volume| volume.to_string()),
                problems.join(",")
            )
        })
        .collect();
    format!(
        "{{\"volumes\":[{}],\"signers\":[{}]}}",
        volumes.join(","),
        signers_json(signers)
    )
}

/// Shown after `verify --signer`: what was checked, and with what.
const SIGNED_NOTE: &str = "checked without a decryption key: each volume's signature by a \
     trusted key, its statement and every chunk digest";

/// `kuvert verify --signer`: each volume's signature, statement and chunk
/// digests without a decryption key (SPEC.md §7.7, §14), then whether the
/// volumes given make the whole signed set.
fn verify_signed(args: &VerifyArgs, trusted: &Trusted, quiet: bool) -> Result<()> {
    let volumes = Volumes::open(&args.volumes)?;
    let paths = volumes.paths.clone();
    let bar = progress::bar(quiet, Some(volumes.total_len()), "checking signatures");
    let (sources, _) = volumes.with_progress(&bar, "checking signatures");
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut failed = 0usize;
    let mut reports: Vec<(usize, SignedReport)> = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let path = shown(&paths[index]);
        let line = match kuvert::verify_signed_volume(source, trusted.signers(), threads) {
            Ok(report) => {
                let last = if report.last().is_some() {
                    ", last of its set"
                } else {
                    ""
                };
                let line = format!(
                    "{path}: volume {}: signed by {} (checked), digests match ({} chunk{}{last})",
                    report.volume(),
                    trusted.name(&report.signer),
                    grouped(report.digests.chunks),
                    if report.digests.chunks == 1 { "" } else { "s" },
                );
                reports.push((index, report));
                line
            }
            Err(err) => {
                failed += 1;
                format!(
                    "{path}: FAILED: {}",
                    single_names(&paths[index], None).message(&err)
                )
            }
        };
        bar.suspend(|| {
            let _ = writeln!(io::stdout().lock(), "{line}");
        });
    }
    bar.finish_and_clear();
    let set = signed_set_lines(&paths, &reports, trusted);
    let mut out = io::stdout().lock();
    for line in &set.lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{SIGNED_NOTE}");
    let _ = out.flush();
    failed += set.problems;
    if failed > 0 {
        return Err(Fail::data(format!(
            "{failed} problem{} found: the volumes are not as their signer sealed them",
            if failed == 1 { "" } else { "s" }
        )));
    }
    if let Some(incomplete) = set.incomplete
        && !args.allow_incomplete
    {
        return Err(Fail::data(format!(
            "the set is incomplete: {incomplete} (--allow-incomplete checks volumes alone)"
        )));
    }
    Ok(())
}

/// Whether the signed volumes checked make one whole set: one set id,
/// each number once, and every number up to the one the signer sealed as
/// the last (its statement's `# last volume` line).
fn signed_set_lines(
    paths: &[PathBuf],
    reports: &[(usize, SignedReport)],
    trusted: &Trusted,
) -> SetLines {
    let mut lines = SetLines {
        lines: Vec::new(),
        problems: 0,
        incomplete: None,
    };
    let Some((_, first)) = reports.first() else {
        lines.incomplete = Some("no volume could be checked".into());
        return lines;
    };
    let set_id = first.statement.set_id;
    let mut present: Vec<(u32, usize)> = Vec::new();
    let mut last: Option<u32> = None;
    for (index, report) in reports {
        let path = shown(&paths[*index]);
        let volume = report.volume();
        if report.statement.set_id != set_id {
            lines.problems += 1;
            lines
                .lines
                .push(format!("{path} (volume {volume}) belongs to another set"));
            continue;
        }
        if let Some(&(_, other)) = present.iter().find(|(v, _)| *v == volume) {
            lines.problems += 1;
            lines.lines.push(format!(
                "{} and {path} are both volume {volume}",
                shown(&paths[other])
            ));
            continue;
        }
        present.push((volume, *index));
        if let Some(end) = report.last() {
            last = Some(end.volumes);
        }
    }
    let id = hex(&set_id);
    let Some(count) = last else {
        let highest = present.iter().map(|(v, _)| *v).max().unwrap_or(0);
        let gap = format!(
            "the volumes after volume {highest} are missing (none given was signed as the last)"
        );
        lines.lines.push(format!("set {id}: incomplete: {gap}"));
        lines.incomplete = Some(gap);
        return lines;
    };
    let missing: Vec<String> = (1..=count)
        .filter(|v| !present.iter().any(|(p, _)| p == v))
        .map(|v| v.to_string())
        .collect();
    if missing.is_empty() {
        lines.lines.push(format!(
            "set {id}: complete, {count} volume{} signed by {}",
            if count == 1 { "" } else { "s" },
            trusted.name(&first.signer)
        ));
    } else {
        let gap = format!(
            "volume{} {} missing",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        );
        lines.lines.push(format!("set {id}: incomplete: {gap}"));
        lines.incomplete = Some(gap);
    }
    lines
}

/// A volume's verdict: intact, or every damaged run on a line of its own.
fn volume_lines(path: &str, report: &VolumeReport, trusted: &Trusted) -> Vec<String> {
    if report.damage.is_empty() {
        let last = if report.last_in_set {
            ", last of its set"
        } else {
            ""
        };
        let signed = match &report.signature {
            kuvert::SignatureStatus::Checked { signer, .. } => {
                format!(", signed by {} (checked)", trusted.name(signer))
            }
            _ => String::new(),
        };
        return vec![format!(
            "{path}: volume {}: intact{last} ({} chunk{}, {} bytes of plaintext){signed}",
            report.volume,
            grouped(report.chunks),
            if report.chunks == 1 { "" } else { "s" },
            grouped(report.plaintext_len)
        )];
    }
    let mut lines: Vec<String> = report
        .damage
        .iter()
        .map(|damage| {
            // The line starts with the file's name already.
            let mut unnamed = damage.clone();
            unnamed.at.name = None;
            format!("{path}: FAILED: {unnamed}")
        })
        .collect();
    let more = report.damage.unrecorded();
    if more > 0 {
        lines.push(format!(
            "{path}: FAILED: {} more damaged runs, not listed",
            grouped(more)
        ));
    }
    lines
}

struct SetLines {
    lines: Vec<String>,
    /// Foreign and duplicate volumes.
    problems: usize,
    /// What is missing or damaged, if anything.
    incomplete: Option<String>,
}

/// Says whether the volumes checked make one whole set (the library's
/// [`SetCheck`]). `unchecked` holds the numbers that volumes which could
/// not be checked at all claim.
fn set_lines(paths: &[PathBuf], reports: &[(usize, VolumeReport)], unchecked: &[u32]) -> SetLines {
    let mut lines = SetLines {
        lines: Vec::new(),
        problems: 0,
        incomplete: None,
    };
    let Some(check) = SetCheck::of(reports.iter().map(|(_, report)| report)) else {
        lines.incomplete = Some("no volume could be checked".into());
        return lines;
    };
    let path_of = |index: usize| shown(&paths[reports[index].0]);
    for rejected in &check.rejected {
        let path = path_of(rejected.index);
        let volume = rejected.volume;
        lines.problems += 1;
        lines.lines.push(match rejected.reason {
            Rejection::OtherSet => format!("{path} (volume {volume}) belongs to another set"),
            Rejection::OtherSetHeader => format!(
                "{path} (volume {volume}) has the set id of the others but a different set \
                 header (recipients or geometry): it does not open with them"
            ),
            Rejection::Duplicate { first } => {
                format!("{} and {path} are both volume {volume}", path_of(first))
            }
            _ => format!("{path} (volume {volume}) is not part of the set"),
        });
    }
    // A volume whose damage parity repairs in full is whole (exit 3).
    let repairable: Vec<u32> = reports
        .iter()
        .filter(|(_, report)| report.repair.is_some())
        .map(|(_, report)| report.volume)
        .collect();
    let mut not_intact: Vec<u32> = check
        .damaged
        .iter()
        .copied()
        .filter(|volume| !repairable.contains(volume))
        .collect();
    let mut missing = Vec::new();
    for &volume in &check.missing {
        if unchecked.contains(&volume) {
            not_intact.push(volume);
        } else {
            missing.push(volume);
        }
    }
    not_intact.sort_unstable();
    let mut gaps = Vec::new();
    for (list, what) in [(not_intact, "not intact"), (missing, "missing")] {
        if !list.is_empty() {
            let list: Vec<String> = list.iter().map(u32::to_string).collect();
            gaps.push(format!(
                "volume{} {} {what}",
                if list.len() == 1 { "" } else { "s" },
                list.join(", ")
            ));
        }
    }
    if let Some(highest) = check.end_missing {
        gaps.push(if check.damaged.contains(&highest) {
            format!("volume {highest} is damaged at its end: volumes after it may be missing")
        } else {
            format!(
                "the volumes after volume {highest} are missing (it is not the last of its set)"
            )
        });
    }
    let id = hex(&check.set_id);
    let count = check.present.len();
    if gaps.is_empty() {
        lines.lines.push(format!(
            "set {id}: complete, {count} volume{} intact",
            if count == 1 { "" } else { "s" }
        ));
    } else {
        let gaps = gaps.join("; ");
        lines.lines.push(format!("set {id}: incomplete: {gaps}"));
        lines.incomplete = Some(gaps);
    }
    lines
}

pub fn info(args: &InfoArgs) -> Result<()> {
    let mut infos: Vec<(PathBuf, VolumeInfo)> = Vec::new();
    let mut errors: Vec<(PathBuf, String)> = Vec::new();
    for path in &args.volumes {
        let result = FileSource::open(path)
            .map_err(|err| crate::volumes::open_fail(path, &err).message)
            .and_then(|source| {
                kuvert::inspect(&source).map_err(|err| single_names(path, None).message(&err))
            });
        match result {
            Ok(info) => infos.push((path.clone(), info)),
            Err(message) => errors.push((path.clone(), message)),
        }
    }
    let sets = SetSurvey::of(infos.iter().map(|(_, info)| info));
    // Only with a key: the manifest is encrypted.
    let opened = if has_key(&args.keys) && errors.is_empty() {
        Some(open_manifest(args)?)
    } else {
        None
    };
    let mut out = io::stdout().lock();
    let written = if args.json {
        write_info_json(&mut out, &infos, &errors, &sets, opened.as_ref())
    } else {
        write_info_text(&mut out, &infos, &sets, opened.as_ref())
    };
    written
        .and_then(|()| out.flush())
        .map_err(|err| Fail::data(format!("cannot write to standard output: {err}")))?;
    if let Some((_, message)) = errors.first() {
        if !args.json {
            for (_, message) in &errors {
                eprintln!("kuvert: {message}");
            }
        }
        if errors.len() == 1 {
            return Err(Fail::data(message.clone()));
        }
        return Err(Fail::data(format!(
            "{} volumes could not be read",
            errors.len()
        )));
    }
    Ok(())
}

/// Whether `info` was given a key: then it opens the set.
fn has_key(keys: &KeyArgs) -> bool {
    !keys.identities.is_empty() || keys.passphrase || keys.passphrase_file.is_some()
}

/// Opens the volumes of `info` as one set and returns its manifest.
fn open_manifest(args: &InfoArgs) -> Result<Manifest> {
    let volumes = Volumes::open(&args.volumes)?;
    let (opener, unauthenticated) = opener(&args.keys, &volumes)?;
    let bar = progress::bar(true, None, "");
    let (sources, names) = volumes.with_progress(&bar, "reading");
    let reader = opener.open(sources).map_err(|err| names.fail(&err))?;
    if unauthenticated {
        warn_unauthenticated_passphrase();
    }
    Ok(reader.manifest().clone())
}

fn write_info_text(
    out: &mut impl Write,
    infos: &[(PathBuf, VolumeInfo)],
    sets: &[SetSurvey],
    opened: Option<&Manifest>,
) -> io::Result<()> {
    for (path, info) in infos {
        writeln!(out, "{}", shown(path))?;
        writeln!(out, "  format version  {}", info.version)?;
        writeln!(out, "  set id          {}", hex(&info.set_id))?;
        let shape = if !info.is_split() {
            "not split".to_owned()
        } else if info.is_full() {
            format!(
                "full ({} chunks; more volumes may follow)",
                grouped(info.chunks_per_volume)
            )
        } else {
            "short: the last of its set".to_owned()
        };
        writeln!(out, "  volume          {} ({shape})", info.volume)?;
        writeln!(out, "  size            {} bytes", grouped(info.len))?;
        writeln!(
            out,
            "  chunk size      {} bytes",
            grouped(info.chunk_size as u64)
        )?;
        writeln!(out, "  recipients      {}", info.stanza_types.join(", "))?;
        let digests = match (info.digests, info.chunk_end) {
            (false, _) => "none (sealed with --no-digests: only a key can check it)".to_owned(),
            (true, Some(end)) => format!(
                "chunks end at byte {}; `kuvert verify` without a key checks them",
                grouped(end)
            ),
            (true, None) => "announced, but the trailer does not read: damaged or cut".to_owned(),
        };
        writeln!(out, "  digests         {digests}")?;
        if info.signers.is_empty() {
            let passphrase = if info.stanza_types.iter().any(|t| t == "argon2id") {
                "; anyone who knows the passphrase could have sealed it"
            } else {
                ""
            };
            writeln!(
                out,
                "  signed          no: nothing proves who sealed it{passphrase}"
            )?;
        }
        for signer in &info.signers {
            writeln!(
                out,
                "  signed by       {} ({})",
                signer.fingerprint(),
                signer
            )?;
        }
        writeln!(
            out,
            "  post-quantum    {}",
            post_quantum_text(&info.post_quantum())
        )?;
        if info.passphrase_is_unauthenticated() {
            writeln!(out, "  warning         {UNAUTHENTICATED_PASSPHRASE}")?;
        }
    }
    for set in sets {
        let id = hex(&set.set_id);
        if !set.split {
            writeln!(out, "set {id}: a single volume")?;
            continue;
        }
        let present: Vec<String> = set.present.iter().map(u32::to_string).collect();
        let mut line = format!("set {id}: volumes given: {}", present.join(", "));
        if !set.missing.is_empty() {
            let missing: Vec<String> = set.missing.iter().map(u32::to_string).collect();
            line.push_str(&format!("; missing: {}", missing.join(", ")));
        }
        if set.highest_is_full {
            line.push_str(&format!(
                "; volume {} is full, so more volumes may follow",
                set.highest
            ));
        } else {
            line.push_str(&format!(
                "; volume {} is short, so it is the last",
                set.highest
            ));
        }
        if set.complete() == Some(true) {
            line.push_str(": all volumes are here");
        }
        writeln!(out, "{line}")?;
    }
    if infos.iter().any(|(_, info)| !info.signers.is_empty()) {
        writeln!(
            out,
            "(signatures are not checked here: `kuvert verify --signer KEY` checks them, \
             without a decryption key)"
        )?;
    }
    let Some(manifest) = opened else {
        return writeln!(
            out,
            "(headers are not authenticated without a key: `kuvert verify` checks them)"
        );
    };
    writeln!(out, "manifest (opened with the key; encrypted in the set)")?;
    let padding = manifest.padding().map_or("none", |rule| rule.name());
    let mut lines = manifest::text_lines(manifest);
    lines.push(("padding", padding.to_owned()));
    for (name, value) in lines {
        writeln!(out, "  {name:<16}{value}")?;
    }
    Ok(())
}

/// `kuvert info`'s line on whether the set resists a quantum computer.
fn post_quantum_text(status: &PostQuantum) -> String {
    match status {
        PostQuantum::Protected => "yes: every recipient is post-quantum or a passphrase".into(),
        PostQuantum::Classical { types } => format!(
            "no: {} {} classical, a quantum computer that breaks it opens the set",
            shown_types(types),
            if types.len() == 1 { "is" } else { "are" }
        ),
        PostQuantum::Unknown { types } => format!(
            "unknown: {} {} not known to kuvert",
            shown_types(types),
            if types.len() == 1 { "is" } else { "are" }
        ),
        _ => "unknown".into(),
    }
}

/// `kuvert info --json`'s word for the same.
fn post_quantum_word(status: &PostQuantum) -> &'static str {
    match status {
        PostQuantum::Protected => "protected",
        PostQuantum::Classical { .. } => "classical",
        _ => "unknown",
    }
}

/// Stanza types as the header gives them, escaped: they are untrusted.
fn shown_types(types: &[String]) -> String {
    types
        .iter()
        .map(|kind| kuvert::escape_name(kind).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A signer block as JSON: each key's fingerprint and both public forms.
fn signers_json(signers: &[kuvert::SignerKey]) -> String {
    signers
        .iter()
        .map(|key| {
            format!(
                "{{\"fingerprint\":{},\"key\":{},\"openssh\":{}}}",
                json_str(&key.fingerprint()),
                json_str(&key.to_string()),
                json_str(&key.to_openssh(""))
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn write_info_json(
    out: &mut impl Write,
    infos: &[(PathBuf, VolumeInfo)],
    errors: &[(PathBuf, String)],
    sets: &[SetSurvey],
    opened: Option<&Manifest>,
) -> io::Result<()> {
    let numbers = |list: &[u32]| {
        list.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    write!(out, "{{\"volumes\":[")?;
    for (index, (path, info)) in infos.iter().enumerate() {
        if index > 0 {
            write!(out, ",")?;
        }
        let types: Vec<String> = info.stanza_types.iter().map(|t| json_str(t)).collect();
        write!(
            out,
            "{{\"file\":{},\"format_version\":{},\"set_id\":\"{}\",\"volume\":{},\
             \"size\":{},\"chunk_size\":{},\"header_len\":{},\"split\":{},\
             \"chunks_per_volume\":{},\"full\":{},\"recipients\":[{}],\
             \"passphrase_is_unauthenticated\":{},\"post_quantum\":\"{}\",\
             \"digests\":{},\"chunk_end\":{},\"signed\":{},\"signers\":[{}]}}",
            json_str(&path.display().to_string()),
            info.version,
            hex(&info.set_id),
            info.volume,
            info.len,
            info.chunk_size,
            info.header_len,
            info.is_split(),
            info.chunks_per_volume,
            info.is_full(),
            types.join(","),
            info.passphrase_is_unauthenticated(),
            post_quantum_word(&info.post_quantum()),
            info.digests,
            info.chunk_end
                .map_or_else(|| "null".to_owned(), |end| end.to_string()),
            !info.signers.is_empty(),
            signers_json(&info.signers),
        )?;
    }
    write!(out, "],\"sets\":[")?;
    for (index, set) in sets.iter().enumerate() {
        if index > 0 {
            write!(out, ",")?;
        }
        let complete = match set.complete() {
            Some(value) => value.to_string(),
            None => "null".into(),
        };
        write!(
            out,
            "{{\"set_id\":\"{}\",\"split\":{},\"present\":[{}],\"missing\":[{}],\
             \"highest\":{},\"highest_is_full\":{},\"complete\":{complete}}}",
            hex(&set.set_id),
            set.split,
            numbers(&set.present),
            numbers(&set.missing),
            set.highest,
            set.highest_is_full,
        )?;
    }
    write!(out, "],\"errors\":[")?;
    for (index, (path, message)) in errors.iter().enumerate() {
        if index > 0 {
            write!(out, ",")?;
        }
        write!(
            out,
            "{{\"file\":{},\"error\":{}}}",
            json_str(&path.display().to_string()),
            json_str(message)
        )?;
    }
    write!(out, "]")?;
    if let Some(manifest) = opened {
        write!(out, ",\"manifest\":{}", manifest::json(manifest))?;
    }
    writeln!(out, "}}")
}
