//! The parity codec vectors of SPEC.md §16.12 (tests/parity-vectors/): the
//! reference still writes every parity byte, digest block, check block and
//! geometry body, and every case restores from its parity after losing m
//! layers.
//! tests/independent/leopard.py checks the same files from the SPEC alone.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kuvert::testing::parity::{
    BATCH_STRIPES, ParityGeometry, Place, SectorChecks, StripeEncoder, encode_parity, restore,
};
use sha2::{Digest, Sha256};

const SECTOR: usize = 2048;

/// How a case's parity is made.
enum Shape {
    /// k data runs of `run` sectors, straight into the codec.
    Codec { k: u16, m: u16, run: usize },
    /// A data span of n sectors at p percent, through the geometry.
    Volume { n: u64, p: u16 },
}

/// Every case, with what it exercises.
fn cases() -> Vec<(&'static str, &'static str, Shape)> {
    vec![
        (
            "codec-k3-m2",
            "k = 3, m = 2, runs of 2 sectors: two chunks of 2, the second padded",
            Shape::Codec { k: 3, m: 2, run: 2 },
        ),
        (
            "codec-k5-m3",
            "k = 5, m = 3: chunks of 4, m not a power of two",
            Shape::Codec { k: 5, m: 3, run: 1 },
        ),
        (
            "codec-k2-m5",
            "k = 2, m = 5: more parity than data, still high rate (one chunk of 8)",
            Shape::Codec { k: 2, m: 5, run: 1 },
        ),
        (
            "volume-n3-p100",
            "a 3-sector span at 100 %: k = 3, m = 3, L = 1",
            Shape::Volume { n: 3, p: 100 },
        ),
        (
            "volume-n250-p3",
            "a 250-sector span at 3 %: k = 248, m = 7, L = 2, data layers 125 to 247 wholly virtual",
            Shape::Volume { n: 250, p: 3 },
        ),
        (
            "volume-n419-p20",
            "a 419-sector span at 20 %: k = 212, m = 43, L = 2, 5 virtual sectors",
            Shape::Volume { n: 419, p: 20 },
        ),
    ]
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parity-vectors")
}

/// The data rule of SPEC.md §16.12: SHA-256(case name ‖ u32 counter), in order.
fn case_bytes(name: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u32;
    while out.len() < len {
        out.extend_from_slice(
            &Sha256::new()
                .chain_update(name)
                .chain_update(counter.to_be_bytes())
                .finalize(),
        );
        counter += 1;
    }
    out.truncate(len);
    out
}

/// A volume case's digest block and check block.
struct Blocks {
    digests: Vec<u8>,
    checks: Vec<u8>,
}

/// What the reference writes for a case: meta, parity, and for volume cases
/// the digest block and the check block.
fn write_case(name: &str, description: &str, shape: &Shape) -> (String, Vec<u8>, Option<Blocks>) {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let sha = |bytes: &[u8]| hex(&Sha256::digest(bytes));
    match *shape {
        Shape::Codec { k, m, run } => {
            let data = case_bytes(name, usize::from(k) * run * SECTOR);
            let runs: Vec<&[u8]> = data.chunks(run * SECTOR).collect();
            let mut parity = vec![0u8; usize::from(m) * run * SECTOR];
            let mut outputs: Vec<&mut [u8]> = parity.chunks_mut(run * SECTOR).collect();
            StripeEncoder::new(k, m)
                .expect("valid")
                .encode(&runs, &mut outputs)
                .expect("encodes");
            let meta = format!(
                "description: {description}\nkind: codec\nk: {k}\nm: {m}\nrun-sectors: {run}\ndata-sha256: {}\nparity-sha256: {}\n",
                sha(&data),
                sha(&parity)
            );
            (meta, parity, None)
        }
        Shape::Volume { n, p } => {
            let geometry = ParityGeometry::from_data(n, p).expect("valid");
            let data = case_bytes(name, n as usize * SECTOR);
            let parity = encode_parity(&geometry, &data, BATCH_STRIPES).expect("encodes");
            let block = geometry.digest_block(&parity);
            let body = geometry.to_body(blake3::hash(&block).as_bytes());
            let mut checks = SectorChecks::new(geometry.checked_sectors());
            checks.record(0, &data);
            checks.record(n, &parity);
            let meta = format!(
                "description: {description}\nkind: volume\ndata-sectors: {n}\npercent: {p}\nk: {}\nm: {}\nlayer-sectors: {}\ndata-sha256: {}\nparity-sha256: {}\nbody: {}\n",
                geometry.k(),
                geometry.m(),
                geometry.layer_sectors(),
                sha(&data),
                sha(&parity),
                hex(&body)
            );
            let blocks = Blocks {
                digests: block,
                checks: checks.block(),
            };
            (meta, parity, Some(blocks))
        }
    }
}

#[test]
#[ignore = "writes tests/parity-vectors; run once when SPEC.md §16 changes"]
fn write_parity_vectors() {
    for (name, description, shape) in cases() {
        let dir = vectors_dir().join(name);
        fs::create_dir_all(&dir).expect("case dir");
        let (meta, parity, block) = write_case(name, description, &shape);
        fs::write(dir.join("meta"), meta).expect("meta");
        fs::write(dir.join("parity"), parity).expect("parity");
        if let Some(blocks) = block {
            fs::write(dir.join("digests"), blocks.digests).expect("digests");
            fs::write(dir.join("checks"), blocks.checks).expect("checks");
        }
    }
}

#[test]
fn reference_writes_the_parity_vectors() {
    let cases = cases();
    for (name, description, shape) in &cases {
        let dir = vectors_dir().join(name);
        let (meta, parity, block) = write_case(name, description, shape);
        assert_eq!(
            fs::read_to_string(dir.join("meta")).expect("meta"),
            meta,
            "{name}/meta"
        );
        assert!(
            fs::read(dir.join("parity")).expect("parity") == parity,
            "{name}/parity differs"
        );
        assert_eq!(
            block.is_some(),
            dir.join("digests").is_file(),
            "{name}/digests"
        );
        if let Some(blocks) = block {
            assert!(
                fs::read(dir.join("digests")).expect("digests") == blocks.digests,
                "{name}/digests differs"
            );
            assert!(
                fs::read(dir.join("checks")).expect("checks") == blocks.checks,
                "{name}/checks differs"
            );
        }
    }
    let on_disk = fs::read_dir(vectors_dir())
        .expect("dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count();
    assert_eq!(
        on_disk,
        cases.len(),
        "a parity vector directory is not generated by cases()"
    );
}

/// Every volume case restores its data span and parity after losing m
/// layers (the first m real sectors of every stripe), and its body parses
/// back to its geometry.
#[test]
fn volume_vectors_restore_and_parse() {
    for (name, _, shape) in cases() {
        let Shape::Volume { n, p } = shape else {
            continue;
        };
        let dir = vectors_dir().join(name);
        let meta: BTreeMap<String, String> = fs::read_to_string(dir.join("meta"))
            .expect("meta")
            .lines()
            .filter_map(|line| line.split_once(": "))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        let geometry = ParityGeometry::from_data(n, p).expect("valid");
        let body: Vec<u8> = (0..meta["body"].len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&meta["body"][i..i + 2], 16).expect("hex"))
            .collect();
        let block = fs::read(dir.join("digests")).expect("digests");
        assert_eq!(
            ParityGeometry::from_body(&body).expect("parses"),
            (geometry, *blake3::hash(&block).as_bytes()),
            "{name}"
        );
        let data = case_bytes(name, n as usize * SECTOR);
        let parity = fs::read(dir.join("parity")).expect("parity");
        let lost: Vec<u64> = (0..geometry.layer_sectors())
            .flat_map(|stripe| {
                (0..geometry.layers())
                    .filter_map(move |layer| geometry.sector_at(Place { stripe, layer }))
                    .take(usize::from(geometry.m()))
            })
            .collect();
        let (mut damaged, mut damaged_parity) = (data.clone(), parity.clone());
        for &sector in &lost {
            let (bytes, at) = if sector < n {
                (&mut damaged, sector)
            } else {
                (&mut damaged_parity, sector - n)
            };
            bytes[at as usize * SECTOR..][..SECTOR].fill(0xA5);
        }
        let restored = restore(
            &geometry,
            &mut damaged,
            &mut damaged_parity,
            &lost,
            BATCH_STRIPES,
        )
        .expect("restores");
        assert_eq!(restored, lost.len() as u64, "{name}");
        assert!(
            damaged == data && damaged_parity == parity,
            "{name}: not byte-identical"
        );
    }
}
