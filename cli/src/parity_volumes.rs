//! Parity volumes on the command line (SPEC.md §17): `seal
//! --parity-volumes P` writes `STEM.p01.kuv` …; `open`, `list`, `verify`
//! and `repair` take them among their volumes and rebuild missing data
//! volumes from them. All the knowledge of the format is the library's
//! ([`kuvert::ParitySet`], [`kuvert::write_parity_volumes`]); this file
//! only names files, keeps scratch space and says what was done.

use std::fs::{self, File};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use kuvert::{FileSource, PARITY_VOLUME_MAGIC, ParitySet, VolumeSource};

use crate::report::{Fail, Result, chain, io_fail, shown};
use crate::volumes::{VolumeFile, Volumes};

/// Exit code of `verify` when damage was found and all of it can be
/// repaired from parity: the data is whole, the medium needs refreshing.
pub const REPAIRABLE: u8 = 3;

/// Whether `verify` asked for each parity volume to be checked whole.
static CHECK_PARITY: AtomicBool = AtomicBool::new(false);
/// What the parity volumes did for the volumes given, for `verify`.
static SUMMARY: Mutex<Option<Summary>> = Mutex::new(None);

/// What rebuilding from parity volumes did, for `verify`'s lines and exit.
#[derive(Debug, Default)]
struct Summary {
    /// One line per parity volume, then one per rebuilt data volume.
    lines: Vec<String>,
    /// Whether anything was missing or damaged (and could be rebuilt).
    repairable: bool,
}

/// Whether `path` is a parity volume: its magic at the start, or (its head
/// damaged) a name `STEM.pNN.kuv`.
pub fn is_parity_volume(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    let by_magic = File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok_and(|()| magic == PARITY_VOLUME_MAGIC);
    by_magic || parity_index(path).is_some()
}

/// NN of a file named `STEM.pNN.kuv`.
fn parity_index(path: &Path) -> Option<u16> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".kuv")?;
    let (_, index) = stem.rsplit_once(".p")?;
    (index.len() == 2 && index.bytes().all(|b| b.is_ascii_digit()))
        .then(|| index.parse().ok())
        .flatten()
        .filter(|&q| q > 0)
}

/// STEM of a set sealed to `output` (`STEM.kuv` or `STEM`).
fn stem(output: &Path) -> String {
    let stem = match output.extension() {
        Some(ext) if ext == "kuv" => output.with_extension(""),
        _ => output.to_path_buf(),
    };
    stem.as_os_str().to_string_lossy().into_owned()
}

/// `STEM.pNN.kuv` for a set sealed to `output`.
pub fn parity_path(output: &Path, index: u16) -> PathBuf {
    PathBuf::from(format!("{}.p{index:02}.kuv", stem(output)))
}

/// The name data volume `volume` of `n` has beside parity volume `parity`.
fn data_name(parity: &Path, volume: u32, n: u32) -> PathBuf {
    let name = parity
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".kuv")
        .and_then(|stem| stem.rsplit_once(".p"))
        .map_or("kuvert", |(stem, _)| stem)
        .to_owned();
    if n == 1 {
        PathBuf::from(format!("{stem}.kuv"))
    } else {
        PathBuf::from(format!("{stem}.{volume:03}.kuv"))
    }
}

/// Refuses `--parity-volumes` where it cannot work, before anything is
/// sealed: it needs split file output, and never overwrites without
/// `--force`.
pub fn check_seal_options(
    parity: u16,
    output: &Path,
    to_stdout: bool,
    volume_size: Option<u64>,
    force: bool,
) -> Result<()> {
    if parity == 0 {
        return Err(Fail::usage("--parity-volumes: at least 1"));
    }
    if to_stdout || volume_size.is_none() {
        return Err(Fail::usage(
            "--parity-volumes needs --volume-size and -o FILE: the set is read back from its files",
        ));
    }
    for index in 1..=parity {
        let path = parity_path(output, index);
        if !force && path.exists() {
            return Err(Fail::data(format!(
                "{} exists (--force replaces it)",
                shown(&path)
            )));
        }
    }
    Ok(())
}

/// Writes the P parity volumes of the data volumes `paths`, just sealed to
/// `output`: under hidden names first, then their own. Returns their paths.
pub fn write_for_seal(
    paths: &[PathBuf],
    output: &Path,
    parity: u16,
    force: bool,
) -> Result<Vec<PathBuf>> {
    let sources = paths
        .iter()
        .map(|path| FileSource::open(path).map_err(|err| crate::volumes::open_fail(path, &err)))
        .collect::<Result<Vec<_>>>()?;
    let finals: Vec<PathBuf> = (1..=parity).map(|q| parity_path(output, q)).collect();
    let partials: Vec<PathBuf> = finals.iter().map(|path| hidden(path, "seal")).collect();
    let remove_partials = || {
        for partial in &partials {
            let _ = fs::remove_file(partial);
        }
    };
    let mut outs = Vec::with_capacity(finals.len());
    for partial in &partials {
        match File::options()
            .write(true)
            .read(true)
            .create_new(true)
            .open(partial)
        {
            Ok(file) => outs.push(BufWriter::with_capacity(1 << 20, file)),
            Err(err) => {
                remove_partials();
                return Err(io_fail("create", partial, &err));
            }
        }
    }
    let written = kuvert::write_parity_volumes(&sources, &mut outs)
        .map_err(|err| Fail::data(format!("cannot write the parity volumes: {}", chain(&err))));
    let synced = written.and_then(|()| {
        for (out, partial) in outs.into_iter().zip(&partials) {
            let file = out
                .into_inner()
                .map_err(|err| io_fail("write", partial, err.error()))?;
            file.sync_all()
                .map_err(|err| io_fail("sync", partial, &err))?;
        }
        Ok(())
    });
    if let Err(fail) = synced {
        remove_partials();
        return Err(fail);
    }
    for (partial, target) in partials.iter().zip(&finals) {
        let placed = if force {
            fs::rename(partial, target)
        } else {
            fs::hard_link(partial, target).and_then(|()| fs::remove_file(partial))
        };
        if let Err(err) = placed {
            remove_partials();
            return Err(io_fail("name", target, &err));
        }
    }
    Ok(finals)
}

/// A hidden name beside `target` for a file being written by `what`.
fn hidden(target: &Path, what: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(
        ".{name}.{what}-{}.kuvert-partial",
        std::process::id()
    ))
}

/// `verify` calls this first: each parity volume is then checked whole.
pub fn check_parity_volumes() {
    CHECK_PARITY.store(true, Ordering::Relaxed);
}

/// Rebuilds the data volumes that `parity` (paths of parity volumes) can
/// give back and `volumes` lacks, into scratch space under the system's
/// temporary directory, and adds them to `volumes`. Says on standard error
/// what was rebuilt.
pub fn rebuild_missing(volumes: &mut Volumes, parity: &[PathBuf]) -> Result<()> {
    if parity.is_empty() {
        return Ok(());
    }
    let parity_sources = parity
        .iter()
        .map(|path| FileSource::open(path).map_err(|err| crate::volumes::open_fail(path, &err)))
        .collect::<Result<Vec<_>>>()?;
    let mut set = ParitySet::assemble(volumes.sources.iter().collect(), parity_sources)
        .map_err(|err| Fail::data(chain(&err)))?;
    let n = set.data_volumes();
    let mut summary = Summary::default();
    if CHECK_PARITY.load(Ordering::Relaxed) {
        // verify: a volume given but damaged is rebuilt too, and not used.
        for (source, info) in volumes.sources.iter().zip(&volumes.infos) {
            if let Some(info) = info
                && kuvert::verify_digests(source, 1).is_err()
            {
                set.exclude(info.volume);
            }
        }
        let checks = set.check_parity().map_err(|err| Fail::data(chain(&err)))?;
        for check in &checks {
            let name = check.name.as_deref().unwrap_or("parity volume");
            let state = if check.is_intact() {
                "intact".to_owned()
            } else {
                summary.repairable = true;
                format!(
                    "{} of {} sectors damaged (those stripes lose this parity volume)",
                    check.damaged_sectors, check.body_sectors
                )
            };
            summary.lines.push(format!(
                "{}: parity volume {} of {} over {n} data volumes: {state}",
                escape(name),
                check.index,
                set.parity_volumes()
            ));
        }
        for q in set.missing_parity() {
            summary.repairable = true;
            summary.lines.push(format!(
                "parity volume {q} of {}: missing",
                set.parity_volumes()
            ));
        }
    }
    let missing = set.missing();
    let mut rebuilt = Vec::with_capacity(missing.len());
    if !missing.is_empty() {
        let scratch = Scratch::new()?;
        for &volume in &missing {
            let name = data_name(&parity[0], volume, n);
            let path = scratch.path.join(name.file_name().unwrap_or_default());
            rebuild_into(&set, volume, &path, false)?;
            let source =
                FileSource::open(&path).map_err(|err| crate::volumes::open_fail(&path, &err))?;
            // The open file outlives its name: nothing is left behind.
            #[cfg(unix)]
            let _ = fs::remove_file(&path);
            let shown_name = PathBuf::from(format!("{} (rebuilt)", name.display()));
            rebuilt.push((shown_name, VolumeFile::File(source), volume));
            eprintln!(
                "kuvert: volume {volume} ({}) was missing or unusable: rebuilt from {}",
                name.display(),
                if parity.len() == 1 {
                    shown(&parity[0])
                } else {
                    format!("{} parity volumes", parity.len())
                }
            );
            summary.lines.push(format!(
                "volume {volume}: missing or unusable, rebuilt from parity volumes"
            ));
        }
        summary.repairable = true;
    }
    drop(set);
    for (path, source, volume) in rebuilt {
        volumes.replace_or_push(path, source, volume);
    }
    *SUMMARY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(summary);
    Ok(())
}

/// Rebuilds `volume` of `set` into a new file at `path` (removed again if
/// the rebuild fails), on stable storage if `sync` (scratch space need not be).
fn rebuild_into<S: VolumeSource, Q: VolumeSource>(
    set: &ParitySet<S, Q>,
    volume: u32,
    path: &Path,
    sync: bool,
) -> Result<()> {
    let file = File::options()
        .write(true)
        .read(true)
        .create_new(true)
        .open(path)
        .map_err(|err| io_fail("create", path, &err))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let result = set
        .rebuild(volume, &mut out)
        .map_err(|err| Fail::data(chain(&err)))
        .and_then(|()| {
            let file = out
                .into_inner()
                .map_err(|err| io_fail("write", path, err.error()))?;
            if sync {
                file.sync_all().map_err(|err| io_fail("sync", path, &err))?;
            }
            Ok(())
        });
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// `verify`'s verdict: its own result, and then, if parity volumes were
/// given, a line per parity volume and per rebuilt volume, and exit 3 when
/// something was missing or damaged but all of it is repairable.
pub fn verify_verdict(result: Result<()>, quiet: bool) -> Result<()> {
    let summary = SUMMARY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    let Some(summary) = summary else {
        return result;
    };
    if !quiet {
        for line in &summary.lines {
            println!("{line}");
        }
    }
    result?;
    if summary.repairable {
        return Err(Fail {
            code: REPAIRABLE,
            message: "damage found and all of it repairable from parity: the data is whole; \
                      refresh the medium (`kuvert repair`)"
                .into(),
        });
    }
    Ok(())
}

/// A private directory under the system's temporary directory, removed
/// with what is left in it when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new() -> Result<Self> {
        let base = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = base.join(format!("kuvert-rebuild-{}-{nanos}", std::process::id()));
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&path)
            .map_err(|err| io_fail("create", &path, &err))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A name from a file, safe to print.
fn escape(name: &str) -> String {
    kuvert::escape_name(name).into_owned()
}

/// `kuvert repair` with parity volumes among its volumes: data volumes
/// given are repaired from their own parity (or copied if intact without
/// any), the missing or unrepairable ones rebuilt from the parity volumes,
/// and, if any parity volume was missing or damaged, all P written anew,
/// so DIR holds the whole set again. Nothing is overwritten.
pub fn repair_set(output: &Path, paths: &[PathBuf], quiet: bool) -> Result<()> {
    let (parity, data): (Vec<PathBuf>, Vec<PathBuf>) = paths
        .iter()
        .cloned()
        .partition(|path| is_parity_volume(path));
    let data_sources = data
        .iter()
        .map(|path| FileSource::open(path).map_err(|err| crate::volumes::open_fail(path, &err)))
        .collect::<Result<Vec<_>>>()?;
    let parity_sources = parity
        .iter()
        .map(|path| FileSource::open(path).map_err(|err| crate::volumes::open_fail(path, &err)))
        .collect::<Result<Vec<_>>>()?;
    let given = ParitySet::assemble(data_sources.iter().collect(), parity_sources)
        .map_err(|err| Fail::data(chain(&err)))?;
    let n = given.data_volumes();
    let target_of = |volume: u32| {
        output.join(
            data_name(&parity[0], volume, n)
                .file_name()
                .unwrap_or_default(),
        )
    };
    // Every output name first: nothing is written if any exists.
    let missing = given.missing();
    drop(given);
    for volume in 1..=n {
        let target = target_of(volume);
        if target.exists() {
            return Err(Fail::data(format!(
                "{}: exists; kuvert repair never overwrites",
                shown(&target)
            )));
        }
    }
    for (path, source) in data.iter().zip(&data_sources) {
        let Ok(info) = kuvert::inspect(source) else {
            continue;
        };
        if missing.contains(&info.volume) {
            continue;
        }
        let target = target_of(info.volume);
        match crate::repair::repair_one(path, &target) {
            Ok(report) => {
                if !quiet {
                    println!("{}", crate::repair::describe(path, &target, &report));
                }
            }
            Err(fail) if kuvert::verify_digests(source, 1).is_ok() => {
                // Intact, without parity of its own: copied as it is.
                let _ = fail;
                copy_checked(path, &target)?;
                if !quiet {
                    println!("{}: intact -> {}", shown(path), shown(&target));
                }
            }
            Err(fail) => {
                if !quiet {
                    println!(
                        "{}: {}; rebuilding it from parity volumes",
                        shown(path),
                        fail.message
                    );
                }
            }
        }
    }
    // Rebuilt only from the copies in DIR, each checked: a damaged volume
    // given is never used to rebuild another.
    let copies = (1..=n)
        .map(&target_of)
        .filter(|target| target.exists())
        .map(|target| {
            FileSource::open(&target).map_err(|err| crate::volumes::open_fail(&target, &err))
        })
        .collect::<Result<Vec<_>>>()?;
    let parity_sources = parity
        .iter()
        .map(|path| FileSource::open(path).map_err(|err| crate::volumes::open_fail(path, &err)))
        .collect::<Result<Vec<_>>>()?;
    let set = ParitySet::assemble(copies, parity_sources).map_err(|err| Fail::data(chain(&err)))?;
    let to_rebuild = set.missing();
    for &volume in &to_rebuild {
        let target = target_of(volume);
        let partial = hidden(&target, "repair");
        rebuild_into(&set, volume, &partial, true)?;
        let checked = FileSource::open(&partial)
            .map_err(|err| crate::volumes::open_fail(&partial, &err))
            .and_then(|written| {
                kuvert::verify_digests(&written, 1)
                    .map(drop)
                    .map_err(|err| {
                        Fail::data(format!(
                            "{}: the rebuilt volume does not verify: {}",
                            shown(&partial),
                            chain(&err)
                        ))
                    })
            })
            .and_then(|()| {
                fs::hard_link(&partial, &target).map_err(|err| io_fail("name", &target, &err))
            });
        let _ = fs::remove_file(&partial);
        checked?;
        if !quiet {
            println!(
                "volume {volume}: rebuilt from parity volumes -> {}",
                shown(&target)
            );
        }
    }
    let checks = set.check_parity().map_err(|err| Fail::data(chain(&err)))?;
    let parity_whole =
        set.missing_parity().is_empty() && checks.iter().all(|check| check.is_intact());
    if parity_whole {
        for path in &parity {
            let target = output.join(path.file_name().unwrap_or_default());
            copy_checked(path, &target)?;
            if !quiet {
                println!("{}: intact -> {}", shown(path), shown(&target));
            }
        }
    } else {
        let data_paths: Vec<PathBuf> = (1..=n).map(&target_of).collect();
        let stem = output.join(data_name(&parity[0], 1, 2).file_name().unwrap_or_default());
        let base = PathBuf::from(
            stem.to_string_lossy()
                .trim_end_matches(".001.kuv")
                .to_owned(),
        );
        let written = write_for_seal(&data_paths, &base, set.parity_volumes(), false)?;
        if !quiet {
            for path in written {
                println!("{}: parity volume written anew", shown(&path));
            }
        }
    }
    Ok(())
}

/// Copies `path` to a new file `target` (never overwriting), via a hidden
/// name, checked byte for byte against the source.
fn copy_checked(path: &Path, target: &Path) -> Result<()> {
    if target.exists() {
        return Err(Fail::data(format!(
            "{}: exists; kuvert repair never overwrites",
            shown(target)
        )));
    }
    let partial = hidden(target, "repair");
    let copied = fs::copy(path, &partial)
        .map_err(|err| io_fail("copy", &partial, &err))
        .and_then(|_| {
            File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(|err| io_fail("sync", &partial, &err))
        })
        .and_then(|()| {
            fs::hard_link(&partial, target).map_err(|err| io_fail("name", target, &err))
        });
    let _ = fs::remove_file(&partial);
    copied
}
