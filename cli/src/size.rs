//! Byte sizes on the command line: `64K`, `700MiB`, `1g`, `734003200`, and
//! the media presets `cd`, `dvd`, `dvd-dl`, `bd`, `bd-nodm`, `bd-dl`,
//! `bd-dl-nodm`, `fat32`.

pub use kuvert::media::PRESETS;

/// Parses a size: a preset name (if `presets`), or a whole number with an
/// optional K, M or G (powers of 1024) and an optional B or iB, in any case.
pub fn parse(text: &str, presets: bool) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    if let Some(preset) = PRESETS.iter().find(|p| p.name == lower) {
        if presets {
            return Ok(preset.volume_size);
        }
        return Err(format!("{text:?}: media presets name volume sizes only"));
    }
    let digits = lower.len() - lower.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, unit) = lower.split_at(digits);
    if number.is_empty() {
        let names = if presets {
            format!(", or one of {}", PRESETS.map(|p| p.name).join(", "))
        } else {
            String::new()
        };
        return Err(format!(
            "{text:?} is not a size: use a number with K, M or G (powers of 1024){names}"
        ));
    }
    let shift = match unit {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use K, M or G, powers of 1024)"
            ));
        }
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is too large"))?;
    let bytes = value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err(format!("{text:?}: a size must be above zero"));
    }
    Ok(bytes)
}

/// Whether `bytes` is a disc preset's volume size (every preset but
/// `fat32`): those get parity by default.
pub fn is_disc_preset(bytes: u64) -> bool {
    PRESETS
        .iter()
        .any(|preset| preset.name != "fat32" && preset.volume_size == bytes)
}

/// Parses `--volume-size`.
pub fn volume_size(text: &str) -> Result<u64, String> {
    parse(text, true)
}

/// Parses `--chunk-size`: a power of two from 4 KiB to 16 MiB.
pub fn chunk_size(text: &str) -> Result<usize, String> {
    let bytes = parse(text, false)?;
    let bytes = usize::try_from(bytes).map_err(|_| format!("{text:?} is too large"))?;
    kuvert::Sealer::check_chunk_size(bytes).map_err(|err| format!("{text:?}: {err}"))?;
    Ok(bytes)
}

/// Parses `--max-argon2-memory`: a size in whole KiB, as Argon2id counts
/// memory, up to 2^32 − 1 KiB.
pub fn argon2_memory(text: &str) -> Result<u32, String> {
    let bytes = parse(text, false)?;
    if !bytes.is_multiple_of(1024) {
        return Err(format!(
            "{text:?}: Argon2id memory is counted in KiB: use a number with K, M or G"
        ));
    }
    u32::try_from(bytes / 1024)
        .map_err(|_| format!("{text:?}: Argon2id memory is at most 4294967295K"))
}

/// `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `700 MiB`, `1.5 GiB`, `512 bytes`: for people, not for parsing.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One line per preset for `--help`.
pub fn presets_help() -> String {
    PRESETS
        .iter()
        .map(|p| {
            format!(
                "  {:<10} {:>14} bytes ({}): {}",
                p.name,
                grouped(p.volume_size),
                human(p.volume_size),
                p.medium
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preset(name: &str) -> kuvert::media::Preset {
        *PRESETS.iter().find(|p| p.name == name).expect("preset")
    }

    #[test]
    fn argon2_memory_is_whole_kib() {
        assert_eq!(argon2_memory("64M"), Ok(64 << 10));
        assert_eq!(argon2_memory("4294967295K"), Ok(u32::MAX));
        // The help names the library's default.
        let limits = kuvert::Limits::default();
        assert_eq!(argon2_memory("2G"), Ok(limits.argon2_max_memory_kib));
        assert_eq!((limits.argon2_max_passes, limits.argon2_max_lanes), (8, 16));
        for bad in ["1000", "4T", "4294967296K", "0K", "x"] {
            assert!(argon2_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_are_powers_of_1024_in_any_case() {
        for (text, bytes) in [
            ("1", 1),
            ("100b", 100),
            ("64K", 64 << 10),
            ("64k", 64 << 10),
            ("64KiB", 64 << 10),
            ("64kb", 64 << 10),
            ("700M", 700 << 20),
            ("700MiB", 700 << 20),
            ("700mB", 700 << 20),
            ("2G", 2 << 30),
            ("2gib", 2 << 30),
            (" 5M ", 5 << 20),
        ] {
            assert_eq!(parse(text, true), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "K",
            "0",
            "0M",
            "1.5G",
            "-1",
            "1T",
            "1 M",
            "12x",
            "99999999999999999999",
            "20000000000G",
            "cdrom",
        ] {
            assert!(parse(bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn presets_are_names_and_only_for_volumes() {
        assert_eq!(volume_size("CD"), Ok(preset("cd").volume_size));
        assert_eq!(volume_size("dvd-dl"), Ok(preset("dvd-dl").volume_size));
        assert!(chunk_size("cd").is_err());
    }

    #[test]
    fn chunk_sizes_are_powers_of_two_from_4k_to_16m() {
        assert_eq!(chunk_size("4K"), Ok(4096));
        assert_eq!(chunk_size("64k"), Ok(65536));
        assert_eq!(chunk_size("16M"), Ok(16 << 20));
        for bad in ["2K", "32M", "65535", "96K"] {
            assert!(chunk_size(bad).is_err(), "{bad}");
        }
    }

    // The preset sizes themselves are tested in the library (src/media.rs).

    #[test]
    fn numbers_for_people() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(68_222_976), "68,222,976");
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(700 << 20), "700 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}
