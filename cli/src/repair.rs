//! `kuvert repair`: byte-identical copies of damaged volumes from their own
//! parity, without any key. Each copy is written under a hidden temporary
//! name in the output directory, checked again without a key as it is
//! read back from there, and only then given its final name, which is
//! never overwritten.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use kuvert::{FileSource, RepairReport, repair_volume};

use crate::cli::RepairArgs;
use crate::report::{Fail, Result, io_fail, shown};

pub fn repair(args: &RepairArgs, quiet: bool) -> Result<()> {
    if !args.output.is_dir() {
        return Err(Fail::usage(format!(
            "-o {}: not a directory",
            shown(&args.output)
        )));
    }
    if args
        .volumes
        .iter()
        .any(|path| crate::parity_volumes::is_parity_volume(path))
    {
        return crate::parity_volumes::repair_set(&args.output, &args.volumes, quiet);
    }
    let mut targets: Vec<PathBuf> = Vec::new();
    for path in &args.volumes {
        let name = path
            .file_name()
            .ok_or_else(|| Fail::usage(format!("{}: not a file name", shown(path))))?;
        let target = args.output.join(name);
        if target.exists() || targets.contains(&target) {
            return Err(Fail::data(format!(
                "{}: exists; kuvert repair never overwrites",
                shown(&target)
            )));
        }
        targets.push(target);
    }
    for (path, target) in args.volumes.iter().zip(&targets) {
        let report = repair_one(path, target)?;
        if !quiet {
            println!("{}", describe(path, target, &report));
        }
    }
    Ok(())
}

pub(crate) fn describe(path: &Path, target: &Path, report: &RepairReport) -> String {
    let state = if report.was_intact() {
        "intact".to_owned()
    } else {
        format!(
            "{} sectors lost, {} repaired from parity",
            report.sectors_lost, report.sectors_repaired
        )
    };
    format!(
        "{}: {state}; margin {} of {} parity sectors used (worst stripe {}) -> {}",
        shown(path),
        report.margin.used,
        report.margin.of,
        report.margin.worst_stripe,
        shown(target)
    )
}

pub(crate) fn repair_one(path: &Path, target: &Path) -> Result<RepairReport> {
    let source = FileSource::open(path).map_err(|err| crate::volumes::open_fail(path, &err))?;
    let partial = partial_path(target);
    let removed = |fail: Fail| {
        let _ = fs::remove_file(&partial);
        fail
    };
    // Read and written in pieces of megabytes: no buffer needed. The copy
    // is also the repair's scratch, read back as it is patched.
    let mut file = File::options()
        .write(true)
        .read(true)
        .create_new(true)
        .open(&partial)
        .map_err(|err| io_fail("create", &partial, &err))?;
    let report = repair_volume(&source, &mut file)
        .map_err(|err| Fail::data(format!("{}: {}", shown(path), crate::report::chain(&err))))
        .map_err(removed)?;
    file.sync_all()
        .map_err(|err| io_fail("sync", &partial, &err))
        .map_err(removed)?;
    drop(file);
    // The library's keyless check read the copy back from this file.
    // A hard link never replaces an existing file, unlike a rename.
    fs::hard_link(&partial, target)
        .map_err(|err| io_fail("name", target, &err))
        .map_err(removed)?;
    let _ = fs::remove_file(&partial);
    Ok(report)
}

/// A hidden name next to `target` for the copy being written.
fn partial_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.repair-{}", std::process::id()))
}
