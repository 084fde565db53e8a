//! A volume source that cannot read chosen byte ranges, as a scratched disc
//! gives EIO for its bad sectors: for tests of damage reports.

use std::io;
use std::ops::Range;

use kuvert::VolumeSource;

/// EIO, as an unreadable disc sector gives it.
pub const EIO: i32 = 5;

/// A volume in memory, optionally named like a file, whose bytes in `bad`
/// cannot be read: any read overlapping one of the ranges fails with EIO.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub bytes: Vec<u8>,
    pub bad: Vec<Range<u64>>,
    pub name: Option<String>,
}

impl Unreadable {
    /// `bytes`, all readable, named `name`.
    pub fn new(bytes: Vec<u8>, name: impl Into<String>) -> Self {
        Unreadable {
            bytes,
            bad: Vec::new(),
            name: Some(name.into()),
        }
    }

    /// The same volume, unreadable in `range` too.
    pub fn fail(mut self, range: Range<u64>) -> Self {
        self.bad.push(range);
        self.merge();
        self
    }

    /// The same volume, unreadable in each 2,048-byte sector of `sectors`
    /// too (scattered damage: thousands of ranges, looked up by bisection).
    pub fn fail_sectors(mut self, sectors: impl IntoIterator<Item = u64>) -> Self {
        self.bad
            .extend(sectors.into_iter().map(|s| s * 2048..(s + 1) * 2048));
        self.merge();
        self
    }

    /// Keeps `bad` sorted and disjoint, so a read looks it up by bisection.
    fn merge(&mut self) {
        self.bad.sort_by_key(|range| range.start);
        let mut merged: Vec<Range<u64>> = Vec::with_capacity(self.bad.len());
        for range in self.bad.drain(..).filter(|range| !range.is_empty()) {
            match merged.last_mut() {
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        self.bad = merged;
    }

    /// Whether any byte of `offset..end` is unreadable.
    fn is_bad(&self, offset: u64, end: u64) -> bool {
        // The last range starting before `end` is the only one that can
        // reach back into the read.
        let before = self.bad.partition_point(|range| range.start < end);
        before > 0 && self.bad[before - 1].end > offset
    }
}

impl VolumeSource for Unreadable {
    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        if self.is_bad(offset, end) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        self.bytes.read_exact_at(buf, offset)
    }

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// Volumes as sources named `STEM.001.kuv`, … with nothing unreadable yet.
pub fn named(volumes: &[Vec<u8>], stem: &str) -> Vec<Unreadable> {
    volumes
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            Unreadable::new(bytes.clone(), format!("{stem}.{:03}.kuv", index + 1))
        })
        .collect()
}
