//! The reference extractor against the independent checker: every case of
//! tests/independent/archive_cases.py (written from SPEC.md §12 alone, not
//! from this crate) is sealed, opened and extracted here, and must be
//! refused with exactly the variant and fields the checker expects, or
//! extract to exactly the tree it plans.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use kuvert::archive::{ArchiveLimits, ExtractOptions, Payload};
use kuvert::{Error, MemorySink, Opener, PayloadKind, Sealer, X25519Identity};

fn unhex(text: &str) -> Vec<u8> {
    if text == "-" {
        return Vec::new();
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        .collect()
}

fn unhex_str(text: &str) -> String {
    String::from_utf8(unhex(text)).expect("UTF-8")
}

/// One case as check_archive.py --export writes it.
struct Case {
    name: String,
    content: Vec<u8>,
    selection: Option<Vec<String>>,
    limits: ArchiveLimits,
    /// `variant k=v …` with strings decoded, or the planned tree.
    expect: Result<BTreeMap<String, Planned>, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Planned {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// A hard link to the file at this path.
    Hardlink(String),
    /// A file or hard link, as one of a group of names for one file.
    Linked {
        first: String,
        data: Vec<u8>,
    },
}

fn parse(text: &str) -> Case {
    let mut case = Case {
        name: String::new(),
        content: Vec::new(),
        selection: None,
        limits: ArchiveLimits::new(),
        expect: Ok(BTreeMap::new()),
    };
    for line in text.lines() {
        let (key, value) = line.split_once(": ").expect("key: value");
        let words: Vec<&str> = value.split(' ').collect();
        match key {
            "name" => case.name = unhex_str(value),
            "content" => case.content = unhex(value),
            "selection" if value == "all" => {}
            "selection" => case.selection = Some(value.split(',').map(unhex_str).collect()),
            "limits" => {
                let n: Vec<u64> = words.iter().map(|w| w.parse().expect("number")).collect();
                case.limits = ArchiveLimits::new()
                    .max_index_len(n[0])
                    .max_entries(n[1])
                    .max_depth(n[2] as usize)
                    .max_total_size(n[3]);
            }
            "refusal" => {
                let fields: Vec<String> = words[1..]
                    .iter()
                    .map(|field| {
                        let (k, v) = field.split_once('=').expect("k=v");
                        match v.parse::<u64>() {
                            Ok(number) if k != "path" && k != "other" && k != "what" => {
                                format!("{k}={number}")
                            }
                            _ => format!("{k}={}", unhex_str(v)),
                        }
                    })
                    .collect();
                case.expect = Err(format!("{} {}", words[0], fields.join(" ")).trim().into());
            }
            "item" => {
                let path = unhex_str(words[1]);
                let planned = match words[0] {
                    "dir" => Planned::Dir,
                    "file" => Planned::File(unhex(words[2])),
                    "symlink" => Planned::Symlink(unhex_str(words[2])),
                    "hardlink" => Planned::Hardlink(unhex_str(words[2])),
                    other => panic!("unknown item {other}"),
                };
                case.expect
                    .as_mut()
                    .expect("items only in plans")
                    .insert(path, planned);
            }
            other => panic!("unknown key {other}"),
        }
    }
    case
}

/// The checker's rendering of a refusal: variant, then fields in name order.
fn render(err: &Error) -> String {
    match err {
        Error::MalformedArchive { offset, .. } => format!("MalformedArchive offset={offset}"),
        Error::LimitExceeded { what, found, limit } => {
            format!("LimitExceeded found={found} limit={limit} what={what}")
        }
        Error::UnsafeEntry { path, .. } => format!("UnsafeEntry path={path}"),
        Error::NameCollision { path, other } => format!("NameCollision other={other} path={path}"),
        Error::TarMismatch { path, offset, .. } => {
            format!("TarMismatch offset={offset} path={path}")
        }
        Error::EntryNotFound { path } => format!("EntryNotFound path={path}"),
        other => format!("{other:?}"),
    }
}

/// What extraction left in `dest`, as the checker plans trees. Walked
/// through directory handles: deep cases are longer than PATH_MAX.
fn tree(dest: &Path) -> BTreeMap<String, Planned> {
    use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, openat, readlinkat, statat};
    use std::io::Read;

    fn walk(
        dir: &std::os::fd::OwnedFd,
        prefix: &str,
        found: &mut BTreeMap<String, Planned>,
        inodes: &mut BTreeMap<u64, String>,
    ) {
        let mut names: Vec<String> = Dir::read_from(dir)
            .expect("list")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_str()
                    .expect("UTF-8")
                    .to_owned()
            })
            .filter(|name| name != "." && name != "..")
            .collect();
        names.sort();
        for name in names {
            let relative = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let stat = statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).expect("stat");
            let planned = match FileType::from_raw_mode(stat.st_mode) {
                FileType::Symlink => {
                    let target = readlinkat(dir, name.as_str(), Vec::new()).expect("link");
                    Planned::Symlink(target.to_str().expect("UTF-8").to_owned())
                }
                FileType::Directory => {
                    let child = openat(
                        dir,
                        name.as_str(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
                        Mode::empty(),
                    )
                    .expect("open directory");
                    walk(&child, &relative, found, inodes);
                    Planned::Dir
                }
                _ => match inodes.get(&stat.st_ino) {
                    Some(first) => Planned::Hardlink(first.clone()),
                    None => {
                        inodes.insert(stat.st_ino, relative.clone());
                        let fd = openat(
                            dir,
                            name.as_str(),
                            OFlags::RDONLY | OFlags::NOFOLLOW,
                            Mode::empty(),
                        )
                        .expect("open file");
                        let mut data = Vec::new();
                        std::fs::File::from(fd)
                            .read_to_end(&mut data)
                            .expect("read");
                        Planned::File(data)
                    }
                },
            };
            found.insert(relative, planned);
        }
    }

    let root = openat(
        rustix::fs::CWD,
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY,
        Mode::empty(),
    )
    .expect("open dest");
    let mut found = BTreeMap::new();
    walk(&root, "", &mut found, &mut BTreeMap::new());
    found
}

/// Hard links as groups: each file or hard link becomes its content and the
/// smallest path of its group, whichever path the walk met first.
fn grouped(tree: BTreeMap<String, Planned>) -> BTreeMap<String, Planned> {
    let mut root: BTreeMap<String, String> = BTreeMap::new();
    for (path, planned) in &tree {
        if let Planned::Hardlink(target) = planned {
            root.insert(path.clone(), target.clone());
        }
    }
    let find = |mut path: String| {
        while let Some(next) = root.get(&path) {
            path = next.clone();
        }
        path
    };
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, planned) in &tree {
        if matches!(planned, Planned::File(_) | Planned::Hardlink(_)) {
            groups
                .entry(find(path.clone()))
                .or_default()
                .push(path.clone());
        }
    }
    let mut out = BTreeMap::new();
    for (path, planned) in tree.iter() {
        let planned = match planned {
            Planned::File(_) | Planned::Hardlink(_) => {
                let leader = find(path.clone());
                let Planned::File(data) = &tree[&leader] else {
                    panic!("a hard link group without a file");
                };
                Planned::Linked {
                    first: groups[&leader].iter().min().expect("a member").clone(),
                    data: data.clone(),
                }
            }
            other => other.clone(),
        };
        out.insert(path.clone(), planned);
    }
    out
}

fn run(case: &Case, identity: &X25519Identity) -> Result<BTreeMap<String, Planned>, String> {
    let sealer = Sealer::new()
        .recipient(identity.to_public())
        .chunk_size(4096)
        .threads(1);
    let mut writer =
        kuvert::testing::seal_content(&sealer, MemorySink::new(), PayloadKind::Archive)
            .expect("seal");
    writer.write_all(&case.content).expect("write");
    let volumes = writer.finish().expect("finish").into_volumes();
    let reader = Opener::new()
        .identity(X25519Identity::from_bytes([5; 32]))
        .threads(1)
        .open(volumes)
        .expect("open");
    let payload = Payload::detect(reader, &case.limits).map_err(|err| render(&err))?;
    let Payload::Archive(mut archive) = payload else {
        panic!("{}: an archive-kind payload read as a stream", case.name);
    };
    let outer = tempfile::tempdir().expect("tempdir");
    let dest = outer.path().join("dest");
    fs::create_dir(&dest).expect("dest");
    let mut options = ExtractOptions::new();
    if let Some(selection) = &case.selection {
        options = options.entries(selection.iter().cloned());
    }
    let result = archive.extract(&dest, &options);
    let left = tree(&dest);
    let outside: Vec<_> = fs::read_dir(outer.path()).expect("list").collect();
    assert_eq!(
        outside.len(),
        1,
        "{}: something appeared beside DEST",
        case.name
    );
    match result {
        Ok(_) => Ok(left),
        Err(err) => {
            assert!(
                left.is_empty(),
                "{}: refused, yet DEST holds {left:?}",
                case.name
            );
            Err(render(&err))
        }
    }
}

#[test]
fn the_reference_extracts_as_the_independent_checker_says() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/independent/check_archive.py");
    let cases = tempfile::tempdir().expect("tempdir");
    let exported = Command::new("python3")
        .arg(&script)
        .arg("--export")
        .arg(cases.path())
        .output();
    let Ok(exported) = exported else {
        eprintln!("python3 is not installed: the cross-check is skipped");
        return;
    };
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let identity = X25519Identity::from_bytes([5; 32]);
    let mut paths: Vec<_> = fs::read_dir(cases.path())
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 200, "only {} cases exported", paths.len());
    let mut disagreements = Vec::new();
    for path in &paths {
        let case = parse(&fs::read_to_string(path).expect("case"));
        let got = run(&case, &identity);
        if got.clone().map(grouped) != case.expect.clone().map(grouped) {
            disagreements.push(format!(
                "{}:\n  checker:   {:?}\n  reference: {:?}",
                case.name, case.expect, got
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        paths.len(),
        disagreements.join("\n")
    );
}
