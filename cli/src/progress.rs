//! Progress on stderr: bytes, rate, ETA and the current volume, drawn only
//! when stderr is a terminal (and not with `--quiet`).
//!
//! Progress is counted where the ciphertext moves, by wrapping the volume
//! sink (seal) or each volume source (open, list, verify), so every command
//! gets it without hooks in the library.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kuvert::{VolumeSink, VolumeSource};

/// The bar on the terminal now, so that a plugin's prompt can hide it.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// A bar over `total` bytes (a spinner if unknown), or a hidden one.
pub fn bar(quiet: bool, total: Option<u64>, message: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    if let Ok(mut shown) = SHOWN.lock() {
        *shown = Some(bar.clone());
    }
    let style = match total {
        Some(_) => ProgressStyle::with_template(
            "{msg:20} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        ),
        None => ProgressStyle::with_template(
            "{spinner} {msg:20} {bytes} {binary_bytes_per_sec} {elapsed}",
        ),
    };
    if let Ok(style) = style {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    if total.is_none() {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

/// Runs `f` (a prompt, a message) with the current bar cleared off the
/// terminal and not redrawn until `f` returns, so that a PIN question is
/// not drawn over.
pub fn suspended<R>(f: impl FnOnce() -> R) -> R {
    let shown = SHOWN.lock().ok().and_then(|shown| shown.clone());
    match shown {
        Some(bar) if !bar.is_finished() => bar.suspend(f),
        _ => f(),
    }
}

/// A sink that counts what it writes, names the volume being written, and
/// notes whether writing failed (so an I/O error is blamed on the output,
/// not on the input being read).
#[derive(Debug)]
pub struct ProgressSink<S> {
    pub inner: S,
    bar: ProgressBar,
    failed: Arc<AtomicBool>,
}

impl<S> ProgressSink<S> {
    /// `failed` is set when the inner sink fails.
    pub fn new(inner: S, bar: ProgressBar, failed: Arc<AtomicBool>) -> Self {
        ProgressSink { inner, bar, failed }
    }

    fn note<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if result.is_err() {
            self.failed.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl<S: VolumeSink> VolumeSink for ProgressSink<S> {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        self.bar.set_message(format!("sealing volume {number}"));
        let result = self.inner.start_volume(number);
        self.note(result)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        crate::output::stop_if_interrupted();
        let result = self.inner.append(bytes);
        self.note(result)?;
        self.bar.inc(bytes.len() as u64);
        Ok(())
    }

    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<Option<()>> {
        self.inner.read_back(offset, buf)
    }

    /// The parity, written in place: counted as written.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<Option<()>> {
        crate::output::stop_if_interrupted();
        let result = self.inner.write_at(offset, bytes);
        if let Ok(Some(())) = &result {
            self.bar.inc(bytes.len() as u64);
        }
        result
    }

    fn finish(&mut self) -> io::Result<()> {
        self.bar.set_message("syncing");
        let result = self.inner.finish();
        self.note(result)
    }
}

/// A volume source that counts what is read from it and shows which volume
/// is being read; errors name its file through the inner source's name.
#[derive(Debug)]
pub struct ProgressSource<S> {
    inner: S,
    volume: u32,
    verb: &'static str,
    current: Arc<AtomicU32>,
    bar: ProgressBar,
}

impl<S> ProgressSource<S> {
    /// `volume` as its header claims (0 if unknown); `current` is shared
    /// by the sources of one bar.
    pub fn new(
        inner: S,
        volume: u32,
        verb: &'static str,
        current: Arc<AtomicU32>,
        bar: ProgressBar,
    ) -> Self {
        ProgressSource {
            inner,
            volume,
            verb,
            current,
            bar,
        }
    }
}

impl<S: VolumeSource> VolumeSource for ProgressSource<S> {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    // The library names the volume, byte and chunk of a failed read, after
    // `name`: nothing to add to the OS error here.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        crate::output::stop_if_interrupted();
        self.inner.read_exact_at(buf, offset)?;
        // The opener reads a set's header, final chunk and chunk 0 before
        // streaming it, so a tiny set would pass 100 %: stop at the total.
        let left = self
            .bar
            .length()
            .map_or(u64::MAX, |total| total.saturating_sub(self.bar.position()));
        self.bar.inc((buf.len() as u64).min(left));
        if self.volume != 0 && self.current.swap(self.volume, Ordering::Relaxed) != self.volume {
            self.bar
                .set_message(format!("{} volume {}", self.verb, self.volume));
        }
        Ok(())
    }

    fn name(&self) -> Option<&str> {
        self.inner.name()
    }
}
