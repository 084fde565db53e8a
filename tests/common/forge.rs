//! Damage that only a holder of the file key can do, built with an
//! independent implementation of the key schedule and chunk construction
//! (SPEC.md §5–§6) on the normal dependencies of the crate. The file key is
//! the one of SPEC.md §3.5: the X25519 stanza there wraps it for the identity
//! 01…01, so any header built around that stanza opens with that identity.
//!
//! A stanza is written here as its age line without the arrow, type and
//! arguments separated by single spaces (`X25519 <share>`), and a body.

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use kuvert::X25519Identity;
use sha2::Sha256;

pub const TAG: usize = kuvert::TAG_LEN;

pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => panic!("not hex: {b}"),
        })
        .collect();
    digits
        .chunks(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect()
}

pub fn array32(text: &str) -> [u8; 32] {
    hex(text).try_into().expect("32 bytes of hex")
}

pub const FK: &str = "221b4bf2002e2c2b2353681054427a0b";
pub const SID: &str = "27f450da63c4f0fd762a721e7160da7f32334e1f514cfede45f8d2b4ec72f0cc";
/// E, the ephemeral share, as the stanza's argument: unpadded base64.
pub const E_BASE64: &str = "vixAbNfKge5xgtMNJs+D6YHdN3YpvfE1FNYzTDWfmlQ";
pub const W: &str = "bd9e793f9edbacc4d9c8246fe20967d2b674ab7a853c79d9375ab441135be7ea";

/// The identity r = 01…01 of SPEC.md §3.5.
pub fn identity() -> X25519Identity {
    X25519Identity::from_bytes([1; 32])
}

/// The X25519 stanza of SPEC.md §3.5, which wraps FK for [`identity`].
pub fn x25519_stanza() -> (Vec<u8>, Vec<u8>) {
    (format!("X25519 {E_BASE64}").into_bytes(), hex(W))
}

/// A stanza's bytes (SPEC.md §3.2) from its line (type and arguments,
/// separated by single spaces) and body: argument count, each argument
/// with its u16 length, the body with its u16 length.
pub fn encode_stanza(line: &[u8], body: &[u8]) -> Vec<u8> {
    let args: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let mut out = vec![u8::try_from(args.len()).expect("at most 255 arguments")];
    for arg in args {
        out.extend_from_slice(
            &u16::try_from(arg.len())
                .expect("short argument")
                .to_be_bytes(),
        );
        out.extend_from_slice(arg);
    }
    out.extend_from_slice(&u16::try_from(body.len()).expect("short body").to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Encoded length of a stanza with this line and a body of `body` bytes.
pub fn stanza_len(line: &[u8], body: usize) -> usize {
    let args = line.split(|&b| b == b' ').count();
    1 + 2 * args + line.len() + 1 - args + 2 + body
}

pub fn hkdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF output length");
    out
}

/// The fields of a set part, and what a key holder can make from them.
#[derive(Clone)]
pub struct Set {
    pub set_id: [u8; 32],
    pub chunk_exp: u8,
    pub k: u64,
    pub stanzas: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Set {
    pub fn new(k: u64) -> Self {
        Set {
            set_id: array32(SID),
            chunk_exp: 12,
            k,
            stanzas: vec![x25519_stanza()],
        }
    }

    pub fn chunk_len(&self) -> usize {
        1 << self.chunk_exp
    }

    pub fn plain_len(&self) -> usize {
        self.chunk_len() - TAG
    }

    pub fn header_key(&self) -> [u8; 32] {
        hkdf(&hex(FK), &self.set_id, b"kuvert/v2 header")
    }

    pub fn payload_key(&self) -> [u8; 32] {
        hkdf(&hex(FK), &self.set_id, b"kuvert/v2 payload")
    }

    /// Header bytes [0, L) of volume `volume` with the given extension
    /// area, MAC included (SPEC.md §3, §5.1).
    pub fn header(&self, volume: u32, extensions: &[u8]) -> Vec<u8> {
        let stanzas: usize = self
            .stanzas
            .iter()
            .map(|(line, body)| stanza_len(line, body.len()))
            .sum();
        let len = 58 + stanzas + 8 + extensions.len() + 32;
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(b"\x89KUV\r\n\x1a\n");
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&u32::try_from(len).expect("small").to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&self.set_id);
        out.push(self.chunk_exp);
        out.extend_from_slice(&self.k.to_be_bytes());
        out.push(u8::try_from(self.stanzas.len()).expect("few stanzas"));
        for (line, body) in &self.stanzas {
            out.extend_from_slice(&encode_stanza(line, body));
        }
        out.extend_from_slice(&volume.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(
            &u16::try_from(extensions.len())
                .expect("small")
                .to_be_bytes(),
        );
        out.extend_from_slice(extensions);
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.header_key())
            .expect("HMAC takes any key length");
        mac.update(&out);
        let mac: [u8; 32] = mac.finalize().into_bytes().into();
        out.extend_from_slice(&mac);
        assert_eq!(out.len(), len);
        out
    }

    /// Chunk `g` sealed with nonce flag `flag` (SPEC.md §6.2).
    pub fn chunk(&self, g: u64, flag: u8, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&g.to_be_bytes());
        nonce[11] = flag;
        let key = self.payload_key();
        let mut out = plaintext.to_vec();
        let tag = ChaCha20Poly1305::new((&key).into())
            .encrypt_inout_detached(&nonce.into(), &[], out.as_mut_slice().into())
            .expect("small chunk");
        out.extend_from_slice(&tag);
        out
    }

    /// A volume: its header with `extensions`, zero padding to its own
    /// H, then `chunks` back to back.
    pub fn volume(&self, volume: u32, extensions: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = self.header(volume, extensions);
        out.resize(kuvert::padded_header_len(out.len() as u64) as usize, 0);
        for chunk in chunks {
            out.extend_from_slice(chunk);
        }
        out
    }

    /// Seals `plaintext` the way SPEC.md §6 prescribes, giving volume v
    /// the extension area `extensions(v)`.
    pub fn seal(&self, plaintext: &[u8], extensions: &dyn Fn(u32) -> Vec<u8>) -> Vec<Vec<u8>> {
        let p = self.plain_len();
        let n = plaintext.len().div_ceil(p).max(1) as u64;
        let mut volumes: Vec<Vec<Vec<u8>>> = Vec::new();
        for g in 0..n {
            let flag = if g + 1 == n {
                0x01
            } else if self.k != 0 && (g + 1) % self.k == 0 {
                0x02
            } else {
                0x00
            };
            let start = g as usize * p;
            let end = (start + p).min(plaintext.len());
            let chunk = self.chunk(g, flag, &plaintext[start..end]);
            let volume = g.checked_div(self.k).unwrap_or(0) as usize;
            if volumes.len() == volume {
                volumes.push(Vec::new());
            }
            volumes[volume].push(chunk);
        }
        volumes
            .iter()
            .enumerate()
            .map(|(index, chunks)| {
                let number = index as u32 + 1;
                self.volume(number, &extensions(number), chunks)
            })
            .collect()
    }
}
