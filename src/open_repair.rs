//! Opening through damage (SPEC.md §7.8): each volume of a set being opened
//! sits in a [`VolumeSlot`], which reads the source given until damage
//! shows (an unreadable sector, a chunk that fails authentication, a
//! header or trailer that fails its check) and then, if the volume carries
//! parity, repairs the whole volume into a scratch file and reads from that
//! copy instead. Chunks are still authenticated as they are read, now from
//! the copy: nothing unauthenticated is released.
//!
//! The scratch file is unlinked when it is created, so nothing is left
//! behind however the process ends.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Location};
use crate::format::SECTOR;
use crate::header::read_header;
use crate::repair::{RepairReport, SectorState, repair_volume_best_effort};
use crate::retrying_source::{is_unreadable, unreadable_error};
use crate::volumes::VolumeSource;

/// A volume repaired from its parity while it was opened or read.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRepair {
    /// Volume number, from 1 (authenticated).
    pub volume: u32,
    /// What the repair found and did.
    pub report: RepairReport,
}

/// Whether and where an opener repairs damaged volumes.
#[derive(Debug, Clone)]
pub(crate) struct RepairSettings {
    /// Repair at all (default: yes).
    pub(crate) enabled: bool,
    /// Directory of the scratch copies; `None`: the system's temporary
    /// directory.
    pub(crate) scratch_dir: Option<PathBuf>,
}

impl Default for RepairSettings {
    fn default() -> Self {
        RepairSettings {
            enabled: true,
            scratch_dir: None,
        }
    }
}

impl RepairSettings {
    fn dir(&self) -> PathBuf {
        self.scratch_dir.clone().unwrap_or_else(std::env::temp_dir)
    }
}

/// What became of the one repair a slot tries.
enum Outcome {
    /// The repaired volume, in an unlinked scratch file. Past the
    /// parity's margin the repair is partial: `lost` holds the byte ranges
    /// it could not restore, which read as unreadable sectors, and
    /// `shortfall` the error that names the worst stripe.
    Repaired {
        copy: File,
        report: RepairReport,
        lost: Vec<Range<u64>>,
        shortfall: Option<Error>,
    },
    /// The volume could not be repaired (no parity, more lost than the
    /// parity covers, the scratch file could not be written).
    Failed(Error),
}

/// One volume being opened: the source given, and once damage showed, its
/// repaired copy, which every read goes to from then on.
pub(crate) struct VolumeSlot<S> {
    original: S,
    settings: RepairSettings,
    /// Position among the volumes given, from 1.
    input: usize,
    /// The volume's authenticated number, once known (0 until then).
    number: AtomicU32,
    /// Tried at most once, by whichever thread meets damage first; the
    /// others wait for it.
    outcome: OnceLock<Outcome>,
}

impl<S: VolumeSource> VolumeSlot<S> {
    pub(crate) fn new(original: S, input: usize, settings: RepairSettings) -> Self {
        VolumeSlot {
            original,
            settings,
            input,
            number: AtomicU32::new(0),
            outcome: OnceLock::new(),
        }
    }

    /// The source given.
    pub(crate) fn into_original(self) -> S {
        self.original
    }

    /// The source given, whatever was repaired.
    pub(crate) fn original(&self) -> &S {
        &self.original
    }

    /// Records the volume's authenticated number, for reports.
    pub(crate) fn set_number(&self, number: u32) {
        self.number.store(number, Ordering::Relaxed);
    }

    /// The repair, if the volume was repaired and something was lost.
    pub(crate) fn repair_report(&self) -> Option<VolumeRepair> {
        match self.outcome.get()? {
            Outcome::Repaired { report, .. } if !report.was_intact() => Some(VolumeRepair {
                volume: self.number.load(Ordering::Relaxed),
                report: report.clone(),
            }),
            _ => None,
        }
    }

    /// Why a repair was tried and failed, or restored only part of the
    /// volume, if it did.
    pub(crate) fn repair_failure(&self) -> Option<&Error> {
        match self.outcome.get()? {
            Outcome::Failed(err) => Some(err),
            Outcome::Repaired { shortfall, .. } => shortfall.as_ref(),
        }
    }

    /// The repaired copy and the byte ranges it could not restore,
    /// repairing the volume first if that was not tried yet; `None` if
    /// repair is off or failed.
    pub(crate) fn repaired(&self) -> Option<(&File, &[Range<u64>])> {
        if !self.settings.enabled {
            return None;
        }
        match self.outcome.get_or_init(|| self.repair()) {
            Outcome::Repaired { copy, lost, .. } => Some((copy, lost)),
            Outcome::Failed(_) => None,
        }
    }

    /// The error to give for damage `err` of this volume that repair did
    /// not mend: the repair's own when it ran out of parity (it says what
    /// was lost), else `err`.
    pub(crate) fn unmended(&self, err: Error) -> Error {
        match self.repair_failure() {
            Some(Error::Unrecoverable {
                at,
                stripe,
                lost,
                m,
            }) => Error::Unrecoverable {
                at: at.clone(),
                stripe: *stripe,
                lost: *lost,
                m: *m,
            },
            _ => err,
        }
    }

    /// Runs `step` against this volume, and once more after repairing it
    /// if it failed with damage; a failure that repair did not mend is
    /// given as [`unmended`](Self::unmended) says.
    pub(crate) fn mending<T>(
        &self,
        mut step: impl FnMut() -> Result<T, Error>,
    ) -> Result<T, Error> {
        match step() {
            Err(err) if is_repairable_damage(&err) => match self.repaired() {
                Some(_) => step().map_err(|err| self.unmended(err)),
                None => Err(self.unmended(err)),
            },
            other => other,
        }
    }

    fn repair(&self) -> Outcome {
        // A readable header without the parity flag: nothing to repair
        // from, and no need to read the whole volume to learn that.
        if let Ok((header, _)) = read_header(&self.original, self.input)
            && header.set.parity.is_none()
        {
            return Outcome::Failed(Error::NoParity {
                at: Location::input(self.input).name(self.original.name()),
            });
        }
        let dir = self.settings.dir();
        let mut copy = match tempfile::tempfile_in(&dir) {
            Ok(copy) => copy,
            Err(err) => return Outcome::Failed(Error::Io(err)),
        };
        // Every stripe that can be restored is: past the margin, only the
        // sectors of the stripes that lost too much stay damaged.
        match repair_volume_best_effort(&self.original, &mut copy) {
            Ok(report) => {
                let lost: Vec<Range<u64>> = report
                    .map
                    .runs()
                    .filter(|(_, state)| *state == SectorState::Unrecoverable)
                    .map(|(sectors, _)| sectors.start * SECTOR..sectors.end * SECTOR)
                    .collect();
                let shortfall = lost.first().map(|first| Error::Unrecoverable {
                    at: Location::input(self.input)
                        .name(self.original.name())
                        .at_byte(first.start),
                    stripe: report.margin.worst_stripe,
                    lost: usize::from(report.margin.used),
                    m: report.margin.of,
                });
                Outcome::Repaired {
                    copy,
                    report,
                    lost,
                    shortfall,
                }
            }
            Err(err) => Outcome::Failed(err),
        }
    }
}

/// Whether `err` is damage that parity may mend: an unreadable sector, or
/// bytes that fail a check (a chunk's tag or digest, the header's MAC or
/// structure, the trailer).
pub(crate) fn is_repairable_damage(err: &Error) -> bool {
    match err {
        Error::Read { source, .. } => is_unreadable(source),
        Error::Unauthenticated { .. }
        | Error::DigestMismatch { .. }
        | Error::HeaderDamaged { .. }
        | Error::MalformedHeader { .. }
        | Error::MalformedTrailer { .. }
        | Error::MalformedChunk { .. } => true,
        _ => false,
    }
}

impl<S: VolumeSource> VolumeSource for VolumeSlot<S> {
    fn size(&self) -> io::Result<u64> {
        match self.outcome.get() {
            Some(Outcome::Repaired { copy, .. }) => Ok(copy.metadata()?.len()),
            _ => self.original.size(),
        }
    }

    /// From the copy once there is one; an unreadable sector of the source
    /// given is damage, so it repairs the volume first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if let Some(Outcome::Repaired { copy, lost, .. }) = self.outcome.get() {
            return read_repaired(copy, lost, buf, offset);
        }
        match self.original.read_exact_at(buf, offset) {
            Err(err) if is_unreadable(&err) => match self.repaired() {
                Some((copy, lost)) => read_repaired(copy, lost, buf, offset),
                None => Err(err),
            },
            other => other,
        }
    }

    fn name(&self) -> Option<&str> {
        self.original.name()
    }
}

/// Reads the repaired copy; a read that touches a range the repair could
/// not restore fails as an unreadable sector does.
fn read_repaired(file: &File, lost: &[Range<u64>], buf: &mut [u8], offset: u64) -> io::Result<()> {
    let end = offset.saturating_add(buf.len() as u64);
    let first = lost.partition_point(|range| range.end <= offset);
    if lost.get(first).is_some_and(|range| range.start < end) {
        return Err(unreadable_error());
    }
    read_file_at(file, buf, offset)
}

#[cfg(unix)]
fn read_file_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_file_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
