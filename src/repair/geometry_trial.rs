//! Finding the parity geometry of a volume that lost both of its copies
//! (the end sector and the header's p): every p gives at most two
//! geometries of the volume's length (SPEC.md §16.8), and the right one
//! is the one under which a stripe checks: from k of its sectors that
//! their CRC-32s prove right, the code gives one more such sector back.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};

use crate::format::SECTOR;
use crate::parity::{
    CHECKS_PER_SECTOR, MAX_PERCENT, MIN_PERCENT, ParityGeometry, Place, StripeDecoder,
    parse_check_sector, sector_crc,
};
use crate::repair::out::Out;
use crate::repair::sector_set::SectorSet;

/// The redundancy `kuvert seal` uses unless told otherwise: tried first.
const DEFAULT_PERCENT: u16 = 20;

/// Stripes tried per geometry, spread over the layers, before it is given
/// up: each needs k + 1 sectors its CRC-32s prove right.
const PROBE_STRIPES: u32 = 8;

/// The geometry of the output's length under which a stripe checks, if
/// any p gives one.
pub(crate) fn geometry_by_trial<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    lost: &SectorSet,
) -> Option<ParityGeometry> {
    let percents = std::iter::once(DEFAULT_PERCENT)
        .chain((MIN_PERCENT..=MAX_PERCENT).filter(|&p| p != DEFAULT_PERCENT));
    let mut tried = Vec::new();
    for percent in percents {
        let Ok(candidates) = ParityGeometry::for_volume_len(out.len(), percent) else {
            continue;
        };
        for geometry in candidates {
            let shape = (
                geometry.k(),
                geometry.m(),
                geometry.layer_sectors(),
                geometry.data_sectors(),
            );
            if tried.contains(&shape) {
                continue;
            }
            tried.push(shape);
            if stripes_check(out, &geometry, lost) {
                return Some(geometry);
            }
        }
    }
    None
}

/// Whether some probed stripe checks under `geometry`; false if none
/// could be probed.
fn stripes_check<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    geometry: &ParityGeometry,
    lost: &SectorSet,
) -> bool {
    let mut checks = CheckEntries::new(geometry);
    let mut decoder = StripeDecoder::for_geometry(geometry);
    let l = geometry.layer_sectors();
    let probes = PROBE_STRIPES.min(l);
    for probe in 0..probes {
        let stripe = u32::try_from(u64::from(probe) * u64::from(l) / u64::from(probes))
            .expect("below L, a u32");
        match stripe_checks(out, geometry, lost, &mut checks, &mut decoder, stripe) {
            Some(verdict) => return verdict,
            None => continue,
        }
    }
    false
}

/// Whether `stripe` checks: restored from all but one of the sectors its
/// CRC-32s prove right, the one left out comes back as it is. `None` if
/// fewer than k + 1 are proved right (or cannot be read).
fn stripe_checks<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    geometry: &ParityGeometry,
    lost: &SectorSet,
    checks: &mut CheckEntries,
    decoder: &mut StripeDecoder,
    stripe: u32,
) -> Option<bool> {
    let layers = geometry.layers();
    let mut runs = vec![vec![0u8; SECTOR as usize]; usize::from(layers)];
    let mut doubtful = Vec::new();
    let mut probe = None;
    for layer in 0..layers {
        let run = &mut runs[usize::from(layer)];
        let Some(sector) = geometry.sector_at(Place { stripe, layer }) else {
            // A virtual sector: zeros, known right.
            continue;
        };
        let right = !lost.contains(sector)
            && out.read_at(run, sector * SECTOR).is_ok()
            && checks.entry(out, sector) == Some(sector_crc(run));
        if !right {
            doubtful.push(layer);
        } else if probe.is_none() && layer >= geometry.k() {
            // A parity sector: the data layers alone cannot give it back
            // unless the code is the right one.
            probe = Some(layer);
        }
    }
    let probe = probe?;
    doubtful.push(probe);
    if doubtful.len() > usize::from(geometry.m()) {
        return None;
    }
    let kept = runs[usize::from(probe)].clone();
    runs[usize::from(probe)].fill(0);
    let mut views: Vec<&mut [u8]> = runs.iter_mut().map(Vec::as_mut_slice).collect();
    decoder
        .restore(u64::from(stripe), &mut views, &doubtful)
        .ok()?;
    Some(runs[usize::from(probe)] == kept)
}

/// The check block's entries under one geometry, read one check sector at
/// a time as sectors ask for them.
struct CheckEntries {
    first: u64,
    sectors: u64,
    parsed: HashMap<u64, Option<Box<[u32; CHECKS_PER_SECTOR as usize]>>>,
}

impl CheckEntries {
    fn new(geometry: &ParityGeometry) -> Self {
        CheckEntries {
            first: geometry.check_block_start(),
            sectors: geometry.check_block_sectors(),
            parsed: HashMap::new(),
        }
    }

    /// Covered sector `sector`'s entry, if its check sector is whole.
    fn entry<W: Read + Write + Seek + ?Sized>(
        &mut self,
        out: &mut Out<'_, W>,
        sector: u64,
    ) -> Option<u32> {
        let index = sector / CHECKS_PER_SECTOR;
        if index >= self.sectors {
            return None;
        }
        let first = self.first;
        let entries = self.parsed.entry(index).or_insert_with(|| {
            out.sector(first + index)
                .ok()
                .and_then(|bytes| parse_check_sector(&bytes))
                .map(Box::new)
        });
        entries
            .as_ref()
            .map(|entries| entries[(sector % CHECKS_PER_SECTOR) as usize])
    }
}
