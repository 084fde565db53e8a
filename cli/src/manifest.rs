//! A set's encrypted manifest (label, creation time, note, padding rule) as
//! `open`, `list` and `info` show it: only after a key opened the set, since
//! nothing of it is visible without one.

use std::time::{Duration, SystemTime};

use kuvert::{Manifest, Padding, escape_name};

use crate::report::{json_str, rfc3339};

/// `name  value` lines, the note one line per line; empty for an empty
/// manifest. Text is escaped as names are (the library already refuses
/// control characters in labels and notes).
pub fn text_lines(manifest: &Manifest) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    if let Some(label) = manifest.label() {
        lines.push(("label", escape_name(label).into_owned()));
    }
    if let Some(created) = manifest.created() {
        lines.push(("created", rfc3339(created)));
    }
    if let Some(note) = manifest.note() {
        for (index, line) in note.split('\n').enumerate() {
            let name = if index == 0 { "note" } else { "" };
            lines.push((name, escape_name(line).into_owned()));
        }
    }
    lines
}

/// The manifest as a JSON object; `created` in seconds and as RFC 3339.
pub fn json(manifest: &Manifest) -> String {
    let mut fields = Vec::new();
    if let Some(label) = manifest.label() {
        fields.push(format!("\"label\":{}", json_str(label)));
    }
    if let Some(created) = manifest.created() {
        fields.push(format!(
            "\"created\":{created},\"created_utc\":{}",
            json_str(&rfc3339(created))
        ));
    }
    if let Some(note) = manifest.note() {
        fields.push(format!("\"note\":{}", json_str(note)));
    }
    let padding = manifest.padding().map_or("none", |rule| rule.name());
    fields.push(format!("\"padding\":{}", json_str(padding)));
    format!("{{{}}}", fields.join(","))
}

/// The manifest on standard error, as `open` and `list` report it: only if
/// the sealer wrote a label or a note, the fields meant to tell parcels
/// apart (a creation time alone is not worth a line on every open; `info`
/// with a key and `--json` always show it).
pub fn print_to_stderr(manifest: &Manifest) {
    if manifest.label().is_none() && manifest.note().is_none() {
        return;
    }
    for (name, value) in text_lines(manifest) {
        let name = if name.is_empty() {
            String::new()
        } else {
            format!("{name}:")
        };
        eprintln!("kuvert: {name:<9}{value}");
    }
}

/// What `--created` asks for: no record, the clock, or a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Omitted,
    Now,
    At(SystemTime),
}

impl Created {
    /// The time the sealer records (`None`: no record).
    pub fn time(self) -> Option<SystemTime> {
        match self {
            Created::Omitted => None,
            Created::Now => Some(SystemTime::now()),
            Created::At(time) => Some(time),
        }
    }
}

/// `--created`: `none`, `now`, or a UTC time `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_created(text: &str) -> Result<Created, String> {
    match text {
        "none" => return Ok(Created::Omitted),
        "now" => return Ok(Created::Now),
        _ => {}
    }
    let bad = || format!("{text:?} is not none, now or a UTC time such as 2026-12-02T14:00:00Z");
    let bytes = text.as_bytes();
    let shape = bytes.len() == 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't')
        && bytes[13] == b':'
        && bytes[16] == b':'
        && matches!(bytes[19], b'Z' | b'z');
    if !shape {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let digits = &text[range];
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        digits.parse().map_err(|_| bad())
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let valid = (1..=12).contains(&month)
        && (1..=month_days[(month - 1) as usize]).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return Err(bad());
    }
    // Howard Hinnant's days-from-civil, the inverse of `rfc3339_utc`.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    let time = match u64::try_from(secs) {
        Ok(after) => SystemTime::UNIX_EPOCH + Duration::from_secs(after),
        Err(_) => SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    };
    Ok(Created::At(time))
}

/// `--pad`: `padme`, `volume` or `none`.
pub fn parse_padding(text: &str) -> Result<Padding, String> {
    match text {
        "padme" => Ok(Padding::Padme),
        "volume" => Ok(Padding::Volume),
        "none" => Ok(Padding::None),
        _ => Err(format!("{text:?} is not padme, volume or none")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_times_parse_as_rfc3339_writes_them() {
        for secs in [
            0i64,
            951_782_400,
            1_764_547_200,
            4_107_542_399,
            -1,
            -86_400 * 365,
        ] {
            let text = rfc3339(secs);
            let parsed = parse_created(&text).expect("parses");
            let time = SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(secs.max(0) as u64))
                .and_then(|t| t.checked_sub(Duration::from_secs((-secs).max(0) as u64)))
                .expect("representable");
            assert_eq!(parsed, Created::At(time), "{text}");
        }
        assert_eq!(parse_created("none"), Ok(Created::Omitted));
        assert_eq!(parse_created("now"), Ok(Created::Now));
        for bad in [
            "",
            "yesterday",
            "2025-12-01",
            "2025-12-01T00:00:00",
            "2025-12-01T00:00:00+01:00",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-12-01T24:00:00Z",
            "2025-12-01T00:00:60Z",
            "2025-1a-01T00:00:00Z",
        ] {
            assert!(parse_created(bad).is_err(), "{bad}");
        }
        assert!(parse_created("2024-02-29T23:59:59Z").is_ok());
    }

    #[test]
    fn an_empty_manifest_shows_nothing_but_its_padding_rule() {
        let manifest = Manifest::default();
        assert!(text_lines(&manifest).is_empty());
        assert_eq!(json(&manifest), "{\"padding\":\"none\"}");
    }
}
