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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::sign::sshsig;
    use crate::sign::statement::Statement;
    use crate::{MemorySink, Sealer, SigningKey, X25519Identity};

    fn seal(sealer: Sealer) -> Vec<Vec<u8>> {
        let sealer = sealer
            .recipient(X25519Identity::generate().expect("randomness").to_public())
            .chunk_size(4096)
            .volume_size(32 * 1024);
        let mut writer = sealer.seal(MemorySink::new()).expect("seals");
        writer.write_all(&[7u8; 40_000]).expect("writes");
        writer.finish().expect("finishes").into_volumes()
    }

    #[test]
    fn records_are_the_signed_statement_and_one_signature_per_signer() {
        let a = SigningKey::from_seed([1; 32]);
        let b = SigningKey::from_seed([2; 32]);
        let (pa, pb) = (*a.public(), *b.public());
        let volumes = seal(Sealer::new().sign_with(a).sign_with(b));
        assert!(volumes.len() >= 2);
        for (index, volume) in volumes.iter().enumerate() {
            let records = signature_records(volume.as_slice()).expect("signed volume");
            assert_eq!(records.volume, index as u32 + 1);
            assert_eq!(records.signers, vec![pa, pb]);
            let statement = Statement::parse(&records.statement).expect("statement");
            assert_eq!(statement.volume, records.volume);
            assert_eq!(statement.header_len, records.header_len);
            assert_eq!(statement.end, records.chunk_end);
            assert_eq!(statement.last.is_some(), index + 1 == volumes.len());
            assert_eq!(records.signatures.len(), 2);
            for (armored, key) in records.signatures.iter().zip([pa, pb]) {
                sshsig::verify(armored, &records.statement, &key).expect("verifies");
            }
        }
    }

    #[test]
    fn an_unsigned_volume_has_no_records() {
        let volumes = seal(Sealer::new());
        assert!(matches!(
            signature_records(volumes[0].as_slice()),
            Err(Error::Unsigned { .. })
        ));
        let volumes = seal(Sealer::new().digests(false));
        assert!(matches!(
            signature_records(volumes[0].as_slice()),
            Err(Error::Unsigned { .. })
        ));
    }
}
