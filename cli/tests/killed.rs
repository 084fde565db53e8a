//! The CLI killed with SIGKILL while it seals and while it opens. Nothing
//! runs in the killed process afterwards, so whatever it left is what a
//! power cut or the OOM killer leaves. The library's tests/faults.rs holds
//! the same promises (SPEC.md §6.6 item 7, §12.4) for failures a process
//! sees: failing sinks and renames.
//!
//! Besides the fixed delays, each test kills as soon as a final name shows
//! up, to land in the moment outputs are being published. Seen there: a
//! seal killed while its volumes were renamed left 2 of 69 under final
//! names; they never open (`VolumeMissing`), `kuvert verify` fails on them,
//! and a new seal to the same name is refused until `--force`. An
//! extraction killed while moving entries into place left 2 of 6 top-level
//! entries published (each whole) and the rest in its staging directory:
//! the all-or-nothing of SPEC.md §12.4 covers failures the process sees,
//! not SIGKILL. Stale partial volumes and staging directories are not
//! cleaned up by the next run, only ignored (their names carry the dead
//! process's id).
#![cfg(unix)]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kuvert::{FileSource, Opener};

use common::{Failure, data, failure, identity, listing, read_released};

/// Bytes fed to `kuvert seal -`: 64 MiB, distinct per MiB.
const STREAM: usize = 64 << 20;
/// Split so that the set has many volumes: 69 of 1 MiB with 64 KiB
/// chunks (15 chunks each), and so 69 renames at the end.
const VOLUME_SIZE: &str = "1M";

fn kuvert() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("kuvert"));
    cmd.env_remove("KUVERT_PASSPHRASE_FILE");
    cmd
}

fn stream() -> Vec<u8> {
    let mib = data(1 << 20, 64);
    let mut out = Vec::with_capacity(STREAM);
    for index in 0..(STREAM >> 20) {
        out.extend_from_slice(&mib);
        out[index << 20..][..8].copy_from_slice(&(index as u64).to_be_bytes());
    }
    out
}

/// A directory with an identity file `id.txt` (identity 9), on tmpfs
/// when there is one: the names left behind are the same on any file
/// system, and a disk would spend seconds here in `fsync`.
fn scene() -> (tempfile::TempDir, String) {
    let shm = Path::new("/dev/shm");
    let dir = match shm.is_dir() {
        true => tempfile::tempdir_in(shm),
        false => tempfile::tempdir(),
    }
    .expect("tempdir");
    let secret = identity(9).to_secret_string();
    std::fs::write(dir.path().join("id.txt"), secret.as_str()).expect("write id");
    (dir, identity(9).to_public().to_string())
}

/// When to kill.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after the process started.
    After(Duration),
    /// As soon as `appeared` sees something in the directory (polled
    /// without pause), to hit the moment volumes or entries are being
    /// published.
    OnFirstFinalName,
}

const DELAYS_MS: [u64; 8] = [0, 1, 5, 20, 50, 100, 200, 400];

fn kills() -> Vec<Kill> {
    let mut kills: Vec<Kill> = DELAYS_MS
        .iter()
        .map(|&ms| Kill::After(Duration::from_millis(ms)))
        .collect();
    kills.extend([Kill::OnFirstFinalName; 3]);
    kills
}

/// Waits as `kill` says, then kills `child` with SIGKILL; returns
/// whether it was killed (rather than done already).
fn kill_when(child: &mut Child, kill: Kill, appeared: &dyn Fn() -> bool) -> bool {
    match kill {
        Kill::After(delay) => std::thread::sleep(delay),
        Kill::OnFirstFinalName => {
            let started = Instant::now();
            while !appeared() {
                if child.try_wait().expect("try_wait").is_some()
                    || started.elapsed() > Duration::from_secs(60)
                {
                    break;
                }
            }
        }
    }
    // Child::kill sends SIGKILL.
    let _ = child.kill();
    let status = child.wait().expect("wait");
    match status.signal() {
        Some(9) => true,
        None => {
            assert!(status.success(), "the process failed by itself: {status:?}");
            false
        }
        Some(other) => panic!("killed by signal {other}"),
    }
}

/// Final names of the set `-o big.kuv`: `big.kuv` or `big.NNN.kuv`.
fn final_volume(name: &str) -> Option<u32> {
    if name == "big.kuv" {
        return Some(1);
    }
    let number = name.strip_prefix("big.")?.strip_suffix(".kuv")?;
    (number.len() == 3).then(|| number.parse().ok()).flatten()
}

/// Partial names of `-o big.kuv` written by process `pid`:
/// `.big.kuv.NNN.PID.kuvert-partial`.
fn partial_volume(name: &str, pid: u32) -> Option<u32> {
    let suffix = format!(".{pid}.kuvert-partial");
    let number = name
        .strip_prefix(".big.kuv.")?
        .strip_suffix(suffix.as_str())?;
    (number.len() == 3).then(|| number.parse().ok()).flatten()
}

/// Opens the final-named volumes in `dir`: the whole stream, or why not.
fn open_finals(dir: &Path, finals: &[PathBuf], stream: &[u8]) -> Result<(), Failure> {
    let sources: Vec<FileSource> = finals
        .iter()
        .map(|path| FileSource::open(path).expect("open volume"))
        .collect();
    let mut reader = Opener::new()
        .identity(identity(9))
        .open(sources)
        .map_err(failure)?;
    let released = read_released(&mut reader, &[1 << 20]);
    assert!(released.bytes == stream[..released.bytes.len()]);
    if let Some(err) = released.error {
        return Err(failure(err));
    }
    assert!(released.bytes == stream, "{}: other bytes", dir.display());
    Ok(())
}

/// `kuvert verify -i id.txt VOLUMES…`: whether it passes.
fn verify(dir: &Path, finals: &[PathBuf]) -> bool {
    kuvert()
        .current_dir(dir)
        .args(["verify", "-q", "-i", "id.txt"])
        .args(finals)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run verify")
        .success()
}

/// Starts `kuvert seal` of standard input into `big.kuv` and feeds it
/// `input` from a thread.
fn start_seal(dir: &Path, recipient: &str, input: Vec<u8>) -> (Child, std::thread::JoinHandle<()>) {
    let mut child = kuvert()
        .current_dir(dir)
        .args(["seal", "-q", "-j", "1", "-r", recipient])
        // No padding, so that the volume count is STREAM's.
        .args(["--pad", "none"])
        .args(["--volume-size", VOLUME_SIZE, "-o", "big.kuv", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kuvert seal");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        // Fails with a broken pipe once the process is killed.
        for piece in input.chunks(1 << 20) {
            if stdin.write_all(piece).is_err() {
                return;
            }
        }
    });
    (child, feeder)
}

#[test]
fn sealing_killed_at_any_point_never_leaves_a_short_set_that_opens() {
    let stream = stream();
    let total = STREAM.div_ceil(65536 - 16).div_ceil(15) as u32;
    assert_eq!(total, 69);
    let mut summary = Vec::new();
    for kill in kills() {
        let (dir, recipient) = scene();
        let (mut child, feeder) = start_seal(dir.path(), &recipient, stream.clone());
        let pid = child.id();
        let appeared = || {
            listing(dir.path())
                .iter()
                .any(|n| final_volume(n).is_some())
        };
        let killed = kill_when(&mut child, kill, &appeared);
        feeder.join().expect("feeder");

        let names = listing(dir.path());
        let mut finals = Vec::new();
        let mut partials = Vec::new();
        for name in names.iter().filter(|n| n.as_str() != "id.txt") {
            if let Some(number) = final_volume(name) {
                finals.push((number, dir.path().join(name)));
            } else if let Some(number) = partial_volume(name, pid) {
                partials.push(number);
            } else {
                panic!("{kill:?}: unexpected {name:?} left behind");
            }
        }
        finals.sort();
        partials.sort_unstable();
        let final_paths: Vec<PathBuf> = finals.iter().map(|(_, p)| p.clone()).collect();
        let outcome = if finals.is_empty() {
            "nothing final".to_owned()
        } else {
            // Volumes are renamed in order once all are written and
            // synced: the final names are 1 … j, the rest still
            // partial, and the set opens only if j is the last.
            let numbers: Vec<u32> = finals.iter().map(|(n, _)| *n).collect();
            let j = numbers.len() as u32;
            assert_eq!(numbers, (1..=j).collect::<Vec<_>>(), "{kill:?}");
            assert_eq!(partials, (j + 1..=total).collect::<Vec<_>>(), "{kill:?}");
            let opened = open_finals(dir.path(), &final_paths, &stream);
            if j == total {
                assert_eq!(opened, Ok(()), "{kill:?}: a whole set");
                assert!(verify(dir.path(), &final_paths), "{kill:?}");
            } else {
                assert_eq!(
                    opened,
                    Err(Failure::VolumeMissing { volume: j + 1 }),
                    "{kill:?}: {j} of {total} volumes published"
                );
                assert!(!verify(dir.path(), &final_paths), "{kill:?}: verify passed");
            }
            format!("{j} of {total} volumes final")
        };
        summary.push(format!(
            "{kill:?}: {}, {outcome}, {} partial",
            if killed { "killed" } else { "finished" },
            partials.len()
        ));

        // A second run to the same name: stale partials of the killed
        // process are not cleaned, only ignored (their names carry its
        // pid); final names left by it are refused without --force.
        let second = data(3 << 20, 65);
        let run = |force: bool| {
            let mut child = kuvert()
                .current_dir(dir.path())
                .args(["seal", "-q", "-r", &recipient, "--volume-size", VOLUME_SIZE])
                .args(if force { &["-f"][..] } else { &[][..] })
                .args(["-o", "big.kuv", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            // A refusal comes before standard input is read: the pipe
            // may break.
            let _ = child.stdin.take().expect("stdin").write_all(&second);
            child.wait_with_output().expect("wait")
        };
        let output = run(false);
        if finals.is_empty() {
            assert!(output.status.success(), "{kill:?}: second seal failed");
        } else {
            assert_eq!(output.status.code(), Some(1), "{kill:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("already exists"), "{kill:?}: {stderr}");
            assert!(run(true).status.success(), "{kill:?}: seal -f failed");
        }
        let mut after = Vec::new();
        let mut stale = Vec::new();
        for name in listing(dir.path()) {
            if let Some(number) = partial_volume(&name, pid) {
                stale.push(number);
            } else if final_volume(&name).is_some() {
                after.push(dir.path().join(name));
            } else {
                assert_eq!(name, "id.txt", "{kill:?}: unexpected {name:?}");
            }
        }
        assert_eq!(
            stale, partials,
            "{kill:?}: stale partials are left as they were"
        );
        assert_eq!(
            after.len(),
            4,
            "{kill:?}: the new set alone has final names"
        );
        assert_eq!(open_finals(dir.path(), &after, &second), Ok(()), "{kill:?}");
    }
    eprintln!("{}", summary.join("\n"));
}

/// A tree of several top-level inputs (each published by its own
/// rename): five files of 4 MiB and a directory of smaller ones.
fn make_inputs(dir: &Path) -> Vec<String> {
    let mut tops = Vec::new();
    for index in 0..5u64 {
        let name = format!("file{index}.bin");
        std::fs::write(dir.join(&name), data(4 << 20, 100 + index)).expect("write");
        tops.push(name);
    }
    let nested = dir.join("tree/inner");
    std::fs::create_dir_all(&nested).expect("mkdir");
    for index in 0..20u64 {
        std::fs::write(
            nested.join(format!("{index}.txt")),
            data(50_000, 200 + index),
        )
        .expect("write");
    }
    tops.push("tree".into());
    tops
}

/// Whether `copy` holds exactly what `original` does (files and
/// directories, recursively).
fn same_tree(original: &Path, copy: &Path) -> bool {
    let meta = std::fs::symlink_metadata(copy).expect("metadata");
    if meta.is_dir() {
        let a = listing(original);
        let b = listing(copy);
        a == b
            && a.iter()
                .all(|n| same_tree(&original.join(n), &copy.join(n)))
    } else {
        std::fs::read(original).expect("read") == std::fs::read(copy).expect("read")
    }
}

#[test]
fn opening_killed_at_any_point_leaves_no_partial_entry_under_its_final_name() {
    let (dir, recipient) = scene();
    let tops = make_inputs(dir.path());
    let status = kuvert()
        .current_dir(dir.path())
        .args(["seal", "-q", "-r", &recipient, "--volume-size", "8M"])
        .args(["-o", "parcel.kuv"])
        .args(&tops)
        .status()
        .expect("seal");
    assert!(status.success());
    let mut volumes: Vec<String> = listing(dir.path())
        .into_iter()
        .filter(|n| n.starts_with("parcel.") && n.ends_with(".kuv"))
        .collect();
    volumes.sort();
    assert_eq!(volumes.len(), 3);

    let mut summary = Vec::new();
    for (round, kill) in kills().into_iter().enumerate() {
        let dest = dir.path().join(format!("dest{round}"));
        let mut child = kuvert()
            .current_dir(dir.path())
            .args(["open", "-q", "-i", "id.txt", "-o"])
            .arg(&dest)
            .args(&volumes)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kuvert open");
        let pid = child.id();
        let appeared = || {
            std::fs::read_dir(&dest).is_ok_and(|entries| {
                entries.flatten().any(|e| {
                    !e.file_name()
                        .to_string_lossy()
                        .starts_with(".kuvert-staging-")
                })
            })
        };
        let killed = kill_when(&mut child, kill, &appeared);

        // Left: maybe DEST itself, the staging directory of the killed
        // process, and top-level entries that were published whole.
        let mut published = Vec::new();
        let mut staging = Vec::new();
        if dest.exists() {
            for name in listing(&dest) {
                if name.starts_with(&format!(".kuvert-staging-{pid}-")) {
                    staging.push(name);
                } else {
                    assert!(
                        tops.contains(&name),
                        "{kill:?}: unexpected {name:?} in DEST"
                    );
                    assert!(
                        same_tree(&dir.path().join(&name), &dest.join(&name)),
                        "{kill:?}: {name} is under its final name but not whole"
                    );
                    published.push(name);
                }
            }
        }
        assert!(staging.len() <= 1, "{kill:?}: {staging:?}");
        if !killed {
            assert!(staging.is_empty(), "a finished extraction cleans up");
            assert_eq!(published.len(), tops.len());
        }
        summary.push(format!(
            "{kill:?}: {}, DEST {}, {} of {} entries published, staging left: {}",
            if killed { "killed" } else { "finished" },
            if dest.exists() { "exists" } else { "absent" },
            published.len(),
            tops.len(),
            !staging.is_empty()
        ));

        // A second open into the same DEST: the stale staging directory
        // is ignored (not cleaned); entries published before are refused
        // without --force, replaced with it.
        let reopen = |force: bool| {
            kuvert()
                .current_dir(dir.path())
                .args(["open", "-q", "-i", "id.txt"])
                .args(if force { &["-f"][..] } else { &[][..] })
                .arg("-o")
                .arg(&dest)
                .args(&volumes)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run open")
        };
        let status = reopen(false);
        if published.is_empty() {
            assert!(status.success(), "{kill:?}: second open failed");
        } else {
            assert_eq!(status.code(), Some(1), "{kill:?}");
            assert!(reopen(true).success(), "{kill:?}: open -f failed");
        }
        let mut left = listing(&dest);
        left.retain(|name| !staging.contains(name));
        let mut want = tops.clone();
        want.sort();
        assert_eq!(left, want, "{kill:?}: only the entries and the old staging");
        for top in &tops {
            assert!(
                same_tree(&dir.path().join(top), &dest.join(top)),
                "{kill:?}: {top}"
            );
        }
    }
    eprintln!("{}", summary.join("\n"));
}

#[test]
fn opening_a_stream_killed_at_any_point_never_leaves_a_partial_output_file() {
    let (dir, recipient) = scene();
    let stream = stream();
    let (mut child, feeder) = start_seal(dir.path(), &recipient, stream.clone());
    feeder.join().expect("feeder");
    assert!(child.wait().expect("wait").success());
    let mut volumes: Vec<String> = listing(dir.path())
        .into_iter()
        .filter(|n| final_volume(n).is_some())
        .collect();
    volumes.sort();
    let mut summary = Vec::new();
    // What earlier rounds left: their whole outputs and partial files.
    let mut earlier: Vec<String> = Vec::new();
    for (round, kill) in kills().into_iter().enumerate() {
        let out = format!("out{round}.bin");
        let mut child = kuvert()
            .current_dir(dir.path())
            .args(["open", "-q", "-i", "id.txt", "-o", &out])
            .args(&volumes)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kuvert open");
        let pid = child.id();
        let target = dir.path().join(&out);
        let killed = kill_when(&mut child, kill, &|| target.exists());
        let partial = format!(".{out}.{pid}.kuvert-partial");
        let mut state = "nothing";
        for name in listing(dir.path()) {
            if name == out {
                assert!(
                    std::fs::read(&target).expect("read") == stream,
                    "{kill:?}: {out} under its final name but not whole"
                );
                state = "whole output";
                earlier.push(name);
            } else if name == partial {
                state = "partial left";
                earlier.push(name);
            } else {
                assert!(
                    name == "id.txt" || final_volume(&name).is_some() || earlier.contains(&name),
                    "{kill:?}: unexpected {name:?}"
                );
            }
        }
        summary.push(format!(
            "{kill:?}: {}, {state}",
            if killed { "killed" } else { "finished" }
        ));
    }
    eprintln!("{}", summary.join("\n"));
}
