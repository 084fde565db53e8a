//! The `recipient-v1` state machine (age-plugin.md, "Wrapping with
//! recipient-v1"): one file key wrapped to all of one plugin's recipients.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};

use zeroize::Zeroizing;

use super::PluginStanza;
use super::session::Session;
use super::ui::PluginUi;
use super::wire::SessionError;
use crate::error::PluginFailure;

/// Most arguments of a stanza, its type included (the format's bound).
const MAX_STANZA_ARGS: usize = 255;
/// Longest stanza argument (the format's bound).
const MAX_STANZA_ARG: usize = 65_535;

/// What a plugin wrapped: its stanzas, and its label set if it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wrapped {
    pub stanzas: Vec<PluginStanza>,
    pub labels: Option<BTreeSet<String>>,
}

/// Runs one session: phase 1 sends the recipients and the file key, phase 2
/// answers the plugin until `done`.
pub(crate) fn wrap<R: BufRead, W: Write>(
    plugin: &str,
    recipients: &[&str],
    file_key: &Zeroizing<[u8; 16]>,
    ui: &dyn PluginUi,
    reader: R,
    writer: W,
) -> Result<Wrapped, SessionError> {
    let mut session = Session::new(plugin, ui, reader, writer);
    for recipient in recipients {
        session.send(&["add-recipient", recipient], b"")?;
    }
    session.send(&["extension-labels"], b"")?;
    session.send(&["wrap-file-key"], file_key.as_slice())?;
    session.send(&["done"], b"")?;

    let mut stanzas = Vec::new();
    let mut labels = None;
    let mut errors = Vec::new();
    loop {
        let request = session.receive()?;
        match request.command() {
            "done" => break,
            "recipient-stanza" => {
                let stanza = recipient_stanza(&request.args, &request.body)?;
                stanzas.push(stanza);
                session.ok()?;
            }
            "labels" => {
                if labels.is_some() {
                    return Err(SessionError::protocol("sent `labels` twice"));
                }
                let set: BTreeSet<String> = request.args[1..].iter().cloned().collect();
                if set.len() != request.args.len() - 1 {
                    return Err(SessionError::protocol("sent a label twice"));
                }
                labels = Some(set);
                session.ok()?;
            }
            "error" => {
                errors.push(error_message(&request.args, &request.body));
                session.ok()?;
            }
            _ => session.answer_common(&request)?,
        }
    }
    match (stanzas.is_empty(), errors.is_empty()) {
        (false, true) => Ok(Wrapped { stanzas, labels }),
        (true, false) => Err(SessionError::Failure(PluginFailure::Reported(errors))),
        (false, false) => Err(SessionError::protocol(
            "sent both recipient stanzas and errors",
        )),
        (true, true) => Err(SessionError::protocol(
            "sent neither a recipient stanza nor an error",
        )),
    }
}

/// `recipient-stanza 0 TYPE ARG…` and its body, within the format's bounds.
fn recipient_stanza(args: &[String], body: &[u8]) -> Result<PluginStanza, SessionError> {
    let [_, index, stanza @ ..] = args else {
        unreachable!("a command has at least one argument")
    };
    if stanza.is_empty() {
        return Err(SessionError::protocol(
            "a `recipient-stanza` without a stanza type",
        ));
    }
    if index != "0" {
        return Err(SessionError::protocol(format!(
            "a `recipient-stanza` for file {}, but only file 0 was sent",
            crate::escape_name(index)
        )));
    }
    if stanza.len() > MAX_STANZA_ARGS {
        return Err(SessionError::protocol(format!(
            "a stanza of {} arguments, more than {MAX_STANZA_ARGS}",
            stanza.len()
        )));
    }
    if stanza.iter().any(|arg| arg.len() > MAX_STANZA_ARG) {
        return Err(SessionError::protocol(format!(
            "a stanza argument longer than {MAX_STANZA_ARG} bytes"
        )));
    }
    Ok(PluginStanza {
        args: stanza.to_vec(),
        body: body.to_vec(),
    })
}

/// An `error recipient N` / `error identity N` / `error internal` message,
/// with its kind in front.
pub(crate) fn error_message(args: &[String], body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match &args[1..] {
        [kind, index] if kind == "recipient" || kind == "identity" => {
            format!("{kind} {index}: {text}")
        }
        [kind, file, stanza] if kind == "stanza" => format!("file {file} stanza {stanza}: {text}"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::ui::NoUi;
    use crate::plugin::wire::write_stanza;

    const KEY: [u8; 16] = [7; 16];

    /// The plugin's side of a transcript, in wire form.
    fn plugin_says(messages: &[(&[&str], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (args, body) in messages {
            write_stanza(&mut out, args, body).expect("vec");
        }
        out
    }

    fn run(plugin_output: &[u8], ui: &dyn PluginUi) -> (Result<Wrapped, SessionError>, String) {
        let mut client = Vec::new();
        let result = wrap(
            "test",
            &["age1test1aaa", "age1test1bbb"],
            &Zeroizing::new(KEY),
            ui,
            plugin_output,
            &mut client,
        );
        (result, String::from_utf8(client).expect("ascii"))
    }

    const PHASE_1: &str = "-> add-recipient age1test1aaa\n\n-> add-recipient age1test1bbb\n\n\
        -> extension-labels\n\n-> wrap-file-key\nBwcHBwcHBwcHBwcHBwcHBw\n-> done\n\n";

    #[test]
    fn stanzas_labels_and_unknown_commands() {
        let output = plugin_says(&[
            (&["grease-x", "y"], b"zz"),
            (&["labels", "postquantum", "b"], b""),
            (&["recipient-stanza", "0", "kt", "arg"], b"body"),
            (&["recipient-stanza", "0", "kt"], b""),
            (&["done"], b""),
        ]);
        let (result, client) = run(&output, &NoUi);
        let wrapped = result.expect("wrapped");
        assert_eq!(
            wrapped.stanzas,
            vec![
                PluginStanza {
                    args: vec!["kt".into(), "arg".into()],
                    body: b"body".to_vec()
                },
                PluginStanza {
                    args: vec!["kt".into()],
                    body: vec![]
                },
            ]
        );
        assert_eq!(
            wrapped.labels,
            Some(BTreeSet::from(["b".to_string(), "postquantum".to_string()]))
        );
        assert_eq!(
            client,
            format!("{PHASE_1}-> unsupported\n\n-> ok\n\n-> ok\n\n-> ok\n\n")
        );
    }

    #[test]
    fn no_labels_is_none_and_errors_are_reported() {
        let output = plugin_says(&[(&["recipient-stanza", "0", "kt"], b""), (&["done"], b"")]);
        assert_eq!(run(&output, &NoUi).0.expect("wrapped").labels, None);
        let output = plugin_says(&[
            (&["error", "recipient", "1"], b"no such token\n"),
            (&["error", "internal"], b"gave up"),
            (&["done"], b""),
        ]);
        let (result, client) = run(&output, &NoUi);
        assert!(matches!(
            result,
            Err(SessionError::Failure(PluginFailure::Reported(messages)))
                if messages == ["recipient 1: no such token", "gave up"]
        ));
        assert_eq!(client, format!("{PHASE_1}-> ok\n\n-> ok\n\n"));
    }

    fn protocol_error(output: &[u8]) -> String {
        match run(output, &NoUi).0 {
            Err(SessionError::Failure(PluginFailure::Protocol(why))) => why,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn protocol_violations() {
        let stanza: (&[&str], &[u8]) = (&["recipient-stanza", "0", "kt"], b"");
        let error: (&[&str], &[u8]) = (&["error", "internal"], b"x");
        let done: (&[&str], &[u8]) = (&["done"], b"");
        let labels: (&[&str], &[u8]) = (&["labels", "a"], b"");
        for (messages, why) in [
            (
                vec![stanza, error, done],
                "both recipient stanzas and errors",
            ),
            (vec![done], "neither"),
            (vec![labels, labels, stanza, done], "`labels` twice"),
            (
                vec![(&["labels", "a", "a"][..], &b""[..]), done],
                "a label twice",
            ),
            (
                vec![(&["recipient-stanza", "1", "kt"][..], &b""[..]), done],
                "for file 1",
            ),
            (
                vec![(&["recipient-stanza", "0"][..], &b""[..]), done],
                "without a stanza type",
            ),
        ] {
            assert!(
                protocol_error(&plugin_says(&messages)).contains(why),
                "{why}"
            );
        }
        let many_args: Vec<&str> = std::iter::repeat_n("a", 256).collect();
        let mut args = vec!["recipient-stanza", "0"];
        args.extend(many_args);
        assert!(protocol_error(&plugin_says(&[(&args, b"")])).contains("256 arguments"));
    }

    #[test]
    fn a_plugin_that_stops_mid_phase_is_closed() {
        let mut output = plugin_says(&[(&["recipient-stanza", "0", "kt"], b"")]);
        assert!(matches!(run(&output, &NoUi).0, Err(SessionError::Closed)));
        output.extend_from_slice(b"-> done");
        assert!(matches!(run(&output, &NoUi).0, Err(SessionError::Closed)));
    }
}
