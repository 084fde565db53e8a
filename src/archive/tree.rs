//! The entries of an archive as a tree of names (SPEC.md §12.3–§12.6): one
//! node per path component, keyed by its folded form, so that aliases,
//! files used as parents, paths through links and links that leave the
//! tree are found in time linear in the index.

use std::collections::HashMap;

use super::names::{check_link_target, check_relative, fold_key};
use super::{Entry, EntryKind};
use crate::error::Error;

/// Bounds on what an archive may ask of the machine that extracts it
/// (SPEC.md §8, §12.7). Raise them for archives from a trusted source.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Longest index read, in bytes (default 256 MiB).
    pub max_index_len: u64,
    /// Most entries in an archive (default 1,048,576).
    pub max_entries: u64,
    /// Most components in an entry's path (default 256).
    pub max_depth: usize,
    /// Most file data extracted in all, in bytes (default 1 TiB). Hard
    /// links add nothing: they are links, not copies.
    pub max_total_size: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            max_index_len: super::DEFAULT_MAX_INDEX_LEN,
            max_entries: 1 << 20,
            max_depth: 256,
            max_total_size: 1 << 40,
        }
    }
}

impl ArchiveLimits {
    /// The default limits.
    pub fn new() -> Self {
        ArchiveLimits::default()
    }

    /// Sets the longest index read.
    pub fn max_index_len(mut self, bytes: u64) -> Self {
        self.max_index_len = bytes;
        self
    }

    /// Sets the most entries.
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries;
        self
    }

    /// Sets the most components in a path.
    pub fn max_depth(mut self, components: usize) -> Self {
        self.max_depth = components;
        self
    }

    /// Sets the most file data extracted in all.
    pub fn max_total_size(mut self, bytes: u64) -> Self {
        self.max_total_size = bytes;
        self
    }
}

/// Most symlinks followed while resolving one link target, as Linux's
/// MAXSYMLINKS: a longer chain would fail to open anyway.
const MAX_LINK_HOPS: usize = 40;

pub(crate) type NodeId = usize;
pub(crate) const ROOT: NodeId = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// A directory that no entry names but some entry's path runs through.
    Implicit,
    Entry(EntryKind),
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) parent: NodeId,
    /// The component exactly as the entry spells it.
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    /// Index of the entry that names this node, if any.
    pub(crate) entry: Option<usize>,
    children: HashMap<String, NodeId>,
}

impl Node {
    pub(crate) fn is_directory(&self) -> bool {
        matches!(
            self.kind,
            NodeKind::Implicit | NodeKind::Entry(EntryKind::Directory)
        )
    }
}

/// The tree of the chosen entries, checked as it grows.
#[derive(Debug)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
    limits: ArchiveLimits,
    entries: u64,
    total_size: u64,
}

fn unsafe_entry(path: &str, reason: &'static str) -> Error {
    Error::UnsafeEntry {
        path: path.to_owned(),
        reason,
    }
}

/// How a link target came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    /// A node of the tree (a directory, file or the root).
    Node(NodeId),
    /// A name the tree does not hold, in a directory it does: a dangling
    /// link, which names a path inside the destination.
    Dangling,
}

#[derive(Debug, Clone, Copy)]
enum Visit {
    Unseen,
    InProgress,
    /// Resolved, following this many symlinks on the way.
    Done(Resolved, usize),
}

impl Tree {
    pub(crate) fn new(limits: ArchiveLimits) -> Self {
        Tree {
            nodes: vec![Node {
                parent: ROOT,
                name: String::new(),
                kind: NodeKind::Implicit,
                entry: None,
                children: HashMap::new(),
            }],
            limits,
            entries: 0,
            total_size: 0,
        }
    }

    pub(crate) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// Number of nodes, the root included.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The children of `id`, in the order they were first named.
    pub(crate) fn children_of(&self, id: NodeId) -> Vec<NodeId> {
        let mut children: Vec<NodeId> = self.nodes[id].children.values().copied().collect();
        children.sort_unstable();
        children
    }

    /// Path of a node from the root, for messages.
    pub(crate) fn path_of(&self, mut id: NodeId) -> String {
        let mut parts = Vec::new();
        while id != ROOT {
            parts.push(self.nodes[id].name.as_str());
            id = self.nodes[id].parent;
        }
        parts.reverse();
        parts.join("/")
    }

    /// Adds entry number `index`, checking the rules of SPEC.md §12.3 and
    /// §12.4 that need only the entries before it: a valid path within the
    /// limits, no alias of an earlier name or of one of its parents, no file
    /// or link used as a parent. Returns the entry's node.
    pub(crate) fn insert(&mut self, index: usize, entry: &Entry) -> Result<NodeId, Error> {
        let path = entry.path.as_str();
        check_relative(path).map_err(|reason| unsafe_entry(path, reason))?;
        // Walk the nodes that exist, checking every rule; only then add the
        // new ones, so a refused entry leaves the tree as it was.
        let components: Vec<&str> = path.split('/').collect();
        let mut current = ROOT;
        let mut matched = 0;
        for (position, component) in components.iter().enumerate() {
            let last = position + 1 == components.len();
            let Some(&node) = self.nodes[current].children.get(&fold_key(component)) else {
                break;
            };
            if self.nodes[node].name != *component || (last && !self.fills(node, entry)) {
                return Err(Error::NameCollision {
                    path: path.to_owned(),
                    other: self.path_of(node),
                });
            }
            if !last {
                match self.nodes[node].kind {
                    NodeKind::Implicit | NodeKind::Entry(EntryKind::Directory) => {}
                    NodeKind::Entry(EntryKind::Symlink) => {
                        return Err(unsafe_entry(path, "path runs through a symlink"));
                    }
                    NodeKind::Entry(_) => {
                        return Err(unsafe_entry(path, "path runs through a file"));
                    }
                }
            }
            current = node;
            matched += 1;
        }
        let entries = self.entries + 1;
        if entries > self.limits.max_entries {
            return Err(Error::LimitExceeded {
                what: "archive entries",
                found: entries,
                limit: self.limits.max_entries,
            });
        }
        let depth = components.len();
        if depth > self.limits.max_depth {
            return Err(Error::LimitExceeded {
                what: "archive path depth",
                found: depth as u64,
                limit: self.limits.max_depth as u64,
            });
        }
        let total_size = match entry.kind {
            EntryKind::File => self.total_size.saturating_add(entry.size),
            _ => self.total_size,
        };
        if total_size > self.limits.max_total_size {
            return Err(Error::LimitExceeded {
                what: "archive file data",
                found: total_size,
                limit: self.limits.max_total_size,
            });
        }
        if matched == components.len() {
            // A directory entry naming a directory that earlier paths made.
            self.nodes[current].kind = NodeKind::Entry(entry.kind);
            self.nodes[current].entry = Some(index);
        }
        for (position, component) in components.iter().enumerate().skip(matched) {
            let last = position + 1 == components.len();
            let id = self.nodes.len();
            self.nodes.push(Node {
                parent: current,
                name: (*component).to_owned(),
                kind: if last {
                    NodeKind::Entry(entry.kind)
                } else {
                    NodeKind::Implicit
                },
                entry: last.then_some(index),
                children: HashMap::new(),
            });
            self.nodes[current].children.insert(fold_key(component), id);
            current = id;
        }
        self.entries = entries;
        self.total_size = total_size;
        Ok(current)
    }

    /// Whether `entry` may take the existing node `node`: only a directory
    /// entry may name a directory that earlier paths ran through.
    fn fills(&self, node: NodeId, entry: &Entry) -> bool {
        self.nodes[node].kind == NodeKind::Implicit && entry.kind == EntryKind::Directory
    }

    /// The node an exact relative path names, if the tree holds it spelled
    /// exactly so.
    pub(crate) fn lookup(&self, path: &str) -> Option<NodeId> {
        let mut current = ROOT;
        for component in path.split('/') {
            let node = *self.nodes[current].children.get(&fold_key(component))?;
            if self.nodes[node].name != component {
                return None;
            }
            current = node;
        }
        Some(current)
    }

    /// Checks every link of the tree (SPEC.md §12.5, §12.6): each symlink
    /// target resolves inside the tree, following the tree's own symlinks;
    /// each hard link names an earlier file entry of the tree. Linear in the
    /// total length of the targets: each symlink is resolved once.
    pub(crate) fn check_links(&self, entries: &[Entry]) -> Result<(), Error> {
        let mut visits = vec![Visit::Unseen; self.nodes.len()];
        for (id, node) in self.nodes.iter().enumerate() {
            let Some(index) = node.entry else { continue };
            let entry = &entries[index];
            match entry.kind {
                EntryKind::Symlink => {
                    // The link checked is the one named, whichever link
                    // further down its chain broke the rule.
                    self.resolve(id, entries, &mut visits, 0)
                        .map_err(|err| match err {
                            Error::UnsafeEntry { reason, .. } => unsafe_entry(&entry.path, reason),
                            other => other,
                        })?;
                }
                EntryKind::Hardlink => {
                    let target = entry.link.as_deref().unwrap_or("");
                    let fine = check_relative(target).is_ok()
                        && self.lookup(target).is_some_and(|node| {
                            let node = &self.nodes[node];
                            node.kind == NodeKind::Entry(EntryKind::File)
                                && node.entry.is_some_and(|t| t < index)
                        });
                    if !fine {
                        return Err(unsafe_entry(
                            &entry.path,
                            "hard link to something not an earlier file entry extracted with it",
                        ));
                    }
                }
                EntryKind::File | EntryKind::Directory => {}
            }
        }
        Ok(())
    }

    /// Resolves the symlink at `link` within the tree, component by
    /// component, from the link's own directory.
    fn resolve(
        &self,
        link: NodeId,
        entries: &[Entry],
        visits: &mut [Visit],
        hops: usize,
    ) -> Result<(Resolved, usize), Error> {
        let entry = &entries[self.nodes[link].entry.expect("symlink nodes name an entry")];
        let refuse = |reason| Err(unsafe_entry(&entry.path, reason));
        match visits[link] {
            Visit::Done(resolved, follows) => return Ok((resolved, follows)),
            Visit::InProgress => return refuse("symlink loop"),
            Visit::Unseen => {}
        }
        if hops >= MAX_LINK_HOPS {
            return refuse("symlink chain longer than 40 links");
        }
        visits[link] = Visit::InProgress;
        let target = entry.link.as_deref().unwrap_or("");
        check_link_target(target).map_err(|reason| unsafe_entry(&entry.path, reason))?;
        let mut current = Resolved::Node(self.nodes[link].parent);
        let mut follows = 0;
        let mut components = target.split('/').peekable();
        while let Some(component) = components.next() {
            let last = components.peek().is_none();
            let Resolved::Node(at) = current else {
                return refuse("link target runs through a name the archive does not hold");
            };
            if !self.nodes[at].is_directory() {
                return refuse("link target runs through a file");
            }
            current = match component {
                "" | "." => current,
                ".." if at == ROOT => return refuse("symlink leads out of the destination"),
                ".." => Resolved::Node(self.nodes[at].parent),
                name => match self.nodes[at].children.get(&fold_key(name)) {
                    None => Resolved::Dangling,
                    Some(&node) if self.nodes[node].name != name => {
                        return refuse("link target names an entry with another spelling");
                    }
                    Some(&node) => match self.nodes[node].kind {
                        NodeKind::Entry(EntryKind::Symlink) => {
                            let (resolved, more) = self.resolve(node, entries, visits, hops + 1)?;
                            // Opening this link follows it and `follows` more.
                            follows += 1 + more;
                            if follows >= MAX_LINK_HOPS {
                                return refuse("symlink chain longer than 40 links");
                            }
                            resolved
                        }
                        _ => Resolved::Node(node),
                    },
                },
            };
            if !last && current == Resolved::Dangling {
                return refuse("link target runs through a name the archive does not hold");
            }
        }
        visits[link] = Visit::Done(current, follows);
        Ok((current, follows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, link: Option<&str>) -> Entry {
        Entry {
            path: path.into(),
            kind,
            size: 0,
            mode: 0o644,
            mtime: 0,
            link: link.map(str::to_owned),
            header_offset: 0,
            data_offset: 512,
        }
    }

    fn check(entries: &[Entry]) -> Result<(), Error> {
        let mut tree = Tree::new(ArchiveLimits::default());
        for (index, entry) in entries.iter().enumerate() {
            tree.insert(index, entry)?;
        }
        tree.check_links(entries)
    }

    use EntryKind::{Directory as D, File as F, Hardlink as H, Symlink as L};

    #[test]
    fn links_inside_the_tree_are_fine() {
        let fine = [
            entry("d", D, None),
            entry("d/f", F, None),
            entry("d/l", L, Some("../d/f")),
            entry("d/up", L, Some("..")),
            entry("h", H, Some("d/f")),
            entry("via", L, Some("d/up/d/f")),
            entry("dangling", L, Some("not-here")),
            entry("d/dangling", L, Some("./x")),
            entry("chain", L, Some("via")),
            entry("e/deep/l", L, Some("../../d/./f")),
        ];
        check(&fine).expect("links inside the tree");
    }

    #[test]
    fn every_escape_is_refused() {
        let cases: Vec<(Vec<Entry>, &str)> = vec![
            (vec![entry("l", L, Some("/etc"))], "absolute"),
            (vec![entry("l", L, Some("../x"))], "out"),
            (vec![entry("d/l", L, Some("../../x"))], "out"),
            (vec![entry("l", L, Some(".."))], "out"),
            (
                vec![
                    entry("d", D, None),
                    entry("d/up", L, Some("..")),
                    entry("esc", L, Some("d/up/../..")),
                ],
                "out",
            ),
            (
                vec![
                    entry("a/b/c/up", L, Some("../../..")),
                    entry("x", L, Some("a/b/c/up/..")),
                ],
                "out",
            ),
            (vec![entry("l", L, Some("missing/../.."))], "does not hold"),
            (vec![entry("l", L, Some("missing/x"))], "does not hold"),
            (
                vec![entry("f", F, None), entry("l", L, Some("f/../.."))],
                "through a file",
            ),
            (
                vec![entry("a", L, Some("b")), entry("b", L, Some("a"))],
                "loop",
            ),
            (vec![entry("a", L, Some("a/x"))], "loop"),
            (
                vec![entry("d", D, None), entry("l", L, Some("D/.."))],
                "spelling",
            ),
            (vec![entry("l", L, Some("a\\..\\..\\x"))], "backslash"),
            (vec![entry("l", L, Some(""))], "empty"),
        ];
        for (entries, why) in cases {
            match check(&entries) {
                Err(Error::UnsafeEntry { reason, .. }) => {
                    assert!(reason.contains(why), "{entries:?}: {reason}")
                }
                other => panic!("{entries:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn long_chains_stop_at_forty() {
        let mut entries = vec![entry("l0", L, Some("f")), entry("f", F, None)];
        for i in 1..=40 {
            entries.push(entry(&format!("l{i}"), L, Some(&format!("l{}", i - 1))));
        }
        // Opening l39 follows 40 links, as Linux allows; l40 would be 41.
        check(&entries[..41]).expect("40 hops");
        assert!(matches!(check(&entries), Err(Error::UnsafeEntry { .. })));
    }

    #[test]
    fn aliases_and_parents_collide() {
        let cases: Vec<Vec<Entry>> = vec![
            vec![entry("a", F, None), entry("a", F, None)],
            vec![entry("a", F, None), entry("A", F, None)],
            vec![entry("\u{e4}", F, None), entry("a\u{308}", F, None)],
            vec![entry("straße", F, None), entry("STRASSE", F, None)],
            vec![entry("d/x", F, None), entry("D/y", F, None)],
            vec![entry("d", D, None), entry("d", D, None)],
            vec![entry("d/x", F, None), entry("d", F, None)],
        ];
        for entries in cases {
            assert!(
                matches!(check(&entries), Err(Error::NameCollision { .. })),
                "{entries:?}"
            );
        }
        // A directory entry after its children is the same directory.
        check(&[entry("d/x", F, None), entry("d", D, None)]).expect("late directory entry");
    }

    #[test]
    fn parents_must_be_directories() {
        for entries in [
            vec![entry("f", F, None), entry("f/x", F, None)],
            vec![entry("l", L, Some("d")), entry("l/x", F, None)],
            vec![
                entry("h", F, None),
                entry("g", H, Some("h")),
                entry("g/x", F, None),
            ],
        ] {
            assert!(
                matches!(check(&entries), Err(Error::UnsafeEntry { .. })),
                "{entries:?}"
            );
        }
    }

    #[test]
    fn hard_links_name_earlier_files() {
        for entries in [
            vec![entry("h", H, Some("/etc/shadow"))],
            vec![entry("h", H, Some("f")), entry("f", F, None)],
            vec![entry("d", D, None), entry("h", H, Some("d"))],
            vec![entry("f", F, None), entry("h", H, Some("F"))],
            vec![entry("f", F, None), entry("h", H, Some("./f"))],
            vec![
                entry("f", F, None),
                entry("g", H, Some("f")),
                entry("h", H, Some("g")),
            ],
        ] {
            assert!(
                matches!(check(&entries), Err(Error::UnsafeEntry { .. })),
                "{entries:?}"
            );
        }
    }

    #[test]
    fn limits_hold() {
        let limits = ArchiveLimits::new()
            .max_entries(2)
            .max_depth(3)
            .max_total_size(10);
        let insert_all = |entries: &[Entry]| {
            let mut tree = Tree::new(limits);
            entries
                .iter()
                .enumerate()
                .try_for_each(|(i, e)| tree.insert(i, e).map(drop))
        };
        let too_many = [
            entry("a", D, None),
            entry("b", D, None),
            entry("c", D, None),
        ];
        let too_deep = [entry("a/b/c/d", D, None)];
        let too_big = [
            Entry {
                size: 6,
                ..entry("a", F, None)
            },
            Entry {
                size: 6,
                ..entry("b", F, None)
            },
        ];
        for (entries, what) in [
            (&too_many[..], "archive entries"),
            (&too_deep[..], "archive path depth"),
            (&too_big[..], "archive file data"),
        ] {
            match insert_all(entries) {
                Err(Error::LimitExceeded { what: found, .. }) => assert_eq!(found, what),
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn deep_paths_are_linear() {
        // Every prefix of a 600-component path: one node per component.
        let path = vec!["d"; 600].join("/");
        let mut entries: Vec<Entry> = Vec::new();
        for depth in 1..=600 {
            entries.push(entry(&path[..depth * 2 - 1], D, None));
        }
        let mut tree = Tree::new(ArchiveLimits::new().max_depth(4096));
        for (index, entry) in entries.iter().enumerate() {
            tree.insert(index, entry).expect("valid");
        }
        assert_eq!(tree.nodes.len(), 601);
    }
}
