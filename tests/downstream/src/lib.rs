//! The data of the jobs in `tests/jobs.rs`: a register extract as CSV rows,
//! from a fixed seed, so that every byte is known without storing it.
//!
//! This crate is a dependent of kuvert, not a part of it: it uses only
//! what a user of the published library sees.

use std::fmt::Write as _;

/// The CSV header line.
pub const HEADER: &str = "person_id,birth_date,municipality,diagnosis,visits\n";

/// A generated extract: its bytes and where each line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extract {
    /// The CSV text, header first, every line ending in `\n`.
    pub csv: Vec<u8>,
    /// Offset of each line in `csv` (the header is line 0).
    pub line_starts: Vec<u64>,
}

impl Extract {
    /// Line `index` without its newline.
    ///
    /// # Panics
    ///
    /// If `index` is past the last line.
    pub fn line(&self, index: usize) -> &[u8] {
        let start = self.line_starts[index] as usize;
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.csv.len(), |&next| next as usize);
        &self.csv[start..end - 1]
    }

    /// The line that holds byte `offset` of the CSV.
    pub fn line_at(&self, offset: u64) -> usize {
        self.line_starts.partition_point(|&start| start <= offset) - 1
    }
}

/// `rows` rows after the header, the same for the same `seed`.
pub fn extract(rows: usize, seed: u64) -> Extract {
    const DIAGNOSES: [&str; 6] = ["E11.9", "I10", "J45.909", "F32.1", "M54.5", "C50.911"];
    const PLACES: [&str; 5] = ["Aurich", "Emden", "Leer", "Norden", "Wittmund"];
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut text = String::with_capacity(rows * 48 + HEADER.len());
    let mut line_starts = Vec::with_capacity(rows + 1);
    line_starts.push(0);
    text.push_str(HEADER);
    for row in 0..rows {
        line_starts.push(text.len() as u64);
        let random = next();
        let (year, month, day) = (
            1920 + random % 100,
            1 + (random >> 8) % 12,
            1 + (random >> 16) % 28,
        );
        let place = PLACES[(random >> 24) as usize % PLACES.len()];
        let diagnosis = DIAGNOSES[(random >> 32) as usize % DIAGNOSES.len()];
        let visits = (random >> 40) % 40;
        writeln!(
            text,
            "{:010},{year}-{month:02}-{day:02},{place},{diagnosis},{visits}",
            1_000_000_000 + row as u64 * 7,
        )
        .expect("writing to a String does not fail");
    }
    Extract {
        csv: text.into_bytes(),
        line_starts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extract_is_fixed_by_its_seed_and_indexed_by_line() {
        let one = extract(1000, 7);
        assert_eq!(one, extract(1000, 7));
        assert_ne!(one.csv, extract(1000, 8).csv);
        assert_eq!(one.line_starts.len(), 1001);
        assert_eq!(one.line(0), HEADER.trim_end().as_bytes());
        let text = String::from_utf8(one.csv.clone()).expect("ASCII");
        let lines: Vec<&str> = text.lines().collect();
        for index in [0, 1, 500, 1000] {
            assert_eq!(one.line(index), lines[index].as_bytes());
            let start = one.line_starts[index];
            assert_eq!(one.line_at(start), index);
            assert_eq!(one.line_at(start + 3), index);
        }
        assert!(lines[1..].iter().all(|line| line.split(',').count() == 5));
    }
}
