//! `seal --parity-volumes`: the issue's parcel of two data discs and one
//! parity disc opens with either data disc lost; two lost are refused with
//! exit 1 naming them; `verify` says what was rebuilt (exit 3); `repair`
//! writes the missing volume byte-identical without any key.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use tempfile::TempDir;

fn kuvert(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"));
    cmd.env_remove("KUVERT_PASSPHRASE_FILE")
        .env("TMPDIR", dir.join("tmp"))
        .current_dir(dir);
    cmd
}

/// Two data volumes and one parity volume of `data.bin`, in a directory
/// with its identity `id.txt`.
fn parcel(volumes: u32) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir(d.join("tmp")).expect("mkdir tmp");
    let recipient = keygen(d, "id.txt");
    let content: Vec<u8> = (0..(volumes as usize * 120_000 - 30_000))
        .map(|i| ((i * 131) ^ (i >> 9)) as u8)
        .collect();
    fs::write(d.join("data.bin"), content).expect("write");
    let sealed = kuvert(d)
        .args(["seal", "-r", &recipient, "--chunk-size", "4K"])
        .args(["--volume-size", "128K", "--parity", "none"])
        .args(["--parity-volumes", "1", "-o", "set.kuv", "data.bin"])
        .output()
        .expect("run seal");
    assert!(sealed.status.success(), "{sealed:?}");
    let stderr = String::from_utf8(sealed.stderr).expect("utf-8");
    assert!(
        stderr.contains("wrote parity volume set.p01.kuv"),
        "{stderr}"
    );
    for v in 1..=volumes {
        assert!(d.join(format!("set.{v:03}.kuv")).is_file(), "volume {v}");
    }
    assert!(!d.join(format!("set.{:03}.kuv", volumes + 1)).exists());
    dir
}

/// A new identity in `file`; its recipient.
fn keygen(dir: &Path, file: &str) -> String {
    let output = kuvert(dir)
        .args(["keygen", "-o", file])
        .output()
        .expect("run keygen");
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    stderr
        .trim()
        .strip_prefix("Public key: ")
        .expect("public key")
        .to_owned()
}

fn open_to(dir: &Path, volumes: &[&str], out: &str) -> std::process::Output {
    kuvert(dir)
        .args(["open", "-i", "id.txt", "-o", out])
        .args(volumes)
        .output()
        .expect("run open")
}

fn tmp_is_empty(dir: &Path) -> bool {
    fs::read_dir(dir.join("tmp")).expect("tmp").next().is_none()
}

#[test]
fn either_data_volume_lost_still_opens() {
    let dir = parcel(2);
    let d = dir.path();
    let original = fs::read(d.join("data.bin")).expect("read");
    for (lost, kept) in [
        ("set.001.kuv", "set.002.kuv"),
        ("set.002.kuv", "set.001.kuv"),
    ] {
        let out = format!("out-{lost}");
        let opened = open_to(d, &[kept, "set.p01.kuv"], &out);
        assert!(opened.status.success(), "{opened:?}");
        let stderr = String::from_utf8(opened.stderr).expect("utf-8");
        assert!(
            stderr.contains(&format!(
                "({lost}) was missing or unusable: rebuilt from set.p01.kuv"
            )),
            "{stderr}"
        );
        assert_eq!(
            fs::read(Path::new(d).join(&out).join("data.bin")).expect("opened"),
            original
        );
        assert!(tmp_is_empty(d), "scratch space left behind");
    }
}

#[test]
fn two_lost_with_one_parity_volume_are_refused_by_name() {
    let dir = parcel(3);
    let d = dir.path();
    let opened = open_to(d, &["set.002.kuv", "set.p01.kuv"], "out");
    assert_eq!(opened.status.code(), Some(1));
    let stderr = String::from_utf8(opened.stderr).expect("utf-8");
    assert!(
        stderr.contains(
            "data volumes 1 and 3 missing or unusable, more than 1 usable parity volumes rebuild"
        ),
        "{stderr}"
    );
    assert!(!d.join("out").exists());
    assert!(tmp_is_empty(d));
}

#[test]
fn verify_says_what_was_rebuilt_and_exits_3() {
    let dir = parcel(2);
    let d = dir.path();
    let whole = kuvert(d)
        .args(["verify", "set.001.kuv", "set.002.kuv", "set.p01.kuv"])
        .output()
        .expect("run");
    assert_eq!(whole.status.code(), Some(0), "{whole:?}");
    let stdout = String::from_utf8(whole.stdout).expect("utf-8");
    assert!(
        stdout.contains("set.p01.kuv: parity volume 1 of 1 over 2 data volumes: intact"),
        "{stdout}"
    );
    let lost = kuvert(d)
        .args(["verify", "set.002.kuv", "set.p01.kuv"])
        .output()
        .expect("run");
    assert_eq!(lost.status.code(), Some(3), "{lost:?}");
    let stdout = String::from_utf8(lost.stdout).expect("utf-8");
    assert!(
        stdout.contains("volume 1: missing or unusable, rebuilt from parity volumes"),
        "{stdout}"
    );
    let stderr = String::from_utf8(lost.stderr).expect("utf-8");
    assert!(
        stderr.contains("refresh the medium (`kuvert repair`)"),
        "{stderr}"
    );
    // A damaged parity volume with every data volume there: repairable.
    let mut parity = fs::read(d.join("set.p01.kuv")).expect("read");
    parity[3 * 2048] ^= 1;
    fs::write(d.join("set.p01.kuv"), parity).expect("write");
    let damaged = kuvert(d)
        .args(["verify", "set.001.kuv", "set.002.kuv", "set.p01.kuv"])
        .output()
        .expect("run");
    assert_eq!(damaged.status.code(), Some(3), "{damaged:?}");
    // Both data volumes gone: not repairable.
    let none = kuvert(d)
        .args(["verify", "set.p01.kuv"])
        .output()
        .expect("run");
    assert_eq!(none.status.code(), Some(1), "{none:?}");
}

#[test]
fn repair_rebuilds_the_missing_volume_byte_identical_without_a_key() {
    let dir = parcel(3);
    let d = dir.path();
    let original = fs::read(d.join("set.002.kuv")).expect("read");
    let parity = fs::read(d.join("set.p01.kuv")).expect("read");
    fs::create_dir(d.join("out")).expect("mkdir");
    let repaired = kuvert(d)
        .args([
            "repair",
            "set.001.kuv",
            "set.003.kuv",
            "set.p01.kuv",
            "-o",
            "out",
        ])
        .output()
        .expect("run");
    assert!(repaired.status.success(), "{repaired:?}");
    assert_eq!(
        fs::read(d.join("out/set.002.kuv")).expect("rebuilt"),
        original
    );
    assert_eq!(fs::read(d.join("out/set.p01.kuv")).expect("copied"), parity);
    for v in [1, 3] {
        let name = format!("set.{v:03}.kuv");
        assert_eq!(
            fs::read(d.join("out").join(&name)).expect("copied"),
            fs::read(d.join(&name)).expect("given")
        );
    }
    // Never overwrites.
    let again = kuvert(d)
        .args(["repair", "set.001.kuv", "set.p01.kuv", "-o", "out"])
        .output()
        .expect("run");
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8(again.stderr).expect("utf-8");
    assert!(
        stderr.contains("exists; kuvert repair never overwrites"),
        "{stderr}"
    );
}

#[test]
fn parity_volumes_need_a_split_file_output() {
    let dir = parcel(2);
    let d = dir.path();
    let recipient = keygen(d, "id2.txt");
    let refused = kuvert(d)
        .args(["seal", "-r", &recipient, "--parity-volumes", "1"])
        .args(["-o", "one.kuv", "data.bin"])
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8(refused.stderr).expect("utf-8");
    assert!(
        stderr.contains("--parity-volumes needs --volume-size"),
        "{stderr}"
    );
}

#[test]
fn a_destroyed_volume_given_is_rebuilt_not_used() {
    let dir = parcel(3);
    let d = dir.path();
    let original = fs::read(d.join("set.002.kuv")).expect("read");
    let data = fs::read(d.join("data.bin")).expect("read");
    // A copy cut short (a disc read up to a scratch): opens, rebuilt.
    fs::write(d.join("set.002.kuv"), &original[..original.len() / 2]).expect("cut");
    let all = ["set.001.kuv", "set.002.kuv", "set.003.kuv", "set.p01.kuv"];
    let opened = open_to(d, &all, "out");
    assert!(opened.status.success(), "{opened:?}");
    assert_eq!(fs::read(d.join("out/data.bin")).expect("opened"), data);
    // Garbage inside (no parity of its own): verify rebuilds it, exit 3.
    let mut garbled = original.clone();
    garbled[20 * 2048..22 * 2048].fill(0x55);
    fs::write(d.join("set.002.kuv"), &garbled).expect("garble");
    let verified = kuvert(d).arg("verify").args(all).output().expect("run");
    assert_eq!(verified.status.code(), Some(3), "{verified:?}");
    let stdout = String::from_utf8(verified.stdout).expect("utf-8");
    assert!(
        stdout.contains("volume 2: missing or unusable, rebuilt from parity volumes"),
        "{stdout}"
    );
    // repair: volume 2 comes back byte-identical from the others.
    fs::create_dir(d.join("fresh")).expect("mkdir");
    let repaired = kuvert(d)
        .arg("repair")
        .args(all)
        .args(["-o", "fresh"])
        .output()
        .expect("run");
    assert!(repaired.status.success(), "{repaired:?}");
    assert_eq!(
        fs::read(d.join("fresh/set.002.kuv")).expect("rebuilt"),
        original
    );
    assert!(tmp_is_empty(d));
}
