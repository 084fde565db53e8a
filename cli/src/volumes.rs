//! Volumes named on the command line and the keys that open them.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use indicatif::ProgressBar;
use kuvert::{FileSource, OffsetSource, Opener, VolumeInfo, VolumeSource};

use crate::cli::KeyArgs;
use crate::keys::{self, PassphraseSource};
use crate::output::is_dash;
use crate::progress::ProgressSource;
use crate::report::{Fail, Names, Result, io_fail, shown};
use crate::signers::Trusted;

/// One volume given: a volume file, or a volume found on a disc image or
/// device given instead (`disc.iso`, `/dev/sr0`).
#[derive(Debug)]
pub enum VolumeFile {
    File(FileSource),
    OnDisc(OffsetSource<Arc<FileSource>>),
}

impl VolumeSource for VolumeFile {
    fn size(&self) -> io::Result<u64> {
        match self {
            VolumeFile::File(file) => file.size(),
            VolumeFile::OnDisc(found) => found.size(),
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            VolumeFile::File(file) => file.read_exact_at(buf, offset),
            VolumeFile::OnDisc(found) => found.read_exact_at(buf, offset),
        }
    }

    fn name(&self) -> Option<&str> {
        match self {
            VolumeFile::File(file) => file.name(),
            VolumeFile::OnDisc(found) => found.name(),
        }
    }
}

/// The volumes given, opened, with what their headers say.
#[derive(Debug)]
pub struct Volumes {
    /// Each volume's path; `DISC@OFFSET` for one found on a disc.
    pub paths: Vec<PathBuf>,
    pub sources: Vec<VolumeFile>,
    /// Each header read without a key; `None` if it could not be read
    /// (the opener then names the problem).
    pub infos: Vec<Option<VolumeInfo>>,
    pub names: Names,
}

impl Volumes {
    /// Opens every volume file.
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut volumes = Volumes {
            paths: Vec::with_capacity(paths.len()),
            sources: Vec::with_capacity(paths.len()),
            infos: Vec::with_capacity(paths.len()),
            names: Names::new(),
        };
        let mut parity = Vec::new();
        for path in paths {
            if crate::parity_volumes::is_parity_volume(path) {
                parity.push(path.clone());
                continue;
            }
            if is_dash(path) {
                return Err(Fail::usage(
                    "volumes are read from files, not standard input (they are read at any offset)",
                ));
            }
            if path.is_dir() {
                return Err(Fail::data(format!(
                    "{} is a directory, not a volume",
                    shown(path)
                )));
            }
            let source = FileSource::open(path).map_err(|err| open_fail(path, &err))?;
            if kuvert::is_raw_disc(&source).map_err(|err| io_fail("cannot read", path, &err))? {
                volumes.push_disc(path, source)?;
                continue;
            }
            volumes.push(path.clone(), VolumeFile::File(source));
        }
        crate::parity_volumes::rebuild_missing(&mut volumes, &parity)?;
        Ok(volumes)
    }

    /// Puts volume `number`, rebuilt from parity volumes, in place of a
    /// given copy that claims that number (unusable, or it would not have
    /// been rebuilt), or after the others.
    pub fn replace_or_push(&mut self, path: PathBuf, source: VolumeFile, number: u32) {
        let given = self
            .infos
            .iter()
            .position(|info| info.as_ref().is_some_and(|info| info.volume == number));
        match given {
            Some(index) => {
                self.infos[index] = kuvert::inspect(&source).ok();
                self.sources[index] = source;
                self.paths[index] = path;
            }
            None => self.push(path, source),
        }
    }

    fn push(&mut self, path: PathBuf, source: VolumeFile) {
        let info = kuvert::inspect(&source).ok();
        self.names
            .push(&path, info.as_ref().map(|info| info.volume));
        self.paths.push(path);
        self.sources.push(source);
        self.infos.push(info);
    }

    /// Every volume found on a disc image or device: not a volume itself
    /// (no MAGIC at byte 0) but whole sectors, scanned for volumes.
    fn push_disc(&mut self, path: &Path, disc: FileSource) -> Result<()> {
        // A drive fails whole ECC blocks or clusters; an image, sectors.
        let policy = match (is_block_device(path), disc.size()) {
            (true, Ok(len)) => kuvert::ReadPolicy::for_disc_len(len),
            _ => kuvert::ReadPolicy::SECTORS,
        };
        let scan = kuvert::find_volumes_with(&disc, policy)
            .map_err(|err| Fail::data(format!("cannot scan {}: {err}", shown(path))))?;
        if scan.volumes.is_empty() {
            return Err(Fail::data(format!(
                "{}: not a kuvert volume, and no volume found on it as a disc",
                shown(path)
            )));
        }
        if !scan.unreadable.is_empty() {
            eprintln!(
                "kuvert: {}: {} bytes in {} places could not be read while scanning",
                shown(path),
                scan.unreadable.erased_bytes(),
                scan.unreadable.len()
            );
        }
        let disc = Arc::new(disc);
        for found in &scan.volumes {
            let source = found.source(Arc::clone(&disc));
            let named = PathBuf::from(source.name().unwrap_or_default());
            self.push(named, VolumeFile::OnDisc(source));
        }
        Ok(())
    }

    /// Bytes in all volumes.
    pub fn total_len(&self) -> u64 {
        self.sources.iter().filter_map(|s| s.size().ok()).sum()
    }

    /// The sources, counting their reads on `bar`.
    pub fn with_progress(
        self,
        bar: &ProgressBar,
        verb: &'static str,
    ) -> (Vec<ProgressSource<VolumeFile>>, Names) {
        let current = Arc::new(AtomicU32::new(0));
        let sources = self
            .sources
            .into_iter()
            .zip(self.infos)
            .map(|(source, info)| {
                let volume = info.map_or(0, |info| info.volume);
                ProgressSource::new(source, volume, verb, Arc::clone(&current), bar.clone())
            })
            .collect();
        (sources, self.names)
    }

    /// Whether any header has a passphrase stanza.
    pub fn has_passphrase(&self) -> bool {
        self.infos
            .iter()
            .flatten()
            .any(|info| info.stanza_types.iter().any(|t| t == "argon2id"))
    }

    /// Recipient types of the first readable header.
    fn stanza_types(&self) -> Option<String> {
        self.infos
            .iter()
            .flatten()
            .next()
            .map(|info| info.stanza_types.join(", "))
    }
}

/// An opener with the keys asked for, and whether a passphrase was read for
/// a set that also has public-key recipients (then the passphrase proves
/// nothing about the sender: see [`warn_unauthenticated_passphrase`]).
/// Without `-i`, `-p` or `--passphrase-file`, a set with a passphrase
/// recipient asks for the passphrase (from `KUVERT_PASSPHRASE_FILE` if set).
pub fn opener(args: &KeyArgs, volumes: &Volumes) -> Result<(Opener, bool)> {
    opener_requiring(args, &Trusted::default(), volumes)
}

/// As [`opener`], and the set must be signed by one of `trusted` (if any):
/// the library refuses it otherwise, before releasing anything.
pub fn opener_requiring(
    args: &KeyArgs,
    trusted: &Trusted,
    volumes: &Volumes,
) -> Result<(Opener, bool)> {
    let stdin_users = args.identities.iter().filter(|p| is_dash(p)).count()
        + usize::from(args.passphrase_file.as_deref().is_some_and(is_dash));
    if stdin_users > 1 {
        return Err(Fail::usage("standard input (`-`) can be read only once"));
    }
    let identities = keys::identities(&args.identities)?;
    let mut source = keys::passphrase_source(args);
    if source.is_none() && identities.is_empty() {
        if volumes.has_passphrase() {
            source = Some(keys::default_passphrase_source());
        } else if let Some(types) = volumes.stanza_types() {
            return Err(Fail::usage(format!(
                "no key given: use -i IDENTITY (the set's recipient types: {types})"
            )));
        }
    }
    let passphrase_read = source.is_some();
    let mut opener = Opener::new()
        .identities(identities)
        .limits(args.limits.limits());
    for key in trusted.keys() {
        opener = opener.require_signer(key);
    }
    #[cfg(feature = "plugins")]
    {
        opener = opener.plugin_ui(std::sync::Arc::new(crate::plugin_ui::TerminalUi));
        if let Some(seconds) = args.plugin_timeout {
            opener = opener.plugin_options(
                kuvert::PluginOptions::default().timeout(std::time::Duration::from_secs(seconds)),
            );
        }
    }
    if let Some(source) = source {
        if source == PassphraseSource::Prompt && !volumes.has_passphrase() {
            // Asking would be pointless: say so before prompting.
            if let Some(types) = volumes.stanza_types() {
                return Err(Fail::data(format!(
                    "the set has no passphrase recipient (recipient types: {types}): use -i IDENTITY"
                )));
            }
        }
        opener = opener.passphrase(keys::read_passphrase(&source)?);
    }
    // With -i as well the identity may have opened it; said all the same.
    let unauthenticated = passphrase_read
        && volumes
            .infos
            .iter()
            .flatten()
            .any(VolumeInfo::passphrase_is_unauthenticated);
    Ok((opener, unauthenticated))
}

/// Says on standard error, once a set has opened, that a passphrase beside
/// public-key recipients does not prove who sealed it. A warning, not a
/// summary: `-q` keeps it, as it keeps the same warning of `kuvert seal`.
pub fn warn_unauthenticated_passphrase() {
    eprintln!(
        "kuvert: warning: the set also has public-key recipients, so the passphrase does not \
         prove who sealed it (any recipient could have)"
    );
}

/// Whether `path` is a block device (a disc drive), not a file.
fn is_block_device(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// `cannot open parcel.kuv: …` for a failed [`FileSource::open`].
pub fn open_fail(path: &Path, err: &kuvert::Error) -> Fail {
    match err {
        kuvert::Error::Input { source, .. } => io_fail("cannot open", path, source),
        other => Fail::data(format!("cannot open {}: {other}", shown(path))),
    }
}
