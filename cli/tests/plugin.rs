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

/// `kuvert ARGS…` on a terminal of its own (util-linux `script` gives it a
/// pseudo-terminal), with `typed` as what the user types: the PIN prompt of
/// a plugin is asked on the controlling terminal, never on stdin.
fn on_a_terminal(scene: &Scene, args: &[&str], typed: &str) -> std::process::Output {
    let kuvert = assert_cmd::cargo::cargo_bin!("kuvert");
    let line = std::iter::once(kuvert.to_str().expect("utf-8 path"))
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("KUVERT_PASSPHRASE_FILE")
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", scene.bin.path().display()),
        )
        .current_dir(scene.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux script runs");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(typed.as_bytes())
        .expect("type");
    child.wait_with_output().expect("script ends")
}

#[test]
fn a_plugin_asks_for_its_pin_on_the_terminal() {
    let scene = Scene::new();
    let (recipient, identity) = keys(2);
    fs::write(scene.path("notes.txt"), b"behind a PIN\n").expect("write");
    fs::write(scene.path("pin.key"), format!("{identity}\n")).expect("write");
    let sealed = on_a_terminal(
        &scene,
        &["seal", "-r", &recipient, "-o", "set.kuv", "notes.txt"],
        "1234\n",
    );
    let shown = String::from_utf8_lossy(&sealed.stdout);
    assert!(sealed.status.success(), "seal failed: {shown}");
    assert!(
        shown.contains("age-plugin-kuvert-test: kuvert-test PIN:"),
        "{shown}"
    );

    let opened = on_a_terminal(
        &scene,
        &["open", "-i", "pin.key", "-o", "out", "set.kuv"],
        "1234\n",
    );
    assert!(
        opened.status.success(),
        "open failed: {}",
        String::from_utf8_lossy(&opened.stdout)
    );
    assert_eq!(
        fs::read(scene.path("out/notes.txt")).expect("opened"),
        b"behind a PIN\n"
    );

    let wrong = on_a_terminal(
        &scene,
        &["open", "-i", "pin.key", "-o", "out2", "set.kuv"],
        "9999\n",
    );
    let shown = String::from_utf8_lossy(&wrong.stdout);
    assert!(!wrong.status.success());
    assert!(
        shown.contains("reported: identity 0: wrong PIN or no PIN"),
        "{shown}"
    );
    assert!(!scene.path("out2").exists(), "nothing extracted");

    // Without a terminal the question fails and the plugin's refusal shows.
    scene
        .kuvert()
        .args(["open", "-i", "pin.key", "-o", "out3", "set.kuv"])
        .write_stdin("1234\n")
        .env_remove("TERM")
        .assert()
        .failure()
        .stderr(predicate::str::contains("wrong PIN or no PIN"));
}

#[test]
fn a_plugin_confirmation_is_answered_on_the_terminal() {
    let scene = Scene::new();
    let (recipient, identity) = keys(8);
    fs::write(scene.path("notes.txt"), b"confirmed\n").expect("write");
    fs::write(scene.path("confirm.key"), format!("{identity}\n")).expect("write");
    let sealed = on_a_terminal(
        &scene,
        &["seal", "-r", &recipient, "-o", "set.kuv", "notes.txt"],
        "y\n",
    );
    let shown = String::from_utf8_lossy(&sealed.stdout);
    assert!(sealed.status.success(), "seal failed: {shown}");
    let opened = on_a_terminal(
        &scene,
        &["open", "-i", "confirm.key", "-o", "out", "set.kuv"],
        "y\n",
    );
    let shown = String::from_utf8_lossy(&opened.stdout);
    assert!(opened.status.success(), "open failed: {shown}");
    assert!(
        shown.contains("kuvert-test: touch the key"),
        "the message was shown: {shown}"
    );
    assert!(
        shown.contains("Use kuvert-test? [y = Use it, n = Skip]"),
        "{shown}"
    );
    assert_eq!(
        fs::read(scene.path("out/notes.txt")).expect("opened"),
        b"confirmed\n"
    );

    let declined = on_a_terminal(
        &scene,
        &["open", "-i", "confirm.key", "-o", "out2", "set.kuv"],
        "n\n",
    );
    let shown = String::from_utf8_lossy(&declined.stdout);
    assert!(!declined.status.success());
    assert!(shown.contains("not confirmed: ok no"), "{shown}");
    assert!(!scene.path("out2").exists(), "nothing extracted");
}
