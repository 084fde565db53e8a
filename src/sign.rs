//! Signed volumes (SPEC.md §14): Ed25519 signing keys, the statement a
//! volume's signatures are over, OpenSSH's SSHSIG format for them, and the
//! files that name trusted signers. Signatures are checked with the
//! signer's public key alone: no decryption key is needed, and
//! `ssh-keygen -Y verify` checks them too.

mod allowed_signers;
mod keys;
mod openssh;
pub mod sshsig;
pub mod statement;

pub use allowed_signers::{
    AllowedSigner, AllowedSigners, MAX_FILE_LEN, MAX_KEYS, SkippedLine, parse_allowed_signers,
};
pub(crate) use keys::refuse_as;
pub use keys::{BLOB_LEN, PUBLIC_LEN, SIGNATURE_LEN, SignerKey, SigningKey, VolumeSigner};
