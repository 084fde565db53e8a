//! One conversation with a plugin, over any pipe pair: sending, receiving,
//! and the phase-2 requests both state machines answer alike (`msg`,
//! `confirm`, `request-public`, `request-secret`, unknown commands).

use std::io::{BufRead, Write};

use base64ct::{Base64Unpadded, Encoding};

use super::ui::PluginUi;
use super::wire::{SessionError, StanzaReader, WireStanza, write_stanza};

/// The client's side of a session.
pub(crate) struct Session<'a, R, W> {
    reader: StanzaReader<R>,
    writer: W,
    plugin: &'a str,
    ui: &'a dyn PluginUi,
}

impl<'a, R: BufRead, W: Write> Session<'a, R, W> {
    pub fn new(plugin: &'a str, ui: &'a dyn PluginUi, reader: R, writer: W) -> Self {
        Session {
            reader: StanzaReader::new(reader),
            writer,
            plugin,
            ui,
        }
    }

    /// Sends one message.
    pub fn send(&mut self, args: &[&str], body: &[u8]) -> Result<(), SessionError> {
        Ok(write_stanza(&mut self.writer, args, body)?)
    }

    /// Reads the plugin's next message.
    pub fn receive(&mut self) -> Result<WireStanza, SessionError> {
        self.reader.read()
    }

    /// Answers `ok` with no body.
    pub fn ok(&mut self) -> Result<(), SessionError> {
        self.send(&["ok"], b"")
    }

    /// Answers `fail`.
    pub fn fail(&mut self) -> Result<(), SessionError> {
        self.send(&["fail"], b"")
    }

    /// Answers a request both state machines know, or `unsupported` for a
    /// command neither knows (how the protocol tolerates grease).
    pub fn answer_common(&mut self, request: &WireStanza) -> Result<(), SessionError> {
        let text = String::from_utf8_lossy(&request.body);
        match request.command() {
            "msg" => {
                if self.ui.message(self.plugin, &text) {
                    self.ok()
                } else {
                    self.fail()
                }
            }
            "confirm" => {
                let (yes, no) = match confirm_options(&request.args) {
                    Ok(options) => options,
                    Err(why) => {
                        self.fail()?;
                        return Err(SessionError::protocol(why));
                    }
                };
                match self.ui.confirm(self.plugin, &text, &yes, no.as_deref()) {
                    Some(true) => self.send(&["ok", "yes"], b""),
                    Some(false) => self.send(&["ok", "no"], b""),
                    None => self.fail(),
                }
            }
            "request-public" => match self.ui.request_public(self.plugin, &text) {
                Some(value) => self.send(&["ok"], value.as_bytes()),
                None => self.fail(),
            },
            "request-secret" => match self.ui.request_secret(self.plugin, &text) {
                Some(secret) => self.send(&["ok"], secret.as_bytes()),
                None => self.fail(),
            },
            _ => self.send(&["unsupported"], b""),
        }
    }
}

/// The yes and no labels of `confirm <b64 yes> [<b64 no>]`.
fn confirm_options(args: &[String]) -> Result<(String, Option<String>), &'static str> {
    let decode = |arg: &String| {
        Base64Unpadded::decode_vec(arg)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or("a `confirm` option that is not canonical base64 of UTF-8")
    };
    match args {
        [_, yes] => Ok((decode(yes)?, None)),
        [_, yes, no] => Ok((decode(yes)?, Some(decode(no)?))),
        _ => Err("a `confirm` without one or two options"),
    }
}
