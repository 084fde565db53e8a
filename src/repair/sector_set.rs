//! A set of sector indices kept as disjoint runs, so a burst of a million
//! lost sectors costs one entry, not a million.

use std::collections::BTreeMap;
use std::ops::Range;

/// Sector indices as disjoint, non-adjacent runs `start → end` (end
/// exclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SectorSet {
    runs: BTreeMap<u64, u64>,
}

impl SectorSet {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds every sector of `range`, merging with the runs it meets.
    pub(crate) fn insert_range(&mut self, range: Range<u64>) {
        if range.is_empty() {
            return;
        }
        let (mut start, mut end) = (range.start, range.end);
        if let Some((&before, &before_end)) = self.runs.range(..=start).next_back()
            && before_end >= start
        {
            start = before;
            end = end.max(before_end);
        }
        let met: Vec<u64> = self.runs.range(start..=end).map(|(&at, _)| at).collect();
        for at in met {
            let run_end = self.runs.remove(&at).expect("listed above");
            end = end.max(run_end);
        }
        self.runs.insert(start, end);
    }

    pub(crate) fn insert(&mut self, sector: u64) {
        self.insert_range(sector..sector + 1);
    }

    /// Adds every sector of `other`.
    pub(crate) fn extend(&mut self, other: &SectorSet) {
        for range in other.ranges() {
            self.insert_range(range);
        }
    }

    pub(crate) fn contains(&self, sector: u64) -> bool {
        self.runs
            .range(..=sector)
            .next_back()
            .is_some_and(|(_, &end)| sector < end)
    }

    /// Sectors in the set.
    pub(crate) fn len(&self) -> u64 {
        self.runs.iter().map(|(&start, &end)| end - start).sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The lowest sector, or 0 for an empty set.
    pub(crate) fn first(&self) -> u64 {
        self.runs.keys().next().copied().unwrap_or(0)
    }

    /// The runs, in order.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.runs.iter().map(|(&start, &end)| start..end)
    }

    /// The parts of the runs inside `range`, in order.
    pub(crate) fn overlapping(&self, range: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let before = self
            .runs
            .range(..range.start)
            .next_back()
            .filter(|&(_, &end)| end > range.start)
            .map(|(&start, &end)| (start, end));
        let inside = self
            .runs
            .range(range.start..range.end.max(range.start))
            .map(|(&start, &end)| (start, end));
        before
            .into_iter()
            .chain(inside)
            .map(move |(start, end)| start.max(range.start)..end.min(range.end))
            .filter(|run| !run.is_empty())
    }

    /// Whether any sector of `range` is in the set.
    pub(crate) fn intersects(&self, range: Range<u64>) -> bool {
        self.overlapping(range).next().is_some()
    }

    /// Whether every sector of the set is in `other`.
    pub(crate) fn is_subset(&self, other: &SectorSet) -> bool {
        self.ranges().all(|range| {
            let covered: u64 = other
                .overlapping(range.clone())
                .map(|run| run.end - run.start)
                .sum();
            covered == range.end - range.start
        })
    }

    /// The sectors of the set that are not in `other`.
    pub(crate) fn difference(&self, other: &SectorSet) -> SectorSet {
        let mut left = SectorSet::new();
        for range in self.ranges() {
            let mut at = range.start;
            for cut in other.overlapping(range.clone()) {
                left.insert_range(at..cut.start);
                at = cut.end;
            }
            left.insert_range(at..range.end);
        }
        left
    }
}

impl FromIterator<u64> for SectorSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let mut set = SectorSet::new();
        for sector in iter {
            set.insert(sector);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_when_they_meet_or_touch() {
        let mut set = SectorSet::new();
        set.insert_range(10..20);
        set.insert_range(30..40);
        set.insert_range(20..30);
        assert_eq!(set.ranges().collect::<Vec<_>>(), vec![10..40]);
        set.insert_range(5..12);
        set.insert(41);
        assert_eq!(set.ranges().collect::<Vec<_>>(), vec![5..40, 41..42]);
        assert_eq!(set.len(), 36);
        assert!(set.contains(5) && set.contains(39) && !set.contains(40) && set.contains(41));
    }

    #[test]
    fn overlapping_clips_to_the_range() {
        let set: SectorSet = [1, 2, 3, 7, 8, 20].into_iter().collect();
        assert_eq!(set.overlapping(2..8).collect::<Vec<_>>(), vec![2..4, 7..8]);
        assert!(!set.intersects(9..20));
        assert!(set.intersects(9..21));
    }

    #[test]
    fn difference_and_subset() {
        let a: SectorSet = (0..10).collect();
        let b: SectorSet = [3, 4, 9].into_iter().collect();
        let left = a.difference(&b);
        assert_eq!(left.ranges().collect::<Vec<_>>(), vec![0..3, 5..9]);
        assert!(b.is_subset(&a));
        assert!(!a.is_subset(&b));
        assert!(SectorSet::new().is_subset(&b));
    }
}
