//! What the headers of some volumes say about their sets, read without any
//! key: which volumes of each set are there, which are missing, and whether
//! more may follow. The keyless counterpart of [`SetCheck`](crate::SetCheck)
//! (which needs a key and trusts only authenticated headers).

use std::collections::BTreeSet;

use crate::format::SET_ID_LEN;
use crate::header::VolumeInfo;

/// One set as its volumes' headers describe it, before any key.
///
/// Nothing here is authenticated: a header's set id and volume number are
/// claims until a key opens it. Use it to tell a courier or an archivist
/// which discs to look for, not to decide that a set is whole.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSurvey {
    /// The set id the volumes share.
    pub set_id: [u8; SET_ID_LEN],
    /// Whether the set was sealed with a volume size.
    pub split: bool,
    /// The volume numbers given, ascending, each once.
    pub present: Vec<u32>,
    /// The numbers below the highest given that are not there.
    pub missing: Vec<u32>,
    /// The highest volume number given.
    pub highest: u32,
    /// Whether that volume is full (a set may go on after it) rather than
    /// short (it can only be the last).
    pub highest_is_full: bool,
}

impl SetSurvey {
    /// The sets of `volumes`, in the order each set is first met. Volumes
    /// with the same set id are one set, whatever their other fields say.
    pub fn of<'a>(volumes: impl IntoIterator<Item = &'a VolumeInfo>) -> Vec<SetSurvey> {
        let volumes: Vec<&VolumeInfo> = volumes.into_iter().collect();
        let mut sets: Vec<SetSurvey> = Vec::new();
        for info in &volumes {
            if sets.iter().any(|set| set.set_id == info.set_id) {
                continue;
            }
            let members: Vec<&&VolumeInfo> = volumes
                .iter()
                .filter(|other| other.set_id == info.set_id)
                .collect();
            let present: BTreeSet<u32> = members.iter().map(|member| member.volume).collect();
            let highest = present.last().copied().unwrap_or(0);
            let highest_is_full = members
                .iter()
                .filter(|member| member.volume == highest)
                .all(|member| member.is_full());
            sets.push(SetSurvey {
                set_id: info.set_id,
                split: info.is_split(),
                missing: (1..highest).filter(|n| !present.contains(n)).collect(),
                present: present.into_iter().collect(),
                highest,
                highest_is_full,
            });
        }
        sets
    }

    /// Whether every volume seems to be there: `Some(false)` if one below
    /// the highest is missing, `None` if the highest is full (a set can end
    /// on a full volume, or go on), `Some(true)` otherwise.
    pub fn complete(&self) -> Option<bool> {
        if !self.missing.is_empty() {
            Some(false)
        } else if self.split && self.highest_is_full {
            None
        } else {
            Some(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A volume of a set split into 4-chunk volumes of 4 KiB chunks.
    fn volume(set: u8, number: u32, full: bool) -> VolumeInfo {
        let header_len = 2048;
        let data = if full { 4 * 4096 } else { 4096 + 20 };
        VolumeInfo {
            version: 1,
            set_id: [set; SET_ID_LEN],
            volume: number,
            chunk_size: 4096,
            chunks_per_volume: 4,
            stanza_types: vec!["X25519".into()],
            signers: Vec::new(),
            header_len,
            len: header_len + data,
            digests: false,
            chunk_end: None,
        }
    }

    #[test]
    fn sets_are_told_apart_and_their_gaps_named() {
        let infos = [
            volume(1, 3, false),
            volume(2, 2, true),
            volume(1, 1, true),
            volume(1, 1, true),
        ];
        let sets = SetSurvey::of(&infos);
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].set_id, [1; SET_ID_LEN]);
        assert_eq!(
            (sets[0].present.as_slice(), sets[0].missing.as_slice()),
            (&[1, 3][..], &[2][..])
        );
        assert_eq!((sets[0].highest, sets[0].highest_is_full), (3, false));
        assert_eq!(sets[0].complete(), Some(false));
        assert_eq!(
            (sets[1].present.as_slice(), sets[1].missing.as_slice()),
            (&[2][..], &[1][..])
        );
        assert_eq!(sets[1].complete(), Some(false));
    }

    #[test]
    fn a_full_highest_volume_leaves_the_end_open() {
        let open = SetSurvey::of(&[volume(1, 1, true), volume(1, 2, true)]);
        assert_eq!(open[0].complete(), None);
        let closed = SetSurvey::of(&[volume(1, 2, false), volume(1, 1, true)]);
        assert_eq!(closed[0].complete(), Some(true));
        let mut single = volume(1, 1, false);
        single.chunks_per_volume = 0;
        let unsplit = SetSurvey::of(&[single]);
        assert!(!unsplit[0].split);
        assert_eq!(unsplit[0].complete(), Some(true));
    }
}
