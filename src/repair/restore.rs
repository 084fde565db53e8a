//! Restoring erased sectors batch by batch of stripes: the k + m runs of a
//! batch are read back from the output, each group of consecutive stripes
//! that lost the same layers is decoded at once, and only the lost runs
//! are written back.

use std::io::{self, Read, Seek, Write};
use std::ops::Range;

use crate::format::SECTOR;
use crate::parity::codec::BATCH_STRIPES;
use crate::parity::{ParityError, ParityGeometry, StripeDecoder};
use crate::repair::out::Out;
use crate::repair::sector_set::SectorSet;

/// A stripe that lost more sectors than it has parity sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LostStripe {
    pub(crate) stripe: u64,
    pub(crate) lost: usize,
}

/// What one pass of [`Restorer::restore`] did.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// Sectors rewritten from parity.
    pub(crate) sectors: SectorSet,
    /// Stripes left as they were, first first.
    pub(crate) unrecoverable: Vec<LostStripe>,
}

/// The pieces of the layers that `range` (volume sectors) covers, as
/// (layer, stripes).
fn layer_pieces(geometry: &ParityGeometry, range: Range<u64>) -> Vec<(u64, Range<u64>)> {
    let l = u64::from(geometry.layer_sectors());
    let n_d = geometry.data_sectors();
    let layers_end = n_d + geometry.parity_sectors();
    let mut pieces = Vec::new();
    for (region_start, region_end, first_layer) in
        [(0, n_d, 0), (n_d, layers_end, u64::from(geometry.k()))]
    {
        let start = range.start.max(region_start);
        let end = range.end.min(region_end);
        let mut at = start;
        while at < end {
            let offset = at - region_start;
            let (layer, stripe) = (offset / l, offset % l);
            let run = (end - at).min(l - stripe);
            pieces.push((first_layer + layer, stripe..stripe + run));
            at += run;
        }
    }
    pieces
}

/// The stripes that hold a sector of `sectors`.
pub(crate) fn stripes_of(geometry: &ParityGeometry, sectors: &SectorSet) -> SectorSet {
    let l = u64::from(geometry.layer_sectors());
    let mut stripes = SectorSet::new();
    for range in sectors.ranges() {
        for (_, run) in layer_pieces(geometry, range) {
            stripes.insert_range(run);
            if stripes.len() == l {
                return stripes;
            }
        }
    }
    stripes
}

/// Sectors lost by each stripe (index = stripe), counting `erased` in the
/// layers.
pub(crate) fn lost_per_stripe(geometry: &ParityGeometry, erased: &SectorSet) -> Vec<u16> {
    let mut lost = vec![0u16; geometry.layer_sectors() as usize];
    for range in erased.ranges() {
        for (_, run) in layer_pieces(geometry, range) {
            for count in &mut lost[run.start as usize..run.end as usize] {
                *count += 1;
            }
        }
    }
    lost
}

/// The sectors of `doubted` whose stripe stays within its margin with all
/// of its doubted sectors erased on top of `erased`: those stripes can
/// afford to restore them rather than trust them.
pub(crate) fn affordable(
    geometry: &ParityGeometry,
    erased: &SectorSet,
    doubted: &SectorSet,
) -> SectorSet {
    let lost = lost_per_stripe(geometry, erased);
    let extra = lost_per_stripe(geometry, doubted);
    let m = geometry.m();
    let mut chosen = SectorSet::new();
    for range in doubted.ranges() {
        for sector in range {
            let fits = geometry.stripe_of(sector).is_some_and(|stripe| {
                let stripe = stripe as usize;
                lost[stripe].saturating_add(extra[stripe]) <= m
            });
            if fits {
                chosen.insert(sector);
            }
        }
    }
    chosen
}

/// The sectors of `sectors` that lie in one of `stripes`.
pub(crate) fn in_stripes(
    geometry: &ParityGeometry,
    sectors: &SectorSet,
    stripes: &SectorSet,
) -> SectorSet {
    let mut found = SectorSet::new();
    for range in sectors.ranges() {
        for sector in range {
            if geometry
                .stripe_of(sector)
                .is_some_and(|stripe| stripes.contains(u64::from(stripe)))
            {
                found.insert(sector);
            }
        }
    }
    found
}

/// One decoder and one batch buffer per thread, reused from batch to
/// batch: memory is `threads` × (k + m) runs of [`BATCH_STRIPES`] sectors
/// (32 MiB each at 255 layers).
pub(crate) struct Restorer {
    workers: Vec<Worker>,
}

/// A thread's decoder and batch buffer.
struct Worker {
    decoder: StripeDecoder,
    buf: Vec<u8>,
}

/// One batch of stripes to restore: the stripes, and the layers each lost
/// (empty for a stripe left alone).
struct Batch {
    window: Range<u64>,
    lost: Vec<Vec<u16>>,
}

/// What decoding a batch gave: the runs to write back (layer, first
/// stripe offset, end offset) and the stripes past their margin.
#[derive(Default)]
struct Decoded {
    runs: Vec<(u16, usize, usize)>,
    unrecoverable: Vec<LostStripe>,
}

impl Restorer {
    /// A restorer decoding on `threads` threads (at least one).
    pub(crate) fn new(geometry: &ParityGeometry, threads: usize) -> Self {
        let workers = (0..threads.max(1))
            .map(|_| Worker {
                decoder: StripeDecoder::for_geometry(geometry),
                buf: Vec::new(),
            })
            .collect();
        Restorer { workers }
    }

    /// Restores the `erased` sectors of the stripes in `stripes` in place
    /// in `out`. A stripe that lost more than m sectors is left as it is
    /// and listed. Batches are read and written back on this thread and
    /// decoded on the workers', as many at a time as there are workers.
    pub(crate) fn restore<W: Read + Write + Seek + ?Sized>(
        &mut self,
        out: &mut Out<'_, W>,
        geometry: &ParityGeometry,
        erased: &SectorSet,
        stripes: &SectorSet,
    ) -> io::Result<Restored> {
        let mut restored = Restored::default();
        let l = u64::from(geometry.layer_sectors());
        let batch = u64::from(BATCH_STRIPES);
        let windows = (0..l.div_ceil(batch))
            .map(|index| index * batch..(index * batch + batch).min(l))
            .filter(|window| stripes.intersects(window.clone()));
        let batches: Vec<Batch> = windows
            .filter_map(|window| lost_layers(geometry, erased, stripes, window))
            .collect();
        for round in batches.chunks(self.workers.len()) {
            for (batch, worker) in round.iter().zip(&mut self.workers) {
                read_batch(out, geometry, batch, &mut worker.buf)?;
            }
            let decoded: Vec<Result<Decoded, ParityError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = round
                    .iter()
                    .zip(&mut self.workers)
                    .map(|(batch, worker)| {
                        scope.spawn(move || decode_batch(geometry, batch, worker))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| handle.join().expect("a decoding thread does not panic"))
                    .collect()
            });
            for ((batch, worker), decoded) in round.iter().zip(&self.workers).zip(decoded) {
                let decoded = decoded.map_err(codec_failure)?;
                let run_len = (batch.window.end - batch.window.start) as usize * SECTOR as usize;
                for &(layer, from, to) in &decoded.runs {
                    let span = layer_span(geometry, layer, batch.window.clone())
                        .expect("a lost sector is a stored one");
                    let first = span.start + from as u64;
                    let run = &worker.buf[usize::from(layer) * run_len..][..run_len];
                    out.write_at(
                        &run[from * SECTOR as usize..to * SECTOR as usize],
                        first * SECTOR,
                    )?;
                    restored
                        .sectors
                        .insert_range(first..first + (to - from) as u64);
                }
                restored.unrecoverable.extend(decoded.unrecoverable);
            }
        }
        Ok(restored)
    }
}

/// The layers each stripe of `window` lost (only for stripes in
/// `stripes`); `None` if none lost any.
fn lost_layers(
    geometry: &ParityGeometry,
    erased: &SectorSet,
    stripes: &SectorSet,
    window: Range<u64>,
) -> Option<Batch> {
    let count = (window.end - window.start) as usize;
    let mut lost: Vec<Vec<u16>> = vec![Vec::new(); count];
    for layer in 0..geometry.layers() {
        let Some(span) = layer_span(geometry, layer, window.clone()) else {
            continue;
        };
        for run in erased.overlapping(span.clone()) {
            for sector in run {
                lost[(sector - span.start) as usize].push(layer);
            }
        }
    }
    for (offset, lost) in lost.iter_mut().enumerate() {
        if !stripes.contains(window.start + offset as u64) {
            lost.clear();
        }
    }
    (!lost.iter().all(Vec::is_empty)).then_some(Batch { window, lost })
}

/// Reads the k + m runs of `batch` into `buf`, zeros where a data layer
/// is virtual.
fn read_batch<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    geometry: &ParityGeometry,
    batch: &Batch,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let run_len = (batch.window.end - batch.window.start) as usize * SECTOR as usize;
    buf.clear();
    buf.resize(usize::from(geometry.layers()) * run_len, 0);
    for (layer, run) in buf.chunks_exact_mut(run_len).enumerate() {
        if let Some(span) = layer_span(geometry, layer as u16, batch.window.clone()) {
            let stored = ((span.end - span.start) * SECTOR) as usize;
            out.read_at(&mut run[..stored], span.start * SECTOR)?;
        }
    }
    Ok(())
}

/// Decodes each group of consecutive stripes of `batch` that lost the same
/// layers, in the worker's buffer.
fn decode_batch(
    geometry: &ParityGeometry,
    batch: &Batch,
    worker: &mut Worker,
) -> Result<Decoded, ParityError> {
    let mut decoded = Decoded::default();
    let count = batch.lost.len();
    let run_len = count * SECTOR as usize;
    let lost = &batch.lost;
    let mut at = 0;
    while at < count {
        if lost[at].is_empty() {
            at += 1;
            continue;
        }
        let mut end = at + 1;
        while end < count && lost[end] == lost[at] {
            end += 1;
        }
        let group = &lost[at];
        let stripe = batch.window.start + at as u64;
        if group.len() > usize::from(geometry.m()) {
            decoded.unrecoverable.push(LostStripe {
                stripe,
                lost: group.len(),
            });
        } else {
            let (from, to) = (at * SECTOR as usize, end * SECTOR as usize);
            let mut runs: Vec<&mut [u8]> = worker
                .buf
                .chunks_exact_mut(run_len)
                .map(|run| &mut run[from..to])
                .collect();
            worker.decoder.restore(stripe, &mut runs, group)?;
            decoded
                .runs
                .extend(group.iter().map(|&layer| (layer, at, end)));
        }
        at = end;
    }
    Ok(decoded)
}

/// The stored volume sectors of layer `layer` in stripes `window`: a
/// prefix of the window (the last data layers may stop short of L, or be
/// virtual as a whole).
fn layer_span(geometry: &ParityGeometry, layer: u16, window: Range<u64>) -> Option<Range<u64>> {
    let l = u64::from(geometry.layer_sectors());
    let (base, limit) = if layer < geometry.k() {
        (u64::from(layer) * l, geometry.data_sectors())
    } else {
        let q = u64::from(layer - geometry.k());
        let n_d = geometry.data_sectors();
        (n_d + q * l, n_d + geometry.parity_sectors())
    };
    let start = base + window.start;
    let end = (base + window.end).min(limit);
    (start < end).then_some(start..end)
}

fn codec_failure(err: ParityError) -> io::Error {
    io::Error::other(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_at_layer_boundaries() {
        // 1000 sectors at 20 %: k = 212, L = 5, m = 43.
        let geometry = ParityGeometry::from_data(1000, 20).expect("geometry");
        assert_eq!(geometry.layer_sectors(), 5);
        assert_eq!(
            layer_pieces(&geometry, 3..12),
            vec![(0, 3..5), (1, 0..5), (2, 0..2)]
        );
        // Across the data span's end into parity layer 0.
        assert_eq!(
            layer_pieces(&geometry, 998..1002),
            vec![(199, 3..5), (212, 0..2)]
        );
        let lost: SectorSet = (3..12).collect();
        assert_eq!(lost_per_stripe(&geometry, &lost), vec![2, 2, 1, 2, 2]);
        assert_eq!(
            stripes_of(&geometry, &(7..8).collect())
                .ranges()
                .collect::<Vec<_>>(),
            vec![2..3]
        );
    }
}
