//! Signing with a key held by ssh-agent (draft-miller-ssh-agent, OpenSSH
//! `authfd.h`), so an encrypted OpenSSH key or a key that never leaves the
//! agent signs volumes. Only `ssh-ed25519` keys: `sk-` keys sign other bytes.
//! Every reply is bounded, and kuvert checks each signature it gets.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::keys::{SIGNATURE_LEN, SSH_ED25519, SignerKey, VolumeSigner};
use super::wire::{Fields, put_string};
use crate::error::{Error, KeyError};

const REQUEST_IDENTITIES: u8 = 11;
const IDENTITIES_ANSWER: u8 = 12;
const SIGN_REQUEST: u8 = 13;
const SIGN_RESPONSE: u8 = 14;
const FAILURE: u8 = 5;
/// Largest reply read: a list of many keys fits, a hostile agent cannot
/// make kuvert allocate more.
const MAX_REPLY: usize = 64 * 1024;
/// An agent that answers nothing for this long is given up on.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable that names the agent's socket.
pub const AUTH_SOCK_ENV: &str = "SSH_AUTH_SOCK";

fn truncated() -> Error {
    agent_error("the agent's reply ends inside a field")
}

fn agent_error(reason: &'static str) -> Error {
    Error::key(KeyError::Signing {
        what: "ssh-agent key",
        reason,
    })
}

/// A signing key held by ssh-agent.
#[derive(Debug)]
pub struct AgentSigner {
    socket: PathBuf,
    key: SignerKey,
}

/// One of the agent's `ssh-ed25519` keys, with its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentKey {
    /// The public key.
    pub key: SignerKey,
    /// The agent's comment for it (often the key file's path), as sent.
    pub comment: String,
}

impl AgentSigner {
    /// The agent's key `key`, through the socket `$SSH_AUTH_SOCK`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] if the variable is unset or the agent does
    /// not hold the key; [`Error::Io`] if the agent cannot be reached.
    pub fn from_env(key: &SignerKey) -> Result<Self, Error> {
        let socket = std::env::var_os(AUTH_SOCK_ENV)
            .ok_or_else(|| agent_error("SSH_AUTH_SOCK is not set: no ssh-agent to ask"))?;
        Self::at(Path::new(&socket), key)
    }

    /// The agent's key `key`, through the socket at `socket`.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn at(socket: &Path, key: &SignerKey) -> Result<Self, Error> {
        if !list_keys(socket)?.iter().any(|held| held.key == *key) {
            return Err(agent_error("the agent does not hold this key"));
        }
        Ok(AgentSigner {
            socket: socket.to_owned(),
            key: *key,
        })
    }
}

/// The `ssh-ed25519` keys the agent at `socket` holds; keys of other
/// types are left out.
///
/// # Errors
///
/// [`Error::Io`] if the agent cannot be reached, [`Error::InvalidKey`] if
/// its reply breaks the protocol.
pub fn list_keys(socket: &Path) -> Result<Vec<AgentKey>, Error> {
    let reply = request(socket, REQUEST_IDENTITIES, &[])?;
    let mut fields = Fields::new(&reply, truncated);
    if fields.take(1)?[0] != IDENTITIES_ANSWER {
        return Err(agent_error("the agent did not list its keys"));
    }
    let count = fields.u32()? as usize;
    // Each key takes at least 8 bytes: a bound before any allocation.
    if count > fields.bytes.len() / 8 {
        return Err(agent_error("the agent's key count exceeds its reply"));
    }
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        let blob = fields.string()?;
        let comment = fields.string()?;
        if let Ok(key) = SignerKey::from_blob(blob) {
            keys.push(AgentKey {
                key,
                comment: String::from_utf8_lossy(comment).into_owned(),
            });
        }
    }
    if !fields.bytes.is_empty() {
        return Err(agent_error("bytes after the agent's key list"));
    }
    Ok(keys)
}

impl VolumeSigner for AgentSigner {
    fn public_key(&self) -> &SignerKey {
        &self.key
    }

    fn sign(&self, signed_data: &[u8]) -> Result<[u8; SIGNATURE_LEN], Error> {
        let mut body = Vec::with_capacity(4 + 51 + 4 + signed_data.len() + 4);
        put_string(&mut body, &self.key.blob());
        put_string(&mut body, signed_data);
        body.extend_from_slice(&0u32.to_be_bytes());
        let reply = request(&self.socket, SIGN_REQUEST, &body)?;
        let mut fields = Fields::new(&reply, truncated);
        match fields.take(1)?[0] {
            SIGN_RESPONSE => {}
            FAILURE => return Err(agent_error("the agent refused to sign")),
            _ => return Err(agent_error("the agent's reply is not a signature")),
        }
        let mut signature = Fields::new(fields.string()?, truncated);
        if !fields.bytes.is_empty() {
            return Err(agent_error("bytes after the agent's signature"));
        }
        if signature.string()? != SSH_ED25519.as_bytes() {
            return Err(agent_error("the agent's signature is not ssh-ed25519"));
        }
        let out: [u8; SIGNATURE_LEN] = signature
            .string()?
            .try_into()
            .map_err(|_| agent_error("the agent's signature is not 64 bytes"))?;
        if !signature.bytes.is_empty() {
            return Err(agent_error("bytes after the agent's signature"));
        }
        Ok(out)
    }
}

/// One request frame (`u32 length ‖ type ‖ body`) and its reply's bytes
/// (type first), on a fresh connection.
fn request(socket: &Path, kind: u8, body: &[u8]) -> Result<Vec<u8>, Error> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.extend_from_slice(&(1 + body.len() as u32).to_be_bytes());
    frame.push(kind);
    frame.extend_from_slice(body);
    stream.write_all(&frame)?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_REPLY {
        return Err(agent_error("the agent's reply is empty or over 64 KiB"));
    }
    let mut reply = vec![0u8; len];
    stream.read_exact(&mut reply)?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SigningKey;
    use std::os::unix::net::UnixListener;

    /// A scripted agent: answers each connection with the next reply.
    fn fake_agent(
        replies: Vec<Vec<u8>>,
    ) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<()>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let handle = std::thread::spawn(move || {
            for reply in replies {
                let (mut stream, _) = listener.accept().expect("accept");
                let mut len = [0u8; 4];
                stream.read_exact(&mut len).expect("request length");
                let mut request = vec![0u8; u32::from_be_bytes(len) as usize];
                stream.read_exact(&mut request).expect("request");
                let _ = stream.write_all(&reply);
            }
        });
        (dir, path, handle)
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    fn identities(keys: &[&SignerKey]) -> Vec<u8> {
        let mut body = vec![IDENTITIES_ANSWER];
        body.extend_from_slice(&(keys.len() as u32).to_be_bytes());
        for key in keys {
            put_string(&mut body, &key.blob());
            put_string(&mut body, b"comment");
        }
        frame(&body)
    }

    #[test]
    fn transcripts() {
        let key = SigningKey::from_seed([2; 32]);
        let other = SigningKey::from_seed([3; 32]);
        let data = [7u8; 98];
        let mut response = vec![SIGN_RESPONSE];
        let mut sig = Vec::new();
        put_string(&mut sig, SSH_ED25519.as_bytes());
        put_string(&mut sig, &key.sign_raw(&data));
        put_string(&mut response, &sig);
        let (_dir, path, handle) = fake_agent(vec![
            identities(&[other.public(), key.public()]),
            frame(&response),
            frame(&[FAILURE]),
            identities(&[other.public()]),
            frame(&[IDENTITIES_ANSWER, 0xff, 0xff, 0xff, 0xff]),
            (MAX_REPLY as u32 + 1).to_be_bytes().to_vec(),
        ]);
        let signer = AgentSigner::at(&path, key.public()).expect("the agent holds it");
        assert_eq!(signer.sign(&data).expect("signs"), key.sign_raw(&data));
        assert!(matches!(
            signer.sign(&data),
            Err(Error::InvalidKey {
                reason: KeyError::Signing {
                    reason: "the agent refused to sign",
                    ..
                }
            })
        ));
        assert!(matches!(
            AgentSigner::at(&path, key.public()),
            Err(Error::InvalidKey {
                reason: KeyError::Signing {
                    reason: "the agent does not hold this key",
                    ..
                }
            })
        ));
        assert!(list_keys(&path).is_err(), "a count past the reply");
        assert!(list_keys(&path).is_err(), "a reply over 64 KiB");
        handle.join().expect("agent thread");
    }
}
