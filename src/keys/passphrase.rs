//! Passphrase recipients with Argon2id (SPEC.md §4.3).
//!
//! The stanza stores a key commitment derived beside the wrap key, checked in
//! constant time before the AEAD: a wrong passphrase is reported as such, and
//! no single stanza can be crafted to open under several passphrases.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{FileKey, KEY_LEN, Limits, WRAPPED_KEY_LEN, hkdf32, unwrap_file_key, wrap_file_key};
use crate::error::{Error, Location, OptionError};
use crate::format::{Header, Stanza};
use crate::rand::Randomness;

pub(super) const STANZA_TYPE: &str = "argon2id";
const WRAP_LABEL: &[u8] = b"kuvert/v2 argon2id wrap";
const COMMIT_LABEL: &[u8] = b"kuvert/v2 argon2id commit";
const SALT_LEN: usize = 16;
const COMMIT_LEN: usize = 32;
/// Salt, memory, passes, lanes, commitment, wrapped file key: 92 bytes.
pub(super) const BODY_LEN: usize = SALT_LEN + 4 + 4 + 4 + COMMIT_LEN + WRAPPED_KEY_LEN;

/// A passphrase. Wiped on drop, never printed.
///
/// `Clone` is safe: a clone is another `Zeroizing<String>`, wiped (its whole
/// allocation) on drop like the original.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase; its UTF-8 bytes are used exactly as given.
    pub fn new(text: impl Into<String>) -> Self {
        Passphrase(Zeroizing::new(text.into()))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether the passphrase is empty (sealing refuses empty passphrases).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Passphrase {
    fn from(text: String) -> Self {
        Passphrase::new(text)
    }
}

impl From<&str> for Passphrase {
    fn from(text: &str) -> Self {
        Passphrase::new(text)
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Argon2id cost parameters of a passphrase stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    memory_kib: u32,
    passes: u32,
    lanes: u32,
}

impl Argon2Params {
    /// The default: 512 MiB, 3 passes, 4 lanes; about 0.8 s on the
    /// two-core machine this was measured on (SPEC.md §4.3).
    pub const DEFAULT: Argon2Params = Argon2Params {
        memory_kib: 512 * 1024,
        passes: 3,
        lanes: 4,
    };

    /// RFC 9106's second recommended option, the weakest this library
    /// writes: 64 MiB, 3 passes, 4 lanes.
    pub const MINIMUM: Argon2Params = Argon2Params {
        memory_kib: 64 * 1024,
        passes: 3,
        lanes: 4,
    };

    /// Costs for sealing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] if memory is below 64 MiB, passes below 3, or
    /// lanes outside 1..=16 (weaker than RFC 9106's second option, or more
    /// lanes than a default opener accepts); [`Error::LimitExceeded`] if
    /// memory or passes are above the caps of [`Limits::default`] (2 GiB,
    /// 8 passes), since a default opener would refuse the set.
    pub fn new(memory_kib: u32, passes: u32, lanes: u32) -> Result<Self, Error> {
        if memory_kib < Self::MINIMUM.memory_kib || passes < Self::MINIMUM.passes {
            return Err(Error::option(OptionError::Argon2BelowMinimum {
                memory_kib,
                passes,
            }));
        }
        if !(1..=16).contains(&lanes) {
            return Err(Error::option(OptionError::Argon2Lanes { found: lanes }));
        }
        let params = Argon2Params {
            memory_kib,
            passes,
            lanes,
        };
        params.check_limits(&Limits::default())?;
        Ok(params)
    }

    /// Any costs at all, even below [`Argon2Params::MINIMUM`]: only for
    /// tests that need weak or hostile stanzas.
    #[cfg(any(test, feature = "insecure-test-hooks"))]
    pub(crate) fn unchecked(memory_kib: u32, passes: u32, lanes: u32) -> Self {
        Argon2Params {
            memory_kib,
            passes,
            lanes,
        }
    }

    /// Refuses costs above `limits`, naming them as an opener would: a set
    /// sealed with them would not open with those limits.
    pub(crate) fn check_limits(&self, limits: &Limits) -> Result<(), Error> {
        check_caps(self, limits)
    }

    /// Whether these costs are below [`Argon2Params::MINIMUM`]'s memory or
    /// passes: weaker than this library ever writes.
    pub(crate) fn is_below_minimum(&self) -> bool {
        self.memory_kib < Self::MINIMUM.memory_kib || self.passes < Self::MINIMUM.passes
    }

    /// Memory cost in KiB.
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Number of passes over memory.
    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// Degree of parallelism.
    pub fn lanes(&self) -> u32 {
        self.lanes
    }

    fn derive(&self, passphrase: &Passphrase, salt: &[u8]) -> Result<Derived, Error> {
        let params =
            Params::new(self.memory_kib, self.passes, self.lanes, Some(KEY_LEN)).map_err(|_| {
                Error::option(OptionError::Argon2Params {
                    memory_kib: self.memory_kib,
                    passes: self.passes,
                    lanes: self.lanes,
                })
            })?;
        let mut output = Zeroizing::new([0u8; KEY_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, &mut output[..])
            .map_err(|_| Error::option(OptionError::Argon2Input))?;
        Ok(Derived {
            wrap_key: hkdf32(&output[..], salt, WRAP_LABEL),
            commitment: hkdf32(&output[..], salt, COMMIT_LABEL),
        })
    }
}

/// The two keys derived from one Argon2id output.
struct Derived {
    wrap_key: Zeroizing<[u8; KEY_LEN]>,
    commitment: Zeroizing<[u8; KEY_LEN]>,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params::DEFAULT
    }
}

/// Builds a passphrase stanza for `file_key`.
pub(super) fn wrap(
    passphrase: &Passphrase,
    params: &Argon2Params,
    file_key: &FileKey,
    rng: &mut Randomness,
) -> Result<Stanza, Error> {
    if passphrase.is_empty() {
        return Err(Error::option(OptionError::EmptyPassphrase));
    }
    let salt = rng.array::<SALT_LEN>()?;
    let Derived {
        wrap_key,
        commitment,
    } = params.derive(passphrase, &salt[..])?;
    let mut body = Vec::with_capacity(BODY_LEN);
    body.extend_from_slice(&salt[..]);
    body.extend_from_slice(&params.memory_kib.to_be_bytes());
    body.extend_from_slice(&params.passes.to_be_bytes());
    body.extend_from_slice(&params.lanes.to_be_bytes());
    body.extend_from_slice(&commitment[..]);
    body.extend_from_slice(&wrap_file_key(&wrap_key, file_key));
    Ok(Stanza {
        at: 0,
        kind: STANZA_TYPE.into(),
        args: Vec::new(),
        body,
    })
}

/// A stanza of this type's exact size, with placeholder contents: the
/// header length, known without running Argon2id.
pub(super) fn placeholder() -> Stanza {
    Stanza {
        at: 0,
        kind: STANZA_TYPE.into(),
        args: Vec::new(),
        body: vec![0; BODY_LEN],
    }
}

/// Fields of a stanza body whose length has been checked.
struct Body<'a> {
    salt: &'a [u8],
    params: Argon2Params,
    commitment: &'a [u8],
    wrapped: &'a [u8],
}

fn split(body: &[u8]) -> Option<Body<'_>> {
    if body.len() != BODY_LEN {
        return None;
    }
    let (salt, rest) = body.split_at(SALT_LEN);
    let word = |at: usize| u32::from_be_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
    let params = Argon2Params {
        memory_kib: word(0),
        passes: word(4),
        lanes: word(8),
    };
    let (commitment, wrapped) = rest[12..].split_at(COMMIT_LEN);
    Some(Body {
        salt,
        params,
        commitment,
        wrapped,
    })
}

/// Checks an argon2id stanza before any key is tried: no argument after
/// its type, the exact body length, and RFC 9106's parameter ranges (lanes
/// 1..2^24, memory ≥ 8 KiB per lane, passes ≥ 1).
pub(super) fn check(stanza: &Stanza, input: &Location) -> Result<(), Error> {
    if !stanza.args.is_empty() {
        return Err(Error::malformed(
            input,
            stanza.at,
            "argon2id stanza has arguments after its type",
        ));
    }
    let body = split(&stanza.body).ok_or_else(|| {
        Error::malformed(input, stanza.at, "argon2id stanza body is not 92 bytes")
    })?;
    let Argon2Params {
        memory_kib,
        passes,
        lanes,
    } = body.params;
    let valid = (1..=0x00FF_FFFF).contains(&lanes)
        && passes >= 1
        && u64::from(memory_kib) >= 8 * u64::from(lanes);
    if !valid {
        return Err(Error::malformed(
            input,
            stanza.at,
            "argon2id parameters outside RFC 9106 ranges",
        ));
    }
    Ok(())
}

/// Compares costs with the caps in SPEC.md §4.3's order: memory, passes,
/// lanes; the first above its cap is named.
fn check_caps(params: &Argon2Params, limits: &Limits) -> Result<(), Error> {
    let caps = [
        (
            "argon2id memory (KiB)",
            params.memory_kib,
            limits.argon2_max_memory_kib,
        ),
        ("argon2id passes", params.passes, limits.argon2_max_passes),
        ("argon2id lanes", params.lanes, limits.argon2_max_lanes),
    ];
    for (what, found, limit) in caps {
        if found > limit {
            return Err(Error::LimitExceeded {
                what,
                found: found.into(),
                limit: limit.into(),
            });
        }
    }
    Ok(())
}

/// Opens a checked argon2id stanza and gives its costs beside the file
/// key. `Ok(None)` means a wrong passphrase.
///
/// The costs are compared with `limits` before any work is done.
pub(super) fn unwrap(
    passphrase: &Passphrase,
    stanza: &Stanza,
    limits: &Limits,
    header: &Header,
) -> Result<Option<(FileKey, Argon2Params)>, Error> {
    let damaged = || header.damaged();
    let body = split(&stanza.body).ok_or_else(damaged)?;
    check_caps(&body.params, limits)?;
    let Derived {
        wrap_key,
        commitment,
    } = body.params.derive(passphrase, body.salt)?;
    if !bool::from(commitment[..].ct_eq(body.commitment)) {
        return Ok(None);
    }
    // The commitment matched, so the passphrase is right: a failure now
    // means the stanza was altered after sealing.
    unwrap_file_key(&wrap_key, body.wrapped)
        .map(|file_key| Some((file_key, body.params)))
        .ok_or_else(damaged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(passphrase: &str) -> (FileKey, Stanza) {
        let mut rng = Randomness::Os;
        let file_key = FileKey::generate(&mut rng).expect("rng");
        let stanza = wrap(
            &passphrase.into(),
            &Argon2Params::MINIMUM,
            &file_key,
            &mut rng,
        )
        .expect("wrap");
        (file_key, stanza)
    }

    /// A header read as input `volume`, claiming to be volume `volume`.
    fn header(volume: u32) -> Header {
        Header {
            set: crate::format::SetHeader {
                trailers: false,
                set_id: [0; crate::format::SET_ID_LEN],
                chunk_exp: 12,
                chunks_per_volume: 0,
                stanzas: Vec::new(),
                signers: Vec::new(),
                parity: None,
            },
            volume,
            origin: Location::input(volume as usize),
            bytes: Vec::new(),
            set_bytes: 0..0,
            trailer: None,
        }
    }

    #[test]
    fn right_and_wrong_passphrases() {
        let (file_key, stanza) = sealed("correct horse battery staple");
        assert_eq!(stanza.body.len(), BODY_LEN);
        check(&stanza, &Location::input(1)).expect("well-formed");
        let limits = Limits::default();
        let (opened, params) = unwrap(
            &"correct horse battery staple".into(),
            &stanza,
            &limits,
            &header(1),
        )
        .expect("no error")
        .expect("right passphrase");
        assert_eq!(opened.as_bytes(), file_key.as_bytes());
        assert_eq!(params, Argon2Params::MINIMUM);
        assert!(!params.is_below_minimum());
        assert!(
            unwrap(&"wrong".into(), &stanza, &limits, &header(1))
                .expect("no error")
                .is_none()
        );
    }

    #[test]
    fn altered_wrapped_key_is_damage_not_wrong_passphrase() {
        let (_, mut stanza) = sealed("pass");
        let last = stanza.body.len() - 1;
        stanza.body[last] ^= 1;
        assert!(matches!(
            unwrap(&"pass".into(), &stanza, &Limits::default(), &header(3)),
            Err(Error::HeaderDamaged { at, volume: 3 }) if at == Location::input(3)
        ));
    }

    #[test]
    fn costs_above_the_cap_are_refused_before_work() {
        let (_, mut stanza) = sealed("pass");
        // 4 TiB of memory: would take hours if it were attempted.
        stanza.body[SALT_LEN..SALT_LEN + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            unwrap(&"pass".into(), &stanza, &Limits::default(), &header(1)),
            Err(Error::LimitExceeded { what: "argon2id memory (KiB)", found, limit })
                if found == u64::from(u32::MAX) && limit == 2 * 1024 * 1024
        ));
    }

    #[test]
    fn invalid_parameters_and_lengths_are_malformed() {
        let (_, stanza) = sealed("pass");
        let mut zero_lanes = stanza.clone();
        zero_lanes.body[SALT_LEN + 8..SALT_LEN + 12].copy_from_slice(&0u32.to_be_bytes());
        assert!(check(&zero_lanes, &Location::input(1)).is_err());
        let mut short = stanza.clone();
        short.body.pop();
        assert!(matches!(
            check(&short, &Location::input(1)),
            Err(Error::MalformedHeader {
                reason: "argon2id stanza body is not 92 bytes",
                ..
            })
        ));
        let mut argued = stanza.clone();
        argued.args.push("salt".into());
        assert!(matches!(
            check(&argued, &Location::input(1)),
            Err(Error::MalformedHeader {
                reason: "argon2id stanza has arguments after its type",
                ..
            })
        ));
        assert_eq!(stanza.encoded_len(), placeholder().encoded_len());
        assert_eq!(stanza.encoded_len(), 105);
    }

    #[test]
    fn costs_a_default_opener_refuses_are_refused_for_sealing() {
        assert!(matches!(
            Argon2Params::new(2 * 1024 * 1024 + 1, 3, 4),
            Err(Error::LimitExceeded { what: "argon2id memory (KiB)", found, limit })
                if found == 2 * 1024 * 1024 + 1 && limit == 2 * 1024 * 1024
        ));
        assert!(matches!(
            Argon2Params::new(64 * 1024, 9, 4),
            Err(Error::LimitExceeded {
                what: "argon2id passes",
                found: 9,
                limit: 8
            })
        ));
        Argon2Params::new(2 * 1024 * 1024, 8, 16).expect("exactly at the caps");
        assert!(matches!(
            Argon2Params::unchecked(64 * 1024, 3, 17).check_limits(&Limits::default()),
            Err(Error::LimitExceeded {
                what: "argon2id lanes",
                found: 17,
                limit: 16
            })
        ));
    }

    #[test]
    fn below_minimum_means_memory_or_passes() {
        assert!(Argon2Params::unchecked(64 * 1024 - 1, 3, 4).is_below_minimum());
        assert!(Argon2Params::unchecked(64 * 1024, 2, 4).is_below_minimum());
        assert!(!Argon2Params::unchecked(64 * 1024, 3, 1).is_below_minimum());
    }

    #[test]
    fn weak_costs_are_refused_for_sealing() {
        assert!(Argon2Params::new(19 * 1024, 2, 1).is_err());
        assert!(Argon2Params::new(64 * 1024, 3, 0).is_err());
        assert_eq!(
            Argon2Params::new(64 * 1024, 3, 4).expect("minimum"),
            Argon2Params::MINIMUM
        );
    }
}
