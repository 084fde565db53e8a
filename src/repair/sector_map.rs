//! What a repair did to each sector of a volume, as runs, and the small
//! terminal map drawn from it (dvdisaster's sector view).

use std::ops::Range;

use crate::repair::sector_set::SectorSet;

/// The state of one sector after a repair, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SectorState {
    /// Read and found right: untouched.
    Good,
    /// Lost (unreadable or proved wrong) and rewritten from parity, or
    /// rebuilt from the rest (parity digest block, end sector).
    Repaired,
    /// Lost and not restored: its stripe lost more than m sectors, or it
    /// still fails its digest.
    Unrecoverable,
}

/// The state of every sector of a volume: runs of sector indices that are
/// not [`SectorState::Good`], in order; every other sector is good.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SectorMap {
    sectors: u64,
    runs: Vec<(Range<u64>, SectorState)>,
}

impl SectorMap {
    /// A map of `sectors` sectors from the sets of repaired and
    /// unrecoverable ones (unrecoverable wins where both hold).
    pub(crate) fn from_sets(sectors: u64, repaired: &SectorSet, unrecoverable: &SectorSet) -> Self {
        let mut runs: Vec<(Range<u64>, SectorState)> = repaired
            .difference(unrecoverable)
            .ranges()
            .map(|range| (range, SectorState::Repaired))
            .chain(
                unrecoverable
                    .ranges()
                    .map(|range| (range, SectorState::Unrecoverable)),
            )
            .filter(|(range, _)| range.start < sectors)
            .map(|(range, state)| (range.start..range.end.min(sectors), state))
            .collect();
        runs.sort_by_key(|(range, _)| range.start);
        SectorMap { sectors, runs }
    }

    /// Sectors in the volume.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// The runs of sectors that are not good, in order, with their state.
    pub fn runs(&self) -> impl Iterator<Item = (Range<u64>, SectorState)> + '_ {
        self.runs.iter().cloned()
    }

    /// The state of sector `sector` (good beyond the end).
    pub fn state(&self, sector: u64) -> SectorState {
        let index = self.runs.partition_point(|(range, _)| range.end <= sector);
        match self.runs.get(index) {
            Some((range, state)) if range.contains(&sector) => *state,
            _ => SectorState::Good,
        }
    }

    /// Sectors in `state`.
    pub fn count(&self, state: SectorState) -> u64 {
        let other: u64 = self
            .runs
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(range, _)| range.end - range.start)
            .sum();
        match state {
            SectorState::Good => {
                self.sectors - self.runs.iter().map(|(r, _)| r.end - r.start).sum::<u64>()
            }
            _ => other,
        }
    }

    /// The volume cut into `cells` equal parts, each the worst state of
    /// its sectors: a map for a terminal line. A volume of fewer sectors
    /// than cells repeats sectors across cells.
    pub fn cells(&self, cells: usize) -> Vec<SectorState> {
        let n = cells as u64;
        (0..n)
            .map(|cell| {
                if self.sectors == 0 {
                    return SectorState::Good;
                }
                let start = cell * self.sectors / n;
                let end = ((cell + 1) * self.sectors / n).max(start + 1);
                let first = self.runs.partition_point(|(range, _)| range.end <= start);
                self.runs[first..]
                    .iter()
                    .take_while(|(range, _)| range.start < end)
                    .map(|(_, state)| *state)
                    .max()
                    .unwrap_or(SectorState::Good)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_show_the_worst_state_of_their_part() {
        let repaired: SectorSet = (10..20).collect();
        let lost: SectorSet = [15, 90].into_iter().collect();
        let map = SectorMap::from_sets(100, &repaired, &lost);
        assert_eq!(map.state(9), SectorState::Good);
        assert_eq!(map.state(10), SectorState::Repaired);
        assert_eq!(map.state(15), SectorState::Unrecoverable);
        assert_eq!(map.count(SectorState::Repaired), 9);
        assert_eq!(map.count(SectorState::Unrecoverable), 2);
        assert_eq!(map.count(SectorState::Good), 89);
        use SectorState::{Good as G, Repaired as R, Unrecoverable as U};
        assert_eq!(map.cells(10), vec![G, U, G, G, G, G, G, G, G, U]);
        assert_eq!(map.cells(20)[2..4], [R, U]);
        let small = SectorMap::from_sets(2, &(1..2).collect(), &SectorSet::new());
        assert_eq!(small.cells(4), vec![G, G, R, R]);
    }
}
