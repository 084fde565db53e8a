//! Snapshots of a directory tree, to prove that an extraction (or a refused
//! one) left everything outside its destination as it was.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One file-system object as a snapshot sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File { mode: u32, ino: u64, data: Vec<u8> },
    Dir { mode: u32 },
    Symlink { target: PathBuf },
    Other { mode: u32 },
}

pub type Snapshot = BTreeMap<PathBuf, Node>;

/// Everything under `root`, recursively, never following a symlink.
pub fn snapshot(root: &Path) -> Snapshot {
    fn walk(root: &Path, at: &Path, out: &mut Snapshot) {
        let mut names: Vec<_> = fs::read_dir(at)
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        names.sort();
        for name in names {
            let path = at.join(&name);
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let mode = meta.mode() & 0o7777;
            let rel = path.strip_prefix(root).expect("under root").to_path_buf();
            let node = if meta.file_type().is_symlink() {
                Node::Symlink {
                    target: fs::read_link(&path).expect("readlink"),
                }
            } else if meta.is_dir() {
                walk(root, &path, out);
                Node::Dir { mode }
            } else if meta.is_file() {
                Node::File {
                    mode,
                    ino: meta.ino(),
                    data: fs::read(&path).expect("read"),
                }
            } else {
                Node::Other { mode }
            };
            out.insert(rel, node);
        }
    }
    let mut out = Snapshot::new();
    walk(root, root, &mut out);
    out
}

/// What differs between two snapshots, briefly (the first few paths).
pub fn differences(before: &Snapshot, after: &Snapshot) -> String {
    let mut out = Vec::new();
    for (path, node) in after {
        match before.get(path) {
            None => out.push(format!("new {path:?}")),
            Some(old) if old != node => out.push(format!("changed {path:?}: {old:?} -> {node:?}")),
            Some(_) => {}
        }
    }
    for path in before.keys().filter(|path| !after.contains_key(*path)) {
        out.push(format!("gone {path:?}"));
    }
    let total = out.len();
    out.truncate(6);
    format!("{total} differences, first: {}", out.join("; "))
}
