//! Which bytes of a volume could not be read: a sorted set of disjoint byte
//! ranges, as ddrescue's map file keeps them. Parity and damage reports take
//! their erasures from here, so a scratched disc costs what it lost, not
//! the first error.

use std::ops::Range;

/// Unreadable byte ranges of one source, sorted, disjoint and merged with
/// their neighbours.
///
/// Memory is bounded by ranges, never by bytes: at most
/// [`ErasureMap::MAX_RANGES`] ranges (16 bytes each, 1 MiB in all). A range
/// that would exceed the cap is merged with its nearest neighbour instead,
/// so the map may then mark readable bytes between two erasures as erased
/// ([`is_exact`](Self::is_exact) says so): never the other way round, so a
/// reader that trusts the map loses bytes, never trusts lost ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureMap {
    ranges: Vec<Range<u64>>,
    /// Whether a gap was closed to stay under the cap.
    coalesced: bool,
}

impl ErasureMap {
    /// Ranges kept before neighbours are coalesced: 65,536 disjoint
    /// erasures, more than one per 6 sectors of a full CD.
    pub const MAX_RANGES: usize = 65_536;

    /// An empty map.
    pub fn new() -> Self {
        ErasureMap::default()
    }

    /// Whether nothing is erased.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Disjoint ranges held.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// The ranges, in byte order; no two touch.
    pub fn ranges(&self) -> &[Range<u64>] {
        &self.ranges
    }

    /// Bytes erased in all.
    pub fn erased_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }

    /// False once the cap forced two erasures to be merged across readable
    /// bytes: the map then over-states the loss.
    pub fn is_exact(&self) -> bool {
        !self.coalesced
    }

    /// Whether byte `offset` is erased.
    pub fn contains(&self, offset: u64) -> bool {
        let at = self.ranges.partition_point(|r| r.end <= offset);
        self.ranges.get(at).is_some_and(|r| r.start <= offset)
    }

    /// The erased parts of `range`, clipped to it, in order.
    pub fn overlapping(&self, range: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let first = self.ranges.partition_point(|r| r.end <= range.start);
        self.ranges[first..]
            .iter()
            .take_while(move |r| r.start < range.end)
            .map(move |r| r.start.max(range.start)..r.end.min(range.end))
    }

    /// Whether any byte of `range` is erased.
    pub fn intersects(&self, range: Range<u64>) -> bool {
        self.overlapping(range).next().is_some()
    }

    /// Marks `range` erased, merging it with the ranges it overlaps or
    /// touches. An empty range changes nothing.
    pub fn insert(&mut self, range: Range<u64>) {
        if range.start >= range.end {
            return;
        }
        // Ranges that overlap or touch `range`: [first, last).
        let first = self.ranges.partition_point(|r| r.end < range.start);
        let last = self.ranges.partition_point(|r| r.start <= range.end);
        if first < last {
            let start = self.ranges[first].start.min(range.start);
            let end = self.ranges[last - 1].end.max(range.end);
            self.ranges.drain(first + 1..last);
            self.ranges[first] = start..end;
            return;
        }
        self.ranges.insert(first, range);
        if self.ranges.len() > Self::MAX_RANGES {
            self.coalesce_closest();
        }
    }

    /// Adds every range of `other`.
    pub fn merge(&mut self, other: &ErasureMap) {
        self.coalesced |= other.coalesced;
        for range in &other.ranges {
            self.insert(range.clone());
        }
    }

    /// Merges the two neighbours with the smallest gap between them.
    fn coalesce_closest(&mut self) {
        let Some(at) =
            (1..self.ranges.len()).min_by_key(|&i| self.ranges[i].start - self.ranges[i - 1].end)
        else {
            return;
        };
        self.ranges[at - 1].end = self.ranges[at].end;
        self.ranges.remove(at);
        self.coalesced = true;
    }
}

#[cfg(test)]
#[allow(
    clippy::single_range_in_vec_init,
    reason = "a list of one erased range is what is meant"
)]
mod tests {
    use super::*;

    fn map(ranges: &[Range<u64>]) -> ErasureMap {
        let mut map = ErasureMap::new();
        for range in ranges {
            map.insert(range.clone());
        }
        map
    }

    #[test]
    fn ranges_stay_sorted_disjoint_and_merged() {
        let m = map(&[10..20, 40..50, 0..2, 20..25, 30..30, 45..60, 2..3]);
        assert_eq!(m.ranges(), [0..3, 10..25, 40..60]);
        assert_eq!(m.erased_bytes(), 3 + 15 + 20);
        // One range spanning several swallows them.
        let mut all = m.clone();
        all.insert(1..41);
        assert_eq!(all.ranges(), [0..60]);
        assert!(all.is_exact());
    }

    #[test]
    fn lookups_clip_to_the_range_asked() {
        let m = map(&[10..20, 40..50]);
        assert!(m.contains(10) && m.contains(19) && !m.contains(20) && !m.contains(9));
        assert_eq!(m.overlapping(15..45).collect::<Vec<_>>(), [15..20, 40..45]);
        assert_eq!(m.overlapping(20..40).count(), 0);
        assert!(m.intersects(0..11) && !m.intersects(50..100));
        let mut other = map(&[20..30]);
        other.merge(&m);
        assert_eq!(other.ranges(), [10..30, 40..50]);
    }

    #[test]
    fn past_the_cap_the_closest_neighbours_merge() {
        let mut m = ErasureMap::new();
        let n = ErasureMap::MAX_RANGES as u64;
        for i in 0..n {
            m.insert(i * 10..i * 10 + 1);
        }
        assert!(m.is_exact());
        // The new range lies 2 bytes after the last (the others are 9
        // apart): the closest pair.
        m.insert((n - 1) * 10 + 3..(n - 1) * 10 + 4);
        assert_eq!(m.len(), ErasureMap::MAX_RANGES);
        assert!(!m.is_exact());
        let last = m.ranges().last().expect("ranges").clone();
        assert_eq!(
            last,
            (n - 1) * 10..(n - 1) * 10 + 4,
            "merged over the readable gap"
        );
    }
}
