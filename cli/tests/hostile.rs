//! Hostile archives through the CLI: the refusals of the library's
//! tests/hostile.rs seen through `kuvert open` (exit status 1, nothing
//! changed outside or inside the destination) and the escaping of
//! sender-chosen names by `kuvert list` and `kuvert open`.
//!
//! Every payload is written by the test-only crafter of tests/common/craft.rs
//! and sealed properly, so only the archive layer can refuse it.
#![cfg(unix)]

use std::fs;

#[path = "../../tests/common/mod.rs"]
mod common;

use common::craft::{Spec, craft, dir, file, hardlink, identity, seal_raw_archive, symlink};
use common::snapshot::{Snapshot, differences, snapshot};

/// An outer directory holding DEST and things an escape would touch, as
/// the library's tests/hostile.rs sets it up.
struct Scene {
    outer: tempfile::TempDir,
    before: Snapshot,
}

impl Scene {
    fn new() -> Self {
        let outer = tempfile::tempdir().expect("outer");
        let at = |name: &str| outer.path().join(name);
        fs::create_dir(at("dest")).expect("dest");
        fs::write(at("secret"), b"outside DEST\n").expect("sentinel");
        fs::create_dir(at("victim")).expect("victim");
        fs::write(at("victim/file"), b"victim\n").expect("victim file");
        let before = snapshot(outer.path());
        Scene { outer, before }
    }

    /// Nothing changed anywhere in the outer directory.
    fn assert_untouched(&self, case: &str) {
        let after = snapshot(self.outer.path());
        assert!(
            after == self.before,
            "{case}: the outer directory changed: {}",
            differences(&self.before, &after)
        );
    }
}

/// The same refusals through `kuvert open`: exit status 1, and the outer
/// directory exactly as it was, with `-o DEST` and with the default
/// destination (a new directory named after the set).
#[test]
fn kuvert_open_refuses_hostile_archives_and_leaves_nothing() {
    let work = tempfile::tempdir().expect("work");
    fs::write(
        work.path().join("id.txt"),
        format!("{}\n", &*identity().to_secret_string()),
    )
    .expect("identity");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "reported exploit",
            craft(vec![
                dir("d"),
                symlink("d/up", ".."),
                symlink("esc", "d/up/../.."),
            ]),
        ),
        ("dot-dot path", craft(vec![file("../escape", b"x")])),
        (
            "absolute path",
            craft(vec![file("/tmp/kuvert-escape", b"x")]),
        ),
        ("hard link out", craft(vec![hardlink("h", "/etc/passwd")])),
        ("alias", craft(vec![file("D/x", b"1"), file("d/y", b"2")])),
        (
            "tar says otherwise",
            craft(vec![
                file("f", b"x").tar(|t| t.path = Some(b"../f".to_vec())),
            ]),
        ),
        (
            "late failure",
            craft(vec![
                file("ok", b"fine"),
                file("bad", b"x").tar(|t| t.padding = 1),
            ]),
        ),
    ];
    for (case, payload) in cases {
        let parcel = work.path().join("parcel.kuv");
        fs::write(&parcel, &seal_raw_archive(&payload)[0]).expect("parcel");
        for with_dest in [true, false] {
            let scene = Scene::new();
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("kuvert"));
            cmd.current_dir(scene.outer.path())
                .env_remove("KUVERT_PASSPHRASE_FILE")
                .arg("open")
                .arg("-i")
                .arg(work.path().join("id.txt"));
            if with_dest {
                cmd.args(["-o", "dest"]);
            }
            let output = cmd.arg(&parcel).output().expect("run kuvert");
            assert_eq!(
                output.status.code(),
                Some(1),
                "{case}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            scene.assert_untouched(&format!("{case} (kuvert open, -o given: {with_dest})"));
        }
    }
}

/// Sender-chosen names never reach a terminal raw: `kuvert list` and the
/// messages of `kuvert open` escape control characters, so a name cannot
/// move the cursor or forge a line.
#[test]
fn kuvert_escapes_control_characters_in_names() {
    let work = tempfile::tempdir().expect("work");
    fs::write(
        work.path().join("id.txt"),
        format!("{}\n", &*identity().to_secret_string()),
    )
    .expect("identity");
    let raw = |bytes: &[u8]| {
        bytes
            .iter()
            .any(|&b| (b < 0x20 && b != b'\n') || b == 0x7f || b == 0x9b)
    };
    let run = |args: &[&str], payload: &[u8]| {
        let parcel = work.path().join("parcel.kuv");
        fs::write(&parcel, &seal_raw_archive(payload)[0]).expect("parcel");
        std::process::Command::new(assert_cmd::cargo::cargo_bin!("kuvert"))
            .current_dir(work.path())
            .env_remove("KUVERT_PASSPHRASE_FILE")
            .args(args)
            .args(["-i", "id.txt", "parcel.kuv"])
            .output()
            .expect("run kuvert")
    };
    let names = [
        "\x1b[2J",
        "line\nforged: ok",
        "cr\rreturn",
        "bell\x07",
        "\u{9b}31m",
    ];
    let mut entries: Vec<Spec> = names.iter().map(|name| file(name, b"x")).collect();
    entries.push(symlink("\x1b[1mlink", "\x1b[2J"));
    let listing = run(&["list"], &craft(entries.clone()));
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    assert!(
        !raw(&listing.stdout),
        "list: {:?}",
        String::from_utf8_lossy(&listing.stdout)
    );
    assert!(
        !raw(&listing.stderr),
        "list: {:?}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let lines = String::from_utf8_lossy(&listing.stdout).lines().count();
    assert!(
        lines <= entries.len() + 2,
        "a name forged a line: {lines} lines"
    );
    for (case, payload) in [
        ("unsafe path", craft(vec![file("\x1b[2J/../\nx", b"x")])),
        (
            "collision",
            craft(vec![file("\x1b[A", b"1"), file("\x1b[a", b"2")]),
        ),
        (
            "mismatch",
            craft(vec![file("\x07\r", b"x").tar(|t| t.mode = Some(0o600))]),
        ),
    ] {
        let output = run(&["open", "-o", "dest"], &payload);
        assert_eq!(output.status.code(), Some(1), "{case}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!raw(&output.stderr), "{case}: {stderr:?}");
        assert_eq!(stderr.lines().count(), 1, "{case}: {stderr:?}");
    }
}
