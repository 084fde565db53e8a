//! Reading a volume's header without any key (SPEC.md §7.1): [`inspect`]
//! for callers, [`read_header`] for opening and verifying. It sits above
//! [`crate::keys`], since it checks the stanzas, and below opening and
//! verifying, which start here.

use crate::error::{Error, Volume};
use crate::format::{self, Header, PREAMBLE_LEN, SET_ID_LEN};
use crate::keys::{self, PostQuantum};
use crate::volumes::{VolumeSource, location, read_at};

/// What a volume's header says, read without any key.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Format version (always 2 here).
    pub version: u16,
    /// Random id shared by every volume of the set.
    pub set_id: [u8; SET_ID_LEN],
    /// This volume's number, from 1 (not authenticated without a key).
    pub volume: u32,
    /// Ciphertext chunk size in bytes.
    pub chunk_size: usize,
    /// Chunks in every volume but the last; 0 if the set is not split.
    pub chunks_per_volume: u64,
    /// Recipient stanza types, in header order.
    pub stanza_types: Vec<String>,
    /// The signer block's keys, in order (SPEC.md §3.2); empty if the set
    /// is not signed. Not checked without a key or a signature: what the
    /// header claims.
    pub signers: Vec<crate::sign::SignerKey>,
    /// Padded header length: offset of the first chunk.
    pub header_len: u64,
    /// Length of the volume in bytes.
    pub len: u64,
    /// Whether the set flag TRAILERS says every volume ends with a trailer
    /// of keyless digests (SPEC.md §13).
    pub digests: bool,
    /// Where the volume's chunks end (E), if it has a volume trailer that
    /// checks (SPEC.md §13; unauthenticated without a key).
    pub chunk_end: Option<u64>,
}

impl VolumeInfo {
    /// Whether the set was sealed with a volume size.
    pub fn is_split(&self) -> bool {
        self.chunks_per_volume != 0
    }

    /// Whether the volume holds as many chunks as a non-final volume: if
    /// not, it can only be the last volume of its set.
    pub fn is_full(&self) -> bool {
        let full = self
            .chunks_per_volume
            .checked_mul(self.chunk_size as u64)
            .and_then(|data| data.checked_add(self.header_len));
        self.chunks_per_volume != 0 && full == Some(self.chunk_end.unwrap_or(self.len))
    }

    /// Whether the set resists an attacker with a quantum computer, as far
    /// as its stanza types tell (SPEC.md §4.7): only if every stanza is
    /// post-quantum or a passphrase.
    pub fn post_quantum(&self) -> PostQuantum {
        PostQuantum::of(self.stanza_types.iter().map(String::as_str))
    }

    /// Whether a passphrase stanza sits beside public-key stanzas: then the
    /// set carries no proof that its sender knew the passphrase.
    pub fn passphrase_is_unauthenticated(&self) -> bool {
        let passphrase = self.stanza_types.iter().any(|t| t == "argon2id");
        passphrase && self.stanza_types.len() > 1
    }
}

/// Reads a volume's header without any key (SPEC.md §3).
///
/// # Errors
///
/// [`Error::NotKuvert`], [`Error::UnsupportedVersion`],
/// [`Error::MalformedHeader`] or [`Error::Read`], each at `input 1` and
/// named after the source.
pub fn inspect<S: VolumeSource + ?Sized>(volume: &S) -> Result<VolumeInfo, Error> {
    let (mut header, len) = read_header(volume, 1)?;
    // Informative: a trailer that does not check says nothing of E.
    let chunk_end = read_trailer(
        volume,
        &mut header,
        len,
        &location(volume, Volume::Input(1)),
    )
    .ok()
    .filter(|_| header.trailer.is_some());
    let geometry = header.geometry();
    Ok(VolumeInfo {
        version: format::FORMAT_VERSION,
        set_id: header.set.set_id,
        volume: header.volume,
        chunk_size: geometry.chunk_len(),
        chunks_per_volume: geometry.chunks_per_volume,
        stanza_types: header.set.stanzas.iter().map(|s| s.kind.clone()).collect(),
        signers: header.set.signers.clone(),
        header_len: geometry.data_offset,
        len,
        digests: header.set.trailers,
        chunk_end,
    })
}

/// Reads, bounds and parses one volume's header (SPEC.md §7.1), checks its
/// stanzas and its padding, and returns it with the volume's length. A
/// trailer is read by [`read_trailer`], once the header is trusted.
/// `input` is the volume's position among those given, from 1: errors name
/// the volume by it (and by the source's name), since its number is not
/// trusted before the header authenticates.
///
/// # Errors
///
/// As [`inspect`].
pub(crate) fn read_header<S: VolumeSource + ?Sized>(
    source: &S,
    input: usize,
) -> Result<(Header, u64), Error> {
    let volume = Volume::Input(input);
    let origin = location(source, volume);
    let len = source.size().map_err(|source| Error::Read {
        at: origin.clone(),
        source,
    })?;
    let mut preamble = [0u8; PREAMBLE_LEN];
    let available = len.min(PREAMBLE_LEN as u64) as usize;
    read_at(source, &mut preamble[..available], 0, volume, None)?;
    let header_len = format::parse_preamble(&preamble[..available], &origin)?;
    if u64::from(header_len) > len {
        return Err(Error::malformed(
            &origin,
            10,
            "header runs past the end of the volume",
        ));
    }
    let mut bytes = vec![0u8; header_len as usize];
    read_at(source, &mut bytes, 0, volume, None)?;
    let header = format::parse_header(&bytes, &origin)?;
    keys::check_stanzas(&header.set.stanzas, &header.origin)?;

    let data_offset = header.geometry().data_offset;
    if len < data_offset {
        return Err(Error::malformed(
            &origin,
            len,
            "volume ends inside the header padding",
        ));
    }
    let mut padding = vec![0u8; (data_offset - u64::from(header_len)) as usize];
    read_at(source, &mut padding, header_len.into(), volume, None)?;
    if let Some(at) = padding.iter().position(|&b| b != 0) {
        return Err(Error::malformed(
            &origin,
            u64::from(header_len) + at as u64,
            "header padding is not zero",
        ));
    }
    Ok((header, len))
}

/// Reads and checks the trailer of a volume `len` bytes long whose header
/// says it has one (SPEC.md §13.3), and keeps it in `header`; returns E,
/// the end of the volume's chunks, which from then on stands for the
/// volume's length (§7.2 steps 5 and 6). Volumes without the TRAILERS
/// flag return `len` unchanged. `at` names the volume in errors: by
/// number once its header authenticated, by input position before.
///
/// # Errors
///
/// [`Error::Truncated`], [`Error::MalformedTrailer`], [`Error::Read`].
pub(crate) fn read_trailer<S: VolumeSource + ?Sized>(
    source: &S,
    header: &mut Header,
    len: u64,
    at: &crate::error::Location,
) -> Result<u64, Error> {
    if !header.set.trailers {
        return Ok(len);
    }
    let trailer = crate::trailer::read_trailer(source, header, len, at)?;
    let chunk_end = trailer.chunk_end;
    header.trailer = Some(trailer);
    Ok(chunk_end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Argon2Params, Passphrase, X25519Identity};
    use crate::seal::tests::seal;
    use crate::{Location, MemorySink, Sealer};

    #[test]
    fn inspect_reads_what_the_sealer_wrote() {
        let identity = X25519Identity::generate().expect("os randomness");
        let volumes = seal(&identity, &[1u8; 20_000], 4096, Some(2048 + 3 * 4096));
        assert_eq!(volumes.len(), 2);
        let first = inspect(&volumes[0]).expect("inspect");
        let second = inspect(&volumes[1]).expect("inspect");
        assert_eq!(
            (
                first.version,
                first.volume,
                first.chunk_size,
                first.chunks_per_volume
            ),
            (2, 1, 4096, 3)
        );
        assert_eq!(first.stanza_types, ["X25519"]);
        assert_eq!((first.header_len, first.len), (2048, 2048 + 3 * 4096));
        assert_eq!(second.set_id, first.set_id);
        assert_eq!(second.volume, 2);
        assert!(first.is_split() && first.is_full());
        assert!(second.is_split() && !second.is_full());
        assert!(!first.passphrase_is_unauthenticated());

        let unsplit = inspect(&seal(&identity, b"x", 4096, None)[0]).expect("inspect");
        assert!(!unsplit.is_split() && !unsplit.is_full());
    }

    #[test]
    fn a_passphrase_beside_a_key_is_flagged() {
        let identity = X25519Identity::generate().expect("os randomness");
        let mut writer = Sealer::new()
            .recipient(identity.to_public())
            .passphrase(Passphrase::new("kuvert"))
            .argon2_params(Argon2Params::MINIMUM)
            .seal(MemorySink::new())
            .expect("seal");
        std::io::Write::write_all(&mut writer, b"x").expect("write");
        let volumes = writer.finish().expect("finish").into_volumes();
        let info = inspect(&volumes[0]).expect("inspect");
        assert_eq!(info.stanza_types, ["X25519", "argon2id"]);
        assert!(info.passphrase_is_unauthenticated());
    }

    #[test]
    fn padding_must_be_there_and_zero() {
        let identity = X25519Identity::generate().expect("os randomness");
        let volume = seal(&identity, b"x", 4096, None).remove(0);
        let (header, len) = read_header(&volume, 1).expect("read");
        assert_eq!(len, volume.len() as u64);
        let header_len = header.bytes.len();
        assert!(header_len < 2048);

        let mut dirty = volume.clone();
        dirty[2047] = 1;
        assert!(matches!(
            read_header(&dirty, 3),
            Err(Error::MalformedHeader {
                at,
                reason: "header padding is not zero"
            }) if at == Location::input(3).byte(2047)
        ));
        assert!(matches!(
            read_header(&volume[..2000], 1),
            Err(Error::MalformedHeader {
                at: Location {
                    offset: Some(2000),
                    ..
                },
                reason: "volume ends inside the header padding",
            })
        ));
        assert!(matches!(
            read_header(&volume[..header_len - 1], 1),
            Err(Error::MalformedHeader {
                at: Location {
                    offset: Some(10),
                    ..
                },
                reason: "header runs past the end of the volume",
            })
        ));
        assert!(matches!(
            read_header(&volume[..5], 2),
            Err(Error::NotKuvert { at })
                if at == Location::input(2)
        ));
    }
}
