//! The key schedule (SPEC.md §4–§5): a fresh file key per set, wrapped once
//! per recipient, committed by the header MAC, and the payload key derived
//! from it only after that MAC verifies.

pub(crate) mod bech32_long;
mod hybrid;
mod kem;
mod labels;
mod passphrase;
mod plugins;
mod x25519;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Tag};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

pub use hybrid::{HybridIdentity, HybridRecipient};
pub use labels::PostQuantum;
pub use passphrase::{Argon2Params, Passphrase};
pub(crate) use plugins::PluginSettings;
pub use x25519::{X25519Identity, X25519Recipient};

use crate::error::{Error, Location};
use crate::format::{Header, SET_ID_LEN, Stanza};
use crate::rand::Randomness;

/// HKDF info label of the header MAC key.
const HEADER_LABEL: &[u8] = b"kuvert/v2 header";
/// HKDF info label of the payload key.
const PAYLOAD_LABEL: &[u8] = b"kuvert/v2 payload";
/// Length of the file key: 16 bytes, as in age, whose stanzas (and
/// plugins) wrap exactly that (SPEC.md §2, §9).
pub(crate) const FILE_KEY_LEN: usize = 16;
/// Length of wrap and payload keys, and of X25519 keys.
pub(crate) const KEY_LEN: usize = 32;
/// A file key sealed with ChaCha20-Poly1305: 16 bytes and a 16-byte tag.
pub(crate) const WRAPPED_KEY_LEN: usize = FILE_KEY_LEN + 16;

/// Someone a set can be sealed to.
///
/// A set's public-key recipients must be all post-quantum or all classical
/// (SPEC.md §4.7); [`Sealer::allow_classical`](crate::Sealer::allow_classical)
/// lifts that.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// An X25519 public key (`age1…`, or kuvert's earlier `kuvert1…`):
    /// classical.
    X25519(X25519Recipient),
    /// A hybrid post-quantum public key (`age1pq1…`): ML-KEM-768 and X25519.
    Hybrid(HybridRecipient),
    /// A recipient of an age plugin (`age1NAME1…`), wrapped by
    /// `age-plugin-NAME`.
    #[cfg(feature = "plugins")]
    Plugin(crate::plugin::PluginRecipient),
}

impl From<X25519Recipient> for Recipient {
    fn from(recipient: X25519Recipient) -> Self {
        Recipient::X25519(recipient)
    }
}

impl From<HybridRecipient> for Recipient {
    fn from(recipient: HybridRecipient) -> Self {
        Recipient::Hybrid(recipient)
    }
}

#[cfg(feature = "plugins")]
impl From<crate::plugin::PluginRecipient> for Recipient {
    fn from(recipient: crate::plugin::PluginRecipient) -> Self {
        Recipient::Plugin(recipient)
    }
}

impl FromStr for Recipient {
    type Err = Error;

    /// Parses `age1pq1…` as [`HybridRecipient`] does, with the `plugins`
    /// feature a plugin's `age1NAME1…`, and anything else (`age1…`,
    /// `kuvert1…`) as [`X25519Recipient`] does.
    fn from_str(text: &str) -> Result<Self, Error> {
        if let Some(err) = prefix(text).and_then(|found| crate::sign::refuse_as(&found, RECIPIENT))
        {
            return Err(err);
        }
        if prefix(text).as_deref() == Some(hybrid::RECIPIENT_HRP) {
            return text.parse().map(Recipient::Hybrid);
        }
        if is_plugin_key(text, "age1") {
            #[cfg(feature = "plugins")]
            return text.parse().map(Recipient::Plugin);
            #[cfg(not(feature = "plugins"))]
            return Err(needs_plugins(RECIPIENT));
        }
        text.parse().map(Recipient::X25519)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::X25519(recipient) => recipient.fmt(f),
            Recipient::Hybrid(recipient) => recipient.fmt(f),
            #[cfg(feature = "plugins")]
            Recipient::Plugin(recipient) => recipient.fmt(f),
        }
    }
}

impl Recipient {
    /// Whether this recipient resists a quantum computer: `false` for a
    /// plugin's, whose stanzas are not known before it wraps a key.
    pub fn is_post_quantum(&self) -> bool {
        self.labelled()
            .is_some_and(|labelled| labelled.labels.contains(labels::POST_QUANTUM))
    }

    /// Its stanza type and age labels, for the label rule.
    /// `None` for a plugin's recipient: its labels are known only once
    /// the plugin wrapped a key.
    fn labelled(&self) -> Option<labels::Labelled> {
        let (kind, labels): (&str, &[&str]) = match self {
            Recipient::X25519(_) => (x25519::STANZA_TYPE, &[]),
            Recipient::Hybrid(_) => (hybrid::STANZA_TYPE, &[labels::POST_QUANTUM]),
            #[cfg(feature = "plugins")]
            Recipient::Plugin(_) => return None,
        };
        Some(labels::Labelled {
            kind: kind.to_owned(),
            labels: labels
                .iter()
                .map(|label| (*label).to_owned())
                .collect::<BTreeSet<_>>(),
        })
    }
}

/// The lowercased prefix of a bech32 key string (before its last `1`),
/// which says its kind; the string itself is checked by that kind's parser.
fn prefix(text: &str) -> Option<String> {
    let (prefix, _) = text.trim().rsplit_once('1')?;
    Some(prefix.to_ascii_lowercase())
}

/// age's label rule over a set's public-key recipients (SPEC.md §4.7):
/// post-quantum and classical recipients are not mixed unless
/// `allow_classical`. Plugin recipients join the rule with the labels their
/// plugins returned (`plugin_labels`, by plugin name); before wrapping,
/// pass none and only the native recipients are checked.
///
/// # Errors
///
/// [`Error::IncompatibleRecipients`].
pub(crate) fn check_recipient_mix(
    recipients: &[Recipient],
    plugin_labels: &[(String, BTreeSet<String>)],
    allow_classical: bool,
) -> Result<(), Error> {
    let mut labelled: Vec<labels::Labelled> =
        recipients.iter().filter_map(Recipient::labelled).collect();
    labelled.extend(
        plugin_labels
            .iter()
            .map(|(plugin, labels)| labels::Labelled {
                kind: format!("age-plugin-{plugin}"),
                labels: labels.clone(),
            }),
    );
    labels::check_mix(&labelled, allow_classical)
}

/// A secret key that can open sets sealed to its [`Recipient`].
///
/// `Clone` for the reason [`X25519Identity`] is: every copy wipes its key
/// on drop.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub enum Identity {
    /// An X25519 secret key (`AGE-SECRET-KEY-1…`, or kuvert's earlier
    /// `KUVERT-SECRET-KEY-1…`).
    X25519(X25519Identity),
    /// A hybrid post-quantum secret key (`AGE-SECRET-KEY-PQ-1…`).
    Hybrid(HybridIdentity),
    /// An identity of an age plugin (`AGE-PLUGIN-NAME-1…`), unwrapped by
    /// `age-plugin-NAME` after the native identities failed.
    #[cfg(feature = "plugins")]
    Plugin(crate::plugin::PluginIdentity),
}

impl From<X25519Identity> for Identity {
    fn from(identity: X25519Identity) -> Self {
        Identity::X25519(identity)
    }
}

impl From<HybridIdentity> for Identity {
    fn from(identity: HybridIdentity) -> Self {
        Identity::Hybrid(identity)
    }
}

#[cfg(feature = "plugins")]
impl From<crate::plugin::PluginIdentity> for Identity {
    fn from(identity: crate::plugin::PluginIdentity) -> Self {
        Identity::Plugin(identity)
    }
}

impl FromStr for Identity {
    type Err = Error;

    /// Parses `AGE-SECRET-KEY-PQ-1…` as [`HybridIdentity`] does, with the
    /// `plugins` feature a plugin's `AGE-PLUGIN-NAME-1…`, and anything else
    /// (`AGE-SECRET-KEY-1…`, `KUVERT-SECRET-KEY-1…`) as [`X25519Identity`]
    /// does.
    fn from_str(text: &str) -> Result<Self, Error> {
        if let Some(err) = prefix(text).and_then(|found| crate::sign::refuse_as(&found, IDENTITY)) {
            return Err(err);
        }
        if prefix(text).as_deref() == Some(hybrid::IDENTITY_HRP) {
            return text.parse().map(Identity::Hybrid);
        }
        if is_plugin_key(text, "age-plugin-") {
            #[cfg(feature = "plugins")]
            return text.parse().map(Identity::Plugin);
            #[cfg(not(feature = "plugins"))]
            return Err(needs_plugins(IDENTITY));
        }
        text.parse().map(Identity::X25519)
    }
}

impl Identity {
    /// The recipient this identity opens; `None` for a plugin identity,
    /// whose recipient only its plugin can tell.
    pub fn to_recipient(&self) -> Option<Recipient> {
        match self {
            Identity::X25519(identity) => Some(Recipient::X25519(identity.to_public())),
            Identity::Hybrid(identity) => Some(Recipient::Hybrid(identity.to_public())),
            #[cfg(feature = "plugins")]
            Identity::Plugin(_) => None,
        }
    }

    /// Parses an identity file: one identity per line; blank lines and lines
    /// starting with `#` are ignored, and so is whitespace around a key.
    /// age identity files (`age-keygen` output) are read as they are, and
    /// [`X25519Identity::to_file_string`] writes one.
    ///
    /// # Errors
    ///
    /// [`Error::KeyFileLine`] naming the first line that is not an identity
    /// and why, or [`Error::EmptyKeyFile`] if the file holds none.
    pub fn parse_file(text: &str) -> Result<Vec<Identity>, Error> {
        parse_key_file(text, IDENTITY)
    }
}

/// Whether `text` is bech32 under a plugin prefix (`age1NAME`,
/// `age-plugin-NAME-`): decided on the prefix alone, so a plugin key with
/// a bad checksum still gets the plugin parser's error.
fn is_plugin_key(text: &str, prefix: &str) -> bool {
    let text = text.trim();
    let Some(separator) = text.rfind('1') else {
        return false;
    };
    let hrp = text[..separator].to_ascii_lowercase();
    hrp.len() > prefix.len() && hrp.starts_with(prefix)
}

/// A plugin key given to a build without the `plugins` feature.
#[cfg(not(feature = "plugins"))]
fn needs_plugins(what: &'static str) -> Error {
    Error::key(crate::error::KeyError::Plugin {
        what,
        reason: "plugin keys need kuvert's `plugins` feature",
    })
}

/// What an identity file holds, in messages.
const IDENTITY: &str = "identity";
/// What a recipients file holds, in messages.
const RECIPIENT: &str = "recipient";

/// Parses a recipients file: one recipient per line; blank lines and lines
/// starting with `#` are ignored, and so is whitespace around a key. The
/// same rules as [`Identity::parse_file`].
///
/// # Errors
///
/// [`Error::KeyFileLine`] naming the first line that is not a recipient and
/// why, or [`Error::EmptyKeyFile`] if the file holds none: sealing to
/// nobody is never what an empty file meant.
pub fn parse_recipients_file(text: &str) -> Result<Vec<Recipient>, Error> {
    parse_key_file(text, RECIPIENT)
}

/// The one parser of identity and recipients files, so both follow the
/// same rules. The text of a bad line is never put into the error: in an
/// identity file it may be a mistyped secret key.
fn parse_key_file<K: FromStr<Err = Error>>(
    text: &str,
    what: &'static str,
) -> Result<Vec<K>, Error> {
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.parse::<K>().map_err(|err| match err {
            Error::InvalidKey { reason } => Error::KeyFileLine {
                what,
                line: index + 1,
                reason,
            },
            // Parsing a key string raises nothing else.
            other => other,
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(Error::EmptyKeyFile { what });
    }
    Ok(keys)
}

/// An identity file in `age-keygen`'s shape, in one allocation that is
/// wiped on drop.
fn identity_file(created: SystemTime, public: &str, secret: &str) -> Zeroizing<String> {
    let created = created
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        });
    let created = rfc3339_utc(created);
    const CREATED: &str = "# created: ";
    const PUBLIC: &str = "# public key: ";
    let len = CREATED.len() + created.len() + PUBLIC.len() + public.len() + secret.len() + 3;
    let mut file = Zeroizing::new(String::with_capacity(len));
    for part in [CREATED, &created, "\n", PUBLIC, public, "\n", secret, "\n"] {
        file.push_str(part);
    }
    debug_assert_eq!(file.len(), len, "sized exactly: no reallocation");
    file
}

/// Seconds since the Unix epoch as RFC 3339 in UTC, `2026-11-29T05:01:20Z`:
/// how kuvert writes times (identity files, listings of entry mtimes).
pub fn rfc3339_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The 16-byte key of one set. Fresh per set, never derived from a
/// passphrase, wiped on drop, never printed.
pub(crate) struct FileKey(Zeroizing<[u8; FILE_KEY_LEN]>);

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKey(<redacted>)")
    }
}

impl FileKey {
    pub(crate) fn generate(rng: &mut Randomness) -> Result<Self, Error> {
        Ok(FileKey(rng.array()?))
    }

    fn derive(&self, set_id: &[u8; SET_ID_LEN], label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(Some(set_id), &self.0[..])
            .expand(label, &mut out[..])
            .expect("32 bytes is a valid HKDF-SHA-256 output length");
        out
    }

    fn header_mac(&self, set_id: &[u8; SET_ID_LEN]) -> Hmac<Sha256> {
        let key = self.derive(set_id, HEADER_LABEL);
        <Hmac<Sha256> as KeyInit>::new_from_slice(&key[..]).expect("HMAC takes keys of any length")
    }

    /// HMAC-SHA-256 over a header's bytes before the MAC (SPEC.md §5.1).
    pub(crate) fn compute_header_mac(
        &self,
        set_id: &[u8; SET_ID_LEN],
        mac_input: &[u8],
    ) -> [u8; 32] {
        let mut mac = self.header_mac(set_id);
        mac.update(mac_input);
        mac.finalize().into_bytes().into()
    }

    /// Verifies a header's MAC in constant time.
    pub(crate) fn verify_header(&self, header: &Header) -> Result<(), Error> {
        let mut mac = self.header_mac(&header.set.set_id);
        mac.update(header.mac_input());
        mac.verify_slice(header.mac()).map_err(|_| header.damaged())
    }

    /// The payload key (SPEC.md §5.2). Only call after [`Self::verify_header`].
    pub(crate) fn payload_key(&self, set_id: &[u8; SET_ID_LEN]) -> PayloadKey {
        PayloadKey(self.derive(set_id, PAYLOAD_LABEL))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; FILE_KEY_LEN] {
        &self.0
    }

    pub(crate) fn from_bytes(bytes: Zeroizing<[u8; FILE_KEY_LEN]>) -> Self {
        FileKey(bytes)
    }
}

/// Key for one set's chunks. Wiped on drop, never printed.
pub(crate) struct PayloadKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PayloadKey(<redacted>)")
    }
}

impl PayloadKey {
    /// The raw key, for the chunk AEAD backend (crate::stream).
    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Seals a file key under a one-time wrap key (nonce 0, no associated data).
pub(crate) fn wrap_file_key(wrap_key: &[u8; KEY_LEN], file_key: &FileKey) -> [u8; WRAPPED_KEY_LEN] {
    let mut out = [0u8; WRAPPED_KEY_LEN];
    out[..FILE_KEY_LEN].copy_from_slice(file_key.as_bytes());
    let (body, tag) = out.split_at_mut(FILE_KEY_LEN);
    let computed = ChaCha20Poly1305::new(wrap_key.into())
        .encrypt_inout_detached(&Default::default(), &[], body.into())
        .expect("32 bytes is far below the ChaCha20-Poly1305 message limit");
    tag.copy_from_slice(&computed);
    out
}

/// Opens a wrapped file key; `None` if it does not authenticate.
pub(crate) fn unwrap_file_key(wrap_key: &[u8; KEY_LEN], wrapped: &[u8]) -> Option<FileKey> {
    if wrapped.len() != WRAPPED_KEY_LEN {
        return None;
    }
    let mut key = Zeroizing::new([0u8; FILE_KEY_LEN]);
    key.copy_from_slice(&wrapped[..FILE_KEY_LEN]);
    let tag = Tag::try_from(&wrapped[FILE_KEY_LEN..]).ok()?;
    ChaCha20Poly1305::new(wrap_key.into())
        .decrypt_inout_detached(&Default::default(), &[], (&mut key[..]).into(), &tag)
        .ok()?;
    Some(FileKey::from_bytes(key))
}

/// HKDF-SHA-256 of `ikm` with `salt` and `label` into a 32-byte key.
pub(crate) fn hkdf32(ikm: &[u8], salt: &[u8], label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(label, &mut out[..])
        .expect("32 bytes is a valid HKDF-SHA-256 output length");
    out
}

/// Bounds on the work and memory an untrusted header may ask for.
///
/// The defaults admit every container this library writes with its default
/// or stronger-than-default settings up to about 15 seconds of Argon2id on a
/// laptop; raise them only for sources you trust.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest Argon2id memory cost accepted, in KiB (default 2 GiB).
    pub argon2_max_memory_kib: u32,
    /// Largest Argon2id pass count accepted (default 8).
    pub argon2_max_passes: u32,
    /// Largest Argon2id lane count accepted (default 16).
    pub argon2_max_lanes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            argon2_max_memory_kib: 2 * 1024 * 1024,
            argon2_max_passes: 8,
            argon2_max_lanes: 16,
        }
    }
}

/// Something opening found worth telling the user, though the set opened;
/// see [`OpenReader::warnings`](crate::OpenReader::warnings).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The passphrase stanza that opened the set asks for Argon2id costs
    /// below what this library writes ([`Argon2Params::MINIMUM`]: 64 MiB,
    /// 3 passes): the passphrase is cheaper to guess than it should be.
    WeakArgon2 {
        /// Memory cost of the stanza, in KiB.
        memory_kib: u32,
        /// Passes of the stanza.
        passes: u32,
    },
    /// The set opened with a passphrase, but it also carries public-key
    /// stanzas: anyone holding one of those keys could have sealed it, so
    /// the passphrase proves nothing about who did (SPEC.md §4.1).
    PassphraseBesidePublicKeys,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::WeakArgon2 { memory_kib, passes } => write!(
                f,
                "the passphrase stanza's Argon2id costs ({memory_kib} KiB, {passes} passes) are \
                 below {} KiB and {} passes: the passphrase is cheap to guess",
                Argon2Params::MINIMUM.memory_kib(),
                Argon2Params::MINIMUM.passes()
            ),
            Warning::PassphraseBesidePublicKeys => f.write_str(
                "the set also carries public-key recipients: the passphrase does not prove \
                 who sealed it",
            ),
        }
    }
}

/// A file key found by [`unlock`], and what is worth telling about it.
pub(crate) struct Unlocked {
    pub(crate) file_key: FileKey,
    pub(crate) warnings: Vec<Warning>,
}

/// Builds the recipient stanzas of a new set: the native recipients' in
/// the order given, then each plugin's (one session per plugin, in order of
/// first appearance), then the passphrase's. Plugins run first, so a
/// plugin that fails costs no Argon2id.
pub(crate) fn wrap_for_recipients(
    file_key: &FileKey,
    recipients: &[Recipient],
    passphrase: Option<(&Passphrase, &Argon2Params)>,
    plugins: &PluginSettings,
    allow_classical: bool,
    rng: &mut Randomness,
) -> Result<Vec<Stanza>, Error> {
    let plugin_wraps = plugins.wrap(recipients, file_key)?;
    #[cfg(feature = "plugins")]
    check_recipient_mix(recipients, &plugin_wraps.labels, allow_classical)?;
    #[cfg(not(feature = "plugins"))]
    let _ = allow_classical;
    let mut stanzas = Vec::with_capacity(recipients.len() + 1);
    for recipient in recipients {
        match recipient {
            Recipient::X25519(recipient) => stanzas.push(recipient.wrap(file_key, rng)?),
            Recipient::Hybrid(recipient) => stanzas.push(recipient.wrap(file_key, rng)?),
            #[cfg(feature = "plugins")]
            Recipient::Plugin(_) => {}
        }
    }
    stanzas.extend(plugin_wraps.stanzas);
    if let Some((passphrase, params)) = passphrase {
        stanzas.push(passphrase::wrap(passphrase, params, file_key, rng)?);
    }
    Ok(stanzas)
}

/// Stanzas of exactly the types and lengths [`wrap_for_recipients`] writes,
/// with zero bodies: a header's length, known without wrapping a key (and
/// so without running Argon2id).
///
/// `None` if a recipient is a plugin's: its stanza is not known until the
/// plugin wrapped a key.
pub(crate) fn placeholder_stanzas(
    recipients: &[Recipient],
    passphrase: bool,
) -> Option<Vec<Stanza>> {
    let mut stanzas: Vec<Stanza> = recipients
        .iter()
        .map(|recipient| match recipient {
            // A new native type adds its arm here, with its exact sizes.
            Recipient::X25519(_) => Some(x25519::placeholder()),
            Recipient::Hybrid(_) => Some(hybrid::placeholder()),
            #[cfg(feature = "plugins")]
            Recipient::Plugin(_) => None,
        })
        .collect::<Option<_>>()?;
    if passphrase {
        stanzas.push(passphrase::placeholder());
    }
    Some(stanzas)
}

/// Checks the stanzas whose types this version knows (SPEC.md §4) before
/// any key is tried: argument counts and encodings, exact body lengths,
/// low-order shares, Argon2id parameter ranges, and at most one passphrase
/// stanza. Unknown types are left alone: they are skipped when unlocking.
pub(crate) fn check_stanzas(stanzas: &[Stanza], input: &Location) -> Result<(), Error> {
    let mut passphrase_stanzas = 0;
    for stanza in stanzas {
        // A new native type adds its arm here and in `unwrap_with_identities`.
        match stanza.kind.as_str() {
            x25519::STANZA_TYPE => x25519::check(stanza, input)?,
            hybrid::STANZA_TYPE => hybrid::check_stanza(stanza, input)?,
            passphrase::STANZA_TYPE => {
                passphrase_stanzas += 1;
                if passphrase_stanzas > 1 {
                    return Err(Error::malformed(
                        input,
                        stanza.at,
                        "more than one argon2id stanza",
                    ));
                }
                passphrase::check(stanza, input)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The file key in `stanza` for the first of `identities` it is addressed
/// to, or `None`. The stanza passed [`check_stanzas`].
fn unwrap_with_identities(stanza: &Stanza, identities: &[Identity]) -> Option<FileKey> {
    match stanza.kind.as_str() {
        x25519::STANZA_TYPE => identities.iter().find_map(|identity| match identity {
            Identity::X25519(identity) => identity.unwrap(stanza),
            _ => None,
        }),
        hybrid::STANZA_TYPE => identities.iter().find_map(|identity| match identity {
            Identity::Hybrid(identity) => identity.unwrap(stanza),
            _ => None,
        }),
        _ => None,
    }
}

/// [`Error::NoMatchingKey`] naming the types of `stanzas`.
fn no_matching_key(stanzas: &[Stanza]) -> Error {
    Error::NoMatchingKey {
        stanza_types: stanzas.iter().map(|s| s.kind.clone()).collect(),
    }
}

/// Recovers the file key from a header with the caller's keys and verifies
/// the header MAC with it (SPEC.md §4.4): native identities and the
/// passphrase first, then plugin identities (hardware only when needed).
/// If none yields: a wrong passphrase, else the first plugin's error (a
/// missing token or a wrong PIN must be shown), else no matching key.
pub(crate) fn unlock(
    header: &Header,
    identities: &[Identity],
    passphrase: Option<&Passphrase>,
    plugins: &PluginSettings,
    limits: &Limits,
) -> Result<Unlocked, Error> {
    let native_err = match unlock_natively(header, identities, passphrase, limits) {
        Err(err @ (Error::NoMatchingKey { .. } | Error::WrongPassphrase)) => err,
        found_or_failed => return found_or_failed,
    };
    match plugins.unwrap(identities, &header.set.stanzas) {
        Ok(Some(file_key)) => {
            file_key.verify_header(header)?;
            Ok(Unlocked {
                file_key,
                warnings: Vec::new(),
            })
        }
        Ok(None) => Err(native_err),
        Err(_) if matches!(native_err, Error::WrongPassphrase) => Err(native_err),
        Err(plugin_err) => Err(plugin_err),
    }
}

/// [`unlock`] with the native identities and the passphrase only.
fn unlock_natively(
    header: &Header,
    identities: &[Identity],
    passphrase: Option<&Passphrase>,
    limits: &Limits,
) -> Result<Unlocked, Error> {
    let mut wrong_passphrase = false;
    for stanza in &header.set.stanzas {
        let mut warnings = Vec::new();
        let file_key = match stanza.kind.as_str() {
            passphrase::STANZA_TYPE => match passphrase {
                Some(passphrase) => match passphrase::unwrap(passphrase, stanza, limits, header)? {
                    Some((file_key, params)) => {
                        if params.is_below_minimum() {
                            warnings.push(Warning::WeakArgon2 {
                                memory_kib: params.memory_kib(),
                                passes: params.passes(),
                            });
                        }
                        if header.set.stanzas.len() > 1 {
                            warnings.push(Warning::PassphraseBesidePublicKeys);
                        }
                        Some(file_key)
                    }
                    None => {
                        wrong_passphrase = true;
                        None
                    }
                },
                None => None,
            },
            _ => unwrap_with_identities(stanza, identities),
        };
        if let Some(file_key) = file_key {
            file_key.verify_header(header)?;
            return Ok(Unlocked { file_key, warnings });
        }
    }
    if wrong_passphrase {
        return Err(Error::WrongPassphrase);
    }
    Err(no_matching_key(&header.set.stanzas))
}

/// The stanza half of [`unlock`] alone, for the CCTV harness
/// ([`crate::testing::unwrap_stanzas`]): the parse-time checks of every
/// stanza, then stanza × identity, with no header MAC.
#[cfg(any(test, feature = "insecure-test-hooks"))]
pub(crate) fn unwrap_stanzas(
    stanzas: &[Stanza],
    identities: &[Identity],
) -> Result<Zeroizing<[u8; FILE_KEY_LEN]>, Error> {
    check_stanzas(stanzas, &Location::input(1))?;
    stanzas
        .iter()
        .find_map(|stanza| unwrap_with_identities(stanza, identities))
        .map(|file_key| file_key.0)
        .ok_or_else(|| no_matching_key(stanzas))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{KeyError, MixError};

    #[test]
    fn hybrid_keys_dispatch_on_their_prefix() {
        let hybrid = HybridIdentity::generate().expect("os randomness");
        let classical = X25519Identity::generate().expect("os randomness");
        let parsed: Identity = hybrid.to_secret_string().parse().expect("hybrid identity");
        assert!(matches!(parsed, Identity::Hybrid(_)));
        assert_eq!(
            parsed.to_recipient(),
            Some(Recipient::Hybrid(hybrid.to_public()))
        );
        let recipient: Recipient = hybrid.to_public().to_string().parse().expect("age1pq1");
        assert_eq!(recipient, Recipient::from(hybrid.to_public()));
        assert!(recipient.is_post_quantum());
        assert_eq!(recipient.to_string().len(), 1959);
        let x25519: Recipient = classical.to_public().to_string().parse().expect("age1");
        assert!(!x25519.is_post_quantum());
        // A broken age1pq1 string gets the hybrid parser's reason.
        let mut cut = hybrid.to_public().to_string();
        cut.truncate(1000);
        assert!(matches!(
            cut.parse::<Recipient>(),
            Err(Error::InvalidKey {
                reason: KeyError::Bech32 { what: "recipient" }
            })
        ));
        // Secret for public and back, by prefix.
        assert!(matches!(
            hybrid.to_secret_string().parse::<Recipient>(),
            Err(Error::InvalidKey { reason: KeyError::WrongPrefix { found, .. } })
                if found == "age-secret-key-pq-"
        ));
        assert!(hybrid.to_public().to_string().parse::<Identity>().is_err());
    }

    #[test]
    fn key_files_mix_kinds_and_read_age_keygen_pq_files() {
        let hybrid = HybridIdentity::generate().expect("os randomness");
        let classical = X25519Identity::generate().expect("os randomness");
        let created = SystemTime::UNIX_EPOCH;
        let file = format!(
            "{}{}",
            hybrid.to_file_string(created).as_str(),
            classical.to_file_string(created).as_str()
        );
        let identities = Identity::parse_file(&file).expect("both kinds");
        assert_eq!(identities.len(), 2);
        assert_eq!(
            identities[0].to_recipient(),
            Some(hybrid.to_public().into())
        );
        assert_eq!(
            identities[1].to_recipient(),
            Some(classical.to_public().into())
        );
        let recipients = format!(
            "# hybrid\n{}\n{}\n",
            hybrid.to_public(),
            classical.to_public()
        );
        assert_eq!(
            parse_recipients_file(&recipients).expect("both kinds"),
            [
                Recipient::from(hybrid.to_public()),
                classical.to_public().into()
            ]
        );
        let oversize = format!("{}\nage1pq1{}\n", hybrid.to_public(), "q".repeat(8193));
        assert!(matches!(
            parse_recipients_file(&oversize),
            Err(Error::KeyFileLine {
                line: 2,
                reason: KeyError::TooLong { what: "recipient" },
                ..
            })
        ));
    }

    #[test]
    fn hybrid_stanzas_wrap_check_and_open() {
        let mut rng = Randomness::Os;
        let file_key = FileKey::generate(&mut rng).expect("rng");
        let hybrid = HybridIdentity::generate().expect("os randomness");
        let classical = X25519Identity::generate().expect("os randomness");
        let recipients = [
            Recipient::from(classical.to_public()),
            hybrid.to_public().into(),
        ];
        let stanzas = wrap_for_recipients(
            &file_key,
            &recipients,
            None,
            &PluginSettings::default(),
            true,
            &mut rng,
        )
        .expect("wrap");
        assert_eq!(stanzas[1].kind, "mlkem768x25519");
        // The placeholder is exactly as long: 1,547 bytes encoded.
        let placeholders = placeholder_stanzas(&recipients, false).expect("native recipients");
        assert_eq!(placeholders[1].encoded_len(), 1547);
        assert_eq!(stanzas[1].encoded_len(), 1547);
        assert_eq!(placeholders[0].encoded_len(), stanzas[0].encoded_len());
        check_stanzas(&stanzas, &Location::input(1)).expect("well formed");
        for identity in [Identity::from(hybrid.clone()), classical.clone().into()] {
            let opened = unwrap_stanzas(&stanzas, &[identity]).expect("opens");
            assert_eq!(*opened, *file_key.as_bytes());
        }
        // A hybrid stanza is never tried with an X25519 identity, nor the
        // other way round.
        let stranger = Identity::from(X25519Identity::generate().expect("os randomness"));
        assert!(matches!(
            unwrap_stanzas(&stanzas[1..], &[stranger]),
            Err(Error::NoMatchingKey { stanza_types }) if stanza_types == ["mlkem768x25519"]
        ));
        // A malformed hybrid stanza fails the header, at the stanza.
        let mut bad = stanzas[1].clone();
        bad.at = 99;
        bad.body.push(0);
        assert!(matches!(
            check_stanzas(&[stanzas[0].clone(), bad], &Location::input(1)),
            Err(Error::MalformedHeader { at, reason: "mlkem768x25519 stanza body is not 32 bytes" })
                if at == Location::input(1).byte(99)
        ));
    }

    #[test]
    fn post_quantum_and_classical_recipients_mix_only_when_allowed() {
        let hybrid = Recipient::from(HybridIdentity::generate().expect("rng").to_public());
        let classical = Recipient::from(X25519Identity::generate().expect("rng").to_public());
        check_recipient_mix(&[hybrid.clone(), hybrid.clone()], &[], false)
            .expect("all post-quantum");
        check_recipient_mix(std::slice::from_ref(&classical), &[], false).expect("all classical");
        let mixed = [classical.clone(), hybrid.clone()];
        let err = check_recipient_mix(&mixed, &[], false).expect_err("mixed");
        assert!(matches!(
            &err,
            Error::IncompatibleRecipients {
                reason: MixError::Classical { post_quantum, classical }
            } if post_quantum == "mlkem768x25519" && classical == "X25519"
        ));
        assert_eq!(
            err.to_string(),
            "recipients cannot share a set: mlkem768x25519 is post-quantum and X25519 is not: \
             one classical recipient voids the protection of all (allow classical recipients \
             to seal anyway)"
        );
        check_recipient_mix(&mixed, &[], true).expect("allowed");
    }

    #[test]
    fn wrap_round_trips_and_refuses_other_keys() {
        let mut rng = Randomness::Os;
        let file_key = FileKey::generate(&mut rng).expect("rng");
        let wrap_key = [9u8; KEY_LEN];
        let wrapped = wrap_file_key(&wrap_key, &file_key);
        let opened = unwrap_file_key(&wrap_key, &wrapped).expect("same key opens");
        assert_eq!(opened.as_bytes(), file_key.as_bytes());
        assert!(unwrap_file_key(&[8u8; KEY_LEN], &wrapped).is_none());
        assert!(unwrap_file_key(&wrap_key, &wrapped[1..]).is_none());
    }

    #[test]
    fn file_keys_are_16_bytes_and_wrap_to_32() {
        let file_key = FileKey::generate(&mut Randomness::Os).expect("rng");
        assert_eq!(file_key.as_bytes().len(), 16);
        assert_eq!(wrap_file_key(&[1; KEY_LEN], &file_key).len(), 32);
    }

    #[test]
    fn types_match_exactly_and_unknown_ones_are_skipped() {
        let mut rng = Randomness::Os;
        let file_key = FileKey::generate(&mut rng).expect("rng");
        let identity = X25519Identity::generate().expect("os randomness");
        let recipients = [Recipient::from(identity.to_public())];
        let stanza = wrap_for_recipients(
            &file_key,
            &recipients,
            None,
            &PluginSettings::default(),
            false,
            &mut rng,
        )
        .expect("wrap")
        .remove(0);
        // kuvert v1's lowercase type, or any other case, is not age's type:
        // an unknown stanza, neither checked nor tried, and named.
        let mut lower = stanza.clone();
        lower.kind = "x25519".into();
        lower.body.clear();
        let grease = Stanza {
            at: 0,
            kind: "grease".into(),
            args: vec!["!".into(); 254],
            body: vec![1; 3],
        };
        let identities = [Identity::from(identity)];
        let unknown = [lower.clone(), grease.clone()];
        check_stanzas(&unknown, &Location::input(1)).expect("unknown types are not checked");
        assert!(matches!(
            unwrap_stanzas(&unknown, &identities),
            Err(Error::NoMatchingKey { stanza_types }) if stanza_types == ["x25519", "grease"]
        ));
        let opened = unwrap_stanzas(&[lower, grease, stanza], &identities).expect("opens");
        assert_eq!(*opened, *file_key.as_bytes());
    }

    #[test]
    fn header_and_payload_keys_differ() {
        let file_key = FileKey::from_bytes(Zeroizing::new([1; FILE_KEY_LEN]));
        let set_id = [2; SET_ID_LEN];
        assert_ne!(
            *file_key.derive(&set_id, HEADER_LABEL),
            *file_key.derive(&set_id, PAYLOAD_LABEL)
        );
        assert_ne!(
            *file_key.derive(&set_id, HEADER_LABEL),
            *file_key.derive(&[3; SET_ID_LEN], HEADER_LABEL)
        );
    }

    #[test]
    fn hmac_and_hkdf_states_are_wiped_on_drop() {
        // Compiles only with the `zeroize` features of hmac and sha2 (see
        // Cargo.toml). `Hmac<Sha256>` holds two SHA-256 cores and a block
        // buffer, each wiped by its own `Drop` with those features (hmac
        // declares no marker of its own); HKDF's state is such an HMAC.
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<Sha256>();
        wiped_on_drop::<sha2::block_api::Sha256VarCore>();
    }

    #[test]
    fn debug_never_prints_keys() {
        let file_key = FileKey::from_bytes(Zeroizing::new([0x41; FILE_KEY_LEN]));
        assert_eq!(format!("{file_key:?}"), "FileKey(<redacted>)");
        let payload = file_key.payload_key(&[0; SET_ID_LEN]);
        assert_eq!(format!("{payload:?}"), "PayloadKey(<redacted>)");
    }

    #[test]
    fn age_keygen_output_is_an_identity_file() {
        // Written by age-keygen 1.1 (Debian's `age` package) on this machine.
        let file = "# created: 2026-11-29T05:01:20Z\n\
            # public key: age1xafqnldth57j79qvaejezpslq347rj9dzgvff6y9jhulmgl87euq9uandu\n\
            AGE-SECRET-KEY-124UMNKZQYS3PYU6NY44FU7UFAUHUGVMDG974W7DUT070FFCNCR7QMUUVCW\n";
        let identities = Identity::parse_file(file).expect("age identity file");
        assert_eq!(identities.len(), 1);
        let Some(Recipient::X25519(recipient)) = identities[0].to_recipient() else {
            panic!("an X25519 identity")
        };
        assert_eq!(
            recipient.to_age_string(),
            "age1xafqnldth57j79qvaejezpslq347rj9dzgvff6y9jhulmgl87euq9uandu"
        );
    }

    #[test]
    fn identity_files_skip_comments_and_name_bad_lines() {
        let identity = X25519Identity::generate().expect("os randomness");
        let text = format!(
            "# created: today\n# public key: {}\n\n{}\n",
            identity.to_public(),
            identity.to_secret_string().as_str()
        );
        assert_eq!(Identity::parse_file(&text).expect("valid file").len(), 1);
        let bad = format!("{}\nnot a key\n", identity.to_secret_string().as_str());
        let err = Identity::parse_file(&bad).expect_err("line 2 is no key");
        assert_eq!(
            err.to_string(),
            "line 2 is not an identity: not a valid identity: not bech32, or its checksum fails"
        );
        assert!(matches!(
            err,
            Error::KeyFileLine {
                what: "identity",
                line: 2,
                reason: KeyError::Bech32 { what: "identity" },
            }
        ));
    }

    #[test]
    fn both_key_files_refuse_emptiness_alike() {
        for text in ["", "\n", "# created: today\n\n   \n# more\n"] {
            let identities = Identity::parse_file(text).expect_err("no identity");
            assert!(
                matches!(identities, Error::EmptyKeyFile { what: "identity" }),
                "{identities:?}"
            );
            assert_eq!(identities.to_string(), "no identity in the file");
            let recipients = parse_recipients_file(text).expect_err("no recipient");
            assert!(
                matches!(recipients, Error::EmptyKeyFile { what: "recipient" }),
                "{recipients:?}"
            );
        }
    }

    #[test]
    fn bad_lines_keep_their_number_and_reason_but_not_their_text() {
        let identity = X25519Identity::generate().expect("os randomness");
        let secret = identity.to_secret_string();
        // A low-order point: the reason says so, where a file of one kind
        // used to say only "not a recipient".
        let hrp = bech32::Hrp::parse("kuvert").expect("hrp");
        let low_order =
            bech32::encode_lower::<bech32::Bech32>(hrp, &[0; KEY_LEN]).expect("32 bytes");
        let zero = X25519Recipient::from_str(&low_order).expect_err("low order");
        let text = format!("# team\n{}\n\n{low_order}\n", identity.to_public());
        match parse_recipients_file(&text) {
            Err(Error::KeyFileLine {
                what: "recipient",
                line: 4,
                reason,
            }) => assert_eq!(Error::InvalidKey { reason }.to_string(), zero.to_string()),
            other => panic!("{other:?}"),
        }
        // A secret key one character off is not echoed into the message.
        let mut typo = secret.to_string();
        typo.pop();
        let err = Identity::parse_file(&format!("\n{typo}\n")).expect_err("typo");
        assert!(matches!(err, Error::KeyFileLine { line: 2, .. }));
        assert!(!format!("{err} {err:?}").contains(&typo[20..]));
        // A secret key in a recipients file is refused, line named, by its
        // prefix alone.
        let err = parse_recipients_file(&secret).expect_err("a secret key");
        assert!(matches!(
            &err,
            Error::KeyFileLine {
                line: 1,
                reason: KeyError::WrongPrefix { what: "recipient", found },
                ..
            } if found == "age-secret-key-"
        ));
        assert_eq!(
            err.to_string(),
            "line 1 is not a recipient: not a recipient: its prefix is \"age-secret-key-\""
        );
    }

    #[test]
    fn identities_and_recipients_parse_from_str() {
        let identity = X25519Identity::generate().expect("os randomness");
        for text in [identity.to_secret_string(), identity.to_age_secret_string()] {
            let parsed: Identity = text.parse().expect("identity");
            assert_eq!(
                parsed.to_recipient(),
                Some(Recipient::X25519(identity.to_public()))
            );
            // Surrounding whitespace is ignored, as by X25519Identity.
            let padded: Identity = format!("  {}\n", text.as_str()).parse().expect("padded");
            assert_eq!(padded.to_recipient(), parsed.to_recipient());
        }
        let recipient = identity.to_public();
        for text in [recipient.to_string(), recipient.to_age_string()] {
            assert_eq!(
                text.parse::<Recipient>().expect("recipient"),
                Recipient::X25519(recipient.clone())
            );
        }
        assert!(recipient.to_string().parse::<Identity>().is_err());
        assert!(identity.to_secret_string().parse::<Recipient>().is_err());
        assert!(matches!(
            "".parse::<Identity>(),
            Err(Error::InvalidKey { .. })
        ));
    }

    #[test]
    fn identity_file_writer_matches_age_keygen() {
        // The age-keygen file of `age_keygen_output_is_an_identity_file`,
        // written again from its key and its creation time.
        let secret = "AGE-SECRET-KEY-124UMNKZQYS3PYU6NY44FU7UFAUHUGVMDG974W7DUT070FFCNCR7QMUUVCW";
        let identity: X25519Identity = secret.parse().expect("age identity");
        let created = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_928_480);
        assert_eq!(
            identity.to_age_file_string(created).as_str(),
            "# created: 2026-11-29T05:01:20Z\n\
             # public key: age1xafqnldth57j79qvaejezpslq347rj9dzgvff6y9jhulmgl87euq9uandu\n\
             AGE-SECRET-KEY-124UMNKZQYS3PYU6NY44FU7UFAUHUGVMDG974W7DUT070FFCNCR7QMUUVCW\n"
        );
        let own = identity.to_file_string(created);
        let lines: Vec<&str> = own.lines().collect();
        assert_eq!(lines[0], "# created: 2026-11-29T05:01:20Z");
        assert_eq!(lines[1], format!("# public key: {}", identity.to_public()));
        assert_eq!(lines[2], identity.to_secret_string().as_str());
        assert_eq!(lines.len(), 3);
        assert!(own.ends_with('\n'));
        let parsed = Identity::parse_file(&own).expect("parses back");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].to_recipient(), Some(identity.to_public().into()));
        // Before the epoch: the epoch, never a panic.
        let early =
            identity.to_file_string(SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(5));
        assert!(early.starts_with("# created: 1970-01-01T00:00:00Z\n"));
    }

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339_utc(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn cloned_identities_open_and_wipe_themselves() {
        // Every copy of a secret key wipes itself: the key lives only in a
        // StaticSecret, whose Drop zeroizes it.
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<x25519_dalek::StaticSecret>();
        let identity = Identity::from(X25519Identity::generate().expect("os randomness"));
        let copy = identity.clone();
        assert_eq!(copy.to_recipient(), identity.to_recipient());
        assert_eq!(format!("{copy:?}"), "X25519(X25519Identity(<redacted>))");
    }
}
