//! `kuvert seal` and `kuvert open` through an age plugin: the library's
//! test plugin (examples/age-plugin-kuvert-test.rs, built by `cargo test
//! --workspace`) on a PATH that holds it.

#![cfg(all(feature = "plugins", unix))]

use std::fs;
use std::path::PathBuf;

use assert_cmd::Command;
use bech32::{Bech32, Hrp};
use predicates::prelude::*;
use tempfile::TempDir;

#[path = "../../tests/common/plugin_binary.rs"]
mod plugin_binary;
use plugin_binary::plugin_binary;

/// A scratch directory, and a directory whose only program is the plugin.
struct Scene {
    dir: TempDir,
    bin: TempDir,
}

impl Scene {
    fn new() -> Self {
        let bin = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(plugin_binary(), bin.path().join("age-plugin-kuvert-test"))
            .expect("link the plugin");
        Scene {
            dir: tempfile::tempdir().expect("tempdir"),
            bin,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `kuvert ARGS…` in the scene's directory, with PATH = the plugin's.
    fn kuvert(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"));
        cmd.env_remove("KUVERT_PASSPHRASE_FILE")
            .env_remove("AGEDEBUG")
            .env("PATH", self.bin.path())
            .current_dir(self.dir.path());
        cmd
    }
}

/// The recipient and identity texts of the test plugin in `mode`.
fn keys(mode: u8) -> (String, String) {
    let mut data = vec![mode];
    data.extend([7u8; 32]);
    let recipient =
        bech32::encode_lower::<Bech32>(Hrp::parse("age1kuvert-test").expect("hrp"), &data)
            .expect("encode");
    let identity =
        bech32::encode_upper::<Bech32>(Hrp::parse("AGE-PLUGIN-KUVERT-TEST-").expect("hrp"), &data)
            .expect("encode");
    (recipient, identity)
}

#[test]
fn seal_and_open_through_a_plugin() {
    let scene = Scene::new();
    let (recipient, identity) = keys(0);
    fs::write(scene.path("notes.txt"), b"for the plugin's holder\n").expect("write");
    fs::write(
        scene.path("plugin.key"),
        format!("# kuvert-test\n{identity}\n"),
    )
    .expect("write");
    scene
        .kuvert()
        .args(["seal", "-r", &recipient, "-o", "set.kuv", "notes.txt"])
        .assert()
        .success();
    scene
        .kuvert()
        .args(["info", "set.kuv"])
        .assert()
        .success()
        .stdout(predicate::str::contains("kuvert-test"));
    scene
        .kuvert()
        .args(["open", "-i", "plugin.key", "-o", "out", "set.kuv"])
        .assert()
        .success();
    assert_eq!(
        fs::read(scene.path("out/notes.txt")).expect("opened"),
        b"for the plugin's holder\n"
    );
    // No recipient can be derived from a plugin identity.
    scene
        .kuvert()
        .args(["keygen", "-y", "plugin.key"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("ask its plugin"));
}

#[test]
fn plugin_failures_are_named() {
    let scene = Scene::new();
    fs::write(scene.path("notes.txt"), b"x").expect("write");
    let (refusing, _) = keys(3);
    scene
        .kuvert()
        .args(["seal", "-r", &refusing, "-o", "set.kuv", "notes.txt"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "age-plugin-kuvert-test: reported: kuvert-test refuses (mode 3)",
        ));
    let (crashing, _) = keys(7);
    scene
        .kuvert()
        .args(["seal", "-r", &crashing, "-o", "set.kuv", "notes.txt"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "exited with status 3 before finishing; it printed: kuvert-test: simulated crash\\n\\x1b[31mred alert",
        ));
    assert!(!scene.path("set.kuv").exists(), "nothing written");
}

#[test]
fn a_plugin_in_the_current_directory_is_not_run() {
    let scene = Scene::new();
    fs::write(scene.path("notes.txt"), b"x").expect("write");
    std::os::unix::fs::symlink(plugin_binary(), scene.path("age-plugin-kuvert-test"))
        .expect("link the plugin");
    let (recipient, _) = keys(0);
    scene
        .kuvert()
        .env("PATH", ".::bin")
        .args(["seal", "-r", &recipient, "-o", "set.kuv", "notes.txt"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "age-plugin-kuvert-test: not found in PATH",
        ));
}

#[test]
fn a_silent_plugin_is_stopped_after_plugin_timeout() {
    let scene = Scene::new();
    fs::write(scene.path("notes.txt"), b"x").expect("write");
    let (hanging, _) = keys(6);
    let started = std::time::Instant::now();
    scene
        .kuvert()
        .args([
            "seal",
            "--plugin-timeout",
            "1",
            "-r",
            &hanging,
            "-o",
            "set.kuv",
            "notes.txt",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("age-plugin-kuvert-test"))
        .stderr(predicate::str::contains("1 s"));
    // The default is 60 s: a run this short used the flag.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(!scene.path("set.kuv").exists(), "nothing written");
    scene
        .kuvert()
        .args([
            "seal",
            "--plugin-timeout",
            "0",
            "-r",
            &hanging,
            "-o",
            "set.kuv",
            "notes.txt",
        ])
        .assert()
        .failure()
        .code(2);
}
