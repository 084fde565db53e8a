//! Printing names that a sender chose: archive entry paths, link targets.
//!
//! Whoever seals an archive chooses its names, and the receiver's terminal
//! interprets what is printed. A name holding `ESC [ 2 J` clears the screen,
//! one holding a newline forges a line of output (`kuvert: extracted 3
//! entries`), and a right-to-left override makes `txt.exe` read as
//! `exe.txt`. [`escape_name`] makes such characters visible, as `ls -b` does,
//! so that a listing or a message shows what the name really holds.

use std::borrow::Cow;
use std::fmt::Write as _;

/// A name with every character that could move the cursor, forge a line or
/// reorder text replaced by a visible escape; other text (spaces and
/// non-ASCII letters included) is left as it is.
///
/// Escaped are the backslash itself (`\\`, so the result is unambiguous),
/// C0 controls and DEL (`\n`, `\t`, `\r`, else `\x1b`), C1 controls
/// (U+0080–U+009F, as `\u{85}`), the line and paragraph separators
/// U+2028/U+2029, and the bidirectional controls U+061C, U+200E, U+200F,
/// U+202A–U+202E and U+2066–U+2069 (as `\u{202e}`). A name with none of
/// these is returned borrowed.
///
/// # Security
///
/// Use it for anything printed to a terminal or a log that came from a
/// sealed payload. It does not make a name safe to use as a path: the
/// extractor's own rules do that.
///
/// ```
/// use kuvert::escape_name;
///
/// assert_eq!(escape_name("notes/ünïcode name.txt"), "notes/ünïcode name.txt");
/// assert_eq!(escape_name("a\nkuvert: ok"), "a\\nkuvert: ok");
/// assert_eq!(escape_name("\x1b[2J"), "\\x1b[2J");
/// assert_eq!(escape_name("doc\u{202e}txt.exe"), "doc\\u{202e}txt.exe");
/// ```
pub fn escape_name(name: &str) -> Cow<'_, str> {
    let Some(first) = name.find(needs_escape) else {
        return Cow::Borrowed(name);
    };
    let mut out = String::with_capacity(name.len() + 8);
    out.push_str(&name[..first]);
    for c in name[first..].chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `escape_name` replaces `c`.
fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\\' | '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_borrowed_unchanged() {
        for name in [
            "",
            "a",
            "data/nested/notes.txt",
            "ünïcode name.csv",
            "日本語/ファイル",
            "a b",
        ] {
            assert!(
                matches!(escape_name(name), Cow::Borrowed(n) if n == name),
                "{name:?}"
            );
        }
    }

    #[test]
    fn controls_become_visible_escapes() {
        let cases = [
            ("\\", "\\\\"),
            ("a\nb", "a\\nb"),
            ("\t\r", "\\t\\r"),
            ("\0", "\\x00"),
            ("\x1b[2J", "\\x1b[2J"),
            ("\x07", "\\x07"),
            ("\x7f", "\\x7f"),
            ("\u{80}\u{85}\u{9b}\u{9f}", "\\u{80}\\u{85}\\u{9b}\\u{9f}"),
            ("\u{2028}\u{2029}", "\\u{2028}\\u{2029}"),
            ("\u{61c}\u{200e}\u{200f}", "\\u{61c}\\u{200e}\\u{200f}"),
            ("\u{202a}\u{202e}", "\\u{202a}\\u{202e}"),
            ("\u{2066}\u{2069}", "\\u{2066}\\u{2069}"),
            ("é\x1bü", "é\\x1bü"),
        ];
        for (name, escaped) in cases {
            assert_eq!(escape_name(name), escaped, "{name:?}");
        }
    }

    #[test]
    fn neighbours_of_the_escaped_ranges_are_kept() {
        for c in [
            ' ', '~', '\u{a0}', 'é', '\u{200d}', '\u{2027}', '\u{202f}', '\u{2065}', '\u{206a}',
        ] {
            let name = c.to_string();
            assert_eq!(escape_name(&name), name, "{c:?}");
        }
    }

    #[test]
    fn escaped_output_holds_no_control_and_is_unambiguous() {
        // A backslash that was in the name and one that starts an escape
        // never read the same.
        assert_ne!(escape_name("\\x1b"), escape_name("\x1b"));
        for code in 0..=0x3000u32 {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let escaped = escape_name(&format!("a{c}b")).into_owned();
            assert!(
                escaped.chars().all(|e| !needs_escape(e) || e == '\\'),
                "{c:?}"
            );
        }
    }
}
