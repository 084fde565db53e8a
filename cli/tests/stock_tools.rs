//! README's "Who sealed it" stock-tool check, run as it is written: the
//! block after its marker comment, with the system's `ssh-keygen`, `b3sum`
//! and bash, on every volume of a real signed multi-volume set; then the
//! same commands on a volume with one chunk byte flipped (`b3sum` fails)
//! and with another signer's key (`ssh-keygen` fails); and `seal
//! --sign-agent` with a key in a real `ssh-agent`. Skipped, with a
//! note, where a tool is absent, unless `KUVERT_REQUIRE_STOCK_TOOLS` is set
//! (CI sets it).

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The line before the block in README.md.
const MARKER: &str = "<!-- The block below is run as it is by cli/tests/stock_tools.rs. -->";

fn have(tool: &str, arg: &str) -> bool {
    let found = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("KUVERT_REQUIRE_STOCK_TOOLS").is_none(),
            "{tool} not found, and KUVERT_REQUIRE_STOCK_TOOLS is set"
        );
        eprintln!("note: {tool} not found; the README stock-tool test is skipped");
    }
    found
}

/// The README's command lines, in order.
fn readme_block() -> Vec<String> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .expect("README.md");
    let after = readme
        .split_once(MARKER)
        .expect("the marker comment in README.md")
        .1;
    let block = after
        .trim_start()
        .strip_prefix("```sh\n")
        .expect("a sh block after the marker");
    let block = &block[..block.find("```").expect("the block ends")];
    block.lines().map(str::to_owned).collect()
}

/// Runs `lines` with `bash -euo pipefail` in `dir`, `kuvert` on PATH.
fn bash(dir: &Path, lines: &[String]) -> Output {
    let kuvert = Path::new(assert_cmd::cargo::cargo_bin!("kuvert"));
    let path = format!(
        "{}:{}",
        kuvert.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .args(["-euo", "pipefail", "-c", &lines.join("\n")])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("run bash")
}

fn kuvert(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run kuvert");
    assert!(output.status.success(), "{args:?}: {output:?}");
    output
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

#[test]
fn the_readme_stock_tool_commands_check_every_volume_and_catch_changes() {
    if !have("ssh-keygen", "-?") || !have("b3sum", "--version") || !have("bash", "--version") {
        return;
    }
    let block = readme_block();
    assert!(block[0].starts_with("kuvert export-signature parcel/register.001.kuv"));
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    kuvert(dir, &["keygen", "-o", "recipient.key"]);
    let recipient =
        String::from_utf8(kuvert(dir, &["keygen", "-y", "recipient.key"]).stdout).expect("utf-8");
    kuvert(dir, &["keygen", "--sign", "-o", "institute.sign"]);
    let public = kuvert(dir, &["keygen", "-y", "institute.sign"]).stdout;
    fs::write(dir.join("institute.pub"), &public).expect("write");
    fs::create_dir_all(dir.join("extract")).expect("mkdir");
    fs::write(dir.join("extract/persons.csv"), pseudo_random(300_000, 9)).expect("write");
    fs::create_dir(dir.join("parcel")).expect("mkdir");
    kuvert(
        dir,
        &[
            "seal",
            "-q",
            "-r",
            recipient.trim(),
            "--sign",
            "institute.sign",
            "--chunk-size",
            "16K",
            "--volume-size",
            "128K",
            "-o",
            "parcel/register.kuv",
            "extract/persons.csv",
        ],
    );
    let volumes: Vec<String> = (1..)
        .map(|n| format!("parcel/register.{n:03}.kuv"))
        .take_while(|name| dir.join(name).exists())
        .collect();
    assert!(volumes.len() >= 2, "{volumes:?}");

    for volume in &volumes {
        let lines: Vec<String> = block
            .iter()
            .map(|line| line.replace("parcel/register.001.kuv", volume))
            .collect();
        let out = bash(dir, &lines);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{volume}: {stdout}\n{stderr}");
        assert!(
            stdout.contains("Good \"kuvert\" signature for institute@example.org with ED25519 key")
                || stderr.contains(
                    "Good \"kuvert\" signature for institute@example.org with ED25519 key"
                ),
            "{stdout}\n{stderr}"
        );
        assert!(stdout.ends_with("-: OK\n"), "{stdout}");
    }

    // The checks after the export, on a changed copy: one chunk byte
    // flipped, the statement and signature genuine.
    let checks = &block[1..];
    let volume = &volumes[0];
    let statement = fs::read_to_string(dir.join(format!("{volume}.statement"))).expect("read");
    let header: usize = statement
        .lines()
        .find_map(|line| line.strip_prefix("# header "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("header length");
    let genuine = fs::read(dir.join(volume)).expect("read");
    let mut flipped = genuine.clone();
    flipped[header + 100] ^= 1;
    fs::write(dir.join(volume), &flipped).expect("write");
    let out = bash(dir, checks);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("-: FAILED"),
        "{out:?}"
    );
    fs::write(dir.join(volume), &genuine).expect("write");
    let out = bash(dir, checks);
    assert!(out.status.success(), "{out:?}");

    // Another signer under the same name: ssh-keygen refuses the signature.
    kuvert(dir, &["keygen", "--sign", "-o", "other.sign"]);
    let other = kuvert(dir, &["keygen", "-y", "other.sign"]).stdout;
    fs::write(dir.join("institute.pub"), &other).expect("write");
    let out = bash(dir, checks);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Could not verify signature")
            || String::from_utf8_lossy(&out.stderr).contains("Could not verify signature"),
        "{out:?}"
    );
}

/// A real `ssh-agent -D -a SOCK`, stopped by its pid on drop.
#[cfg(all(unix, feature = "ssh-agent"))]
struct Agent {
    child: std::process::Child,
    socket: std::path::PathBuf,
}

#[cfg(all(unix, feature = "ssh-agent"))]
impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let agent = Agent { child, socket };
        for _ in 0..200 {
            if agent.socket.exists() {
                return agent;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("ssh-agent made no socket in 2 s");
    }
}

#[cfg(all(unix, feature = "ssh-agent"))]
impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(all(unix, feature = "ssh-agent"))]
#[test]
fn seal_signs_with_a_key_held_by_ssh_agent() {
    if !have("ssh-agent", "-h") || !have("ssh-add", "-h") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let agent = Agent::start(dir);
    let key = kuvert::SigningKey::from_seed([6; 32]);
    let file = key
        .to_openssh_private_key("office@example.org")
        .expect("openssh file");
    fs::write(dir.join("k"), file.as_bytes()).expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.join("k"), fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let added = Command::new("ssh-add")
        .arg(dir.join("k"))
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .expect("run ssh-add");
    assert!(added.status.success(), "{added:?}");
    kuvert(dir, &["keygen", "-o", "id.txt"]);
    let recipient =
        String::from_utf8(kuvert(dir, &["keygen", "-y", "id.txt"]).stdout).expect("utf-8");
    fs::write(dir.join("data.bin"), pseudo_random(20_000, 3)).expect("write");
    let fingerprint = key.public().fingerprint();
    let public = key.public().to_string();
    for (out, name) in [("a.kuv", fingerprint.as_str()), ("b.kuv", public.as_str())] {
        let sealed = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"))
            .args(["seal", "-q", "-r", recipient.trim(), "--sign-agent", name])
            .args(["-o", out, "data.bin"])
            .current_dir(dir)
            .env("SSH_AUTH_SOCK", &agent.socket)
            .output()
            .expect("run kuvert");
        assert!(sealed.status.success(), "{sealed:?}");
        let verified = kuvert(dir, &["verify", "--signer", &public, out]);
        assert!(
            String::from_utf8_lossy(&verified.stdout)
                .contains(&format!("signed by {fingerprint} (checked)")),
            "{verified:?}"
        );
    }
    // A key the agent does not hold is refused before sealing.
    let other = kuvert::SigningKey::from_seed([7; 32]);
    let refused = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"))
        .args(["seal", "-r", recipient.trim(), "--sign-agent"])
        .arg(other.public().to_string())
        .args(["-o", "c.kuv", "data.bin"])
        .current_dir(dir)
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .expect("run kuvert");
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(!dir.join("c.kuv").exists());
}
