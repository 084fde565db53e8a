//! Bech32 without BIP 173's length limit, as age encodes its keys: a
//! hybrid recipient (`age1pq1…`) is 1,959 characters and plugin keys can be
//! longer, so age uses the bech32 checksum with no code length. The
//! checksum constant is bech32's (not bech32m's); mixed case, non-zero
//! padding bits and strings over [`MAX_KEY_CHARS`] are refused.

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32, Checksum, Fe32, Fe1024, Hrp};
use zeroize::Zeroizing;

/// Longest key string accepted: well above the longest known key kind
/// (`age1tagpq1…`, about 2,000 characters), low enough that a hostile
/// recipients file cannot make a decode expensive.
pub(crate) const MAX_KEY_CHARS: usize = 8192;

/// The bech32 checksum with no length limit (age's `Bech32Long`).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Bech32Long {}

impl Checksum for Bech32Long {
    type MidstateRepr = u32;
    // The error-correction items are bech32's own; kuvert never corrects.
    type CorrectionField = Fe1024;
    const ROOT_GENERATOR: Self::CorrectionField = Fe1024::new([Fe32::P, Fe32::X]);
    const ROOT_EXPONENTS: std::ops::RangeInclusive<usize> = 24..=26;
    const CODE_LENGTH: usize = usize::MAX;
    const CHECKSUM_LENGTH: usize = Bech32::CHECKSUM_LENGTH;
    const GENERATOR_SH: [u32; 5] = Bech32::GENERATOR_SH;
    const TARGET_RESIDUE: u32 = Bech32::TARGET_RESIDUE;
}

/// Why a string is not a key: never holds the text (it may be a secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bech32Error {
    /// Longer than [`MAX_KEY_CHARS`].
    TooLong,
    /// Not bech32, mixed case, or the checksum fails.
    NotBech32,
    /// The bits that pad the data to whole bytes are not zero.
    Padding,
}

/// Decodes `text` (surrounding white space ignored) into its prefix,
/// lowercased, and its data bytes (wiped on drop: they may be a secret).
pub(crate) fn decode(text: &str) -> Result<(String, Zeroizing<Vec<u8>>), Bech32Error> {
    let text = text.trim();
    if text.len() > MAX_KEY_CHARS {
        return Err(Bech32Error::TooLong);
    }
    let parsed = CheckedHrpstring::new::<Bech32Long>(text).map_err(|_| Bech32Error::NotBech32)?;
    // BIP 173: the bits that pad the data to whole bytes must be zero.
    parsed
        .validate_segwit_padding()
        .map_err(|_| Bech32Error::Padding)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
    bytes.extend(parsed.byte_iter());
    Ok((parsed.hrp().to_lowercase(), bytes))
}

/// Encodes `bytes` under `hrp` in lower case (recipients).
///
/// # Panics
///
/// If `hrp` is not a valid bech32 prefix: callers pass constants or a
/// plugin name already checked.
pub(crate) fn encode_lower(hrp: &str, bytes: &[u8]) -> String {
    let hrp = Hrp::parse(hrp).expect("a valid bech32 prefix");
    bech32::encode_lower::<Bech32Long>(hrp, bytes).expect("no length limit")
}

/// Encodes `bytes` under `hrp` in upper case (identities), into a string
/// that is wiped on drop.
///
/// # Panics
///
/// As [`encode_lower`].
pub(crate) fn encode_upper(hrp: &str, bytes: &[u8]) -> Zeroizing<String> {
    let hrp = Hrp::parse(hrp).expect("a valid bech32 prefix");
    Zeroizing::new(bech32::encode_upper::<Bech32Long>(hrp, bytes).expect("no length limit"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_plain_bech32_on_short_keys() {
        // age's own test identity (age README).
        let age = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
        let (hrp, bytes) = decode(age).expect("age identity");
        assert_eq!(hrp, "age-secret-key-");
        assert_eq!(bytes.len(), 32);
        assert_eq!(encode_upper("AGE-SECRET-KEY-", &bytes).as_str(), age);
    }

    #[test]
    fn long_strings_round_trip() {
        let data: Vec<u8> = (0..1216u32).map(|i| (i * 7) as u8).collect();
        let text = encode_lower("age1pq", &data);
        assert_eq!(text.len(), 1959, "age's hybrid recipient length");
        let (hrp, back) = decode(&text).expect("round trip");
        assert_eq!((hrp.as_str(), back.as_slice()), ("age1pq", data.as_slice()));
    }

    #[test]
    fn refusals() {
        let text = encode_lower("age", &[7u8; 32]);
        let mut flipped = text.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'q' { b'p' } else { b'q' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(
            decode(&flipped).expect_err("checksum fails"),
            Bech32Error::NotBech32
        );
        let mixed = format!("A{}", &text[1..]);
        assert_eq!(
            decode(&mixed).expect_err("mixed case"),
            Bech32Error::NotBech32
        );
        let long = encode_lower("age", &vec![0u8; MAX_KEY_CHARS]);
        assert_eq!(decode(&long).expect_err("too long"), Bech32Error::TooLong);
    }
}
