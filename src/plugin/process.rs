//! Finding, starting and stopping a plugin binary, and the pipes to it: a
//! plugin can hang, crash, flood or go silent, and none of that may hang
//! or crash the client.
//!
//! A reader thread turns the plugin's stdout into chunks over a bounded
//! channel that the session reads with a timeout; a writer thread owns its
//! stdin, so a plugin that stops reading cannot block the client either; a
//! third keeps the last 4 KiB of its stderr for the error message. On any
//! failure the client kills its own child (by its handle) and waits for it.

use std::ffi::OsStr;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::wire::SessionError;
use crate::error::PluginFailure;

/// Bytes of the plugin's stderr kept for an error message.
const STDERR_TAIL: usize = 4096;
/// How long a plugin may take to exit after its session ended.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for a plugin whose output closed to report its status.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Stdout chunks in flight: with 8 KiB reads, at most 128 KiB buffered.
const CHANNEL_CHUNKS: usize = 16;

/// The state machine a plugin is started for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StateMachine {
    RecipientV1,
    IdentityV1,
}

impl StateMachine {
    fn flag(self) -> &'static str {
        match self {
            StateMachine::RecipientV1 => "--age-plugin=recipient-v1",
            StateMachine::IdentityV1 => "--age-plugin=identity-v1",
        }
    }
}

/// `age-plugin-NAME` in the first absolute directory of `search_path`
/// (PATH's syntax; the process's PATH if `None`) that holds it as an
/// executable file. Empty, `.` and other relative entries are skipped:
/// they name the current directory, where a parcel's files may lie.
pub(crate) fn find_plugin(name: &str, search_path: Option<&OsStr>) -> Option<PathBuf> {
    let from_env;
    let search_path = match search_path {
        Some(path) => path,
        None => {
            from_env = std::env::var_os("PATH")?;
            from_env.as_os_str()
        }
    };
    let binary = format!("age-plugin-{name}");
    std::env::split_paths(search_path)
        .filter(|dir| dir.is_absolute())
        .flat_map(|dir| candidates(&dir, &binary))
        .find(|candidate| is_executable_file(candidate))
}

fn candidates(dir: &Path, binary: &str) -> Vec<PathBuf> {
    let mut out = vec![dir.join(binary)];
    if cfg!(windows) {
        out.push(dir.join(format!("{binary}.exe")));
    }
    out
}

#[cfg(unix)]
fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file())
}

/// A running plugin, stopped and reaped when dropped.
pub(crate) struct PluginProcess {
    child: Child,
    stdout: Option<ChannelReader>,
    stdin: Option<ChannelWriter>,
    stderr: Arc<Mutex<StderrTail>>,
    timeout: Duration,
    reaped: Option<ExitStatus>,
}

/// The last bytes of stderr, and whether it has closed.
#[derive(Default)]
struct StderrTail {
    bytes: Vec<u8>,
    closed: bool,
}

impl PluginProcess {
    /// Starts `binary` for `machine`, in the temporary directory (a plugin
    /// must not depend on, or write into, the user's current directory).
    pub fn spawn(binary: &Path, machine: StateMachine, timeout: Duration) -> io::Result<Self> {
        let debug = std::env::var_os("AGEDEBUG").is_some_and(|value| value == "plugin");
        let mut child = Command::new(binary)
            .arg(machine.flag())
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if debug {
                Stdio::inherit()
            } else {
                Stdio::piped()
            })
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let stdin = child.stdin.take().expect("piped");
        let stderr = Arc::new(Mutex::new(StderrTail::default()));
        match child.stderr.take() {
            Some(pipe) => {
                let tail = Arc::clone(&stderr);
                thread::spawn(move || keep_tail(pipe, &tail));
            }
            None => stderr.lock().expect("not poisoned").closed = true,
        }
        Ok(PluginProcess {
            child,
            stdout: Some(ChannelReader::start(stdout, timeout)),
            stdin: Some(ChannelWriter::start(stdin)),
            stderr,
            timeout,
            reaped: None,
        })
    }

    /// The session's two ends.
    pub fn pipes(&mut self) -> (&mut ChannelReader, &mut ChannelWriter) {
        (
            self.stdout.as_mut().expect("until finished"),
            self.stdin.as_mut().expect("until finished"),
        )
    }

    /// After a complete session: closes stdin and gives the plugin
    /// [`EXIT_GRACE`] to exit before it is killed. Its status is not
    /// checked: the session already said everything.
    pub fn finish(mut self) {
        self.stdin = None;
        if self.wait_up_to(EXIT_GRACE).is_none() {
            self.kill();
        }
    }

    /// Turns a session's failure into what the user is told, and stops the
    /// plugin.
    pub fn failure(mut self, err: SessionError) -> PluginFailure {
        let failure = match err {
            SessionError::Failure(failure) => failure,
            SessionError::Io(err) if err.kind() == io::ErrorKind::TimedOut => {
                PluginFailure::TimedOut {
                    secs: self.timeout.as_secs(),
                }
            }
            // Output closed or a pipe broke: most likely the plugin exited.
            SessionError::Closed | SessionError::Io(_) => {
                self.stdin = None;
                match self.wait_up_to(CLOSE_GRACE) {
                    Some(status) => PluginFailure::Exited {
                        status: status.code(),
                        stderr_tail: self.stderr_tail(),
                    },
                    None => PluginFailure::Protocol(
                        "closed its output before the session ended".to_string(),
                    ),
                }
            }
        };
        self.kill();
        failure
    }

    /// The plugin's exit status once it has exited, polled for `limit`.
    fn wait_up_to(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.reaped = Some(status);
                return Some(status);
            }
            if start.elapsed() >= limit {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the plugin wrote to stderr, once it closed (or after a short
    /// wait), lossily decoded.
    fn stderr_tail(&self) -> String {
        let start = Instant::now();
        loop {
            let tail = self.stderr.lock().expect("not poisoned");
            if tail.closed || start.elapsed() >= Duration::from_millis(500) {
                return String::from_utf8_lossy(&tail.bytes).into_owned();
            }
            drop(tail);
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills and reaps our own child, once.
    fn kill(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
            self.reaped = self.child.wait().ok();
        }
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill();
    }
}

fn keep_tail(mut pipe: impl Read, tail: &Mutex<StderrTail>) {
    let mut buffer = [0u8; 1024];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                let mut tail = tail.lock().expect("not poisoned");
                tail.bytes.extend_from_slice(&buffer[..read]);
                let excess = tail.bytes.len().saturating_sub(STDERR_TAIL);
                tail.bytes.drain(..excess);
            }
        }
    }
    tail.lock().expect("not poisoned").closed = true;
}

/// The plugin's stdout as a [`BufRead`] whose reads time out when the
/// plugin is silent for the timeout. Each read restarts the clock, so time
/// the client spends elsewhere (in a PIN prompt) is not counted.
pub(crate) struct ChannelReader {
    chunks: Receiver<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
    timeout: Duration,
}

impl ChannelReader {
    fn start(mut pipe: impl Read + Send + 'static, timeout: Duration) -> Self {
        let (sender, chunks): (SyncSender<Vec<u8>>, _) = mpsc::sync_channel(CHANNEL_CHUNKS);
        thread::spawn(move || {
            let mut buffer = vec![0u8; 8192];
            loop {
                match pipe.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(read) => {
                        if sender.send(buffer[..read].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        ChannelReader {
            chunks,
            current: Vec::new(),
            position: 0,
            timeout,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let len = available.len().min(out.len());
        out[..len].copy_from_slice(&available[..len]);
        self.consume(len);
        Ok(len)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.position == self.current.len() {
            match self.chunks.recv_timeout(self.timeout) {
                Ok(chunk) => {
                    self.current = chunk;
                    self.position = 0;
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the plugin said nothing",
                    ));
                }
                // The reader thread ended: end of output.
                Err(RecvTimeoutError::Disconnected) => return Ok(&[]),
            }
        }
        Ok(&self.current[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.current.len());
    }
}

/// The plugin's stdin behind a thread: a write never blocks the session,
/// and what was written (file keys, PINs) is wiped once sent.
pub(crate) struct ChannelWriter {
    pending: Zeroizing<Vec<u8>>,
    messages: Sender<Zeroizing<Vec<u8>>>,
}

impl ChannelWriter {
    fn start(mut pipe: ChildStdin) -> Self {
        let (messages, receiver) = mpsc::channel::<Zeroizing<Vec<u8>>>();
        thread::spawn(move || {
            for message in receiver {
                if pipe
                    .write_all(&message)
                    .and_then(|()| pipe.flush())
                    .is_err()
                {
                    return;
                }
            }
            // The sender is gone: dropping the pipe closes the plugin's stdin.
        });
        ChannelWriter {
            pending: Zeroizing::new(Vec::new()),
            messages,
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let message = std::mem::replace(&mut self.pending, Zeroizing::new(Vec::new()));
        self.messages
            .send(message)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the plugin's input closed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_path_entries_are_never_searched() {
        let dir = std::env::temp_dir();
        // A relative entry and an empty one (both the cwd), then nothing.
        let path = std::env::join_paths([Path::new("."), Path::new(""), Path::new("bin")])
            .expect("joinable");
        assert_eq!(find_plugin("sh-not-here", Some(&path)), None);
        let absolute = std::env::join_paths([dir.as_path()]).expect("joinable");
        assert_eq!(find_plugin("kuvert-no-such-plugin", Some(&absolute)), None);
    }

    #[cfg(unix)]
    #[test]
    fn only_executable_files_are_plugins() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("age-plugin-plain");
        std::fs::write(&plain, b"#!/bin/sh\n").expect("write");
        std::fs::create_dir(dir.path().join("age-plugin-dir")).expect("mkdir");
        let runnable = dir.path().join("age-plugin-runnable");
        std::fs::write(&runnable, b"#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&runnable, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = std::env::join_paths([dir.path()]).expect("joinable");
        assert_eq!(find_plugin("plain", Some(&path)), None);
        assert_eq!(find_plugin("dir", Some(&path)), None);
        assert_eq!(find_plugin("runnable", Some(&path)), Some(runnable));
    }

    #[test]
    fn a_silent_reader_times_out() {
        let (_sender, chunks) = mpsc::sync_channel::<Vec<u8>>(1);
        let mut reader = ChannelReader {
            chunks,
            current: Vec::new(),
            position: 0,
            timeout: Duration::from_millis(50),
        };
        let start = Instant::now();
        let err = reader.fill_buf().expect_err("silent");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
