//! Checking a signed volume against the signers a caller trusts (SPEC.md
//! §7.2 step 4b, §7.7, §14), with no decryption key: the signer block
//! names a trusted key, every signature verifies over the stored
//! statement, and the statement describes this very volume, its header
//! bytes, digest table and chunk region included. Opening and the keyless
//! checks both start here; neither releases anything before it passed.

use std::fmt;

use crate::chunk_digest::{self, DIGEST_LEN};
use crate::error::{Error, Location};
use crate::format::Header;
use crate::sign::statement::{LastVolume, MAX_STATEMENT_LEN, Statement};
use crate::sign::{AllowedSigners, SignerKey, sshsig};
use crate::trailer::Trailer;
use crate::volumes::VolumeSource;

/// Table entries read at a time while merging them to R_v (64 KiB).
const ENTRIES_PER_READ: usize = 2048;

/// The signer keys a caller trusts, each with the principals of the
/// `allowed_signers` line it came from, if any.
///
/// ```
/// use kuvert::{SigningKey, TrustedSigners};
/// use kuvert::sign::parse_allowed_signers;
///
/// let key = SigningKey::from_seed([1; 32]);
/// let line = format!("institute@example.org {}", key.public().to_openssh(""));
/// let file = parse_allowed_signers(&line)?;
/// let trusted = TrustedSigners::from(&file);
/// assert_eq!(trusted.principals(key.public()), Some("institute@example.org"));
/// # Ok::<(), kuvert::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedSigners {
    keys: Vec<(SignerKey, Option<String>)>,
}

impl TrustedSigners {
    /// No trusted key.
    pub fn new() -> Self {
        TrustedSigners::default()
    }

    /// Trusts `key` too (a second time adds nothing).
    pub fn add(&mut self, key: SignerKey) {
        if !self.contains(&key) {
            self.keys.push((key, None));
        }
    }

    /// Trusts every key of a signer file, keeping its principals (the
    /// first line's, for a key on several lines).
    pub fn add_allowed(&mut self, file: &AllowedSigners) {
        for signer in &file.signers {
            if !self.contains(&signer.key) {
                let principals = (!signer.principals.is_empty()).then(|| signer.principals.clone());
                self.keys.push((signer.key, principals));
            }
        }
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `key` is trusted.
    pub fn contains(&self, key: &SignerKey) -> bool {
        self.keys.iter().any(|(trusted, _)| trusted == key)
    }

    /// The principals `key` was trusted for, if it came from an
    /// `allowed_signers` line that names some.
    pub fn principals(&self, key: &SignerKey) -> Option<&str> {
        self.keys
            .iter()
            .find(|(trusted, _)| trusted == key)
            .and_then(|(_, principals)| principals.as_deref())
    }

    /// The trusted keys, in the order added.
    pub fn keys(&self) -> impl Iterator<Item = &SignerKey> {
        self.keys.iter().map(|(key, _)| key)
    }
}

impl fmt::Debug for TrustedSigners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys()).finish()
    }
}

impl From<SignerKey> for TrustedSigners {
    fn from(key: SignerKey) -> Self {
        let mut trusted = TrustedSigners::new();
        trusted.add(key);
        trusted
    }
}

impl From<&[SignerKey]> for TrustedSigners {
    fn from(keys: &[SignerKey]) -> Self {
        keys.iter().copied().collect()
    }
}

impl From<&AllowedSigners> for TrustedSigners {
    fn from(file: &AllowedSigners) -> Self {
        let mut trusted = TrustedSigners::new();
        trusted.add_allowed(file);
        trusted
    }
}

impl FromIterator<SignerKey> for TrustedSigners {
    fn from_iter<I: IntoIterator<Item = SignerKey>>(keys: I) -> Self {
        let mut trusted = TrustedSigners::new();
        for key in keys {
            trusted.add(key);
        }
        trusted
    }
}

/// Who sealed an opened set, as far as it was checked
/// ([`OpenReader::signature`](crate::OpenReader::signature)).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// The set is not signed: nothing proves who sealed it.
    Unsigned,
    /// The set is signed by these keys (signer-block order), but no signer
    /// was required, so nothing was checked: the names are a claim.
    NotChecked {
        /// The keys the signer block names.
        signers: Vec<SignerKey>,
    },
    /// Every volume's signatures verified and describe the volume; `signer`
    /// is the first trusted key of the signer block.
    Checked {
        /// The trusted key that signed it.
        signer: SignerKey,
        /// The principals it was trusted for, from an `allowed_signers`
        /// file.
        principals: Option<String>,
    },
}

impl SignatureStatus {
    /// The status of a set whose signer block names `signers`, unchecked.
    pub(crate) fn unchecked(signers: &[SignerKey]) -> Self {
        match signers {
            [] => SignatureStatus::Unsigned,
            _ => SignatureStatus::NotChecked {
                signers: signers.to_vec(),
            },
        }
    }
}

impl fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureStatus::Unsigned => f.write_str("not signed"),
            SignatureStatus::NotChecked { signers } => {
                let prints: Vec<String> = signers.iter().map(SignerKey::fingerprint).collect();
                write!(f, "signed by {}, not checked", prints.join(", "))
            }
            SignatureStatus::Checked { signer, principals } => {
                write!(f, "signed by {}", signer.fingerprint())?;
                if let Some(principals) = principals {
                    write!(f, " ({})", crate::escape_name(principals))?;
                }
                f.write_str(", checked")
            }
        }
    }
}

/// What a volume's signature check established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedVolume {
    /// The first trusted key of the signer block.
    pub(crate) signer: SignerKey,
    /// The volume's statement, verified and matching the volume.
    pub(crate) statement: Statement,
}

/// Where the volume sits in the set, as far as the caller knows: opening
/// knows it, a keyless check of one volume does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetPosition {
    /// The set's last volume: its statement must carry `# last volume`.
    Last,
    /// A volume with others after it: its statement must not.
    NotLast,
    /// Unknown: either is accepted and reported.
    Unknown,
}

/// Checks one volume's signatures, in the order of SPEC.md §7.2 step 4b:
/// the set is signed, a trusted key is in its signer block, every
/// signature verifies over the stored statement, and the statement is
/// exactly what this volume's bytes give (SID, v, g0, k, C, H_v, h_v, E,
/// T, R_v, the `# last volume` line). `header` and `trailer` come from
/// `source`; `at` names the volume.
///
/// Chunk bytes are not read, except a lone chunk's (R_v of a volume of
/// one chunk is its BLAKE3): they match the table or not when read
/// ([`crate::DigestCheckedSource`], or a keyless scan).
///
/// # Errors
///
/// [`Error::Unsigned`], [`Error::WrongSigner`], [`Error::BadSignature`]
/// naming the signer (and the record's byte); [`Error::VolumeMissing`] if
/// the last volume given was not sealed as the set's last; [`Error::Read`].
pub(crate) fn check_volume<S: VolumeSource + ?Sized>(
    source: &S,
    header: &Header,
    trailer: Option<&Trailer>,
    trusted: &TrustedSigners,
    position: SetPosition,
    at: &Location,
) -> Result<CheckedVolume, Error> {
    let signers = &header.set.signers;
    let Some(trailer) = trailer.filter(|_| !signers.is_empty()) else {
        return Err(Error::Unsigned { at: at.clone() });
    };
    let Some(&signer) = signers.iter().find(|key| trusted.contains(key)) else {
        return Err(Error::WrongSigner {
            at: at.clone(),
            signers: signers.clone(),
        });
    };
    let bad = |offset: Option<u64>, signer: SignerKey| Error::BadSignature {
        at: offset.map_or_else(|| at.clone(), |offset| at.clone().byte(offset)),
        signer,
    };
    // The statement, and every signature over it (a stripped one is bad).
    let Some((statement_at, statement_len)) = trailer.statement else {
        return Err(bad(None, signer));
    };
    if statement_len > MAX_STATEMENT_LEN as u64 {
        return Err(bad(Some(statement_at), signer));
    }
    let stored = read(source, at, statement_at, statement_len as usize)?;
    for (i, key) in signers.iter().enumerate() {
        let Some(&(sig_at, sig_len)) = trailer.signatures.get(i) else {
            return Err(bad(None, *key));
        };
        if sig_len > sshsig::MAX_ARMORED_LEN as u64 {
            return Err(bad(Some(sig_at), *key));
        }
        let armored = read(source, at, sig_at, sig_len as usize)?;
        if sshsig::verify(&armored, &stored, key).is_err() {
            return Err(bad(Some(sig_at), *key));
        }
    }
    // Signed: now compare it with what the volume is.
    let Ok(statement) = Statement::parse(&stored) else {
        return Err(bad(Some(statement_at), signer));
    };
    let expected = expected_statement(source, header, trailer, at)?;
    let without_last = |s: &Statement| Statement {
        last: None,
        ..s.clone()
    };
    if without_last(&statement) != without_last(&expected) {
        return Err(bad(Some(statement_at), signer));
    }
    let last = LastVolume {
        volumes: expected.volume,
        final_chunk: expected.first_chunk + expected.chunks - 1,
    };
    match (statement.last, position) {
        (Some(found), _) if found != last => return Err(bad(Some(statement_at), signer)),
        (Some(_), SetPosition::NotLast) => return Err(bad(Some(statement_at), signer)),
        // The signer sealed more volumes than were given: a cut set.
        (None, SetPosition::Last) => {
            return Err(Error::VolumeMissing {
                volume: expected.volume.saturating_add(1),
            });
        }
        _ => {}
    }
    Ok(CheckedVolume { signer, statement })
}

/// The statement this volume's bytes give, its `# last volume` line left
/// out: h_v over the header as read, T over the table as stored, R_v
/// merged from the table (or, for one chunk, hashed from the chunk).
fn expected_statement<S: VolumeSource + ?Sized>(
    source: &S,
    header: &Header,
    trailer: &Trailer,
    at: &Location,
) -> Result<Statement, Error> {
    let geometry = header.geometry();
    let chunk_len = geometry.chunk_len();
    let padded = read(source, at, 0, geometry.data_offset as usize)?;
    let header_digest = chunk_digest::header_digest(&padded);

    // T: the table record's body, k ‖ h_v ‖ entries, hashed in pieces.
    let mut hasher = blake3::Hasher::new();
    hasher.update(&trailer.chunks.to_be_bytes());
    hasher.update(&trailer.header_digest);
    let mut entries = vec![[0u8; DIGEST_LEN]; ENTRIES_PER_READ];
    let mut first = 0u64;
    while first < trailer.chunks {
        let count = (trailer.chunks - first).min(ENTRIES_PER_READ as u64) as usize;
        trailer.read_entries(source, at, first, &mut entries[..count])?;
        for entry in &entries[..count] {
            hasher.update(entry);
        }
        first += count as u64;
    }
    let table_digest = *hasher.finalize().as_bytes();

    let region_len = trailer.chunk_end - geometry.data_offset;
    let mut buffered = (u64::MAX, 0usize);
    let mut failed = None;
    let merged = chunk_digest::root_from_table(region_len, chunk_len, |j| {
        // Asked once each, in order: refill a piece at a time.
        let (start, count) = buffered;
        if start == u64::MAX || j >= start + count as u64 {
            let count = (trailer.chunks - j).min(ENTRIES_PER_READ as u64) as usize;
            if let Err(err) = trailer.read_entries(source, at, j, &mut entries[..count]) {
                failed.get_or_insert(err);
            }
            buffered = (j, count);
        }
        entries[(j - buffered.0) as usize]
    });
    if let Some(err) = failed {
        return Err(err);
    }
    let region_digest = match merged {
        Some(root) => root,
        None => *blake3::hash(&read(
            source,
            at,
            geometry.data_offset,
            region_len as usize,
        )?)
        .as_bytes(),
    };
    Ok(Statement {
        set_id: header.set.set_id,
        volume: header.volume,
        first_chunk: geometry.first_chunk(header.volume),
        chunks: trailer.chunks,
        chunk_len: chunk_len as u64,
        header_len: geometry.data_offset,
        header_digest,
        end: trailer.chunk_end,
        table_digest,
        last: None,
        region_digest,
    })
}

/// Reads `len` bytes at `offset` of the volume at `at`.
fn read<S: VolumeSource + ?Sized>(
    source: &S,
    at: &Location,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; len];
    source
        .read_exact_at(&mut buf, offset)
        .map_err(|source| Error::Read {
            at: at.clone().byte(offset),
            source,
        })?;
    Ok(buf)
}
