//! Checking signed volumes without any decryption key (SPEC.md §7.7,
//! §14): who signed each volume, that its statement describes it, and
//! that every chunk matches the signed digest table. Unlike the unsigned
//! keyless check, this finds forgery, not only damage: only the signer can
//! write a statement that verifies.

use crate::error::{Error, Location, Volume};
use crate::header::{read_header, read_trailer};
use crate::sign::SignerKey;
use crate::sign::statement::{LastVolume, Statement};
use crate::signature_check::{self, SetPosition, TrustedSigners};
use crate::volumes::{VolumeSource, location};

use super::keyless::{DigestReport, verify_digests};

/// What a keyless check of one signed volume established.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReport {
    /// The first trusted key of the signer block; every signature in the
    /// volume verified.
    pub signer: SignerKey,
    /// The principals it was trusted for, from an `allowed_signers` file.
    pub principals: Option<String>,
    /// The volume's statement, verified and matching the volume.
    pub statement: Statement,
    /// The digests: the header, every chunk and the region, all intact.
    pub digests: DigestReport,
}

impl SignedReport {
    /// Volume number, as signed.
    pub fn volume(&self) -> u32 {
        self.statement.volume
    }

    /// The `# last volume` line, if the signer sealed this volume as the
    /// set's last: then it proves the set's extent.
    pub fn last(&self) -> Option<LastVolume> {
        self.statement.last
    }
}

/// Checks one signed volume with no decryption key: a trusted key is in
/// its signer block, every signature verifies, the statement describes the
/// volume (header, table, region, numbers), and the header and every chunk
/// match the table (on `threads` threads).
///
/// ```
/// use std::io::Write;
/// use kuvert::{MemorySink, Sealer, SigningKey, X25519Identity, verify_signed_volume};
///
/// let institute = SigningKey::generate()?;
/// let trusted = (*institute.public()).into();
/// let mut writer = Sealer::new()
///     .recipient(X25519Identity::generate()?.to_public())
///     .sign_with(institute)
///     .seal(MemorySink::new())?;
/// writer.write_all(b"register extract")?;
/// let volume = writer.finish()?.into_volumes().remove(0);
/// let report = verify_signed_volume(volume.as_slice(), &trusted, 1)?;
/// assert!(report.last().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// Header errors as [`inspect`](crate::inspect); [`Error::Unsigned`] (an
/// unsigned volume, with or without trailers), [`Error::WrongSigner`],
/// [`Error::BadSignature`] (naming the signer); [`Error::Truncated`],
/// [`Error::MalformedTrailer`]; [`Error::DigestMismatch`] naming the
/// header or the chunk; [`Error::Read`].
pub fn verify_signed_volume<S: VolumeSource + Sync + ?Sized>(
    volume: &S,
    trusted: &TrustedSigners,
    threads: usize,
) -> Result<SignedReport, Error> {
    check_one(volume, 1, trusted, SetPosition::Unknown, threads)
}

/// Checks the signed volumes of one set with no decryption key: each as
/// [`verify_signed_volume`], and that they are one whole set: one set id
/// and signer block, volumes 1 … n each once, the `# last volume` line on
/// volume n and on no other. Reports come in volume order.
///
/// # Errors
///
/// As [`verify_signed_volume`]; [`Error::NoVolumes`],
/// [`Error::ForeignVolume`], [`Error::DuplicateVolume`],
/// [`Error::VolumeMissing`] (a gap, or the set's last volume not given).
pub fn verify_signed_set<S: VolumeSource + Sync>(
    volumes: &[S],
    trusted: &TrustedSigners,
    threads: usize,
) -> Result<Vec<SignedReport>, Error> {
    let mut headers = Vec::with_capacity(volumes.len());
    for (index, volume) in volumes.iter().enumerate() {
        headers.push((read_header(volume, index + 1)?.0, index));
    }
    let Some((first, _)) = headers.first() else {
        return Err(Error::NoVolumes);
    };
    let set_bytes = first.set_bytes().to_vec();
    for (header, _) in &headers {
        if header.set_bytes() != set_bytes.as_slice() {
            return Err(Error::ForeignVolume {
                at: header.origin.clone(),
                volume: header.volume,
            });
        }
    }
    headers.sort_by_key(|(header, index)| (header.volume, *index));
    for (expected, pair) in (1u32..).zip(headers.windows(2)) {
        if pair[0].0.volume == pair[1].0.volume {
            return Err(Error::DuplicateVolume {
                volume: pair[0].0.volume,
                at: pair[1].0.origin.clone(),
                first: Box::new(pair[0].0.origin.clone()),
            });
        }
        if pair[0].0.volume != expected {
            return Err(Error::VolumeMissing { volume: expected });
        }
    }
    let count = headers.len();
    if let Some((last, _)) = headers.last()
        && last.volume as usize != count
    {
        return Err(Error::VolumeMissing {
            volume: (count as u32).min(last.volume),
        });
    }
    let mut reports = Vec::with_capacity(count);
    for (position, (_, index)) in headers.iter().enumerate() {
        let place = match position + 1 == count {
            true => SetPosition::Last,
            false => SetPosition::NotLast,
        };
        reports.push(check_one(
            &volumes[*index],
            index + 1,
            trusted,
            place,
            threads,
        )?);
    }
    Ok(reports)
}

/// One volume, the `input`-th given, at `position` in its set.
fn check_one<S: VolumeSource + Sync + ?Sized>(
    volume: &S,
    input: usize,
    trusted: &TrustedSigners,
    position: SetPosition,
    threads: usize,
) -> Result<SignedReport, Error> {
    let (mut header, len) = read_header(volume, input)?;
    let at: Location = location(volume, Volume::Input(input));
    read_trailer(volume, &mut header, len, &at)?;
    let checked = signature_check::check_volume(
        volume,
        &header,
        header.trailer.as_ref(),
        trusted,
        position,
        &at,
    )?;
    let digests = verify_digests(volume, threads)?;
    Ok(SignedReport {
        principals: trusted.principals(&checked.signer).map(str::to_owned),
        signer: checked.signer,
        statement: checked.statement,
        digests,
    })
}
