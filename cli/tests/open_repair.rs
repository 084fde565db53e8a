//! `kuvert open` and `kuvert verify` through damage that parity repairs:
//! the open extracts byte-identical and says what it repaired, `verify`
//! with a key exits 3, and `--no-repair` gives the damage as before.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use tempfile::TempDir;

fn kuvert(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"));
    cmd.env_remove("KUVERT_PASSPHRASE_FILE").current_dir(dir);
    cmd
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 131) ^ (i >> 9)) as u8).collect()
}

/// A directory with an identity and `set.kuv`, one volume with 20 %
/// parity holding `data.bin`, whose sectors 30 to 33 are zeroed: chunks
/// 14 to 16 (two sectors each) fail authentication, and the check block
/// (SPEC.md §16.13) names the four zeroed sectors as the ones lost.
fn damaged_set() -> (TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let output = kuvert(d)
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
    fs::write(d.join("data.bin"), content(400_000)).expect("write");
    kuvert(d)
        .args(["seal", "-r", &recipient, "--chunk-size", "4K"])
        .args(["--parity", "20", "-o", "set.kuv", "data.bin"])
        .assert()
        .success();
    let original = fs::read(d.join("set.kuv")).expect("volume");
    let mut damaged = original.clone();
    damaged[30 * 2048..34 * 2048].fill(0);
    fs::write(d.join("set.kuv"), &damaged).expect("damage");
    (dir, original)
}

#[test]
fn open_repairs_a_zeroed_burst_and_says_so() {
    let (dir, _) = damaged_set();
    let d = dir.path();
    let opened = kuvert(d)
        .args(["open", "-i", "id.txt", "-o", "restored", "set.kuv"])
        .output()
        .expect("run open");
    let stderr = String::from_utf8(opened.stderr).expect("utf-8");
    assert!(opened.status.success(), "{stderr}");
    assert!(
        stderr.contains("kuvert: volume 1: 4 sectors lost, repaired from parity (margin 4 of "),
        "{stderr}"
    );
    assert_eq!(
        fs::read(d.join("restored/data.bin")).expect("restored"),
        content(400_000)
    );
    // The volume given is left as it was: repair wrote only a scratch copy.
    let listed = kuvert(d)
        .args(["list", "-i", "id.txt", "set.kuv"])
        .output()
        .expect("run list");
    assert!(listed.status.success());
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "data.bin");

    // Without repair: the damage, exit 1, nothing extracted.
    let opened = kuvert(d)
        .args([
            "open",
            "--no-repair",
            "-i",
            "id.txt",
            "-o",
            "again",
            "set.kuv",
        ])
        .output()
        .expect("run open");
    assert_eq!(opened.status.code(), Some(1));
    let stderr = String::from_utf8(opened.stderr).expect("utf-8");
    assert!(stderr.contains("failed authentication"), "{stderr}");
    assert!(!stderr.contains("repaired from parity"), "{stderr}");
    assert!(!d.join("again").exists());
}

#[test]
fn verify_with_a_key_exits_3_when_parity_repairs_all_of_it() {
    let (dir, original) = damaged_set();
    let d = dir.path();
    let verify = kuvert(d)
        .args(["verify", "-i", "id.txt", "set.kuv"])
        .output()
        .expect("run verify");
    let stdout = String::from_utf8(verify.stdout).expect("utf-8");
    let stderr = String::from_utf8(verify.stderr).expect("utf-8");
    assert_eq!(verify.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("failed authentication"), "{stdout}");
    assert!(
        stdout.contains("set.kuv: parity: 4 sectors lost, all repairable (margin 4 of "),
        "{stdout}"
    );
    assert!(
        stderr.contains("refresh the medium (kuvert repair)"),
        "{stderr}"
    );
    // --no-repair: the damage alone, exit 1.
    let verify = kuvert(d)
        .args(["verify", "--no-repair", "-i", "id.txt", "set.kuv"])
        .output()
        .expect("run verify");
    assert_eq!(verify.status.code(), Some(1));
    // Intact: 0.
    fs::write(d.join("set.kuv"), original).expect("restore");
    kuvert(d)
        .args(["verify", "-i", "id.txt", "set.kuv"])
        .assert()
        .success();
}
