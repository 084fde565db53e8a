//! The `kuvert` binary, driven as a person or a script would: every command,
//! flag and failure the CLI documents, on real files.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

/// Written by age-keygen 1.1 (Debian's `age` package).
const AGE_IDENTITY: &str =
    "AGE-SECRET-KEY-124UMNKZQYS3PYU6NY44FU7UFAUHUGVMDG974W7DUT070FFCNCR7QMUUVCW";
const AGE_RECIPIENT: &str = "age1xafqnldth57j79qvaejezpslq347rj9dzgvff6y9jhulmgl87euq9uandu";

fn kuvert() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"));
    cmd.env_remove("KUVERT_PASSPHRASE_FILE");
    cmd
}

/// A scratch directory with one identity in it.
struct Scene {
    dir: TempDir,
    recipient: String,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = kuvert()
            .args(["keygen", "-o"])
            .arg(dir.path().join("id.txt"))
            .output()
            .expect("run keygen");
        assert!(output.status.success());
        let stderr = String::from_utf8(output.stderr).expect("utf-8");
        let recipient = stderr
            .trim()
            .strip_prefix("Public key: ")
            .expect("public key on stderr")
            .to_owned();
        Scene { dir, recipient }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn id(&self) -> PathBuf {
        self.path("id.txt")
    }

    /// `kuvert ARGS…` run in the scene's directory.
    fn cmd(&self) -> Command {
        let mut cmd = kuvert();
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// A tree of files: sizes around chunk boundaries, an empty file, a
    /// nested directory and a symlink.
    fn make_tree(&self, name: &str) -> PathBuf {
        let root = self.path(name);
        fs::create_dir_all(root.join("nested/deeper")).expect("mkdir");
        fs::write(root.join("big.bin"), pseudo_random(150_000, 1)).expect("write");
        fs::write(root.join("chunk.bin"), pseudo_random(4096 - 16, 2)).expect("write");
        fs::write(root.join("empty"), b"").expect("write");
        fs::write(root.join("nested/notes.txt"), b"register extract\n").expect("write");
        fs::write(
            root.join("nested/deeper/ünïcode name.csv"),
            pseudo_random(9000, 3),
        )
        .expect("write");
        #[cfg(unix)]
        std::os::unix::fs::symlink("../big.bin", root.join("nested/link")).expect("symlink");
        root
    }

    /// Seals `inputs` to the scene's identity with small chunks and volumes.
    /// Seals without trailers: the tests using it count 7 chunks per 32K
    /// volume and name chunks by their offsets.
    fn seal_split(&self, out: &str, inputs: &[&str]) {
        self.cmd()
            .args(["seal", "-r", &self.recipient, "--chunk-size", "4K"])
            .args(["--volume-size", "32K", "--no-digests", "-o", out])
            .args(inputs)
            .assert()
            .success();
    }

    /// The volumes `STEM.001.kuv`, … that exist, in order.
    fn volumes(&self, stem: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("{stem}.")) && n.ends_with(".kuv"))
            .collect();
        names.sort();
        names
    }

    /// Names in the scene directory (to check nothing partial is left).
    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
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

/// Asserts two trees have the same files, contents and links.
fn assert_same_tree(a: &Path, b: &Path) {
    let mut left: Vec<_> = fs::read_dir(a)
        .expect("read a")
        .map(|e| e.expect("entry").file_name())
        .collect();
    let mut right: Vec<_> = fs::read_dir(b)
        .expect("read b")
        .map(|e| e.expect("entry").file_name())
        .collect();
    left.sort();
    right.sort();
    assert_eq!(left, right, "{} vs {}", a.display(), b.display());
    for name in left {
        let (x, y) = (a.join(&name), b.join(&name));
        let kind = fs::symlink_metadata(&x).expect("meta").file_type();
        assert_eq!(
            kind,
            fs::symlink_metadata(&y).expect("meta").file_type(),
            "{}",
            x.display()
        );
        if kind.is_symlink() {
            assert_eq!(fs::read_link(&x).ok(), fs::read_link(&y).ok());
        } else if kind.is_dir() {
            assert_same_tree(&x, &y);
        } else {
            assert!(fs::read(&x).ok() == fs::read(&y).ok(), "{}", x.display());
        }
    }
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).expect("read");
    bytes[offset] ^= 0x40;
    fs::write(path, bytes).expect("write");
}

// ---------------------------------------------------------------- keygen

#[test]
fn keygen_writes_a_private_age_style_file_and_refuses_to_overwrite() {
    let scene = Scene::new();
    let text = fs::read_to_string(scene.id()).expect("identity");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let created = lines[0].strip_prefix("# created: ").expect("created line");
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "RFC 3339 UTC: {created}"
    );
    assert_eq!(lines[1], format!("# public key: {}", scene.recipient));
    // Hybrid post-quantum by default, exactly as `age-keygen -pq`.
    assert!(scene.recipient.starts_with("age1pq1"));
    assert_eq!(scene.recipient.len(), 1959);
    assert!(lines[2].starts_with("AGE-SECRET-KEY-PQ-1"));
    assert_eq!(lines[2].len(), 77);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(scene.id()).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    scene
        .cmd()
        .args(["keygen", "-o", "id.txt"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already exists"));
    assert_eq!(fs::read_to_string(scene.id()).expect("identity"), text);

    // -y prints the recipient, from a file or standard input.
    scene
        .cmd()
        .args(["keygen", "-y", "id.txt"])
        .assert()
        .success()
        .stdout(format!("{}\n", scene.recipient));
    scene
        .cmd()
        .args(["keygen", "-y"])
        .write_stdin(text)
        .assert()
        .success()
        .stdout(format!("{}\n", scene.recipient));
}

#[test]
fn keygen_sign_writes_a_private_signing_key_and_prints_both_public_forms() {
    let scene = Scene::new();
    let output = scene
        .cmd()
        .args(["keygen", "--sign", "-o", "sign.key"])
        .output()
        .expect("run keygen --sign");
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    let lines: Vec<&str> = stderr.lines().collect();
    let public = lines[0]
        .strip_prefix("Public key: ")
        .expect("kuvertsign line");
    let openssh = lines[1].strip_prefix("OpenSSH: ").expect("openssh line");
    assert!(
        public.starts_with("kuvertsign1") && public.len() == 69,
        "{public}"
    );
    assert!(
        openssh.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
        "{openssh}"
    );
    assert!(openssh.ends_with(" kuvert"));
    let text = fs::read_to_string(scene.path("sign.key")).expect("key file");
    let file_lines: Vec<&str> = text.lines().collect();
    assert_eq!(file_lines.len(), 4, "{text}");
    assert!(file_lines[0].starts_with("# created: "));
    assert_eq!(file_lines[1], format!("# public key: {public}"));
    assert_eq!(file_lines[2], format!("# {openssh}"));
    assert!(file_lines[3].starts_with("KUVERT-SIGN-KEY-1") && file_lines[3].len() == 75);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(scene.path("sign.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    scene
        .cmd()
        .args(["keygen", "--sign", "-o", "sign.key"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already exists"));
    assert_eq!(
        fs::read_to_string(scene.path("sign.key")).expect("key"),
        text
    );
    // -y gives both public forms, from a file or standard input.
    let both = format!("{public}\n{openssh}\n");
    scene
        .cmd()
        .args(["keygen", "-y", "sign.key"])
        .assert()
        .success()
        .stdout(both.clone());
    scene
        .cmd()
        .args(["keygen", "-y"])
        .write_stdin(text.clone())
        .assert()
        .success()
        .stdout(both);
    // Kept apart: a signing key is no identity, its public key no recipient.
    fs::write(scene.path("in.txt"), b"data").expect("write");
    scene
        .cmd()
        .args(["seal", "-R", "sign.key", "-o", "x.kuv", "in.txt"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("pass it with --sign"));
    scene
        .cmd()
        .args(["seal", "-r", public, "-o", "x.kuv", "in.txt"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("pass it with --signer"));
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "-o", "x.kuv", "in.txt"])
        .assert()
        .success();
    scene
        .cmd()
        .args(["open", "-i", "sign.key", "x.kuv"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("pass it with --sign"));
}

#[test]
fn keygen_y_reads_unencrypted_openssh_keys_and_refuses_encrypted_ones() {
    let scene = Scene::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src/sign/testdata");
    let public = fs::read_to_string(fixtures.join("ssh-keygen-ed25519.pub")).expect("pub");
    let blob = public.split(' ').nth(1).expect("base64");
    let output = scene
        .cmd()
        .arg("keygen")
        .arg("-y")
        .arg(fixtures.join("ssh-keygen-ed25519"))
        .output()
        .expect("run");
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("kuvertsign1"));
    assert_eq!(lines[1], format!("ssh-ed25519 {blob} kuvert"));
    scene
        .cmd()
        .arg("keygen")
        .arg("-y")
        .arg(fixtures.join("ssh-keygen-ed25519-encrypted"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("encrypted OpenSSH key"));
}

#[test]
fn keygen_to_stdout_and_classical() {
    let output = kuvert()
        .args(["keygen", "--classical"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert!(stdout.contains("# public key: age1"), "{stdout}");
    assert!(!stdout.contains("age1pq1"), "{stdout}");
    assert!(stdout.contains("\nAGE-SECRET-KEY-1"), "{stdout}");
    assert!(stderr.starts_with("Public key: age1"), "{stderr}");
    let public = stderr
        .trim()
        .strip_prefix("Public key: ")
        .expect("public key");
    assert_eq!(public.len(), 62);
    // The age identity file is a kuvert identity file too.
    kuvert()
        .args(["keygen", "-y"])
        .write_stdin(stdout)
        .assert()
        .success()
        .stdout(format!("{public}\n"));
    kuvert()
        .args(["keygen", "-y"])
        .write_stdin("not a key\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 1 is not an identity"));
}

#[test]
fn age_keys_seal_and_open() {
    let scene = Scene::new();
    fs::write(
        scene.path("age.txt"),
        format!("# created: 2026-11-29T05:01:20Z\n# public key: {AGE_RECIPIENT}\n{AGE_IDENTITY}\n"),
    )
    .expect("write");
    scene
        .cmd()
        .args(["keygen", "-y", "--age", "age.txt"])
        .assert()
        .success()
        .stdout(format!("{AGE_RECIPIENT}\n"));
    scene
        .cmd()
        .args(["seal", "-r", AGE_RECIPIENT, "-o", "a.kuv", "-"])
        .write_stdin("for age users")
        .assert()
        .success();
    scene
        .cmd()
        .args(["open", "-i", "age.txt", "a.kuv"])
        .assert()
        .success()
        .stdout("for age users");
    // And the other way round: a recipients file with the kuvert encoding.
    let kuvert_recipient = scene
        .cmd()
        .args(["keygen", "-y", "age.txt"])
        .output()
        .expect("run")
        .stdout;
    fs::write(scene.path("recipients"), kuvert_recipient).expect("write");
    scene
        .cmd()
        .args(["seal", "-R", "recipients", "-o", "b.kuv", "-"])
        .write_stdin("both ways")
        .assert()
        .success();
    scene
        .cmd()
        .args(["open", "-i", "age.txt", "b.kuv"])
        .assert()
        .success()
        .stdout("both ways");
}

#[test]
fn post_quantum_and_classical_recipients_mix_only_with_allow_classical() {
    let scene = Scene::new();
    // The scene's key is hybrid; AGE_RECIPIENT is X25519.
    scene
        .cmd()
        .args([
            "seal",
            "-r",
            &scene.recipient,
            "-r",
            AGE_RECIPIENT,
            "-o",
            "m.kuv",
            "-",
        ])
        .write_stdin("mixed")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "recipients cannot share a set: mlkem768x25519 is post-quantum and X25519 is not",
        ))
        .stderr(predicate::str::contains("--allow-classical seals anyway"));
    assert!(!scene.path("m.kuv").exists(), "nothing written");
    scene
        .cmd()
        .args([
            "seal",
            "--allow-classical",
            "-r",
            &scene.recipient,
            "-r",
            AGE_RECIPIENT,
        ])
        .args(["-o", "m.kuv", "-"])
        .write_stdin("mixed")
        .assert()
        .success();
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "m.kuv"])
        .assert()
        .success()
        .stdout("mixed");
    scene
        .cmd()
        .args(["info", "m.kuv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "recipients      mlkem768x25519, X25519\n",
        ))
        .stdout(predicate::str::contains(
            "post-quantum    no: X25519 is classical, a quantum computer that breaks it opens \
             the set\n",
        ));
    // Hybrid beside a passphrase needs no flag, and stays protected.
    fs::write(scene.path("pass"), "a passphrase for the archive\n").expect("write");
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "--passphrase-file", "pass"])
        .args(["-o", "p.kuv", "-"])
        .write_stdin("beside")
        .assert()
        .success();
    scene
        .cmd()
        .args(["info", "--json", "p.kuv"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"post_quantum\":\"protected\""));
    scene
        .cmd()
        .args(["info", "p.kuv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "post-quantum    yes: every recipient is post-quantum or a passphrase\n",
        ));
}

// ---------------------------------------------------------------- streams

#[test]
fn stream_through_stdin_and_stdout() {
    let scene = Scene::new();
    let data = pseudo_random(300_000, 7);
    let sealed = scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "-o", "-", "-"])
        .write_stdin(data.clone())
        .output()
        .expect("run");
    assert!(sealed.status.success());
    fs::write(scene.path("s.kuv"), &sealed.stdout).expect("write");
    let opened = scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "-", "s.kuv"])
        .output()
        .expect("run");
    assert!(opened.status.success());
    assert!(opened.stdout == data);
    // A stream has no entries.
    scene
        .cmd()
        .args(["list", "-i", "id.txt", "s.kuv"])
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("single stream"));
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "--entry", "x", "s.kuv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not an archive"));
}

#[test]
fn a_stream_that_ends_like_an_archive_is_opened_as_sealed_and_raw_gives_any_content() {
    let scene = Scene::new();
    let tree = scene.make_tree("tree");
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "-o", "a.kuv"])
        .arg(&tree)
        .assert()
        .success();
    let run = |args: &[&str], stdin: Option<Vec<u8>>| {
        let mut cmd = scene.cmd();
        cmd.args(args);
        if let Some(stdin) = stdin {
            cmd.write_stdin(stdin);
        }
        let output = cmd.output().expect("run");
        assert!(output.status.success(), "{args:?}: {:?}", output.stderr);
        output.stdout
    };
    // --raw: the archive's content as it is, TAR ‖ INDEX ‖ TRAILER.
    let raw = run(&["open", "-i", "id.txt", "--raw", "-o", "-", "a.kuv"], None);
    assert_eq!(raw[raw.len() - 16..], *b"kuvert-index\0\0\0\x01");
    let tar = run(&["open", "-i", "id.txt", "--tar", "-o", "-", "a.kuv"], None);
    assert!(raw.starts_with(&tar) && raw.len() > tar.len());

    // Those bytes sealed from standard input are a stream: `open -o -` and
    // `--raw` give them back exactly, and nothing is extracted. So does a
    // stream ending in the trailer with another layout version.
    let mut other_version = raw.clone();
    *other_version.last_mut().expect("not empty") = 0x02;
    for content in [raw, other_version] {
        run(
            &["seal", "-r", &scene.recipient, "-f", "-o", "s.kuv", "-"],
            Some(content.clone()),
        );
        let opened = run(&["open", "-i", "id.txt", "-o", "-", "s.kuv"], None);
        assert!(opened == content, "the stream differs from what was sealed");
        let raw = run(&["open", "-i", "id.txt", "--raw", "-o", "-", "s.kuv"], None);
        assert!(raw == content);
        scene
            .cmd()
            .args(["list", "-i", "id.txt", "s.kuv"])
            .assert()
            .success()
            .stdout("")
            .stderr(predicate::str::contains("single stream"));
    }
    // Nothing was extracted: the directory holds what it held.
    assert_eq!(scene.listing(), ["a.kuv", "id.txt", "s.kuv", "tree"]);
    // --raw to a file.
    run(
        &["open", "-i", "id.txt", "--raw", "-o", "raw.bin", "s.kuv"],
        None,
    );
    assert_eq!(
        fs::read(scene.path("raw.bin")).expect("raw file").last(),
        Some(&0x02)
    );
}

#[test]
fn stream_to_a_file_never_replaces_without_force() {
    let scene = Scene::new();
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "-o", "s.kuv", "-"])
        .write_stdin("first")
        .assert()
        .success();
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "plain.txt", "s.kuv"])
        .assert()
        .success();
    assert_eq!(fs::read(scene.path("plain.txt")).expect("read"), b"first");
    fs::write(scene.path("plain.txt"), "mine").expect("write");
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "plain.txt", "s.kuv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("plain.txt already exists"));
    assert_eq!(fs::read(scene.path("plain.txt")).expect("read"), b"mine");
    scene
        .cmd()
        .args(["open", "-f", "-i", "id.txt", "-o", "plain.txt", "s.kuv"])
        .assert()
        .success();
    assert_eq!(fs::read(scene.path("plain.txt")).expect("read"), b"first");

    // Sealing refuses an existing output too.
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "-o", "s.kuv", "-"])
        .write_stdin("second")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("s.kuv already exists"));
    assert!(!scene.listing().iter().any(|n| n.contains("partial")));
}

#[test]
fn damaged_stream_writes_nothing_unless_salvaging() {
    let scene = Scene::new();
    let data = pseudo_random(40_000, 9);
    // No manifest and no padding: chunk offsets are content offsets + 4.
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "--chunk-size", "4K"])
        .args(["--created", "none", "--pad", "none"])
        .args(["-o", "s.kuv", "-"])
        .write_stdin(data.clone())
        .assert()
        .success();
    // Chunk 2 starts at byte 2048 + 2·4096.
    flip_byte(&scene.path("s.kuv"), 2048 + 2 * 4096 + 100);
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "out.bin", "s.kuv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "s.kuv (volume 1) at byte 10,240 (chunk 2): failed authentication",
        ));
    assert!(!scene.path("out.bin").exists());
    assert!(!scene.listing().iter().any(|n| n.contains("partial")));

    scene
        .cmd()
        .args([
            "open",
            "--salvage",
            "-i",
            "id.txt",
            "-o",
            "out.bin",
            "s.kuv",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "1 damaged chunk replaced by zeros",
        ));
    let salvaged = fs::read(scene.path("out.bin")).expect("salvaged");
    assert_eq!(salvaged.len(), data.len());
    // Chunk 2 holds content [2·P − 4, 3·P − 4): the payload starts with its
    // 4-byte prefix (SPEC.md §6.7).
    let (from, to) = (2 * (4096 - 16) - 4, 3 * (4096 - 16) - 4);
    assert!(salvaged[..from] == data[..from]);
    assert!(salvaged[from..to].iter().all(|&b| b == 0));
    assert!(salvaged[to..] == data[to..]);

    // Salvage goes on past every damaged chunk, and names each.
    flip_byte(&scene.path("s.kuv"), 2048 + 5 * 4096 + 7);
    scene
        .cmd()
        .args(["open", "--salvage", "--force", "-i", "id.txt"])
        .args(["-o", "out.bin", "s.kuv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "kuvert: s.kuv (volume 1) at byte 10,240 (chunk 2): failed authentication: \
             plaintext bytes 8,156..12,236 are zeros\n\
             kuvert: s.kuv (volume 1) at byte 22,528 (chunk 5): failed authentication: \
             plaintext bytes 20,396..24,476 are zeros\n",
        ))
        .stderr(predicate::str::contains(
            "2 damaged chunks replaced by zeros",
        ));
    let salvaged = fs::read(scene.path("out.bin")).expect("salvaged");
    assert_eq!(salvaged.len(), data.len());
    assert!(salvaged[20_396..24_476].iter().all(|&b| b == 0));
    assert!(salvaged[12_236..20_396] == data[12_236..20_396]);
    assert!(salvaged[24_476..] == data[24_476..]);
}

#[test]
fn verify_goes_on_when_its_output_is_closed() {
    let scene = Scene::new();
    scene.make_tree("data");
    scene.seal_split("parcel.kuv", &["data"]);
    let volumes = scene.volumes("parcel");
    let run = || {
        // `kuvert verify … | head -0`: every write to stdout fails (EPIPE).
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin!("kuvert"))
            .current_dir(scene.path("."))
            .env_remove("KUVERT_PASSPHRASE_FILE")
            .args(["verify", "-i", "id.txt"])
            .args(&volumes)
            .stdout(writer)
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8(out.stderr).expect("utf-8"),
        )
    };
    assert_eq!(run(), (Some(0), String::new()), "intact: no panic, success");
    flip_byte(&scene.path("parcel.002.kuv"), 2048 + 2 * 4096 + 5);
    assert_eq!(
        run(),
        (
            Some(1),
            "kuvert: 1 problem found: the volumes are not intact\n".to_owned()
        ),
        "damaged: the exit status still says so"
    );
}

#[test]
fn verify_without_a_key_checks_the_trailer_digests() {
    let scene = Scene::new();
    scene.make_tree("data");
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "--chunk-size", "4K"])
        .args(["--volume-size", "32K", "-o", "parcel.kuv", "data"])
        .assert()
        .success();
    let volumes = scene.volumes("parcel");
    assert!(volumes.len() >= 2);
    let intact = scene
        .cmd()
        .arg("verify")
        .args(&volumes)
        .output()
        .expect("run");
    let report = String::from_utf8(intact.stdout).expect("utf-8");
    assert_eq!(intact.status.code(), Some(0), "{report}");
    assert!(
        report.contains("parcel.001.kuv: volume 1: digests match ("),
        "{report}"
    );
    assert!(report.contains("not who sealed the volumes"), "{report}");
    let info = scene
        .cmd()
        .arg("info")
        .arg(&volumes[0])
        .output()
        .expect("run");
    let info = String::from_utf8(info.stdout).expect("utf-8");
    assert!(
        info.contains("  digests         chunks end at byte "),
        "{info}"
    );
    // Chunk 1 of volume 2: its digest no longer matches, found with no key.
    flip_byte(&scene.path("parcel.002.kuv"), 2048 + 4096 + 5);
    let damaged = scene
        .cmd()
        .arg("verify")
        .args(&volumes)
        .output()
        .expect("run");
    let report = String::from_utf8(damaged.stdout).expect("utf-8");
    assert_eq!(damaged.status.code(), Some(1), "{report}");
    assert!(
        report.contains("parcel.002.kuv: FAILED: volume 2 at byte 6,144 (chunk "),
        "{report}"
    );
    assert!(
        report.contains("does not match its trailer digest"),
        "{report}"
    );
    // Sealed without digests: only a key can check it.
    scene.seal_split("bare.kuv", &["data"]);
    let bare = scene
        .cmd()
        .args(["verify", "bare.001.kuv"])
        .output()
        .expect("run");
    assert_eq!(bare.status.code(), Some(1));
    let info = scene
        .cmd()
        .args(["info", "bare.001.kuv"])
        .output()
        .expect("run");
    assert!(
        String::from_utf8(info.stdout)
            .expect("utf-8")
            .contains("  digests         none (sealed with --no-digests")
    );
    assert!(
        String::from_utf8(bare.stdout)
            .expect("utf-8")
            .contains("sealed without digests: only a key can check it")
    );
}

#[test]
fn verify_prints_every_damaged_chunk() {
    let scene = Scene::new();
    scene.make_tree("data");
    scene.seal_split("parcel.kuv", &["data"]);
    let volumes = scene.volumes("parcel");
    // Volume 1 holds chunks 0..7, volume 2 chunks 7..14.
    flip_byte(&scene.path("parcel.001.kuv"), 2048 + 3 * 4096 + 9);
    flip_byte(&scene.path("parcel.002.kuv"), 2048 + 2 * 4096 + 5);
    flip_byte(&scene.path("parcel.002.kuv"), 2048 + 5 * 4096 + 5);
    let verify = scene
        .cmd()
        .args(["verify", "-i", "id.txt"])
        .args(&volumes)
        .output()
        .expect("run");
    assert_eq!(verify.status.code(), Some(1));
    let report = String::from_utf8(verify.stdout).expect("utf-8");
    for line in [
        "parcel.001.kuv: FAILED: volume 1 at byte 14,336 (chunk 3): failed authentication\n",
        "parcel.002.kuv: FAILED: volume 2 at byte 10,240 (chunk 9): failed authentication\n",
        "parcel.002.kuv: FAILED: volume 2 at byte 22,528 (chunk 12): failed authentication\n",
        "incomplete: volumes 1, 2 not intact\n",
    ] {
        assert!(report.contains(line), "{line} in {report}");
    }
    assert_eq!(
        String::from_utf8(verify.stderr).expect("utf-8"),
        "kuvert: 3 problems found: the volumes are not intact\n"
    );
}

// ---------------------------------------------------------------- passphrases

#[test]
fn passphrase_file_env_var_and_mixed_recipients() {
    let scene = Scene::new();
    fs::write(scene.path("pass"), "correct horse battery staple\n").expect("write");
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "--passphrase-file", "pass"])
        .args(["-o", "m.kuv", "-"])
        .write_stdin("mixed")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "no proof that its sender knew the passphrase",
        ));
    scene
        .cmd()
        .args(["info", "m.kuv"])
        .assert()
        .success()
        .stdout(predicate::str::contains("mlkem768x25519, argon2id"))
        .stdout(predicate::str::contains(
            "the set carries no proof that its sender knew the passphrase",
        ));
    scene
        .cmd()
        .args(["info", "--json", "m.kuv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "\"passphrase_is_unauthenticated\":true",
        ));
    // No -i: the passphrase recipient is found and the passphrase read
    // from the file that KUVERT_PASSPHRASE_FILE names.
    scene
        .cmd()
        .env("KUVERT_PASSPHRASE_FILE", scene.path("pass"))
        .args(["open", "m.kuv"])
        .assert()
        .success()
        .stdout("mixed");
}

#[test]
fn wrong_passphrase_is_named() {
    let scene = Scene::new();
    fs::write(scene.path("pass"), "tr0ub4dor\n").expect("write");
    fs::write(scene.path("wrong"), "tr0ub4dor&3\n").expect("write");
    scene
        .cmd()
        .env("KUVERT_PASSPHRASE_FILE", scene.path("pass"))
        .args(["seal", "-p", "-o", "p.kuv", "-"])
        .write_stdin("secret")
        .assert()
        .success();
    scene
        .cmd()
        .args(["open", "--passphrase-file", "wrong", "p.kuv"])
        .assert()
        .code(1)
        .stderr("kuvert: wrong passphrase\n");
}

#[test]
fn passphrase_prompt_without_a_terminal_points_to_the_file_options() {
    let scene = Scene::new();
    // rpassword reads /dev/tty: run without a controlling terminal.
    let mut cmd = if fs::File::open("/dev/tty").is_err() {
        kuvert()
    } else if Path::new("/usr/bin/setsid").exists() {
        let mut cmd = Command::new("/usr/bin/setsid");
        cmd.arg(assert_cmd::cargo::cargo_bin!("kuvert"))
            .env_remove("KUVERT_PASSPHRASE_FILE");
        cmd
    } else {
        eprintln!("skipped: a terminal is attached and there is no setsid");
        return;
    };
    cmd.current_dir(scene.dir.path())
        .args(["seal", "-p", "-o", "p.kuv", "-"])
        .write_stdin("x")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--passphrase-file"));
    assert!(!scene.path("p.kuv").exists());
}

// ---------------------------------------------------------------- volumes

#[test]
fn split_sets_open_in_any_order() {
    let scene = Scene::new();
    let tree = scene.make_tree("data");
    scene.seal_split("parcel.kuv", &["data"]);
    let volumes = scene.volumes("parcel");
    assert!(volumes.len() >= 5, "{volumes:?}");
    for (index, name) in volumes.iter().enumerate() {
        assert_eq!(name, &format!("parcel.{:03}.kuv", index + 1));
        let len = fs::metadata(scene.path(name)).expect("meta").len();
        assert!(len <= 32 << 10, "{name}: {len}");
    }
    let mut shuffled = volumes.clone();
    shuffled.reverse();
    shuffled.swap(0, 2);
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "out"])
        .args(&shuffled)
        .assert()
        .success();
    assert_same_tree(&tree, &scene.path("out/data"));
}

#[test]
fn volume_sizes_take_units_and_presets() {
    let scene = Scene::new();
    let data = pseudo_random(200_000, 4);
    for (size, count) in [
        ("64KiB", 4),
        ("64k", 4),
        ("131072", 2),
        ("cd", 1),
        ("fat32", 1),
    ] {
        let out = format!("v{size}.kuv");
        scene
            .cmd()
            .args(["seal", "-r", &scene.recipient, "--chunk-size", "4K"])
            .args(["--volume-size", size, "-o", &out, "-"])
            .write_stdin(data.clone())
            .assert()
            .success();
        let stem = out.trim_end_matches(".kuv");
        let found = if count == 1 {
            vec![out.clone()]
        } else {
            scene.volumes(stem)
        };
        assert_eq!(found.len(), count, "{size}: {found:?}");
        assert!(found.iter().all(|name| scene.path(name).exists()));
    }
    for bad in ["0", "12X", "1.5G", "dvdrom"] {
        scene
            .cmd()
            .args(["seal", "-r", &scene.recipient, "--volume-size", bad])
            .args(["-o", "bad.kuv", "-"])
            .write_stdin("x")
            .assert()
            .code(2);
    }
    // Too small for the header and one chunk: a usage error.
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "--volume-size", "4K"])
        .args(["-o", "tiny.kuv", "-"])
        .write_stdin("x")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot hold"));
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "--chunk-size", "3K"])
        .args(["-o", "c.kuv", "-"])
        .write_stdin("x")
        .assert()
        .code(2);
    assert!(!scene.path("bad.kuv").exists() && !scene.path("tiny.kuv").exists());
}

#[test]
fn missing_volumes_are_named() {
    let scene = Scene::new();
    scene.make_tree("data");
    scene.seal_split("parcel.kuv", &["data"]);
    let volumes = scene.volumes("parcel");
    let last = volumes.len();
    // A middle volume.
    let mut without_two = volumes.clone();
    without_two.remove(1);
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "out"])
        .args(&without_two)
        .assert()
        .code(1)
        .stderr("kuvert: volume 2 is missing; expected parcel.002.kuv\n");
    assert!(!scene.path("out").exists(), "DEST is left alone");
    // The last volume.
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "out"])
        .args(&volumes[..last - 1])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "volume {last} is missing"
        )));
    // The same volume twice.
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "out"])
        .args(&volumes)
        .arg("parcel.001.kuv")
        .assert()
        .code(1)
        .stderr(format!(
            "kuvert: parcel.001.kuv (input {}): volume 1 again, already given as parcel.001.kuv \
             (input 1)\n",
            last + 1
        ));
}

#[test]
fn a_volume_of_another_set_is_named() {
    let scene = Scene::new();
    scene.make_tree("data");
    scene.seal_split("parcel.kuv", &["data"]);
    scene.seal_split("other.kuv", &["data"]);
    let mut volumes = scene.volumes("parcel");
    volumes[1] = "other.002.kuv".into();
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "out"])
        .args(&volumes)
        .assert()
        .code(1)
        .stderr(
            "kuvert: other.002.kuv (input 2): belongs to another set (its header says volume 2)\n",
        );
    scene
        .cmd()
        .args(["verify", "-i", "id.txt"])
        .args(&volumes)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "other.002.kuv (volume 2) belongs to another set",
        ));
    assert!(!scene.path("out").exists());
}

#[test]
fn tampered_volume_fails_open_and_verify_naming_chunk_and_byte() {
    let scene = Scene::new();
    let tree = scene.make_tree("data");
    scene.seal_split("parcel.kuv", &["data"]);
    let volumes = scene.volumes("parcel");
    // Volume 2 holds chunks 7..14 (7 chunks of 4 KiB after a 2 KiB
    // header in 32 KiB); chunk 9 starts at byte 2048 + 2·4096.
    flip_byte(&scene.path("parcel.002.kuv"), 2048 + 2 * 4096 + 5);
    fs::create_dir(scene.path("dest")).expect("mkdir");
    fs::write(scene.path("dest/keep.txt"), "mine").expect("write");
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "dest"])
        .args(&volumes)
        .assert()
        .code(1)
        .stderr(
            "kuvert: parcel.002.kuv (volume 2) at byte 10,240 (chunk 9): failed authentication\n",
        );
    assert_eq!(scene.listing().iter().filter(|n| *n == "dest").count(), 1);
    let dest: Vec<_> = fs::read_dir(scene.path("dest"))
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(dest, ["keep.txt"], "DEST is untouched on failure");

    let verify = scene
        .cmd()
        .args(["verify", "-i", "id.txt"])
        .args(&volumes)
        .output()
        .expect("run");
    assert_eq!(verify.status.code(), Some(1));
    let report = String::from_utf8(verify.stdout).expect("utf-8");
    assert!(
        report.contains("parcel.001.kuv: volume 1: intact"),
        "{report}"
    );
    assert!(
        report.contains(
            "parcel.002.kuv: FAILED: volume 2 at byte 10,240 (chunk 9): failed authentication"
        ),
        "{report}"
    );
    assert!(report.contains("volume 2 not intact"), "{report}");

    // Salvage keeps the entries whose chunks all authenticate.
    scene
        .cmd()
        .args(["open", "--salvage", "-i", "id.txt", "-o", "salvaged"])
        .args(&volumes)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "data/big.bin: left out, parcel.002.kuv (volume 2) at byte 10,240 (chunk 9): failed \
             authentication",
        ));
    assert!(!scene.path("salvaged/data/big.bin").exists());
    assert_eq!(
        fs::read(scene.path("salvaged/data/nested/notes.txt")).expect("kept"),
        fs::read(tree.join("nested/notes.txt")).expect("original")
    );
}

/// `26624` as `26,624`, as the library prints byte offsets.
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[test]
fn truncated_volumes_are_named() {
    let scene = Scene::new();
    scene.make_tree("data");
    scene.seal_split("parcel.kuv", &["data"]);
    let volumes = scene.volumes("parcel");
    let last = volumes.last().expect("volumes").clone();
    let bytes = fs::read(scene.path(&last)).expect("read");
    // Cut at a chunk boundary: the end-of-set chunk is gone.
    let cut = 2048 + 4096 * ((bytes.len() - 2048 - 1) / 4096);
    fs::write(scene.path(&last), &bytes[..cut]).expect("write");
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "out"])
        .args(&volumes)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "{last} (volume {}) at byte {}: truncated",
            volumes.len(),
            grouped(cut as u64)
        )));
    // A middle volume cut short.
    let second = fs::read(scene.path("parcel.002.kuv")).expect("read");
    fs::write(scene.path(&last), &bytes).expect("restore");
    fs::write(scene.path("parcel.002.kuv"), &second[..second.len() - 4096]).expect("write");
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "out"])
        .args(&volumes)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "parcel.002.kuv (volume 2) at byte {}: truncated",
            grouped(second.len() as u64 - 4096)
        )));
    assert!(!scene.path("out").exists());
}

#[test]
fn verify_checks_a_single_disc_with_allow_incomplete() {
    let scene = Scene::new();
    scene.make_tree("data");
    scene.seal_split("parcel.kuv", &["data"]);
    let volumes = scene.volumes("parcel");
    scene
        .cmd()
        .args(["verify", "-i", "id.txt"])
        .args(&volumes)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "complete, {} volumes intact",
            volumes.len()
        )))
        .stdout(predicate::str::contains("intact, last of its set"));
    scene
        .cmd()
        .args(["verify", "-i", "id.txt", "parcel.002.kuv"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("parcel.002.kuv: volume 2: intact"))
        .stderr(predicate::str::contains("incomplete"));
    scene
        .cmd()
        .args([
            "verify",
            "--allow-incomplete",
            "-i",
            "id.txt",
            "parcel.002.kuv",
        ])
        .assert()
        .success();
    // A damaged single disc fails even with --allow-incomplete.
    flip_byte(&scene.path("parcel.002.kuv"), 5000);
    scene
        .cmd()
        .args([
            "verify",
            "--allow-incomplete",
            "-i",
            "id.txt",
            "parcel.002.kuv",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAILED"));
    // Wrong key.
    scene
        .cmd()
        .args(["keygen", "-o", "other.txt"])
        .assert()
        .success();
    scene
        .cmd()
        .args(["verify", "-i", "other.txt", "parcel.001.kuv"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "parcel.001.kuv: FAILED: wrong key: no identity given matches a recipient of the set \
             (recipient types: mlkem768x25519)",
        ));
}

#[test]
fn info_reads_headers_without_a_key() {
    let scene = Scene::new();
    scene.make_tree("data");
    scene.seal_split("parcel.kuv", &["data"]);
    let volumes = scene.volumes("parcel");
    let last = volumes.len();
    let json = scene
        .cmd()
        .args(["info", "--json", "parcel.001.kuv", "parcel.003.kuv"])
        .arg(&volumes[last - 1])
        .output()
        .expect("run");
    assert!(json.status.success());
    let json = String::from_utf8(json.stdout).expect("utf-8");
    for needle in [
        "\"file\":\"parcel.001.kuv\"",
        "\"format_version\":2",
        "\"chunk_size\":4096",
        "\"recipients\":[\"mlkem768x25519\"]",
        "\"post_quantum\":\"protected\"",
        "\"split\":true",
        "\"volume\":3",
        "\"full\":true",
        "\"highest_is_full\":false",
        "\"complete\":false",
        "\"passphrase_is_unauthenticated\":false",
        "\"errors\":[]",
    ] {
        assert!(json.contains(needle), "{needle} in {json}");
    }
    let missing: Vec<String> = (2..last)
        .filter(|&n| n != 3)
        .map(|n| n.to_string())
        .collect();
    assert!(
        json.contains(&format!("\"missing\":[{}]", missing.join(","))),
        "{json}"
    );
    assert_eq!(
        json.matches("\"set_id\":\"").count(),
        4,
        "three volumes, one set"
    );

    scene
        .cmd()
        .arg("info")
        .args(&volumes)
        .assert()
        .success()
        .stdout(predicate::str::contains("all volumes are here"))
        .stdout(predicate::str::contains("chunk size      4,096 bytes"));
    fs::write(scene.path("junk.kuv"), b"not a kuvert volume at all").expect("write");
    scene
        .cmd()
        .args(["info", "junk.kuv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "junk.kuv (input 1): not a kuvert volume",
        ));
}

// ---------------------------------------------------------------- archives

#[test]
fn list_plain_long_and_json() {
    let scene = Scene::new();
    scene.make_tree("data");
    fs::write(scene.path("single.txt"), "one file").expect("write");
    scene.seal_split("parcel.kuv", &["data", "single.txt"]);
    let volumes = scene.volumes("parcel");
    let mut expected = vec![
        "data/",
        "data/big.bin",
        "data/chunk.bin",
        "data/empty",
        "data/nested/",
        "data/nested/deeper/",
        "data/nested/deeper/ünïcode name.csv",
    ];
    if cfg!(unix) {
        expected.push("data/nested/link");
    }
    expected.extend(["data/nested/notes.txt", "single.txt"]);
    scene
        .cmd()
        .args(["list", "-i", "id.txt"])
        .args(&volumes)
        .assert()
        .success()
        .stdout(format!("{}\n", expected.join("\n")));
    let long = scene
        .cmd()
        .args(["list", "--long", "-i", "id.txt"])
        .args(&volumes)
        .output()
        .expect("run");
    let long = String::from_utf8(long.stdout).expect("utf-8");
    assert!(
        long.lines()
            .any(|l| l.starts_with("drwx") && l.ends_with(" data/")),
        "{long}"
    );
    assert!(
        long.lines()
            .any(|l| l.contains(" 150,000  ") && l.ends_with(" data/big.bin")),
        "{long}"
    );
    if cfg!(unix) {
        assert!(long.contains("data/nested/link -> ../big.bin"), "{long}");
    }
    scene
        .cmd()
        .args(["list", "--json", "-i", "id.txt"])
        .args(&volumes)
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "{\"payload\":\"archive\",\"manifest\":{\"created\":",
        ))
        .stdout(predicate::str::contains(
            "\"padding\":\"padme\"},\"entries\":[{\"path\":\"data\",\"kind\":\"dir\"",
        ))
        .stdout(predicate::str::contains(
            "{\"path\":\"data/big.bin\",\"kind\":\"file\",\"size\":150000,",
        ))
        .stdout(predicate::str::contains(
            "\"path\":\"data/nested/deeper/ünïcode name.csv\"",
        ));
}

#[test]
fn extract_entries_and_tar() {
    let scene = Scene::new();
    let tree = scene.make_tree("data");
    scene.seal_split("parcel.kuv", &["data"]);
    let volumes = scene.volumes("parcel");

    scene
        .cmd()
        .args([
            "open",
            "-i",
            "id.txt",
            "-o",
            "some",
            "--entry",
            "data/nested",
        ])
        .args(["--entry", "data/empty"])
        .args(&volumes)
        .assert()
        .success();
    assert_same_tree(&tree.join("nested"), &scene.path("some/data/nested"));
    assert!(scene.path("some/data/empty").exists());
    assert!(!scene.path("some/data/big.bin").exists());

    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "none", "--entry", "data/nope"])
        .args(&volumes)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no entry \"data/nope\""));
    assert!(!scene.path("none").exists());

    // --tar to a file and to standard output, read back by a tar reader.
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "--tar", "-o", "parcel.tar"])
        .args(&volumes)
        .assert()
        .success();
    let stdout = scene
        .cmd()
        .args(["open", "-i", "id.txt", "--tar", "-o", "-"])
        .args(&volumes)
        .output()
        .expect("run");
    assert!(stdout.status.success());
    let file = fs::read(scene.path("parcel.tar")).expect("tar");
    assert!(file == stdout.stdout);
    let mut archive = tar::Archive::new(file.as_slice());
    let unpacked = scene.path("untarred");
    archive.unpack(&unpacked).expect("unpack");
    assert_same_tree(&tree, &unpacked.join("data"));

    // Extracting over existing entries needs --force.
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "some"])
        .args(&volumes)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already exists"));
    scene
        .cmd()
        .args(["open", "-f", "-i", "id.txt", "-o", "some"])
        .args(&volumes)
        .assert()
        .success();
    assert_same_tree(&tree, &scene.path("some/data"));
}

#[test]
fn extracts_into_a_new_directory_named_after_the_set_by_default() {
    let scene = Scene::new();
    let tree = scene.make_tree("data");
    scene
        .cmd()
        .args([
            "seal",
            "-r",
            &scene.recipient,
            "-j",
            "2",
            "-o",
            "p.kuv",
            "data",
        ])
        .assert()
        .success();
    fs::create_dir(scene.path("here")).expect("mkdir");
    let in_here = || {
        let mut cmd = kuvert();
        cmd.current_dir(scene.path("here"));
        cmd
    };
    in_here()
        .args(["open", "-q", "-i", "../id.txt", "../p.kuv"])
        .assert()
        .success()
        .stderr("");
    assert_same_tree(&tree, &scene.path("here/p/data"));
    assert_eq!(fs::read_dir(scene.path("here")).expect("list").count(), 1);

    // Never into an existing directory, even with --force.
    fs::write(scene.path("here/p/mine"), "kept").expect("write");
    for force in [false, true] {
        let mut cmd = in_here();
        cmd.args(["open", "-i", "../id.txt"]);
        if force {
            cmd.arg("--force");
        }
        cmd.arg("../p.kuv").assert().code(1).stderr(
            "kuvert: p already exists: without -o an archive is extracted into a new directory \
             named after the set; give -o DIR to extract elsewhere (-o p to extract into it)\n",
        );
    }
    assert_eq!(fs::read(scene.path("here/p/mine")).expect("kept"), b"kept");

    // A split set, volumes in any order: named without the volume number.
    scene.seal_split("register.kuv", &["data"]);
    let mut volumes: Vec<String> = scene
        .volumes("register")
        .iter()
        .map(|v| format!("../{v}"))
        .collect();
    volumes.reverse();
    in_here()
        .args(["open", "-i", "../id.txt"])
        .args(&volumes)
        .assert()
        .success()
        .stderr(predicate::str::contains("into register\n"));
    assert_same_tree(&tree, &scene.path("here/register/data"));

    // A name that would make a hidden directory (`~/.ssh`) is refused.
    fs::copy(scene.path("p.kuv"), scene.path(".ssh.kuv")).expect("copy");
    in_here()
        .args(["open", "-i", "../id.txt", "../.ssh.kuv"])
        .assert()
        .code(2)
        .stderr(
            "kuvert: cannot name a directory after the volume .ssh.kuv: give -o DIR to say \
             where to extract\n",
        );
    assert!(!scene.path("here/.ssh").exists());

    // Created by kuvert, so removed again when extraction fails.
    fs::copy(scene.path("p.kuv"), scene.path("bad.kuv")).expect("copy");
    let len = fs::metadata(scene.path("bad.kuv")).expect("meta").len() as usize;
    flip_byte(&scene.path("bad.kuv"), len / 2);
    in_here()
        .args(["open", "-i", "../id.txt", "../bad.kuv"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("failed authentication"));
    assert!(!scene.path("here/bad").exists());
    let mut names: Vec<String> = fs::read_dir(scene.path("here"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["p", "register"]);

    // -o keeps its meaning: into DIR, existing or not.
    in_here()
        .args(["open", "-q", "-i", "../id.txt", "-o", ".", "../p.kuv"])
        .assert()
        .success();
    assert_same_tree(&tree, &scene.path("here/data"));
}

#[test]
fn force_replaces_a_set_and_removes_its_stale_volumes() {
    let scene = Scene::new();
    scene.make_tree("data");
    scene.seal_split("parcel.kuv", &["data"]);
    let before = scene.volumes("parcel");
    assert!(before.len() > 2);
    fs::write(scene.path("small.txt"), "small").expect("write");
    scene
        .cmd()
        .args([
            "seal",
            "-r",
            &scene.recipient,
            "-o",
            "parcel.kuv",
            "small.txt",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("parcel.001.kuv already exists"));
    scene
        .cmd()
        .args([
            "seal",
            "-f",
            "-r",
            &scene.recipient,
            "-o",
            "parcel.kuv",
            "small.txt",
        ])
        .assert()
        .success();
    assert_eq!(scene.volumes("parcel"), ["parcel.kuv"]);
    scene
        .cmd()
        .args(["list", "-i", "id.txt", "parcel.kuv"])
        .assert()
        .success()
        .stdout("small.txt\n");
}

#[cfg(unix)]
#[test]
fn a_failed_seal_leaves_no_output() {
    let scene = Scene::new();
    let tree = scene.make_tree("data");
    // A FIFO sorts after big.bin, so volumes are being written when it is met.
    let status = std::process::Command::new("mkfifo")
        .arg(tree.join("zz-fifo"))
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no mkfifo");
        return;
    }
    let before = scene.listing();
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "--chunk-size", "4K"])
        .args(["--volume-size", "32K", "-o", "parcel.kuv", "data"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "unsafe entry \"data/zz-fifo\": not a file, directory or symlink",
        ));
    assert_eq!(scene.listing(), before);
}

#[cfg(unix)]
#[test]
fn ctrl_c_removes_partial_volumes() {
    use std::io::Write;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let scene = Scene::new();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("kuvert"))
        .current_dir(scene.dir.path())
        .args([
            "seal",
            "-q",
            "-j",
            "1",
            "-r",
            &scene.recipient,
            "-o",
            "big.kuv",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&vec![7u8; 4 << 20]).expect("feed");
    stdin.flush().expect("flush");
    let started = Instant::now();
    while !scene
        .listing()
        .iter()
        .any(|n| n.ends_with(".kuvert-partial"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no partial volume appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let output = child.wait_with_output().expect("wait");
    drop(stdin);
    assert_eq!(output.status.code(), Some(130));
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted"));
    assert_eq!(scene.listing(), ["id.txt"]);
}

// ---------------------------------------------------------------- usage

#[test]
fn usage_errors_exit_2_and_failures_exit_1() {
    let scene = Scene::new();
    fs::write(scene.path("f.txt"), "x").expect("write");
    let usage: &[&[&str]] = &[
        &["frobnicate"],
        &["seal", "-o", "x.kuv", "f.txt"],
        &["seal", "-r", "kuvert1x", "f.txt"],
        &[
            "seal",
            "-p",
            "--passphrase-file",
            "f.txt",
            "-o",
            "x.kuv",
            "f.txt",
        ],
        &[
            "seal",
            "-r",
            &scene.recipient,
            "-o",
            "-",
            "--volume-size",
            "1M",
            "f.txt",
        ],
        &["seal", "-r", &scene.recipient, "-o", "x.kuv", "-", "f.txt"],
        &[
            "seal",
            "-r",
            &scene.recipient,
            "-j",
            "0",
            "-o",
            "x.kuv",
            "f.txt",
        ],
        &[
            "seal",
            "-r",
            &scene.recipient,
            "--chunk-size",
            "cd",
            "-o",
            "x.kuv",
            "f.txt",
        ],
        &["open"],
        &["open", "--tar", "--entry", "a", "-i", "id.txt", "x.kuv"],
        &["list", "--long", "--json", "x.kuv"],
        &["verify"],
        &["info"],
    ];
    for args in usage {
        scene.cmd().args(*args).assert().code(2);
    }
    // The output inside the directory sealed.
    fs::create_dir(scene.path("dir")).expect("mkdir");
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "-o", "dir/x.kuv", "dir"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("would seal itself"));

    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "-o", "s.kuv", "-"])
        .write_stdin("x")
        .assert()
        .success();
    let failures: &[&[&str]] = &[
        &[
            "seal",
            "-r",
            &scene.recipient,
            "-o",
            "y.kuv",
            "no-such-file",
        ],
        &["seal", "-r", "kuvert1notakey", "-o", "y.kuv", "f.txt"],
        &["open", "-i", "id.txt", "no-such.kuv"],
        &["open", "-i", "no-such-id.txt", "s.kuv"],
        &["open", "-i", "f.txt", "s.kuv"],
        &["info", "f.txt"],
        &["verify", "-i", "id.txt", "f.txt"],
    ];
    for args in failures {
        scene
            .cmd()
            .args(*args)
            .assert()
            .code(1)
            .stderr(predicate::str::starts_with("kuvert: "));
    }
    // A secret key given as a recipient gets a hint.
    let secret = fs::read_to_string(scene.id()).expect("id");
    let secret = secret.lines().last().expect("secret line");
    scene
        .cmd()
        .args(["seal", "-r", secret, "-o", "y.kuv", "f.txt"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a secret key"));
    // No key for a public-key set.
    scene
        .cmd()
        .args(["open", "s.kuv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no key given"));
    assert!(!scene.path("y.kuv").exists());
}

#[test]
fn help_documents_exit_codes_and_presets() {
    kuvert()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit status:"))
        .stdout(predicate::str::contains("2    a usage error"));
    kuvert()
        .args(["seal", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("cd            732,954,624 bytes"))
        .stdout(predicate::str::contains("bd-dl-nodm"))
        .stdout(predicate::str::contains("--passphrase-file"));
    for command in ["open", "list", "verify"] {
        kuvert()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Limits on untrusted headers:"))
            .stdout(predicate::str::contains("--max-argon2-memory <SIZE>"));
    }
    kuvert()
        .args(["open", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "without -o, into a new directory named after the set in the current directory",
        ));
    kuvert()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("kuvert "));
}

// ------------------------------------------------- sets built with the library

/// The scene's public key, for sealing through the library.
fn scene_recipient(scene: &Scene) -> kuvert::Recipient {
    scene.recipient.parse().expect("recipient")
}

/// Writes the volumes of a set as `STEM.kuv` (one) or `STEM.NNN.kuv`.
fn write_volumes(scene: &Scene, stem: &str, volumes: Vec<Vec<u8>>) -> Vec<String> {
    let names: Vec<String> = if volumes.len() == 1 {
        vec![format!("{stem}.kuv")]
    } else {
        (1..=volumes.len())
            .map(|n| format!("{stem}.{n:03}.kuv"))
            .collect()
    };
    for (name, bytes) in names.iter().zip(volumes) {
        fs::write(scene.path(name), bytes).expect("write volume");
    }
    names
}

/// A stream sealed to `sealer` (recipients and passphrase set by the caller).
fn seal_stream(sealer: &kuvert::Sealer, data: &[u8]) -> Vec<Vec<u8>> {
    use std::io::Write;
    let mut writer = sealer.seal(kuvert::MemorySink::new()).expect("seal");
    writer.write_all(data).expect("write");
    writer.finish().expect("finish").into_volumes()
}

/// A passphrase at the weakest costs the library writes: quick to open.
fn quick_passphrase(sealer: kuvert::Sealer) -> kuvert::Sealer {
    sealer
        .passphrase(kuvert::Passphrase::new("correct horse battery staple"))
        .argon2_params(kuvert::Argon2Params::MINIMUM)
}

#[test]
fn sender_chosen_names_are_escaped_in_listings_and_messages() {
    use kuvert::archive::ArchiveWriter;

    let scene = Scene::new();
    let writer = kuvert::Sealer::new()
        .recipient(scene_recipient(&scene))
        .chunk_size(4096)
        .seal_archive(kuvert::MemorySink::new())
        .expect("seal");
    let mut archive: ArchiveWriter<_> = writer;
    let big = pseudo_random(20_000, 9);
    archive
        .append_file("clear\x1b[2J", big.as_slice(), 20_000, 0o644, 0)
        .expect("append");
    archive
        .append_file("a\nkuvert: extracted 0 entries", &b"x"[..], 1, 0o644, 0)
        .expect("append");
    archive
        .append_file("doc\u{202e}txt.exe", &b""[..], 0, 0o644, 0)
        .expect("append");
    archive
        .append_symlink("link", "\x1b]0;title\x07", 0)
        .expect("append");
    let volumes = archive.finish().expect("finish").into_volumes();
    let name = write_volumes(&scene, "evil", volumes).remove(0);

    scene
        .cmd()
        .args(["list", "-i", "id.txt", &name])
        .assert()
        .success()
        .stdout("clear\\x1b[2J\na\\nkuvert: extracted 0 entries\ndoc\\u{202e}txt.exe\nlink\n");
    let long = scene
        .cmd()
        .args(["list", "--long", "-i", "id.txt", &name])
        .output()
        .expect("run");
    assert!(long.status.success());
    let long = String::from_utf8(long.stdout).expect("utf-8");
    assert_eq!(long.lines().count(), 4, "{long}");
    assert!(long.contains("  link -> \\x1b]0;title\\x07\n"), "{long}");
    assert!(!long.contains(['\x1b', '\x07', '\u{202e}']), "{long}");
    scene
        .cmd()
        .args(["list", "--json", "-i", "id.txt", &name])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"path\":\"clear\\u001b[2J\""))
        .stdout(predicate::str::contains("\"path\":\"doc\\u202etxt.exe\""))
        .stdout(predicate::str::contains(
            "\"link\":\"\\u001b]0;title\\u0007\"",
        ));

    // The library's error, as the CLI prints it.
    scene
        .cmd()
        .args([
            "open",
            "-i",
            "id.txt",
            "-o",
            "out",
            "--entry",
            "nope\x1b[2J",
        ])
        .arg(&name)
        .assert()
        .code(1)
        .stderr("kuvert: no entry \"nope\\x1b[2J\" in the archive\n");

    // A damaged entry is named escaped. Chunk 2 lies inside `clear…`'s data.
    let header_len = kuvert::inspect(&fs::read(scene.path(&name)).expect("read"))
        .expect("inspect")
        .header_len as usize;
    flip_byte(&scene.path(&name), header_len + 2 * 4096 + 100);
    scene
        .cmd()
        .args(["open", "--salvage", "-i", "id.txt", "-o", "out", &name])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "kuvert: clear\\x1b[2J: left out, evil.kuv (volume 1) at byte 10,240 (chunk 2): \
             failed authentication",
        ))
        .stderr(predicate::str::contains("\x1b").not());
    assert!(scene.path("out/a\nkuvert: extracted 0 entries").exists());

    // Volume files are named by whoever wrote the disc.
    fs::write(scene.path("junk\x1b[2J.kuv"), "not a volume").expect("write");
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "junk\x1b[2J.kuv"])
        .assert()
        .code(1)
        .stderr("kuvert: junk\\x1b[2J.kuv (input 1): not a kuvert volume\n");
}

#[test]
fn verify_groups_volumes_by_their_whole_set_part() {
    let scene = Scene::new();
    let other = kuvert::HybridIdentity::generate().expect("os randomness");
    let data = pseudo_random(40_000, 4);
    // The same seed gives the same file key and set id; the second set has
    // one stanza more, so its set part differs.
    let base = || {
        kuvert::Sealer::new()
            .recipient(scene_recipient(&scene))
            .chunk_size(4096)
            .volume_size(32 << 10)
            .insecure_deterministic_seed([5; 32])
            .created(Some(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_547_200),
            ))
            // Two volumes of these 40,000 bytes: the chunk layout alone.
            .pad(kuvert::Padding::None)
            .digests(false)
    };
    let a = write_volumes(&scene, "a", seal_stream(&base(), &data));
    let b = write_volumes(
        &scene,
        "b",
        seal_stream(&base().recipient(other.to_public()), &data),
    );
    assert_eq!((a.len(), b.len()), (2, 2));
    let id = |name: &str| {
        kuvert::inspect(&fs::read(scene.path(name)).expect("read"))
            .expect("inspect")
            .set_id
    };
    assert_eq!(id(&a[0]), id(&b[1]), "the splice needs one set id");

    // Each volume is intact on its own, but they do not open together.
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "out.bin", &a[0], &b[1]])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("header failed authentication"));
    scene
        .cmd()
        .args(["verify", "-i", "id.txt", &a[0], &b[1]])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("a.001.kuv: volume 1: intact"))
        .stdout(predicate::str::contains("b.002.kuv: volume 2: intact"))
        .stdout(predicate::str::contains(
            "b.002.kuv (volume 2) has the set id of the others but a different set header \
             (recipients or geometry): it does not open with them\n",
        ))
        .stdout(predicate::str::contains(": complete").not())
        .stderr("kuvert: 1 problem found: the volumes are not intact\n");
    // Volumes of one set still verify as complete.
    scene
        .cmd()
        .args(["verify", "-i", "id.txt", &b[1], &b[0]])
        .assert()
        .success()
        .stdout(predicate::str::contains(": complete, 2 volumes intact\n"));
}

#[test]
fn argon2_caps_are_raised_by_flags_that_errors_name() {
    let scene = Scene::new();
    // A crafted header asking for 4 TiB: refused before any work.
    // The library's test vector, one directory up.
    let vector = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/argon2-over-cap");
    fs::write(scene.path("pass"), "kuvert test vector passphrase\n").expect("write");
    scene
        .cmd()
        .args(["open", "--passphrase-file", "pass", "-o", "out.bin"])
        .arg(vector.join("v.001.kuv"))
        .assert()
        .code(1)
        .stderr(
            "kuvert: argon2id memory (KiB) is 4294967295, above the limit of 2097152; the \
             passphrase recipient asks for more work than kuvert allows untrusted input; if you \
             trust the set, raise the limit with --max-argon2-memory 4294967295K\n",
        );

    // 64 MiB, 3 passes, 4 lanes: each cap below it is named, and raising
    // the cap to exactly what the set asks opens it.
    fs::write(scene.path("pass"), "correct horse battery staple\n").expect("write");
    let sealer = quick_passphrase(kuvert::Sealer::new());
    let name = write_volumes(&scene, "p", seal_stream(&sealer, b"capped")).remove(0);
    for (flag, value, said) in [
        (
            "--max-argon2-memory",
            "32M",
            "argon2id memory (KiB) is 65536, above the limit of 32768",
        ),
        (
            "--max-argon2-passes",
            "2",
            "argon2id passes is 3, above the limit of 2",
        ),
        (
            "--max-argon2-lanes",
            "2",
            "argon2id lanes is 4, above the limit of 2",
        ),
    ] {
        for command in ["open", "list", "verify"] {
            let found = match flag {
                "--max-argon2-memory" => "65536K",
                "--max-argon2-passes" => "3",
                _ => "4",
            };
            let raise = format!("raise the limit with {flag} {found}");
            let mut cmd = scene.cmd();
            cmd.args([command, "--passphrase-file", "pass", flag, value, &name]);
            let assert = cmd.assert().code(1);
            let assert = if command == "verify" {
                assert.stdout(
                    predicate::str::contains(said).and(predicate::str::contains(raise.as_str())),
                )
            } else {
                assert.stderr(
                    predicate::str::contains(said).and(predicate::str::contains(raise.as_str())),
                )
            };
            drop(assert);
        }
    }
    scene
        .cmd()
        .args([
            "open",
            "--passphrase-file",
            "pass",
            "--max-argon2-memory",
            "64M",
        ])
        .args(["--max-argon2-passes", "3", "--max-argon2-lanes", "4", &name])
        .assert()
        .success()
        .stdout("capped");
    for bad in ["1000", "0K", "4T", "4294967296K"] {
        scene
            .cmd()
            .args([
                "open",
                "--passphrase-file",
                "pass",
                "--max-argon2-memory",
                bad,
                &name,
            ])
            .assert()
            .code(2);
    }
}

#[test]
fn a_passphrase_beside_public_keys_is_said_to_prove_nothing_on_open() {
    let scene = Scene::new();
    fs::write(scene.path("pass"), "correct horse battery staple\n").expect("write");
    const WARNING: &str = "kuvert: warning: the set also has public-key recipients, so the \
                           passphrase does not prove who sealed it (any recipient could have)\n";
    let mixed = quick_passphrase(kuvert::Sealer::new().recipient(scene_recipient(&scene)));
    // Said last by open, as for every unsigned set (not with -q).
    const UNSIGNED: &str = "kuvert: not signed: nothing proves who sealed it; anyone who knows \
                            the passphrase could have sealed it\n";
    let name = write_volumes(&scene, "m", seal_stream(&mixed, b"mixed")).remove(0);
    for quiet in [false, true] {
        let mut cmd = scene.cmd();
        cmd.args(["open", "--passphrase-file", "pass"]);
        if quiet {
            cmd.arg("-q");
        }
        cmd.arg(&name)
            .assert()
            .success()
            .stdout("mixed")
            .stderr(if quiet {
                WARNING.to_owned()
            } else {
                format!("{WARNING}{UNSIGNED}")
            });
    }
    scene
        .cmd()
        .args(["list", "--passphrase-file", "pass", &name])
        .assert()
        .success()
        .stderr(predicate::str::starts_with(WARNING));
    scene
        .cmd()
        .args(["verify", "--passphrase-file", "pass", &name])
        .assert()
        .success()
        .stderr(WARNING);
    // Opened with the key, or a passphrase alone: no warning, only that
    // the set is not signed.
    scene
        .cmd()
        .args(["open", "-i", "id.txt", &name])
        .assert()
        .success()
        .stdout("mixed")
        .stderr(UNSIGNED);
    let alone = quick_passphrase(kuvert::Sealer::new());
    let name = write_volumes(&scene, "alone", seal_stream(&alone, b"alone")).remove(0);
    scene
        .cmd()
        .args(["open", "--passphrase-file", "pass", &name])
        .assert()
        .success()
        .stdout("alone")
        .stderr(UNSIGNED);
}

#[test]
fn ctrl_c_while_extracting_removes_the_default_directory() {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use kuvert::archive::ArchiveWriter;

    let scene = Scene::new();
    let writer = kuvert::Sealer::new()
        .recipient(scene_recipient(&scene))
        .seal_archive(kuvert::MemorySink::new())
        .expect("seal");
    let mut archive: ArchiveWriter<_> = writer;
    let size = 96u64 << 20;
    let data = std::io::repeat(7).take(size);
    archive
        .append_file("big.bin", data, size, 0o644, 0)
        .expect("append");
    let volumes = archive.finish().expect("finish").into_volumes();
    let name = write_volumes(&scene, "big", volumes).remove(0);

    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("kuvert"))
        .current_dir(scene.dir.path())
        .args(["open", "-q", "-j", "1", "-i", "id.txt", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Interrupt once the file is being written into the staging directory.
    let started = Instant::now();
    let writing = || {
        fs::read_dir(scene.path("big")).is_ok_and(|mut entries| {
            entries.any(|e| {
                e.ok()
                    .and_then(|e| fs::read_dir(e.path()).ok())
                    .is_some_and(|mut inner| inner.next().is_some())
            })
        })
    };
    while !writing() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "extraction did not start"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted"));
    assert_eq!(scene.listing(), [name.as_str(), "id.txt"]);
}
