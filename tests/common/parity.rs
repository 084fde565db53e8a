//! Reading a sealed volume's parity geometry from its end sector, for
//! tests that damage chosen layers.

/// k, m, L and n_d from the geometry body in the end sector (SPEC.md
/// §16.11).
pub fn end_geometry(volume: &[u8]) -> (u64, u64, u64, u64) {
    let sector = kuvert::SECTOR as usize;
    let body = &volume[volume.len() - sector + 104..][..56];
    let be = |at: usize, len: usize| {
        body[at..at + len]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };
    (be(2, 2), be(4, 2), be(8, 4), be(12, 8))
}
