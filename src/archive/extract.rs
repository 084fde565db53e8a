//! Extraction (SPEC.md §12.4–§12.9): the chosen entries are checked as a
//! tree before anything is written, written into a hidden staging directory
//! through directory handles (see `staging`), and moved into the
//! destination only once everything they came from has authenticated.

use std::io::{self, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use super::Entry;
use super::EntryKind;
use super::read::Archive;
use super::staging::{DirId, Staging, Top};
use super::tree::{NodeId, ROOT, Tree};
use crate::damage::{Damage, DamageKind};
use crate::error::Error;
use crate::volumes::VolumeSource;

use std::io::Seek;

/// Options for [`Archive::extract`].
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Paths to extract (a directory brings everything under it); empty
    /// means all.
    pub entries: Vec<String>,
    /// Keep every entry that authenticated completely instead of nothing.
    pub salvage: bool,
    /// Replace top-level entries that already exist in the destination:
    /// the old ones are moved aside and deleted only once the new ones are
    /// in place.
    pub overwrite: bool,
    /// Keep the archived permission bits instead of masking them with the
    /// umask (as `tar --preserve-permissions`); set-id, sticky and
    /// world-write bits are dropped all the same.
    pub preserve_permissions: bool,
    /// Set by another thread (a Ctrl-C handler) to stop extraction soon;
    /// it then fails with [`Error::Cancelled`] and leaves the destination as
    /// it was.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl ExtractOptions {
    /// Extract everything, refuse to replace, keep nothing if damaged,
    /// apply the umask.
    pub fn new() -> Self {
        ExtractOptions::default()
    }

    /// Extracts only these paths (and everything under directories among them).
    pub fn entries(mut self, paths: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.entries = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Keeps every entry that authenticated completely, reporting the rest.
    pub fn salvage(mut self, salvage: bool) -> Self {
        self.salvage = salvage;
        self
    }

    /// Replaces existing top-level entries in the destination.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Keeps the archived permission bits (never set-id, sticky or
    /// world-write).
    pub fn preserve_permissions(mut self, preserve: bool) -> Self {
        self.preserve_permissions = preserve;
        self
    }

    /// Stops extraction when `flag` becomes true.
    pub fn cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }
}

/// An entry that could not be extracted because its data is damaged.
#[non_exhaustive]
#[derive(Debug)]
pub struct DamagedEntry {
    /// The entry's path.
    pub path: String,
    /// The first failure, naming the chunk, volume and offset.
    pub error: Error,
    /// That failure as damage of the set, as the verifiers report it;
    /// `None` for an entry left out for another reason (a hard link to a
    /// damaged entry).
    pub damage: Option<Damage>,
    /// Volume and byte offset where the entry's data starts.
    pub start: (u32, u64),
    /// Volume and byte offset of the chunk holding the entry's last byte.
    pub end: (u32, u64),
}

/// What [`Archive::extract`] did.
#[non_exhaustive]
#[derive(Debug, Default)]
pub struct ExtractReport {
    /// Paths extracted, in archive order.
    pub extracted: Vec<String>,
    /// Entries left out as damaged (only with `salvage`).
    pub damaged: Vec<DamagedEntry>,
}

/// Whether an error means "these bytes are damaged" (unreadable, or not
/// authentic), which salvage works around, rather than "this archive or
/// machine is wrong", which it does not.
fn is_damage(err: &Error) -> bool {
    matches!(
        DamageKind::of(err),
        Some(
            DamageKind::Unreadable { .. }
                | DamageKind::Unauthenticated
                | DamageKind::Malformed { .. }
        )
    )
}

/// A staged file that also watches the cancel flag, so a Ctrl-C during a
/// large entry takes effect within one write (about 1 MiB).
struct Watched<'a, W> {
    inner: W,
    cancel: Option<&'a AtomicBool>,
}

impl<W: Write> Write for Watched<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.cancel.is_some_and(|flag| flag.load(Ordering::Relaxed)) {
            return Err(io::Error::from(Error::Cancelled));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The staging directory as the tree sees it: which tree node is which
/// directory handle.
struct Plan<'t> {
    tree: &'t Tree,
    staging: Staging,
    dirs: Vec<Option<DirId>>,
    /// Directories made, in order (parents before children).
    made: Vec<NodeId>,
}

impl Plan<'_> {
    /// The handle of directory node `node`, making it and its parents.
    fn dir(&mut self, node: NodeId) -> Result<DirId, Error> {
        let mut chain = Vec::new();
        let mut at = node;
        while self.dirs[at].is_none() {
            chain.push(at);
            at = self.tree.node(at).parent;
        }
        for &missing in chain.iter().rev() {
            let parent = self.dirs[self.tree.node(missing).parent].expect("parents first");
            let id = self
                .staging
                .make_dir(parent, &self.tree.node(missing).name)?;
            self.dirs[missing] = Some(id);
            self.made.push(missing);
        }
        Ok(self.dirs[node].expect("made above"))
    }

    fn parent_dir(&mut self, node: NodeId) -> Result<DirId, Error> {
        self.dir(self.tree.node(node).parent)
    }
}

impl<S: VolumeSource + Sync> Archive<S> {
    /// Chooses the entries `options` asks for, refusing names it lacks.
    fn select(&self, options: &ExtractOptions) -> Result<Vec<usize>, Error> {
        if options.entries.is_empty() {
            return Ok((0..self.entries.len()).collect());
        }
        let mut chosen = Vec::new();
        for wanted in &options.entries {
            let wanted = wanted.trim_end_matches('/');
            let prefix = format!("{wanted}/");
            let before = chosen.len();
            for (index, entry) in self.entries.iter().enumerate() {
                if entry.path == wanted || entry.path.starts_with(&prefix) {
                    chosen.push(index);
                }
            }
            if chosen.len() == before {
                return Err(Error::EntryNotFound {
                    path: wanted.to_owned(),
                });
            }
        }
        chosen.sort_unstable();
        chosen.dedup();
        Ok(chosen)
    }

    /// Extracts entries into the directory `dest`, which must exist.
    ///
    /// The chosen entries are checked as a tree first (SPEC.md §12.4–§12.7):
    /// nothing is written for an archive with an unsafe path, a name that
    /// aliases another after Unicode normalisation and case folding, a file
    /// or link used as a parent, a symlink whose target leaves the tree, or
    /// a hard link to anything but an earlier file extracted with it. Then
    /// every entry is written into a hidden staging directory inside `dest`,
    /// through directory handles that never follow a symlink, files 0600 and
    /// directories 0700 while they are written; symlinks come last. Each
    /// entry's tar header is checked against the index (§12.8). Extracting
    /// everything reads the whole payload once, so every chunk, index and
    /// trailer included, authenticates before anything moves. Only then are
    /// the top-level entries renamed into `dest`, never replacing anything
    /// unless `overwrite`. On any failure `dest` is left as it was. With
    /// `salvage`, entries whose data failed authentication are left out and
    /// reported, and the rest is kept.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`], [`Error::NameCollision`],
    /// [`Error::LimitExceeded`] and [`Error::TarMismatch`] for archives that
    /// break the rules; [`Error::DestinationExists`] unless `overwrite`;
    /// [`Error::EntryNotFound`]; [`Error::Cancelled`]; chunk errors without
    /// `salvage`; [`Error::Io`] from the file system.
    pub fn extract(
        &mut self,
        dest: &Path,
        options: &ExtractOptions,
    ) -> Result<ExtractReport, Error> {
        let chosen = self.select(options)?;
        let mut tree = Tree::new(self.limits);
        let mut nodes = Vec::with_capacity(chosen.len());
        for &index in &chosen {
            nodes.push(tree.insert(index, &self.entries[index])?);
        }
        tree.check_links(&self.entries)?;
        let top_nodes: Vec<NodeId> = tree.children_of(ROOT);
        if !options.overwrite {
            for &top in &top_nodes {
                let path = dest.join(&tree.node(top).name);
                if std::fs::symlink_metadata(&path).is_ok() {
                    return Err(Error::DestinationExists { path });
                }
            }
        }
        let staging = Staging::create(dest)?;
        let umask = staging.umask();
        let final_mode = |mode: u32| {
            if options.preserve_permissions {
                mode & 0o777
            } else {
                mode & 0o777 & !umask
            }
        };
        let mut plan = Plan {
            tree: &tree,
            staging,
            dirs: vec![None; tree.len()],
            made: Vec::new(),
        };
        plan.dirs[ROOT] = Some(0);
        let cancel = options.cancel.as_deref();
        let cancelled = || cancel.is_some_and(|flag| flag.load(Ordering::Relaxed));
        let whole = options.entries.is_empty();
        let mut report = ExtractReport::default();
        let mut damaged_nodes = vec![false; tree.len()];
        let mut created = vec![false; tree.len()];
        let mut extracted = Vec::new();
        let mut links = Vec::new();
        // Sequential when extracting everything: the entries tile the tar
        // stream (§12.2), so no seek is needed and every byte is read.
        let mut sequential = whole;
        self.reader.seek(SeekFrom::Start(0))?;
        for (&index, &node) in chosen.iter().zip(&nodes) {
            if cancelled() {
                return Err(Error::Cancelled);
            }
            let entry = self.entries[index].clone();
            match self.stage_entry(
                index,
                node,
                &entry,
                &mut plan,
                sequential,
                &final_mode,
                cancel,
            ) {
                Ok(true) => {
                    created[node] = true;
                    extracted.push(index);
                }
                Ok(false) => links.push((index, node)),
                Err(err) if options.salvage && is_damage(&err) => {
                    damaged_nodes[node] = true;
                    let last = entry.data_offset + entry.size.saturating_sub(1);
                    report.damaged.push(DamagedEntry {
                        path: entry.path.clone(),
                        damage: self.reader.damage_of(&err),
                        error: err,
                        start: self.reader.locate(entry.data_offset),
                        end: self.reader.locate(last),
                    });
                    sequential = false;
                }
                Err(err) => return Err(err),
            }
        }
        if whole && sequential {
            self.check_end_blocks()?;
            // The index and trailer authenticate too, to the last chunk.
            let rest = self.reader.len() - self.tar_len;
            self.reader.seek(SeekFrom::Start(self.tar_len))?;
            self.reader.copy_to(&mut io::sink(), rest)?;
        }
        if cancelled() {
            return Err(Error::Cancelled);
        }
        // Links last: hard links to files now complete, then symlinks, so
        // nothing is ever written through a link.
        for &(index, node) in &links {
            let entry = &self.entries[index];
            let name = &tree.node(node).name;
            let parent = plan.parent_dir(node)?;
            let target = entry.link.as_deref().unwrap_or("");
            if entry.kind == EntryKind::Hardlink {
                let target_node = tree.lookup(target).expect("check_links found it");
                if damaged_nodes[target_node] {
                    report.damaged.push(DamagedEntry {
                        path: entry.path.clone(),
                        error: Error::UnsafeEntry {
                            path: entry.path.clone(),
                            reason: "hard link to a damaged entry",
                        },
                        damage: None,
                        start: self.reader.locate(entry.data_offset),
                        end: self.reader.locate(entry.data_offset),
                    });
                    continue;
                }
                let target_parent = plan.parent_dir(target_node)?;
                plan.staging.hard_link(
                    target_parent,
                    &tree.node(target_node).name,
                    parent,
                    name,
                )?;
                created[node] = true;
                extracted.push(index);
            }
        }
        for &(index, node) in &links {
            let entry = &self.entries[index];
            if entry.kind == EntryKind::Symlink {
                let parent = plan.parent_dir(node)?;
                let target = entry.link.as_deref().unwrap_or("");
                plan.staging
                    .symlink(parent, &tree.node(node).name, target, entry.mtime)?;
                created[node] = true;
                extracted.push(index);
            }
        }
        extracted.sort_unstable();
        report.extracted = extracted
            .iter()
            .map(|&index| self.entries[index].path.clone())
            .collect();
        // Directory modes and times last, deepest first, so read-only ones
        // could still be filled; top-level ones after they are published.
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as i64);
        let dir_meta = |node: NodeId| match tree.node(node).entry {
            Some(index) => (
                final_mode(self.entries[index].mode),
                self.entries[index].mtime,
            ),
            None => (final_mode(0o777), now),
        };
        let made = std::mem::take(&mut plan.made);
        for &node in made.iter().rev() {
            if tree.node(node).parent != ROOT {
                let (mode, mtime) = dir_meta(node);
                let id = plan.dirs[node].expect("made");
                plan.staging.finish_dir(id, mode, mtime)?;
            }
        }
        if cancelled() {
            return Err(Error::Cancelled);
        }
        let tops: Vec<Top> = top_nodes
            .iter()
            .filter(|&&node| created[node] || plan.dirs[node].is_some())
            .map(|&node| Top {
                name: tree.node(node).name.clone(),
                dir: plan.dirs[node].map(|id| {
                    let (mode, mtime) = dir_meta(node);
                    (id, mode, mtime)
                }),
            })
            .collect();
        let Plan { staging, .. } = plan;
        staging.publish(&tops, options.overwrite)?;
        Ok(report)
    }

    /// Writes one entry into staging. Returns false for links, which are
    /// made once everything else is.
    #[allow(clippy::too_many_arguments, reason = "private; one step of extract")]
    fn stage_entry(
        &mut self,
        index: usize,
        node: NodeId,
        entry: &Entry,
        plan: &mut Plan<'_>,
        sequential: bool,
        final_mode: &dyn Fn(u32) -> u32,
        cancel: Option<&AtomicBool>,
    ) -> Result<bool, Error> {
        if !sequential {
            self.reader.seek(SeekFrom::Start(entry.header_offset))?;
        }
        let region = self.read_header_region(index)?;
        super::tar_check::check_header(&region, entry)?;
        match entry.kind {
            EntryKind::Directory => {
                plan.dir(node)?;
                self.check_padding_of(index)?;
                Ok(true)
            }
            EntryKind::File => {
                let parent = plan.parent_dir(node)?;
                let file = plan
                    .staging
                    .create_file(parent, &plan.tree.node(node).name)?;
                let mut watched = Watched {
                    inner: file,
                    cancel,
                };
                // A cancel rides out of the sink inside an io::Error.
                let copied =
                    self.reader
                        .copy_to(&mut watched, entry.size)
                        .map_err(|err| match err {
                            Error::Io(inner) => Error::from_io(inner),
                            other => other,
                        });
                let file = watched.inner;
                match copied {
                    Ok(written) if written == entry.size => {}
                    Ok(_) => {
                        plan.staging
                            .remove_file(parent, &plan.tree.node(node).name)?;
                        return Err(Error::MalformedArchive {
                            offset: entry.data_offset,
                            reason: "entry data runs past the payload",
                        });
                    }
                    Err(err) => {
                        drop(file);
                        plan.staging
                            .remove_file(parent, &plan.tree.node(node).name)?;
                        return Err(err);
                    }
                }
                file.finish(final_mode(entry.mode), entry.mtime)?;
                self.check_padding_of(index)?;
                Ok(true)
            }
            EntryKind::Symlink | EntryKind::Hardlink => {
                self.check_padding_of(index)?;
                Ok(false)
            }
        }
    }
}
