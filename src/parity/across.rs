//! Parity volumes across a set (SPEC.md §17): P extra files `STEM.pNN.kuv`
//! such that any P missing or destroyed data volumes are rebuilt byte for
//! byte, without any key.
//!
//! Stripe s is sector s of every data volume's whole file (zero beyond its
//! length); parity volume q holds recovery shard q of every stripe, in the
//! Leopard GF(2^16) high-rate code of SPEC.md §16.4 with k = n data volumes
//! and m = P. The code needs all n sectors of a stripe at once, so parity
//! volumes are written after the last data volume, by reading the set back
//! once ([`write_parity_volumes`]); there is no incremental path.

pub(crate) mod format;
pub(crate) mod rebuild;
pub(crate) mod write;

use crate::error::{Error, Location, Volume};
use crate::format::SECTOR;
use crate::volumes::VolumeSource;

pub use format::PARITY_VOLUME_MAGIC;
pub use rebuild::{ParitySet, ParityVolumeCheck};
pub use write::write_parity_volumes;

/// Stripes of one digest group of the body (32 sectors, 64 KiB per
/// volume): a group that fails its digest is one erasure.
pub(crate) const GROUP_STRIPES: u64 = format::GROUP_SECTORS;
/// Most bytes a batch of stripes holds, all volumes together: the codec's
/// cost per call (its decoder evaluates an erasure locator over the whole
/// field) is then spread over up to 16 groups.
const BATCH_BYTES: u64 = 32 << 20;

/// Stripes per batch for `volumes` data and parity volumes: whole groups,
/// 1 to 16 of them, within [`BATCH_BYTES`].
pub(crate) fn batch_stripes(volumes: usize) -> u64 {
    let group_bytes = GROUP_STRIPES * SECTOR * volumes as u64;
    (BATCH_BYTES / group_bytes).clamp(1, 16) * GROUP_STRIPES
}

/// Reads `run.len()` bytes of a data volume's stripe run at `offset`,
/// zero beyond `len` (SPEC.md §17.3: a shorter volume is padded with
/// virtual zero sectors).
pub(crate) fn read_run<S: VolumeSource + ?Sized>(
    source: &S,
    len: u64,
    offset: u64,
    run: &mut [u8],
) -> std::io::Result<()> {
    let real = len.saturating_sub(offset).min(run.len() as u64) as usize;
    let (head, tail) = run.split_at_mut(real);
    tail.fill(0);
    if real > 0 {
        source.read_exact_at(head, offset)?;
    }
    Ok(())
}

/// Sectors of a data volume of `len` bytes, the last one partial.
pub(crate) fn sectors_of(len: u64) -> u64 {
    len.div_ceil(SECTOR)
}

/// Parity volume `index` (its position among those given, from 1), named
/// after its source.
pub(crate) fn parity_location<S: VolumeSource + ?Sized>(source: &S, index: usize) -> Location {
    Location::new(Volume::Input(index)).name(source.name())
}

/// An [`Error::Read`] at `offset` of `source`.
pub(crate) fn read_error<S: VolumeSource + ?Sized>(
    source: &S,
    input: usize,
    offset: u64,
    err: std::io::Error,
) -> Error {
    Error::Read {
        at: Location::new(Volume::Input(input))
            .name(source.name())
            .byte(offset),
        source: err,
    }
}
