//! The parity codec (SPEC.md §16.2–§16.4, §16.10): Leopard GF(2^16) in its
//! high-rate form, from `reed-solomon-simd`, over runs of whole sectors.
//!
//! The code works symbol position by symbol position, so a run of B sectors
//! from each layer (B consecutive stripes) encodes exactly as B stripes
//! would one by one: a batch costs one call. High rate is chosen
//! explicitly, never through `ReedSolomonEncoder`, whose choice of rate by
//! the shard counts would change the parity bytes for some k and m.

use std::borrow::Cow;

use reed_solomon_simd::engine::DefaultEngine;
use reed_solomon_simd::rate::{HighRateDecoder, HighRateEncoder, RateDecoder, RateEncoder};

use crate::format::SECTOR as SECTOR_BYTES;
use crate::parity::{LAYERS, ParityError, ParityGeometry, Place};

/// A sector, as a length in memory.
const SECTOR: usize = SECTOR_BYTES as usize;

/// Stripes per batch that [`encode_parity`] and [`restore`] use: 64, so a
/// run is 128 KiB and a 255-layer batch 32 MiB.
pub const BATCH_STRIPES: u32 = 64;

/// Encodes batches of stripes, k data runs to m parity runs. One per
/// thread: it owns its work space and reuses it from call to call.
pub struct StripeEncoder {
    k: usize,
    m: usize,
    encoder: HighRateEncoder<DefaultEngine>,
}

impl StripeEncoder {
    /// An encoder for k data and m parity shards per stripe.
    ///
    /// # Errors
    ///
    /// [`ParityError::Shards`] unless 1 ≤ k, 1 ≤ m and k + m ≤ 255.
    pub fn new(k: u16, m: u16) -> Result<Self, ParityError> {
        check_counts(k, m)?;
        let (k, m) = (usize::from(k), usize::from(m));
        let encoder = HighRateEncoder::new(k, m, SECTOR, DefaultEngine::new(), None)
            .map_err(|_| shards("k and m are outside the codec's range"))?;
        Ok(Self { k, m, encoder })
    }

    /// An encoder for `geometry`'s stripes.
    pub fn for_geometry(geometry: &ParityGeometry) -> Self {
        Self::new(geometry.k(), geometry.m()).expect("a geometry has valid counts")
    }

    /// Computes the m parity runs of `data`, k runs of one length, a
    /// positive multiple of 2048 bytes (a virtual sector is passed as zeros).
    ///
    /// # Errors
    ///
    /// [`ParityError::Shards`] if the counts or lengths do not fit.
    pub fn encode(&mut self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), ParityError> {
        let run = run_len(
            data.iter()
                .map(|run| run.len())
                .chain(parity.iter().map(|run| run.len())),
        )?;
        if data.len() != self.k || parity.len() != self.m {
            return Err(shards("not k data runs and m parity runs"));
        }
        self.encoder
            .reset(self.k, self.m, run)
            .map_err(|_| shards("run length refused by the codec"))?;
        for run in data {
            self.encoder
                .add_original_shard(run)
                .map_err(|_| shards("data run refused by the codec"))?;
        }
        let result = self
            .encoder
            .encode()
            .map_err(|_| shards("the codec refused to encode"))?;
        for (out, recovery) in parity.iter_mut().zip(result.recovery_iter()) {
            out.copy_from_slice(recovery);
        }
        Ok(())
    }
}

/// Restores the lost runs of a batch of stripes that lost the same layers.
/// One per thread, like [`StripeEncoder`].
pub struct StripeDecoder {
    k: usize,
    m: usize,
    decoder: HighRateDecoder<DefaultEngine>,
    encoder: StripeEncoder,
}

impl StripeDecoder {
    /// A decoder for k data and m parity shards per stripe.
    ///
    /// # Errors
    ///
    /// [`ParityError::Shards`] unless 1 ≤ k, 1 ≤ m and k + m ≤ 255.
    pub fn new(k: u16, m: u16) -> Result<Self, ParityError> {
        let encoder = StripeEncoder::new(k, m)?;
        let (k, m) = (usize::from(k), usize::from(m));
        let decoder = HighRateDecoder::new(k, m, SECTOR, DefaultEngine::new(), None)
            .map_err(|_| shards("k and m are outside the codec's range"))?;
        Ok(Self {
            k,
            m,
            decoder,
            encoder,
        })
    }

    /// A decoder for `geometry`'s stripes.
    pub fn for_geometry(geometry: &ParityGeometry) -> Self {
        Self::new(geometry.k(), geometry.m()).expect("a geometry has valid counts")
    }

    /// Rewrites the runs of `layers` (k data runs, then m parity runs, all
    /// of one length) named in `lost` from the others. `first_stripe` only
    /// names the batch in an error.
    ///
    /// # Errors
    ///
    /// [`ParityError::Unrecoverable`] if more than m layers are lost (the
    /// runs are then untouched); [`ParityError::Shards`] if the counts,
    /// lengths or layer numbers do not fit.
    pub fn restore(
        &mut self,
        first_stripe: u64,
        layers: &mut [&mut [u8]],
        lost: &[u16],
    ) -> Result<(), ParityError> {
        let run = run_len(layers.iter().map(|run| run.len()))?;
        if layers.len() != self.k + self.m {
            return Err(shards("not k + m runs"));
        }
        let mut is_lost = vec![false; self.k + self.m];
        for &layer in lost {
            let slot = is_lost
                .get_mut(usize::from(layer))
                .ok_or(shards("a lost layer beyond k + m"))?;
            if std::mem::replace(slot, true) {
                return Err(shards("a lost layer named twice"));
            }
        }
        if lost.len() > self.m {
            return Err(ParityError::Unrecoverable {
                stripe: first_stripe,
                lost: lost.len(),
                m: u16::try_from(self.m).expect("m ≤ 255"),
            });
        }
        let lost_data = is_lost[..self.k].iter().filter(|&&lost| lost).count();
        if lost_data > 0 {
            self.restore_data(layers, &is_lost, lost_data, run)?;
        }
        if is_lost[self.k..].contains(&true) {
            self.restore_parity(layers, &is_lost)?;
        }
        Ok(())
    }

    fn restore_data(
        &mut self,
        layers: &mut [&mut [u8]],
        is_lost: &[bool],
        lost_data: usize,
        run: usize,
    ) -> Result<(), ParityError> {
        let refused = |_| shards("the codec refused the runs");
        self.decoder.reset(self.k, self.m, run).map_err(refused)?;
        for (index, layer) in layers[..self.k].iter().enumerate() {
            if !is_lost[index] {
                self.decoder
                    .add_original_shard(index, &**layer)
                    .map_err(refused)?;
            }
        }
        // Any k runs determine the rest: as many parity runs as data runs
        // were lost, no more (each costs a copy and a multiplication).
        let survivors = (0..self.m)
            .filter(|&q| !is_lost[self.k + q])
            .take(lost_data);
        for q in survivors {
            self.decoder
                .add_recovery_shard(q, &*layers[self.k + q])
                .map_err(refused)?;
        }
        let result = self.decoder.decode().map_err(refused)?;
        for (index, restored) in result.restored_original_iter() {
            layers[index].copy_from_slice(restored);
        }
        Ok(())
    }

    fn restore_parity(
        &mut self,
        layers: &mut [&mut [u8]],
        is_lost: &[bool],
    ) -> Result<(), ParityError> {
        let (data, parity) = layers.split_at_mut(self.k);
        let data: Vec<&[u8]> = data.iter().map(|run| &**run).collect();
        let mut fresh: Vec<Vec<u8>> = vec![vec![0u8; data[0].len()]; self.m];
        let mut outputs: Vec<&mut [u8]> = fresh.iter_mut().map(Vec::as_mut_slice).collect();
        self.encoder.encode(&data, &mut outputs)?;
        for (q, run) in parity.iter_mut().enumerate() {
            if is_lost[self.k + q] {
                run.copy_from_slice(&fresh[q]);
            }
        }
        Ok(())
    }
}

/// The parity layers (m·L sectors, layer after layer) of a data span held
/// in memory, n_d·2048 bytes, encoded in batches of `batch_stripes`.
///
/// # Errors
///
/// [`ParityError::Shards`] if `data_span` is not n_d sectors long or
/// `batch_stripes` is 0.
pub fn encode_parity(
    geometry: &ParityGeometry,
    data_span: &[u8],
    batch_stripes: u32,
) -> Result<Vec<u8>, ParityError> {
    check_span(geometry, data_span.len(), batch_stripes)?;
    let layer_bytes = layer_bytes(geometry);
    let mut parity = vec![0u8; layer_bytes * usize::from(geometry.m())];
    let mut encoder = StripeEncoder::for_geometry(geometry);
    for (first, count) in batches(geometry.layer_sectors(), batch_stripes) {
        let runs = data_runs(geometry, data_span, first, count);
        let data: Vec<&[u8]> = runs.iter().map(|run| &**run).collect();
        let (start, end) = (first as usize * SECTOR, (first + count) as usize * SECTOR);
        let mut outputs: Vec<&mut [u8]> = parity
            .chunks_exact_mut(layer_bytes)
            .map(|layer| &mut layer[start..end])
            .collect();
        encoder.encode(&data, &mut outputs)?;
    }
    Ok(parity)
}

/// Restores the `erased` volume sectors (unreadable or known bad, in any
/// order; sectors outside the layers are ignored) of a volume held in
/// memory as its data span and its parity layers, stripe groups of equal
/// erasures at a time. Returns how many sectors it rewrote.
///
/// # Errors
///
/// [`ParityError::Unrecoverable`] for the first stripe group that lost more
/// than m sectors (groups before it are restored);
/// [`ParityError::Shards`] if the lengths do not fit the geometry.
pub fn restore(
    geometry: &ParityGeometry,
    data_span: &mut [u8],
    parity: &mut [u8],
    erased: &[u64],
    batch_stripes: u32,
) -> Result<u64, ParityError> {
    check_span(geometry, data_span.len(), batch_stripes)?;
    let layer_bytes = layer_bytes(geometry);
    if parity.len() != layer_bytes * usize::from(geometry.m()) {
        return Err(shards("parity is not m·L sectors"));
    }
    let mut lost: std::collections::BTreeMap<u32, Vec<u16>> = Default::default();
    for place in erased
        .iter()
        .filter_map(|&sector| geometry.place_of(sector))
    {
        lost.entry(place.stripe).or_default().push(place.layer);
    }
    for layers in lost.values_mut() {
        layers.sort_unstable();
        layers.dedup();
    }
    let mut decoder = StripeDecoder::for_geometry(geometry);
    let mut restored = 0u64;
    let mut stripes = lost.iter().peekable();
    while let Some((&first, layers)) = stripes.next() {
        let mut count = 1u32;
        while count < batch_stripes
            && stripes
                .peek()
                .is_some_and(|&(&next, same)| next == first + count && same == layers)
        {
            stripes.next();
            count += 1;
        }
        restore_group(
            geometry,
            &mut decoder,
            data_span,
            parity,
            first,
            count,
            layers,
        )?;
        restored += u64::from(count) * layers.len() as u64;
    }
    Ok(restored)
}

/// Restores stripes [first, first + count), which all lost `layers`.
fn restore_group(
    geometry: &ParityGeometry,
    decoder: &mut StripeDecoder,
    data_span: &mut [u8],
    parity: &mut [u8],
    first: u32,
    count: u32,
    layers: &[u16],
) -> Result<(), ParityError> {
    let layer_bytes = layer_bytes(geometry);
    let (start, end) = (first as usize * SECTOR, (first + count) as usize * SECTOR);
    let mut runs: Vec<Vec<u8>> = data_runs(geometry, data_span, first, count)
        .into_iter()
        .map(Cow::into_owned)
        .chain(
            parity
                .chunks_exact(layer_bytes)
                .map(|layer| layer[start..end].to_vec()),
        )
        .collect();
    let mut slices: Vec<&mut [u8]> = runs.iter_mut().map(Vec::as_mut_slice).collect();
    decoder.restore(u64::from(first), &mut slices, layers)?;
    for &layer in layers {
        for offset in 0..count {
            let place = Place {
                stripe: first + offset,
                layer,
            };
            let Some(sector) = geometry.sector_at(place) else {
                continue;
            };
            let from = &runs[usize::from(layer)][offset as usize * SECTOR..][..SECTOR];
            let to = if sector < geometry.data_sectors() {
                &mut data_span[sector as usize * SECTOR..][..SECTOR]
            } else {
                let at = (sector - geometry.data_sectors()) as usize * SECTOR;
                &mut parity[at..][..SECTOR]
            };
            to.copy_from_slice(from);
        }
    }
    Ok(())
}

/// The k data runs of stripes [first, first + count): borrowed where the
/// data span holds them, zero-padded where the last layer runs past it.
fn data_runs<'a>(
    geometry: &ParityGeometry,
    data_span: &'a [u8],
    first: u32,
    count: u32,
) -> Vec<Cow<'a, [u8]>> {
    let layer_bytes = layer_bytes(geometry);
    let run = count as usize * SECTOR;
    (0..usize::from(geometry.k()))
        .map(|layer| {
            let start = (layer * layer_bytes + first as usize * SECTOR).min(data_span.len());
            let end = (start + run).min(data_span.len());
            if end - start == run {
                Cow::Borrowed(&data_span[start..end])
            } else {
                let mut padded = vec![0u8; run];
                padded[..end - start].copy_from_slice(&data_span[start..end]);
                Cow::Owned(padded)
            }
        })
        .collect()
}

/// Batches [first, first + count) of at most `batch` stripes covering 0..L.
fn batches(stripes: u32, batch: u32) -> impl Iterator<Item = (u32, u32)> {
    (0..stripes)
        .step_by(batch as usize)
        .map(move |first| (first, batch.min(stripes - first)))
}

fn layer_bytes(geometry: &ParityGeometry) -> usize {
    usize::try_from(geometry.layer_sectors()).expect("a u32 fits usize") * SECTOR
}

fn check_span(
    geometry: &ParityGeometry,
    len: usize,
    batch_stripes: u32,
) -> Result<(), ParityError> {
    if batch_stripes == 0 {
        return Err(shards("a batch of no stripes"));
    }
    if u64::try_from(len).ok() != geometry.data_sectors().checked_mul(SECTOR_BYTES) {
        return Err(shards("data span is not n_d sectors"));
    }
    Ok(())
}

fn check_counts(k: u16, m: u16) -> Result<(), ParityError> {
    if k == 0 || m == 0 || u32::from(k) + u32::from(m) > u32::from(LAYERS) {
        return Err(shards("k and m must be at least 1 with k + m ≤ 255"));
    }
    Ok(())
}

/// The common length of runs, a positive multiple of a sector.
fn run_len(mut lens: impl Iterator<Item = usize>) -> Result<usize, ParityError> {
    let first = lens.next().ok_or(shards("no runs"))?;
    if first == 0 || !first.is_multiple_of(SECTOR) {
        return Err(shards("a run is not a positive multiple of 2048 bytes"));
    }
    if lens.any(|len| len != first) {
        return Err(shards("runs of different lengths"));
    }
    Ok(first)
}

fn shards(reason: &'static str) -> ParityError {
    ParityError::Shards { reason }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Deterministic bytes for a test span.
    fn span(seed: u64, sectors: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; (sectors * SECTOR_BYTES) as usize];
        blake3::Hasher::new()
            .update(&seed.to_be_bytes())
            .finalize_xof()
            .fill(&mut bytes);
        bytes
    }

    /// Damages `sectors` (zeroes them, as a ddrescue image would), restores
    /// them and returns the outcome with the restored span and parity.
    fn damage_and_restore(
        geometry: &ParityGeometry,
        data: &[u8],
        parity: &[u8],
        sectors: &[u64],
        batch: u32,
    ) -> (Result<u64, ParityError>, Vec<u8>, Vec<u8>) {
        let (mut data, mut parity) = (data.to_vec(), parity.to_vec());
        for &sector in sectors {
            let (bytes, at) = if sector < geometry.data_sectors() {
                (&mut data, sector)
            } else {
                (&mut parity, sector - geometry.data_sectors())
            };
            bytes[(at * SECTOR_BYTES) as usize..][..SECTOR].fill(0);
        }
        let outcome = restore(geometry, &mut data, &mut parity, sectors, batch);
        (outcome, data, parity)
    }

    #[test]
    fn batches_encode_as_single_stripes() {
        let geometry = ParityGeometry::from_data(1_000, 20).expect("valid");
        let data = span(1, 1_000);
        let whole = encode_parity(&geometry, &data, BATCH_STRIPES).expect("encodes");
        assert_eq!(encode_parity(&geometry, &data, 1).expect("encodes"), whole);
        assert_eq!(encode_parity(&geometry, &data, 3).expect("encodes"), whole);
        assert_eq!(whole.len() as u64, geometry.parity_sectors() * SECTOR_BYTES);
        assert!(whole.iter().any(|&byte| byte != 0));
    }

    /// Why SPEC.md §16.4 pins high rate: the crate's default picks low rate
    /// for 3 data and 5 parity shards, and low rate then writes other parity
    /// (two recovery chunks of 4, where high rate has one of 8).
    #[test]
    fn high_rate_is_not_the_crates_default_choice() {
        let data = span(3, 3);
        let runs: Vec<&[u8]> = data.chunks(SECTOR).collect();
        let mut ours = vec![0u8; 5 * SECTOR];
        let mut outputs: Vec<&mut [u8]> = ours.chunks_mut(SECTOR).collect();
        StripeEncoder::new(3, 5)
            .expect("valid")
            .encode(&runs, &mut outputs)
            .expect("encodes");
        let mut default = reed_solomon_simd::ReedSolomonEncoder::new(3, 5, SECTOR).expect("valid");
        for run in &runs {
            default.add_original_shard(run).expect("fits");
        }
        let theirs: Vec<u8> = default
            .encode()
            .expect("encodes")
            .recovery_iter()
            .flatten()
            .copied()
            .collect();
        assert!(theirs != ours, "the default rate wrote high-rate parity");
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        assert!(matches!(
            StripeEncoder::new(0, 1),
            Err(ParityError::Shards { .. })
        ));
        assert!(matches!(
            StripeEncoder::new(200, 56),
            Err(ParityError::Shards { .. })
        ));
        let mut encoder = StripeEncoder::new(2, 1).expect("valid");
        let (a, b) = (vec![0u8; SECTOR], vec![0u8; SECTOR]);
        let mut out = vec![0u8; SECTOR];
        encoder.encode(&[&a, &b], &mut [&mut out]).expect("fits");
        let short = [0u8; 64];
        for (data, parity_len) in [
            (vec![&a[..]], SECTOR),
            (vec![&a[..], &short[..]], SECTOR),
            (vec![&a[..], &b[..]], 2 * SECTOR),
            (vec![&short[..], &short[..]], 64),
        ] {
            let mut out = vec![0u8; parity_len];
            assert!(matches!(
                encoder.encode(&data, &mut [&mut out]),
                Err(ParityError::Shards { .. })
            ));
        }
        let mut decoder = StripeDecoder::new(2, 1).expect("valid");
        let mut runs = [vec![0u8; SECTOR], vec![0u8; SECTOR], vec![0u8; SECTOR]];
        let mut slices: Vec<&mut [u8]> = runs.iter_mut().map(Vec::as_mut_slice).collect();
        for lost in [&[3u16][..], &[1, 1]] {
            assert!(matches!(
                decoder.restore(0, &mut slices, lost),
                Err(ParityError::Shards { .. })
            ));
        }
        let geometry = ParityGeometry::from_data(10, 20).expect("valid");
        assert!(matches!(
            encode_parity(&geometry, &[0; 2048], 64),
            Err(ParityError::Shards { .. })
        ));
        assert!(matches!(
            encode_parity(&geometry, &[0; 20480], 0),
            Err(ParityError::Shards { .. })
        ));
    }

    #[test]
    fn one_more_loss_than_m_is_unrecoverable() {
        let geometry = ParityGeometry::from_data(500, 20).expect("valid");
        let (data, l) = (span(2, 500), u64::from(geometry.layer_sectors()));
        let parity = encode_parity(&geometry, &data, BATCH_STRIPES).expect("encodes");
        // Stripe 1: layers 0..m in the data span and parity layer 0.
        let lost: Vec<u64> = (0..u64::from(geometry.m()))
            .map(|layer| layer * l + 1)
            .chain([500 + 1])
            .collect();
        let (outcome, ..) = damage_and_restore(&geometry, &data, &parity, &lost, BATCH_STRIPES);
        assert_eq!(
            outcome,
            Err(ParityError::Unrecoverable {
                stripe: 1,
                lost: 44,
                m: 43
            })
        );
        let (outcome, restored, restored_parity) =
            damage_and_restore(&geometry, &data, &parity, &lost[1..], BATCH_STRIPES);
        assert_eq!(outcome, Ok(43));
        assert_eq!((restored, restored_parity), (data, parity));
    }

    #[test]
    fn burst_bound_is_exact() {
        // Layers filled to the end or not, whole virtual layers (k = 127,
        // L = 3 at 300 sectors and 100 %), and a small span.
        for (n, p) in [(212 * 6, 20), (212 * 6 - 5, 20), (300, 100), (40, 50)] {
            let geometry = ParityGeometry::from_data(n, p).expect("valid");
            let data = span(n, n);
            let parity = encode_parity(&geometry, &data, BATCH_STRIPES).expect("encodes");
            let layered = n + geometry.parity_sectors();
            let bound = geometry.burst_bound();
            let survives = |start: u64, len: u64| {
                let burst: Vec<u64> = (start..start + len).collect();
                let (outcome, restored, restored_parity) =
                    damage_and_restore(&geometry, &data, &parity, &burst, 4);
                match outcome {
                    Ok(_) => {
                        assert_eq!((&restored, &restored_parity), (&data, &parity));
                        true
                    }
                    Err(ParityError::Unrecoverable { .. }) => false,
                    Err(other) => panic!("unexpected {other:?}"),
                }
            };
            // Every start in the layers: the counts the codec would see.
            let worst = |start: u64, len: u64| {
                let mut per_stripe = vec![0u32; geometry.layer_sectors() as usize];
                for sector in start..(start + len).min(layered) {
                    per_stripe[geometry.stripe_of(sector).expect("in a layer") as usize] += 1;
                }
                per_stripe.into_iter().max().unwrap_or(0)
            };
            let m = u32::from(geometry.m());
            for start in 0..layered.saturating_sub(bound) + 1 {
                assert!(worst(start, bound) <= m, "n = {n}, start = {start}");
            }
            // The last stored data layer's stripe-0 sector and m parity
            // sectors of stripe 0.
            let l = u64::from(geometry.layer_sectors());
            let edge = (n.div_ceil(l) - 1) * l;
            assert_eq!(worst(edge, bound + 1), m + 1, "n = {n}");
            assert!(survives(0, bound), "n = {n}");
            assert!(survives(layered - bound, bound), "n = {n}");
            assert!(survives(edge, bound), "n = {n}");
            assert!(!survives(edge, bound + 1), "n = {n}");
            // Inside one region alone, m·L anywhere.
            let within = geometry.burst_bound_within_region();
            assert!(survives(n, within), "n = {n}");
            if n > within {
                assert!(survives(n - within, within), "n = {n}");
                assert!(!survives(0, within + 1), "n = {n}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn up_to_m_losses_per_stripe_restore(
            n in 1u64..1_500,
            p in 3u16..=200,
            seed in any::<u64>(),
            batch in 1u32..8,
            picks in proptest::collection::vec((any::<u32>(), any::<u16>(), 0u16..=255), 1..24),
        ) {
            let geometry = ParityGeometry::from_data(n, p).expect("valid");
            let data = span(seed, n);
            let parity = encode_parity(&geometry, &data, batch).expect("encodes");
            let mut lost = std::collections::BTreeSet::new();
            for (stripe, first_layer, count) in picks {
                let stripe = stripe % geometry.layer_sectors();
                let count = count % (geometry.m() + 1);
                for step in 0..count {
                    let layer = (first_layer.wrapping_add(step * 7)) % geometry.layers();
                    if let Some(sector) = geometry.sector_at(Place { stripe, layer }) {
                        lost.insert(sector);
                    }
                }
            }
            let per_stripe_ok = (0..geometry.layer_sectors()).all(|stripe| {
                lost.iter().filter(|&&s| geometry.stripe_of(s) == Some(stripe)).count()
                    <= usize::from(geometry.m())
            });
            let lost: Vec<u64> = lost.into_iter().collect();
            let (outcome, restored, restored_parity) =
                damage_and_restore(&geometry, &data, &parity, &lost, batch);
            if per_stripe_ok {
                prop_assert_eq!(outcome, Ok(lost.len() as u64));
                prop_assert_eq!(&restored, &data);
                prop_assert_eq!(&restored_parity, &parity);
            } else {
                let is_unrecoverable = matches!(outcome, Err(ParityError::Unrecoverable { .. }));
                prop_assert!(is_unrecoverable);
            }
        }

        #[test]
        fn m_plus_one_losses_in_a_stripe_are_refused(
            n in 1u64..1_500,
            p in 3u16..=200,
            stripe in any::<u32>(),
            first_layer in any::<u16>(),
        ) {
            let geometry = ParityGeometry::from_data(n, p).expect("valid");
            let data = span(n, n);
            let parity = encode_parity(&geometry, &data, BATCH_STRIPES).expect("encodes");
            let stripe = stripe % geometry.layer_sectors();
            let real: Vec<u64> = (0..geometry.layers())
                .map(|layer| (first_layer as usize + usize::from(layer)) % usize::from(geometry.layers()))
                .filter_map(|layer| geometry.sector_at(Place { stripe, layer: layer as u16 }))
                .collect();
            let want = usize::from(geometry.m()) + 1;
            prop_assume!(real.len() >= want);
            let (outcome, ..) = damage_and_restore(&geometry, &data, &parity, &real[..want], BATCH_STRIPES);
            prop_assert_eq!(
                outcome,
                Err(ParityError::Unrecoverable { stripe: u64::from(stripe), lost: want, m: geometry.m() })
            );
        }
    }
}
