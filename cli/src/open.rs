//! `kuvert open` and `kuvert list`.

use std::borrow::Cow;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use kuvert::archive::{Archive, ArchiveLimits, Entry, EntryKind, ExtractOptions, Payload};
use kuvert::{DamageMap, OpenReader, VolumeSource, escape_name};
use zeroize::Zeroizing;

use crate::cli::{ListArgs, OpenArgs};
use crate::manifest;
use crate::output::{self, TempOutput, Wiping, check_stdout, is_dash};
use crate::progress;
use crate::report::{Fail, Names, Result, chain, io_fail, json_str, rfc3339, shown};
use crate::signers::{Trusted, signature_note};
use crate::size::{grouped, human};
use crate::volumes::{Volumes, opener_requiring, warn_unauthenticated_passphrase};

pub fn open(args: &OpenArgs, quiet: bool) -> Result<()> {
    if args.salvage && args.tar {
        return Err(Fail::usage(
            "--salvage applies to extraction and streams, not --tar",
        ));
    }
    let trusted = Trusted::parse(&args.signers.signers)?;
    let volumes = Volumes::open(&args.volumes)?;
    let has_passphrase = volumes.has_passphrase();
    let (mut opener, unauthenticated) = opener_requiring(&args.keys, &trusted, &volumes)?;
    opener = opener.repair(!args.no_repair);
    let mut signature = String::new();
    if let Some(threads) = args.threads {
        opener = opener.threads(threads as usize);
    }
    let first = shown(&volumes.paths[0]);
    let total = volumes.total_len();

    output::install_interrupt_handler();
    let bar = progress::bar(quiet, Some(total), "opening");
    let (sources, names) = volumes.with_progress(&bar, "reading");
    let result = (|| {
        let reader = opener.open(sources).map_err(|err| names.fail(&err))?;
        signature = signature_note(reader.signature(), &trusted, has_passphrase);
        if unauthenticated {
            bar.suspend(warn_unauthenticated_passphrase);
        }
        for warning in reader.warnings() {
            // The passphrase notice above says it in the CLI's words.
            if !matches!(warning, kuvert::Warning::PassphraseBesidePublicKeys) {
                bar.suspend(|| eprintln!("kuvert: warning: {warning}"));
            }
        }
        if !quiet {
            bar.suspend(|| manifest::print_to_stderr(reader.manifest()));
        }
        if args.raw {
            return write_stream(reader, args, &names, quiet);
        }
        let payload =
            Payload::detect(reader, &ArchiveLimits::new()).map_err(|err| names.fail(&err))?;
        match payload {
            Payload::Stream(reader) => {
                if !args.entries.is_empty() || args.tar {
                    let flag = if args.tar { "--tar" } else { "--entry" };
                    return Err(Fail::data(format!(
                        "{first}: the set holds a single stream, not an archive ({flag} needs one)"
                    )));
                }
                write_stream(reader, args, &names, quiet)
            }
            Payload::Archive(archive) if args.tar => write_tar(archive, args, &names),
            Payload::Archive(archive) => extract(archive, args, &names, quiet),
        }
    })();
    bar.finish_and_clear();
    // Last, once everything is out: who sealed it (or that nothing proves
    // it), on standard error, never mixed into a stream on standard output.
    if result.is_ok() && !quiet {
        eprintln!("kuvert: {signature}");
    }
    result
}

/// A stream to the file DEST (through a temporary name) or standard output.
fn write_stream<S: VolumeSource + Sync>(
    mut reader: OpenReader<S>,
    args: &OpenArgs,
    names: &Names,
    quiet: bool,
) -> Result<()> {
    let damaged = match args.output.as_deref() {
        None => copy_to_stdout(&mut reader, args, names)?,
        Some(path) if is_dash(path) => copy_to_stdout(&mut reader, args, names)?,
        Some(path) => {
            let mut out = TempOutput::create(path, args.force)?;
            let damaged = copy_salvaging(&mut reader, &mut out, args.salvage, names, path)?;
            out.commit()?;
            if !quiet && damaged.0.is_empty() {
                eprintln!(
                    "kuvert: wrote {} ({} bytes)",
                    path.display(),
                    grouped(reader.len())
                );
            }
            damaged
        }
    };
    print_repairs(&reader);
    report_damaged(
        (&damaged.0, damaged.1),
        ("damaged chunk", "damaged chunks"),
        "replaced by zeros",
    )
}

/// A line on standard error per volume repaired from its parity while it
/// was read (SPEC.md §7.8), and per volume whose parity could not repair
/// it: the data was read from a repaired copy, so the medium needs
/// refreshing.
fn print_repairs<S: VolumeSource>(reader: &OpenReader<S>) {
    let repairs = reader.repairs();
    for repair in &repairs {
        let report = &repair.report;
        let lost = format!(
            "kuvert: volume {}: {} sector{} lost",
            repair.volume,
            grouped(report.sectors_lost),
            if report.sectors_lost == 1 { "" } else { "s" },
        );
        if report.sectors_unrecoverable == 0 {
            eprintln!(
                "{lost}, repaired from parity (margin {} of {})",
                report.margin.used, report.margin.of
            );
        } else {
            eprintln!(
                "{lost}, {} unrecoverable (stripe {} lost {} of {} parity sectors' worth); the rest repaired from parity",
                grouped(report.sectors_unrecoverable),
                report.margin.worst_stripe,
                report.margin.used,
                report.margin.of
            );
        }
    }
    for (volume, err) in reader.repair_failures() {
        // A partial repair was said above.
        let partial = repairs.iter().any(|repair| repair.volume == volume);
        if !partial && !matches!(err, kuvert::Error::NoParity { .. }) {
            eprintln!("kuvert: volume {volume}: not repairable from parity: {err}");
        }
    }
}

fn copy_to_stdout<S: VolumeSource + Sync>(
    reader: &mut OpenReader<S>,
    args: &OpenArgs,
    names: &Names,
) -> Result<(Vec<String>, u64)> {
    check_stdout(args.force)?;
    // `copy_to` writes about 1 MiB at a time: a BufWriter of 1 MiB would
    // copy every byte once more (a batch is 16 × 65,520 bytes, just under it).
    let mut out = io::stdout().lock();
    let damaged = copy_salvaging(reader, &mut out, args.salvage, names, Path::new("-"))?;
    out.flush().map_err(stdout_fail)?;
    Ok(damaged)
}

fn stdout_fail(err: io::Error) -> Fail {
    Fail::data(format!("cannot write to standard output: {}", chain(&err)))
}

/// Copies the whole payload; with `salvage`, the library's salvage: each
/// damaged chunk becomes zeros (offsets stay right) and is reported.
/// Returns a line per damaged run, and the number of damaged chunks.
fn copy_salvaging<S: VolumeSource + Sync, W: Write + ?Sized>(
    reader: &mut OpenReader<S>,
    out: &mut W,
    salvage: bool,
    names: &Names,
    dest: &Path,
) -> Result<(Vec<String>, u64)> {
    let copied = if salvage {
        reader.salvage_to(out)
    } else {
        reader.copy_to(out, u64::MAX).map(|_| DamageMap::new())
    };
    let damage = match copied {
        Ok(damage) => damage,
        Err(kuvert::Error::Io(err)) if is_dash(dest) => return Err(stdout_fail(err)),
        Err(kuvert::Error::Io(err)) => {
            return Err(Fail::data(format!("{}: {}", dest.display(), chain(&err))));
        }
        Err(err) => return Err(names.fail(&err)),
    };
    let mut lines: Vec<String> = damage
        .iter()
        .map(|run| {
            format!(
                "{}: plaintext bytes {}..{} are zeros",
                run,
                grouped(run.plaintext.start),
                grouped(run.plaintext.end)
            )
        })
        .collect();
    if damage.unrecorded() > 0 {
        lines.push(format!(
            "{} more damaged runs, not listed, are zeros too",
            grouped(damage.unrecorded())
        ));
    }
    Ok((lines, damage.chunk_count() + damage.unrecorded()))
}

/// Prints the damage lines and fails if there are any; `count` things
/// (chunks, entries) were damaged.
fn report_damaged(
    (damaged, count): (&[String], u64),
    what: (&str, &str),
    done: &str,
) -> Result<()> {
    if damaged.is_empty() {
        return Ok(());
    }
    for line in damaged {
        eprintln!("kuvert: {line}");
    }
    let what = if count == 1 { what.0 } else { what.1 };
    Err(Fail::data(format!(
        "salvaged what authenticated; {count} {what} {done}"
    )))
}

/// The archive's tar stream to DEST or standard output.
fn write_tar<S: VolumeSource + Sync>(
    mut archive: Archive<S>,
    args: &OpenArgs,
    names: &Names,
) -> Result<()> {
    let dest = args.output.clone().unwrap_or_else(|| PathBuf::from("-"));
    let mut tar = archive.tar_reader().map_err(|err| names.fail(&err))?;
    let result = if is_dash(&dest) {
        check_stdout(args.force)?;
        let mut out = Wiping::with_capacity(1 << 20, io::stdout().lock());
        copy_plain(&mut tar, &mut out, names, &dest).and_then(|()| out.flush().map_err(stdout_fail))
    } else {
        let mut out = TempOutput::create(&dest, args.force)?;
        copy_plain(&mut tar, &mut out, names, &dest).and_then(|()| out.commit())
    };
    drop(tar);
    print_repairs(archive.reader());
    result
}

/// `io::copy` that tells failures to read (a chunk) from failures to write.
fn copy_plain(
    reader: &mut impl Read,
    out: &mut impl Write,
    names: &Names,
    dest: &Path,
) -> Result<()> {
    // Plaintext: wiped when dropped.
    let mut buf = Zeroizing::new(vec![0u8; 1 << 20]);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(names.fail(&kuvert::Error::from_io(err))),
        };
        out.write_all(&buf[..n]).map_err(|err| {
            if is_dash(dest) {
                stdout_fail(err)
            } else {
                io_fail("cannot write", dest, &err)
            }
        })?;
    }
}

/// Extracts into the directory DEST (created if missing, and removed again
/// if extraction fails). Without `-o`, DEST is a new directory named after
/// the set, never an existing one: an archive opened in a home directory
/// cannot plant `.bashrc` there.
fn extract<S: VolumeSource + Sync>(
    mut archive: Archive<S>,
    args: &OpenArgs,
    names: &Names,
    quiet: bool,
) -> Result<()> {
    let (dest, created) = match &args.output {
        Some(dest) if is_dash(dest) => {
            return Err(Fail::usage(
                "the set holds an archive, which is extracted into a directory: give -o DIR, or \
                 --tar -o - for a tar stream on standard output",
            ));
        }
        Some(dest) => {
            let created = match fs::metadata(dest) {
                Ok(metadata) if metadata.is_dir() => false,
                Ok(_) => {
                    return Err(Fail::data(format!(
                        "{} is not a directory: the set holds an archive",
                        dest.display()
                    )));
                }
                Err(_) => {
                    fs::create_dir_all(dest).map_err(|err| io_fail("cannot create", dest, &err))?;
                    output::register_path(dest);
                    true
                }
            };
            (dest.clone(), created)
        }
        None => (create_default_dest(&args.volumes[0])?, true),
    };
    output::register_matching(
        &dest,
        format!(".kuvert-staging-{}-", std::process::id()),
        String::new(),
    );
    let cancel = Arc::new(AtomicBool::new(false));
    let options = ExtractOptions::new()
        .entries(args.entries.iter().cloned())
        .salvage(args.salvage)
        .overwrite(args.force)
        .preserve_permissions(args.preserve_permissions)
        .cancel(Arc::clone(&cancel));
    // A Ctrl-C stops the extraction between writes; the library removes its
    // staging directory and leaves DEST as it was.
    output::cooperate(cancel);
    let result = archive.extract(&dest, &options);
    output::stop_cooperating();
    print_repairs(archive.reader());
    if created {
        output::forget_path(&dest);
    }
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            if created {
                output::remove_any(&dest);
            }
            return Err(match err {
                kuvert::Error::Cancelled => Fail {
                    code: output::INTERRUPTED as u8,
                    message: format!(
                        "interrupted; nothing was extracted into {}",
                        escape_name(&dest.to_string_lossy())
                    ),
                },
                kuvert::Error::DestinationExists { path } => Fail::data(format!(
                    "{} already exists (use --force to replace it)",
                    escape_name(&path.to_string_lossy())
                )),
                kuvert::Error::Io(inner) => Fail::data(format!(
                    "extracting into {}: {}",
                    escape_name(&dest.to_string_lossy()),
                    chain(&inner)
                )),
                other => names.fail(&other),
            });
        }
    };
    let damaged: Vec<String> = report
        .damaged
        .iter()
        .map(|entry| {
            format!(
                "{}: left out, {}",
                escape_name(&entry.path),
                names.message(&entry.error)
            )
        })
        .collect();
    if !quiet && damaged.is_empty() {
        let count = report.extracted.len();
        eprintln!(
            "kuvert: extracted {count} entr{} into {}",
            if count == 1 { "y" } else { "ies" },
            escape_name(&dest.to_string_lossy())
        );
    }
    let count = damaged.len() as u64;
    report_damaged(
        (&damaged, count),
        ("damaged entry", "damaged entries"),
        "left out",
    )
}

/// The directory an archive goes to without `-o`: `./STEM` for a set named
/// `STEM.kuv` or `STEM.NNN.kuv`, created here (not beside the volumes) and
/// registered for removal on Ctrl-C. An existing path is never used.
fn create_default_dest(volume: &Path) -> Result<PathBuf> {
    let name = volume.file_name().unwrap_or_default().to_string_lossy();
    let Some(stem) = set_stem(&name) else {
        return Err(Fail::usage(format!(
            "cannot name a directory after the volume {}: give -o DIR to say where to extract",
            escape_name(&name)
        )));
    };
    let dest = PathBuf::from(stem);
    match fs::create_dir(&dest) {
        Ok(()) => {
            output::register_path(&dest);
            Ok(dest)
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(Fail::data(format!(
            "{stem} already exists: without -o an archive is extracted into a new directory \
             named after the set; give -o DIR to extract elsewhere (-o {stem} to extract into it)"
        ))),
        Err(err) => Err(io_fail("cannot create", &dest, &err)),
    }
}

/// The set's name from a volume's file name: `register.001.kuv` and
/// `register.kuv` give `register`; without `.kuv` the last extension goes.
/// `None` for names that would make a hidden, empty or unprintable
/// directory name (`.ssh.kuv` must not become `~/.ssh`).
fn set_stem(name: &str) -> Option<&str> {
    let base = match name.len().checked_sub(4) {
        Some(at) if name.is_char_boundary(at) && name[at..].eq_ignore_ascii_case(".kuv") => {
            &name[..at]
        }
        _ => name.rsplit_once('.').map_or(name, |(stem, _)| stem),
    };
    // A volume number: three or more digits.
    let stem = match base.rsplit_once('.') {
        Some((stem, number)) if number.len() >= 3 && number.bytes().all(|b| b.is_ascii_digit()) => {
            stem
        }
        _ => base,
    };
    let printable = matches!(escape_name(stem), Cow::Borrowed(_));
    (!stem.is_empty() && !stem.starts_with('.') && printable && stem.trim() == stem).then_some(stem)
}

pub fn list(args: &ListArgs, quiet: bool) -> Result<()> {
    let trusted = Trusted::parse(&args.signers.signers)?;
    let volumes = Volumes::open(&args.volumes)?;
    let has_passphrase = volumes.has_passphrase();
    let (opener, unauthenticated) = opener_requiring(&args.keys, &trusted, &volumes)?;
    let opener = opener.repair(!args.no_repair);
    let first = shown(&volumes.paths[0]);
    let bar = progress::bar(true, None, "");
    let (sources, names) = volumes.with_progress(&bar, "reading");
    let reader = opener.open(sources).map_err(|err| names.fail(&err))?;
    let signature = signature_note(reader.signature(), &trusted, has_passphrase);
    if unauthenticated {
        warn_unauthenticated_passphrase();
    }
    let manifest = reader.manifest().clone();
    if !args.json {
        manifest::print_to_stderr(&manifest);
    }
    let payload = Payload::detect(reader, &ArchiveLimits::new()).map_err(|err| names.fail(&err))?;
    // Entry names are plaintext too.
    let mut out = Wiping::with_capacity(8 << 10, io::stdout().lock());
    let written = match &payload {
        Payload::Stream(reader) => {
            if args.json {
                writeln!(
                    out,
                    "{{\"payload\":\"stream\",\"manifest\":{},\"size\":{},\"entries\":[]}}",
                    manifest::json(&manifest),
                    reader.len()
                )
            } else {
                eprintln!(
                    "kuvert: {first}: the set holds a single stream of {} ({} bytes), not an \
                     archive: no entries",
                    human(reader.len()),
                    grouped(reader.len())
                );
                Ok(())
            }
        }
        Payload::Archive(archive) if args.json => {
            write_json(&mut out, &manifest, archive.entries())
        }
        Payload::Archive(archive) if args.long => write_long(&mut out, archive.entries()),
        Payload::Archive(archive) => archive
            .entries()
            .iter()
            .try_for_each(|entry| writeln!(out, "{}", display_path(entry))),
    };
    written.and_then(|()| out.flush()).map_err(stdout_fail)?;
    print_repairs(match &payload {
        Payload::Stream(reader) => reader,
        Payload::Archive(archive) => archive.reader(),
    });
    // On standard error, also with --json: never mixed into the listing.
    if !quiet {
        eprintln!("kuvert: {signature}");
    }
    Ok(())
}

/// Directories end with `/`, as in `tar -t`; control characters are
/// escaped, as by `ls -b`.
fn display_path(entry: &Entry) -> String {
    let path = escape_name(&entry.path);
    match entry.kind {
        EntryKind::Directory => format!("{path}/"),
        _ => path.into_owned(),
    }
}

fn write_long(out: &mut impl Write, entries: &[Entry]) -> io::Result<()> {
    let width = entries
        .iter()
        .map(|e| grouped(e.size).len())
        .max()
        .unwrap_or(1);
    for entry in entries {
        let link = match (entry.kind, &entry.link) {
            (EntryKind::Symlink, Some(target)) => format!(" -> {}", escape_name(target)),
            (EntryKind::Hardlink, Some(target)) => format!(" link to {}", escape_name(target)),
            _ => String::new(),
        };
        writeln!(
            out,
            "{}  {:>width$}  {}  {}{link}",
            mode_string(entry.kind, entry.mode),
            grouped(entry.size),
            rfc3339(entry.mtime),
            display_path(entry),
        )?;
    }
    Ok(())
}

/// `drwxr-x---`, as `ls -l` shows it.
fn mode_string(kind: EntryKind, mode: u32) -> String {
    let mut text = String::with_capacity(10);
    text.push(match kind {
        EntryKind::Directory => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Hardlink => 'h',
        _ => '-',
    });
    for (shift, special, set_char) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        let exec = bits & 1 != 0;
        text.push(match (mode & special != 0, exec) {
            (true, true) => set_char,
            (true, false) => set_char.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    text
}

fn write_json(
    out: &mut impl Write,
    manifest: &kuvert::Manifest,
    entries: &[Entry],
) -> io::Result<()> {
    write!(
        out,
        "{{\"payload\":\"archive\",\"manifest\":{},\"entries\":[",
        manifest::json(manifest)
    )?;
    for (index, entry) in entries.iter().enumerate() {
        if index > 0 {
            write!(out, ",")?;
        }
        write!(
            out,
            "{{\"path\":{},\"kind\":{},\"size\":{},\"mode\":{},\"mtime\":{},\"mtime_utc\":{}",
            json_str(&entry.path),
            json_str(entry.kind.as_str()),
            entry.size,
            entry.mode,
            entry.mtime,
            json_str(&rfc3339(entry.mtime)),
        )?;
        if let Some(link) = &entry.link {
            write!(out, ",\"link\":{}", json_str(link))?;
        }
        write!(out, "}}")?;
    }
    writeln!(out, "]}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_stems_name_the_default_directory() {
        for (name, stem) in [
            ("register.001.kuv", Some("register")),
            ("register.kuv", Some("register")),
            ("x.kuv", Some("x")),
            ("REGISTER.001.KUV", Some("REGISTER")),
            ("backup.1234.kuv", Some("backup")),
            ("parcel.bin", Some("parcel")),
            ("parcel", Some("parcel")),
            ("ünï code.kuv", Some("ünï code")),
            (".kuv", None),
            (".ssh.kuv", None),
            (".bashrc.001.kuv", None),
            ("001.kuv", Some("001")),
            (".001.kuv", None),
            ("a\\b.kuv", None),
            ("a\u{1b}[2J.kuv", None),
            ("a\nb.kuv", None),
            (" .kuv", None),
            ("", None),
        ] {
            assert_eq!(set_stem(name), stem, "{name:?}");
        }
    }

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string(EntryKind::File, 0o644), "-rw-r--r--");
        assert_eq!(mode_string(EntryKind::Directory, 0o750), "drwxr-x---");
        assert_eq!(mode_string(EntryKind::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(EntryKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(EntryKind::Directory, 0o1777), "drwxrwxrwt");
    }
}
