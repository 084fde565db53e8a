//! The file-system engine of extraction: a hidden staging directory inside
//! the destination, filled and published through open directory handles.
//!
//! The extraction planner decides *what* to create (validated names,
//! resolved links, collisions, modes); this module only *does* it, and does
//! it so that no path is ever walked by the operating system below the
//! destination: every call is `*at` relative to a held directory handle with
//! symlinks refused (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, no
//! `AT_SYMLINK_FOLLOW`), a file is written, chmod-ed and timestamped through
//! the one handle that created it, and a directory through its own handle.
//! A symlink swapped in for a staged directory therefore never redirects a
//! write: the write lands in the original directory or fails.
//!
//! # Resources
//!
//! At most 64 directory handles are kept open (least recently used first
//! out, plus the destination and the staging root), whatever the number,
//! modes and depth of the directories. An evicted handle is reopened
//! component by component from the nearest open ancestor, `O_NOFOLLOW` at
//! each step, and must still be the inode that was made (device and inode
//! compared): a directory swapped for a symlink fails to reopen, one
//! swapped for another directory is refused.
//!
//! A directory whose final mode lacks owner read or search could be
//! neither reopened nor emptied by cleanup, so it stays 0700 in staging:
//! its mode (and mtime) is applied as the very last step of publishing,
//! deepest first, once nothing needs cleaning up any more (see
//! [`Staging::publish`]).
//!
//! Cleanup (and the removal of replaced entries) walks the tree depth
//! first with an explicit stack, holding handles for at most the 32
//! deepest levels of the current path; a level let go is reopened the same
//! way as an evicted handle when the walk returns to it. Any depth a path
//! can have (4096 bytes hold at most 2048 components) is removed; cleanup
//! refuses to descend below 16384 levels.
//!
//! # Security
//!
//! The threat is the archive, not a concurrent process of the same user
//! (which could change anything in the destination anyway). Names given
//! here are single components already checked by the planner; they are
//! checked again (an error, never a panic, in release builds). Set-uid,
//! set-gid, sticky and world-write bits are dropped from every mode as a
//! last line of defence, whatever the planner asks for.

use std::io;

use crate::error::Error;

/// Index of a directory handle held by the staging area; 0 is the staging root.
pub(crate) type DirId = usize;

/// The staging root's [`DirId`].
pub(crate) const STAGING_ROOT: DirId = 0;

/// One top-level name of the extraction, moved from staging into the
/// destination by [`Staging::publish`].
#[derive(Clone, Debug)]
pub(crate) struct Top {
    /// The single path component in both staging and the destination.
    pub name: String,
    /// For a directory: its handle, final mode and mtime, applied only once
    /// it is in place (moving a directory to another parent needs write
    /// permission on it).
    pub dir: Option<(DirId, u32, i64)>,
}

/// Every mode bit the engine may set: permissions without world-write; no
/// set-uid, set-gid or sticky bit.
const ALLOWED_MODE: u32 = 0o777 & !0o002;

/// Latest mtime set: the largest the tar header's 11 octal digits hold
/// (year 2242), the same clamp as the archive writer.
const MAX_MTIME: i64 = 0o777_7777_7777;

/// The permission bits a staged entry may be given.
fn safe_mode(mode: u32) -> u32 {
    mode & ALLOWED_MODE
}

/// Clamps an archived mtime to what every target file system holds.
///
/// Times before 1970 become the epoch: the archive writer never records
/// them (it clamps to the same range), so only a hand-made index carries
/// them, and FAT, exFAT and ISO 9660 media cannot store them. Times past
/// [`MAX_MTIME`] become it.
fn clamp_mtime(mtime: i64) -> i64 {
    mtime.clamp(0, MAX_MTIME)
}

/// Whether `name` is one path component the planner may pass.
fn is_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Refuses a name that is not one component (a planner bug).
fn check_component(name: &str) -> Result<(), Error> {
    debug_assert!(is_component(name), "not a single path component: {name:?}");
    if is_component(name) {
        Ok(())
    } else {
        Err(Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("staging: {name:?} is not a single path component"),
        )))
    }
}

/// A file-system failure, with the staged path it happened at.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {path:?}")]
struct Located {
    what: &'static str,
    path: String,
    source: io::Error,
}

/// Wraps an OS error as [`Error::Io`], keeping its kind, naming the path.
fn located(err: impl Into<io::Error>, what: &'static str, path: impl Into<String>) -> Error {
    let source = err.into();
    Error::Io(io::Error::new(
        source.kind(),
        Located {
            what,
            path: path.into(),
            source,
        },
    ))
}

#[cfg(unix)]
pub(crate) use unix::Staging;

#[cfg(not(unix))]
pub(crate) use other::Staging;

#[cfg(unix)]
mod unix {
    use std::collections::{HashSet, VecDeque};
    use std::ffi::CString;
    use std::fs::File;
    use std::io::{self, Write};
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::path::{Path, PathBuf};

    use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
    use rustix::io::Errno;

    use super::{DirId, STAGING_ROOT, Top, check_component, clamp_mtime, located, safe_mode};
    use crate::error::Error;

    /// Prefix of the staging directory's name inside the destination.
    const STAGING_PREFIX: &str = ".kuvert-staging-";
    /// Prefix of the names replaced entries are moved aside to.
    const REPLACED_PREFIX: &str = ".kuvert-replaced-";
    /// The file that learns the umask, created and removed in staging.
    const UMASK_PROBE: &str = ".kuvert-umask-probe";
    /// Staging names tried before giving up (48 random bits each).
    const NAME_ATTEMPTS: usize = 8;
    /// Directory handles kept open at once (besides the root and pinned
    /// ones): an archive with thousands of directories must not exhaust the
    /// usual 1024-descriptor limit. Evicted ones are reopened through their
    /// parents' handles and checked by inode.
    const MAX_OPEN_DIRS: usize = 64;
    /// Deepest tree removed on cleanup: eight times the components a
    /// 4096-byte path holds, a bound against a tree that never ends (a
    /// bind mount of an ancestor), not against any real one.
    const MAX_CLEANUP_DEPTH: usize = 16_384;
    /// Handles held by a walk below the destination or staging root:
    /// cleanup keeps those of the deepest levels of its current path,
    /// applying deferred modes keeps the most recently used.
    pub(super) const WALK_HANDLES: usize = 32;

    const DIR_FLAGS: OFlags = OFlags::RDONLY
        .union(OFlags::DIRECTORY)
        .union(OFlags::NOFOLLOW)
        .union(OFlags::CLOEXEC);

    /// Device and inode: what a reopened handle must still be.
    type Ident = (u64, u64);

    #[allow(
        clippy::unnecessary_cast,
        reason = "st_dev and st_ino differ in width across Unix systems"
    )]
    fn ident_of(stat: &rfs::Stat) -> Ident {
        (stat.st_dev as u64, stat.st_ino as u64)
    }

    #[allow(
        clippy::unnecessary_cast,
        reason = "mode_t is narrower than u32 on some systems"
    )]
    fn mode(bits: u32) -> Mode {
        Mode::from_raw_mode(bits as rfs::RawMode)
    }

    fn timestamps(mtime: i64) -> Timestamps {
        Timestamps {
            // The access time stays the one of creation, as with `tar`.
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: rfs::UTIME_OMIT,
            },
            last_modification: Timespec {
                tv_sec: clamp_mtime(mtime),
                tv_nsec: 0,
            },
        }
    }

    fn random_hex() -> Result<String, Error> {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).map_err(|err| {
            Error::Io(io::Error::other(format!(
                "the operating system's random source failed: {err}"
            )))
        })?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A directory made in staging.
    struct HeldDir {
        /// Open handle, or `None` while evicted.
        fd: Option<OwnedFd>,
        parent: DirId,
        name: String,
        ident: Ident,
        /// Final mode and mtime not applied yet: the mode lacks owner read
        /// or search, so neither cleanup nor a reopen could enter it. Set
        /// when publishing, once everything is in place.
        deferred: Option<(u32, i64)>,
    }

    /// One undoable step of publishing.
    enum Step {
        /// `staging/name` became `dest/name`.
        Moved {
            name: String,
            ident: Ident,
            is_dir: bool,
        },
        /// The existing `dest/name` became `dest/aside`.
        Aside {
            name: String,
            aside: String,
            ident: Ident,
            is_dir: bool,
        },
    }

    /// The hidden staging directory inside the destination, and the
    /// handles of every directory made in it.
    ///
    /// Dropping it removes the staging tree (and nothing else) through
    /// handles, never following a symlink.
    pub(crate) struct Staging {
        dest: OwnedFd,
        dest_path: PathBuf,
        name: String,
        umask: u32,
        /// Index = [`DirId`]; entry 0 is the staging root, always open.
        dirs: Vec<HeldDir>,
        /// Evictable open handles, least recently used first.
        open: VecDeque<DirId>,
        max_open: usize,
        /// Prefix of the names replaced entries are moved aside to.
        aside_tag: String,
        /// Test hook: fail publishing just before moving in this top.
        #[cfg(test)]
        fail_before_top: Option<usize>,
    }

    impl Staging {
        /// Opens `dest` and creates the hidden staging directory in it.
        ///
        /// `dest` is the only path ever resolved by the OS (opened with
        /// `O_DIRECTORY | O_CLOEXEC`). The staging directory
        /// `.kuvert-staging-<pid>-<12 hex>` is made 0700 and reopened with
        /// `O_NOFOLLOW`. The receiver's umask is learnt without `umask(2)`
        /// (which would race with other threads): a probe file is created
        /// with mode 0777 and its mode read back. Where the destination
        /// carries a default ACL the probe sees that mask instead, which is
        /// what the receiver asked for there.
        ///
        /// # Errors
        ///
        /// [`Error::Io`] if `dest` is not an accessible directory or
        /// staging cannot be made in it.
        pub(crate) fn create(dest: &Path) -> Result<Staging, Error> {
            let dest_fd = rfs::open(
                dest,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|err| located(err, "open the destination", dest.display().to_string()))?;
            let aside_tag = format!("{REPLACED_PREFIX}{}-{}-", std::process::id(), random_hex()?);
            let mut attempt = 0;
            let name = loop {
                let name = format!("{STAGING_PREFIX}{}-{}", std::process::id(), random_hex()?);
                match rfs::mkdirat(&dest_fd, name.as_str(), mode(0o700)) {
                    Ok(()) => break name,
                    Err(Errno::EXIST) if attempt + 1 < NAME_ATTEMPTS => attempt += 1,
                    Err(err) => return Err(located(err, "create the staging directory", name)),
                }
            };
            let root = match rfs::openat(&dest_fd, name.as_str(), DIR_FLAGS, Mode::empty()) {
                Ok(root) => root,
                Err(err) => {
                    // Nothing is held yet, so no Drop cleans up: remove the
                    // (empty) directory here, never following a link.
                    let _ = rfs::unlinkat(&dest_fd, name.as_str(), AtFlags::REMOVEDIR);
                    return Err(located(err, "open the staging directory", name));
                }
            };
            let ident = match rfs::fstat(&root) {
                Ok(stat) => ident_of(&stat),
                Err(err) => {
                    drop(root);
                    let _ = rfs::unlinkat(&dest_fd, name.as_str(), AtFlags::REMOVEDIR);
                    return Err(located(err, "inspect the staging directory", name));
                }
            };
            let mut staging = Staging {
                dest: dest_fd,
                dest_path: dest.to_path_buf(),
                name: name.clone(),
                umask: 0,
                dirs: Vec::new(),
                open: VecDeque::new(),
                max_open: MAX_OPEN_DIRS,
                aside_tag,
                #[cfg(test)]
                fail_before_top: None,
            };
            staging.dirs.push(HeldDir {
                fd: Some(root),
                parent: STAGING_ROOT,
                name,
                ident,
                deferred: None,
            });
            // From here on Drop removes the staging directory.
            let root = staging.root();
            // A umask such as 0277 would leave staging unwritable.
            rfs::fchmod(root, mode(0o700))
                .map_err(|err| located(err, "set the mode of", staging.name.clone()))?;
            let umask = probe_umask(root).map_err(|err| {
                located(
                    err,
                    "learn the umask through",
                    format!("{}/{UMASK_PROBE}", staging.name),
                )
            })?;
            staging.umask = umask;
            Ok(staging)
        }

        /// The receiver's umask, as learnt by the probe.
        pub(crate) fn umask(&self) -> u32 {
            self.umask
        }

        /// Name of the staging directory inside the destination.
        #[cfg(test)]
        pub(crate) fn name(&self) -> &str {
            &self.name
        }

        /// Prefix of the names that [`publish`](Self::publish) with
        /// `replace` renames existing entries to, inside the destination
        /// (`.kuvert-replaced-<pid>-<12 hex>-`, then a number). Such an
        /// entry is the receiver's old data: an interrupted publish should
        /// rename it back (to the name in the same position of the tops
        /// given), not delete it.
        #[cfg(test)]
        pub(crate) fn replaced_prefix(&self) -> &str {
            &self.aside_tag
        }

        /// Makes directory `name` in `parent`: `mkdirat` 0700, then opened
        /// with `O_DIRECTORY | O_NOFOLLOW`.
        ///
        /// # Errors
        ///
        /// [`Error::Io`] naming the staged path, also when it exists.
        pub(crate) fn make_dir(&mut self, parent: DirId, name: &str) -> Result<DirId, Error> {
            check_component(name)?;
            self.ensure_open(parent)?;
            let parent_fd = self.held(parent);
            let path = || self.staged_path(parent, name);
            rfs::mkdirat(parent_fd, name, mode(0o700))
                .map_err(|err| located(err, "create directory", path()))?;
            let fd = rfs::openat(parent_fd, name, DIR_FLAGS, Mode::empty())
                .map_err(|err| located(err, "open directory", path()))?;
            if self.umask & 0o700 != 0 {
                rfs::fchmod(&fd, mode(0o700))
                    .map_err(|err| located(err, "set the mode of", path()))?;
            }
            let ident = rfs::fstat(&fd)
                .map(|stat| ident_of(&stat))
                .map_err(|err| located(err, "inspect directory", path()))?;
            let id = self.dirs.len();
            self.dirs.push(HeldDir {
                fd: None,
                parent,
                name: name.to_owned(),
                ident,
                deferred: None,
            });
            self.store(id, fd);
            Ok(id)
        }

        /// Creates file `name` in `parent` (`O_CREAT | O_EXCL | O_NOFOLLOW`,
        /// mode 0600), to be written and then [finished](StagedFile::finish).
        ///
        /// # Errors
        ///
        /// [`Error::Io`] naming the staged path, also when it exists.
        pub(crate) fn create_file(
            &mut self,
            parent: DirId,
            name: &str,
        ) -> Result<StagedFile, Error> {
            check_component(name)?;
            self.ensure_open(parent)?;
            let parent_fd = self.held(parent);
            let path = self.staged_path(parent, name);
            let fd = rfs::openat(
                parent_fd,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                mode(0o600),
            )
            .map_err(|err| located(err, "create file", path.clone()))?;
            if self.umask & 0o600 != 0 {
                rfs::fchmod(&fd, mode(0o600))
                    .map_err(|err| located(err, "set the mode of", path.clone()))?;
            }
            Ok(StagedFile {
                file: File::from(fd),
                path,
            })
        }

        /// Removes the non-directory `name` from `parent` (a file whose
        /// data failed to authenticate, when salvaging).
        ///
        /// # Errors
        ///
        /// [`Error::Io`] naming the staged path.
        pub(crate) fn remove_file(&mut self, parent: DirId, name: &str) -> Result<(), Error> {
            check_component(name)?;
            self.ensure_open(parent)?;
            let parent_fd = self.held(parent);
            rfs::unlinkat(parent_fd, name, AtFlags::empty())
                .map_err(|err| located(err, "remove", self.staged_path(parent, name)))
        }

        /// Makes `parent/name` a hard link to `target_parent/target_name`
        /// (`linkat` without `AT_SYMLINK_FOLLOW`): the same inode, never a
        /// copy.
        ///
        /// # Errors
        ///
        /// [`Error::Io`] naming the staged path of the new link.
        pub(crate) fn hard_link(
            &mut self,
            target_parent: DirId,
            target_name: &str,
            parent: DirId,
            name: &str,
        ) -> Result<(), Error> {
            check_component(target_name)?;
            check_component(name)?;
            // Least recently used eviction never drops the handle opened
            // just before (`max_open` is at least 2).
            self.ensure_open(target_parent)?;
            self.ensure_open(parent)?;
            let (target_fd, parent_fd) = (self.held(target_parent), self.held(parent));
            rfs::linkat(target_fd, target_name, parent_fd, name, AtFlags::empty())
                .map_err(|err| located(err, "create hard link", self.staged_path(parent, name)))
        }

        /// Makes `parent/name` a symlink with the literal `target`, then
        /// sets the link's own mtime (`AT_SYMLINK_NOFOLLOW`).
        ///
        /// # Errors
        ///
        /// [`Error::Io`] naming the staged path, also when it exists.
        pub(crate) fn symlink(
            &mut self,
            parent: DirId,
            name: &str,
            target: &str,
            mtime: i64,
        ) -> Result<(), Error> {
            check_component(name)?;
            self.ensure_open(parent)?;
            let parent_fd = self.held(parent);
            let path = || self.staged_path(parent, name);
            rfs::symlinkat(target, parent_fd, name)
                .map_err(|err| located(err, "create symlink", path()))?;
            rfs::utimensat(
                parent_fd,
                name,
                &timestamps(mtime),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|err| located(err, "set the mtime of", path()))
        }

        /// Sets a staged directory's final mode (without set-id, sticky and
        /// world-write bits) and mtime through its own handle.
        ///
        /// Call it once the directory's contents are complete (symlinks
        /// included), deepest first. Top-level directories get theirs from
        /// [`publish`](Self::publish) instead. A mode without owner read or
        /// search is only recorded: the directory stays 0700 in staging,
        /// so that cleanup can always empty it, and gets its mode and mtime
        /// at the end of publishing.
        ///
        /// # Errors
        ///
        /// [`Error::Io`] naming the staged path; also for the staging root
        /// and for a top-level directory.
        pub(crate) fn finish_dir(
            &mut self,
            dir: DirId,
            mode_bits: u32,
            mtime: i64,
        ) -> Result<(), Error> {
            let parent = self.dirs.get(dir).map(|held| held.parent);
            if dir == STAGING_ROOT || parent == Some(STAGING_ROOT) {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "staging: a top-level directory's mode is set by publishing",
                )));
            }
            let bits = safe_mode(mode_bits);
            self.ensure_open(dir)?;
            if !enterable(bits) {
                self.dirs[dir].deferred = Some((bits, mtime));
                return Ok(());
            }
            self.dirs[dir].deferred = None;
            let fd = self.held(dir);
            rfs::fchmod(fd, mode(bits))
                .and_then(|()| rfs::futimens(fd, &timestamps(mtime)))
                .map_err(|err| located(err, "set the mode and mtime of", self.dir_path(dir)))
        }

        /// Moves the given top-level names from staging into the
        /// destination, all or nothing.
        ///
        /// Each move is `renameat2(RENAME_NOREPLACE)` (Linux, Android;
        /// `renameatx_np(RENAME_EXCL)` on Apple systems), so nothing that
        /// appeared after a check is replaced. Where that is missing or the
        /// file system refuses the flag, a file is moved by `linkat` then
        /// `unlinkat` (which also never replaces), and a directory by a
        /// check then `renameat`, which in the window between the two could
        /// replace an empty directory made there.
        ///
        /// Without `replace`, an existing name fails with
        /// [`Error::DestinationExists`] after every top already moved has
        /// been moved back. With `replace`, each existing `dest/name` is
        /// first renamed aside to `dest/.kuvert-replaced-<pid>-<hex>-<n>`:
        /// within the destination, since moving a directory to another
        /// parent needs write permission on it, which an earlier read-only
        /// extraction lacks. On any failure everything is moved back; only
        /// once all tops are in place are the replaced entries removed.
        ///
        /// Tops that are not in staging (left out by salvaging) are
        /// skipped. Top-level directories get their mode and mtime after
        /// the move, one handle at a time.
        ///
        /// Last, once everything is in place and staging is empty, the
        /// directories whose final mode lacks owner read or search get
        /// their mode and mtime: deepest first, so that each is reached
        /// through ancestors still searchable, each reopened component by
        /// component from the destination (or a cached ancestor, at most
        /// 32 handles), `O_NOFOLLOW` and checked by device and inode. A
        /// failure there leaves that directory 0700, nothing in staging.
        ///
        /// # Errors
        ///
        /// [`Error::DestinationExists`]; [`Error::Io`] naming the entry. If
        /// publishing failed and could not be undone, the error says which
        /// names were left in the destination. If everything was published
        /// but a replaced entry could not be removed or a directory's final
        /// mode not applied, the error names those.
        pub(crate) fn publish(mut self, tops: &[Top], replace: bool) -> Result<(), Error> {
            let mut steps = Vec::new();
            if let Err(err) = self.move_tops(tops, replace, &mut steps) {
                return Err(self.undo(&steps, err));
            }
            let mut deferred = Vec::new();
            if let Err(err) = self.finish_tops(tops, &mut deferred) {
                return Err(self.undo(&steps, err));
            }
            // Published: Drop must never touch these directories again.
            for held in self.dirs.iter_mut().skip(1) {
                held.fd = None;
            }
            self.open.clear();
            let unset = self.apply_deferred(&steps, deferred);
            let mut left = Vec::new();
            let mut first = None;
            for step in &steps {
                if let Step::Aside {
                    aside,
                    ident,
                    is_dir,
                    ..
                } = step
                    && let Err(err) = remove_aside(self.dest.as_fd(), aside, *ident, *is_dir)
                {
                    left.push(self.dest_path.join(aside).display().to_string());
                    first.get_or_insert(err);
                }
            }
            match (first, unset) {
                (None, None) => Ok(()),
                (Some(err), None) => Err(located(
                    err,
                    "remove the replaced entries (the new ones are in place)",
                    left.join(", "),
                )),
                (None, Some((err, unset))) => Err(located(
                    err,
                    "set the final mode of (the new entries are in place)",
                    unset.join(", "),
                )),
                (Some(err), Some((_, unset))) => Err(located(
                    err,
                    "remove the replaced entries (before the semicolon) or set the \
                     final mode of (after it; the new entries are in place)",
                    format!("{}; {}", left.join(", "), unset.join(", ")),
                )),
            }
        }

        /// Applies the deferred modes and mtimes (see
        /// [`finish_dir`](Self::finish_dir)) to the directories now in the
        /// destination, deepest first, holding at most [`WALK_HANDLES`]
        /// handles. `tops` are the top-level ones [`finish_tops`]
        /// (Self::finish_tops) deferred. Returns the first failure and the
        /// paths whose mode could not be applied.
        fn apply_deferred(
            &self,
            steps: &[Step],
            tops: Vec<(DirId, u32, i64)>,
        ) -> Option<(io::Error, Vec<String>)> {
            // A parent is always made (and numbered) before its children.
            let mut depth = vec![0usize; self.dirs.len()];
            let mut top_of = vec![STAGING_ROOT; self.dirs.len()];
            for id in 1..self.dirs.len() {
                let parent = self.dirs[id].parent;
                depth[id] = depth[parent] + 1;
                top_of[id] = if parent == STAGING_ROOT {
                    id
                } else {
                    top_of[parent]
                };
            }
            let moved: HashSet<&str> = steps
                .iter()
                .filter_map(|step| match step {
                    Step::Moved {
                        name, is_dir: true, ..
                    } => Some(name.as_str()),
                    _ => None,
                })
                .collect();
            let mut deferred = tops;
            deferred.extend(
                self.dirs
                    .iter()
                    .enumerate()
                    .skip(1)
                    .filter_map(|(id, held)| held.deferred.map(|(bits, mtime)| (id, bits, mtime))),
            );
            // Only what was published: what is left in staging is removed.
            let mut published = vec![false; self.dirs.len()];
            for (id, held) in self.dirs.iter().enumerate().skip(1) {
                published[id] = held.parent == STAGING_ROOT && moved.contains(&held.name.as_str());
            }
            deferred.retain(|&(id, ..)| id != STAGING_ROOT && published[top_of[id]]);
            deferred.sort_by_key(|&(id, ..)| std::cmp::Reverse(depth[id]));
            let mut cache = Vec::new();
            let mut first = None;
            let mut unset = Vec::new();
            for (dir, bits, mtime) in deferred {
                let result = self.open_published(&mut cache, dir).and_then(|pos| {
                    let fd = &cache[pos].1;
                    rfs::fchmod(fd, mode(bits))
                        .and_then(|()| rfs::futimens(fd, &timestamps(mtime)))
                        .map_err(io::Error::from)
                });
                if let Err(err) = result {
                    unset.push(
                        self.dest_path
                            .join(self.dir_path(dir))
                            .display()
                            .to_string(),
                    );
                    first.get_or_insert(err);
                }
            }
            first.map(|err| (err, unset))
        }

        /// Opens the published directory `dir` into `cache` (least recently
        /// used first, at most [`WALK_HANDLES`]) from its nearest cached
        /// ancestor or else from the destination, component by component,
        /// `O_NOFOLLOW` and checked to be the inode made; returns its
        /// position in `cache`.
        fn open_published(
            &self,
            cache: &mut Vec<(DirId, OwnedFd)>,
            dir: DirId,
        ) -> io::Result<usize> {
            let mut chain = Vec::new();
            let mut base = None;
            let mut id = dir;
            while id != STAGING_ROOT {
                if let Some(pos) = cache.iter().position(|(cached, _)| *cached == id) {
                    let entry = cache.remove(pos);
                    cache.push(entry);
                    base = Some(cache.len() - 1);
                    break;
                }
                chain.push(id);
                id = self.dirs[id].parent;
            }
            for &step in chain.iter().rev() {
                let held = &self.dirs[step];
                let from = base.map_or(self.dest.as_fd(), |pos| cache[pos].1.as_fd());
                let fd = reopen(from, &held.name, held.ident)?;
                if cache.len() >= WALK_HANDLES {
                    // The least recently used: never `from`, the newest.
                    cache.remove(0);
                }
                cache.push((step, fd));
                base = Some(cache.len() - 1);
            }
            base.ok_or_else(|| io::Error::other("staging: not a published directory"))
        }

        fn move_tops(
            &mut self,
            tops: &[Top],
            replace: bool,
            steps: &mut Vec<Step>,
        ) -> Result<(), Error> {
            for (index, top) in tops.iter().enumerate() {
                check_component(&top.name)?;
                let name = top.name.as_str();
                if name == self.name || name.starts_with(&self.aside_tag) {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("staging: {name:?} is a name the staging area uses"),
                    )));
                }
                let staged = match rfs::statat(self.root(), name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => stat,
                    Err(Errno::NOENT) => continue,
                    Err(err) => {
                        return Err(located(
                            err,
                            "inspect",
                            self.staged_path(STAGING_ROOT, name),
                        ));
                    }
                };
                let ident = ident_of(&staged);
                let is_dir = FileType::from_raw_mode(staged.st_mode).is_dir();
                let inject = self.injected(index);
                if inject && !replace {
                    return Err(injected());
                }
                let mut result =
                    rename_noreplace(self.root(), name, self.dest.as_fd(), name, is_dir);
                if replace && matches!(result, Err(Errno::EXIST)) {
                    self.move_aside(name, steps)?;
                    if inject {
                        return Err(injected());
                    }
                    result = rename_noreplace(self.root(), name, self.dest.as_fd(), name, is_dir);
                }
                match result {
                    Ok(()) => steps.push(Step::Moved {
                        name: name.to_owned(),
                        ident,
                        is_dir,
                    }),
                    Err(Errno::EXIST | Errno::NOTEMPTY) => {
                        return Err(Error::DestinationExists {
                            path: self.dest_path.join(name),
                        });
                    }
                    Err(err) => {
                        return Err(located(err, "move into the destination", name.to_owned()));
                    }
                }
                if inject {
                    return Err(injected());
                }
            }
            Ok(())
        }

        /// Test hook: whether publishing is to fail at top `index`.
        #[cfg(test)]
        fn injected(&self, index: usize) -> bool {
            self.fail_before_top == Some(index)
        }

        #[cfg(not(test))]
        fn injected(&self, _index: usize) -> bool {
            false
        }

        /// Renames the existing `dest/name` to a hidden sibling.
        fn move_aside(&mut self, name: &str, steps: &mut Vec<Step>) -> Result<(), Error> {
            let aside = format!("{}{}", self.aside_tag, steps.len());
            let dest = self.dest.as_fd();
            let existing = rfs::statat(dest, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|err| {
                located(
                    err,
                    "inspect",
                    self.dest_path.join(name).display().to_string(),
                )
            })?;
            let is_dir = FileType::from_raw_mode(existing.st_mode).is_dir();
            rename_noreplace(dest, name, dest, &aside, is_dir).map_err(|err| {
                located(
                    err,
                    "move aside",
                    self.dest_path.join(name).display().to_string(),
                )
            })?;
            steps.push(Step::Aside {
                name: name.to_owned(),
                aside,
                ident: ident_of(&existing),
                is_dir,
            });
            Ok(())
        }

        /// Applies the top-level directories' final modes and mtimes, now
        /// that they are in the destination, one handle at a time; on
        /// failure makes them all writable again so that they can be moved
        /// back. Those whose mode lacks owner read or search are left 0700
        /// and added to `deferred`.
        fn finish_tops(
            &mut self,
            tops: &[Top],
            deferred: &mut Vec<(DirId, u32, i64)>,
        ) -> Result<(), Error> {
            let mut now = Vec::new();
            for top in tops {
                let Some((dir, bits, mtime)) = top.dir else {
                    continue;
                };
                let is_top = self.dirs.get(dir).is_some_and(|held| {
                    held.parent == STAGING_ROOT && dir != STAGING_ROOT && held.name == top.name
                });
                if !is_top {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "staging: {:?} is not the top-level directory given",
                            top.name
                        ),
                    )));
                }
                let bits = safe_mode(bits);
                if enterable(bits) {
                    now.push((dir, bits, mtime));
                } else {
                    deferred.push((dir, bits, mtime));
                }
            }
            for (done, &(dir, bits, mtime)) in now.iter().enumerate() {
                let result = self.top_handle(dir).and_then(|fd| {
                    rfs::fchmod(&fd, mode(bits))
                        .and_then(|()| rfs::futimens(&fd, &timestamps(mtime)))
                        .map_err(io::Error::from)
                });
                if let Err(err) = result {
                    // Their modes have owner read and search: reopenable.
                    for &(dir, ..) in &now[..=done] {
                        if let Ok(fd) = self.top_handle(dir) {
                            let _ = rfs::fchmod(&fd, mode(0o700));
                        }
                    }
                    return Err(located(
                        err,
                        "set the mode and mtime of",
                        self.dir_path(dir),
                    ));
                }
            }
            Ok(())
        }

        /// A handle of top-level directory `dir`, now in the destination.
        fn top_handle(&self, dir: DirId) -> io::Result<OwnedFd> {
            let held = &self.dirs[dir];
            match &held.fd {
                Some(fd) => fd.try_clone(),
                None => reopen(self.dest.as_fd(), &held.name, held.ident),
            }
        }

        /// Reverses `steps`, newest first, moving only what is still the
        /// inode that was moved; returns the error to report.
        fn undo(&self, steps: &[Step], err: Error) -> Error {
            let dest = self.dest.as_fd();
            let root = self.root();
            let mut left = Vec::new();
            for step in steps.iter().rev() {
                let (from_name, to, to_name, ident, is_dir) = match step {
                    Step::Moved {
                        name,
                        ident,
                        is_dir,
                    } => (name, root, name, *ident, *is_dir),
                    Step::Aside {
                        name,
                        aside,
                        ident,
                        is_dir,
                    } => (aside, dest, name, *ident, *is_dir),
                };
                let same = rfs::statat(dest, from_name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|stat| ident_of(&stat) == ident);
                let moved = same && rename_noreplace(dest, from_name, to, to_name, is_dir).is_ok();
                if !moved {
                    left.push(from_name.clone());
                }
            }
            if left.is_empty() {
                return err;
            }
            Error::Io(io::Error::other(UndoFailed {
                left: left.join(", "),
                source: err,
            }))
        }

        /// The staging root's handle.
        fn root(&self) -> BorrowedFd<'_> {
            self.held(STAGING_ROOT)
        }

        /// An open handle's descriptor; the caller made sure it is open.
        fn held(&self, dir: DirId) -> BorrowedFd<'_> {
            self.dirs[dir]
                .fd
                .as_ref()
                .expect("ensure_open ran for this directory")
                .as_fd()
        }

        /// Makes `dir`'s handle open, reopening it (and any evicted
        /// ancestors) from the nearest open one, each step `O_NOFOLLOW` and
        /// checked to be the same inode as made.
        fn ensure_open(&mut self, dir: DirId) -> Result<(), Error> {
            let Some(held) = self.dirs.get(dir) else {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("staging: no directory handle {dir}"),
                )));
            };
            if held.fd.is_some() {
                if dir != STAGING_ROOT && self.open.back() != Some(&dir) {
                    self.open.retain(|&id| id != dir);
                    self.open.push_back(dir);
                }
                return Ok(());
            }
            let mut chain = vec![dir];
            let mut ancestor = held.parent;
            while self.dirs[ancestor].fd.is_none() {
                chain.push(ancestor);
                ancestor = self.dirs[ancestor].parent;
            }
            let mut current: Option<OwnedFd> = None;
            for &step in chain.iter().rev() {
                let base = match &current {
                    Some(fd) => fd.as_fd(),
                    None => self.held(ancestor),
                };
                let held = &self.dirs[step];
                let fd = reopen(base, &held.name, held.ident)
                    .map_err(|err| located(err, "reopen directory", self.dir_path(step)))?;
                current = Some(fd);
            }
            self.store(dir, current.expect("the chain holds at least `dir`"));
            Ok(())
        }

        /// Keeps `fd` as `dir`'s handle, evicting the least recently used.
        fn store(&mut self, dir: DirId, fd: OwnedFd) {
            while self.open.len() >= self.max_open.max(2) {
                match self.open.pop_front() {
                    Some(old) => self.dirs[old].fd = None,
                    None => break,
                }
            }
            self.dirs[dir].fd = Some(fd);
            self.open.push_back(dir);
        }

        /// `a/b/name` relative to the staging root, for messages.
        fn staged_path(&self, parent: DirId, name: &str) -> String {
            let mut path = self.dir_path(parent);
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(name);
            path
        }

        /// A directory's path relative to the staging root ("" for it).
        fn dir_path(&self, dir: DirId) -> String {
            let mut parts = Vec::new();
            let mut id = dir;
            while id != STAGING_ROOT && id < self.dirs.len() && parts.len() <= self.dirs.len() {
                parts.push(self.dirs[id].name.as_str());
                id = self.dirs[id].parent;
            }
            parts.reverse();
            parts.join("/")
        }

        /// Test hook: how many directory handles are open (root included).
        #[cfg(test)]
        pub(super) fn open_handles(&self) -> usize {
            self.dirs.iter().filter(|held| held.fd.is_some()).count()
        }

        /// Test hook: the handle cache's size.
        #[cfg(test)]
        pub(super) fn set_max_open(&mut self, max_open: usize) {
            self.max_open = max_open;
        }

        /// Test hook: fail publishing just before moving top `index` in.
        #[cfg(test)]
        pub(super) fn fail_before_top(&mut self, index: usize) {
            self.fail_before_top = Some(index);
        }
    }

    impl Drop for Staging {
        fn drop(&mut self) {
            // Cleanup needs descriptors of its own: let the cache go. Every
            // staged directory has owner read and search (restrictive
            // modes are only applied once published).
            for held in self.dirs.iter_mut().skip(1) {
                held.fd = None;
            }
            self.open.clear();
            let root = self.root();
            let _ = clear_dir(root);
            let ours = self.dirs[STAGING_ROOT].ident;
            let still = rfs::statat(&self.dest, self.name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|stat| ident_of(&stat) == ours);
            if still {
                let _ = rfs::unlinkat(&self.dest, self.name.as_str(), AtFlags::REMOVEDIR);
            }
        }
    }

    fn injected() -> Error {
        Error::Io(io::Error::other("injected failure"))
    }

    /// Publishing failed and moving back failed too.
    #[derive(Debug, thiserror::Error)]
    #[error("publishing failed and could not be undone: {left} left in the destination")]
    struct UndoFailed {
        left: String,
        source: Error,
    }

    /// A file being written in staging: every write, the mode and the
    /// mtime go through the one handle that created it.
    pub(crate) struct StagedFile {
        file: File,
        path: String,
    }

    impl Write for StagedFile {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.file.write(buf).map_err(|err| self.wrap(err))
        }

        fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            self.file.write_all(buf).map_err(|err| self.wrap(err))
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl StagedFile {
        fn wrap(&self, err: io::Error) -> io::Error {
            if err.kind() == io::ErrorKind::Interrupted {
                return err;
            }
            match located(err, "write", self.path.clone()) {
                Error::Io(err) => err,
                other => io::Error::other(other),
            }
        }

        /// Sets the final mode (without set-id, sticky and world-write
        /// bits) and mtime through the same handle, then closes it.
        ///
        /// # Errors
        ///
        /// [`Error::Io`] naming the staged path.
        pub(crate) fn finish(self, mode_bits: u32, mtime: i64) -> Result<(), Error> {
            rfs::fchmod(&self.file, mode(safe_mode(mode_bits)))
                .and_then(|()| rfs::futimens(&self.file, &timestamps(mtime)))
                .map_err(|err| located(err, "set the mode and mtime of", self.path))
        }
    }

    /// Learns the umask from a probe file created with mode 0777.
    fn probe_umask(root: BorrowedFd<'_>) -> io::Result<u32> {
        let probe = rfs::openat(
            root,
            UMASK_PROBE,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode(0o777),
        )?;
        let stat = rfs::fstat(&probe);
        drop(probe);
        rfs::unlinkat(root, UMASK_PROBE, AtFlags::empty())?;
        #[allow(clippy::unnecessary_cast, reason = "st_mode is u16 on some systems")]
        Ok(0o777 & !(stat?.st_mode as u32))
    }

    /// Whether a directory with mode `bits` can be reopened and emptied by
    /// its owner: owner read and search.
    fn enterable(bits: u32) -> bool {
        bits & 0o500 == 0o500
    }

    /// Opens directory `name` in `base` without following a symlink, and
    /// checks it is still the inode `ident`.
    fn reopen<P: rustix::path::Arg>(
        base: BorrowedFd<'_>,
        name: P,
        ident: Ident,
    ) -> io::Result<OwnedFd> {
        let fd = rfs::openat(base, name, DIR_FLAGS, Mode::empty())?;
        if ident_of(&rfs::fstat(&fd)?) != ident {
            return Err(io::Error::other(
                "it was replaced by another directory while staging",
            ));
        }
        Ok(fd)
    }

    /// Renames without ever replacing an existing `to/to_name`.
    fn rename_noreplace(
        from: BorrowedFd<'_>,
        from_name: &str,
        to: BorrowedFd<'_>,
        to_name: &str,
        is_dir: bool,
    ) -> Result<(), Errno> {
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        match rfs::renameat_with(from, from_name, to, to_name, rfs::RenameFlags::NOREPLACE) {
            // No such flag in this kernel or file system: fall back.
            Err(Errno::INVAL | Errno::NOSYS | Errno::NOTSUP) => {}
            other => return other,
        }
        rename_noreplace_fallback(from, from_name, to, to_name, is_dir)
    }

    /// [`rename_noreplace`] without `renameat2`.
    pub(super) fn rename_noreplace_fallback(
        from: BorrowedFd<'_>,
        from_name: &str,
        to: BorrowedFd<'_>,
        to_name: &str,
        is_dir: bool,
    ) -> Result<(), Errno> {
        if is_dir {
            // Not atomic: an empty directory made between the check and
            // the rename would be replaced (a non-empty one or a file makes
            // the rename fail).
            match rfs::statat(to, to_name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(_) => Err(Errno::EXIST),
                Err(Errno::NOENT) => rfs::renameat(from, from_name, to, to_name),
                Err(err) => Err(err),
            }
        } else {
            // `linkat` never replaces; the link itself is moved, not its target.
            rfs::linkat(from, from_name, to, to_name, AtFlags::empty())?;
            rfs::unlinkat(from, from_name, AtFlags::empty())
        }
    }

    /// Removes a replaced entry, if it is still the one moved aside.
    fn remove_aside(
        dest: BorrowedFd<'_>,
        aside: &str,
        ident: Ident,
        is_dir: bool,
    ) -> io::Result<()> {
        if !is_dir {
            let stat = rfs::statat(dest, aside, AtFlags::SYMLINK_NOFOLLOW)?;
            if ident_of(&stat) != ident {
                return Err(io::Error::other("it changed after it was moved aside"));
            }
            return Ok(rfs::unlinkat(dest, aside, AtFlags::empty())?);
        }
        let fd = reopen(dest, aside, ident)?;
        let _ = rfs::fchmod(&fd, mode(0o700));
        clear_dir(fd.as_fd())?;
        drop(fd);
        Ok(rfs::unlinkat(dest, aside, AtFlags::REMOVEDIR)?)
    }

    /// One directory on the path of [`clear_dir`]'s walk.
    pub(super) struct Level {
        /// Its name in the level above (empty for the base).
        pub(super) name: CString,
        /// What reopening it must find (unused for the base).
        pub(super) ident: Ident,
        /// Its handle, or `None` while let go (always for the base).
        pub(super) fd: Option<OwnedFd>,
        /// The entries still to remove.
        pub(super) names: Vec<CString>,
    }

    /// Removes everything inside `base`, by handle, never following a
    /// symlink; directories are made 0700 first so read-only ones empty.
    ///
    /// Depth first with an explicit stack of [`Level`]s rather than
    /// recursion: besides `base`, at most [`WALK_HANDLES`] handles are held,
    /// those of the deepest levels of the current path. Returning to a
    /// level whose handle was let go reopens it (and the levels between)
    /// from the nearest held level, component by component, `O_NOFOLLOW`,
    /// each checked to be the inode listed before; a level that fails to
    /// reopen is given up with everything below it, never entered. The
    /// cost is one reopen per level for every [`WALK_HANDLES`] levels
    /// climbed, negligible at the depths a path can have.
    fn clear_dir(base: BorrowedFd<'_>) -> io::Result<()> {
        let mut levels = vec![Level {
            name: CString::default(),
            ident: (0, 0),
            fd: None,
            names: list_dir(base)?,
        }];
        let mut first: Option<io::Error> = None;
        loop {
            let depth = levels.len() - 1;
            let Some(name) = levels[depth].names.pop() else {
                if depth == 0 {
                    break;
                }
                // Emptied (as far as it goes): remove it from its parent.
                let done = levels.pop().expect("depth > 0");
                drop(done.fd);
                let result = current(base, &mut levels).and_then(|parent| {
                    Ok(rfs::unlinkat(
                        parent,
                        done.name.as_c_str(),
                        AtFlags::REMOVEDIR,
                    )?)
                });
                if let Err(err) = result {
                    first.get_or_insert(err);
                }
                continue;
            };
            match enter(base, &mut levels, &name) {
                Ok(None) => {}
                Ok(Some((child, ident, names))) => {
                    if levels.len() > MAX_CLEANUP_DEPTH {
                        first.get_or_insert(io::Error::other("the tree is too deep to remove"));
                        continue;
                    }
                    levels.push(Level {
                        name,
                        ident,
                        fd: Some(child),
                        names,
                    });
                    let deepest = levels.len() - 1;
                    if deepest > WALK_HANDLES {
                        levels[deepest - WALK_HANDLES].fd = None;
                    }
                }
                Err(err) => {
                    first.get_or_insert(err);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Removes `name` from the deepest level if it is not a directory to
    /// descend into; else returns that directory's handle (made 0700),
    /// identity and entries.
    fn enter(
        base: BorrowedFd<'_>,
        levels: &mut Vec<Level>,
        name: &CString,
    ) -> io::Result<Option<(OwnedFd, Ident, Vec<CString>)>> {
        let dir = current(base, levels)?;
        let stat = rfs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        if !FileType::from_raw_mode(stat.st_mode).is_dir() {
            rfs::unlinkat(dir, name.as_c_str(), AtFlags::empty())?;
            return Ok(None);
        }
        match rfs::openat(dir, name.as_c_str(), DIR_FLAGS, Mode::empty()) {
            Ok(child) => {
                let _ = rfs::fchmod(&child, mode(0o700));
                let ident = ident_of(&rfs::fstat(&child)?);
                let names = list_dir(child.as_fd())?;
                Ok(Some((child, ident, names)))
            }
            // Swapped for something else since: remove that, unfollowed.
            Err(Errno::NOTDIR | Errno::LOOP) => {
                rfs::unlinkat(dir, name.as_c_str(), AtFlags::empty())?;
                Ok(None)
            }
            // Unreadable: removable still if empty.
            Err(_) => {
                rfs::unlinkat(dir, name.as_c_str(), AtFlags::REMOVEDIR)?;
                Ok(None)
            }
        }
    }

    /// The deepest level's handle, reopened if it was let go (see
    /// [`clear_dir`]). On failure the levels from the one that failed to
    /// reopen down are dropped, unvisited.
    pub(super) fn current<'a>(
        base: BorrowedFd<'a>,
        levels: &'a mut Vec<Level>,
    ) -> io::Result<BorrowedFd<'a>> {
        let deepest = levels.len() - 1;
        if deepest > 0 && levels[deepest].fd.is_none() {
            let mut held = deepest;
            while held > 0 && levels[held].fd.is_none() {
                held -= 1;
            }
            for step in held + 1..=deepest {
                let parent = match &levels[step - 1].fd {
                    Some(fd) => fd.as_fd(),
                    None => base,
                };
                match reopen(parent, levels[step].name.as_c_str(), levels[step].ident) {
                    Ok(fd) => levels[step].fd = Some(fd),
                    Err(err) => {
                        levels.truncate(step);
                        return Err(err);
                    }
                }
                // Keep only the deepest WALK_HANDLES levels' handles.
                if step - 1 > 0 && step - 1 + WALK_HANDLES <= deepest {
                    levels[step - 1].fd = None;
                }
            }
        }
        match levels.last().and_then(|level| level.fd.as_ref()) {
            Some(fd) => Ok(fd.as_fd()),
            None if levels.len() == 1 => Ok(base),
            None => Err(io::Error::other("cleanup lost a directory handle")),
        }
    }

    /// The names in `dir`, without `.` and `..`. Collected first: removing
    /// while reading may skip entries.
    fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
        let mut names = Vec::new();
        for entry in rfs::Dir::read_from(dir)? {
            let name = entry?.file_name().to_owned();
            if name.as_bytes() != b"." && name.as_bytes() != b".." {
                names.push(name);
            }
        }
        Ok(names)
    }

    const _: () = assert!(MAX_OPEN_DIRS >= 2);
}

#[cfg(not(unix))]
mod other {
    //! Extraction needs `openat` and friends: elsewhere it is refused.

    use std::convert::Infallible;
    use std::io::{self, Write};
    use std::path::Path;

    use super::{DirId, Top};
    use crate::error::Error;

    /// Stands in for the Unix staging area; never constructed.
    pub(crate) struct Staging {
        never: Infallible,
    }

    /// Stands in for a Unix staged file; never constructed.
    pub(crate) struct StagedFile {
        never: Infallible,
    }

    impl Staging {
        /// Always refuses: extraction needs a Unix system.
        ///
        /// # Errors
        ///
        /// [`Error::Io`] with [`io::ErrorKind::Unsupported`].
        pub(crate) fn create(_dest: &Path) -> Result<Staging, Error> {
            Err(Error::Io(io::Error::new(
                io::ErrorKind::Unsupported,
                "extraction needs a Unix system",
            )))
        }

        pub(crate) fn umask(&self) -> u32 {
            match self.never {}
        }

        pub(crate) fn name(&self) -> &str {
            match self.never {}
        }

        pub(crate) fn replaced_prefix(&self) -> &str {
            match self.never {}
        }

        /// # Errors
        ///
        /// Never returns.
        pub(crate) fn make_dir(&mut self, _parent: DirId, _name: &str) -> Result<DirId, Error> {
            match self.never {}
        }

        /// # Errors
        ///
        /// Never returns.
        pub(crate) fn create_file(
            &mut self,
            _parent: DirId,
            _name: &str,
        ) -> Result<StagedFile, Error> {
            match self.never {}
        }

        /// # Errors
        ///
        /// Never returns.
        pub(crate) fn remove_file(&mut self, _parent: DirId, _name: &str) -> Result<(), Error> {
            match self.never {}
        }

        /// # Errors
        ///
        /// Never returns.
        pub(crate) fn hard_link(
            &mut self,
            _target_parent: DirId,
            _target_name: &str,
            _parent: DirId,
            _name: &str,
        ) -> Result<(), Error> {
            match self.never {}
        }

        /// # Errors
        ///
        /// Never returns.
        pub(crate) fn symlink(
            &mut self,
            _parent: DirId,
            _name: &str,
            _target: &str,
            _mtime: i64,
        ) -> Result<(), Error> {
            match self.never {}
        }

        /// # Errors
        ///
        /// Never returns.
        pub(crate) fn finish_dir(
            &mut self,
            _dir: DirId,
            _mode: u32,
            _mtime: i64,
        ) -> Result<(), Error> {
            match self.never {}
        }

        /// # Errors
        ///
        /// Never returns.
        pub(crate) fn publish(self, _tops: &[Top], _replace: bool) -> Result<(), Error> {
            match self.never {}
        }
    }

    impl Write for StagedFile {
        fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
            match self.never {}
        }

        fn flush(&mut self) -> io::Result<()> {
            match self.never {}
        }
    }

    impl StagedFile {
        /// # Errors
        ///
        /// Never returns.
        pub(crate) fn finish(self, _mode: u32, _mtime: i64) -> Result<(), Error> {
            match self.never {}
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path)
            .map(|meta| meta.mode() & 0o7777)
            .unwrap_or(u32::MAX)
    }

    /// Names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Every entry below `dir`: mode, inode, mtime, and content or link target.
    fn snapshot(dir: &Path) -> BTreeMap<String, (u32, u64, i64, Vec<u8>)> {
        fn walk(base: &Path, rel: &str, out: &mut BTreeMap<String, (u32, u64, i64, Vec<u8>)>) {
            for name in names(&base.join(rel)) {
                let rel = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let path = base.join(&rel);
                let meta = fs::symlink_metadata(&path).expect("listed just now");
                let content = if meta.file_type().is_symlink() {
                    fs::read_link(&path)
                        .expect("a symlink")
                        .into_os_string()
                        .into_encoded_bytes()
                } else if meta.is_file() {
                    fs::read(&path).unwrap_or_default()
                } else {
                    Vec::new()
                };
                out.insert(
                    rel.clone(),
                    (meta.mode() & 0o7777, meta.ino(), meta.mtime(), content),
                );
                if meta.is_dir() {
                    walk(base, &rel, out);
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(dir, "", &mut out);
        out
    }

    fn write_file(staging: &mut Staging, parent: DirId, name: &str, data: &[u8]) -> TestResult {
        let mut file = staging.create_file(parent, name)?;
        file.write_all(data)?;
        file.finish(0o644, 1_000_000)?;
        Ok(())
    }

    fn top(name: &str) -> Top {
        Top {
            name: name.to_owned(),
            dir: None,
        }
    }

    /// Runs `test` with a fresh destination directory, as an unprivileged
    /// user when the suite runs as root (Linux: on its own thread, whose
    /// uid alone is dropped), so that permission checks apply.
    fn unprivileged(test: impl FnOnce(&Path) -> TestResult + Send + 'static) -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().to_path_buf();
        #[cfg(target_os = "linux")]
        let root = fs::metadata("/proc/self")?.uid() == 0;
        #[cfg(not(target_os = "linux"))]
        let root = false;
        if root {
            std::os::unix::fs::chown(&path, Some(65534), Some(65534))?;
        }
        let outcome = thread::spawn(move || -> Result<(), String> {
            #[cfg(target_os = "linux")]
            if root {
                let nobody = rustix::thread::Uid::from_raw(65534);
                rustix::thread::set_thread_res_uid(nobody, nobody, nobody)
                    .map_err(|err| err.to_string())?;
            }
            test(&path).map_err(|err| err.to_string())
        })
        .join();
        match outcome {
            Ok(result) => result.map_err(Into::into),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    #[test]
    fn staging_is_private_and_files_are_private_while_written() -> TestResult {
        let dest = tempfile::tempdir()?;
        let mut staging = Staging::create(dest.path())?;
        let root = dest.path().join(staging.name());
        assert!(staging.name().starts_with(".kuvert-staging-"));
        assert!(staging.replaced_prefix().starts_with(".kuvert-replaced-"));
        let (pid, random) = staging
            .name()
            .strip_prefix(".kuvert-staging-")
            .and_then(|rest| rest.split_once('-'))
            .ok_or("staging name")?;
        assert_eq!(pid, std::process::id().to_string());
        assert!(random.len() == 12 && random.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(names(dest.path()), vec![staging.name().to_owned()]);
        assert_eq!(mode_of(&root), 0o700);
        assert_eq!(
            names(&root),
            Vec::<String>::new(),
            "the umask probe is gone"
        );
        let dir = staging.make_dir(STAGING_ROOT, "top")?;
        let sub = staging.make_dir(dir, "sub")?;
        assert_eq!(mode_of(&root.join("top")), 0o700);
        assert_eq!(mode_of(&root.join("top/sub")), 0o700);
        let mut file = staging.create_file(sub, "f")?;
        file.write_all(b"hello")?;
        assert_eq!(mode_of(&root.join("top/sub/f")), 0o600);
        let umask = staging.umask();
        file.finish(0o666 & !umask, 1_000_000)?;
        let meta = fs::metadata(root.join("top/sub/f"))?;
        assert_eq!(meta.mode() & 0o7777, 0o664 & !umask);
        assert_eq!(meta.mtime(), 1_000_000);
        assert_eq!(fs::read(root.join("top/sub/f"))?, b"hello");
        staging.finish_dir(sub, 0o750, 2_000_000)?;
        assert_eq!(mode_of(&root.join("top/sub")), 0o750);
        assert_eq!(fs::metadata(root.join("top/sub"))?.mtime(), 2_000_000);
        drop(staging);
        assert_eq!(names(dest.path()), Vec::<String>::new(), "staging removed");
        Ok(())
    }

    #[test]
    fn umask_probe_matches_the_process_umask() -> TestResult {
        let Ok(status) = fs::read_to_string("/proc/self/status") else {
            return Ok(()); // no procfs here
        };
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix("Umask:"))
            .ok_or("no Umask line")?;
        let expected = u32::from_str_radix(line.trim(), 8)?;
        let dest = tempfile::tempdir()?;
        let staging = Staging::create(dest.path())?;
        assert_eq!(staging.umask(), expected);
        Ok(())
    }

    #[test]
    fn set_id_sticky_and_world_write_are_dropped() -> TestResult {
        let dest = tempfile::tempdir()?;
        let mut staging = Staging::create(dest.path())?;
        let root = dest.path().join(staging.name());
        let top_dir = staging.make_dir(STAGING_ROOT, "t")?;
        let sub = staging.make_dir(top_dir, "d")?;
        let file = staging.create_file(sub, "f")?;
        file.finish(0o7777, 0)?;
        assert_eq!(mode_of(&root.join("t/d/f")), 0o775);
        let file = staging.create_file(sub, "g")?;
        file.finish(0o4757, 0)?;
        assert_eq!(mode_of(&root.join("t/d/g")), 0o755);
        staging.finish_dir(sub, 0o7777, 0)?;
        assert_eq!(mode_of(&root.join("t/d")), 0o775);
        let tops = [Top {
            name: "t".into(),
            dir: Some((top_dir, 0o3777, 7)),
        }];
        staging.publish(&tops, false)?;
        assert_eq!(mode_of(&dest.path().join("t")), 0o775);
        assert_eq!(fs::metadata(dest.path().join("t"))?.mtime(), 7);
        assert_eq!(mode_of(&dest.path().join("t/d/f")), 0o775);
        assert_eq!(names(dest.path()), vec!["t".to_owned()]);
        Ok(())
    }

    #[test]
    fn mtimes_are_clamped() -> TestResult {
        let dest = tempfile::tempdir()?;
        let mut staging = Staging::create(dest.path())?;
        let root = dest.path().join(staging.name());
        staging
            .create_file(STAGING_ROOT, "old")?
            .finish(0o600, -86_400)?;
        staging
            .create_file(STAGING_ROOT, "new")?
            .finish(0o600, i64::MAX)?;
        staging.symlink(STAGING_ROOT, "link", "old", i64::MIN)?;
        assert_eq!(fs::metadata(root.join("old"))?.mtime(), 0);
        assert_eq!(fs::metadata(root.join("new"))?.mtime(), MAX_MTIME);
        assert_eq!(fs::symlink_metadata(root.join("link"))?.mtime(), 0);
        Ok(())
    }

    #[test]
    fn read_only_directories_are_cleaned_up_on_drop() -> TestResult {
        unprivileged(|dest| {
            let mut staging = Staging::create(dest)?;
            let top_dir = staging.make_dir(STAGING_ROOT, "t")?;
            let locked = staging.make_dir(top_dir, "locked")?;
            let ro = staging.make_dir(top_dir, "ro")?;
            let deep = staging.make_dir(ro, "deep")?;
            write_file(&mut staging, locked, "f", b"1")?;
            write_file(&mut staging, deep, "g", b"2")?;
            staging.symlink(deep, "l", "../../locked/f", 0)?;
            staging.finish_dir(locked, 0o000, 0)?;
            staging.finish_dir(deep, 0o555, 0)?;
            staging.finish_dir(ro, 0o500, 0)?;
            let root = dest.join(staging.name());
            assert_eq!(mode_of(&root.join("t/locked")), 0o700, "deferred");
            assert_eq!(mode_of(&root.join("t/ro")), 0o500);
            drop(staging);
            assert_eq!(names(dest), Vec::<String>::new());
            Ok(())
        })
    }

    #[test]
    fn publish_refuses_an_existing_name_and_leaves_dest_as_it_was() -> TestResult {
        let dest = tempfile::tempdir()?;
        fs::write(dest.path().join("b"), b"theirs")?;
        fs::create_dir(dest.path().join("other"))?;
        let before = snapshot(dest.path());
        let mut staging = Staging::create(dest.path())?;
        let a = staging.make_dir(STAGING_ROOT, "a")?;
        write_file(&mut staging, a, "inner", b"ours")?;
        write_file(&mut staging, STAGING_ROOT, "b", b"ours")?;
        write_file(&mut staging, STAGING_ROOT, "c", b"ours")?;
        let tops = [
            Top {
                name: "a".into(),
                dir: Some((a, 0o755, 0)),
            },
            top("b"),
            top("c"),
        ];
        let err = staging.publish(&tops, false).err().ok_or("published")?;
        match err {
            Error::DestinationExists { path } => assert_eq!(path, dest.path().join("b")),
            other => return Err(format!("unexpected {other:?}").into()),
        }
        assert_eq!(snapshot(dest.path()), before, "dest is as it was");
        Ok(())
    }

    #[test]
    fn publish_with_replace_swaps_in_and_removes_the_old_tree() -> TestResult {
        unprivileged(|dest| {
            // An earlier extraction, read-only all the way down.
            fs::create_dir_all(dest.join("a/sub"))?;
            fs::write(dest.join("a/sub/old"), b"old")?;
            fs::write(dest.join("b"), b"old b")?;
            fs::set_permissions(dest.join("a/sub"), fs::Permissions::from_mode(0o555))?;
            fs::set_permissions(dest.join("a"), fs::Permissions::from_mode(0o555))?;
            fs::write(dest.join("keep"), b"untouched")?;
            let mut staging = Staging::create(dest)?;
            let a = staging.make_dir(STAGING_ROOT, "a")?;
            write_file(&mut staging, a, "new", b"new")?;
            write_file(&mut staging, STAGING_ROOT, "b", b"new b")?;
            write_file(&mut staging, STAGING_ROOT, "c", b"new c")?;
            let tops = [
                Top {
                    name: "a".into(),
                    dir: Some((a, 0o555, 42)),
                },
                top("b"),
                top("c"),
            ];
            staging.publish(&tops, true)?;
            assert_eq!(names(dest), vec!["a", "b", "c", "keep"]);
            assert_eq!(names(&dest.join("a")), vec!["new"]);
            assert_eq!(mode_of(&dest.join("a")), 0o555);
            assert_eq!(fs::metadata(dest.join("a"))?.mtime(), 42);
            assert_eq!(fs::read(dest.join("b"))?, b"new b");
            assert_eq!(fs::read(dest.join("keep"))?, b"untouched");
            Ok(())
        })
    }

    #[test]
    fn failed_replace_puts_the_old_tree_back() -> TestResult {
        unprivileged(|dest| {
            fs::create_dir_all(dest.join("a/sub"))?;
            fs::write(dest.join("a/sub/old"), b"old")?;
            fs::set_permissions(dest.join("a"), fs::Permissions::from_mode(0o555))?;
            fs::write(dest.join("b"), b"old b")?;
            let before = snapshot(dest);
            let mut staging = Staging::create(dest)?;
            let a = staging.make_dir(STAGING_ROOT, "a")?;
            write_file(&mut staging, a, "new", b"new")?;
            write_file(&mut staging, STAGING_ROOT, "b", b"new b")?;
            write_file(&mut staging, STAGING_ROOT, "c", b"new c")?;
            let tops = [
                Top {
                    name: "a".into(),
                    dir: Some((a, 0o755, 0)),
                },
                top("c"),
                top("b"),
            ];
            // After a and c are in and the old b is aside.
            staging.fail_before_top(2);
            let err = staging.publish(&tops, true).err().ok_or("published")?;
            assert!(err.to_string().contains("i/o"), "{err}");
            assert_eq!(
                snapshot(dest),
                before,
                "the old entries are back, same inodes"
            );
            Ok(())
        })
    }

    #[test]
    fn failed_publish_without_existing_names_moves_everything_back() -> TestResult {
        let dest = tempfile::tempdir()?;
        let mut staging = Staging::create(dest.path())?;
        write_file(&mut staging, STAGING_ROOT, "x", b"1")?;
        write_file(&mut staging, STAGING_ROOT, "y", b"2")?;
        staging.fail_before_top(1);
        assert!(staging.publish(&[top("x"), top("y")], true).is_err());
        assert_eq!(names(dest.path()), Vec::<String>::new());
        Ok(())
    }

    #[test]
    fn publish_skips_missing_tops() -> TestResult {
        let dest = tempfile::tempdir()?;
        let mut staging = Staging::create(dest.path())?;
        write_file(&mut staging, STAGING_ROOT, "x", b"1")?;
        write_file(&mut staging, STAGING_ROOT, "damaged", b"2")?;
        staging.remove_file(STAGING_ROOT, "damaged")?;
        staging.publish(&[top("x"), top("damaged")], false)?;
        assert_eq!(names(dest.path()), vec!["x"]);
        Ok(())
    }

    #[test]
    fn hard_links_share_the_inode() -> TestResult {
        let dest = tempfile::tempdir()?;
        let mut staging = Staging::create(dest.path())?;
        let t = staging.make_dir(STAGING_ROOT, "t")?;
        let other = staging.make_dir(t, "other")?;
        write_file(&mut staging, t, "data", &[7u8; 4096])?;
        for i in 0..50 {
            staging.hard_link(t, "data", other, &format!("link{i}"))?;
        }
        let root = dest.path().join(staging.name());
        let original = fs::metadata(root.join("t/data"))?;
        assert_eq!(original.nlink(), 51);
        let link = fs::metadata(root.join("t/other/link7"))?;
        assert_eq!(link.ino(), original.ino());
        assert_eq!(link.dev(), original.dev());
        assert!(
            staging.hard_link(t, "data", other, "link7").is_err(),
            "exists"
        );
        assert!(staging.hard_link(t, "missing", other, "x").is_err());
        staging.symlink(STAGING_ROOT, "s", "t/data", 11)?;
        let tops = [
            Top {
                name: "t".into(),
                dir: Some((t, 0o755, 0)),
            },
            top("s"),
        ];
        staging.publish(&tops, false)?;
        let published = fs::metadata(dest.path().join("t/other/link49"))?;
        assert_eq!(published.ino(), original.ino());
        assert_eq!(
            fs::read_link(dest.path().join("s"))?,
            PathBuf::from("t/data")
        );
        assert_eq!(fs::symlink_metadata(dest.path().join("s"))?.mtime(), 11);
        Ok(())
    }

    #[test]
    fn symlinks_are_literal_and_never_followed() -> TestResult {
        let dest = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        let victim = outside.path().join("victim");
        fs::write(&victim, b"precious")?;
        let victim_mtime = fs::metadata(&victim)?.mtime();
        let mut staging = Staging::create(dest.path())?;
        let root = dest.path().join(staging.name());
        let target = victim.to_str().ok_or("utf-8 temp path")?;
        staging.symlink(STAGING_ROOT, "abs", target, 5)?;
        staging.symlink(
            STAGING_ROOT,
            "dir",
            outside.path().to_str().ok_or("utf-8")?,
            5,
        )?;
        staging.symlink(STAGING_ROOT, "rel", "../../x/./y", 5)?;
        assert_eq!(fs::read_link(root.join("abs"))?, victim);
        assert_eq!(
            fs::read_link(root.join("rel"))?,
            PathBuf::from("../../x/./y")
        );
        assert_eq!(fs::symlink_metadata(root.join("abs"))?.mtime(), 5);
        assert_eq!(
            fs::metadata(&victim)?.mtime(),
            victim_mtime,
            "target untouched"
        );
        // Nothing is created, written or linked through a symlink.
        assert!(staging.create_file(STAGING_ROOT, "abs").is_err());
        assert!(staging.make_dir(STAGING_ROOT, "dir").is_err());
        assert!(
            staging
                .symlink(STAGING_ROOT, "abs", "elsewhere", 0)
                .is_err()
        );
        staging.hard_link(STAGING_ROOT, "abs", STAGING_ROOT, "abs2")?;
        assert!(
            fs::symlink_metadata(root.join("abs2"))?
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::symlink_metadata(root.join("abs2"))?.ino(),
            fs::symlink_metadata(root.join("abs"))?.ino()
        );
        assert_eq!(fs::read(&victim)?, b"precious");
        assert_eq!(names(outside.path()), vec!["victim"]);
        assert_eq!(fs::metadata(&victim)?.nlink(), 1);
        drop(staging);
        assert_eq!(fs::read(&victim)?, b"precious");
        Ok(())
    }

    /// Swaps `staged/d` for a symlink to `outside` (and back) until told to stop.
    fn swapper(
        staged: PathBuf,
        outside: PathBuf,
        stop: Arc<AtomicBool>,
    ) -> thread::JoinHandle<u64> {
        thread::spawn(move || {
            let (d, real) = (staged.join("d"), staged.join("d.real"));
            let mut swaps = 0;
            while !stop.load(Ordering::Relaxed) {
                if fs::rename(&d, &real).is_ok() {
                    let _ = symlink(&outside, &d);
                    std::hint::spin_loop();
                    let _ = fs::remove_file(&d);
                    let _ = fs::rename(&real, &d);
                    swaps += 1;
                    // Leave windows where the directory is in place, too.
                    thread::sleep(std::time::Duration::from_micros(20));
                }
            }
            swaps
        })
    }

    fn race(max_open: usize) -> TestResult {
        let dest = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        let mut staging = Staging::create(dest.path())?;
        staging.set_max_open(max_open);
        let d = staging.make_dir(STAGING_ROOT, "d")?;
        let others = [
            staging.make_dir(STAGING_ROOT, "e")?,
            staging.make_dir(STAGING_ROOT, "f")?,
        ];
        let staged = dest.path().join(staging.name());
        let stop = Arc::new(AtomicBool::new(false));
        let handle = swapper(staged.clone(), outside.path().to_path_buf(), stop.clone());
        let (mut written, mut refused) = (0, 0);
        for i in 0..3000 {
            // Touch other directories so that `d`'s handle is evicted.
            staging.make_dir(others[i % 2], &format!("x{i}"))?;
            let result = staging
                .create_file(d, &format!("f{i}"))
                .and_then(|mut file| {
                    file.write_all(b"data")?;
                    file.finish(0o644, 0)
                });
            match result {
                Ok(()) => written += 1,
                Err(_) => refused += 1,
            }
            if i % 3 == 0 {
                let _ = staging.make_dir(d, &format!("g{i}"));
                let _ = staging.symlink(d, &format!("s{i}"), "t", 0);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = handle.join().map_err(|_| "swapper panicked")?;
        assert!(swaps > 0, "the swapper never ran");
        assert!(written > 0, "no write got through at all");
        assert_eq!(
            names(outside.path()),
            Vec::<String>::new(),
            "nothing outside"
        );
        let landed = names(&staged.join("d"))
            .iter()
            .filter(|name| name.starts_with('f'))
            .count();
        assert_eq!(
            landed, written,
            "every write landed in the original directory"
        );
        if max_open > 3 {
            assert_eq!(refused, 0, "a held handle follows the inode, not the name");
        }
        drop(staging);
        assert_eq!(names(outside.path()), Vec::<String>::new());
        assert_eq!(names(dest.path()), Vec::<String>::new());
        Ok(())
    }

    #[test]
    fn swapped_directory_never_redirects_a_write_held_handle() -> TestResult {
        race(MAX_HELD_FOR_TESTS)
    }

    #[test]
    fn swapped_directory_never_redirects_a_write_reopened_handle() -> TestResult {
        race(2)
    }

    const MAX_HELD_FOR_TESTS: usize = 64;

    #[test]
    fn swapped_file_never_redirects_a_write() -> TestResult {
        let dest = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        let victim = outside.path().join("victim");
        fs::write(&victim, b"precious")?;
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o600))?;
        let mut staging = Staging::create(dest.path())?;
        let staged = dest.path().join(staging.name());
        let mut file = staging.create_file(STAGING_ROOT, "f")?;
        file.write_all(b"first ")?;
        fs::rename(staged.join("f"), staged.join("f.real"))?;
        symlink(&victim, staged.join("f"))?;
        file.write_all(b"second")?;
        file.finish(0o644, 9)?;
        assert_eq!(fs::read(&victim)?, b"precious");
        assert_eq!(mode_of(&victim), 0o600);
        assert_eq!(fs::read(staged.join("f.real"))?, b"first second");
        assert_eq!(mode_of(&staged.join("f.real")), 0o644);
        drop(staging);
        assert_eq!(fs::read(&victim)?, b"precious");
        Ok(())
    }

    #[test]
    fn replacing_a_symlink_replaces_the_link_not_its_target() -> TestResult {
        let dest = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        fs::write(outside.path().join("keep"), b"1")?;
        symlink(outside.path(), dest.path().join("a"))?;
        symlink(outside.path().join("keep"), dest.path().join("b"))?;
        let mut staging = Staging::create(dest.path())?;
        let a = staging.make_dir(STAGING_ROOT, "a")?;
        write_file(&mut staging, a, "new", b"2")?;
        write_file(&mut staging, STAGING_ROOT, "b", b"3")?;
        let tops = [
            Top {
                name: "a".into(),
                dir: Some((a, 0o755, 0)),
            },
            top("b"),
        ];
        staging.publish(&tops, true)?;
        assert!(fs::symlink_metadata(dest.path().join("a"))?.is_dir());
        assert_eq!(names(&dest.path().join("a")), vec!["new"]);
        assert_eq!(fs::read(dest.path().join("b"))?, b"3");
        assert_eq!(names(outside.path()), vec!["keep"]);
        assert_eq!(fs::read(outside.path().join("keep"))?, b"1");
        assert_eq!(names(dest.path()), vec!["a", "b"]);
        Ok(())
    }

    #[test]
    fn reopening_refuses_a_replaced_directory() -> TestResult {
        let dest = tempfile::tempdir()?;
        let mut staging = Staging::create(dest.path())?;
        staging.set_max_open(2);
        let d = staging.make_dir(STAGING_ROOT, "d")?;
        let e = staging.make_dir(STAGING_ROOT, "e")?;
        let _f = staging.make_dir(e, "f")?; // evicts d
        let staged = dest.path().join(staging.name());
        fs::rename(staged.join("d"), staged.join("e/moved"))?;
        fs::create_dir(staged.join("d"))?;
        let err = staging
            .create_file(d, "x")
            .err()
            .ok_or("wrote into an impostor")?;
        let text = std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(text.contains("\"d\""), "{text}");
        assert_eq!(names(&staged.join("d")), Vec::<String>::new());
        Ok(())
    }

    #[test]
    fn many_directories_stay_within_the_handle_cache() -> TestResult {
        let dest = tempfile::tempdir()?;
        let mut staging = Staging::create(dest.path())?;
        let top_dir = staging.make_dir(STAGING_ROOT, "t")?;
        let mut dirs = Vec::new();
        for i in 0..300 {
            let dir = staging.make_dir(top_dir, &format!("d{i}"))?;
            let sub = staging.make_dir(dir, "sub")?;
            dirs.push((dir, sub));
        }
        assert!(staging.open_handles() <= MAX_HELD_FOR_TESTS + 1);
        // Revisit the earliest, long evicted.
        for (i, (dir, sub)) in dirs.iter().enumerate() {
            write_file(&mut staging, *sub, "f", format!("{i}").as_bytes())?;
            staging.finish_dir(*sub, 0o555, 3)?;
            staging.finish_dir(*dir, 0o755, 4)?;
        }
        assert!(staging.open_handles() <= MAX_HELD_FOR_TESTS + 1);
        // Unreadable ones are not held either: their modes are deferred.
        let locked = staging.make_dir(dirs[0].0, "locked")?;
        staging.finish_dir(locked, 0o311, 6)?;
        for i in 0..100 {
            staging.make_dir(top_dir, &format!("later{i}"))?;
        }
        assert!(staging.open_handles() <= MAX_HELD_FOR_TESTS + 1);
        let tops = [Top {
            name: "t".into(),
            dir: Some((top_dir, 0o755, 5)),
        }];
        staging.publish(&tops, false)?;
        assert_eq!(fs::read(dest.path().join("t/d0/sub/f"))?, b"0");
        assert_eq!(fs::read(dest.path().join("t/d299/sub/f"))?, b"299");
        assert_eq!(mode_of(&dest.path().join("t/d7/sub")), 0o555);
        assert_eq!(fs::metadata(dest.path().join("t/d7/sub"))?.mtime(), 3);
        assert_eq!(fs::metadata(dest.path().join("t/d7"))?.mtime(), 4);
        assert_eq!(fs::metadata(dest.path().join("t"))?.mtime(), 5);
        assert_eq!(mode_of(&dest.path().join("t/d0/locked")), 0o311);
        assert_eq!(fs::metadata(dest.path().join("t/d0/locked"))?.mtime(), 6);
        Ok(())
    }

    #[test]
    fn cleanup_never_follows_a_planted_symlink() -> TestResult {
        unprivileged(|dest| {
            let outside = dest.join("outside");
            fs::create_dir_all(outside.join("sub"))?;
            fs::write(outside.join("keep"), b"1")?;
            fs::write(outside.join("sub/keep"), b"2")?;
            let work = dest.join("work");
            fs::create_dir(&work)?;
            let mut staging = Staging::create(&work)?;
            let d = staging.make_dir(STAGING_ROOT, "d")?;
            let e = staging.make_dir(d, "e")?;
            write_file(&mut staging, e, "mine", b"3")?;
            let staged = work.join(staging.name());
            symlink(&outside, staged.join("evil"))?;
            symlink(&outside, staged.join("d/evil"))?;
            symlink(outside.join("keep"), staged.join("d/evil-file"))?;
            // A staged directory swapped for a link after its handle was taken.
            fs::rename(staged.join("d/e"), staged.join("e-moved"))?;
            symlink(outside.join("sub"), staged.join("d/e"))?;
            staging.finish_dir(e, 0o555, 0)?;
            assert_eq!(mode_of(&staged.join("e-moved")), 0o555, "set by handle");
            assert_eq!(mode_of(&outside.join("sub")), 0o755, "not through the link");
            drop(staging);
            assert_eq!(names(&work), Vec::<String>::new());
            assert_eq!(fs::read(outside.join("keep"))?, b"1");
            assert_eq!(fs::read(outside.join("sub/keep"))?, b"2");
            assert_eq!(names(&outside), vec!["keep", "sub"]);
            Ok(())
        })
    }

    #[test]
    fn existing_names_are_errors_naming_the_staged_path() -> TestResult {
        let dest = tempfile::tempdir()?;
        let mut staging = Staging::create(dest.path())?;
        let a = staging.make_dir(STAGING_ROOT, "a")?;
        let b = staging.make_dir(a, "b")?;
        write_file(&mut staging, b, "f", b"")?;
        let err = staging.make_dir(a, "b").err().ok_or("made twice")?;
        let Error::Io(io_err) = &err else {
            return Err(format!("unexpected {err:?}").into());
        };
        assert_eq!(io_err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(io_err.to_string(), "cannot create directory \"a/b\"");
        assert!(staging.create_file(b, "f").is_err());
        assert!(staging.make_dir(b, "f").is_err());
        assert!(staging.make_dir(99, "x").is_err(), "unknown handle");
        assert!(staging.finish_dir(STAGING_ROOT, 0o755, 0).is_err());
        assert!(
            staging.finish_dir(a, 0o755, 0).is_err(),
            "top-level: set by publish"
        );
        let own = staging.name().to_owned();
        assert!(staging.publish(&[top("a"), top(&own)], true).is_err());
        assert_eq!(
            names(dest.path()),
            Vec::<String>::new(),
            "moved back, cleaned up"
        );
        Ok(())
    }

    #[cfg(not(debug_assertions))]
    #[test]
    fn bad_names_are_errors_not_panics() -> TestResult {
        let dest = tempfile::tempdir()?;
        let mut staging = Staging::create(dest.path())?;
        for bad in ["", ".", "..", "a/b", "/", "a\0b"] {
            assert!(staging.make_dir(STAGING_ROOT, bad).is_err(), "{bad:?}");
            assert!(staging.create_file(STAGING_ROOT, bad).is_err(), "{bad:?}");
            assert!(
                staging.symlink(STAGING_ROOT, bad, "t", 0).is_err(),
                "{bad:?}"
            );
        }
        assert!(staging.publish(&[top("..")], false).is_err());
        assert_eq!(names(dest.path()), Vec::<String>::new());
        Ok(())
    }

    #[test]
    fn fallback_rename_never_replaces() -> TestResult {
        use std::os::fd::AsFd;

        use super::unix::rename_noreplace_fallback as rename;
        let dir = tempfile::tempdir()?;
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        fs::create_dir(&from)?;
        fs::create_dir(&to)?;
        fs::write(from.join("f"), b"new")?;
        fs::write(to.join("f"), b"old")?;
        fs::create_dir(from.join("d"))?;
        fs::create_dir(to.join("d"))?;
        symlink("/nowhere", from.join("l"))?;
        let (from_fd, to_fd) = (fs::File::open(&from)?, fs::File::open(&to)?);
        let (a, b) = (from_fd.as_fd(), to_fd.as_fd());
        assert_eq!(rename(a, "f", b, "f", false), Err(rustix::io::Errno::EXIST));
        assert_eq!(rename(a, "d", b, "d", true), Err(rustix::io::Errno::EXIST));
        assert_eq!(fs::read(to.join("f"))?, b"old");
        rename(a, "f", b, "g", false)?;
        rename(a, "d", b, "e", true)?;
        rename(a, "l", b, "l", false)?;
        assert_eq!(names(&from), Vec::<String>::new());
        assert_eq!(names(&to), vec!["d", "e", "f", "g", "l"]);
        assert_eq!(fs::read_link(to.join("l"))?, PathBuf::from("/nowhere"));
        Ok(())
    }

    /// Runs the ignored test `name` of this binary in a child process
    /// under `ulimit -n limit`.
    fn in_child_under_fd_limit(name: &str, limit: u32) -> TestResult {
        let exe = std::env::current_exe()?;
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {limit} && exec \"$0\" --exact {name} --ignored --test-threads=1"
            ))
            .arg(exe)
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("1 passed"),
            "the child ran nothing: {stdout}"
        );
        Ok(())
    }

    /// A chain of `depth` directories named `d` below `parent`; returns
    /// the deepest.
    fn chain(staging: &mut Staging, parent: DirId, depth: usize) -> Result<DirId, Error> {
        let mut dir = parent;
        for _ in 0..depth {
            dir = staging.make_dir(dir, "d")?;
        }
        Ok(dir)
    }

    /// Deeper than any path (2048 components), under a descriptor limit
    /// far below one per level.
    const DEEP: usize = 2100;

    #[test]
    #[ignore = "run by deep_trees_are_removed_under_a_low_descriptor_limit"]
    fn deep_trees_child() -> TestResult {
        unprivileged(|dest| {
            // Cleanup of a deep staged tree, read-only levels included.
            let mut staging = Staging::create(dest)?;
            staging.set_max_open(8);
            let top_dir = staging.make_dir(STAGING_ROOT, "a")?;
            let bottom = chain(&mut staging, top_dir, DEEP)?;
            write_file(&mut staging, bottom, "f", b"deep")?;
            let middle = staging.make_dir(top_dir, "m")?;
            let lower = chain(&mut staging, middle, 100)?;
            write_file(&mut staging, lower, "g", b"")?;
            staging.finish_dir(lower, 0o555, 0)?;
            staging.finish_dir(middle, 0o500, 0)?;
            drop(staging);
            assert_eq!(names(dest), Vec::<String>::new(), "deep staging removed");
            // Published, then replaced: the old deep tree is removed.
            let mut staging = Staging::create(dest)?;
            staging.set_max_open(8);
            let top_dir = staging.make_dir(STAGING_ROOT, "a")?;
            let bottom = chain(&mut staging, top_dir, DEEP)?;
            write_file(&mut staging, bottom, "f", b"old")?;
            staging.finish_dir(bottom, 0o555, 0)?;
            let tops = [Top {
                name: "a".into(),
                dir: Some((top_dir, 0o755, 0)),
            }];
            staging.publish(&tops, false)?;
            assert_eq!(names(dest), vec!["a"]);
            let mut staging = Staging::create(dest)?;
            staging.set_max_open(8);
            let top_dir = staging.make_dir(STAGING_ROOT, "a")?;
            write_file(&mut staging, top_dir, "new", b"new")?;
            let tops = [Top {
                name: "a".into(),
                dir: Some((top_dir, 0o755, 0)),
            }];
            staging.publish(&tops, true)?;
            assert_eq!(names(dest), vec!["a"], "the replaced tree is gone");
            assert_eq!(names(&dest.join("a")), vec!["new"]);
            Ok(())
        })
    }

    #[test]
    fn deep_trees_are_removed_under_a_low_descriptor_limit() -> TestResult {
        in_child_under_fd_limit("archive::staging::tests::deep_trees_child", 48)
    }

    #[test]
    fn cleanup_gives_up_a_level_replaced_while_it_was_let_go() -> TestResult {
        use std::ffi::CString;
        use std::os::fd::AsFd;

        use super::unix::{Level, WALK_HANDLES, current};
        let dest = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        fs::write(outside.path().join("keep"), b"1")?;
        let mut staging = Staging::create(dest.path())?;
        let top_dir = staging.make_dir(STAGING_ROOT, "a")?;
        chain(&mut staging, top_dir, WALK_HANDLES + 8)?;
        let staged = dest.path().join(staging.name());
        // As a walk that let `a` go would see it on returning, once `a`
        // was swapped for a link, then for another directory.
        fs::rename(staged.join("a"), staged.join("b"))?;
        symlink(outside.path(), staged.join("a"))?;
        let root = rustix::fs::open(
            &staged,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        )?;
        let stat = fs::metadata(staged.join("b"))?;
        let level = |name: &str| -> Result<Level, std::ffi::NulError> {
            Ok(Level {
                name: CString::new(name)?,
                ident: (stat.dev(), stat.ino()),
                fd: None,
                names: vec![CString::new("keep")?],
            })
        };
        let mut levels = vec![level("")?, level("a")?];
        let err = current(root.as_fd(), &mut levels).err();
        assert!(err.is_some(), "followed the link");
        assert_eq!(levels.len(), 1, "the level is given up");
        fs::remove_file(staged.join("a"))?;
        fs::create_dir(staged.join("a"))?;
        fs::write(staged.join("a/keep"), b"2")?;
        levels.push(level("a")?);
        let err = current(root.as_fd(), &mut levels).err();
        assert!(err.is_some(), "entered an impostor");
        assert_eq!(levels.len(), 1);
        assert_eq!(fs::read(staged.join("a/keep"))?, b"2");
        drop(staging);
        assert_eq!(names(dest.path()), Vec::<String>::new());
        assert_eq!(names(outside.path()), vec!["keep"]);
        Ok(())
    }

    /// Restrictive modes for [`restrictive_directories_child`].
    const RESTRICTIVE: [u32; 4] = [0o000, 0o300, 0o600, 0o100];

    /// Builds `t` with 200 directories of restrictive modes, each holding
    /// a file and a directory of mode 0o000; returns `t`.
    fn restrictive_tree(staging: &mut Staging) -> Result<DirId, Box<dyn std::error::Error>> {
        staging.set_max_open(8);
        let top_dir = staging.make_dir(STAGING_ROOT, "t")?;
        let mut made = Vec::new();
        for i in 0..200 {
            let dir = staging.make_dir(top_dir, &format!("d{i}"))?;
            write_file(staging, dir, "f", b"x")?;
            let inner = staging.make_dir(dir, "inner")?;
            made.push((dir, inner, i));
        }
        // Not deepest first on purpose: publishing orders them itself.
        for &(dir, inner, i) in &made {
            staging.finish_dir(dir, RESTRICTIVE[i % 4], 100 + i as i64)?;
            staging.finish_dir(inner, 0o000, 7)?;
        }
        Ok(top_dir)
    }

    #[test]
    #[ignore = "run by restrictive_directories_under_a_low_descriptor_limit"]
    fn restrictive_directories_child() -> TestResult {
        unprivileged(|dest| {
            // Failing before publishing: all removed, as an unprivileged user.
            let mut staging = Staging::create(dest)?;
            restrictive_tree(&mut staging)?;
            let staged = dest.join(staging.name());
            assert_eq!(mode_of(&staged.join("t/d0")), 0o700, "deferred");
            drop(staging);
            assert_eq!(names(dest), Vec::<String>::new());
            // Publishing: the modes are applied, deepest first.
            let mut staging = Staging::create(dest)?;
            let top_dir = restrictive_tree(&mut staging)?;
            let tops = [Top {
                name: "t".into(),
                dir: Some((top_dir, 0o755, 5)),
            }];
            staging.publish(&tops, false)?;
            assert_eq!(names(dest), vec!["t"]);
            assert_eq!(names(&dest.join("t")).len(), 200);
            for i in 0..200 {
                let dir = dest.join(format!("t/d{i}"));
                assert_eq!(mode_of(&dir), RESTRICTIVE[i % 4], "{i}");
                assert_eq!(fs::symlink_metadata(&dir)?.mtime(), 100 + i as i64);
                if RESTRICTIVE[i % 4] & 0o100 != 0 {
                    assert_eq!(mode_of(&dir.join("inner")), 0o000, "{i}");
                    assert_eq!(fs::symlink_metadata(dir.join("inner"))?.mtime(), 7);
                }
            }
            assert_eq!(fs::metadata(dest.join("t"))?.mtime(), 5);
            // A restrictive top-level directory, published and replaced.
            let mut staging = Staging::create(dest)?;
            let top_dir = staging.make_dir(STAGING_ROOT, "u")?;
            let sub = staging.make_dir(top_dir, "s")?;
            staging.finish_dir(sub, 0o000, 0)?;
            let tops = [Top {
                name: "u".into(),
                dir: Some((top_dir, 0o300, 9)),
            }];
            staging.publish(&tops, false)?;
            assert_eq!(mode_of(&dest.join("u")), 0o300);
            assert_eq!(fs::symlink_metadata(dest.join("u"))?.mtime(), 9);
            assert_eq!(names(dest), vec!["t", "u"]);
            Ok(())
        })
    }

    #[test]
    fn restrictive_directories_under_a_low_descriptor_limit() -> TestResult {
        in_child_under_fd_limit("archive::staging::tests::restrictive_directories_child", 48)
    }

    #[test]
    fn create_refuses_a_missing_destination() {
        assert!(Staging::create(Path::new("/nonexistent/kuvert-dest")).is_err());
    }
}
