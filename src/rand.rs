//! Where the random bytes of a container come from: the operating system,
//! or (for test vectors only) a fixed seed.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::Error;

/// Source of the file key, set id, ephemeral shares and salts.
pub(crate) enum Randomness {
    /// `getrandom`: the only source production code uses.
    Os,
    /// HMAC-SHA-256(seed, counter) blocks: reproducible containers for the
    /// test vectors. Never secure: anyone with the seed has the file key.
    Seeded {
        seed: Zeroizing<[u8; 32]>,
        counter: u64,
    },
}

impl Randomness {
    pub(crate) fn fill(&mut self, out: &mut [u8]) -> Result<(), Error> {
        match self {
            Randomness::Os => getrandom::fill(out).map_err(|err| {
                Error::Io(std::io::Error::other(format!(
                    "the operating system's random source failed: {err}"
                )))
            }),
            Randomness::Seeded { seed, counter } => {
                for block in out.chunks_mut(32) {
                    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&seed[..])
                        .expect("HMAC takes keys of any length");
                    mac.update(&counter.to_be_bytes());
                    *counter += 1;
                    let bytes = mac.finalize().into_bytes();
                    block.copy_from_slice(&bytes[..block.len()]);
                }
                Ok(())
            }
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<Zeroizing<[u8; N]>, Error> {
        let mut out = Zeroizing::new([0u8; N]);
        self.fill(&mut out[..])?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_reproducible_and_distinct_per_block() {
        let mut a = Randomness::Seeded {
            seed: Zeroizing::new([1; 32]),
            counter: 0,
        };
        let mut b = Randomness::Seeded {
            seed: Zeroizing::new([1; 32]),
            counter: 0,
        };
        let (x, y) = (
            a.array::<40>().expect("seeded"),
            b.array::<40>().expect("seeded"),
        );
        assert_eq!(*x, *y);
        assert_ne!(x[..32], a.array::<32>().expect("seeded")[..]);
    }

    #[test]
    fn os_randomness_is_not_constant() {
        let mut rng = Randomness::Os;
        let x = rng.array::<32>().expect("os rng");
        let y = rng.array::<32>().expect("os rng");
        assert_ne!(*x, *y);
    }
}
