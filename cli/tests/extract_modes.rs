//! Modes of extracted files and directories under the receiver's umask
//! (issue 8): final = archived & 0o777 & ~umask, never set-uid, set-gid,
//! sticky or world-writable.
//!
//! The umask is process-global and tests run on parallel threads, so it is
//! never changed in this process: each case runs `kuvert open` through
//! `sh -c 'umask U; exec kuvert …'`, one case after another inside one test.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn kuvert() -> PathBuf {
    PathBuf::from(assert_cmd::cargo::cargo_bin!("kuvert"))
}

/// The archived tree: (path, mode), directories ending in `/`, parents first.
const TREE: [(&str, u32); 13] = [
    ("src/", 0o755),
    ("src/suid", 0o4777),
    ("src/sgid", 0o2750),
    ("src/plain", 0o644),
    ("src/private", 0o600),
    ("src/exec", 0o755),
    ("src/everyone", 0o666),
    ("src/readonly", 0o444),
    ("src/sticky/", 0o1777),
    ("src/sticky/in", 0o640),
    ("src/d750/", 0o750),
    ("src/d750/setgid/", 0o2775),
    ("src/d750/setgid/f", 0o604),
];

/// Every mode below `root`, paths relative to it, symlinks not followed.
fn modes(root: &Path) -> BTreeMap<String, u32> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeMap<String, u32>) {
        for entry in fs::read_dir(at).expect("list") {
            let path = entry.expect("entry").path();
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let mut rel = path
                .strip_prefix(root)
                .expect("below")
                .to_string_lossy()
                .into_owned();
            if meta.is_dir() {
                rel.push('/');
                walk(root, &path, out);
            }
            out.insert(rel, meta.mode() & 0o7777);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn run(cmd: &mut Command) -> String {
    let output = cmd.output().expect("run");
    assert!(
        output.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn extracted_modes_follow_the_umask_and_never_carry_special_bits() {
    let scene = tempfile::tempdir().expect("tempdir");
    let dir = scene.path();
    let stderr = run(Command::new(kuvert())
        .current_dir(dir)
        .env_remove("KUVERT_PASSPHRASE_FILE")
        .args(["keygen", "-o", "id.txt"]));
    let recipient = stderr
        .trim()
        .strip_prefix("Public key: ")
        .expect("public key on stderr")
        .to_owned();
    // Directories first (0700 while filling), then modes, deepest first.
    for (path, _) in TREE {
        let disk = dir.join(path);
        if path.ends_with('/') {
            fs::create_dir(&disk).expect("mkdir");
        } else {
            fs::write(&disk, path.as_bytes()).expect("write");
        }
    }
    for (path, mode) in TREE.iter().rev() {
        fs::set_permissions(dir.join(path), fs::Permissions::from_mode(*mode)).expect("chmod");
    }
    let sealed = modes(dir);
    for (path, mode) in TREE {
        assert_eq!(sealed[path], mode, "the source tree holds {path} {mode:o}");
    }
    run(Command::new(kuvert())
        .current_dir(dir)
        .env_remove("KUVERT_PASSPHRASE_FILE")
        .args(["seal", "-r", &recipient, "-o", "modes.kuv", "src"]));

    let runs = [
        (0o077, false),
        (0o022, false),
        (0o027, false),
        (0o002, false),
        (0o000, false),
        (0o077, true),
    ];
    for (umask, preserve) in runs {
        let out = format!("out-{umask:03o}-{preserve}");
        let script = format!("umask {umask:03o} && exec \"$0\" \"$@\"");
        run(Command::new("sh")
            .current_dir(dir)
            .env_remove("KUVERT_PASSPHRASE_FILE")
            .arg("-c")
            .arg(&script)
            .arg(kuvert())
            .args(["open", "-i", "id.txt", "-o", &out, "modes.kuv"])
            .args(preserve.then_some("--preserve-permissions")));
        let found = modes(&dir.join(&out));
        let want: BTreeMap<String, u32> = TREE
            .iter()
            .map(|(path, mode)| {
                let mask = if preserve { 0 } else { umask };
                ((*path).to_owned(), mode & 0o777 & !mask & !0o002)
            })
            .collect();
        for (path, mode) in &found {
            assert_eq!(
                mode & 0o7002,
                0,
                "umask {umask:03o} preserve {preserve}: {path} is {mode:o}: set-id, sticky or world-writable"
            );
        }
        assert_eq!(found, want, "umask {umask:03o} preserve {preserve}");
        // Nothing else in the destination, no staging left behind.
        let names: Vec<String> = fs::read_dir(dir.join(&out))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["src"], "umask {umask:03o} preserve {preserve}");
        // The files are the files.
        for (path, _) in TREE.iter().filter(|(path, _)| !path.ends_with('/')) {
            let data = fs::read(dir.join(&out).join(path)).expect("read");
            assert_eq!(data, path.as_bytes(), "{path}");
            let meta = fs::metadata(dir.join(&out).join(path)).expect("meta");
            assert_eq!(meta.nlink(), 1, "{path}");
        }
    }
}
