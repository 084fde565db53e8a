//! Where volumes go and come from: small traits with file, memory and
//! `Write` implementations. This layer moves bytes; it knows no keys.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Volume};

/// Writes the volumes of a set, one after another.
///
/// [`SealWriter`](crate::SealWriter) calls `start_volume` before the first
/// byte of each volume, then `append`, and `finish` once after the last
/// chunk. A sink that is dropped without `finish` must not leave anything
/// that looks finished (the file sink removes its temporary files).
pub trait VolumeSink {
    /// Begins volume `number` (from 1); following writes go to it.
    ///
    /// # Errors
    ///
    /// Any I/O error creating the volume.
    fn start_volume(&mut self, number: u32) -> io::Result<()>;

    /// Appends bytes to the current volume.
    ///
    /// Not named `write_all`, so that it never shadows
    /// [`Write::write_all`] on a type that is both a sink and a writer.
    ///
    /// # Errors
    ///
    /// Any I/O error writing.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Grows the current volume by `len` bytes and lends them, for the
    /// sealer to seal chunks straight into; `None` if this sink cannot
    /// (the default), and the sealer calls [`append`](Self::append).
    ///
    /// A sink in memory implements this so that a large write is copied
    /// once, not twice, and on every sealing thread (see
    /// [`SealWriter`](crate::SealWriter)). The sealer fills all `len` bytes
    /// before it calls the sink again; whatever they held before is
    /// overwritten. The slice must be exactly `len` bytes long.
    ///
    /// # Errors
    ///
    /// Any I/O error making room.
    fn append_in_place(&mut self, len: usize) -> io::Result<Option<&mut [u8]>> {
        let _ = len;
        Ok(None)
    }

    /// Reads back bytes of the current volume at `offset` into `buf`, for
    /// the second pass that computes parity (SPEC.md §16.11); `None` if this
    /// sink cannot (the default: streams, pipes). Called with an empty
    /// `buf` before anything is written, to ask whether it can.
    ///
    /// # Errors
    ///
    /// Any I/O error reading, or a range past what was written.
    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<Option<()>> {
        let _ = (offset, buf);
        Ok(None)
    }

    /// Writes `bytes` at `offset` of the current volume, past its end too
    /// (the volume grows; later appends go after the furthest byte
    /// written); `None` if this sink cannot (the default).
    ///
    /// # Errors
    ///
    /// Any I/O error writing.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<Option<()>> {
        let _ = (offset, bytes);
        Ok(None)
    }

    /// Makes every volume durable and visible under its final name.
    ///
    /// # Errors
    ///
    /// Any I/O error flushing, syncing or renaming.
    fn finish(&mut self) -> io::Result<()>;
}

impl<S: VolumeSink + ?Sized> VolumeSink for &mut S {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        (**self).start_volume(number)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        (**self).append(bytes)
    }

    fn append_in_place(&mut self, len: usize) -> io::Result<Option<&mut [u8]>> {
        (**self).append_in_place(len)
    }

    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<Option<()>> {
        (**self).read_back(offset, buf)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<Option<()>> {
        (**self).write_at(offset, bytes)
    }

    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
}

/// A boxed sink, so a tool can choose its sink at run time
/// (`Box<dyn VolumeSink>`).
impl<S: VolumeSink + ?Sized> VolumeSink for Box<S> {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        (**self).start_volume(number)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        (**self).append(bytes)
    }

    fn append_in_place(&mut self, len: usize) -> io::Result<Option<&mut [u8]>> {
        (**self).append_in_place(len)
    }

    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<Option<()>> {
        (**self).read_back(offset, buf)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<Option<()>> {
        (**self).write_at(offset, bytes)
    }

    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
}

/// Keeps volumes in memory.
///
/// [`MemorySink::new`] grows each volume as it is written;
/// [`MemorySink::for_plan`] allocates every volume once at the size the
/// sealer's [`Plan`](crate::Plan) gives, so a large seal into memory never
/// reallocates and never zeroes memory it is about to overwrite (fresh
/// zeroed pages come from the operating system untouched, and each sealing
/// thread touches its own).
#[derive(Debug, Default)]
pub struct MemorySink {
    volumes: Vec<Vec<u8>>,
    /// Bytes written to the current (last) volume: its `len()` may be
    /// larger, allocated ahead from the plan.
    written: usize,
    /// Planned length of each volume, volume 1 first; empty without a plan.
    planned: Vec<u64>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// An empty sink that allocates each volume at the length `plan` gives
    /// it (a volume that turns out longer still grows).
    pub fn for_plan(plan: &crate::Plan) -> Self {
        let planned = (1..=plan.volume_count())
            .map_while(|v| u32::try_from(v).ok().and_then(|v| plan.volume_len(v)))
            .collect();
        MemorySink {
            planned,
            ..MemorySink::default()
        }
    }

    /// The volumes written so far, volume 1 first.
    pub fn into_volumes(mut self) -> Vec<Vec<u8>> {
        self.trim_current();
        self.volumes
    }

    /// Drops what the plan allocated beyond what the current volume holds.
    fn trim_current(&mut self) {
        if let Some(volume) = self.volumes.last_mut() {
            volume.truncate(self.written);
        }
    }

    /// `len` more bytes of the current volume, grown if the plan was short.
    fn grow(&mut self, len: usize) -> io::Result<&mut [u8]> {
        let Some(volume) = self.volumes.last_mut() else {
            return Err(io::Error::other("write before the first volume"));
        };
        let start = self.written;
        let end = start
            .checked_add(len)
            .ok_or_else(|| io::Error::other("a volume longer than memory"))?;
        if volume.len() < end {
            volume.resize(end, 0);
        }
        self.written = end;
        Ok(&mut volume[start..end])
    }
}

impl VolumeSink for MemorySink {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        self.trim_current();
        let planned = number
            .checked_sub(1)
            .and_then(|i| self.planned.get(i as usize))
            .and_then(|&len| usize::try_from(len).ok())
            .unwrap_or(0);
        // `vec!` of zeros asks the allocator for zeroed memory: pages the
        // operating system maps on first touch, with no pass over them now.
        self.volumes.push(vec![0u8; planned]);
        self.written = 0;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.grow(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Lends the volume's own memory: a large seal into memory copies each
    /// byte once.
    fn append_in_place(&mut self, len: usize) -> io::Result<Option<&mut [u8]>> {
        self.grow(len).map(Some)
    }

    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<Option<()>> {
        if buf.is_empty() {
            return Ok(Some(()));
        }
        let volume = self
            .volumes
            .last()
            .ok_or_else(|| io::Error::other("read before the first volume"))?;
        let start = usize::try_from(offset).map_err(|_| past_written())?;
        let end = start.checked_add(buf.len()).ok_or_else(past_written)?;
        if end > self.written {
            return Err(past_written());
        }
        buf.copy_from_slice(&volume[start..end]);
        Ok(Some(()))
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<Option<()>> {
        let start =
            usize::try_from(offset).map_err(|_| io::Error::other("a volume longer than memory"))?;
        let end = start
            .checked_add(bytes.len())
            .ok_or_else(|| io::Error::other("a volume longer than memory"))?;
        if end > self.written {
            self.grow(end - self.written)?;
        }
        let volume = self
            .volumes
            .last_mut()
            .ok_or_else(|| io::Error::other("write before the first volume"))?;
        volume[start..end].copy_from_slice(bytes);
        Ok(Some(()))
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A read back past what a sink holds.
fn past_written() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "read back past what was written",
    )
}

/// Writes a set of one volume to any [`Write`]: standard output, a pipe, a
/// socket.
///
/// A `Write` can neither seek nor make new files, so the set must fit one
/// volume: seal without [`Sealer::volume_size`], or with one the payload
/// fits. If the sealer asks for a second volume, `start_volume` fails with
/// [`Error::SplitRefused`] (inside the `io::Error`, as
/// [`Error::from_io`] recovers it) and the output holds an unfinished
/// volume that no opener accepts. Writes go straight to `W`: wrap it in a
/// [`BufWriter`] if small writes are costly (the sealer writes its header,
/// then batches of about 1 MiB).
///
/// ```
/// use std::io::Write;
/// use kuvert::{Opener, Sealer, WriteSink, X25519Identity};
///
/// let identity = X25519Identity::generate()?;
/// let mut writer = Sealer::new()
///     .recipient(identity.to_public())
///     .seal(WriteSink::new(Vec::new()))?;
/// writer.write_all(b"to standard output")?;
/// let volume: Vec<u8> = writer.finish()?.into_inner();
/// let mut reader = Opener::new().identity(identity).open_one(volume)?;
/// let mut text = String::new();
/// std::io::Read::read_to_string(&mut reader, &mut text)?;
/// assert_eq!(text, "to standard output");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`Sealer::volume_size`]: crate::Sealer::volume_size
#[derive(Debug)]
pub struct WriteSink<W: Write> {
    out: W,
    started: bool,
}

impl<W: Write> WriteSink<W> {
    /// A sink writing the one volume of a set to `out`.
    pub fn new(out: W) -> Self {
        WriteSink {
            out,
            started: false,
        }
    }

    /// The writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The writer; writing to it directly corrupts the volume.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// The writer back, as [`SealWriter::finish`](crate::SealWriter::finish)
    /// returns the sink.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> VolumeSink for WriteSink<W> {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        if number != 1 || self.started {
            return Err(Error::SplitRefused { volume: number }.into());
        }
        self.started = true;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.started {
            return Err(io::Error::other("write before the first volume"));
        }
        self.out.write_all(bytes)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Size of the write buffer of each volume file: large writes cost far less
/// kernel time than chunk-sized ones.
const FILE_BUFFER: usize = 1 << 20;

/// Writes volumes as files, under temporary names until [`finish`](VolumeSink::finish).
///
/// A set that fits one volume is written to exactly the path given; a split
/// set to `STEM.001.kuv`, `STEM.002.kuv`, … where STEM is the path without
/// its `.kuv` extension. Until `finish` renames them, volumes live under
/// hidden names ending in `.kuvert-partial`, removed if the sink is dropped
/// unfinished, so no half-written set ever carries a final name.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    partial: Vec<PathBuf>,
    current: Option<BufWriter<File>>,
    finished: Vec<PathBuf>,
}

impl FileSink {
    /// A sink for the set named by `path`; nothing is created yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSink {
            path: path.into(),
            partial: Vec::new(),
            current: None,
            finished: Vec::new(),
        }
    }

    /// Final paths of the volumes, in order, once finished.
    pub fn paths(&self) -> &[PathBuf] {
        &self.finished
    }

    /// The hidden partial files written so far and not yet published
    /// under their final names, volume 1 first: what to remove if the
    /// process is ended before the sink is dropped (a signal handler).
    /// Empty once [`finish`](VolumeSink::finish) has succeeded.
    pub fn partial_paths(&self) -> &[PathBuf] {
        &self.partial
    }

    /// The hidden name volume `number` is written under until `finish`:
    /// `.NAME.NNN.PID.kuvert-partial` beside the final path, where NAME is
    /// the final file name, NNN the volume number and PID this process's
    /// id. Known before the file exists, so a signal handler can learn it
    /// before [`start_volume`](VolumeSink::start_volume) creates it.
    pub fn partial_path(&self, number: u32) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "kuvert".into());
        let dir = self.path.parent().unwrap_or(Path::new(""));
        dir.join(format!(
            ".{name}.{number:03}.{}.kuvert-partial",
            std::process::id()
        ))
    }

    /// The final names a set of `count` volumes gets for `path`.
    pub fn volume_paths(path: &Path, count: u32) -> Vec<PathBuf> {
        if count <= 1 {
            return vec![path.to_path_buf()];
        }
        let stem = match path.extension() {
            Some(ext) if ext == "kuv" => path.with_extension(""),
            _ => path.to_path_buf(),
        };
        let stem = stem.as_os_str().to_string_lossy().into_owned();
        (1..=count)
            .map(|number| PathBuf::from(format!("{stem}.{number:03}.kuv")))
            .collect()
    }

    fn close_current(&mut self) -> io::Result<()> {
        if let Some(writer) = self.current.take() {
            let file = writer.into_inner().map_err(|err| err.into_error())?;
            file.sync_all()?;
        }
        Ok(())
    }
}

impl VolumeSink for FileSink {
    fn start_volume(&mut self, number: u32) -> io::Result<()> {
        self.close_current()?;
        let path = self.partial_path(number);
        // Readable too: parity reads the volume back (SPEC.md §16.11).
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        self.partial.push(path);
        self.current = Some(BufWriter::with_capacity(FILE_BUFFER, file));
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.current {
            Some(writer) => writer.write_all(bytes),
            None => Err(io::Error::other("write before the first volume")),
        }
    }

    /// Positioned reads of the volume's own file, after flushing what is
    /// buffered; the cursor is left at the end for the next append.
    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<Option<()>> {
        let Some(writer) = &mut self.current else {
            return Ok(Some(()));
        };
        writer.flush()?;
        let mut file = writer.get_ref();
        file.seek(io::SeekFrom::Start(offset))?;
        let read = file.read_exact(buf);
        file.seek(io::SeekFrom::End(0))?;
        read.map(Some)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<Option<()>> {
        let Some(writer) = &mut self.current else {
            return Err(io::Error::other("write before the first volume"));
        };
        writer.flush()?;
        let mut file = writer.get_ref();
        file.seek(io::SeekFrom::Start(offset))?;
        let written = file.write_all(bytes);
        file.seek(io::SeekFrom::End(0))?;
        written.map(Some)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.close_current()?;
        let count = u32::try_from(self.partial.len()).unwrap_or(u32::MAX);
        let finals = FileSink::volume_paths(&self.path, count);
        for (index, (partial, target)) in self.partial.iter().zip(&finals).enumerate() {
            if let Err(err) = fs::rename(partial, target) {
                // Take back what was published: part of a set must not sit
                // under final names. The rest is removed on drop.
                for published in &finals[..index] {
                    let _ = fs::remove_file(published);
                }
                self.partial.drain(..index);
                return Err(err);
            }
        }
        self.partial.clear();
        self.finished = finals;
        Ok(())
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        self.current = None;
        for path in &self.partial {
            let _ = fs::remove_file(path);
        }
    }
}

/// The whole of volume `volume`, named after its source: where every error
/// about a volume starts.
pub(crate) fn location<S: VolumeSource + ?Sized>(source: &S, volume: Volume) -> Location {
    Location::new(volume).name(source.name())
}

/// Reads `buf` from `source` at `offset`, reporting a failure as
/// [`Error::Read`] at volume `volume` (chunk `chunk`), named after the source.
pub(crate) fn read_at<S: VolumeSource + ?Sized>(
    source: &S,
    buf: &mut [u8],
    offset: u64,
    volume: Volume,
    chunk: Option<u64>,
) -> Result<(), Error> {
    source.read_exact_at(buf, offset).map_err(|err| {
        let at = location(source, volume).byte(offset);
        Error::Read {
            at: match chunk {
                Some(chunk) => at.chunk(chunk),
                None => at,
            },
            source: err,
        }
    })
}

/// A volume to read from, at any offset.
pub trait VolumeSource {
    /// Length of the volume in bytes.
    ///
    /// # Errors
    ///
    /// Any I/O error asking for it.
    fn size(&self) -> io::Result<u64>;

    /// Fills `buf` from `offset`; fails if the volume ends first.
    ///
    /// # Errors
    ///
    /// Any I/O error, or [`io::ErrorKind::UnexpectedEof`].
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// A name for messages, such as the file a volume was opened from;
    /// `None` (the default) for sources without one, such as memory.
    fn name(&self) -> Option<&str> {
        None
    }
}

impl<S: VolumeSource + ?Sized> VolumeSource for &S {
    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }

    fn name(&self) -> Option<&str> {
        (**self).name()
    }
}

/// A boxed source, so sources of different types can be opened as one set:
/// a `Vec<Box<dyn VolumeSource>>` of files and memory, say (add `+ Sync`
/// for [`OpenReader::copy_to`](crate::OpenReader::copy_to) and verifying).
impl<S: VolumeSource + ?Sized> VolumeSource for Box<S> {
    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }

    fn name(&self) -> Option<&str> {
        (**self).name()
    }
}

/// A shared source, for sets opened from several threads at once.
impl<S: VolumeSource + ?Sized> VolumeSource for std::sync::Arc<S> {
    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }

    fn name(&self) -> Option<&str> {
        (**self).name()
    }
}

impl VolumeSource for [u8] {
    fn size(&self) -> io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).ok();
        let range = start.and_then(|start| Some(start..start.checked_add(buf.len())?));
        match range.and_then(|range| self.get(range)) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

impl VolumeSource for Vec<u8> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

impl VolumeSource for bytes::Bytes {
    fn size(&self) -> io::Result<u64> {
        Ok(self.as_ref().len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_ref().read_exact_at(buf, offset)
    }
}

/// A volume file, read with positioned reads (no shared cursor).
#[derive(Debug)]
pub struct FileSource {
    file: File,
    path: PathBuf,
    /// The path as UTF-8 (lossily), for [`VolumeSource::name`].
    name: String,
}

impl FileSource {
    /// Opens the volume at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Input`] naming `path`, with the operating system's error as
    /// its source.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        match File::open(&path) {
            Ok(file) => Ok(FileSource {
                file,
                name: path.to_string_lossy().into_owned(),
                path,
            }),
            Err(source) => Err(Error::Input { path, source }),
        }
    }

    /// The path the volume was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl VolumeSource for FileSource {
    /// The file's length; for a block device (a disc drive, `/dev/sr0`),
    /// whose metadata says 0, the position of its end.
    fn size(&self) -> io::Result<u64> {
        let metadata = self.file.metadata()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if metadata.file_type().is_block_device() {
                use std::io::Seek;
                return (&self.file).seek(io::SeekFrom::End(0));
            }
        }
        Ok(metadata.len())
    }

    /// The path the volume was opened from.
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_source_reads_inside_and_refuses_past_the_end() {
        let data = vec![1u8, 2, 3, 4];
        let mut buf = [0u8; 2];
        data.read_exact_at(&mut buf, 2).expect("inside");
        assert_eq!(buf, [3, 4]);
        assert!(data.read_exact_at(&mut buf, 3).is_err());
        assert!(data.read_exact_at(&mut buf, u64::MAX).is_err());
        assert_eq!(data.size().expect("len"), 4);
    }

    #[test]
    fn split_names_follow_the_stem() {
        let names = FileSink::volume_paths(Path::new("out/parcel.kuv"), 2);
        assert_eq!(
            names,
            [
                PathBuf::from("out/parcel.001.kuv"),
                PathBuf::from("out/parcel.002.kuv")
            ]
        );
        assert_eq!(
            FileSink::volume_paths(Path::new("parcel.kuv"), 1),
            [PathBuf::from("parcel.kuv")]
        );
        assert_eq!(
            FileSink::volume_paths(Path::new("parcel"), 2)[1],
            PathBuf::from("parcel.002.kuv")
        );
    }

    #[test]
    fn unfinished_file_sink_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("set.kuv");
        {
            let mut sink = FileSink::new(&path);
            sink.start_volume(1).expect("start");
            sink.append(b"partial").expect("write");
        }
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 0);
    }

    #[test]
    fn finished_file_sink_renames_volumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("set.kuv");
        let mut sink = FileSink::new(&path);
        for number in 1..=2 {
            sink.start_volume(number).expect("start");
            sink.append(&[number as u8]).expect("write");
        }
        sink.finish().expect("finish");
        let paths = sink.paths().to_vec();
        drop(sink);
        assert_eq!(fs::read(&paths[1]).expect("volume 2"), [2]);
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 2);
    }

    #[test]
    fn write_sink_takes_one_volume_and_refuses_a_second() {
        let mut sink = WriteSink::new(Vec::new());
        assert!(sink.append(b"early").is_err(), "no volume started");
        sink.start_volume(1).expect("volume 1");
        sink.append(b"header").expect("write");
        sink.append(b" chunks").expect("write");
        for number in [2, 1] {
            let err = sink.start_volume(number).expect_err("a second volume");
            assert!(matches!(
                Error::from_io(err),
                Error::SplitRefused { volume } if volume == number
            ));
        }
        sink.finish().expect("flush");
        assert_eq!(sink.get_ref().as_slice(), b"header chunks");
        assert_eq!(sink.into_inner(), b"header chunks");
        // Volume 2 first is refused too: a `Write` holds volume 1.
        let err = WriteSink::new(io::sink())
            .start_volume(2)
            .expect_err("not 1");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn boxed_and_shared_sources_and_sinks_forward() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v.kuv");
        fs::write(&path, b"from a file").expect("write");
        let sources: Vec<Box<dyn VolumeSource>> = vec![
            Box::new(FileSource::open(&path).expect("open")),
            Box::new(b"from memory".to_vec()),
            Box::new(std::sync::Arc::new(bytes::Bytes::from_static(b"shared"))),
        ];
        let mut buf = [0u8; 4];
        sources[0].read_exact_at(&mut buf, 7).expect("file");
        assert_eq!(&buf, b"file");
        sources[1].read_exact_at(&mut buf, 0).expect("memory");
        assert_eq!(&buf, b"from");
        assert_eq!(sources[2].size().expect("len"), 6);
        assert_eq!(sources[0].name(), Some(path.to_string_lossy().as_ref()));
        fn name_of<S: VolumeSource>(source: S) -> Option<String> {
            source.name().map(String::from)
        }
        assert_eq!(name_of(&sources[0]).as_deref(), sources[0].name());
        assert_eq!(sources[1].name(), None);
        assert_eq!(sources[2].name(), None);

        let mut sink: Box<dyn VolumeSink> = Box::new(MemorySink::new());
        sink.start_volume(1).expect("start");
        sink.append(b"boxed").expect("write");
        sink.finish().expect("finish");
    }

    #[test]
    fn file_source_open_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing.kuv");
        match FileSource::open(&path) {
            Err(err @ Error::Input { .. }) => {
                assert!(err.to_string().contains("missing.kuv"), "{err}");
                let Error::Input {
                    path: named,
                    source,
                } = err
                else {
                    unreachable!("matched above")
                };
                assert_eq!(named, path);
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_paths_are_the_files_before_publishing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("set.kuv");
        let mut sink = FileSink::new(&path);
        let expected: Vec<PathBuf> = (1..=2).map(|n| sink.partial_path(n)).collect();
        assert_eq!(
            expected[1].file_name().expect("name").to_string_lossy(),
            format!(".set.kuv.002.{}.kuvert-partial", std::process::id())
        );
        assert!(sink.partial_paths().is_empty());
        for number in 1..=2 {
            sink.start_volume(number).expect("start");
            sink.append(&[number as u8]).expect("write");
        }
        assert_eq!(sink.partial_paths(), expected);
        assert!(expected.iter().all(|p| p.exists()));
        sink.finish().expect("finish");
        assert!(sink.partial_paths().is_empty());
        assert!(expected.iter().all(|p| !p.exists()));
    }
}
