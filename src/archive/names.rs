//! Rules for entry names (SPEC.md §12.3): what a path may look like, when
//! two names are the same name to a file system, and which names another
//! system cannot hold.

use std::fmt;

use caseless::default_case_fold_str;
use unicode_normalization::UnicodeNormalization;

use crate::escape::escape_name;

/// Longest path or link target in the index, in bytes.
pub(crate) const MAX_PATH_LEN: usize = 4096;

/// Checks that `path` is a plain relative path: `/`-separated, no empty,
/// `.` or `..` component, no leading `/`, no NUL or backslash.
pub(crate) fn check_relative(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty path");
    }
    if path.len() > MAX_PATH_LEN {
        return Err("path longer than 4096 bytes");
    }
    if path.starts_with('/') {
        return Err("absolute path");
    }
    if path.contains('\0') || path.contains('\\') {
        return Err("NUL or backslash in path");
    }
    for component in path.split('/') {
        match component {
            "" => return Err("empty path component"),
            "." | ".." => return Err("`.` or `..` in path"),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a symlink target's form before it is resolved (SPEC.md §12.5).
pub(crate) fn check_link_target(target: &str) -> Result<(), &'static str> {
    if target.is_empty() {
        return Err("empty link target");
    }
    if target.len() > MAX_PATH_LEN {
        return Err("link target longer than 4096 bytes");
    }
    if target.contains('\0') || target.contains('\\') {
        return Err("NUL or backslash in link target");
    }
    if target.starts_with('/') {
        return Err("symlink to an absolute path");
    }
    Ok(())
}

/// The key under which file systems that fold case or normalise Unicode
/// (APFS, HFS+, NTFS, exFAT, FAT32, ext4 casefold) store a name: Unicode's
/// canonical caseless match (D145), NFC(full case folding(NFD(name))), so
/// `Ä`, `A` + U+0308 and `ä` are one name, and `STRASSE` and `straße` too.
pub(crate) fn fold_key(component: &str) -> String {
    if component.is_ascii() {
        // Folding ASCII is lowercasing it, and normalisation leaves it alone.
        return component.to_ascii_lowercase();
    }
    let decomposed: String = component.nfd().collect();
    default_case_fold_str(&decomposed).nfc().collect()
}

/// A name that this system accepts but another one the parcel may travel
/// to does not: reported when sealing, never refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortabilityWarning {
    /// A component Windows reserves (`CON`, `NUL`, `COM1`, `LPT1`, …, also
    /// with an extension).
    ReservedOnWindows {
        /// The entry's path.
        path: String,
    },
    /// A component ending in a dot or a space, which Windows drops.
    TrailingDotOrSpace {
        /// The entry's path.
        path: String,
    },
    /// A character Windows file names cannot hold (`<>:"|?*` or a control
    /// character).
    CharacterNotOnWindows {
        /// The entry's path.
        path: String,
    },
}

impl fmt::Display for PortabilityWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, what) = match self {
            PortabilityWarning::ReservedOnWindows { path } => (path, "a name Windows reserves"),
            PortabilityWarning::TrailingDotOrSpace { path } => {
                (path, "ends in a dot or space, which Windows drops")
            }
            PortabilityWarning::CharacterNotOnWindows { path } => {
                (path, "holds a character Windows names cannot hold")
            }
        };
        write!(f, "\"{}\": {what}", escape_name(path))
    }
}

/// What a Windows system would make of `path`, if anything.
pub(crate) fn portability(path: &str) -> Option<PortabilityWarning> {
    let path_owned = || path.to_owned();
    for component in path.split('/') {
        if component
            .chars()
            .any(|c| c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*'))
        {
            return Some(PortabilityWarning::CharacterNotOnWindows { path: path_owned() });
        }
        if component.ends_with('.') || component.ends_with(' ') {
            return Some(PortabilityWarning::TrailingDotOrSpace { path: path_owned() });
        }
        let stem = component
            .split('.')
            .next()
            .unwrap_or(component)
            .trim_end_matches(' ')
            .to_ascii_uppercase();
        let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
            || ((stem.starts_with("COM") || stem.starts_with("LPT"))
                && stem.len() == 4
                && stem.as_bytes()[3].is_ascii_digit())
            || matches!(
                stem.as_str(),
                "COM¹" | "COM²" | "COM³" | "LPT¹" | "LPT²" | "LPT³" | "CONIN$" | "CONOUT$"
            );
        if reserved {
            return Some(PortabilityWarning::ReservedOnWindows { path: path_owned() });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_only() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../../b",
            "./a",
            "a//b",
            "a/.",
            "a\\b",
            "a\0b",
            "a/",
        ] {
            assert!(check_relative(bad).is_err(), "{bad:?}");
        }
        for good in [
            "a",
            "a/b",
            "dir/file.csv",
            "ünïcode/名前",
            "..hidden",
            "a/...b",
        ] {
            assert!(check_relative(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn folding_is_canonical_caseless() {
        // NFC and NFD spellings of the same letter.
        assert_eq!(fold_key("\u{e4}"), fold_key("a\u{308}"));
        // Case, including letters that fold to two.
        assert_eq!(fold_key("Ä"), fold_key("ä"));
        assert_eq!(fold_key("STRASSE"), fold_key("straße"));
        assert_eq!(fold_key("ǅ"), fold_key("ǆ"));
        // The Kelvin and Ångström signs are letters to a folding file system.
        assert_eq!(fold_key("\u{212a}"), fold_key("k"));
        assert_eq!(fold_key("\u{212b}"), fold_key("å"));
        assert_ne!(fold_key("a"), fold_key("b"));
        assert_ne!(fold_key("ss"), fold_key("s"));
    }

    #[test]
    fn windows_names_are_noticed() {
        for (path, expect) in [
            ("CON", "reserved"),
            ("d/nul.txt", "reserved"),
            ("Com1.csv", "reserved"),
            ("lpt9", "reserved"),
            ("a/b.", "trailing"),
            ("a /b", "trailing"),
            ("a:b", "char"),
            ("x?", "char"),
        ] {
            let found = portability(path);
            let kind = match found {
                Some(PortabilityWarning::ReservedOnWindows { .. }) => "reserved",
                Some(PortabilityWarning::TrailingDotOrSpace { .. }) => "trailing",
                Some(PortabilityWarning::CharacterNotOnWindows { .. }) => "char",
                None => "none",
            };
            assert_eq!(kind, expect, "{path}");
        }
        for fine in [
            "console",
            "COM",
            "COM10",
            "nul_",
            "a.b/c d",
            "register/persons.csv",
        ] {
            assert_eq!(portability(fine), None, "{fine}");
        }
    }
}
