//! A signed volume's statement and signatures as its trailer stores them
//! (SPEC.md §13, §14), for tools that hand them to stock verifiers: `kuvert
//! export-signature` and `seal --sig-files` write them as `VOL.statement`
//! and `VOL.sig` for `ssh-keygen -Y verify` and `b3sum`. Only the
//! header's and the trailer's structure is checked here, as a keyless
//! reader checks them; whether the signatures hold is for
//! `verify_signed_volume` or `ssh-keygen` to say.

use crate::error::{Error, Volume};
use crate::header::{read_header, read_trailer};
use crate::sign::SignerKey;
use crate::volumes::{VolumeSource, location, read_at};

/// The signature records of one volume, byte for byte.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRecords {
    /// Volume number, as the header says (not authenticated here).
    pub volume: u32,
    /// The header's signer block, in order: signature i is by key i.
    pub signers: Vec<SignerKey>,
    /// H_v: the chunk region starts here.
    pub header_len: u64,
    /// E: the chunk region ends here.
    pub chunk_end: u64,
    /// The statement record's body (SPEC.md §14.1).
    pub statement: Vec<u8>,
    /// The signature records' bodies, armored SSHSIG (§14.2), in order.
    pub signatures: Vec<Vec<u8>>,
}

/// Reads a signed volume's statement and signatures, without any key.
///
/// # Errors
///
/// Header errors as [`inspect`](crate::inspect); [`Error::Unsigned`] for a
/// volume of a set that is not signed; [`Error::Truncated`] and
/// [`Error::MalformedTrailer`] for its trailer; [`Error::BadSignature`]
/// naming the first signer if the trailer holds no statement;
/// [`Error::Read`].
pub fn signature_records<S: VolumeSource + ?Sized>(volume: &S) -> Result<SignatureRecords, Error> {
    let (mut header, len) = read_header(volume, 1)?;
    let at = location(volume, Volume::Input(1));
    let Some(first) = header.set.signers.first().copied() else {
        return Err(Error::Unsigned { at });
    };
    let chunk_end = read_trailer(volume, &mut header, len, &at)?;
    let trailer = header
        .trailer
        .as_ref()
        .expect("SIGNED implies TRAILERS (SPEC.md §3.2), so the trailer was read");
    let Some(statement_at) = trailer.statement else {
        return Err(Error::BadSignature { at, signer: first });
    };
    // Both bounded to 1,024 bytes by the trailer reader.
    let record = |(offset, len): (u64, u64)| -> Result<Vec<u8>, Error> {
        let mut body = vec![0u8; len as usize];
        read_at(volume, &mut body, offset, Volume::Input(1), None)?;
        Ok(body)
    };
    let statement = record(statement_at)?;
    let signatures = trailer
        .signatures
        .iter()
        .map(|&body| record(body))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(SignatureRecords {
        volume: header.volume,
        signers: header.set.signers.clone(),
        header_len: header.geometry().data_offset,
        chunk_end,
        statement,
        signatures,
    })
}
