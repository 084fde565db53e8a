//! Which entries a damaged range of the payload touches, so a damage map
//! can be told in entry paths: [`Archive::touched_by`].

use std::ops::Range;

use super::Entry;
use super::read::Archive;

/// What a range of content offsets overlaps in an archive.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched<'a> {
    /// Entries whose tar header blocks, data or padding overlap the range,
    /// in archive order.
    pub entries: Vec<&'a Entry>,
    /// Whether the range reaches the index or trailer after the tar
    /// stream (SPEC.md §12.2): then the archive does not open as one, and
    /// only `tar` on the salvaged stream can read what is left.
    pub index: bool,
}

impl<S> Archive<S> {
    /// What content offsets `plaintext` (a [`Damage::plaintext`](crate::Damage::plaintext))
    /// touch: the entries hit and whether the index is. Costs a binary
    /// search and the entries hit: the entries tile the tar stream in order
    /// (§12.2).
    pub fn touched_by(&self, plaintext: Range<u64>) -> Touched<'_> {
        let from = self
            .entries
            .partition_point(|entry| entry.end() <= plaintext.start);
        let entries = self.entries[from..]
            .iter()
            .take_while(|entry| entry.header_offset < plaintext.end)
            .collect();
        Touched {
            entries,
            index: plaintext.end > self.tar_len && plaintext.start < plaintext.end,
        }
    }
}
