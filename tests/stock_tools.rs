//! kuvert's signatures against OpenSSH's own `ssh-keygen`: the same key
//! and statement give byte-identical `.sig` files, `ssh-keygen -Y verify`
//! accepts kuvert's and refuses a changed statement, and fingerprints
//! agree with `ssh-keygen -lf`, and a key in a real ssh-agent signs the
//! same. Skipped, with a note, where `ssh-keygen` is absent, unless
//! `KUVERT_REQUIRE_STOCK_TOOLS` is set (CI sets it).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use kuvert::sign::statement::{LastVolume, Statement};
use kuvert::sign::{SigningKey, parse_allowed_signers, sshsig};

const PRINCIPAL: &str = "institute@example.org";

fn have_ssh_keygen() -> bool {
    let found = Command::new("ssh-keygen")
        .arg("-?")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        // CI sets it: there a missing ssh-keygen is a failure, not a skip.
        assert!(
            std::env::var_os("KUVERT_REQUIRE_STOCK_TOOLS").is_none(),
            "ssh-keygen not found, and KUVERT_REQUIRE_STOCK_TOOLS is set"
        );
        eprintln!("note: ssh-keygen not found; the stock-tool tests are skipped");
    }
    found
}

fn statement(volume: u32, last: bool) -> Statement {
    Statement {
        set_id: [0x11; 32],
        volume,
        first_chunk: u64::from(volume - 1) * 2,
        chunks: 2,
        chunk_len: 4096,
        header_len: 2048,
        header_digest: [0x22; 32],
        end: 2048 + 2 * 4096,
        table_digest: [0x33; 32],
        last: last.then_some(LastVolume {
            volumes: volume,
            final_chunk: u64::from(volume) * 2 - 1,
        }),
        region_digest: [0x44; 32],
    }
}

/// `ssh-keygen ARGS…` with `stdin`, in `dir`.
fn ssh_keygen(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ssh-keygen");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("ssh-keygen ends")
}

/// Writes a private key file with mode 0600, as ssh-keygen requires.
fn write_private(path: &Path, text: &str) {
    fs::write(path, text).expect("write key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

/// `ssh-keygen -Y sign -n kuvert` over `message` with the key file `key`.
fn ssh_keygen_sign(dir: &Path, key: &str, message: &[u8]) -> Vec<u8> {
    fs::write(dir.join("statement"), message).expect("write statement");
    let _ = fs::remove_file(dir.join("statement.sig"));
    let out = ssh_keygen(
        dir,
        &["-Y", "sign", "-f", key, "-n", "kuvert", "statement"],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read(dir.join("statement.sig")).expect("ssh-keygen wrote the signature")
}

#[test]
fn kuvert_signatures_are_ssh_keygens_byte_for_byte() {
    if !have_ssh_keygen() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // A kuvert key written as an OpenSSH file for ssh-keygen.
    let key = SigningKey::from_seed([2; 32]);
    let file = key.to_openssh_private_key(PRINCIPAL).expect("openssh file");
    write_private(&dir.path().join("kuvert.key"), &file);
    for (volume, last) in [(1, false), (3, true)] {
        let message = statement(volume, last).encode();
        let ours = sshsig::sign(&key, message.as_bytes()).expect("signs");
        let theirs = ssh_keygen_sign(dir.path(), "kuvert.key", message.as_bytes());
        assert_eq!(String::from_utf8(theirs).expect("ascii"), ours);
        assert_eq!(ours.len(), sshsig::ARMORED_LEN);
    }
    // A key ssh-keygen made, read by kuvert.
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sign/testdata/ssh-keygen-ed25519");
    let text = fs::read_to_string(&fixture).expect("fixture");
    write_private(&dir.path().join("ssh.key"), &text);
    let key = SigningKey::parse_file(&text).expect("ssh-keygen key");
    let message = statement(2, false).encode();
    let ours = sshsig::sign(&key, message.as_bytes()).expect("signs");
    let theirs = ssh_keygen_sign(dir.path(), "ssh.key", message.as_bytes());
    assert_eq!(String::from_utf8(theirs.clone()).expect("ascii"), ours);
    sshsig::verify(&theirs, message.as_bytes(), key.public()).expect("kuvert verifies it");
}

#[test]
fn ssh_keygen_verifies_kuvert_signatures_and_refuses_changed_statements() {
    if !have_ssh_keygen() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SigningKey::from_seed([2; 32]);
    let other = SigningKey::from_seed([3; 32]);
    let allowed = format!(
        "{PRINCIPAL} namespaces=\"kuvert\" {}\nother@example.org {}\n",
        key.public().to_openssh(""),
        other.public().to_openssh("")
    );
    fs::write(dir.path().join("allowed_signers"), &allowed).expect("write");
    // kuvert reads the same file.
    let parsed = parse_allowed_signers(&allowed).expect("allowed_signers");
    assert_eq!(parsed.signers[0].key, *key.public());
    assert_eq!(parsed.signers[0].principals, PRINCIPAL);

    let message = statement(3, true).encode();
    let sig = sshsig::sign(&key, message.as_bytes()).expect("signs");
    fs::write(dir.path().join("st.sig"), &sig).expect("write");
    let verify = |principal: &str, message: &[u8]| {
        ssh_keygen(
            dir.path(),
            &[
                "-Y",
                "verify",
                "-f",
                "allowed_signers",
                "-I",
                principal,
                "-n",
                "kuvert",
                "-s",
                "st.sig",
            ],
            message,
        )
    };
    let good = verify(PRINCIPAL, message.as_bytes());
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert_eq!(
        String::from_utf8(good.stdout).expect("utf-8").trim_end(),
        format!(
            "Good \"kuvert\" signature for {PRINCIPAL} with ED25519 key {}",
            key.public().fingerprint()
        )
    );
    // One byte changed, one byte appended, another volume's statement.
    let mut changed = message.clone().into_bytes();
    changed[40] ^= 1;
    let mut appended = message.clone().into_bytes();
    appended.push(b'\n');
    for bad in [changed, appended, statement(2, false).encode().into_bytes()] {
        let out = verify(PRINCIPAL, &bad);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("Could not verify signature"));
    }
    // The right statement, the wrong principal.
    assert!(
        !verify("other@example.org", message.as_bytes())
            .status
            .success()
    );
    // check-novalidate: the signature is sound, whoever made it.
    let novalidate = ssh_keygen(
        dir.path(),
        &["-Y", "check-novalidate", "-n", "kuvert", "-s", "st.sig"],
        message.as_bytes(),
    );
    assert!(
        novalidate.status.success(),
        "{}",
        String::from_utf8_lossy(&novalidate.stderr)
    );
    let wrong_namespace = ssh_keygen(
        dir.path(),
        &["-Y", "check-novalidate", "-n", "file", "-s", "st.sig"],
        message.as_bytes(),
    );
    assert!(!wrong_namespace.status.success());
}

#[test]
fn fingerprints_and_public_lines_are_ssh_keygens() {
    if !have_ssh_keygen() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for seed in [2u8, 3, 0xa5] {
        let key = SigningKey::from_seed([seed; 32]);
        fs::write(
            dir.path().join("k.pub"),
            key.public().to_openssh("c") + "\n",
        )
        .expect("write");
        let out = ssh_keygen(dir.path(), &["-lf", "k.pub"], b"");
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).expect("utf-8"),
            format!("256 {} c (ED25519)\n", key.public().fingerprint())
        );
        // ssh-keygen derives the same public line from kuvert's private file.
        let file = key.to_openssh_private_key("c").expect("openssh file");
        write_private(&dir.path().join("k"), &file);
        let out = ssh_keygen(dir.path(), &["-y", "-f", "k"], b"");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).expect("utf-8"),
            key.public().to_openssh("c") + "\n"
        );
    }
}

/// A real `ssh-agent -D -a SOCK`, stopped by its pid on drop.
#[cfg(unix)]
struct Agent {
    child: std::process::Child,
    socket: std::path::PathBuf,
}

#[cfg(unix)]
impl Agent {
    fn start(dir: &Path) -> Option<Agent> {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let agent = Agent { child, socket };
        for _ in 0..200 {
            if agent.socket.exists() {
                return Some(agent);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("ssh-agent made no socket in 2 s");
    }
}

#[cfg(unix)]
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
#[test]
fn a_key_in_ssh_agent_signs_as_the_key_itself() {
    use kuvert::VolumeSigner;
    use kuvert::sign::{AgentSigner, agent_keys};

    if !have_ssh_keygen() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(agent) = Agent::start(dir.path()) else {
        eprintln!("note: ssh-agent not found; the agent test is skipped");
        return;
    };
    let key = SigningKey::from_seed([2; 32]);
    let file = key.to_openssh_private_key(PRINCIPAL).expect("openssh file");
    write_private(&dir.path().join("k"), &file);
    let added = Command::new("ssh-add")
        .arg(dir.path().join("k"))
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .expect("run ssh-add");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let held = agent_keys(&agent.socket).expect("lists keys");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].key, *key.public());
    assert_eq!(held[0].comment, PRINCIPAL);

    let signer = AgentSigner::at(&agent.socket, key.public()).expect("agent holds the key");
    assert_eq!(signer.public_key(), key.public());
    let message = statement(1, true).encode();
    let by_agent = sshsig::sign(&signer, message.as_bytes()).expect("the agent signs");
    let by_key = sshsig::sign(&key, message.as_bytes()).expect("the key signs");
    assert_eq!(by_agent, by_key);
    let other = SigningKey::from_seed([3; 32]);
    assert!(AgentSigner::at(&agent.socket, other.public()).is_err());
}
