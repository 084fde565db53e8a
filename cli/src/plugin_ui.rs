//! The terminal a plugin talks to (a YubiKey's "touch it", its PIN): its
//! messages on stderr, escaped (another program wrote them), its questions
//! on the controlling terminal. Without a terminal every question fails,
//! so a script gets the plugin's own error instead of a hang.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};

use kuvert::{PluginUi, escape_name};
use zeroize::Zeroizing;

/// Times a yes/no question is asked again before it counts as unanswered.
const CONFIRM_TRIES: usize = 3;

/// The CLI's [`PluginUi`].
pub struct TerminalUi;

impl PluginUi for TerminalUi {
    fn message(&self, plugin: &str, text: &str) -> bool {
        crate::progress::suspended(|| {
            eprintln!("age-plugin-{plugin}: {}", escape_name(text.trim_end()));
        });
        true
    }

    fn confirm(&self, plugin: &str, text: &str, yes: &str, no: Option<&str>) -> Option<bool> {
        let yes = escape_name(yes);
        let no = no.map(escape_name);
        let choices = match &no {
            Some(no) => format!("[y = {yes}, n = {no}]"),
            None => format!("[y = {yes}]"),
        };
        for _ in 0..CONFIRM_TRIES {
            let question = format!(
                "age-plugin-{plugin}: {} {choices} ",
                escape_name(text.trim_end())
            );
            let answer = crate::progress::suspended(|| ask_terminal(&question))?;
            match answer.trim().to_lowercase().as_str() {
                "y" | "yes" => return Some(true),
                "n" | "no" if no.is_some() => return Some(false),
                _ => {}
            }
        }
        None
    }

    fn request_public(&self, plugin: &str, text: &str) -> Option<String> {
        let question = format!("age-plugin-{plugin}: {} ", escape_name(text.trim_end()));
        crate::progress::suspended(|| ask_terminal(&question))
            .map(|answer| answer.trim_end_matches(['\r', '\n']).to_string())
    }

    fn request_secret(&self, plugin: &str, text: &str) -> Option<Zeroizing<String>> {
        let question = format!("age-plugin-{plugin}: {} ", escape_name(text.trim_end()));
        crate::progress::suspended(|| rpassword::prompt_password(question))
            .ok()
            .map(Zeroizing::new)
    }
}

/// Asks on the controlling terminal and reads one line, echoed; `None`
/// without a terminal.
fn ask_terminal(question: &str) -> Option<String> {
    let terminal = terminal()?;
    let mut writer = terminal.try_clone().ok()?;
    writer.write_all(question.as_bytes()).ok()?;
    writer.flush().ok()?;
    let mut line = String::new();
    BufReader::new(terminal).read_line(&mut line).ok()?;
    (!line.is_empty()).then_some(line)
}

#[cfg(unix)]
fn terminal() -> Option<File> {
    File::options().read(true).write(true).open("/dev/tty").ok()
}

#[cfg(windows)]
fn terminal() -> Option<File> {
    File::options().read(true).write(true).open("CONIN$").ok()
}

#[cfg(not(any(unix, windows)))]
fn terminal() -> Option<File> {
    None
}
