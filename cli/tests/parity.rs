//! `seal --parity` and `kuvert repair`: parity by default for the disc
//! presets, a damaged volume repaired byte-identical without any key, and
//! a repair that never overwrites.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use tempfile::TempDir;

fn kuvert(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"));
    cmd.env_remove("KUVERT_PASSPHRASE_FILE").current_dir(dir);
    cmd
}

/// A directory with an identity; returns it and the recipient.
fn scene() -> (TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = kuvert(dir.path())
        .args(["keygen", "-o", "id.txt"])
        .output()
        .expect("run keygen");
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    let recipient = stderr
        .trim()
        .strip_prefix("Public key: ")
        .expect("public key")
        .to_owned();
    (dir, recipient)
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 131) ^ (i >> 9)) as u8).collect()
}

fn set_flags(path: &Path) -> u16 {
    let bytes = fs::read(path).expect("read volume");
    u16::from_be_bytes([bytes[14], bytes[15]])
}

#[test]
fn a_damaged_volume_is_repaired_without_a_key_and_opens() {
    let (dir, recipient) = scene();
    let d = dir.path();
    fs::write(d.join("data.bin"), content(400_000)).expect("write");
    kuvert(d)
        .args([
            "seal",
            "-r",
            &recipient,
            "--chunk-size",
            "4K",
            "--volume-size",
            "128K",
        ])
        .args(["--parity", "20", "-o", "set.kuv", "data.bin"])
        .assert()
        .success();
    let original = fs::read(d.join("set.002.kuv")).expect("volume 2");
    assert_eq!(set_flags(&d.join("set.002.kuv")) & 0x0004, 0x0004, "PARITY");
    // A zeroed run of sectors (a ddrescue image of a scratch).
    let mut damaged = original.clone();
    damaged[10 * 2048..14 * 2048].fill(0);
    fs::write(d.join("set.002.kuv"), &damaged).expect("damage");
    let verify = kuvert(d)
        .args(["verify", "set.002.kuv"])
        .output()
        .expect("run");
    // Damage found, all of it repairable: exit 3.
    assert_eq!(verify.status.code(), Some(3));
    let report = String::from_utf8(verify.stdout).expect("utf-8");
    assert!(
        report.contains(
            "set.002.kuv: parity: 4 sectors lost, 4 repairable, 0 unrecoverable, margin 4 of 10"
        ),
        "{report}"
    );
    // Exactly the zeroed sectors 10..14 (the check block judges each
    // sector), of a 61-sector volume: cells 11..15 repaired.
    let map = format!(
        "set.002.kuv: map [{}{}{}]",
        ".".repeat(11),
        "r".repeat(4),
        ".".repeat(49)
    );
    assert!(report.contains(&map), "{report}");
    let json = kuvert(d)
        .args(["verify", "--json", "set.002.kuv"])
        .output()
        .expect("run");
    assert_eq!(json.status.code(), Some(3));
    let json = String::from_utf8(json.stdout).expect("utf-8");
    assert!(json.contains("\"state\":\"repairable\""), "{json}");
    assert!(
        json.contains(&format!(
            "\"parity\":{{\"sectors\":61,\"sectors_lost\":4,\"sectors_repaired\":4,\"sectors_unrecoverable\":0,\"margin\":{{\"used\":4,\"of\":10,\"worst_stripe\":0}},\"map\":\"{}{}{}\"}}",
            ".".repeat(11),
            "r".repeat(4),
            ".".repeat(49)
        )),
        "{json}"
    );
    fs::create_dir(d.join("out")).expect("mkdir");
    let repaired = kuvert(d)
        .args(["repair", "set.002.kuv", "-o", "out"])
        .output()
        .expect("run repair");
    let report = String::from_utf8(repaired.stdout).expect("utf-8");
    assert!(repaired.status.success(), "{report}");
    assert!(report.contains("sectors lost"), "{report}");
    assert!(report.contains(" parity sectors used"), "{report}");
    assert_eq!(fs::read(d.join("out/set.002.kuv")).expect("copy"), original);
    let names: Vec<String> = fs::read_dir(d.join("out"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["set.002.kuv"], "no partial file left");
    // Never overwrites.
    kuvert(d)
        .args(["repair", "set.002.kuv", "-o", "out"])
        .assert()
        .failure();
    // The repaired set opens.
    fs::copy(d.join("out/set.002.kuv"), d.join("set.002.kuv")).expect("copy back");
    let volumes: Vec<String> = (1..=10)
        .map(|v| format!("set.{v:03}.kuv"))
        .filter(|name| d.join(name).exists())
        .collect();
    kuvert(d)
        .args(["open", "-i", "id.txt", "-o", "restored"])
        .args(&volumes)
        .assert()
        .success();
    assert_eq!(
        fs::read(d.join("restored/data.bin")).expect("restored"),
        content(400_000)
    );
}

#[test]
fn parity_defaults_to_the_disc_presets_and_its_options_are_checked() {
    let (dir, recipient) = scene();
    let d = dir.path();
    fs::write(d.join("small.bin"), content(10_000)).expect("write");
    let seal = |args: &[&str]| {
        kuvert(d)
            .args(["seal", "-r", &recipient])
            .args(args)
            .arg("small.bin")
            .output()
            .expect("run seal")
    };
    assert!(
        seal(&["--volume-size", "cd", "-o", "cd.kuv"])
            .status
            .success()
    );
    assert_eq!(
        set_flags(&d.join("cd.kuv")) & 0x0004,
        0x0004,
        "cd: parity by default"
    );
    assert!(
        seal(&["--volume-size", "cd", "--parity", "none", "-o", "plain.kuv"])
            .status
            .success()
    );
    assert_eq!(set_flags(&d.join("plain.kuv")) & 0x0004, 0, "--parity none");
    assert!(
        seal(&["--volume-size", "1M", "-o", "sized.kuv"])
            .status
            .success()
    );
    assert_eq!(
        set_flags(&d.join("sized.kuv")) & 0x0004,
        0,
        "explicit size: none"
    );
    assert!(seal(&["-o", "unsplit.kuv"]).status.success());
    assert_eq!(
        set_flags(&d.join("unsplit.kuv")) & 0x0004,
        0,
        "unsplit: none"
    );
    for bad in [
        &["--parity", "2", "-o", "x.kuv"][..],
        &["--parity", "201", "-o", "x.kuv"],
        &["--parity", "lots", "-o", "x.kuv"],
        &["--parity", "20", "-o", "-"],
        &["--parity", "20", "--no-digests", "-o", "x.kuv"],
    ] {
        let output = seal(bad);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
    }
    assert!(!d.join("x.kuv").exists());
    // The cd volume verifies and repairs (intact) without a key.
    kuvert(d).args(["verify", "cd.kuv"]).assert().success();
    fs::create_dir(d.join("out")).expect("mkdir");
    let output = kuvert(d)
        .args(["repair", "cd.kuv", "-o", "out"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&output.stdout).contains("intact"));
    assert_eq!(
        fs::read(d.join("out/cd.kuv")).ok(),
        fs::read(d.join("cd.kuv")).ok()
    );
    // A volume without parity cannot be repaired.
    kuvert(d)
        .args(["repair", "plain.kuv", "-o", "out"])
        .assert()
        .failure();
}
