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
pub(crate) use unix::{StagedFile, Staging};

#[cfg(not(unix))]
pub(crate) use other::{StagedFile, Staging};

#[cfg(unix)]
mod unix {
    use std::collections::VecDeque;
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
    /// Deepest tree removed on cleanup; each level holds one descriptor.
    const MAX_CLEANUP_DEPTH: usize = 512;

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
        /// Kept open until drop: its final mode lacks owner read or search,
        /// so cleanup could not reopen it to make it writable again.
        pinned: bool,
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
        /// Random part of the names replaced entries are moved aside to.
        aside_tag: Option<String>,
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
            let mut attempt = 0;
            let name = loop {
                let name = format!("{STAGING_PREFIX}{}-{}", std::process::id(), random_hex()?);
                match rfs::mkdirat(&dest_fd, name.as_str(), mode(0o700)) {
                    Ok(()) => break name,
                    Err(Errno::EXIST) if attempt + 1 < NAME_ATTEMPTS => attempt += 1,
                    Err(err) => return Err(located(err, "create the staging directory", name)),
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
                aside_tag: None,
                #[cfg(test)]
                fail_before_top: None,
            };
            let root = match rfs::openat(&staging.dest, name.as_str(), DIR_FLAGS, Mode::empty()) {
                Ok(root) => root,
                Err(err) => {
                    // Nothing is held yet, so Drop cannot clean up: remove
                    // the (empty) directory here, never following a link.
                    let _ = rfs::unlinkat(&staging.dest, name.as_str(), AtFlags::REMOVEDIR);
                    return Err(located(err, "open the staging directory", name));
                }
            };
            let ident = match rfs::fstat(&root) {
                Ok(stat) => ident_of(&stat),
                Err(err) => {
                    drop(root);
                    let _ = rfs::unlinkat(&staging.dest, name.as_str(), AtFlags::REMOVEDIR);
                    return Err(located(err, "inspect the staging directory", name));
                }
            };
            staging.dirs.push(HeldDir {
                fd: Some(root),
                parent: STAGING_ROOT,
                name,
                ident,
                pinned: true,
            });
            // From here on Drop removes the staging directory.
            let root = staging.root();
            // A umask such as 0277 would leave staging unwritable.
            rfs::fchmod(root, mode(0o700))
                .map_err(|err| located(err, "set the mode of", staging.name.clone()))?;
            let umask = probe_umask(root).map_err(|err| {
                located(err, "learn the umask through", format!("{}/{UMASK_PROBE}", staging.name))
            })?;
            staging.umask = umask;
            Ok(staging)
        }

        /// The receiver's umask, as learnt by the probe.
        pub(crate) fn umask(&self) -> u32 {
            self.umask
        }

        /// Name of the staging directory inside the destination (for a
        /// Ctrl-C handler to remove).
        pub(crate) fn name(&self) -> &str {
            &self.name
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
                pinned: false,
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
        pub(crate) fn create_file(&mut self, parent: DirId, name: &str) -> Result<StagedFile, Error> {
            check_component(name)?;
            self.ensure_open(parent)?;
            let parent_fd = self.held(parent);
            let path = self.staged_path(parent, name);
            let fd = rfs::openat(
                parent_fd,
                name,
                OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC,
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
        /// [`publish`](Self::publish) instead.
        ///
        /// # Errors
        ///
        /// [`Error::Io`] naming the staged path; also for the staging root
        /// and for a top-level directory.
        pub(crate) fn finish_dir(&mut self, dir: DirId, mode_bits: u32, mtime: i64) -> Result<(), Error> {
            let parent = self.dirs.get(dir).map(|held| held.parent);
            if dir == STAGING_ROOT || parent == Some(STAGING_ROOT) {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "staging: a top-level directory's mode is set by publishing",
                )));
            }
            let bits = safe_mode(mode_bits);
            self.ensure_open(dir)?;
            if bits & 0o500 != 0o500 {
                // Cleanup could not reopen it: keep the handle.
                self.open.retain(|&id| id != dir);
                self.dirs[dir].pinned = true;
            }
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
        /// skipped. Top-level directories get their mode and mtime through
        /// their held handles after the move.
        ///
        /// # Errors
        ///
        /// [`Error::DestinationExists`]; [`Error::Io`] naming the entry. If
        /// publishing failed and could not be undone, the error says which
        /// names were left in the destination. If everything was published
        /// but a replaced entry could not be removed, the error names what
        /// was left behind.
        pub(crate) fn publish(mut self, tops: &[Top], replace: bool) -> Result<(), Error> {
            let mut steps = Vec::new();
            if let Err(err) = self.move_tops(tops, replace, &mut steps) {
                return Err(self.undo(&steps, err));
            }
            if let Err(err) = self.finish_tops(tops) {
                return Err(self.undo(&steps, err));
            }
            // Published: Drop must never touch these directories again.
            for held in self.dirs.iter_mut().skip(1) {
                held.fd = None;
                held.pinned = false;
            }
            self.open.clear();
            let mut left = Vec::new();
            let mut first = None;
            for step in &steps {
                if let Step::Aside {
                    aside,
                    ident,
                    is_dir,
                    ..
                } = step
                {
                    if let Err(err) = remove_aside(self.dest.as_fd(), aside, *ident, *is_dir) {
                        left.push(aside.clone());
                        first.get_or_insert(err);
                    }
                }
            }
            match first {
                None => Ok(()),
                Some(err) => Err(located(
                    err,
                    "remove the replaced entries (extraction succeeded) left at",
                    self.dest_path.join(left.join(", ")).display().to_string(),
                )),
            }
        }

        fn move_tops(&mut self, tops: &[Top], replace: bool, steps: &mut Vec<Step>) -> Result<(), Error> {
            for (index, top) in tops.iter().enumerate() {
                check_component(&top.name)?;
                let name = top.name.as_str();
                let staged = match rfs::statat(self.root(), name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => stat,
                    Err(Errno::NOENT) => continue,
                    Err(err) => return Err(located(err, "inspect", self.staged_path(STAGING_ROOT, name))),
                };
                let ident = ident_of(&staged);
                let is_dir = FileType::from_raw_mode(staged.st_mode).is_dir();
                let inject = self.injected(index);
                if inject && !replace {
                    return Err(injected());
                }
                let mut result = rename_noreplace(self.root(), name, self.dest.as_fd(), name, is_dir);
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
            let tag = match &self.aside_tag {
                Some(tag) => tag.clone(),
                None => {
                    let tag = format!("{REPLACED_PREFIX}{}-{}-", std::process::id(), random_hex()?);
                    self.aside_tag = Some(tag.clone());
                    tag
                }
            };
            let aside = format!("{tag}{}", steps.len());
            let dest = self.dest.as_fd();
            let existing = rfs::statat(dest, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|err| located(err, "inspect", self.dest_path.join(name).display().to_string()))?;
            let is_dir = FileType::from_raw_mode(existing.st_mode).is_dir();
            rename_noreplace(dest, name, dest, &aside, is_dir).map_err(|err| {
                located(err, "move aside", self.dest_path.join(name).display().to_string())
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
        /// that they are in the destination; on failure makes them all
        /// writable again so that they can be moved back.
        fn finish_tops(&mut self, tops: &[Top]) -> Result<(), Error> {
            let mut handles = Vec::new();
            for top in tops {
                let Some((dir, bits, mtime)) = top.dir else {
                    continue;
                };
                let held = self.dirs.get(dir).filter(|held| held.parent == STAGING_ROOT && dir != STAGING_ROOT);
                let Some(held) = held.filter(|held| held.name == top.name) else {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("staging: {:?} is not the top-level directory given", top.name),
                    )));
                };
                let fd = match &held.fd {
                    Some(fd) => fd.try_clone(),
                    None => reopen(self.dest.as_fd(), &held.name, held.ident),
                }
                .map_err(|err| located(err, "open directory", self.dir_path(dir)))?;
                handles.push((fd, bits, mtime, dir));
            }
            for (done, (fd, bits, mtime, dir)) in handles.iter().enumerate() {
                let result = rfs::fchmod(fd, mode(safe_mode(*bits)))
                    .and_then(|()| rfs::futimens(fd, &timestamps(*mtime)));
                if let Err(err) = result {
                    for (fd, ..) in &handles[..=done] {
                        let _ = rfs::fchmod(fd, mode(0o700));
                    }
                    return Err(located(err, "set the mode and mtime of", self.dir_path(*dir)));
                }
            }
            Ok(())
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
                if !held.pinned && self.open.back() != Some(&dir) {
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
            // Directories made unreadable or unsearchable are held open:
            // make every held one writable again, by handle.
            for held in self.dirs.iter().skip(1) {
                if let Some(fd) = &held.fd {
                    let _ = rfs::fchmod(fd, mode(0o700));
                }
            }
            let root = self.root();
            let _ = clear_dir(root, 1);
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

    /// Opens directory `name` in `base` without following a symlink, and
    /// checks it is still the inode `ident`.
    fn reopen(base: BorrowedFd<'_>, name: &str, ident: Ident) -> io::Result<OwnedFd> {
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
    fn remove_aside(dest: BorrowedFd<'_>, aside: &str, ident: Ident, is_dir: bool) -> io::Result<()> {
        if !is_dir {
            let stat = rfs::statat(dest, aside, AtFlags::SYMLINK_NOFOLLOW)?;
            if ident_of(&stat) != ident {
                return Err(io::Error::other("it changed after it was moved aside"));
            }
            return Ok(rfs::unlinkat(dest, aside, AtFlags::empty())?);
        }
        let fd = reopen(dest, aside, ident)?;
        let _ = rfs::fchmod(&fd, mode(0o700));
        clear_dir(fd.as_fd(), 1)?;
        drop(fd);
        Ok(rfs::unlinkat(dest, aside, AtFlags::REMOVEDIR)?)
    }

    /// Removes everything inside `dir`, by handle, never following a
    /// symlink; directories are made 0700 first so read-only ones empty.
    fn clear_dir(dir: BorrowedFd<'_>, depth: usize) -> io::Result<()> {
        if depth > MAX_CLEANUP_DEPTH {
            return Err(io::Error::other("the tree is too deep to remove"));
        }
        // Collect first: removing while reading may skip entries.
        let mut names: Vec<CString> = Vec::new();
        for entry in rfs::Dir::read_from(dir)? {
            let name = entry?.file_name().to_owned();
            if name.as_bytes() != b"." && name.as_bytes() != b".." {
                names.push(name);
            }
        }
        let mut first = None;
        for name in names {
            if let Err(err) = remove_entry(dir, &name, depth) {
                first.get_or_insert(err);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn remove_entry(dir: BorrowedFd<'_>, name: &CString, depth: usize) -> io::Result<()> {
        let stat = rfs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        if !FileType::from_raw_mode(stat.st_mode).is_dir() {
            return Ok(rfs::unlinkat(dir, name.as_c_str(), AtFlags::empty())?);
        }
        match rfs::openat(dir, name.as_c_str(), DIR_FLAGS, Mode::empty()) {
            Ok(child) => {
                let _ = rfs::fchmod(&child, mode(0o700));
                clear_dir(child.as_fd(), depth + 1)?;
            }
            // Swapped for something else since: remove that, unfollowed.
            Err(Errno::NOTDIR | Errno::LOOP) => {
                return Ok(rfs::unlinkat(dir, name.as_c_str(), AtFlags::empty())?);
            }
            // Unreadable: removable still if empty.
            Err(_) => {}
        }
        Ok(rfs::unlinkat(dir, name.as_c_str(), AtFlags::REMOVEDIR)?)
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

        /// # Errors
        ///
        /// Never returns.
        pub(crate) fn make_dir(&mut self, _parent: DirId, _name: &str) -> Result<DirId, Error> {
            match self.never {}
        }

        /// # Errors
        ///
        /// Never returns.
        pub(crate) fn create_file(&mut self, _parent: DirId, _name: &str) -> Result<StagedFile, Error> {
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
        pub(crate) fn finish_dir(&mut self, _dir: DirId, _mode: u32, _mtime: i64) -> Result<(), Error> {
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
