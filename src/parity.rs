//! Reed–Solomon parity inside a volume (SPEC.md §16): the layered geometry,
//! the Leopard GF(2^16) high-rate codec over 2,048-byte sectors, and the
//! seal's parity pass over a written volume ([`pass`]). Tests reach the
//! codec through [`crate::testing::parity`].

pub(crate) mod across;
pub(crate) mod checks;
pub(crate) mod codec;
mod digest_stream;
pub(crate) mod geometry;
pub(crate) mod pass;

pub use checks::{CHECKS_PER_SECTOR, SectorChecks, parse_check_sector, sector_crc};
pub use codec::{StripeDecoder, StripeEncoder, encode_parity, restore};
pub use geometry::{GEOMETRY_BODY_LEN, LAYERS, MAX_PERCENT, MIN_PERCENT, ParityGeometry, Place};

/// How much Reed–Solomon parity a sealer adds to each volume (SPEC.md §16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Parity {
    /// No parity: the trailer has no bulk.
    #[default]
    None,
    /// Parity layers of this many percent of the data layers (3..=200;
    /// dvdisaster's "redundancy"): 20 gives 43 parity layers of 255.
    Percent(u16),
}

/// What can go wrong computing a parity geometry or restoring stripes.
///
/// The integration maps these onto [`crate::Error`] with the volume and
/// byte offset it knows (a geometry body is part of a trailer record).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParityError {
    /// A redundancy percentage outside [`MIN_PERCENT`]..=[`MAX_PERCENT`].
    #[error("parity of {percent} % is outside 3..=200 %")]
    Percent {
        /// The percentage asked for.
        percent: u16,
    },
    /// A data span of no sectors, or one so large that its layer length or
    /// parity digest block leaves the geometry body's fields.
    #[error("a data span of {data_sectors} sectors cannot carry parity")]
    DataSpan {
        /// Sectors in the data span.
        data_sectors: u64,
    },
    /// A 56-byte geometry body breaks a rule of SPEC.md §16.5.
    #[error("malformed parity geometry at byte {offset} of its body: {reason}")]
    Body {
        /// Byte of the body where the offending field starts.
        offset: usize,
        /// Which rule was broken.
        reason: &'static str,
    },
    /// No data span of any length gives a volume of this length at this
    /// percentage (SPEC.md §16.6).
    #[error("no parity geometry at {percent} % gives a volume of {volume_len} bytes")]
    NoGeometry {
        /// The volume length, in bytes.
        volume_len: u64,
        /// The percentage from the header.
        percent: u16,
    },
    /// Shards handed to the codec do not fit its geometry: a caller's bug,
    /// never a property of untrusted input.
    #[error("shards do not fit the parity geometry: {reason}")]
    Shards {
        /// What does not fit.
        reason: &'static str,
    },
    /// More sectors of one stripe group are lost than it has parity sectors.
    #[error("stripe {stripe} lost {lost} sectors, more than its {m} parity sectors")]
    Unrecoverable {
        /// The first stripe of the group (all its stripes lost the same layers).
        stripe: u64,
        /// Sectors lost in each stripe of the group.
        lost: usize,
        /// Parity sectors per stripe.
        m: u16,
    },
}
