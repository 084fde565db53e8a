//! `kuvert seal --label --note --note-file --created --pad`, and the
//! manifest as `open`, `list` and `info` show it: only with a key.

use std::fs;
use std::path::Path;
use std::process::Command;

use predicates::prelude::*;

fn kuvert(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"));
    cmd.env_remove("KUVERT_PASSPHRASE_FILE").current_dir(dir);
    cmd
}

/// A scratch directory with an identity `id.txt`; returns its recipient.
fn scene() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = kuvert(dir.path())
        .args(["keygen", "-o", "id.txt"])
        .output()
        .expect("keygen");
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    let recipient = stderr
        .trim()
        .strip_prefix("Public key: ")
        .expect("public key")
        .to_owned();
    (dir, recipient)
}

use assert_cmd::prelude::*;

const LABEL: &str = "DST project 1234, extract 3 of 4";

#[test]
fn the_manifest_is_shown_with_a_key_and_never_without() {
    let (dir, recipient) = scene();
    fs::write(dir.path().join("data.csv"), b"id,value\n1,2\n").expect("write");
    fs::write(dir.path().join("note.txt"), "Rows 1-2.\nCall first.\n").expect("write");
    kuvert(dir.path())
        .args(["seal", "-r", &recipient, "--label", LABEL])
        .args([
            "--note-file",
            "note.txt",
            "--created",
            "2026-12-02T14:00:00Z",
        ])
        .args(["-o", "s.kuv", "data.csv"])
        .assert()
        .success();
    let sealed = fs::read(dir.path().join("s.kuv")).expect("read");
    assert!(!sealed.windows(LABEL.len()).any(|w| w == LABEL.as_bytes()));

    // info without a key: headers only.
    kuvert(dir.path())
        .args(["info", "s.kuv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(LABEL).not())
        .stdout(predicate::str::contains("manifest").not());
    kuvert(dir.path())
        .args(["info", "--json", "s.kuv"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"manifest\"").not());
    // info with a key.
    kuvert(dir.path())
        .args(["info", "-i", "id.txt", "s.kuv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "  label           {LABEL}\n"
        )))
        .stdout(predicate::str::contains(
            "  created         2026-12-02T14:00:00Z\n",
        ))
        .stdout(predicate::str::contains(
            "  note            Rows 1-2.\n                  Call first.\n",
        ))
        .stdout(predicate::str::contains("  padding         padme\n"));
    kuvert(dir.path())
        .args(["info", "--json", "-i", "id.txt", "s.kuv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "\"manifest\":{{\"label\":\"{LABEL}\",\"created\":1796220000,\
             \"created_utc\":\"2026-12-02T14:00:00Z\",\"note\":\"Rows 1-2.\\nCall first.\",\
             \"padding\":\"padme\"}}"
        )));
    // list and open.
    kuvert(dir.path())
        .args(["list", "-i", "id.txt", "s.kuv"])
        .assert()
        .success()
        .stdout("data.csv\n")
        .stderr(predicate::str::contains(format!(
            "kuvert: label:   {LABEL}\n"
        )))
        .stderr(predicate::str::contains("kuvert:          Call first.\n"));
    kuvert(dir.path())
        .args(["list", "--json", "-i", "id.txt", "s.kuv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "\"payload\":\"archive\",\"manifest\":{\"label\"",
        ));
    kuvert(dir.path())
        .args(["open", "-i", "id.txt", "-o", "out", "s.kuv"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "kuvert: created: 2026-12-02T14:00:00Z\n",
        ));
    assert_eq!(
        fs::read(dir.path().join("out/data.csv")).expect("read"),
        b"id,value\n1,2\n"
    );
    kuvert(dir.path())
        .args(["-q", "open", "-i", "id.txt", "-o", "-", "--raw", "s.kuv"])
        .assert()
        .success()
        .stderr("");
}

#[test]
fn padding_rules_set_the_volume_lengths() {
    let (dir, recipient) = scene();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(dir.path().join("in.bin"), &data).expect("write");
    let seal = |pad: &str, out: &str, extra: &[&str]| {
        kuvert(dir.path())
            .args(["seal", "-r", &recipient, "--chunk-size", "4K", "--pad", pad])
            // Lengths from the chunk layout alone: no trailer.
            .args(["--created", "none", "--no-digests"])
            .args(extra)
            .args(["-o", out, "-"])
            .stdin(fs::File::open(dir.path().join("in.bin")).expect("open"))
            .assert()
            .success();
    };
    seal("none", "none.kuv", &[]);
    seal("padme", "padme.kuv", &[]);
    seal("volume", "vol.kuv", &["--volume-size", "40K"]);
    let len = |name: &str| fs::metadata(dir.path().join(name)).expect("stat").len();
    // Unpadded: header, prefix 4, 100,000 bytes in 4,080-byte chunks.
    let chunks = (4 + 100_000u64).div_ceil(4080);
    let header = len("none.kuv") - (4 + 100_000 + 16 * chunks);
    // Padmé: prefix, padding record (5), content, padding length (8).
    let padded = kuvert::padme(4 + 5 + 100_000 + 8).expect("small");
    assert_eq!(
        len("padme.kuv"),
        header + padded + 16 * padded.div_ceil(4080)
    );
    // Volume: every volume full (40 KiB holds the header and 9 chunks).
    let volumes: Vec<u64> = (1..=3).map(|n| len(&format!("vol.{n:03}.kuv"))).collect();
    assert!(
        volumes
            .iter()
            .all(|&v| v == header.next_multiple_of(2048) + 9 * 4096),
        "{volumes:?}"
    );
    assert!(!dir.path().join("vol.004.kuv").exists());
    for name in ["none.kuv", "padme.kuv", "vol.001.kuv"] {
        let mut cmd = kuvert(dir.path());
        cmd.args(["-q", "open", "-i", "id.txt", "-o", "-"]);
        if name == "vol.001.kuv" {
            cmd.args(["vol.001.kuv", "vol.002.kuv", "vol.003.kuv"]);
        } else {
            cmd.arg(name);
        }
        let output = cmd.output().expect("open");
        assert!(output.status.success(), "{name}");
        assert!(output.stdout == data, "{name}");
    }
}

#[test]
fn bad_manifest_options_are_usage_errors() {
    let (dir, recipient) = scene();
    fs::write(dir.path().join("a"), b"a").expect("write");
    let run = |args: &[&str]| {
        kuvert(dir.path())
            .args(["seal", "-r", &recipient, "-o", "x.kuv"])
            .args(args)
            .arg("a")
            .assert()
    };
    run(&["--pad", "volume"])
        .code(2)
        .stderr(predicate::str::contains("--volume-size"));
    run(&["--pad", "sometimes"])
        .code(2)
        .stderr(predicate::str::contains("not padme, volume or none"));
    run(&["--created", "yesterday"])
        .code(2)
        .stderr(predicate::str::contains("not none, now or a UTC time"));
    run(&["--label", "two\nlines"])
        .failure()
        .stderr(predicate::str::contains(
            "label cannot go into the manifest",
        ));
    let long = "n".repeat(3073);
    run(&["--note", &long])
        .failure()
        .stderr(predicate::str::contains("note cannot go into the manifest"));
    run(&["--note", "a", "--note-file", "a"]).code(2);
    assert!(!dir.path().join("x.kuv").exists());
}
