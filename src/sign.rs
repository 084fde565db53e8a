//! Signed volumes (SPEC.md §14): Ed25519 signing keys, the statement a
//! volume's signatures are over, OpenSSH's SSHSIG format for them, and the
//! files that name trusted signers. Signatures are checked with the
//! signer's public key alone: no decryption key is needed, and
//! `ssh-keygen -Y verify` checks them too.

#[cfg(all(unix, feature = "ssh-agent"))]
mod agent;
mod allowed_signers;
mod keys;
mod openssh;
pub mod sshsig;
pub mod statement;
mod wire;

pub use allowed_signers::{
    AllowedSigner, AllowedSigners, MAX_FILE_LEN, MAX_KEYS, SkippedLine, parse_allowed_signers,
};
pub(crate) use keys::refuse_as;

#[cfg(all(unix, feature = "ssh-agent"))]
#[cfg_attr(docsrs, doc(cfg(all(unix, feature = "ssh-agent"))))]
pub use agent::{AUTH_SOCK_ENV, AgentKey, AgentSigner, list_keys as agent_keys};
pub use keys::{BLOB_LEN, PUBLIC_LEN, SIGNATURE_LEN, SignerKey, SigningKey, VolumeSigner};
