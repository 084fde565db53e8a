//! Writing parity volumes (SPEC.md §17.4): one pass over the whole set,
//! after its last data volume, in batches of 32 stripes.

use std::io::{Seek, SeekFrom, Write};

use crate::chunk_digest::DIGEST_LEN;
use crate::error::{Error, Location, OptionError, Volume};
use crate::format::{SECTOR, SET_ID_LEN};
use crate::header::read_header;
use crate::parity::StripeEncoder;
use crate::parity::across::format::{DataEntry, MAX_DATA_LEN, MAX_SHARDS, ParityHead};
use crate::parity::across::{GROUP_STRIPES, batch_stripes, read_error, read_run, sectors_of};
use crate::volumes::VolumeSource;

/// Writes one parity volume into each of `out` (P = `out.len()`, parity
/// volume q into `out[q − 1]`, each from its start) over the data volumes
/// `data`, volume 1 first, so that any P of them can be rebuilt.
///
/// Reads every data volume once, in stripe order; holds one batch of
/// stripes, (n + P) × 64 KiB × 1 to 16 (at most 32 MiB unless n + P > 16 ×
/// 32), whatever the volumes' size. The head at each
/// output's start is written last (it records every data volume's BLAKE3):
/// until this returns, the outputs are incomplete, so write them under
/// temporary names.
///
/// ```
/// use std::io::{Cursor, Write};
/// use kuvert::{MemorySink, ParitySet, Sealer, X25519Identity, write_parity_volumes};
///
/// let identity = X25519Identity::generate()?;
/// let mut writer = Sealer::new()
///     .recipient(identity.to_public())
///     .chunk_size(4096)
///     .volume_size(64 << 10)
///     .seal(MemorySink::new())?;
/// writer.write_all(&[7u8; 150_000])?;
/// let volumes = writer.finish()?.into_volumes();
/// let mut parity = vec![Cursor::new(Vec::new())];
/// write_parity_volumes(&volumes, &mut parity)?;
///
/// // Volume 2 is lost in the post: any one comes back, byte for byte.
/// let parity: Vec<Vec<u8>> = parity.into_iter().map(Cursor::into_inner).collect();
/// let given = vec![volumes[0].clone(), volumes[2].clone()];
/// let set = ParitySet::assemble(given, parity)?;
/// assert_eq!(set.missing(), vec![2]);
/// let mut rebuilt = Vec::new();
/// set.rebuild(2, &mut rebuilt)?;
/// assert_eq!(rebuilt, volumes[1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`Error::InvalidOption`] with [`OptionError::ParityVolumes`] unless
/// 1 ≤ P ≤ n and n + P ≤ 255 (or a volume is above 2^50 bytes); the header errors of
/// [`inspect`](crate::inspect) for a data volume;
/// [`Error::ForeignVolume`] for a volume of another set;
/// [`Error::VolumeMissing`] if the volumes are not 1 to n in order;
/// [`Error::Read`] naming the volume and byte; [`Error::Io`] writing.
pub fn write_parity_volumes<S: VolumeSource, W: Write + Seek>(
    data: &[S],
    out: &mut [W],
) -> Result<(), Error> {
    let (n, parity) = (data.len(), out.len());
    if parity == 0 || parity > n || n + parity > MAX_SHARDS {
        return Err(Error::InvalidOption {
            reason: OptionError::ParityVolumes {
                parity_volumes: parity,
                data_volumes: n,
            },
        });
    }
    let mut set_id = [0u8; SET_ID_LEN];
    let mut lens = Vec::with_capacity(n);
    for (i, source) in data.iter().enumerate() {
        let (header, len) = read_header(source, i + 1)?;
        let at = Location::new(Volume::Input(i + 1)).name(source.name());
        if i == 0 {
            set_id = header.set.set_id;
        } else if header.set.set_id != set_id {
            return Err(Error::ForeignVolume {
                at,
                volume: header.volume,
            });
        }
        if header.volume as usize != i + 1 {
            return Err(Error::VolumeMissing {
                volume: u32::try_from(i + 1).expect("n ≤ 254"),
            });
        }
        if len > MAX_DATA_LEN {
            return Err(Error::InvalidOption {
                reason: OptionError::ParityVolumes {
                    parity_volumes: parity,
                    data_volumes: n,
                },
            });
        }
        lens.push(len);
    }
    let mut targets: Vec<(u16, &mut W)> = out
        .iter_mut()
        .enumerate()
        .map(|(q, w)| (u16::try_from(q + 1).expect("P ≤ 254"), w))
        .collect();
    encode_set(data, &lens, set_id, parity as u16, &mut targets)
}

/// Writes parity volumes `targets` (index q, output) of a code with
/// `parity` parity volumes over `data` of lengths `lens` and set id
/// `set_id`: the part of [`write_parity_volumes`] after its checks, also
/// the vectors' writer.
pub(crate) fn encode_set<S: VolumeSource, W: Write + Seek>(
    data: &[S],
    lens: &[u64],
    set_id: [u8; SET_ID_LEN],
    parity: u16,
    targets: &mut [(u16, &mut W)],
) -> Result<(), Error> {
    let n = u16::try_from(data.len()).expect("n ≤ 254, checked");
    let body_sectors = lens.iter().map(|&len| sectors_of(len)).max().unwrap_or(0);
    let mut head = ParityHead {
        parity,
        index: 1,
        set_id,
        body_sectors,
        digest_block_hash: [0; DIGEST_LEN],
        volumes: lens
            .iter()
            .map(|&len| DataEntry {
                len,
                blake3: [0; DIGEST_LEN],
            })
            .collect(),
    };
    let head_len = head.body_offset();
    for (_, out) in targets.iter_mut() {
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&vec![0u8; head_len as usize])?;
    }
    let batch_stripes = batch_stripes(data.len() + usize::from(parity));
    let batch = (batch_stripes * SECTOR) as usize;
    let mut runs = vec![vec![0u8; batch]; data.len()];
    let mut parity_runs = vec![vec![0u8; batch]; usize::from(parity)];
    let mut hashers: Vec<blake3::Hasher> = data.iter().map(|_| blake3::Hasher::new()).collect();
    let mut digests: Vec<Vec<u8>> = targets
        .iter()
        .map(|_| Vec::with_capacity((head.groups() as usize) * DIGEST_LEN))
        .collect();
    let mut encoder = StripeEncoder::new(n, parity).expect("counts checked");
    let mut stripe = 0;
    while stripe < body_sectors {
        let count = (body_sectors - stripe).min(batch_stripes);
        let run_len = (count * SECTOR) as usize;
        let offset = stripe * SECTOR;
        for (v, (source, run)) in data.iter().zip(runs.iter_mut()).enumerate() {
            let run = &mut run[..run_len];
            read_run(source, lens[v], offset, run)
                .map_err(|err| read_error(source, v + 1, offset, err))?;
            let real = lens[v].saturating_sub(offset).min(run_len as u64) as usize;
            hashers[v].update(&run[..real]);
        }
        let inputs: Vec<&[u8]> = runs.iter().map(|run| &run[..run_len]).collect();
        let mut outputs: Vec<&mut [u8]> = parity_runs
            .iter_mut()
            .map(|run| &mut run[..run_len])
            .collect();
        encoder
            .encode(&inputs, &mut outputs)
            .expect("runs of equal whole sectors");
        for ((q, out), digest) in targets.iter_mut().zip(digests.iter_mut()) {
            let run = &parity_runs[usize::from(*q - 1)][..run_len];
            out.write_all(run)?;
            for group in run.chunks((GROUP_STRIPES * SECTOR) as usize) {
                digest.extend_from_slice(blake3::hash(group).as_bytes());
            }
        }
        stripe += count;
    }
    for (entry, hasher) in head.volumes.iter_mut().zip(hashers) {
        entry.blake3 = *hasher.finalize().as_bytes();
    }
    for ((q, out), mut digest) in targets.iter_mut().zip(digests) {
        digest.resize((head.digest_sectors() * SECTOR) as usize, 0);
        head.index = *q;
        head.digest_block_hash = *blake3::hash(&digest).as_bytes();
        out.write_all(&digest)?;
        let bytes = head.encode();
        out.write_all(&bytes)?;
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&bytes)?;
        out.seek(SeekFrom::Start(head.file_len()))?;
        out.flush()?;
    }
    Ok(())
}
