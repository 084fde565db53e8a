//! Sealing a large write straight into the sink's memory.
//!
//! When the caller hands over many chunks of plaintext at once and the sink
//! can lend the bytes they will occupy ([`VolumeSink::append_in_place`]),
//! each chunk is copied from the caller's slice to its final place and
//! sealed there, while it is still in the core's cache: one copy instead of
//! two (into a batch buffer, then into the sink), and the copies run on
//! every sealing thread instead of the writing one. That is what brings an
//! in-memory seal close to the raw cipher's speed.
//!
//! [`VolumeSink::append_in_place`]: crate::VolumeSink::append_in_place

use std::sync::Mutex;
use std::thread;

use crate::chunk_digest::{DIGEST_LEN, chunk_cv};
use crate::format::{ChunkFlag, Geometry, TAG_LEN};
use crate::stream::ChunkCipher;

/// A run of whole chunks to seal: plaintext in, room for the sealed
/// chunks out, and the counter of the first.
struct Run<'a> {
    plain: &'a [u8],
    sealed: &'a mut [u8],
    first: u64,
    /// Room for the run's chunk digests, or empty if none are wanted.
    cvs: &'a mut [[u8; DIGEST_LEN]],
}

/// Seals `plain` (whole chunks, none of them the end of the set) into
/// `sealed`, which holds exactly as many sealed chunks, on up to `threads`
/// threads: the calling one and scoped helpers that end with the call.
/// Work is taken in runs of `per_run` chunks, so a slow core takes fewer.
/// `cvs` is empty, or one slot per chunk for its trailer digest, computed
/// on the thread that sealed it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn seal_chunks_into(
    cipher: &ChunkCipher,
    geometry: &Geometry,
    first: u64,
    plain: &[u8],
    sealed: &mut [u8],
    cvs: &mut [[u8; DIGEST_LEN]],
    threads: usize,
    per_run: usize,
) {
    let (plain_len, chunk_len) = (geometry.plain_len(), geometry.chunk_len());
    debug_assert!(plain.len().is_multiple_of(plain_len));
    debug_assert_eq!(sealed.len() / chunk_len * plain_len, plain.len());
    let mut cv_runs = cvs.chunks_mut(per_run);
    let runs: Vec<Run<'_>> = plain
        .chunks(per_run * plain_len)
        .zip(sealed.chunks_mut(per_run * chunk_len))
        .enumerate()
        .map(|(i, (plain, sealed))| Run {
            plain,
            sealed,
            first: first + (i * per_run) as u64,
            cvs: cv_runs.next().unwrap_or_default(),
        })
        .collect();
    let helpers = threads.min(runs.len()).saturating_sub(1);
    let queue = Mutex::new(runs.into_iter());
    let work = || {
        loop {
            // Hold the lock only to take a run, not to seal it.
            let next = match queue.lock() {
                Ok(mut runs) => runs.next(),
                Err(_) => return,
            };
            let Some(run) = next else { return };
            seal_run(cipher, geometry, run);
        }
    };
    thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(work);
        }
        work();
    });
}

/// Copies each chunk of a run to its place and seals it there.
fn seal_run(cipher: &ChunkCipher, geometry: &Geometry, run: Run<'_>) {
    let plain_len = geometry.plain_len();
    let chunks = run.plain.chunks(plain_len);
    for (j, (plain, sealed)) in chunks
        .zip(run.sealed.chunks_mut(geometry.chunk_len()))
        .enumerate()
    {
        let counter = run.first + j as u64;
        let flag = if geometry.ends_volume(counter) {
            ChunkFlag::EndOfVolume
        } else {
            ChunkFlag::Interior
        };
        let (body, tag) = sealed.split_at_mut(plain_len);
        body.copy_from_slice(plain);
        tag[..TAG_LEN].copy_from_slice(&cipher.seal_detached(counter, flag, body));
        if let Some(cv) = run.cvs.get_mut(j) {
            *cv = chunk_cv(geometry.local_index(counter), geometry.chunk_len(), sealed);
        }
    }
}
