//! Hooks for tests that craft payloads the public sealer refuses to write.
//! Not part of the API.
//!
//! The public sealer only writes a stream ([`Sealer::seal`]) or a valid
//! archive ([`Sealer::seal_archive`]). Tests of the decoder also need an
//! archive-kind payload whose content is any bytes at all (a hostile index,
//! links that escape, an index that lies about the tar stream), and
//! payloads whose prefix (SPEC.md §6.7) breaks a rule. The sets these
//! hooks write are sealed and authenticated like any other: only a key
//! holder's mistake or malice can produce them.

use crate::error::Error;
use crate::format::PayloadKind;
use crate::seal::{SealWriter, Sealer};
use crate::volumes::VolumeSink;

/// Starts sealing a payload of `kind` whose content is whatever is written
/// next, valid for that kind or not (for an archive: bytes that need not be
/// TAR ‖ INDEX ‖ TRAILER).
///
/// # Errors
///
/// As [`Sealer::seal`].
pub fn seal_content<S: VolumeSink>(
    sealer: &Sealer,
    sink: S,
    kind: PayloadKind,
) -> Result<SealWriter<S>, Error> {
    sealer.seal_kind(sink, kind)
}

/// Starts sealing a payload with no prefix written: the bytes written are
/// the whole payload, so the first four are its prefix (SPEC.md §6.7).
///
/// # Errors
///
/// As [`Sealer::seal`].
pub fn seal_raw_payload<S: VolumeSink>(sealer: &Sealer, sink: S) -> Result<SealWriter<S>, Error> {
    sealer.seal_unprefixed(sink)
}

/// Argon2id costs with no check at all, even below what the library
/// writes, for sets that open with a weak-cost warning.
#[cfg(feature = "insecure-test-hooks")]
#[cfg_attr(docsrs, doc(cfg(feature = "insecure-test-hooks")))]
pub fn argon2_params_unchecked(memory_kib: u32, passes: u32, lanes: u32) -> crate::Argon2Params {
    crate::Argon2Params::unchecked(memory_kib, passes, lanes)
}

/// One stanza in age's model, as the CCTV harness (tests/cctv.rs) reads it
/// from an age header: the type, the arguments after it, the body.
#[cfg(feature = "insecure-test-hooks")]
#[cfg_attr(docsrs, doc(cfg(feature = "insecure-test-hooks")))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaParts {
    /// Argument 0, the type (`X25519`).
    pub kind: String,
    /// Arguments 1.. as text.
    pub args: Vec<String>,
    /// The decoded body.
    pub body: Vec<u8>,
}

#[cfg(feature = "insecure-test-hooks")]
impl StanzaParts {
    fn to_stanza(&self) -> crate::format::Stanza {
        crate::format::Stanza {
            at: 0,
            kind: self.kind.clone(),
            args: self.args.clone(),
            body: self.body.clone(),
        }
    }
}

/// The stanza's bytes in a kuvert header (SPEC.md §3.2), or why it cannot
/// be written there (a bound of §3.2).
///
/// # Errors
///
/// The broken bound, as text.
#[cfg(feature = "insecure-test-hooks")]
#[cfg_attr(docsrs, doc(cfg(feature = "insecure-test-hooks")))]
pub fn encode_stanza(stanza: &StanzaParts) -> Result<Vec<u8>, &'static str> {
    let stanza = stanza.to_stanza();
    if let Some(reason) = stanza.unencodable() {
        return Err(reason);
    }
    let mut out = Vec::with_capacity(stanza.encoded_len());
    stanza.encode_into(&mut out);
    Ok(out)
}

/// Parses exactly one stanza's bytes as a header parser reads them.
///
/// # Errors
///
/// [`Error::MalformedHeader`] at the offending byte (input 1), including
/// bytes after the stanza.
#[cfg(feature = "insecure-test-hooks")]
#[cfg_attr(docsrs, doc(cfg(feature = "insecure-test-hooks")))]
pub fn decode_stanza(bytes: &[u8]) -> Result<StanzaParts, Error> {
    let input = crate::Location::input(1);
    let mut reader = crate::format::Reader::new(bytes, &input);
    let stanza = crate::format::parse_stanza(&mut reader)?;
    reader.finish("bytes after the stanza")?;
    Ok(StanzaParts {
        kind: stanza.kind,
        args: stanza.args,
        body: stanza.body,
    })
}

/// The stanza half of opening (SPEC.md §4.4) without the kuvert header MAC:
/// kuvert's parse-time checks of every stanza, then each stanza with each
/// identity, in order. What the CCTV vectors test.
///
/// # Errors
///
/// [`Error::MalformedHeader`] (input 1) if a stanza of a known type breaks
/// its rules, [`Error::NoMatchingKey`] if no identity opens any stanza.
#[cfg(feature = "insecure-test-hooks")]
#[cfg_attr(docsrs, doc(cfg(feature = "insecure-test-hooks")))]
pub fn unwrap_stanzas(
    stanzas: &[StanzaParts],
    identities: &[crate::Identity],
) -> Result<zeroize::Zeroizing<[u8; 16]>, Error> {
    let stanzas: Vec<crate::format::Stanza> = stanzas.iter().map(StanzaParts::to_stanza).collect();
    crate::keys::unwrap_stanzas(&stanzas, identities)
}

/// The parity geometry and codec of SPEC.md §16, before the sealer uses
/// them (issue 12): for the vectors of tests/vectors/parity-codec and the
/// throughput measurement.
pub mod parity {
    pub use crate::parity::codec::BATCH_STRIPES;
    pub use crate::parity::geometry::{CODEC_LEOPARD_HIGH_RATE, DIGEST_GROUP_SECTORS};
    pub use crate::parity::{
        GEOMETRY_BODY_LEN, LAYERS, MAX_PERCENT, MIN_PERCENT, ParityError, ParityGeometry, Place,
        SectorChecks, StripeDecoder, StripeEncoder, encode_parity, restore,
    };
}

/// Parity volumes over bytes that are not volumes (SPEC.md §17.7's
/// vectors): written and rebuilt without reading any header.
pub mod parity_volumes {
    use std::io::Cursor;

    use crate::error::Error;
    use crate::parity::across::ParitySet;

    /// The P parity volumes of `data` (volume 1 first) under set id `set_id`.
    ///
    /// # Errors
    ///
    /// As [`write_parity_volumes`](crate::write_parity_volumes).
    pub fn encode(data: &[Vec<u8>], set_id: [u8; 32], parity: u16) -> Result<Vec<Vec<u8>>, Error> {
        let lens: Vec<u64> = data.iter().map(|v| v.len() as u64).collect();
        let mut outs: Vec<Cursor<Vec<u8>>> = (0..parity).map(|_| Cursor::new(Vec::new())).collect();
        let mut targets: Vec<(u16, &mut Cursor<Vec<u8>>)> = outs
            .iter_mut()
            .enumerate()
            .map(|(q, out)| (q as u16 + 1, out))
            .collect();
        crate::parity::across::write::encode_set(data, &lens, set_id, parity, &mut targets)?;
        Ok(outs.into_iter().map(Cursor::into_inner).collect())
    }

    /// Data volume `volume` rebuilt from `data` (by number, `None` where
    /// missing) and `parity`.
    ///
    /// # Errors
    ///
    /// As [`ParitySet::rebuild`].
    pub fn rebuild(
        data: Vec<Option<Vec<u8>>>,
        parity: Vec<Vec<u8>>,
        volume: u32,
    ) -> Result<Vec<u8>, Error> {
        let set = ParitySet::by_number(data, parity)?;
        let mut out = Vec::new();
        set.rebuild(volume, &mut out)?;
        Ok(out)
    }
}
