//! Volume sizes for real media (`cd`, `dvd`, `dvd-dl`, `bd`, `bd-nodm`,
//! `bd-dl`, `bd-dl-nodm`, `fat32`), so that every tool linking the crate
//! burns the same sizes.

/// Bytes in a sector of a CD, DVD or BD data track (mode 1 / UDF).
const SECTOR: u64 = 2048;
const MIB: u64 = 1 << 20;

/// A disc preset's volume size: the largest whole MiB that leaves at least
/// 0.5% of the disc for the ISO 9660 / UDF filesystem the volume is burned
/// in (system area, descriptors, directories, a UDF bridge: well under 1 MiB
/// for a few files). Whole MiB are whole 64 KiB chunks and whole sectors.
const fn disc_volume(sectors: u64) -> u64 {
    let capacity = sectors * SECTOR;
    (capacity - capacity.div_ceil(200)) / MIB * MIB
}

/// A medium `--volume-size` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Name on the command line.
    pub name: &'static str,
    /// Largest volume written for it.
    pub volume_size: u64,
    /// What the medium holds: user-data sectors × 2,048 for discs, the
    /// largest file for FAT32.
    pub capacity: u64,
    /// For `--help`.
    pub medium: &'static str,
}

/// The presets, smallest first. Sector counts are those of recordable
/// media as burned (80-minute CD-R; DVD+R, the smaller of DVD±R; DVD-R DL).
/// BD-R holds fewer sectors when formatted with defect management (spare
/// areas, the default of most burning tools) than without: `bd` and `bd-dl`
/// fit the formatted disc, and so either; `bd-nodm` and `bd-dl-nodm` only
/// an unformatted one (dvdisaster's `BD_SL_SIZE_NODM`, speed47/dvdisaster#130).
pub const PRESETS: [Preset; 8] = [
    Preset {
        name: "cd",
        volume_size: disc_volume(360_000),
        capacity: 360_000 * SECTOR,
        medium: "CD-R, 80 min (360,000 sectors)",
    },
    Preset {
        name: "dvd",
        volume_size: disc_volume(2_295_104),
        capacity: 2_295_104 * SECTOR,
        medium: "DVD±R (2,295,104 sectors)",
    },
    Preset {
        name: "fat32",
        // The largest FAT32 file is 4 GiB − 1 byte; stay a MiB under it.
        volume_size: 4095 * MIB,
        capacity: (4 << 30) - 1,
        medium: "FAT32, whose largest file is 4 GiB − 1",
    },
    Preset {
        name: "dvd-dl",
        volume_size: disc_volume(4_171_712),
        capacity: 4_171_712 * SECTOR,
        medium: "DVD-R DL (4,171,712 sectors)",
    },
    Preset {
        name: "bd",
        volume_size: disc_volume(11_826_176),
        capacity: 11_826_176 * SECTOR,
        medium: "BD-R formatted with defect management (11,826,176 sectors), or unformatted",
    },
    Preset {
        name: "bd-nodm",
        volume_size: disc_volume(12_219_392),
        capacity: 12_219_392 * SECTOR,
        medium: "BD-R without defect management (12,219,392 sectors)",
    },
    Preset {
        name: "bd-dl",
        volume_size: disc_volume(23_652_352),
        capacity: 23_652_352 * SECTOR,
        medium: "BD-R DL formatted with defect management (23,652,352 sectors), or unformatted",
    },
    Preset {
        name: "bd-dl-nodm",
        volume_size: disc_volume(24_438_784),
        capacity: 24_438_784 * SECTOR,
        medium: "BD-R DL without defect management (24,438,784 sectors)",
    },
];

/// The preset called `name`, if any.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|preset| preset.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every disc preset fits its medium as a file inside an ISO 9660 / UDF
    /// image with at least 2 MiB and 0.5% to spare, and wastes under 2%.
    #[test]
    fn disc_presets_fit_the_medium_with_room_for_the_filesystem() {
        let expected = [
            ("cd", 360_000, 699 * MIB),
            ("dvd", 2_295_104, 4460 * MIB),
            ("dvd-dl", 4_171_712, 8107 * MIB),
            ("bd", 11_826_176, 22_982 * MIB),
            ("bd-nodm", 12_219_392, 23_746 * MIB),
            ("bd-dl", 23_652_352, 45_965 * MIB),
            ("bd-dl-nodm", 24_438_784, 47_493 * MIB),
        ];
        for (name, sectors, size) in expected {
            let p = preset(name).expect("preset");
            let capacity = sectors * SECTOR;
            assert_eq!(p.capacity, capacity, "{name}");
            assert_eq!(p.volume_size, size, "{name}");
            let room = capacity - size;
            assert!(room >= 2 * MIB, "{name}: {room} bytes for the filesystem");
            assert!(room * 200 >= capacity, "{name}: under 0.5% left");
            assert!(room * 50 < capacity, "{name}: 2% or more wasted");
            // Whole sectors and whole default chunks.
            assert_eq!(size % (64 << 10), 0, "{name}");
        }
        assert!(preset("floppy").is_none());
        // The formatted sizes fit an unformatted disc too.
        assert!(preset("bd").expect("bd").volume_size < preset("bd-nodm").expect("nodm").capacity);
    }

    #[test]
    fn fat32_stays_under_the_largest_file() {
        let p = preset("fat32").expect("preset");
        assert!(p.volume_size <= u64::from(u32::MAX));
        assert_eq!(p.capacity, u64::from(u32::MAX));
        assert!((p.capacity - p.volume_size) * 50 < p.capacity);
    }
}
