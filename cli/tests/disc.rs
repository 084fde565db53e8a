//! `kuvert verify` and `kuvert open` given a disc image instead of volume
//! files: the volumes of a set burned into one ISO 9660 image by
//! `xorriso`, with everything before the first volume (system area,
//! descriptors, directory) zeroed, are found by scanning the image and
//! open as the files did. Skipped, with a note, where `xorriso` is absent,
//! unless `KUVERT_REQUIRE_STOCK_TOOLS` is set (CI sets it).

use std::fs;
use std::path::Path;
use std::process::{Command as Process, Stdio};

use assert_cmd::Command;

const MAGIC: &[u8; 8] = b"\x89KUV\r\n\x1a\n";
const SECTOR: usize = 2048;

fn kuvert(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"));
    cmd.env_remove("KUVERT_PASSPHRASE_FILE");
    cmd.current_dir(dir);
    cmd
}

fn have_xorriso() -> bool {
    let found = Process::new("xorriso")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("KUVERT_REQUIRE_STOCK_TOOLS").is_none(),
            "xorriso not found, and KUVERT_REQUIRE_STOCK_TOOLS is set"
        );
        eprintln!("note: xorriso not found; the disc image tests are skipped");
    }
    found
}

/// Deterministic bytes (xorshift).
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn a_set_burned_into_an_iso_image_verifies_and_opens_from_the_image() {
    if !have_xorriso() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let keygen = kuvert(dir)
        .args(["keygen", "-o", "id.txt"])
        .output()
        .expect("keygen");
    assert!(keygen.status.success());
    let recipient = String::from_utf8(keygen.stderr)
        .expect("utf-8")
        .trim()
        .strip_prefix("Public key: ")
        .expect("public key")
        .to_owned();
    fs::create_dir(dir.join("data")).expect("mkdir");
    let content = pseudo_random(70_000, 5);
    fs::write(dir.join("data/register.bin"), &content).expect("write");
    kuvert(dir)
        .args(["seal", "-r", &recipient, "--chunk-size", "4K"])
        .args(["--volume-size", "32K", "-o", "parcel.kuv", "data"])
        .assert()
        .success();
    let mut volumes: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("parcel.") && n.ends_with(".kuv"))
        .collect();
    volumes.sort();
    assert!(volumes.len() >= 3, "{volumes:?}");
    let output = Process::new("xorriso")
        .current_dir(dir)
        .args([
            "-as",
            "mkisofs",
            "-iso-level",
            "3",
            "-quiet",
            "-o",
            "disc.iso",
        ])
        .args(&volumes)
        .output()
        .expect("run xorriso");
    assert!(
        output.status.success(),
        "xorriso: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Zero the directory: every sector before the first volume's header.
    let mut image = fs::read(dir.join("disc.iso")).expect("read image");
    let first = image
        .chunks(SECTOR)
        .position(|sector| sector.starts_with(MAGIC))
        .expect("a volume in the image")
        * SECTOR;
    assert!(first >= 16 * SECTOR);
    image[..first].fill(0);
    fs::write(dir.join("disc.iso"), &image).expect("write image");

    let verified = kuvert(dir)
        .args(["verify", "disc.iso"])
        .output()
        .expect("verify");
    let report = String::from_utf8(verified.stdout).expect("utf-8");
    assert_eq!(verified.status.code(), Some(0), "{report}");
    assert!(
        report.contains(&format!("disc.iso@{first}: volume 1: digests match")),
        "{report}"
    );
    assert_eq!(
        report.matches("digests match").count(),
        volumes.len(),
        "{report}"
    );
    kuvert(dir)
        .args(["verify", "-i", "id.txt", "disc.iso"])
        .assert()
        .success();
    kuvert(dir)
        .args(["open", "-i", "id.txt", "-o", "out", "disc.iso"])
        .assert()
        .success();
    assert_eq!(
        fs::read(dir.join("out/data/register.bin")).expect("extracted"),
        content
    );
}

#[test]
fn a_file_of_whole_sectors_with_no_volume_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("blank.iso"), vec![0u8; 8 * SECTOR]).expect("write");
    let output = kuvert(dir.path())
        .args(["verify", "blank.iso"])
        .output()
        .expect("verify");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert!(
        stderr.contains("blank.iso: not a kuvert volume, and no volume found on it as a disc"),
        "{stderr}"
    );
}
