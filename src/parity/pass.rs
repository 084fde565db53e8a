//! The parity pass over a sealed volume's data span (SPEC.md §16.11):
//! batches of stripes are read back on the calling thread, encoded on
//! worker threads (each with its own [`StripeEncoder`]) and finished on the
//! calling thread in stripe order: parity runs written at their
//! layer-major places and fed to the digest block as they are made, so the
//! parity is never read back.

use std::sync::mpsc;

use crate::error::{Error, OptionError};
use crate::format::SECTOR as SECTOR_BYTES;
use crate::parity::digest_stream::DigestStream;
use crate::parity::{ParityGeometry, SectorChecks, StripeEncoder, sector_crc};
use crate::volumes::VolumeSink;

/// A sector, as a length in memory.
const SECTOR: usize = SECTOR_BYTES as usize;

/// Stripes per batch: runs of 32 KiB, a 255-layer batch of 8 MiB. 16, 32
/// and 64 stripes sealed a cd volume equally fast on the 2-core machine of
/// README.md (the codec's per-call cost is small next to 212 runs), and
/// peak RSS at 2 threads was 74, 122 and 220 MB: the smallest wins.
pub(crate) const PARITY_BATCH_STRIPES: u32 = 16;

/// Batches in flight per worker: one being encoded, one read ahead.
const IN_FLIGHT_PER_WORKER: usize = 2;

/// One batch of stripes: the k data runs read back and the m parity runs
/// computed from them. Helpers that check sectors (per-sector records)
/// see both in [`finish_batch`], in stripe order.
pub(crate) struct StripeBatch {
    /// First stripe of the batch.
    first: u32,
    /// Stripes in the batch; runs are `count` sectors.
    count: u32,
    /// k data runs, room for [`PARITY_BATCH_STRIPES`] sectors each.
    data: Vec<Vec<u8>>,
    /// m parity runs, as large.
    parity: Vec<Vec<u8>>,
    /// CRC-32 of every sector of the runs (SPEC.md §16.13), data runs then
    /// parity runs, `count` per run: computed beside the encoding, on the
    /// worker, so the calling thread only stores them.
    crcs: Vec<u32>,
}

impl StripeBatch {
    fn new(geometry: &ParityGeometry, stripes: u32) -> Self {
        let room = stripes as usize * SECTOR;
        Self {
            first: 0,
            count: 0,
            data: vec![vec![0; room]; usize::from(geometry.k())],
            parity: vec![vec![0; room]; usize::from(geometry.m())],
            crcs: Vec::with_capacity(usize::from(geometry.layers()) * stripes as usize),
        }
    }

    fn run_len(&self) -> usize {
        self.count as usize * SECTOR
    }

    fn encode(&mut self, encoder: &mut StripeEncoder) {
        let run = self.run_len();
        let data: Vec<&[u8]> = self.data.iter().map(|buf| &buf[..run]).collect();
        let mut parity: Vec<&mut [u8]> =
            self.parity.iter_mut().map(|buf| &mut buf[..run]).collect();
        encoder
            .encode(&data, &mut parity)
            .expect("runs of whole sectors for the geometry's k and m");
        self.crcs.clear();
        for buf in self.data.iter().chain(&self.parity) {
            self.crcs
                .extend(buf[..run].chunks_exact(SECTOR).map(sector_crc));
        }
    }
}

/// Writes the parity layers of the volume whose data span `sink` holds,
/// then appends the parity digest block; returns the block's BLAKE3.
/// `threads` workers encode (the calling thread alone with one).
///
/// Memory: `threads` × 2 batches of (k + m) runs of 32 KiB (32 MiB at 255
/// layers and 2 threads), each thread's encoder (about as much as a batch
/// again), the digest block and its per-layer state.
///
/// # Errors
///
/// [`OptionError::ParityNeedsPositionedSink`] if the sink cannot read back
/// or write at an offset, or the sink's own error.
pub(crate) fn write_parity<S: VolumeSink + ?Sized>(
    sink: &mut S,
    geometry: &ParityGeometry,
    threads: usize,
) -> Result<[u8; 32], Error> {
    write_parity_batched(sink, geometry, threads, PARITY_BATCH_STRIPES)
}

fn write_parity_batched<S: VolumeSink + ?Sized>(
    sink: &mut S,
    geometry: &ParityGeometry,
    threads: usize,
    stripes_per_batch: u32,
) -> Result<[u8; 32], Error> {
    let layer = geometry.layer_sectors();
    let batches = layer.div_ceil(stripes_per_batch) as usize;
    let mut digests = DigestStream::new(geometry);
    let mut checks = SectorChecks::new(geometry.checked_sectors());
    let workers = threads.min(batches);
    if workers <= 1 {
        let mut encoder = StripeEncoder::for_geometry(geometry);
        let mut batch = StripeBatch::new(geometry, stripes_per_batch);
        for index in 0..batches {
            read_batch(sink, geometry, index, stripes_per_batch, &mut batch)?;
            batch.encode(&mut encoder);
            finish_batch(sink, geometry, &batch, &mut digests, &mut checks)?;
        }
    } else {
        std::thread::scope(|scope| -> Result<(), Error> {
            let depth = workers * IN_FLIGHT_PER_WORKER;
            let mut to_workers = Vec::with_capacity(workers);
            let mut from_workers = Vec::with_capacity(workers);
            for _ in 0..workers {
                let (job_tx, job_rx) = mpsc::sync_channel::<StripeBatch>(depth);
                let (done_tx, done_rx) = mpsc::sync_channel::<StripeBatch>(depth);
                scope.spawn(move || {
                    let mut encoder = StripeEncoder::for_geometry(geometry);
                    for mut batch in job_rx {
                        batch.encode(&mut encoder);
                        if done_tx.send(batch).is_err() {
                            break;
                        }
                    }
                });
                to_workers.push(job_tx);
                from_workers.push(done_rx);
            }
            // Batch i goes to worker i mod n and comes back from it, so
            // receiving round-robin finishes batches in stripe order. On an
            // error the channels drop and the workers end.
            let mut free = Vec::with_capacity(depth);
            let (mut sent, mut finished) = (0, 0);
            while finished < batches {
                while sent < batches && sent - finished < depth {
                    let mut batch = free
                        .pop()
                        .unwrap_or_else(|| StripeBatch::new(geometry, stripes_per_batch));
                    read_batch(sink, geometry, sent, stripes_per_batch, &mut batch)?;
                    to_workers[sent % workers]
                        .send(batch)
                        .expect("a parity worker lives while its channel is open");
                    sent += 1;
                }
                let batch = from_workers[finished % workers]
                    .recv()
                    .expect("a parity worker answers every batch it was sent");
                finish_batch(sink, geometry, &batch, &mut digests, &mut checks)?;
                free.push(batch);
                finished += 1;
            }
            Ok(())
        })?;
    }
    let block = digests.finish();
    sink.append(&block)?;
    // The check block, a CRC-32 per sector (SPEC.md §16.13).
    sink.append(&checks.block())?;
    Ok(*blake3::hash(&block).as_bytes())
}

fn unsupported() -> Error {
    Error::option(OptionError::ParityNeedsPositionedSink)
}

/// Reads the k data runs of batch `index` into `batch`: layer j's sectors
/// from the batch's first stripe on, zeros for virtual sectors past the
/// data span.
fn read_batch<S: VolumeSink + ?Sized>(
    sink: &mut S,
    geometry: &ParityGeometry,
    index: usize,
    stripes_per_batch: u32,
    batch: &mut StripeBatch,
) -> Result<(), Error> {
    let layer = u64::from(geometry.layer_sectors());
    let data_len = geometry.data_sectors() * SECTOR_BYTES;
    let first = index as u32 * stripes_per_batch;
    batch.first = first;
    batch.count = stripes_per_batch.min(geometry.layer_sectors() - first);
    let run = batch.run_len();
    for (j, buf) in batch.data.iter_mut().enumerate() {
        let start = (j as u64 * layer + u64::from(first)) * SECTOR_BYTES;
        let stored = data_len.saturating_sub(start).min(run as u64) as usize;
        buf[stored..run].fill(0);
        if stored > 0 {
            sink.read_back(start, &mut buf[..stored])?
                .ok_or_else(unsupported)?;
        }
    }
    Ok(())
}

/// Writes the m parity runs of an encoded batch at their layer-major places
/// and feeds them to the digest block, in stripe order, and records the
/// CRC-32 of every stored sector of the batch (SPEC.md §16.13): data run j
/// holds sectors j·L + first.. (only those below n_d are stored: the rest
/// are virtual zeros), parity run q holds sectors n_d + q·L + first.., each
/// `batch.count` sectors long.
fn finish_batch<S: VolumeSink + ?Sized>(
    sink: &mut S,
    geometry: &ParityGeometry,
    batch: &StripeBatch,
    digests: &mut DigestStream,
    checks: &mut SectorChecks,
) -> Result<(), Error> {
    let layer = u64::from(geometry.layer_sectors());
    let data_sectors = geometry.data_sectors();
    let data_len = data_sectors * SECTOR_BYTES;
    let run = batch.run_len();
    for (j, data) in batch.data.iter().enumerate() {
        let start = j as u64 * layer + u64::from(batch.first);
        let stored = data_sectors
            .saturating_sub(start)
            .min(u64::from(batch.count));
        if stored > 0 {
            checks.record(start, &data[..(stored * SECTOR_BYTES) as usize]);
        }
    }
    for (q, out) in batch.parity.iter().enumerate() {
        let at = data_len + (q as u64 * layer + u64::from(batch.first)) * SECTOR_BYTES;
        sink.write_at(at, &out[..run])?.ok_or_else(unsupported)?;
        digests.record(q as u16, u64::from(batch.first), &out[..run]);
        checks.record(at / SECTOR_BYTES, &out[..run]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemorySink;
    use crate::parity::encode_parity;

    /// A data span of distinct sectors, written to a fresh memory volume.
    fn sink_with_data(geometry: &ParityGeometry) -> (MemorySink, Vec<u8>) {
        let len = geometry.data_sectors() as usize * SECTOR;
        let data: Vec<u8> = (0..len).map(|i| (i / SECTOR * 13 + i * 7) as u8).collect();
        let mut sink = MemorySink::new();
        sink.start_volume(1).expect("memory");
        sink.append(&data).expect("memory");
        (sink, data)
    }

    #[test]
    fn every_batch_size_and_thread_count_writes_the_serial_parity() {
        for (data_sectors, percent) in [(3, 20), (212 * 45 + 3, 20), (85 * 33, 200)] {
            let geometry = ParityGeometry::from_data(data_sectors, percent).expect("valid");
            let (_, data) = sink_with_data(&geometry);
            let parity = encode_parity(&geometry, &data, 64).expect("encodes");
            let block = geometry.digest_block(&parity);
            let mut expected = data.clone();
            expected.extend_from_slice(&parity);
            let mut checks = SectorChecks::new(geometry.checked_sectors());
            checks.record(0, &expected);
            expected.extend_from_slice(&block);
            expected.extend_from_slice(&checks.block());
            for (threads, stripes) in [(1, 32), (2, 1), (2, 32), (3, 7), (8, 64)] {
                let (mut sink, _) = sink_with_data(&geometry);
                let hash = write_parity_batched(&mut sink, &geometry, threads, stripes)
                    .expect("memory sink");
                assert_eq!(hash, *blake3::hash(&block).as_bytes());
                let volumes = sink.into_volumes();
                assert!(
                    volumes[0] == expected,
                    "{data_sectors} sectors at {percent} %, {threads} threads, {stripes} stripes"
                );
            }
        }
    }

    /// Reads back nothing: a stream.
    struct Stream;

    impl VolumeSink for Stream {
        fn start_volume(&mut self, _: u32) -> std::io::Result<()> {
            Ok(())
        }
        fn append(&mut self, _: &[u8]) -> std::io::Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_sink_without_read_back_is_refused_on_every_path() {
        let geometry = ParityGeometry::from_data(212 * 45, 20).expect("valid");
        for threads in [1, 2] {
            let err = write_parity(&mut Stream, &geometry, threads).expect_err("no read-back");
            assert!(
                matches!(
                    err,
                    Error::InvalidOption {
                        reason: OptionError::ParityNeedsPositionedSink
                    }
                ),
                "{err:?}"
            );
        }
    }
}
