//! The `identity-v1` state machine (age-plugin.md, "Unwrapping with
//! identity-v1"): one header's stanzas offered to all of one plugin's
//! identities, for at most one file key back.

use std::io::{BufRead, Write};

use zeroize::Zeroizing;

use super::PluginStanza;
use super::recipient_v1::error_message;
use super::session::Session;
use super::ui::PluginUi;
use super::wire::SessionError;
use crate::error::PluginFailure;

/// What a session gave: the file key, or the errors the plugin reported
/// (empty: none of its identities matched, which is not an error).
pub(crate) enum Unwrapped {
    FileKey(Zeroizing<[u8; 16]>),
    NoKey { errors: Vec<String> },
}

/// Runs one session: phase 1 sends the identities and every stanza of the
/// header as file 0, phase 2 answers the plugin until `done`.
pub(crate) fn unwrap<R: BufRead, W: Write>(
    plugin: &str,
    identities: &[&str],
    stanzas: &[PluginStanza],
    ui: &dyn PluginUi,
    reader: R,
    writer: W,
) -> Result<Unwrapped, SessionError> {
    let mut session = Session::new(plugin, ui, reader, writer);
    for identity in identities {
        session.send(&["add-identity", identity], b"")?;
    }
    for stanza in stanzas {
        let mut args = vec!["recipient-stanza", "0"];
        args.extend(stanza.args.iter().map(String::as_str));
        session.send(&args, &stanza.body)?;
    }
    session.send(&["done"], b"")?;

    let mut file_key = None;
    let mut errors = Vec::new();
    loop {
        let request = session.receive()?;
        match request.command() {
            "done" => break,
            "file-key" => {
                if request.body.len() != 16 {
                    return Err(SessionError::protocol(format!(
                        "returned a {}-byte file key, not 16",
                        request.body.len()
                    )));
                }
                if request.args.len() != 2 || request.args[1] != "0" || file_key.is_some() {
                    // Not a key for the one file sent, or a second one.
                    session.fail()?;
                    continue;
                }
                let mut key = Zeroizing::new([0u8; 16]);
                key.copy_from_slice(&request.body);
                file_key = Some(key);
                session.ok()?;
            }
            "error" => {
                errors.push(error_message(&request.args, &request.body));
                session.ok()?;
            }
            _ => session.answer_common(&request)?,
        }
    }
    Ok(match file_key {
        Some(key) => Unwrapped::FileKey(key),
        None => Unwrapped::NoKey { errors },
    })
}

impl Unwrapped {
    /// The file key, `None` if nothing matched, or the reported errors.
    pub fn into_result(self) -> Result<Option<Zeroizing<[u8; 16]>>, PluginFailure> {
        match self {
            Unwrapped::FileKey(key) => Ok(Some(key)),
            Unwrapped::NoKey { errors } if errors.is_empty() => Ok(None),
            Unwrapped::NoKey { errors } => Err(PluginFailure::Reported(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::plugin::ui::NoUi;
    use crate::plugin::wire::write_stanza;

    fn plugin_says(messages: &[(&[&str], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (args, body) in messages {
            write_stanza(&mut out, args, body).expect("vec");
        }
        out
    }

    fn run(output: &[u8], ui: &dyn PluginUi) -> (Result<Unwrapped, SessionError>, String) {
        let stanzas = [
            PluginStanza {
                args: vec!["X25519".into(), "c2hhcmU".into()],
                body: vec![1; 32],
            },
            PluginStanza {
                args: vec!["kt".into()],
                body: vec![],
            },
        ];
        let mut client = Vec::new();
        let result = unwrap(
            "test",
            &["AGE-PLUGIN-TEST-1AAA"],
            &stanzas,
            ui,
            output,
            &mut client,
        );
        (result, String::from_utf8(client).expect("ascii"))
    }

    const PHASE_1: &str = "-> add-identity AGE-PLUGIN-TEST-1AAA\n\n\
        -> recipient-stanza 0 X25519 c2hhcmU\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\n\
        -> recipient-stanza 0 kt\n\n-> done\n\n";

    /// A user who types 1234 and says yes, and remembers what was asked.
    #[derive(Default)]
    struct Scripted(Mutex<Vec<String>>);

    impl PluginUi for Scripted {
        fn message(&self, plugin: &str, text: &str) -> bool {
            self.0
                .lock()
                .expect("lock")
                .push(format!("{plugin} msg {text}"));
            true
        }
        fn confirm(&self, plugin: &str, text: &str, yes: &str, no: Option<&str>) -> Option<bool> {
            self.0
                .lock()
                .expect("lock")
                .push(format!("{plugin} confirm {text} [{yes}|{no:?}]"));
            Some(true)
        }
        fn request_public(&self, _plugin: &str, text: &str) -> Option<String> {
            self.0.lock().expect("lock").push(format!("public {text}"));
            Some("serial".into())
        }
        fn request_secret(&self, _plugin: &str, text: &str) -> Option<Zeroizing<String>> {
            self.0.lock().expect("lock").push(format!("secret {text}"));
            Some(Zeroizing::new("1234".into()))
        }
    }

    #[test]
    fn pin_confirm_and_file_key() {
        let output = plugin_says(&[
            (&["request-secret"], b"PIN?"),
            (&["msg"], b"touch it"),
            (&["confirm", "WWVz", "Tm8"], b"use slot 1?"),
            (&["request-public"], b"serial?"),
            (&["file-key", "0"], &[9; 16]),
            (&["done"], b""),
        ]);
        let ui = Scripted::default();
        let (result, client) = run(&output, &ui);
        let Ok(Unwrapped::FileKey(key)) = result else {
            panic!("no key")
        };
        assert_eq!(*key, [9; 16]);
        assert_eq!(
            client,
            format!("{PHASE_1}-> ok\nMTIzNA\n-> ok\n\n-> ok yes\n\n-> ok\nc2VyaWFs\n-> ok\n\n")
        );
        assert_eq!(
            *ui.0.lock().expect("lock"),
            [
                "secret PIN?",
                "test msg touch it",
                "test confirm use slot 1? [Yes|Some(\"No\")]",
                "public serial?"
            ]
        );
    }

    #[test]
    fn without_a_ui_every_request_fails_and_the_plugin_decides() {
        let output = plugin_says(&[
            (&["request-secret"], b"PIN?"),
            (&["msg"], b"touch it"),
            (&["confirm", "WWVz"], b"go?"),
            (&["request-public"], b"x"),
            (&["error", "identity", "0"], b"no PIN, no key"),
            (&["done"], b""),
        ]);
        let (result, client) = run(&output, &NoUi);
        assert_eq!(
            client,
            format!("{PHASE_1}{}-> ok\n\n", "-> fail\n\n".repeat(4))
        );
        assert!(matches!(
            result.map(Unwrapped::into_result),
            Ok(Err(PluginFailure::Reported(errors))) if errors == ["identity 0: no PIN, no key"]
        ));
    }

    #[test]
    fn nothing_matched_is_no_key_without_error() {
        let output = plugin_says(&[(&["done"], b"")]);
        assert!(matches!(
            run(&output, &NoUi).0.map(Unwrapped::into_result),
            Ok(Ok(None))
        ));
    }

    #[test]
    fn a_17_byte_key_is_a_protocol_error() {
        let output = plugin_says(&[(&["file-key", "0"], &[9; 17]), (&["done"], b"")]);
        assert!(matches!(
            run(&output, &NoUi).0,
            Err(SessionError::Failure(PluginFailure::Protocol(why))) if why == "returned a 17-byte file key, not 16"
        ));
    }

    #[test]
    fn a_second_key_or_another_file_is_refused() {
        let output = plugin_says(&[
            (&["file-key", "1"], &[8; 16]),
            (&["file-key", "0"], &[9; 16]),
            (&["file-key", "0"], &[7; 16]),
            (&["done"], b""),
        ]);
        let (result, client) = run(&output, &NoUi);
        assert!(matches!(result, Ok(Unwrapped::FileKey(key)) if *key == [9; 16]));
        assert_eq!(client, format!("{PHASE_1}-> fail\n\n-> ok\n\n-> fail\n\n"));
    }

    #[test]
    fn malformed_replies() {
        let bad_confirm = plugin_says(&[(&["confirm", "!!"], b"x")]);
        let (result, client) = run(&bad_confirm, &NoUi);
        assert!(matches!(
            result,
            Err(SessionError::Failure(PluginFailure::Protocol(why))) if why.contains("confirm")
        ));
        assert_eq!(client, format!("{PHASE_1}-> fail\n\n"));
        let truncated = b"-> file-key 0\nCQkJCQkJCQkJCQkJCQkJCQ".to_vec();
        assert!(matches!(
            run(&truncated, &NoUi).0,
            Err(SessionError::Closed)
        ));
        let not_canonical = b"-> file-key 0\nCQkJCQkJCQkJCQkJCQkJCR\n".to_vec();
        assert!(matches!(
            run(&not_canonical, &NoUi).0,
            Err(SessionError::Failure(PluginFailure::Protocol(why))) if why.contains("canonical")
        ));
    }
}
