//! The parity digest block (SPEC.md §16.7) built while the parity is
//! produced, so the seal pass never reads the parity back.
//!
//! A digest group is 32 consecutive parity sectors in volume order, and
//! the parity is stored layer after layer, but the pass produces it stripe
//! batch by stripe batch: every layer grows at once. A group inside one
//! layer is hashed as its runs arrive. A group that crosses into the next
//! layer (m·L is rarely a multiple of 32) needs that layer's first sectors
//! after this layer's last ones: each layer keeps its head (the sectors of
//! a group that started in an earlier layer, fewer than 32) and its open
//! tail hasher, and [`DigestStream::finish`] joins them in layer order.

use crate::format::SECTOR as SECTOR_BYTES;
use crate::parity::ParityGeometry;
use crate::parity::geometry::DIGEST_GROUP_SECTORS;

/// A sector, as a length in memory.
const SECTOR: usize = SECTOR_BYTES as usize;

/// The digest block of one volume's parity, fed in stripe order per layer.
pub(crate) struct DigestStream {
    layer_sectors: u64,
    parity_sectors: u64,
    block_len: usize,
    /// One digest per group, filled as each group completes.
    digests: Vec<Option<[u8; 32]>>,
    layers: Vec<LayerDigest>,
}

/// Where one parity layer's sectors went so far.
#[derive(Default)]
struct LayerDigest {
    /// The next stripe this layer expects.
    next_stripe: u64,
    /// Sectors at the layer's start that belong to a group begun in an
    /// earlier layer: at most 31 sectors.
    head: Vec<u8>,
    /// The group begun in this layer and not complete yet, with its hasher.
    open: Option<(u64, blake3::Hasher)>,
}

impl DigestStream {
    /// A stream for `geometry`'s m·L parity sectors. Memory: 32 bytes per
    /// group plus fewer than 32 sectors per parity layer (2.7 MB at m = 43).
    pub(crate) fn new(geometry: &ParityGeometry) -> Self {
        Self {
            layer_sectors: u64::from(geometry.layer_sectors()),
            parity_sectors: geometry.parity_sectors(),
            block_len: geometry.digest_block_len() as usize,
            digests: vec![None; geometry.digest_groups() as usize],
            layers: (0..geometry.m()).map(|_| LayerDigest::default()).collect(),
        }
    }

    /// Takes the parity of layer `q`, stripes `first..` (whole sectors).
    ///
    /// # Panics
    ///
    /// If the run is not whole sectors, leaves the layer, or is not the
    /// layer's next run: the pass's bug, never untrusted input.
    pub(crate) fn record(&mut self, q: u16, first: u64, run: &[u8]) {
        let layer_sectors = self.layer_sectors;
        let layer = &mut self.layers[usize::from(q)];
        assert_eq!(layer.next_stripe, first, "runs of a layer arrive in order");
        assert_eq!(run.len() % SECTOR, 0, "runs are whole sectors");
        let sectors = (run.len() / SECTOR) as u64;
        assert!(first + sectors <= layer_sectors, "a run stays in its layer");
        layer.next_stripe = first + sectors;
        let layer_start = u64::from(q) * layer_sectors;
        let mut at = layer_start + first;
        let mut rest = run;
        while !rest.is_empty() {
            let group = at / DIGEST_GROUP_SECTORS;
            let group_start = group * DIGEST_GROUP_SECTORS;
            let group_end = (group_start + DIGEST_GROUP_SECTORS).min(self.parity_sectors);
            let len = (group_end - at).min((rest.len() / SECTOR) as u64);
            let (piece, after) = rest.split_at(len as usize * SECTOR);
            if group_start < layer_start {
                layer.head.extend_from_slice(piece);
            } else {
                let hasher = match &mut layer.open {
                    Some((open, hasher)) if *open == group => hasher,
                    slot => &mut slot.insert((group, blake3::Hasher::new())).1,
                };
                hasher.update(piece);
                if at + len == group_end {
                    let (_, hasher) = layer.open.take().expect("inserted above");
                    self.digests[group as usize] = Some(*hasher.finalize().as_bytes());
                }
            }
            at += len;
            rest = after;
        }
    }

    /// The digest block: every group's BLAKE3, zero-padded to whole sectors.
    ///
    /// # Panics
    ///
    /// If some parity sector was never recorded: the pass's bug.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let mut carried: Option<(u64, blake3::Hasher)> = None;
        for (q, layer) in self.layers.iter_mut().enumerate() {
            assert_eq!(
                layer.next_stripe, self.layer_sectors,
                "every stripe recorded"
            );
            if !layer.head.is_empty() {
                let (group, hasher) = carried
                    .as_mut()
                    .expect("a layer's head continues a group from an earlier layer");
                hasher.update(&layer.head);
                let end = q as u64 * self.layer_sectors + (layer.head.len() / SECTOR) as u64;
                let group_end = ((*group + 1) * DIGEST_GROUP_SECTORS).min(self.parity_sectors);
                if end == group_end {
                    let (group, hasher) = carried.take().expect("matched above");
                    self.digests[group as usize] = Some(*hasher.finalize().as_bytes());
                }
            }
            if let Some(open) = layer.open.take() {
                assert!(carried.is_none(), "one group open at a time");
                carried = Some(open);
            }
        }
        assert!(carried.is_none(), "the last group ends with the parity");
        let mut block = Vec::with_capacity(self.block_len);
        for digest in &self.digests {
            block.extend_from_slice(&digest.expect("every group completed"));
        }
        block.resize(self.block_len, 0);
        block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parity bytes that differ in every sector, so a misplaced run shows.
    fn parity_of(geometry: &ParityGeometry) -> Vec<u8> {
        let len = geometry.parity_sectors() as usize * SECTOR;
        (0..len).map(|i| (i / SECTOR * 7 + i) as u8).collect()
    }

    /// Feeds `parity` batch by batch, every layer per batch, as the pass does.
    fn streamed(geometry: &ParityGeometry, parity: &[u8], batch: u64) -> Vec<u8> {
        let layer = u64::from(geometry.layer_sectors());
        let mut stream = DigestStream::new(geometry);
        let mut first = 0;
        while first < layer {
            let count = batch.min(layer - first);
            for q in 0..geometry.m() {
                let start = ((u64::from(q) * layer + first) as usize) * SECTOR;
                stream.record(q, first, &parity[start..start + count as usize * SECTOR]);
            }
            first += count;
        }
        stream.finish()
    }

    #[test]
    fn streamed_block_equals_the_block_of_the_whole_parity() {
        // Layers shorter than a group, groups crossing one or many layer
        // boundaries, layers that are whole groups, the small-volume rule.
        for (data_sectors, percent) in [
            (1, 20),
            (5, 100),
            (40, 200),
            (212 * 7, 20),
            (212 * 32, 20),
            (212 * 45 + 3, 20),
            (212 * 100, 20),
            (85 * 33, 200),
            (247 * 70, 3),
        ] {
            let geometry = ParityGeometry::from_data(data_sectors, percent).expect("valid");
            let parity = parity_of(&geometry);
            let whole = geometry.digest_block(&parity);
            for batch in [1, 7, 32, 64, 1 << 20] {
                assert_eq!(
                    streamed(&geometry, &parity, batch),
                    whole,
                    "{data_sectors} sectors at {percent} %, batch {batch}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "runs of a layer arrive in order")]
    fn a_run_out_of_order_is_a_bug() {
        let geometry = ParityGeometry::from_data(212 * 100, 20).expect("valid");
        let mut stream = DigestStream::new(&geometry);
        stream.record(0, 64, &[0; SECTOR]);
    }

    #[test]
    #[should_panic(expected = "every stripe recorded")]
    fn a_missing_run_is_a_bug() {
        let geometry = ParityGeometry::from_data(212 * 100, 20).expect("valid");
        let stream = DigestStream::new(&geometry);
        let _ = stream.finish();
    }
}
