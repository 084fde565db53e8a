//! What the default parity (`--parity 20`) costs and survives on every
//! disc preset, as a markdown table: the full volume's length, the payload
//! one volume carries, the parity's share of the volume and the longest
//! burst of unreadable sectors it repairs (SPEC.md §16.9).
//!
//! ```text
//! cargo run --release --example parity_table
//! ```
//!
//! Everything comes from the library: the presets ([`kuvert::media`]), the
//! sealer's plan (how many chunks fit with the parity inside the size) and
//! the parity geometry of that volume length. The payload is for one
//! X25519 recipient, 64 KiB chunks, digests on and `--pad none` (Padmé
//! padding takes up to 3 % of it back; a hybrid recipient's larger header
//! can cost one chunk).

use kuvert::testing::parity::{DIGEST_GROUP_SECTORS, ParityGeometry};
use kuvert::{Padding, Parity, Sealer, X25519Identity, media};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// The default parity of the disc presets, in percent (README.md, `seal --parity`).
const DEFAULT_PERCENT: u16 = 20;
const SECTOR: u64 = 2048;
const MIB: f64 = 1_048_576.0;

fn main() -> Result<()> {
    let recipient = X25519Identity::from_bytes([7; 32]).to_public();
    println!(
        "| preset | volume bytes | payload bytes | k + m | L | parity of the volume | burst survived, anywhere | burst inside one region |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for preset in media::PRESETS.iter().filter(|p| p.name != "fat32") {
        let sealer = Sealer::new()
            .recipient(recipient.clone())
            .volume_size(preset.volume_size)
            .pad(Padding::None)
            .parity(Parity::Percent(DEFAULT_PERCENT));
        let payload = largest_single_volume_payload(&sealer, preset.volume_size)?;
        let volume_len = sealer
            .plan(payload)?
            .volume_len(1)
            .ok_or("a plan has a first volume")?;
        // Two spans can give one length (SPEC.md §16.6); a full volume is
        // far past the small rule, so the last candidate is ours.
        let geometry = ParityGeometry::for_volume_len(volume_len, DEFAULT_PERCENT)?
            .pop()
            .ok_or("a sealed length has a geometry")?;
        let parity_sectors = geometry.parity_sectors()
            + geometry.digest_block_sectors()
            + geometry.check_block_sectors();
        let burst = geometry.burst_bound();
        let region = geometry.burst_bound_within_region();
        println!(
            "| {} | {} | {} | {} + {} | {} | {:.1} % | {} sectors, {:.0} MiB | {} sectors, {:.0} MiB |",
            preset.name,
            group(volume_len),
            group(payload),
            geometry.k(),
            geometry.m(),
            group(u64::from(geometry.layer_sectors())),
            100.0 * parity_sectors as f64 / geometry.volume_sectors() as f64,
            group(burst),
            (burst * SECTOR) as f64 / MIB,
            group(region),
            (region * SECTOR) as f64 / MIB,
        );
    }
    println!();
    println!(
        "Parity: m layers of L sectors, the digest block (one BLAKE3 per {DIGEST_GROUP_SECTORS} parity sectors) \
         and the check block (a CRC-32 per sector, SPEC.md §16.13). \
         Burst anywhere: m·L − t (a run crossing from the data span into the parity, SPEC.md §16.9); \
         inside one region: m·L."
    );
    Ok(())
}

/// The most payload bytes that the plan puts in one volume (bisection on
/// the plan, which is exact and cheap).
fn largest_single_volume_payload(sealer: &Sealer, volume_size: u64) -> Result<u64> {
    let one_volume = |len: u64| -> Result<bool> { Ok(sealer.plan(len)?.volume_count() == 1) };
    let (mut low, mut high) = (0u64, volume_size);
    if !one_volume(low)? {
        return Err("an empty payload needs more than one volume".into());
    }
    while low + 1 < high {
        let mid = low + (high - low) / 2;
        match one_volume(mid)? {
            true => low = mid,
            false => high = mid,
        }
    }
    Ok(low)
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
