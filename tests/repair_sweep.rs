//! A sweep of random scattered damage (zeroed sectors anywhere, the
//! header sector among them in half of the cases) over a 120 MB volume
//! with default parity: run on purpose, as `cargo test --release -p kuvert
//! --test repair_sweep -- --ignored --nocapture`. It prints, per rate, how
//! many damaged volumes every stripe could repair (at most m of its
//! sectors damaged) and how many the repair restored; it fails if a repair
//! reports success with bytes that differ, or misses at 2 % or 5 %.

mod common;

use std::io::{self, Write};

use kuvert::{MemorySink, Parity, Sealer, X25519Identity, repair_volume};

use common::parity::end_geometry;

const SECTOR: usize = 2048;
const SEEDS: u64 = 12;

fn seal() -> Vec<u8> {
    let identity = X25519Identity::from_bytes([3; 32]);
    let mut writer = Sealer::new()
        .recipient(identity.to_public())
        .chunk_size(65536)
        .parity(Parity::Percent(20))
        .seal(MemorySink::new())
        .expect("seal");
    let data: Vec<u8> = (0..100_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    writer.write_all(&data).expect("write");
    writer.finish().expect("finish").into_volumes().remove(0)
}

#[test]
#[ignore = "a sweep over 120 MB volumes: run on purpose"]
fn scattered_damage_sweep() {
    let volume = seal();
    let sectors = (volume.len() / SECTOR) as u64;
    let (_, m, l, n_d) = end_geometry(&volume);
    for rate in [0.02, 0.05, 0.08, 0.11] {
        let (mut possible, mut restored) = (0, 0);
        for seed in 0..SEEDS {
            let mut x = (seed + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ f64::to_bits(rate);
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut bad: Vec<u64> = (0..sectors)
                .filter(|_| (next() % 1_000_000) as f64 / 1e6 < rate)
                .collect();
            if seed % 2 == 0 && bad.first() != Some(&0) {
                bad.insert(0, 0);
            }
            let mut per_stripe = vec![0u64; l as usize];
            for &s in bad.iter().filter(|&&s| s < n_d + m * l) {
                let offset = if s < n_d { s } else { s - n_d };
                per_stripe[(offset % l) as usize] += 1;
            }
            let mut scratched = volume.clone();
            for &s in &bad {
                scratched[s as usize * SECTOR..][..SECTOR].fill(0);
            }
            let mut out = io::Cursor::new(Vec::new());
            let result = repair_volume(scratched.as_slice(), &mut out);
            if result.is_ok() {
                assert!(
                    out.into_inner() == volume,
                    "rate {rate} seed {seed}: Ok, but not the volume as sealed"
                );
                restored += 1;
            }
            if per_stripe.iter().all(|&n| n <= m) {
                possible += 1;
            }
        }
        println!(
            "rate {rate}: {possible}/{SEEDS} within every stripe's margin, {restored}/{SEEDS} restored"
        );
        if rate <= 0.05 {
            assert_eq!(restored, SEEDS, "rate {rate}");
        }
    }
}
