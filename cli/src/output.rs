//! Outputs that never carry their final name half-written: temporary names
//! renamed on success, removed on error or Ctrl-C; and no binary to a
//! terminal unless forced.
//!
//! Ctrl-C: a handler (the `ctrlc` crate) removes every partial output this
//! process registered, then exits with 130. It is installed only after any
//! passphrase prompt, so an interrupted prompt still restores the terminal.
//!
//! The handler runs on its own thread while the command goes on; the
//! command stops at its next volume read or write ([`stop_if_interrupted`])
//! and never exits on its own after Ctrl-C ([`wait_if_interrupted`] in
//! `main`), and the handler removes until nothing partial reappears. Without
//! that, a directory removed under a running extraction was recreated by it
//! and left behind, and a command that finished meanwhile exited 0 with part
//! of its output removed.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::report::{Fail, Result, io_fail};

/// Exit code after Ctrl-C (128 + SIGINT), as shells expect.
pub const INTERRUPTED: i32 = 130;

/// Something to remove if the process is interrupted.
#[derive(Debug, Clone)]
enum Partial {
    /// Entries of `dir` whose names start with `prefix` and end with `suffix`.
    Matching {
        dir: PathBuf,
        prefix: String,
        suffix: String,
    },
    /// One path.
    Path(PathBuf),
}

static PARTIALS: Mutex<Vec<Partial>> = Mutex::new(Vec::new());
/// While set, the first Ctrl-C asks the running operation to stop by
/// itself (the library cleans up after itself and leaves DEST as it was)
/// instead of removing partial output from under it.
static COOPERATING: Mutex<Option<Arc<AtomicBool>>> = Mutex::new(None);
static HANDLER: Once = Once::new();
/// Set by the Ctrl-C handler before it removes anything.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler (once).
pub fn install_interrupt_handler() {
    HANDLER.call_once(|| {
        // Without a handler Ctrl-C still ends the process; partial names
        // are then left behind, hidden and marked as partial.
        let _ = ctrlc::set_handler(|| {
            let cooperating = COOPERATING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(cancel) = cooperating {
                cancel.store(true, Ordering::SeqCst);
                eprintln!("\nkuvert: stopping (press Ctrl-C again to quit at once)");
                return;
            }
            STOPPING.store(true, Ordering::SeqCst);
            // The command stops within one read or write of a volume (or
            // one entry's last write); until then it may recreate what was
            // removed, so remove until nothing is left twice in a row.
            let mut clean = 0;
            for _ in 0..200 {
                remove_partials();
                std::thread::sleep(Duration::from_millis(10));
                clean = if partials_left() { 0 } else { clean + 1 };
                if clean == 2 {
                    break;
                }
            }
            eprintln!("\nkuvert: interrupted; partial output removed");
            std::process::exit(INTERRUPTED);
        });
    });
}

/// Until [`stop_cooperating`], the first Ctrl-C sets `cancel` and nothing
/// else; a second one removes partial output and ends the process.
pub fn cooperate(cancel: Arc<AtomicBool>) {
    *COOPERATING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cancel);
}

/// Ends [`cooperate`].
pub fn stop_cooperating() {
    COOPERATING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
}

/// After Ctrl-C, blocks for good: the handler removes partial output and
/// ends the process. Called before each volume read and write.
pub fn stop_if_interrupted() {
    if STOPPING.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// After Ctrl-C, blocks for good instead of letting the command exit with
/// its own status: the exit status is the handler's 130.
pub fn wait_if_interrupted() {
    stop_if_interrupted();
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Partial>> {
    PARTIALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Registers the hidden entries of `dir` named `PREFIX…SUFFIX`.
pub fn register_matching(dir: &Path, prefix: String, suffix: String) {
    lock().push(Partial::Matching {
        dir: dir.to_path_buf(),
        prefix,
        suffix,
    });
}

/// Registers one path.
pub fn register_path(path: &Path) {
    lock().push(Partial::Path(path.to_path_buf()));
}

/// Forgets a registered path (it was published or already removed). After
/// Ctrl-C it stays registered and this blocks: an extraction that returned
/// while the handler removed its staging is not whole, so its directory
/// must go too. Checked under the lock the handler removes under.
pub fn forget_path(path: &Path) {
    let mut partials = lock();
    if STOPPING.load(Ordering::SeqCst) {
        drop(partials);
        stop_if_interrupted();
    } else {
        partials.retain(|p| !matches!(p, Partial::Path(q) if q == path));
    }
}

/// Whether anything registered still exists.
fn partials_left() -> bool {
    lock().iter().any(|partial| match partial {
        Partial::Path(path) => fs::symlink_metadata(path).is_ok(),
        Partial::Matching {
            dir,
            prefix,
            suffix,
        } => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            };
            fs::read_dir(dir).is_ok_and(|entries| {
                entries.flatten().any(|entry| {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    name.starts_with(prefix.as_str()) && name.ends_with(suffix.as_str())
                })
            })
        }
    })
}

fn remove_partials() {
    let partials = lock().clone();
    for partial in partials {
        match partial {
            Partial::Path(path) => remove_any(&path),
            Partial::Matching {
                dir,
                prefix,
                suffix,
            } => {
                let dir = if dir.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    dir
                };
                let Ok(entries) = fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if name.starts_with(&prefix) && name.ends_with(&suffix) {
                        remove_any(&entry.path());
                    }
                }
            }
        }
    }
}

/// Removes a file or a directory tree, making read-only directories
/// writable first. Best effort.
pub fn remove_any(path: &Path) {
    let Ok(metadata) = fs::symlink_metadata(path) else {
        return;
    };
    if metadata.is_dir() {
        make_writable(path);
        let _ = fs::remove_dir_all(path);
    } else {
        let _ = fs::remove_file(path);
    }
}

fn make_writable(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
    }
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&entry.path());
            }
        }
    }
}

/// Whether `path` names standard input or output.
pub fn is_dash(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Refuses binary output to a terminal unless forced.
pub fn check_stdout(force: bool) -> Result<()> {
    if !force && io::stdout().is_terminal() {
        return Err(Fail::usage(
            "refusing to write binary output to a terminal: redirect it, or use --force",
        ));
    }
    Ok(())
}

/// A file written under a hidden temporary name in its final directory and
/// renamed to its final name by [`commit`](Self::commit); removed if dropped
/// before.
#[derive(Debug)]
pub struct TempOutput {
    temp: PathBuf,
    target: PathBuf,
    force: bool,
    file: Option<Wiping<File>>,
}

impl TempOutput {
    /// Refuses an existing `target` unless `force`, and creates the
    /// temporary file beside it.
    pub fn create(target: &Path, force: bool) -> Result<Self> {
        check_new(target, force)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Fail::usage(format!("{} is not a file name", target.display())))?;
        let dir = target.parent().unwrap_or(Path::new(""));
        let temp = dir.join(format!(".{name}.{}.kuvert-partial", std::process::id()));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|err| io_fail("cannot create", target, &err))?;
        register_path(&temp);
        Ok(TempOutput {
            temp,
            target: target.to_path_buf(),
            force,
            // Below the ~1 MiB blocks of `OpenReader::copy_to`, which then go
            // straight to the file instead of being copied into the buffer.
            file: Some(Wiping::with_capacity(512 << 10, file)),
        })
    }

    /// Flushes, syncs and renames to the final name. Without `force` an
    /// output that appeared meanwhile is not replaced.
    pub fn commit(mut self) -> Result<()> {
        let writer = self.file.take().expect("commit is called once");
        let file = writer
            .into_inner()
            .map_err(|err| io_fail("cannot write", &self.temp, &err))?;
        file.sync_all()
            .map_err(|err| io_fail("cannot write", &self.temp, &err))?;
        drop(file);
        publish(&self.temp, &self.target, self.force)?;
        forget_path(&self.temp);
        Ok(())
    }
}

impl Write for TempOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(file) => file.write(buf),
            None => Err(io::Error::other("output already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
            forget_path(&self.temp);
        }
    }
}

/// A buffered writer for plaintext: its buffer is allocated once and wiped
/// when dropped (a `BufWriter` frees it as it is). It does not flush on
/// drop: callers flush, or drop it on failure.
#[derive(Debug)]
pub struct Wiping<W: Write> {
    inner: W,
    buf: Zeroizing<Vec<u8>>,
}

impl<W: Write> Wiping<W> {
    pub fn with_capacity(capacity: usize, inner: W) -> Self {
        Wiping {
            inner,
            buf: Zeroizing::new(Vec::with_capacity(capacity)),
        }
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let written = self.inner.write_all(&self.buf);
            // Wiped whether or not it was written: it is never retried.
            self.buf.fill(0);
            self.buf.clear();
            written?;
        }
        Ok(())
    }

    /// Flushes the buffer and gives back the inner writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.flush_buf()?;
        let Wiping { inner, buf } = self;
        drop(buf);
        Ok(inner)
    }
}

impl<W: Write> Write for Wiping<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.buf.capacity() {
            self.flush_buf()?;
        }
        if data.len() >= self.buf.capacity() {
            // Large blocks go straight through, copied nowhere.
            return self.inner.write(data);
        }
        // Within capacity: never reallocates, so no copy is left behind.
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        self.inner.flush()
    }
}

/// Refuses an existing path unless `force`.
pub fn check_new(path: &Path, force: bool) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            Err(Fail::data(format!("{} is a directory", path.display())))
        }
        Ok(_) if !force => Err(Fail::data(format!(
            "{} already exists (use --force to replace it)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Moves `temp` to `target`; without `force`, never over an existing file
/// (a hard link fails if the target exists; file systems without hard
/// links, such as FAT32, fall back to a check and a rename).
fn publish(temp: &Path, target: &Path, force: bool) -> Result<()> {
    if !force {
        match fs::hard_link(temp, target) {
            Ok(()) => {
                let _ = fs::remove_file(temp);
                return Ok(());
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Fail::data(format!(
                    "{} already exists (use --force to replace it)",
                    target.display()
                )));
            }
            Err(_) => check_new(target, false)?,
        }
    }
    fs::rename(temp, target).map_err(|err| io_fail("cannot rename to", target, &err))
}

/// Writes a new file with mode 0600 (owner only), refusing to replace one.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|err| {
        if err.kind() == io::ErrorKind::AlreadyExists {
            Fail::data(format!(
                "{} already exists; not replacing it",
                path.display()
            ))
        } else {
            io_fail("cannot create", path, &err)
        }
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|err| {
            let _ = fs::remove_file(path);
            io_fail("cannot write", path, &err)
        })
}
