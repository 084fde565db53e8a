//! `kuvert seal`: files and directories as an archive, or standard input as
//! a stream, onto volume files or standard output.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kuvert::{FileSink, Sealer, VolumeSigner, VolumeSink, WriteSink};

use crate::cli::SealArgs;
use crate::keys::{self, PassphraseSource};
use crate::output::{self, check_stdout, is_dash};
use crate::progress::{self, ProgressSink};
use crate::report::{Fail, Names, Result, chain, io_fail};
use crate::signers;
use crate::size::{self, grouped, human};

/// One top-level input of an archive.
struct Input {
    disk: PathBuf,
    name: String,
}

/// Parity of the disc presets unless `--parity` says otherwise: the least
/// dvdisaster recommends (20–30 %), 16.9 % of the disc.
const DEFAULT_DISC_PARITY: u16 = 20;

pub fn seal(args: &SealArgs, quiet: bool) -> Result<()> {
    let from_stdin = args.inputs.iter().any(|p| is_dash(p));
    if from_stdin && args.inputs.len() > 1 {
        return Err(Fail::usage(
            "`-` (standard input, sealed as a stream) must be the only INPUT",
        ));
    }
    let to_stdout = is_dash(&args.output);
    if to_stdout && args.volume_size.is_some() {
        return Err(Fail::usage(
            "-o - writes one unsplit container: drop --volume-size, or write to a file",
        ));
    }
    let stdin_users = usize::from(from_stdin)
        + args.recipients_files.iter().filter(|p| is_dash(p)).count()
        + usize::from(args.passphrase_file.as_deref().is_some_and(is_dash));
    if stdin_users > 1 {
        return Err(Fail::usage("standard input (`-`) can be read only once"));
    }
    if to_stdout {
        check_stdout(args.force)?;
    }
    if args.sig_files && to_stdout {
        return Err(Fail::usage(
            "--sig-files writes files beside the volumes: give -o FILE, not -o -",
        ));
    }

    let recipients = keys::recipients(&args.recipients, &args.recipients_files)?;
    let passphrase_source = match &args.passphrase_file {
        Some(path) => Some(PassphraseSource::File(path.clone())),
        None => args.passphrase.then(keys::default_passphrase_source),
    };
    if recipients.is_empty() && passphrase_source.is_none() {
        return Err(Fail::usage(
            "no recipients: give -r RECIPIENT, -R RECIPIENTS_FILE, -p or --passphrase-file FILE",
        ));
    }

    let signers = signers::seal_signers(args)?;
    if args.sig_files && signers.is_empty() {
        return Err(Fail::usage(
            "--sig-files writes the signatures of --sign: give --sign FILE",
        ));
    }
    if !signers.is_empty() && args.no_digests {
        return Err(Fail::usage(
            "a signed set needs its volume trailers (the signatures are in them): drop \
             --no-digests",
        ));
    }

    let inputs = if from_stdin {
        Vec::new()
    } else {
        plan_inputs(&args.inputs, &args.output, to_stdout)?
    };
    if !to_stdout {
        check_outputs(&args.output, args.force)?;
    }

    // Ask for the passphrase only once everything else is known to be fine.
    let passphrase = passphrase_source
        .as_ref()
        .map(keys::new_passphrase)
        .transpose()?;
    if passphrase.is_some() && !recipients.is_empty() {
        eprintln!(
            "kuvert: warning: a passphrase beside public-key recipients: the set carries no \
             proof that its sender knew the passphrase (any recipient could have sealed it)"
        );
    }

    // Argon2id runs before the first byte is sealed: say so on the bar.
    let first_message = if passphrase.is_some() {
        "deriving key"
    } else {
        "sealing"
    };
    let mut sealer = Sealer::new()
        .recipients(recipients.iter().cloned())
        .allow_classical(args.allow_classical)
        .created(args.created.time())
        .pad(args.pad);
    if args.pad == kuvert::Padding::Volume && args.volume_size.is_none() {
        return Err(Fail::usage(
            "--pad volume fills the last volume: give --volume-size",
        ));
    }
    if let Some(label) = &args.label {
        sealer = sealer.label(label.clone());
    }
    if let Some(note) = note(args)? {
        sealer = sealer.note(note);
    }
    if let Some(passphrase) = passphrase {
        sealer = sealer.passphrase(passphrase);
    }
    let signer_names: Vec<String> = signers
        .iter()
        .map(|signer| signer.public_key().fingerprint())
        .collect();
    for signer in signers {
        sealer = sealer.sign_with(signer);
    }
    let chunk_size = args.chunk_size.unwrap_or(Sealer::DEFAULT_CHUNK_SIZE);
    sealer = sealer.chunk_size(chunk_size).digests(!args.no_digests);
    if let Some(size) = args.volume_size {
        sealer = sealer.volume_size(size);
    }
    // Parity by default for the disc presets (README: dvdisaster's 20 %).
    let parity = match args.parity {
        Some(parity) => parity,
        None if !args.no_digests && args.volume_size.is_some_and(size::is_disc_preset) => {
            kuvert::Parity::Percent(DEFAULT_DISC_PARITY)
        }
        None => kuvert::Parity::None,
    };
    if parity != kuvert::Parity::None && args.no_digests {
        return Err(Fail::usage(
            "--parity needs the volume trailers: drop --no-digests or use --parity none",
        ));
    }
    if parity != kuvert::Parity::None && to_stdout {
        return Err(Fail::usage(
            "--parity needs a file output (it is a second pass over each volume): use -o FILE or --parity none",
        ));
    }
    sealer = sealer.parity(parity);
    if let Some(count) = args.parity_volumes {
        crate::parity_volumes::check_seal_options(
            count,
            &args.output,
            to_stdout,
            args.volume_size,
            args.force,
        )?;
    }
    if let Some(threads) = args.threads {
        sealer = sealer.threads(threads as usize);
    }
    #[cfg(feature = "plugins")]
    {
        sealer = sealer.plugin_ui(Arc::new(crate::plugin_ui::TerminalUi));
        if let Some(seconds) = args.plugin_timeout {
            sealer = sealer.plugin_options(
                kuvert::PluginOptions::default().timeout(std::time::Duration::from_secs(seconds)),
            );
        }
    }

    let plaintext = if from_stdin {
        stdin_len()
    } else {
        Some(
            inputs
                .iter()
                .map(|input| estimate(&input.disk))
                .sum::<u64>()
                + 1024,
        )
    };
    // An invalid option has no plan; sealing reports it.
    let total = plaintext
        .and_then(|p| sealer.plan(p).ok())
        .map(|plan| plan.total_len());
    let names = Names::new();
    let failed = Arc::new(AtomicBool::new(false));
    let output_name = if to_stdout {
        "standard output".to_owned()
    } else {
        args.output.display().to_string()
    };
    let blame_output = |fail: Fail| {
        if failed.load(Ordering::Relaxed) {
            Fail::data(format!("cannot write {output_name}: {}", fail.message))
        } else {
            fail
        }
    };

    output::install_interrupt_handler();
    if to_stdout {
        let bar = progress::bar(quiet, total, first_message);
        let stdout = WriteSink::new(BufWriter::with_capacity(1 << 20, io::stdout()));
        let sink = ProgressSink::new(stdout, bar.clone(), Arc::clone(&failed));
        let result = run(&sealer, sink, &inputs, from_stdin, &names);
        bar.finish_and_clear();
        result.map(drop).map_err(blame_output)
    } else {
        file_name(&args.output)?;
        let bar = progress::bar(quiet, total, first_message);
        let sink = ProgressSink::new(
            RegisteredSink(FileSink::new(&args.output)),
            bar.clone(),
            Arc::clone(&failed),
        );
        let result = run(&sealer, sink, &inputs, from_stdin, &names);
        bar.finish_and_clear();
        let (sink, plaintext) = result.map_err(blame_output)?;
        let paths = sink.inner.0.paths().to_vec();
        let parity_paths = match args.parity_volumes {
            Some(count) => {
                crate::parity_volumes::write_for_seal(&paths, &args.output, count, args.force)?
            }
            None => Vec::new(),
        };
        if args.force {
            remove_stale(
                &args.output,
                &[&paths[..], &parity_paths[..]].concat(),
                quiet,
            );
        }
        if !quiet {
            summarize(&paths, &inputs, plaintext, from_stdin);
            for path in &parity_paths {
                eprintln!("kuvert: wrote parity volume {}", path.display());
            }
            if !signer_names.is_empty() {
                eprintln!("kuvert: signed by {}", signer_names.join(", "));
            }
        }
        if args.sig_files {
            for path in &paths {
                let written = crate::export::write_signature_files(path, None, args.force)?;
                if !quiet {
                    for file in written {
                        eprintln!("kuvert: wrote {}", crate::report::shown(&file));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The note of `--note` or `--note-file` (one final line feed dropped).
fn note(args: &SealArgs) -> Result<Option<String>> {
    let Some(path) = &args.note_file else {
        return Ok(args.note.clone());
    };
    // A note is at most 3,072 bytes: read a little more to tell.
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|file| file.take(4096).read_to_end(&mut bytes))
        .map_err(|err| Fail::data(format!("cannot read {}: {}", path.display(), chain(&err))))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Fail::usage(format!("{}: the note is not UTF-8", path.display())))
}

/// Seals into `sink`; returns it finished with the plaintext length.
fn run<S: VolumeSink>(
    sealer: &Sealer,
    sink: S,
    inputs: &[Input],
    from_stdin: bool,
    names: &Names,
) -> Result<(S, u64)> {
    if from_stdin {
        let mut writer = sealer.seal(sink).map_err(|err| names.fail(&err))?;
        // Read straight into the chunk buffers: no copy of the plaintext.
        let mut stdin = NotingReads {
            inner: io::stdin().lock(),
            failed: false,
        };
        let total = writer.copy_from(&mut stdin).map_err(|err| match err {
            kuvert::Error::Io(err) if stdin.failed => {
                Fail::data(format!("cannot read standard input: {}", chain(&err)))
            }
            err => names.fail(&err),
        })?;
        let sink = writer.finish().map_err(|err| names.fail(&err))?;
        return Ok((sink, total));
    }
    let mut archive = sealer.seal_archive(sink).map_err(|err| names.fail(&err))?;
    for input in inputs {
        // Disk errors come back as `Error::Input`, naming the file; write
        // errors as `Error::Io`, which the names blame on the output.
        archive
            .append_path(&input.disk, &input.name)
            .map_err(|err| names.fail(&err))?;
    }
    for warning in archive.warnings() {
        eprintln!("kuvert: warning: {warning}");
    }
    let plaintext = archive.bytes_written();
    let sink = archive.finish().map_err(|err| names.fail(&err))?;
    Ok((sink, plaintext))
}

/// A reader that notes whether it failed, so that a failure to read is not
/// blamed on the output.
struct NotingReads<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for NotingReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        if let Err(err) = &result
            && err.kind() != io::ErrorKind::Interrupted
        {
            self.failed = true;
        }
        result
    }
}

/// Checks the inputs and names them in the archive by their last component.
fn plan_inputs(paths: &[PathBuf], output: &Path, to_stdout: bool) -> Result<Vec<Input>> {
    let out_dir = if to_stdout {
        None
    } else {
        fs::canonicalize(parent_dir(output)).ok()
    };
    let mut inputs: Vec<Input> = Vec::new();
    for path in paths {
        let metadata =
            fs::symlink_metadata(path).map_err(|err| io_fail("cannot read", path, &err))?;
        let name = match path.file_name() {
            Some(name) => name.to_owned(),
            None => fs::canonicalize(path)
                .ok()
                .and_then(|full| full.file_name().map(ToOwned::to_owned))
                .ok_or_else(|| {
                    Fail::usage(format!(
                        "{} has no name to store it under: give the entries inside it",
                        path.display()
                    ))
                })?,
        };
        let name = name
            .to_str()
            .ok_or_else(|| Fail::data(format!("{}: the name is not UTF-8", path.display())))?
            .to_owned();
        if let Some(other) = inputs.iter().find(|input| input.name == name) {
            return Err(Fail::usage(format!(
                "{} and {} would both be stored as {name:?}",
                other.disk.display(),
                path.display()
            )));
        }
        if metadata.is_dir()
            && let (Some(out_dir), Ok(input_dir)) = (&out_dir, fs::canonicalize(path))
            && out_dir.starts_with(&input_dir)
        {
            return Err(Fail::usage(format!(
                "the output {} is inside the input {}: it would seal itself; write it elsewhere",
                output.display(),
                path.display()
            )));
        }
        inputs.push(Input {
            disk: path.clone(),
            name,
        });
    }
    Ok(inputs)
}

/// Plaintext bytes of a tree as a tar stream with an index, roughly.
fn estimate(path: &Path) -> u64 {
    let Ok(metadata) = fs::symlink_metadata(path) else {
        return 0;
    };
    let own = 512 + 64 + path.as_os_str().len() as u64;
    if metadata.is_dir() {
        let children = fs::read_dir(path)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| estimate(&entry.path()))
                    .sum::<u64>()
            })
            .unwrap_or(0);
        own + children
    } else if metadata.is_file() {
        own + metadata.len().div_ceil(512) * 512
    } else {
        own
    }
}

/// Length of standard input if it is a regular file.
fn stdin_len() -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
        let metadata = File::from(fd).metadata().ok()?;
        metadata.is_file().then_some(metadata.len())
    }
    #[cfg(not(unix))]
    None
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| Fail::usage(format!("{} is not a file name", path.display())))
}

/// Stem and directory of the split names `STEM.NNN.kuv` of `-o OUT`.
fn split_stem(output: &Path) -> Option<String> {
    let stem = match output.extension() {
        Some(ext) if ext == "kuv" => output.file_stem()?,
        _ => output.file_name()?,
    };
    Some(stem.to_string_lossy().into_owned())
}

/// Whether `name` is `STEM.NNN.kuv`.
fn is_split_name(name: &str, stem: &str) -> bool {
    name.strip_prefix(stem)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".kuv"))
        .is_some_and(|number| number.len() >= 3 && number.bytes().all(|b| b.is_ascii_digit()))
}

/// Files of the directory that an earlier set named `OUT` left.
fn existing_set(output: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if fs::symlink_metadata(output).is_ok() {
        found.push(output.to_path_buf());
    }
    if let Some(stem) = split_stem(output)
        && let Ok(entries) = fs::read_dir(parent_dir(output))
    {
        let output_name = output
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        // The volumes, and the statement and signature files beside them
        // (`seal --sig-files`): stale once the set is replaced.
        let of_set = |name: &str| {
            let volume = crate::export::volume_of_signature_file(name);
            is_split_name(name, &stem)
                || volume.is_some_and(|volume| {
                    is_split_name(volume, &stem) || Some(volume) == output_name.as_deref()
                })
        };
        let mut split: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| of_set(&entry.file_name().to_string_lossy()))
            .map(|entry| output.with_file_name(entry.file_name()))
            .collect();
        split.sort();
        found.extend(split);
    }
    found
}

/// Refuses to replace an existing set without `--force`.
fn check_outputs(output: &Path, force: bool) -> Result<()> {
    file_name(output)?;
    let dir = parent_dir(output);
    if !dir.is_dir() {
        return Err(Fail::data(format!(
            "cannot write {}: {} is not a directory",
            output.display(),
            dir.display()
        )));
    }
    if output.is_dir() {
        return Err(Fail::data(format!("{} is a directory", output.display())));
    }
    if !force && let Some(existing) = existing_set(output).first() {
        return Err(Fail::data(format!(
            "{} already exists (use --force to replace the set)",
            existing.display()
        )));
    }
    Ok(())
}

/// After `--force`: removes the volumes of the replaced set that the new
/// set did not overwrite, so no stale volume sits beside it.
fn remove_stale(output: &Path, written: &[PathBuf], quiet: bool) {
    for path in existing_set(output) {
        if written.contains(&path) {
            continue;
        }
        if fs::remove_file(&path).is_ok() && !quiet {
            eprintln!(
                "kuvert: removed {}, left from the set replaced",
                path.display()
            );
        }
    }
}

fn summarize(paths: &[PathBuf], inputs: &[Input], plaintext: u64, from_stdin: bool) {
    let what = if from_stdin {
        format!("standard input ({})", human(plaintext))
    } else {
        let count = inputs.len();
        format!(
            "{count} input{} ({} of archive)",
            if count == 1 { "" } else { "s" },
            human(plaintext)
        )
    };
    let total: u64 = paths
        .iter()
        .filter_map(|path| fs::metadata(path).ok())
        .map(|m| m.len())
        .sum();
    let place = match paths {
        [one] => one.display().to_string(),
        [first, .., last] => format!(
            "{} volumes, {} … {}",
            paths.len(),
            first.display(),
            last.display()
        ),
        [] => "nothing".into(),
    };
    eprintln!(
        "kuvert: sealed {what} into {place} ({} bytes)",
        grouped(total)
    );
}

/// A file sink whose partial files the Ctrl-C handler knows: each is
/// registered under the name the library gives it before it is created.
struct RegisteredSink(FileSink);

impl VolumeSink for RegisteredSink {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        output::register_path(&self.0.partial_path(number));
        self.0.start_volume(number)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.append(bytes)
    }

    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<Option<()>> {
        self.0.read_back(offset, buf)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<Option<()>> {
        self.0.write_at(offset, bytes)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_are_recognised() {
        assert!(is_split_name("parcel.001.kuv", "parcel"));
        assert!(is_split_name("parcel.1234.kuv", "parcel"));
        assert!(!is_split_name("parcel.kuv", "parcel"));
        assert!(!is_split_name("parcel.01.kuv", "parcel"));
        assert!(!is_split_name("parcelx.001.kuv", "parcel"));
        assert_eq!(
            split_stem(Path::new("d/parcel.kuv")).as_deref(),
            Some("parcel")
        );
        assert_eq!(split_stem(Path::new("parcel")).as_deref(), Some("parcel"));
    }
}
