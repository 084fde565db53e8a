//! The age plugin protocol client (C2SP age-plugin.md): recipients
//! `age1NAME1…` and identities `AGE-PLUGIN-NAME-1…` are wrapped and
//! unwrapped by the program `age-plugin-NAME`, found in PATH, such as
//! `age-plugin-yubikey`.
//!
//! # Security
//!
//! A recipient plugin sees the file key it wraps; an identity plugin runs
//! with the user's rights. Only absolute PATH directories are searched,
//! never the current directory (where a parcel's own files could be), and a
//! plugin that hangs, floods or breaks the protocol is killed with a typed
//! [`Error::Plugin`]. This module exists only with the `plugins` feature.

mod identity_v1;
mod process;
mod recipient_v1;
mod session;
mod ui;
mod wire;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use zeroize::Zeroizing;

pub use ui::{NoUi, PluginUi};

use crate::error::{Error, KeyError, PluginFailure};
use crate::keys::bech32_long;
use process::{PluginProcess, StateMachine, find_plugin};

/// A stanza as the plugin protocol carries it: the type and its arguments
/// (`args[0]` is the type), and the body bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginStanza {
    /// The stanza's type, then its arguments, each 1*VCHAR.
    pub args: Vec<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A recipient handled by a plugin: `age1NAME1…`, opaque to kuvert.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PluginRecipient {
    name: String,
    encoded: String,
}

impl PluginRecipient {
    /// The plugin's name: `yubikey` for `age1yubikey1…`.
    pub fn plugin_name(&self) -> &str {
        &self.name
    }
}

impl FromStr for PluginRecipient {
    type Err = Error;

    /// Parses `age1NAME1…` (bech32, any length up to 8,192 characters).
    fn from_str(text: &str) -> Result<Self, Error> {
        let (hrp, _data) = decode("recipient", text)?;
        let name = hrp
            .strip_prefix("age1")
            .ok_or(plugin_key_error("recipient", "its prefix is not age1NAME"))?;
        check_name("recipient", name)?;
        Ok(PluginRecipient {
            name: name.to_string(),
            encoded: text.trim().to_lowercase(),
        })
    }
}

impl fmt::Display for PluginRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encoded)
    }
}

/// An identity handled by a plugin: `AGE-PLUGIN-NAME-1…`. It may hold key
/// material, so it is wiped on drop and `Debug` shows only the name.
#[derive(Clone)]
pub struct PluginIdentity {
    name: String,
    encoded: Zeroizing<String>,
}

impl PluginIdentity {
    /// The plugin's name: `yubikey` for `AGE-PLUGIN-YUBIKEY-1…`.
    pub fn plugin_name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for PluginIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginIdentity")
            .field("plugin", &self.name)
            .finish_non_exhaustive()
    }
}

impl FromStr for PluginIdentity {
    type Err = Error;

    /// Parses `AGE-PLUGIN-NAME-1…` (bech32, any length up to 8,192
    /// characters).
    fn from_str(text: &str) -> Result<Self, Error> {
        let (hrp, _data) = decode("identity", text)?;
        let name = hrp
            .strip_prefix("age-plugin-")
            .and_then(|rest| rest.strip_suffix('-'))
            .ok_or(plugin_key_error(
                "identity",
                "its prefix is not AGE-PLUGIN-NAME-",
            ))?;
        check_name("identity", name)?;
        Ok(PluginIdentity {
            name: name.to_string(),
            encoded: Zeroizing::new(text.trim().to_uppercase()),
        })
    }
}

fn plugin_key_error(what: &'static str, reason: &'static str) -> Error {
    Error::InvalidKey {
        reason: KeyError::Plugin { what, reason },
    }
}

fn decode(what: &'static str, text: &str) -> Result<(String, Zeroizing<Vec<u8>>), Error> {
    bech32_long::decode(text).map_err(|err| {
        plugin_key_error(
            what,
            match err {
                bech32_long::Bech32Error::TooLong => "longer than 8,192 characters",
                bech32_long::Bech32Error::NotBech32 => "not bech32, or its checksum fails",
                bech32_long::Bech32Error::Padding => "nonzero padding bits",
            },
        )
    })
}

/// age-plugin.md: `NAME = 1*(ALPHA / DIGIT / "-" / "_" / "." / "+")`, so a
/// name can never hold a path separator.
fn check_name(what: &'static str, name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'+'));
    if valid {
        Ok(())
    } else {
        Err(plugin_key_error(
            what,
            "the plugin name is empty or holds a character outside A-Z, 0-9, -, _, ., +",
        ))
    }
}

/// Where plugins are looked up and how long one may stay silent.
#[derive(Clone, Debug)]
pub struct PluginOptions {
    search_path: Option<OsString>,
    timeout: Duration,
}

impl Default for PluginOptions {
    /// The process's PATH; 60 s of silence.
    fn default() -> Self {
        PluginOptions {
            search_path: None,
            timeout: Duration::from_secs(60),
        }
    }
}

impl PluginOptions {
    /// Looks plugins up in `path` (PATH syntax) instead of the process's
    /// PATH. Relative entries are skipped here too.
    #[must_use]
    pub fn search_path(mut self, path: impl Into<OsString>) -> Self {
        self.search_path = Some(path.into());
        self
    }

    /// Stops a plugin that says nothing for `timeout` (time the plugin
    /// waits on the user through [`PluginUi`] is not counted).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What one plugin wrapped the file key into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginWrap {
    /// The plugin's name.
    pub plugin: String,
    /// Its stanzas, in the order it sent them.
    pub stanzas: Vec<PluginStanza>,
    /// Its label set (`postquantum`, …); `None` if it sent none, which
    /// counts as the empty set.
    pub labels: Option<BTreeSet<String>>,
}

/// Wraps `file_key` to every recipient: one `recipient-v1` session per
/// plugin, with all of its recipients, in order of first appearance.
///
/// # Errors
///
/// [`Error::Plugin`] for the first plugin that is not found, fails,
/// reports an error or breaks the protocol; nothing is returned then.
pub fn wrap_file_key(
    recipients: &[PluginRecipient],
    file_key: &Zeroizing<[u8; 16]>,
    ui: &dyn PluginUi,
    options: &PluginOptions,
) -> Result<Vec<PluginWrap>, Error> {
    let mut wraps = Vec::new();
    for (name, group) in group_by_plugin(recipients, |recipient| &recipient.name) {
        let encoded: Vec<&str> = group
            .iter()
            .map(|recipient| recipient.encoded.as_str())
            .collect();
        let wrapped = run(
            name,
            StateMachine::RecipientV1,
            options,
            |reader, writer| recipient_v1::wrap(name, &encoded, file_key, ui, reader, writer),
        )?;
        wraps.push(PluginWrap {
            plugin: name.to_string(),
            stanzas: wrapped.stanzas,
            labels: wrapped.labels,
        });
    }
    Ok(wraps)
}

/// Offers a header's stanzas to the identities: one `identity-v1` session
/// per plugin, in order of first appearance, until one returns a file key.
/// The key is not verified here: the caller checks it against the header
/// MAC, as for a native identity.
///
/// # Errors
///
/// If no plugin returned a key but one failed, [`Error::Plugin`] for the
/// first that did (a missing token or a wrong PIN must be shown). `Ok(None)`
/// means every plugin ran and none matched.
pub fn unwrap_file_key(
    identities: &[PluginIdentity],
    stanzas: &[PluginStanza],
    ui: &dyn PluginUi,
    options: &PluginOptions,
) -> Result<Option<Zeroizing<[u8; 16]>>, Error> {
    let mut first_error = None;
    for (name, group) in group_by_plugin(identities, |identity| &identity.name) {
        let encoded: Vec<&str> = group
            .iter()
            .map(|identity| identity.encoded.as_str())
            .collect();
        let outcome = run(name, StateMachine::IdentityV1, options, |reader, writer| {
            identity_v1::unwrap(name, &encoded, stanzas, ui, reader, writer)
        })
        .and_then(|unwrapped| {
            unwrapped.into_result().map_err(|failure| Error::Plugin {
                plugin: name.to_string(),
                failure,
            })
        });
        match outcome {
            Ok(Some(key)) => return Ok(Some(key)),
            Ok(None) => {}
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    first_error.map_or(Ok(None), Err)
}

/// Groups items by plugin name, keeping the order of each name's first
/// appearance and the items' order within it.
fn group_by_plugin<T>(items: &[T], name: impl Fn(&T) -> &String) -> Vec<(&str, Vec<&T>)> {
    let mut groups: Vec<(&str, Vec<&T>)> = Vec::new();
    for item in items {
        let item_name = name(item).as_str();
        match groups.iter_mut().find(|(group, _)| *group == item_name) {
            Some((_, members)) => members.push(item),
            None => groups.push((item_name, vec![item])),
        }
    }
    groups
}

/// Finds and starts the plugin, runs one session over its pipes, and stops
/// it: after the session, or at once on failure.
fn run<T>(
    name: &str,
    machine: StateMachine,
    options: &PluginOptions,
    session: impl FnOnce(
        &mut process::ChannelReader,
        &mut process::ChannelWriter,
    ) -> Result<T, wire::SessionError>,
) -> Result<T, Error> {
    let fail = |failure| Error::Plugin {
        plugin: name.to_string(),
        failure,
    };
    let binary =
        find_plugin(name, options.search_path.as_deref()).ok_or(fail(PluginFailure::NotFound))?;
    let mut process = PluginProcess::spawn(&binary, machine, options.timeout).map_err(|err| {
        fail(PluginFailure::Spawn {
            reason: err.to_string(),
        })
    })?;
    let (reader, writer) = process.pipes();
    match session(reader, writer) {
        Ok(value) => {
            process.finish();
            Ok(value)
        }
        Err(err) => Err(fail(process.failure(err))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_keys_parse_and_name_their_plugin() {
        let recipient = bech32_long::encode_lower("age1yubikey", &[1, 2, 3]);
        let parsed: PluginRecipient = recipient.parse().expect("recipient");
        assert_eq!(parsed.plugin_name(), "yubikey");
        assert_eq!(parsed.to_string(), recipient);
        let identity = bech32_long::encode_upper("AGE-PLUGIN-KUVERT-TEST-", &[4; 40]);
        let parsed: PluginIdentity = identity.parse().expect("identity");
        assert_eq!(parsed.plugin_name(), "kuvert-test");
        assert_eq!(parsed.encoded.as_str(), identity.as_str());
        assert!(!format!("{parsed:?}").contains(&identity[20..]));
    }

    #[test]
    fn not_plugin_keys() {
        let cases = [
            (bech32_long::encode_lower("age", &[1; 32]), "prefix"),
            (bech32_long::encode_lower("age1", &[1; 32]), "plugin name"),
            (
                bech32_long::encode_lower("age1a/b", &[1; 32]),
                "plugin name",
            ),
            (
                bech32_long::encode_lower("age1a\\b", &[1; 32]),
                "plugin name",
            ),
            ("age1nope".to_string(), "bech32"),
        ];
        for (text, why) in cases {
            let err = text.parse::<PluginRecipient>().expect_err(&text);
            assert!(
                matches!(&err, Error::InvalidKey { reason: KeyError::Plugin { what: "recipient", reason } } if reason.contains(why)),
                "{text}: {err}"
            );
        }
        for text in [
            bech32_long::encode_upper("AGE-PLUGIN-X", &[1; 32]).to_string(),
            bech32_long::encode_upper("AGE-PLUGIN--", &[1; 32]).to_string(),
            bech32_long::encode_upper("AGE-SECRET-KEY-", &[1; 32]).to_string(),
        ] {
            assert!(
                matches!(
                    text.parse::<PluginIdentity>(),
                    Err(Error::InvalidKey {
                        reason: KeyError::Plugin {
                            what: "identity",
                            ..
                        }
                    })
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn groups_keep_first_appearance_order() {
        let keys: Vec<PluginRecipient> = ["b", "a", "b", "c", "a"]
            .iter()
            .enumerate()
            .map(|(index, name)| {
                bech32_long::encode_lower(&format!("age1{name}"), &[index as u8])
                    .parse()
                    .expect("recipient")
            })
            .collect();
        let groups = group_by_plugin(&keys, |key| &key.name);
        let shape: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|(name, members)| (*name, members.iter().map(|m| m.encoded.as_str()).collect()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (
                    "b",
                    vec![keys[0].encoded.as_str(), keys[2].encoded.as_str()]
                ),
                (
                    "a",
                    vec![keys[1].encoded.as_str(), keys[4].encoded.as_str()]
                ),
                ("c", vec![keys[3].encoded.as_str()]),
            ]
        );
    }

    #[test]
    fn a_missing_plugin_is_not_found() {
        let recipient: PluginRecipient = bech32_long::encode_lower("age1kuvert-absent", &[1])
            .parse()
            .expect("recipient");
        let options = PluginOptions::default().search_path(std::env::temp_dir());
        let err = wrap_file_key(&[recipient], &Zeroizing::new([0; 16]), &NoUi, &options)
            .expect_err("absent");
        assert!(matches!(
            &err,
            Error::Plugin { plugin, failure: PluginFailure::NotFound } if plugin == "kuvert-absent"
        ));
        assert_eq!(
            err.to_string(),
            "age-plugin-kuvert-absent: not found in PATH (relative PATH entries and the current directory are never searched)"
        );
    }
}
