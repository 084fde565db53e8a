//! The mlkem768x25519 unwrap written out from the specifications (X-Wing as
//! in draft-ietf-hpke-pq-03 / filippo.io/hpke-pq, RFC 9180 base mode), with
//! no hpke crate: what a libcrux-ml-kem backend or an independent decoder
//! would write. Only ML-KEM-768 itself comes from a library (ml-kem here).

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Tag};
use hkdf::Hkdf;
use ml_kem::kem::Decapsulate;
use ml_kem::{FromSeed, MlKem768};
use sha2::Sha256;
use sha3::{Digest, Sha3_256};
use shake::{ExtendableOutput, Shake256, XofReader};
use x25519_dalek::{PublicKey, StaticSecret};

const XWING_LABEL: &[u8; 6] = br"\.//^\";
/// "HPKE" ‖ KEM 0x647A (MLKEM768-X25519) ‖ KDF 0x0001 (HKDF-SHA256) ‖ AEAD 0x0003 (ChaCha20Poly1305)
const SUITE_ID: [u8; 10] = [b'H', b'P', b'K', b'E', 0x64, 0x7a, 0x00, 0x01, 0x00, 0x03];

fn labeled_extract(salt: &[u8], label: &[u8], ikm: &[u8]) -> [u8; 32] {
    let mut input = Vec::new();
    input.extend_from_slice(b"HPKE-v1");
    input.extend_from_slice(&SUITE_ID);
    input.extend_from_slice(label);
    input.extend_from_slice(ikm);
    let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), &input);
    prk.into()
}

fn labeled_expand(prk: &[u8; 32], label: &[u8], info: &[u8], out: &mut [u8]) {
    let mut full = Vec::new();
    full.extend_from_slice(&(out.len() as u16).to_be_bytes());
    full.extend_from_slice(b"HPKE-v1");
    full.extend_from_slice(&SUITE_ID);
    full.extend_from_slice(label);
    full.extend_from_slice(info);
    Hkdf::<Sha256>::from_prk(prk).expect("32-byte prk").expand(&full, out).expect("len");
}

/// seed: the 32 bytes of AGE-SECRET-KEY-PQ-1…; enc: 1120 bytes; body: 32 bytes.
pub fn open(seed: &[u8; 32], enc: &[u8], body: &[u8], info: &[u8]) -> Option<[u8; 16]> {
    // X-Wing key expansion: SHAKE256(seed) -> d‖z (64) ‖ sk_X (32).
    let mut xof = Shake256::default();
    sha3::digest::Update::update(&mut xof, seed);
    let mut reader = xof.finalize_xof();
    let mut dz = [0u8; 64];
    reader.read(&mut dz);
    let mut sk_x = [0u8; 32];
    reader.read(&mut sk_x);
    let (dk_m, _ek_m) = MlKem768::from_seed(&dz.into());
    let sk_x = StaticSecret::from(sk_x);
    let pk_x = PublicKey::from(&sk_x);
    // X-Wing decapsulation.
    let ct_m: [u8; 1088] = enc[..1088].try_into().ok()?;
    let ct_x: [u8; 32] = enc[1088..].try_into().ok()?;
    let ss_m = dk_m.decapsulate(&ct_m.into());
    let ss_x = sk_x.diffie_hellman(&PublicKey::from(ct_x));
    let mut h = Sha3_256::new();
    h.update(ss_m);
    h.update(ss_x.as_bytes());
    h.update(ct_x);
    h.update(pk_x.as_bytes());
    h.update(XWING_LABEL);
    let ss: [u8; 32] = h.finalize().into();
    // RFC 9180 §5.1 KeySchedule, mode_base (0x00), psk = psk_id = "".
    let psk_id_hash = labeled_extract(b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract(b"", b"info_hash", info);
    let mut context = vec![0x00];
    context.extend_from_slice(&psk_id_hash);
    context.extend_from_slice(&info_hash);
    let secret = labeled_extract(&ss, b"secret", b"");
    let mut key = [0u8; 32];
    labeled_expand(&secret, b"key", &context, &mut key);
    let mut base_nonce = [0u8; 12];
    labeled_expand(&secret, b"base_nonce", &context, &mut base_nonce);
    // Open, sequence number 0: nonce = base_nonce.
    let mut fk = [0u8; 16];
    fk.copy_from_slice(&body[..16]);
    let tag = Tag::try_from(&body[16..]).ok()?;
    ChaCha20Poly1305::new(&key.into())
        .decrypt_inout_detached(&base_nonce.into(), &[], (&mut fk[..]).into(), &tag)
        .ok()?;
    Some(fk)
}
