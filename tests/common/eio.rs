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
        self
    }
}

impl VolumeSource for Unreadable {
    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        if self
            .bad
            .iter()
            .any(|bad| bad.start < end && offset < bad.end)
        {
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
