//! Signed sets through the CLI (README "Who sealed it"): `seal --sign`,
//! `verify --signer` without any decryption key, `open`/`list --signer`
//! failing closed, what is said without `--signer`, `info`, and the
//! statement and signature files of `export-signature` and `--sig-files`.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

fn kuvert() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"));
    cmd.env_remove("KUVERT_PASSPHRASE_FILE");
    cmd.env_remove("SSH_AUTH_SOCK");
    cmd
}

/// A directory with a recipient identity, two signing keys and data.
struct Scene {
    dir: TempDir,
    recipient: String,
    /// `kuvertsign1…` of `institute.sign`.
    signer: String,
    /// `SHA256:…` of `institute.sign`.
    fingerprint: String,
    /// `kuvertsign1…` of `other.sign`.
    other: String,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let scene = Scene {
            dir,
            recipient: String::new(),
            signer: String::new(),
            fingerprint: String::new(),
            other: String::new(),
        };
        let recipient = scene.keygen(&["keygen", "-o", "id.txt"]);
        let signer = scene.keygen(&["keygen", "--sign", "-o", "institute.sign"]);
        let other = scene.keygen(&["keygen", "--sign", "-o", "other.sign"]);
        let public = scene.run_ok(&["keygen", "-y", "institute.sign"]);
        fs::write(scene.path("institute.pub"), &public).expect("write");
        let openssh = public.lines().nth(1).expect("openssh line").to_owned();
        fs::write(
            scene.path("allowed_signers"),
            format!("institute@example.org namespaces=\"kuvert\" {openssh}\n"),
        )
        .expect("write");
        fs::write(scene.path("data.bin"), pseudo_random(100_000, 5)).expect("write");
        let key: kuvert::SignerKey = signer.parse().expect("signer key");
        Scene {
            fingerprint: key.fingerprint(),
            recipient,
            signer,
            other,
            ..scene
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self) -> Command {
        let mut cmd = kuvert();
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs a keygen and returns the first public key it prints.
    fn keygen(&self, args: &[&str]) -> String {
        let output = self.cmd().args(args).output().expect("run keygen");
        assert!(output.status.success(), "{output:?}");
        let stderr = String::from_utf8(output.stderr).expect("utf-8");
        stderr
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("Public key: "))
            .expect("public key on stderr")
            .to_owned()
    }

    /// Runs a command that must succeed; its standard output.
    fn run_ok(&self, args: &[&str]) -> String {
        let output = self.cmd().args(args).output().expect("run");
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).expect("utf-8")
    }

    /// Seals `data.bin` as a stream (from standard input) onto small
    /// volumes, with `extra` flags.
    fn seal(&self, out: &str, extra: &[&str]) -> Vec<String> {
        self.cmd()
            .args(["seal", "-q", "-r", &self.recipient, "--chunk-size", "4K"])
            .args(["--volume-size", "64K", "-o", out])
            .args(extra)
            .arg("-")
            .write_stdin(fs::read(self.path("data.bin")).expect("read"))
            .assert()
            .success();
        self.volumes(out.trim_end_matches(".kuv"))
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

fn names(volumes: &[String]) -> Vec<&str> {
    volumes.iter().map(String::as_str).collect()
}

#[test]
fn a_signed_set_verifies_without_any_decryption_key() {
    let scene = Scene::new();
    let volumes = scene.seal("p.kuv", &["--sign", "institute.sign"]);
    assert!(volumes.len() >= 2, "{volumes:?}");
    // The key itself, its OpenSSH line, the `keygen -y` file and an
    // allowed_signers file: each trusts the same signer.
    let openssh = fs::read_to_string(scene.path("institute.pub")).expect("read");
    let openssh = openssh.lines().nth(1).expect("openssh line").to_owned();
    for signer in [
        scene.signer.as_str(),
        openssh.as_str(),
        "institute.pub",
        "allowed_signers",
    ] {
        let output = scene
            .cmd()
            .args(["verify", "--signer", signer])
            .args(names(&volumes))
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{signer}: {output:?}");
        for (index, volume) in volumes.iter().enumerate() {
            assert!(
                stdout.contains(&format!(
                    "{volume}: volume {}: signed by {}",
                    index + 1,
                    scene.fingerprint
                )),
                "{signer}: {stdout}"
            );
        }
        assert!(stdout.contains("complete"), "{stdout}");
    }
    // allowed_signers names the principal.
    scene
        .cmd()
        .args(["verify", "--signer", "allowed_signers"])
        .args(names(&volumes))
        .assert()
        .success()
        .stdout(predicate::str::contains("(institute@example.org)"));
    // One disc alone, as a courier checks it.
    scene
        .cmd()
        .args(["verify", "--allow-incomplete", "--signer", &scene.signer])
        .arg(&volumes[1])
        .assert()
        .success();
}

#[test]
fn another_signer_is_refused_naming_the_volume() {
    let scene = Scene::new();
    let volumes = scene.seal("p.kuv", &["--sign", "institute.sign"]);
    let output = scene
        .cmd()
        .args(["verify", "--signer", &scene.other])
        .args(names(&volumes))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for volume in &volumes {
        assert!(
            stdout.contains(&format!("{volume}: FAILED")),
            "{volume}: {stdout}"
        );
    }
    assert!(stdout.contains(&scene.fingerprint), "{stdout}");
    // open and list refuse too, before anything is written.
    let output = scene
        .cmd()
        .args([
            "open",
            "-i",
            "id.txt",
            "--signer",
            &scene.other,
            "-o",
            "out.bin",
        ])
        .args(names(&volumes))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("p.00"), "{stderr}");
    assert!(!scene.path("out.bin").exists());
    scene
        .cmd()
        .args(["list", "-i", "id.txt", "--signer", &scene.other])
        .args(names(&volumes))
        .assert()
        .code(1)
        .stdout("");
    // The right signer opens it, and says so on standard error only.
    let output = scene
        .cmd()
        .args([
            "open",
            "-i",
            "id.txt",
            "--signer",
            "allowed_signers",
            "-o",
            "-",
        ])
        .args(names(&volumes))
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        output.stdout,
        fs::read(scene.path("data.bin")).expect("read")
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "kuvert: signed by {} (institute@example.org): signature checked",
            scene.fingerprint
        )),
        "{stderr}"
    );
}

#[test]
fn an_unsigned_set_is_refused_with_signer_and_nothing_is_extracted() {
    let scene = Scene::new();
    fs::create_dir(scene.path("tree")).expect("mkdir");
    fs::write(scene.path("tree/a.txt"), b"register\n").expect("write");
    scene
        .cmd()
        .args(["seal", "-q", "-r", &scene.recipient, "-o", "u.kuv", "tree"])
        .assert()
        .success();
    let output = scene
        .cmd()
        .args([
            "open",
            "-i",
            "id.txt",
            "--signer",
            &scene.signer,
            "-o",
            "out",
        ])
        .arg("u.kuv")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("u.kuv"), "{stderr}");
    assert!(stderr.contains("not signed"), "{stderr}");
    assert!(!scene.path("out").exists());
    // Without a key too.
    scene
        .cmd()
        .args(["verify", "--signer", &scene.signer, "u.kuv"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("u.kuv: FAILED"));
}

#[test]
fn without_signer_open_and_list_say_who_signed_or_that_nothing_proves_it() {
    let scene = Scene::new();
    let signed = scene.seal("s.kuv", &["--sign", "institute.sign"]);
    let data = fs::read(scene.path("data.bin")).expect("read");
    let output = scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "-"])
        .args(names(&signed))
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, data, "nothing mixed into the output");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "kuvert: signed by {} — not checked: pass --signer to check it\n",
            scene.fingerprint
        )
    );
    let unsigned = scene.seal("u.kuv", &[]);
    scene
        .cmd()
        .args(["open", "-i", "id.txt", "-o", "-"])
        .args(names(&unsigned))
        .assert()
        .success()
        .stdout(data)
        .stderr("kuvert: not signed: nothing proves who sealed it\n");
    // -q keeps quiet about it.
    scene
        .cmd()
        .args(["-q", "open", "-i", "id.txt", "-o", "-"])
        .args(names(&unsigned))
        .assert()
        .success()
        .stderr("");
}

#[test]
fn info_shows_the_signers_without_a_key() {
    let scene = Scene::new();
    let volumes = scene.seal(
        "p.kuv",
        &["--sign", "institute.sign", "--sign", "other.sign"],
    );
    let text = scene.run_ok(&["info", &volumes[0]]);
    assert!(
        text.contains(&format!(
            "  signed by       {} ({})",
            scene.fingerprint, scene.signer
        )),
        "{text}"
    );
    assert!(text.contains(&scene.other), "{text}");
    assert!(text.contains("kuvert verify --signer"), "{text}");
    let json = scene.run_ok(&["info", "--json", &volumes[0]]);
    assert!(json.contains("\"signed\":true"), "{json}");
    assert!(
        json.contains(&format!("\"fingerprint\":\"{}\"", scene.fingerprint)),
        "{json}"
    );
    let unsigned = scene.seal("u.kuv", &[]);
    let text = scene.run_ok(&["info", &unsigned[0]]);
    assert!(
        text.contains("  signed          no: nothing proves who sealed it"),
        "{text}"
    );
    assert!(
        scene
            .run_ok(&["info", "--json", &unsigned[0]])
            .contains("\"signed\":false,\"signers\":[]")
    );
}

/// The statement and signature files of a volume, as read back.
fn sig_files(dir: &Path, volume: &str) -> (String, String) {
    let statement =
        fs::read_to_string(dir.join(format!("{volume}.statement"))).expect("statement file");
    let sig = fs::read_to_string(dir.join(format!("{volume}.sig"))).expect("signature file");
    (statement, sig)
}

#[test]
fn export_signature_writes_the_files_once_and_prints_the_commands() {
    let scene = Scene::new();
    let volumes = scene.seal("p.kuv", &["--sign", "institute.sign"]);
    fs::create_dir(scene.path("out")).expect("mkdir");
    let stdout =
        scene.run_ok(&[&["export-signature", "-o", "out"][..], &names(&volumes)[..]].concat());
    let last = volumes.len();
    for (index, volume) in volumes.iter().enumerate() {
        let (statement, sig) = sig_files(&scene.path("out"), volume);
        assert!(
            statement.starts_with("# kuvert volume statement 1\n"),
            "{statement}"
        );
        assert!(statement.contains(&format!("\n# volume {}\n", index + 1)));
        assert_eq!(
            statement.contains("\n# last volume "),
            index + 1 == last,
            "{statement}"
        );
        assert!(statement.ends_with("  -\n"), "{statement}");
        assert!(sig.starts_with("-----BEGIN SSH SIGNATURE-----\n"), "{sig}");
        assert!(sig.ends_with("-----END SSH SIGNATURE-----\n"), "{sig}");
        // The numbers of the b3sum line are the statement's.
        let header: u64 = statement
            .lines()
            .find_map(|line| line.strip_prefix("# header "))
            .and_then(|rest| rest.split(' ').next())
            .expect("header line")
            .parse()
            .expect("number");
        let end: u64 = statement
            .lines()
            .find_map(|line| line.strip_prefix("# length "))
            .expect("length line")
            .parse()
            .expect("number");
        assert!(
            stdout.contains(&format!(
                "head -c {end} {volume} | tail -c +{} | b3sum -c <(tail -n 1 out/{volume}.statement)",
                header + 1
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "ssh-keygen -Y verify -f allowed_signers -I PRINCIPAL -n kuvert -s out/{volume}.sig \
                 < out/{volume}.statement"
            )),
            "{stdout}"
        );
    }
    // Never replaced: a second export fails and leaves the files.
    fs::write(scene.path(&format!("out/{}.sig", volumes[0])), b"mine").expect("write");
    scene
        .cmd()
        .args(["export-signature", "-o", "out", &volumes[0]])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already exists"));
    assert_eq!(
        fs::read(scene.path(&format!("out/{}.sig", volumes[0]))).expect("read"),
        b"mine"
    );
    // An unsigned volume has nothing to export.
    let unsigned = scene.seal("u.kuv", &[]);
    scene
        .cmd()
        .args(["export-signature", &unsigned[0]])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("u.001.kuv"));
    assert!(!scene.path("u.001.kuv.statement").exists());
}

#[test]
fn sig_files_are_written_beside_each_volume_at_sealing() {
    let scene = Scene::new();
    let volumes = scene.seal(
        "p.kuv",
        &[
            "--sign",
            "institute.sign",
            "--sign",
            "other.sign",
            "--sig-files",
        ],
    );
    fs::create_dir(scene.path("out")).expect("mkdir");
    scene.run_ok(&[&["export-signature", "-o", "out"][..], &names(&volumes)[..]].concat());
    for volume in &volumes {
        assert_eq!(
            sig_files(scene.dir.path(), volume),
            sig_files(&scene.path("out"), volume),
            "{volume}"
        );
        let second = format!("{volume}.2.sig");
        assert_eq!(
            fs::read(scene.path(&second)).expect("second signer's file"),
            fs::read(scene.path("out").join(&second)).expect("exported")
        );
    }
    // A second seal to the same name refuses, sig files counted as the
    // set's; --force replaces them all.
    scene
        .cmd()
        .args([
            "seal",
            "-q",
            "-r",
            &scene.recipient,
            "-o",
            "p.kuv",
            "data.bin",
        ])
        .assert()
        .code(1);
    fs::remove_file(scene.path(&volumes[0])).expect("rm");
    for volume in &volumes[1..] {
        fs::remove_file(scene.path(volume)).expect("rm");
    }
    scene
        .cmd()
        .args([
            "seal",
            "-q",
            "-r",
            &scene.recipient,
            "-o",
            "p.kuv",
            "data.bin",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(".sig already exists (use --force"));
    scene
        .cmd()
        .args([
            "seal",
            "-q",
            "-f",
            "-r",
            &scene.recipient,
            "-o",
            "p.kuv",
            "data.bin",
        ])
        .assert()
        .success();
    assert!(!scene.path(&format!("{}.statement", volumes[0])).exists());
}

#[test]
fn signing_keys_are_checked_before_sealing() {
    let scene = Scene::new();
    // Five signers: more than a set names.
    scene
        .cmd()
        .args(["seal", "-r", &scene.recipient, "-o", "x.kuv", "data.bin"])
        .args(["--sign", "institute.sign"].repeat(5))
        .assert()
        .code(2);
    // An identity is no signing key.
    scene
        .cmd()
        .args([
            "seal",
            "-r",
            &scene.recipient,
            "--sign",
            "id.txt",
            "-o",
            "x.kuv",
            "data.bin",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--sign id.txt"));
    // An encrypted OpenSSH key points to ssh-agent.
    fs::write(scene.path("enc.key"), encrypted_openssh_key()).expect("write");
    scene
        .cmd()
        .args([
            "seal",
            "-r",
            &scene.recipient,
            "--sign",
            "enc.key",
            "-o",
            "x.kuv",
            "data.bin",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--sign-agent"));
    // --sig-files needs a signer, and signing needs the trailers.
    scene
        .cmd()
        .args([
            "seal",
            "-r",
            &scene.recipient,
            "--sig-files",
            "-o",
            "x.kuv",
            "data.bin",
        ])
        .assert()
        .code(2);
    scene
        .cmd()
        .args([
            "seal",
            "-r",
            &scene.recipient,
            "--sign",
            "institute.sign",
            "--no-digests",
        ])
        .args(["-o", "x.kuv", "data.bin"])
        .assert()
        .code(2);
    assert!(!scene.path("x.kuv").exists());
    // --signer that is neither a key nor a file.
    scene
        .cmd()
        .args(["verify", "--signer", "no-such-file", "data.bin"])
        .assert()
        .code(2);
}

/// The start of an `openssh-key-v1` file encrypted with aes256-ctr and
/// bcrypt, as `ssh-keygen -N secret` writes one: enough for kuvert to tell.
fn encrypted_openssh_key() -> String {
    let mut blob = b"openssh-key-v1\0".to_vec();
    for field in [&b"aes256-ctr"[..], b"bcrypt", &[0u8; 24][..]] {
        blob.extend_from_slice(&(field.len() as u32).to_be_bytes());
        blob.extend_from_slice(field);
    }
    blob.extend_from_slice(&1u32.to_be_bytes());
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        base64(&blob)
    )
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn verify_with_a_key_and_signer_checks_both() {
    let scene = Scene::new();
    let volumes = scene.seal("p.kuv", &["--sign", "institute.sign"]);
    let stdout = scene.run_ok(
        &[
            &["verify", "-i", "id.txt", "--signer", "allowed_signers"][..],
            &names(&volumes)[..],
        ]
        .concat(),
    );
    for volume in &volumes {
        assert!(
            stdout
                .lines()
                .any(|line| line.starts_with(&format!("{volume}: volume "))
                    && line.contains(": intact")
                    && line.ends_with(&format!(
                        ", signed by {} (institute@example.org) (checked)",
                        scene.fingerprint
                    ))),
            "{stdout}"
        );
    }
    // Without --signer: intact, and who signed it is a claim.
    let stdout = scene.run_ok(&[&["verify", "-i", "id.txt"][..], &names(&volumes)[..]].concat());
    assert!(
        stdout.contains(&format!(
            "signed by {} — not checked: pass --signer to check it",
            scene.fingerprint
        )),
        "{stdout}"
    );
    scene
        .cmd()
        .args(["verify", "-i", "id.txt", "--signer", &scene.other])
        .args(names(&volumes))
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!("{}: FAILED", volumes[0])));
}

#[test]
fn a_changed_chunk_of_a_signed_volume_is_named_and_nothing_released() {
    let scene = Scene::new();
    let volumes = scene.seal("p.kuv", &["--sign", "institute.sign"]);
    // A byte inside chunk 1 of volume 2 (chunks are 4 KiB after a 2 KiB
    // header).
    let path = scene.path(&volumes[1]);
    let mut bytes = fs::read(&path).expect("read");
    bytes[2048 + 4096 + 10] ^= 1;
    fs::write(&path, &bytes).expect("write");
    let output = scene
        .cmd()
        .args(["verify", "--signer", &scene.signer])
        .args(names(&volumes))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failed = stdout
        .lines()
        .find(|line| line.starts_with(&format!("{}: FAILED", volumes[1])))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(failed.contains("chunk"), "{failed}");
    assert!(
        stdout.contains(&format!("{}: volume 1: signed by", volumes[0])),
        "{stdout}"
    );
    let output = scene
        .cmd()
        .args([
            "open",
            "-i",
            "id.txt",
            "--signer",
            &scene.signer,
            "-o",
            "out.bin",
        ])
        .args(names(&volumes))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(!scene.path("out.bin").exists());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&volumes[1]),
        "{output:?}"
    );
}

#[test]
fn an_openssh_key_file_signs_and_its_public_line_checks() {
    let scene = Scene::new();
    let key = kuvert::SigningKey::from_seed([4; 32]);
    let file = key
        .to_openssh_private_key("office@example.org")
        .expect("openssh file");
    fs::write(scene.path("id_ed25519"), file.as_bytes()).expect("write");
    let volumes = scene.seal("p.kuv", &["--sign", "id_ed25519"]);
    scene
        .cmd()
        .args(["verify", "--signer", &key.public().to_openssh("office")])
        .args(names(&volumes))
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "signed by {} (checked)",
            key.public().fingerprint()
        )));
}

#[test]
fn list_with_signer_keeps_the_listing_clean() {
    let scene = Scene::new();
    fs::create_dir(scene.path("tree")).expect("mkdir");
    fs::write(scene.path("tree/a.txt"), b"register\n").expect("write");
    scene
        .cmd()
        .args([
            "seal",
            "-q",
            "-r",
            &scene.recipient,
            "--sign",
            "institute.sign",
        ])
        .args(["-o", "t.kuv", "tree"])
        .assert()
        .success();
    let output = scene
        .cmd()
        .args([
            "list",
            "--json",
            "-i",
            "id.txt",
            "--signer",
            &scene.signer,
            "t.kuv",
        ])
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert!(stdout.starts_with("{\"payload\":\"archive\""), "{stdout}");
    assert!(stdout.contains("\"path\":\"tree/a.txt\""), "{stdout}");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "kuvert: signed by {}: signature checked\n",
            scene.fingerprint
        )
    );
    scene
        .cmd()
        .args([
            "-q",
            "list",
            "-i",
            "id.txt",
            "--signer",
            &scene.signer,
            "t.kuv",
        ])
        .assert()
        .success()
        .stdout("tree/\ntree/a.txt\n")
        .stderr("");
}
