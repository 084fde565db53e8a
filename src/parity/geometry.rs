//! Where a volume's parity goes (SPEC.md §16.5–§16.9): k data layers and m
//! parity layers of L sectors, stripe i = sector i of every layer, the
//! 56-byte geometry body, the parity digest block, and the geometry a
//! reader recomputes from the volume length when both trailer copies are
//! lost.

use crate::format::SECTOR;
use crate::parity::ParityError;

/// Layers of a volume with parity, data and parity together (RS03's count):
/// enough symbols per stripe that scattered damage averages out.
pub const LAYERS: u16 = 255;

/// The least redundancy, in percent of the data layers.
pub const MIN_PERCENT: u16 = 3;

/// The most redundancy, in percent of the data layers.
pub const MAX_PERCENT: u16 = 200;

/// Length of the geometry body (SPEC.md §16.6).
pub const GEOMETRY_BODY_LEN: usize = 56;

/// Codec byte of the body: Leopard GF(2^16), high rate, 2,048-byte shards.
pub const CODEC_LEOPARD_HIGH_RATE: u8 = 1;

/// Parity sectors per digest of the parity digest block (64 KiB).
pub const DIGEST_GROUP_SECTORS: u64 = 32;

/// Bytes of one parity group digest (BLAKE3-256).
const DIGEST_LEN: u64 = 32;

/// Body field offsets (SPEC.md §16.6).
const AT_CODEC: usize = 0;
const AT_RESERVED_1: usize = 1;
const AT_K: usize = 2;
const AT_M: usize = 4;
const AT_RESERVED_6: usize = 6;
const AT_L: usize = 8;
const AT_N_D: usize = 12;
const AT_DIGEST_LEN: usize = 20;
const AT_DIGEST_HASH: usize = 24;

/// The parity layout of one volume: k data layers, m parity layers, L
/// sectors per layer over a data span of n_d sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParityGeometry {
    k: u16,
    m: u16,
    layer_sectors: u32,
    data_sectors: u64,
}

/// Where a sector sits in the layers: its stripe and its layer (0..k data,
/// k..k+m parity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// Stripe i, 0 ≤ i < L: sector i of every layer.
    pub stripe: u32,
    /// Layer j: data layers 0..k, parity layers k..k+m.
    pub layer: u16,
}

impl ParityGeometry {
    /// The geometry for a data span of `data_sectors` sectors at `percent`
    /// redundancy (SPEC.md §16.5): m = round(255·p / (100 + p)) parity
    /// layers, k = 255 − m, L = ceil(n_d / k); a span shorter than k
    /// sectors gets L = 1, k = n_d and m = max(1, ceil(n_d·p / 100)).
    ///
    /// # Errors
    ///
    /// [`ParityError::Percent`] outside 3..=200, [`ParityError::DataSpan`]
    /// for an empty span or one whose L or digest block would not fit the
    /// geometry body.
    pub fn from_data(data_sectors: u64, percent: u16) -> Result<Self, ParityError> {
        if !(MIN_PERCENT..=MAX_PERCENT).contains(&percent) {
            return Err(ParityError::Percent { percent });
        }
        let too_large = ParityError::DataSpan { data_sectors };
        if data_sectors == 0 {
            return Err(too_large);
        }
        let m_full = full_parity_layers(percent);
        let k_full = LAYERS - m_full;
        let (k, m, layer_sectors) = if data_sectors < u64::from(k_full) {
            let small = u16::try_from(data_sectors).expect("below k, so below 255");
            let m = (data_sectors * u64::from(percent)).div_ceil(100).max(1);
            let m = u16::try_from(m).expect("k + m ≤ 255 for a span below k (SPEC.md §16.5)");
            (small, m, 1)
        } else {
            let l = data_sectors.div_ceil(u64::from(k_full));
            (
                k_full,
                m_full,
                u32::try_from(l).map_err(|_| too_large.clone())?,
            )
        };
        let geometry = Self {
            k,
            m,
            layer_sectors,
            data_sectors,
        };
        debug_assert!(u32::from(k) + u32::from(m) <= u32::from(LAYERS));
        geometry.digest_block_len_checked().ok_or(too_large)?;
        Ok(geometry)
    }

    /// Data layers k, the original shards of every stripe.
    pub fn k(&self) -> u16 {
        self.k
    }

    /// Parity layers m, the recovery shards of every stripe.
    pub fn m(&self) -> u16 {
        self.m
    }

    /// Layers k + m (255, except for spans shorter than k).
    pub fn layers(&self) -> u16 {
        self.k + self.m
    }

    /// Sectors per layer L, which is also the number of stripes.
    pub fn layer_sectors(&self) -> u32 {
        self.layer_sectors
    }

    /// Sectors of the data span n_d: the volume before its parity.
    pub fn data_sectors(&self) -> u64 {
        self.data_sectors
    }

    /// Sectors of the data layers beyond the data span (k·L − n_d < k): zero,
    /// never stored. They sit at the end of the last data layers, which may
    /// be virtual as a whole.
    pub fn virtual_sectors(&self) -> u64 {
        u64::from(self.k) * u64::from(self.layer_sectors) - self.data_sectors
    }

    /// Parity sectors m·L, stored layer after layer after the data span.
    pub fn parity_sectors(&self) -> u64 {
        u64::from(self.m) * u64::from(self.layer_sectors)
    }

    /// Digests in the parity digest block: one per 32 parity sectors, the
    /// last group shorter when m·L is not a multiple of 32.
    pub fn digest_groups(&self) -> u64 {
        self.parity_sectors().div_ceil(DIGEST_GROUP_SECTORS)
    }

    /// The parity sectors of digest group `group`, counted from the first
    /// parity sector.
    pub fn digest_group(&self, group: u64) -> Option<std::ops::Range<u64>> {
        let start = group.checked_mul(DIGEST_GROUP_SECTORS)?;
        (start < self.parity_sectors())
            .then(|| start..(start + DIGEST_GROUP_SECTORS).min(self.parity_sectors()))
    }

    /// Bytes of the parity digest block: its digests zero-padded to whole
    /// sectors.
    pub fn digest_block_len(&self) -> u32 {
        self.digest_block_len_checked()
            .expect("checked when the geometry was made")
    }

    fn digest_block_len_checked(&self) -> Option<u32> {
        let bytes = self.digest_groups().checked_mul(DIGEST_LEN)?;
        u32::try_from(bytes.div_ceil(SECTOR).checked_mul(SECTOR)?).ok()
    }

    /// The parity digest block of `parity`, the m·L parity sectors in volume
    /// order: BLAKE3 of each 32-sector group, zero-padded to whole sectors.
    ///
    /// # Panics
    ///
    /// If `parity` is not m·L sectors long: a caller's bug.
    pub fn digest_block(&self, parity: &[u8]) -> Vec<u8> {
        assert_eq!(
            parity.len() as u64,
            self.parity_sectors() * SECTOR,
            "parity is m·L sectors"
        );
        let mut block = Vec::with_capacity(self.digest_block_len() as usize);
        for group in parity.chunks((DIGEST_GROUP_SECTORS * SECTOR) as usize) {
            block.extend_from_slice(blake3::hash(group).as_bytes());
        }
        block.resize(self.digest_block_len() as usize, 0);
        block
    }

    /// Sectors of the parity digest block.
    pub fn digest_block_sectors(&self) -> u64 {
        u64::from(self.digest_block_len()) / SECTOR
    }

    /// Sectors the check block covers (SPEC.md §16.8): the data span and
    /// the parity layers, n_d + m·L.
    pub fn checked_sectors(&self) -> u64 {
        self.data_sectors + self.parity_sectors()
    }

    /// Sectors of the check block, c = ceil((n_d + m·L) / 511).
    pub fn check_block_sectors(&self) -> u64 {
        crate::parity::checks::check_block_sectors(self.checked_sectors())
    }

    /// The first sector of the check block, after the digest block.
    pub fn check_block_start(&self) -> u64 {
        self.checked_sectors() + self.digest_block_sectors()
    }

    /// The volume's length in sectors: data span, parity layers, parity
    /// digest block, check block and end sector.
    pub fn volume_sectors(&self) -> u64 {
        self.check_block_start() + self.check_block_sectors() + 1
    }

    /// Where volume sector `sector` sits in the layers; `None` for the
    /// digest block, the end sector and beyond.
    pub fn place_of(&self, sector: u64) -> Option<Place> {
        let l = u64::from(self.layer_sectors);
        let (layer, stripe) = if sector < self.data_sectors {
            (sector / l, sector % l)
        } else {
            let parity = sector - self.data_sectors;
            if parity >= self.parity_sectors() {
                return None;
            }
            (u64::from(self.k) + parity / l, parity % l)
        };
        Some(Place {
            stripe: u32::try_from(stripe).expect("below L, a u32"),
            layer: u16::try_from(layer).expect("below k + m ≤ 255"),
        })
    }

    /// The stripe of volume sector `sector`, if it is in a layer.
    pub fn stripe_of(&self, sector: u64) -> Option<u32> {
        self.place_of(sector).map(|place| place.stripe)
    }

    /// The layer of volume sector `sector`, if it is in a layer.
    pub fn layer_of(&self, sector: u64) -> Option<u16> {
        self.place_of(sector).map(|place| place.layer)
    }

    /// The volume sector at `place`; `None` for a virtual (zero, not stored)
    /// sector of the last data layer or a place outside the layers.
    pub fn sector_at(&self, place: Place) -> Option<u64> {
        if place.stripe >= self.layer_sectors || place.layer >= self.layers() {
            return None;
        }
        let l = u64::from(self.layer_sectors);
        let stripe = u64::from(place.stripe);
        if place.layer < self.k {
            let sector = u64::from(place.layer) * l + stripe;
            (sector < self.data_sectors).then_some(sector)
        } else {
            Some(self.data_sectors + u64::from(place.layer - self.k) * l + stripe)
        }
    }

    /// The volume sector of parity layer `q` (0 ≤ q < m) in stripe `stripe`.
    pub fn parity_sector(&self, q: u16, stripe: u32) -> Option<u64> {
        if q >= self.m {
            return None;
        }
        self.sector_at(Place {
            stripe,
            layer: self.k + q,
        })
    }

    /// The longest single run of unreadable sectors that every placement in
    /// the layers survives (SPEC.md §16.9): m·L − t, where t = ceil(n_d/L)·L
    /// − n_d < L is what the last stored data layer lacks of L sectors. One
    /// sector more is lost for good where it starts at that layer's first
    /// sector and so covers it and m parity sectors of stripe 0.
    pub fn burst_bound(&self) -> u64 {
        let l = u64::from(self.layer_sectors);
        let tail = self.data_sectors.div_ceil(l) * l - self.data_sectors;
        self.parity_sectors() - tail
    }

    /// The longest run that every placement inside the data span alone, or
    /// inside the parity layers alone, survives: m·L.
    pub fn burst_bound_within_region(&self) -> u64 {
        self.parity_sectors()
    }

    /// The 56-byte geometry body (SPEC.md §16.6), with the BLAKE3 of the
    /// parity digest block.
    pub fn to_body(&self, digest_block_hash: &[u8; 32]) -> [u8; GEOMETRY_BODY_LEN] {
        let mut body = [0u8; GEOMETRY_BODY_LEN];
        body[AT_CODEC] = CODEC_LEOPARD_HIGH_RATE;
        body[AT_K..AT_K + 2].copy_from_slice(&self.k.to_be_bytes());
        body[AT_M..AT_M + 2].copy_from_slice(&self.m.to_be_bytes());
        body[AT_L..AT_L + 4].copy_from_slice(&self.layer_sectors.to_be_bytes());
        body[AT_N_D..AT_N_D + 8].copy_from_slice(&self.data_sectors.to_be_bytes());
        body[AT_DIGEST_LEN..AT_DIGEST_LEN + 4]
            .copy_from_slice(&self.digest_block_len().to_be_bytes());
        body[AT_DIGEST_HASH..].copy_from_slice(digest_block_hash);
        body
    }

    /// Parses a geometry body strictly (SPEC.md §16.6): the geometry and the
    /// BLAKE3 of the parity digest block it names.
    ///
    /// # Errors
    ///
    /// [`ParityError::Body`] at the first field that breaks a rule, in body
    /// order.
    pub fn from_body(body: &[u8]) -> Result<(Self, [u8; 32]), ParityError> {
        let bad = |offset, reason| ParityError::Body { offset, reason };
        if body.len() != GEOMETRY_BODY_LEN {
            return Err(bad(0, "length is not 56"));
        }
        let u16_at = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
        let u32_at = |at: usize| u32::from_be_bytes(body[at..at + 4].try_into().expect("4 bytes"));
        if body[AT_CODEC] != CODEC_LEOPARD_HIGH_RATE {
            return Err(bad(AT_CODEC, "unknown codec"));
        }
        if body[AT_RESERVED_1] != 0 {
            return Err(bad(AT_RESERVED_1, "reserved byte is not zero"));
        }
        let k = u16_at(AT_K);
        if k == 0 || k >= LAYERS {
            return Err(bad(AT_K, "k is not in 1..=254"));
        }
        let m = u16_at(AT_M);
        if m == 0 || u32::from(k) + u32::from(m) > u32::from(LAYERS) {
            return Err(bad(AT_M, "m is 0 or k + m is above 255"));
        }
        if u16_at(AT_RESERVED_6) != 0 {
            return Err(bad(AT_RESERVED_6, "reserved bytes are not zero"));
        }
        let layer_sectors = u32_at(AT_L);
        if layer_sectors == 0 || (layer_sectors > 1 && k + m != LAYERS) {
            return Err(bad(AT_L, "L is 0, or above 1 with fewer than 255 layers"));
        }
        let data_sectors =
            u64::from_be_bytes(body[AT_N_D..AT_N_D + 8].try_into().expect("8 bytes"));
        let fits = data_sectors.div_ceil(u64::from(k)) == u64::from(layer_sectors)
            && (layer_sectors > 1 || data_sectors == u64::from(k));
        if !fits {
            return Err(bad(
                AT_N_D,
                "L is not ceil(n_d / k), or k is not n_d with L = 1",
            ));
        }
        let geometry = Self {
            k,
            m,
            layer_sectors,
            data_sectors,
        };
        if geometry.digest_block_len_checked() != Some(u32_at(AT_DIGEST_LEN)) {
            return Err(bad(
                AT_DIGEST_LEN,
                "digest block length does not follow from m·L",
            ));
        }
        let hash = body[AT_DIGEST_HASH..].try_into().expect("32 bytes");
        Ok((geometry, hash))
    }

    /// Every geometry at `percent` whose volume is `volume_len` bytes long
    /// (SPEC.md §16.8), for a reader that lost both trailer copies but has
    /// the header's p: one, or two at the single length where the small-span
    /// rule and the 255-layer rule meet; tried in the order returned.
    ///
    /// # Errors
    ///
    /// [`ParityError::Percent`] outside 3..=200, [`ParityError::NoGeometry`]
    /// when no span gives that length (not a multiple of 2048, or between
    /// two consecutive spans' lengths).
    pub fn for_volume_len(volume_len: u64, percent: u16) -> Result<Vec<Self>, ParityError> {
        if !(MIN_PERCENT..=MAX_PERCENT).contains(&percent) {
            return Err(ParityError::Percent { percent });
        }
        let none = ParityError::NoGeometry {
            volume_len,
            percent,
        };
        if !volume_len.is_multiple_of(SECTOR) {
            return Err(none);
        }
        let target = volume_len / SECTOR;
        let k_full = u64::from(LAYERS - full_parity_layers(percent));
        // Volume length is strictly increasing in n_d within each rule, so
        // each rule has at most one span of that length.
        let small = (target > 1)
            .then(|| find(1, k_full - 1, target, percent))
            .flatten();
        let full = find(k_full, target, target, percent);
        let found: Vec<Self> = small.into_iter().chain(full).collect();
        if found.is_empty() {
            Err(none)
        } else {
            Ok(found)
        }
    }
}

/// m for spans of at least k sectors: round(255·p / (100 + p)), halves up.
fn full_parity_layers(percent: u16) -> u16 {
    let p = u32::from(percent);
    let m = (2 * u32::from(LAYERS) * p + 100 + p) / (2 * (100 + p));
    u16::try_from(m).expect("below 255")
}

/// The span in [low, high] whose volume is `target` sectors, by binary
/// search over a strictly increasing length.
fn find(low: u64, high: u64, target: u64, percent: u16) -> Option<ParityGeometry> {
    let sectors = |n: u64| {
        ParityGeometry::from_data(n, percent)
            .ok()
            .map(|g| (g, g.volume_sectors()))
    };
    let (mut low, mut high) = (low, high);
    while low <= high {
        let mid = low + (high - low) / 2;
        match sectors(mid) {
            Some((g, len)) if len == target => return Some(g),
            Some((_, len)) if len < target => low = mid + 1,
            // Too long, or too large to have a geometry: look lower.
            _ => high = mid.checked_sub(1)?,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_percent_gives_rs03_layers() {
        let g = ParityGeometry::from_data(297_436, 20).expect("cd data span");
        assert_eq!((g.k(), g.m(), g.layer_sectors()), (212, 43, 1_403));
        assert_eq!(g.parity_sectors(), 60_329);
        assert_eq!(g.virtual_sectors(), 212 * 1_403 - 297_436);
        assert_eq!(g.digest_groups(), 60_329_u64.div_ceil(32));
        assert_eq!(g.digest_block_len(), 30 * 2048);
    }

    #[test]
    fn parity_layers_round_half_up() {
        let table: Vec<(u16, u16)> = [3, 20, 25, 30, 100, 200]
            .iter()
            .map(|&p| (p, full_parity_layers(p)))
            .collect();
        assert_eq!(
            table,
            [(3, 7), (20, 43), (25, 51), (30, 59), (100, 128), (200, 170)]
        );
        // 255·p/(100+p) is never exactly a half for p in range, but every
        // value is the nearest integer.
        for p in MIN_PERCENT..=MAX_PERCENT {
            let exact = 255.0 * f64::from(p) / (100.0 + f64::from(p));
            assert!(
                (f64::from(full_parity_layers(p)) - exact).abs() <= 0.5,
                "p = {p}"
            );
        }
    }

    #[test]
    fn small_spans_keep_one_stripe() {
        let g = ParityGeometry::from_data(5, 20).expect("tiny span");
        assert_eq!(
            (g.k(), g.m(), g.layer_sectors(), g.virtual_sectors()),
            (5, 1, 1, 0)
        );
        let g = ParityGeometry::from_data(84, 200).expect("largest small span at 200 %");
        assert_eq!((g.k(), g.m()), (84, 168));
        for p in MIN_PERCENT..=MAX_PERCENT {
            for n in 1..u64::from(LAYERS) {
                let g = ParityGeometry::from_data(n, p).expect("valid");
                assert!(g.layers() <= LAYERS, "p = {p}, n = {n}");
                assert_eq!(
                    u64::from(g.k()) * u64::from(g.layer_sectors()) - g.virtual_sectors(),
                    n
                );
            }
        }
    }

    #[test]
    fn percent_and_span_limits() {
        assert_eq!(
            ParityGeometry::from_data(100, 2),
            Err(ParityError::Percent { percent: 2 })
        );
        assert_eq!(
            ParityGeometry::from_data(100, 201),
            Err(ParityError::Percent { percent: 201 })
        );
        assert_eq!(
            ParityGeometry::from_data(0, 20),
            Err(ParityError::DataSpan { data_sectors: 0 })
        );
        let huge = u64::MAX / 2;
        assert_eq!(
            ParityGeometry::from_data(huge, 20),
            Err(ParityError::DataSpan { data_sectors: huge })
        );
    }

    #[test]
    fn places_and_sectors_are_inverse() {
        for (n, p) in [(1, 3), (7, 100), (300, 20), (1_000, 3), (4_097, 200)] {
            let g = ParityGeometry::from_data(n, p).expect("valid");
            let mut seen = 0u64;
            for sector in 0..g.volume_sectors() {
                match g.place_of(sector) {
                    Some(place) => {
                        assert_eq!(g.sector_at(place), Some(sector));
                        assert_eq!(g.stripe_of(sector), Some(place.stripe));
                        assert_eq!(g.layer_of(sector), Some(place.layer));
                        seen += 1;
                    }
                    None => assert!(sector >= n + g.parity_sectors()),
                }
            }
            assert_eq!(seen, n + g.parity_sectors());
            let virtual_count = (0..g.layer_sectors())
                .flat_map(|stripe| (0..g.k()).map(move |layer| Place { stripe, layer }))
                .filter(|&place| g.sector_at(place).is_none())
                .count();
            assert_eq!(virtual_count as u64, g.virtual_sectors());
            assert_eq!(g.parity_sector(0, 0), Some(n));
            assert_eq!(g.parity_sector(g.m(), 0), None);
        }
    }

    #[test]
    fn digest_groups_cover_the_parity() {
        let g = ParityGeometry::from_data(300, 20).expect("valid");
        assert_eq!(g.parity_sectors(), 86);
        assert_eq!(g.digest_group(0), Some(0..32));
        assert_eq!(g.digest_group(2), Some(64..86));
        assert_eq!(g.digest_group(3), None);
        assert_eq!(g.digest_block_len(), 2048);
    }

    #[test]
    fn body_round_trips() {
        for (n, p) in [
            (1, 3),
            (84, 200),
            (85, 200),
            (297_436, 20),
            (u64::from(u32::MAX) * 3, 3),
        ] {
            let g = ParityGeometry::from_data(n, p).expect("valid");
            let body = g.to_body(&[7; 32]);
            assert_eq!(ParityGeometry::from_body(&body), Ok((g, [7; 32])));
        }
    }

    #[test]
    fn body_is_parsed_strictly() {
        let g = ParityGeometry::from_data(1_000, 20).expect("valid");
        let good = g.to_body(&[0; 32]);
        let refuse = |edit: &dyn Fn(&mut [u8; GEOMETRY_BODY_LEN]), offset: usize| {
            let mut body = good;
            edit(&mut body);
            match ParityGeometry::from_body(&body) {
                Err(ParityError::Body { offset: at, .. }) => assert_eq!(at, offset),
                other => panic!("expected a body error at {offset}, got {other:?}"),
            }
        };
        refuse(&|b| b[0] = 2, AT_CODEC);
        refuse(&|b| b[1] = 1, AT_RESERVED_1);
        refuse(&|b| b[2..4].copy_from_slice(&0u16.to_be_bytes()), AT_K);
        refuse(&|b| b[2..4].copy_from_slice(&255u16.to_be_bytes()), AT_K);
        refuse(&|b| b[4..6].copy_from_slice(&0u16.to_be_bytes()), AT_M);
        refuse(&|b| b[4..6].copy_from_slice(&44u16.to_be_bytes()), AT_M);
        refuse(&|b| b[7] = 1, AT_RESERVED_6);
        refuse(&|b| b[8..12].copy_from_slice(&0u32.to_be_bytes()), AT_L);
        refuse(&|b| b[8..12].copy_from_slice(&6u32.to_be_bytes()), AT_N_D);
        refuse(
            &|b| b[12..20].copy_from_slice(&2_000u64.to_be_bytes()),
            AT_N_D,
        );
        refuse(&|b| b[23] ^= 1, AT_DIGEST_LEN);
        // Fewer than 255 layers only with L = 1 and k = n_d.
        let small = ParityGeometry::from_data(10, 20)
            .expect("valid")
            .to_body(&[0; 32]);
        let mut body = small;
        body[8..12].copy_from_slice(&2u32.to_be_bytes());
        assert!(matches!(
            ParityGeometry::from_body(&body),
            Err(ParityError::Body { offset: AT_L, .. })
        ));
        let mut body = small;
        body[12..20].copy_from_slice(&9u64.to_be_bytes());
        assert!(matches!(
            ParityGeometry::from_body(&body),
            Err(ParityError::Body { offset: AT_N_D, .. })
        ));
        assert!(matches!(
            ParityGeometry::from_body(&good[..55]),
            Err(ParityError::Body { offset: 0, .. })
        ));
    }

    #[test]
    fn volume_length_gives_the_geometry_back() {
        for p in [3, 20, 29, 100, 200] {
            for n in (1..600).chain([5_000, 297_436, 1_898_248]) {
                let g = ParityGeometry::from_data(n, p).expect("valid");
                let found = ParityGeometry::for_volume_len(g.volume_sectors() * 2048, p)
                    .expect("its own length");
                assert!(found.contains(&g), "p = {p}, n = {n}: {found:?}");
                assert!(
                    found.len() == 1 || g.volume_sectors() == 258,
                    "p = {p}, n = {n}"
                );
            }
        }
    }

    #[test]
    fn the_one_ambiguous_length_gives_both() {
        // At 21 %: 210 sectors (small rule: k = 210, m = 45) and 211 (k = 211,
        // m = 44) both make 258-sector volumes (one of them the check block).
        let found = ParityGeometry::for_volume_len(258 * 2048, 21).expect("two spans");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].data_sectors() + 1, found[1].data_sectors());
        assert!(found[0].layer_sectors() == 1 && found[1].layer_sectors() == 1);
    }

    #[test]
    fn lengths_between_spans_have_no_geometry() {
        // 212·24 sectors fill 24-sector layers; one more needs 25.
        let g = ParityGeometry::from_data(5_088, 20).expect("valid");
        let next = ParityGeometry::from_data(5_089, 20).expect("valid");
        assert!(next.volume_sectors() > g.volume_sectors() + 1);
        let between = (g.volume_sectors() + 1) * 2048;
        assert_eq!(
            ParityGeometry::for_volume_len(between, 20),
            Err(ParityError::NoGeometry {
                volume_len: between,
                percent: 20
            })
        );
        assert!(ParityGeometry::for_volume_len(2047, 20).is_err());
        assert!(ParityGeometry::for_volume_len(2048, 20).is_err());
        assert!(ParityGeometry::for_volume_len(u64::MAX - 2047, 20).is_err());
    }
}
