//! Parallel sealing and opening.
//!
//! Chunks are independent once the payload key is known, so work is cut into
//! *batches* of consecutive chunks (about 1 MiB each; per-chunk tasks cost
//! more than they save) and handed to worker threads, while one thread
//! keeps the I/O in order. At most `2 × threads` batches are in flight, so
//! memory is bounded by threads × batch size, never by the payload.
//!
//! Sealing (and opening) on n threads means the calling thread and n − 1
//! workers: the calling thread hands a batch to the pool while a worker has
//! nothing queued, and seals (or opens) it itself otherwise. So no core waits while another
//! has two jobs, no more threads run than were asked for, and a batch the
//! writing thread seals is still in its cache from being filled.

mod in_place;

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use zeroize::Zeroizing;

use crate::chunk_digest::{DIGEST_LEN, chunk_cv};
use crate::error::Error;
use crate::format::{ChunkFlag, Geometry, TAG_LEN};
use crate::stream::ChunkCipher;

pub(crate) use in_place::seal_chunks_into;

/// Target plaintext per batch: large enough that handing a batch to a
/// thread costs well under 1% of sealing it.
const BATCH_BYTES: usize = 1 << 20;

/// Chunks per batch for a geometry: at least one.
pub(crate) fn batch_chunks(geometry: &Geometry) -> usize {
    (BATCH_BYTES / geometry.chunk_len()).max(1)
}

/// Batches in flight per worker thread.
pub(crate) const DEPTH_PER_THREAD: usize = 2;

/// The threads to use when the caller does not say: all cores.
pub(crate) fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

/// A run of consecutive chunks to seal, laid out at stride C: chunk j's
/// plaintext sits at `j·C` and its tag is written right after it.
pub(crate) struct SealBatch {
    /// Plaintext until sealed in place; wiped if dropped before.
    pub(crate) buf: Zeroizing<Vec<u8>>,
    /// Global index of the first chunk.
    pub(crate) first: u64,
    pub(crate) chunks: usize,
    /// Plaintext bytes of the last chunk.
    pub(crate) last_len: usize,
    /// Whether the last chunk is the last of the set.
    pub(crate) end_of_set: bool,
    /// Whether to compute each chunk's trailer digest (SPEC.md §13.4)
    /// right after sealing it, while it is in this core's cache.
    pub(crate) digests: bool,
    /// The digests of the sealed chunks, in order, if asked for.
    pub(crate) cvs: Vec<[u8; DIGEST_LEN]>,
}

impl SealBatch {
    /// Length of the sealed bytes: every chunk whole, the last one short.
    pub(crate) fn sealed_len(&self, geometry: &Geometry) -> usize {
        (self.chunks - 1) * geometry.chunk_len() + self.last_len + TAG_LEN
    }

    /// Seals every chunk in place.
    pub(crate) fn seal(&mut self, cipher: &ChunkCipher, geometry: &Geometry) {
        let chunk_len = geometry.chunk_len();
        for j in 0..self.chunks {
            let counter = self.first + j as u64;
            let last = j + 1 == self.chunks;
            let plain = if last {
                self.last_len
            } else {
                geometry.plain_len()
            };
            let flag = if last && self.end_of_set {
                ChunkFlag::EndOfSet
            } else if geometry.ends_volume(counter) {
                ChunkFlag::EndOfVolume
            } else {
                ChunkFlag::Interior
            };
            let start = j * chunk_len;
            let (body, rest) = self.buf[start..].split_at_mut(plain);
            let tag = cipher.seal_detached(counter, flag, body);
            rest[..TAG_LEN].copy_from_slice(&tag);
            if self.digests {
                let sealed = &self.buf[start..start + plain + TAG_LEN];
                self.cvs
                    .push(chunk_cv(geometry.local_index(counter), chunk_len, sealed));
            }
        }
    }
}

type SealReply = Result<SealBatch, Error>;

struct SealJob {
    batch: SealBatch,
    reply: SyncSender<SealReply>,
}

/// A batch handed out, in the order it must be written.
pub(crate) enum Pending {
    /// Sealed in the calling thread.
    Ready(SealBatch),
    /// Being sealed by a worker.
    Waiting(Receiver<SealReply>),
}

impl Pending {
    /// Waits for the batch to be sealed.
    pub(crate) fn wait(self) -> Result<SealBatch, Error> {
        match self {
            Pending::Ready(batch) => Ok(batch),
            Pending::Waiting(reply) => reply.recv().unwrap_or_else(|_| {
                Err(Error::Io(std::io::Error::other("a sealing thread stopped")))
            }),
        }
    }
}

/// Worker threads that seal batches; they stop when the pool is dropped.
pub(crate) struct SealPool {
    jobs: Option<Sender<SealJob>>,
    /// Jobs handed in that no worker has taken yet.
    queued: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<()>>,
}

#[cfg(test)]
thread_local! {
    /// Sealing threads started by pools created on this thread: lets a test
    /// see that a small payload starts none, without timing anything.
    static SEAL_THREADS_STARTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Sealing threads that pools created on the calling thread have started.
#[cfg(test)]
pub(crate) fn seal_threads_started() -> usize {
    SEAL_THREADS_STARTED.with(std::cell::Cell::get)
}

impl SealPool {
    /// Starts `workers` threads that seal with `cipher`.
    pub(crate) fn new(workers: usize, cipher: Arc<ChunkCipher>, geometry: Geometry) -> Self {
        #[cfg(test)]
        SEAL_THREADS_STARTED.with(|started| started.set(started.get() + workers));
        let (jobs, queue) = mpsc::channel::<SealJob>();
        let queue = Arc::new(Mutex::new(queue));
        let queued = Arc::new(AtomicUsize::new(0));
        let handles = (0..workers)
            .map(|_| {
                let queue = Arc::clone(&queue);
                let queued = Arc::clone(&queued);
                let cipher = Arc::clone(&cipher);
                thread::spawn(move || {
                    loop {
                        // Hold the lock only to take a job, not to seal it.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(SealJob { mut batch, reply }) = job else {
                            return;
                        };
                        queued.fetch_sub(1, Ordering::Relaxed);
                        batch.seal(&cipher, &geometry);
                        let _ = reply.send(Ok(batch));
                    }
                })
            })
            .collect();
        SealPool {
            jobs: Some(jobs),
            queued,
            workers: handles,
        }
    }

    /// Whether a worker would take a batch handed in now without another
    /// one waiting ahead of it; otherwise the caller is better off sealing
    /// it itself. (Workers may be busy: a queued job keeps each one fed.)
    /// Only a hint, so relaxed loads do: either answer seals correctly.
    pub(crate) fn has_room(&self) -> bool {
        self.queued.load(Ordering::Relaxed) < self.workers.len()
    }

    /// Hands a batch to the next free worker.
    pub(crate) fn submit(&self, batch: SealBatch) -> Pending {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let (reply, receiver) = mpsc::sync_channel(1);
        if let Some(jobs) = &self.jobs
            && let Err(mpsc::SendError(job)) = jobs.send(SealJob { batch, reply })
        {
            // Every worker is gone: report it when the batch is waited for.
            drop(job);
        }
        Pending::Waiting(receiver)
    }
}

impl Drop for SealPool {
    fn drop(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// In-order queue of batches in flight.
pub(crate) type InFlight = VecDeque<Pending>;

/// A decrypted run of chunks: plaintext packed at stride P, and the first
/// failure if a chunk did not open (the bytes before it are authenticated).
pub(crate) struct Opened {
    /// Authenticated plaintext: wiped on drop.
    pub(crate) buf: Zeroizing<Vec<u8>>,
    pub(crate) plain: usize,
    pub(crate) error: Option<Error>,
}

/// Which plaintext to copy: chunks `first..=last`, starting `skip` bytes
/// into the first, `len` bytes in all.
pub(crate) struct ChunkRange {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) skip: usize,
    pub(crate) len: u64,
}

/// Decrypts the chunks of `range` on `threads` threads and writes their
/// plaintext to `out` in order. `open_chunk(g, buf)` reads chunk g's ciphertext into
/// `buf` (at least C bytes), opens it in place and returns its plaintext
/// length.
///
/// Stops at the first failure, after writing everything before it.
pub(crate) fn open_range<F, W>(
    geometry: &Geometry,
    threads: usize,
    range: ChunkRange,
    open_chunk: &F,
    out: &mut W,
) -> Result<u64, Error>
where
    F: Fn(u64, &mut [u8]) -> Result<usize, Error> + Sync,
    W: Write + ?Sized,
{
    let ChunkRange {
        first,
        last,
        skip,
        len,
    } = range;
    let per_batch = batch_chunks(geometry) as u64;
    let plain_len = geometry.plain_len();
    // No more buffer than the range needs: small reads stay small.
    let batch_len = per_batch.min(last - first + 1) as usize;
    let buf_len = batch_len * plain_len + TAG_LEN;
    let run = |start: u64, mut buf: Zeroizing<Vec<u8>>| -> Opened {
        let end = (start + per_batch - 1).min(last);
        let mut plain = 0;
        for chunk in start..=end {
            let at = (chunk - start) as usize * plain_len;
            match open_chunk(chunk, &mut buf[at..at + geometry.chunk_len()]) {
                Ok(n) => plain = at + n,
                Err(err) => {
                    return Opened {
                        buf,
                        plain,
                        error: Some(err),
                    };
                }
            }
        }
        Opened {
            buf,
            plain,
            error: None,
        }
    };

    let mut written = 0u64;
    let mut skip = skip;
    // Writes a batch's authenticated plaintext; false once done or failed.
    let mut emit = |opened: &Opened, written: &mut u64, out: &mut W| -> Result<bool, Error> {
        let available = opened.plain.saturating_sub(skip);
        let n = (available as u64).min(len - *written) as usize;
        out.write_all(&opened.buf[skip..skip + n])?;
        *written += n as u64;
        skip = 0;
        Ok(opened.error.is_none() && *written < len)
    };

    let batches = (first..=last).step_by(per_batch as usize);
    // One batch gains nothing from threads: do it here.
    if threads <= 1 || last - first < per_batch {
        let mut buf = Zeroizing::new(vec![0u8; buf_len]);
        for start in batches {
            let opened = run(start, buf);
            let go_on = emit(&opened, &mut written, out)?;
            if let Some(err) = opened.error {
                return Err(err);
            }
            if !go_on {
                break;
            }
            buf = opened.buf;
        }
        return Ok(written);
    }

    // As for sealing: this thread and `threads - 1` workers; it opens a
    // batch itself whenever every worker already has one waiting.
    let workers = threads - 1;
    let queued = AtomicUsize::new(0);
    let (jobs, queue) = mpsc::channel::<(u64, Zeroizing<Vec<u8>>, SyncSender<Opened>)>();
    let queue = Mutex::new(queue);
    thread::scope(|scope| {
        for _ in 0..workers {
            let queue = &queue;
            let queued = &queued;
            let run = &run;
            scope.spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok((start, buf, reply)) = job else {
                        return;
                    };
                    queued.fetch_sub(1, Ordering::Relaxed);
                    let _ = reply.send(run(start, buf));
                }
            });
        }
        /// A batch handed out, in the order it must be written.
        enum InOrder {
            Ready(Opened),
            Waiting(Receiver<Opened>),
        }
        let mut free: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut in_flight: VecDeque<InOrder> = VecDeque::new();
        let mut batches = batches.peekable();
        let result = loop {
            while in_flight.len() < threads * DEPTH_PER_THREAD {
                let Some(start) = batches.next() else { break };
                let buf = free
                    .pop()
                    .unwrap_or_else(|| Zeroizing::new(vec![0u8; buf_len]));
                if queued.load(Ordering::Relaxed) >= workers {
                    in_flight.push_back(InOrder::Ready(run(start, buf)));
                    continue;
                }
                let (reply, receiver) = mpsc::sync_channel(1);
                queued.fetch_add(1, Ordering::Relaxed);
                if jobs.send((start, buf, reply)).is_err() {
                    break;
                }
                in_flight.push_back(InOrder::Waiting(receiver));
            }
            let opened = match in_flight.pop_front() {
                None => break Ok(written),
                Some(InOrder::Ready(opened)) => opened,
                Some(InOrder::Waiting(receiver)) => match receiver.recv() {
                    Ok(opened) => opened,
                    Err(_) => {
                        break Err(Error::Io(std::io::Error::other(
                            "an opening thread stopped",
                        )));
                    }
                },
            };
            match emit(&opened, &mut written, out) {
                Ok(true) => free.push(opened.buf),
                Ok(false) => match opened.error {
                    Some(err) => break Err(err),
                    None => break Ok(written),
                },
                Err(err) => break Err(err),
            }
        };
        // Closing the queue stops the workers after their current batch.
        drop(jobs);
        result
    })
}
