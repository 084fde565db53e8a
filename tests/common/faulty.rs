//! A volume in memory with faults at chosen 2,048-byte sectors, as a
//! scratched disc shows them: sectors that give EIO (a drive), that read as
//! zeros (a ddrescue image fills what it could not read with zeros), or that
//! read as garbage (silent corruption the drive's EDC missed).

use std::io;
use std::ops::Range;

use kuvert::VolumeSource;

use super::eio::EIO;

/// Bytes in a sector.
pub const SECTOR: u64 = kuvert::SECTOR;

/// How a faulty sector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Any read touching it fails with EIO.
    Eio,
    /// It reads as zeros.
    Zeroed,
    /// It reads as bytes that depend on the sector number only.
    Garbage,
}

/// A volume whose sectors in each range read as the fault says.
#[derive(Debug, Clone)]
pub struct Faulty {
    pub bytes: Vec<u8>,
    pub faults: Vec<(Range<u64>, Fault)>,
    pub name: Option<String>,
}

impl Faulty {
    /// `bytes`, all intact, named `name`.
    pub fn new(bytes: Vec<u8>, name: impl Into<String>) -> Self {
        Faulty {
            bytes,
            faults: Vec::new(),
            name: Some(name.into()),
        }
    }

    /// The same volume with sectors `sectors` (sector numbers, not bytes)
    /// faulty as `fault` says.
    pub fn fault(mut self, sectors: Range<u64>, fault: Fault) -> Self {
        self.faults.push((sectors, fault));
        self
    }

    /// Byte range of `sectors`.
    pub fn bytes_of(sectors: Range<u64>) -> Range<u64> {
        sectors.start * SECTOR..sectors.end * SECTOR
    }
}

impl VolumeSource for Faulty {
    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        let touched = offset / SECTOR..end.div_ceil(SECTOR);
        let overlaps = |s: &Range<u64>| s.start < touched.end && touched.start < s.end;
        if self
            .faults
            .iter()
            .any(|(s, fault)| *fault == Fault::Eio && overlaps(s))
        {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        self.bytes.read_exact_at(buf, offset)?;
        for (sectors, fault) in self.faults.iter().filter(|(s, _)| overlaps(s)) {
            let from = (sectors.start * SECTOR).max(offset);
            let to = (sectors.end * SECTOR).min(end);
            for at in from..to {
                buf[(at - offset) as usize] = match fault {
                    Fault::Garbage => {
                        (at / SECTOR).wrapping_mul(131).wrapping_add(at % 7) as u8 ^ 0x5A
                    }
                    _ => 0,
                };
            }
        }
        Ok(())
    }

    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}
