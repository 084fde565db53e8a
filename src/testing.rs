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
