//! The keyless digests of a volume (SPEC.md §13.4): BLAKE3 chaining values
//! of its ciphertext chunks, taken from BLAKE3's own tree over the chunk
//! region, so that the root they merge to is what `b3sum` prints for those
//! bytes. No key is involved: anyone can check (and rewrite) them.
//!
//! Chunk j of a volume starts at j·C within the chunk region, and C = 2^c
//! is at least 4 KiB, a multiple of BLAKE3's 1 KiB chunk: so every
//! ciphertext chunk, the short last one too, is a whole subtree of the
//! region's tree, and its chaining value can be computed alone (on the
//! sealing worker that just sealed it, or on any verifying thread).

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};

/// Length of a digest and of a table entry.
pub(crate) const DIGEST_LEN: usize = 32;

/// The non-root chaining value of the ciphertext chunk at local index
/// `local` of its volume, `chunk_len` (C) bytes apart: the table entry.
pub(crate) fn chunk_cv(local: u64, chunk_len: usize, chunk: &[u8]) -> ChainingValue {
    blake3::Hasher::new()
        .set_input_offset(local * chunk_len as u64)
        .update(chunk)
        .finalize_non_root()
}

/// h_v: BLAKE3 of the volume's header with its zero padding, [0, H_v).
pub(crate) fn header_digest(padded_header: &[u8]) -> [u8; DIGEST_LEN] {
    *blake3::hash(padded_header).as_bytes()
}

/// R_v = BLAKE3 of the chunk region (`region_len` bytes, so k =
/// ceil(region_len / C) chunks) from its k table entries, merged along
/// BLAKE3's tree. `None` when the region is one chunk (k = 1): its root is
/// not a merge, so it is BLAKE3 of chunk 0's bytes, hashed directly.
/// `entry(j)` gives entry j; it is asked for each once, in order.
///
/// # Panics
///
/// Never for a table from a parsed trailer: k entries, `region_len ≥ 1`.
pub fn root_from_table(
    region_len: u64,
    chunk_len: usize,
    mut entry: impl FnMut(u64) -> [u8; DIGEST_LEN],
) -> Option<[u8; DIGEST_LEN]> {
    let chunk_len = chunk_len as u64;
    if region_len <= chunk_len {
        return None;
    }
    let left = left_subtree_len(region_len);
    let left_cv = merge(0, left, chunk_len, &mut entry);
    let right_cv = merge(left / chunk_len, region_len - left, chunk_len, &mut entry);
    Some(*merge_subtrees_root(&left_cv, &right_cv, Mode::Hash).as_bytes())
}

/// The chaining value of the subtree of `len` bytes that starts at chunk
/// `first`. Depth is at most 64: each level halves `len`.
fn merge(
    first: u64,
    len: u64,
    chunk_len: u64,
    entry: &mut impl FnMut(u64) -> [u8; DIGEST_LEN],
) -> ChainingValue {
    if len <= chunk_len {
        return entry(first);
    }
    // len > C ≥ 4 KiB, so the left subtree is a power of two ≥ C: whole chunks.
    let left = left_subtree_len(len);
    let left_cv = merge(first, left, chunk_len, entry);
    let right_cv = merge(first + left / chunk_len, len - left, chunk_len, entry);
    merge_subtrees_non_root(&left_cv, &right_cv, Mode::Hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic bytes that differ at every offset.
    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    #[test]
    fn the_table_merges_to_the_plain_blake3_of_the_region() {
        let chunk_len = 4096;
        for len in [
            1,
            16,
            4095,
            4096,
            4097,
            8192,
            8193,
            3 * 4096,
            3 * 4096 + 5,
            5 * 4096,
            7 * 4096 + 100,
            8 * 4096,
            9 * 4096 + 1,
            17 * 4096 - 3,
        ] {
            let region = bytes(len);
            let cvs: Vec<_> = region
                .chunks(chunk_len)
                .enumerate()
                .map(|(j, chunk)| chunk_cv(j as u64, chunk_len, chunk))
                .collect();
            let mut asked = Vec::new();
            let root = root_from_table(len as u64, chunk_len, |j| {
                asked.push(j);
                cvs[j as usize]
            });
            let expected = *blake3::hash(&region).as_bytes();
            if len <= chunk_len {
                assert_eq!(root, None, "{len}");
            } else {
                assert_eq!(root, Some(expected), "{len}");
                let all: Vec<u64> = (0..cvs.len() as u64).collect();
                assert_eq!(asked, all, "{len}: each entry once, in order");
            }
        }
    }

    #[test]
    fn a_changed_entry_changes_the_root() {
        let region = bytes(5 * 4096);
        let mut cvs: Vec<_> = region
            .chunks(4096)
            .enumerate()
            .map(|(j, chunk)| chunk_cv(j as u64, 4096, chunk))
            .collect();
        let good = root_from_table(region.len() as u64, 4096, |j| cvs[j as usize]);
        cvs[3][0] ^= 1;
        let bad = root_from_table(region.len() as u64, 4096, |j| cvs[j as usize]);
        assert_ne!(good, bad);
    }

    #[test]
    fn a_chunk_cv_depends_on_its_position() {
        let chunk = bytes(4096);
        assert_ne!(chunk_cv(0, 4096, &chunk), chunk_cv(1, 4096, &chunk));
        assert_ne!(chunk_cv(1, 4096, &chunk), chunk_cv(1, 8192, &chunk));
    }
}
