//! Rebuilding data volumes from parity volumes (SPEC.md §17.5): which
//! volumes of a set are there, and any P missing ones rebuilt byte for
//! byte, without any key.

use std::io::Write;

use crate::chunk_digest::DIGEST_LEN;
use crate::error::{Error, Location, Volume};
use crate::format::SECTOR;
use crate::header::read_header;
use crate::parity::StripeDecoder;
use crate::parity::across::format::{ParityHead, read_head};
use crate::parity::across::{GROUP_STRIPES, batch_stripes, parity_location, read_run};
use crate::volumes::VolumeSource;

/// A parity volume given, with its digests if its digest block is intact.
struct Member<Q> {
    source: Q,
    /// Its body's group digests; `None` if the digest block does not match
    /// the head: then no sector of it can be trusted, and none is used.
    digests: Option<Vec<[u8; DIGEST_LEN]>>,
}

/// What [`ParitySet::check_parity`] found in one parity volume.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParityVolumeCheck {
    /// Its index q, from 1 (`STEM.pNN.kuv`).
    pub index: u16,
    /// Its source's name.
    pub name: Option<String>,
    /// Sectors of its body, one per stripe.
    pub body_sectors: u64,
    /// Body sectors that cannot be used: unreadable, in a group whose
    /// digest fails, or all of them if the digest block fails.
    pub damaged_sectors: u64,
}

impl ParityVolumeCheck {
    /// Whether every body sector can be used.
    pub fn is_intact(&self) -> bool {
        self.damaged_sectors == 0
    }
}

/// The data volumes and parity volumes of one set, as given: which are
/// there, and the missing ones rebuilt ([`rebuild`](Self::rebuild)).
pub struct ParitySet<S, Q> {
    head: ParityHead,
    /// By volume number − 1: a data volume given whose header names this
    /// set and whose length is the one recorded.
    data: Vec<Option<S>>,
    /// By parity index − 1.
    parity: Vec<Option<Member<Q>>>,
    /// Positions (from 1) of data volumes given but not used: not of this
    /// set, a header that cannot be read, a length other than recorded, or
    /// a second copy.
    ignored: Vec<usize>,
}

impl<S: VolumeSource, Q: VolumeSource> ParitySet<S, Q> {
    /// Sorts `volumes` (data volumes, in any order, any of them missing)
    /// and `parity_volumes` into one set, reading only headers and the
    /// parity volumes' heads and digest blocks.
    ///
    /// # Errors
    ///
    /// [`Error::NoParity`] if no parity volume is given;
    /// [`Error::MalformedParityVolume`] for one whose head is unusable, of
    /// another set than the first, or given twice; [`Error::Read`].
    pub fn assemble(volumes: Vec<S>, parity_volumes: Vec<Q>) -> Result<Self, Error> {
        let (head, parity) = sort_parity(parity_volumes)?;
        let mut data: Vec<Option<S>> = head.volumes.iter().map(|_| None).collect();
        let mut ignored = Vec::new();
        for (i, source) in volumes.into_iter().enumerate() {
            let fits = read_header(&source, i + 1).ok().and_then(|(header, len)| {
                let v = header.volume as usize;
                let entry = head.volumes.get(v.checked_sub(1)?)?;
                (header.set.set_id == head.set_id && entry.len == len && data[v - 1].is_none())
                    .then_some(v - 1)
            });
            match fits {
                Some(slot) => data[slot] = Some(source),
                None => ignored.push(i + 1),
            }
        }
        Ok(ParitySet {
            head,
            data,
            parity,
            ignored,
        })
    }

    /// As [`assemble`](Self::assemble), with the data volumes already
    /// sorted by number (`None` where missing) and no header read: for
    /// the vectors, whose data volumes are bytes by rule, not volumes.
    pub(crate) fn by_number(data: Vec<Option<S>>, parity_volumes: Vec<Q>) -> Result<Self, Error> {
        let (head, parity) = sort_parity(parity_volumes)?;
        let mut data = data;
        data.resize_with(head.volumes.len(), || None);
        Ok(ParitySet {
            head,
            data,
            parity,
            ignored: Vec::new(),
        })
    }

    /// Stops using data volume `volume` (from 1): it was given but found
    /// damaged (its keyless check failed), so it counts as missing and is
    /// rebuilt, and never used to rebuild another.
    pub fn exclude(&mut self, volume: u32) {
        if let Some(slot) = usize::try_from(volume)
            .ok()
            .and_then(|v| v.checked_sub(1))
            .and_then(|v| self.data.get_mut(v))
        {
            *slot = None;
        }
    }

    /// Data volumes in the set, n.
    pub fn data_volumes(&self) -> u32 {
        u32::from(self.head.data_volumes())
    }

    /// Parity volumes of the set, P, given or not.
    pub fn parity_volumes(&self) -> u16 {
        self.head.parity
    }

    /// The data volumes not given (or not usable), from 1.
    pub fn missing(&self) -> Vec<u32> {
        numbers(self.data.iter().map(Option::is_none))
    }

    /// The parity volumes not given, from 1.
    pub fn missing_parity(&self) -> Vec<u16> {
        numbers(self.parity.iter().map(Option::is_none))
            .into_iter()
            .map(|q| q as u16)
            .collect()
    }

    /// Positions (from 1) of the data volumes given but not used.
    pub fn ignored(&self) -> &[usize] {
        &self.ignored
    }

    /// The length of data volume `volume` (from 1), as recorded.
    pub fn volume_len(&self, volume: u32) -> Option<u64> {
        let slot = usize::try_from(volume).ok()?.checked_sub(1)?;
        self.head.volumes.get(slot).map(|entry| entry.len)
    }

    /// Checks every parity volume given against its digests.
    ///
    /// # Errors
    ///
    /// None for damage (it is counted); reserved for future use.
    pub fn check_parity(&self) -> Result<Vec<ParityVolumeCheck>, Error> {
        let mut checks = Vec::new();
        for (q, member) in self.parity.iter().enumerate() {
            let Some(member) = member else { continue };
            let mut damaged = 0;
            let mut run = vec![0u8; (GROUP_STRIPES * SECTOR) as usize];
            for group in 0..self.head.groups() {
                let count = self.group_sectors(group);
                if !self.group_usable(member, group, &mut run[..(count * SECTOR) as usize]) {
                    damaged += count;
                }
            }
            checks.push(ParityVolumeCheck {
                index: q as u16 + 1,
                name: member.source.name().map(str::to_owned),
                body_sectors: self.head.body_sectors,
                damaged_sectors: damaged,
            });
        }
        Ok(checks)
    }

    /// Rebuilds data volume `volume` (from 1; given or not: a given copy
    /// is not used) into `out`, byte for byte as it was sealed, from the
    /// other data volumes and the parity volumes. A parity sector that is
    /// unreadable or fails its digest, or an unreadable sector of another
    /// data volume, is one more erasure in its stripe.
    ///
    /// `out` receives the volume in order before its BLAKE3 is checked at
    /// the end: write it under a temporary name.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyMissing`] if fewer than n data and parity volumes
    /// are left to rebuild from; [`Error::Unrecoverable`] naming the first
    /// stripe that lost more than P sectors; [`Error::RebuiltMismatch`] if
    /// the result does not match the BLAKE3 the heads record;
    /// [`Error::VolumeMissing`] for a volume number outside 1..=n;
    /// [`Error::Io`] writing `out`.
    pub fn rebuild<W: Write + ?Sized>(&self, volume: u32, out: &mut W) -> Result<(), Error> {
        let n = usize::from(self.head.data_volumes());
        let target = usize::try_from(volume)
            .ok()
            .and_then(|v| v.checked_sub(1))
            .filter(|&v| v < n)
            .ok_or(Error::VolumeMissing { volume })?;
        let m = usize::from(self.head.parity);
        let mut missing: Vec<u32> = self.missing();
        if !missing.contains(&volume) {
            missing.push(volume);
            missing.sort_unstable();
        }
        let usable = self
            .parity
            .iter()
            .flatten()
            .filter(|member| member.digests.is_some())
            .count();
        if missing.len() > usable {
            return Err(Error::TooManyMissing {
                missing,
                parity_volumes: usable as u16,
            });
        }
        let entry = self.head.volumes[target];
        let groups = entry.len.div_ceil(SECTOR).div_ceil(GROUP_STRIPES);
        let batch = batch_stripes(n + m);
        let mut runs = vec![vec![0u8; (batch * SECTOR) as usize]; n + m];
        let mut decoder =
            StripeDecoder::new(self.head.data_volumes(), self.head.parity).expect("counts checked");
        let mut hasher = blake3::Hasher::new();
        let group_bytes = (GROUP_STRIPES * SECTOR) as usize;
        let mut first_group = 0;
        while first_group < groups {
            let end_group = groups.min(first_group + batch / GROUP_STRIPES);
            // Each group's erasures, read into its place in the batch.
            let mut lost_sets: Vec<Vec<u16>> = Vec::new();
            for group in first_group..end_group {
                let at = (group - first_group) as usize * group_bytes;
                let len = (self.group_sectors(group) * SECTOR) as usize;
                let offset = group * GROUP_STRIPES * SECTOR;
                let mut lost = Vec::new();
                for (v, run) in runs[..n].iter_mut().enumerate() {
                    let run = &mut run[at..at + len];
                    let read = match &self.data[v] {
                        Some(source) if v != target => {
                            read_run(source, self.head.volumes[v].len, offset, run).is_ok()
                        }
                        _ => false,
                    };
                    if !read {
                        run.fill(0);
                        lost.push(v as u16);
                    }
                }
                for (q, run) in runs[n..].iter_mut().enumerate() {
                    let run = &mut run[at..at + len];
                    let usable = self.parity[q]
                        .as_ref()
                        .is_some_and(|member| self.group_usable(member, group, run));
                    if !usable {
                        run.fill(0);
                        lost.push((n + q) as u16);
                    }
                }
                if lost.len() > m {
                    return Err(Error::Unrecoverable {
                        at: Location::volume(volume).byte(offset),
                        stripe: group * GROUP_STRIPES,
                        lost: lost.len(),
                        m: self.head.parity,
                    });
                }
                lost_sets.push(lost);
            }
            // One codec call per run of groups that lost the same volumes.
            let mut start = 0;
            while start < lost_sets.len() {
                let mut end = start + 1;
                while end < lost_sets.len() && lost_sets[end] == lost_sets[start] {
                    end += 1;
                }
                let from = start * group_bytes;
                let last = first_group + end as u64 - 1;
                let to = (end - 1) * group_bytes + (self.group_sectors(last) * SECTOR) as usize;
                let mut layers: Vec<&mut [u8]> =
                    runs.iter_mut().map(|run| &mut run[from..to]).collect();
                decoder
                    .restore(
                        (first_group + start as u64) * GROUP_STRIPES,
                        &mut layers,
                        &lost_sets[start],
                    )
                    .expect("at most m runs lost, of equal whole sectors");
                start = end;
            }
            let offset = first_group * GROUP_STRIPES * SECTOR;
            let batch_len = (end_group - first_group) as usize * group_bytes;
            let real = entry.len.saturating_sub(offset).min(batch_len as u64) as usize;
            let bytes = &runs[target][..real];
            hasher.update(bytes);
            out.write_all(bytes)?;
            first_group = end_group;
        }
        out.flush()?;
        if *hasher.finalize().as_bytes() != entry.blake3 {
            return Err(Error::RebuiltMismatch { volume });
        }
        Ok(())
    }

    /// Sectors of digest group `group` of the body (the last one shorter).
    fn group_sectors(&self, group: u64) -> u64 {
        (self.head.body_sectors - group * GROUP_STRIPES).min(GROUP_STRIPES)
    }

    /// Reads group `group` of `member`'s body into `run` and says whether
    /// it is readable and matches its digest.
    fn group_usable(&self, member: &Member<Q>, group: u64, run: &mut [u8]) -> bool {
        let Some(digests) = &member.digests else {
            return false;
        };
        let offset = self.head.body_offset() + group * GROUP_STRIPES * SECTOR;
        member.source.read_exact_at(run, offset).is_ok()
            && digests.get(group as usize) == Some(blake3::hash(run).as_bytes())
    }
}

impl<S, Q> std::fmt::Debug for ParitySet<S, Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParitySet")
            .field("data_volumes", &self.head.volumes.len())
            .field("parity_volumes", &self.head.parity)
            .field("given", &self.data.iter().filter(|d| d.is_some()).count())
            .field("ignored", &self.ignored)
            .finish_non_exhaustive()
    }
}

/// The heads of `parity_volumes`, checked to agree, and each volume in the
/// slot of its index.
#[allow(clippy::type_complexity)]
fn sort_parity<Q: VolumeSource>(
    parity_volumes: Vec<Q>,
) -> Result<(ParityHead, Vec<Option<Member<Q>>>), Error> {
    let mut heads = Vec::with_capacity(parity_volumes.len());
    for (i, source) in parity_volumes.iter().enumerate() {
        heads.push(read_head(source, i + 1)?);
    }
    let Some(head) = heads.first().cloned() else {
        return Err(Error::NoParity {
            at: Location::new(Volume::Input(1)),
        });
    };
    let mut parity: Vec<Option<Member<Q>>> = (0..head.parity).map(|_| None).collect();
    for (i, (source, this)) in parity_volumes.into_iter().zip(heads).enumerate() {
        let malformed = |reason| Error::MalformedParityVolume {
            at: parity_location(&source, i + 1),
            reason,
        };
        if !this.same_set(&head) {
            return Err(malformed(
                "of another set, or disagrees with the first parity volume given",
            ));
        }
        let slot = &mut parity[usize::from(this.index - 1)];
        if slot.is_some() {
            return Err(malformed("the same parity volume given twice"));
        }
        let digests = read_digests(&source, &this);
        *slot = Some(Member { source, digests });
    }
    Ok((head, parity))
}

/// The group digests of a parity volume, if its digest block matches the
/// head's hash of it (and can be read).
fn read_digests<Q: VolumeSource>(source: &Q, head: &ParityHead) -> Option<Vec<[u8; DIGEST_LEN]>> {
    let mut block = vec![0u8; (head.digest_sectors() * SECTOR) as usize];
    source
        .read_exact_at(&mut block, head.digest_offset())
        .ok()?;
    if *blake3::hash(&block).as_bytes() != head.digest_block_hash {
        return None;
    }
    Some(
        block
            .chunks_exact(DIGEST_LEN)
            .take(head.groups() as usize)
            .map(|digest| digest.try_into().expect("32 bytes"))
            .collect(),
    )
}

/// The positions (from 1) where `flags` is true.
fn numbers(flags: impl Iterator<Item = bool>) -> Vec<u32> {
    flags
        .enumerate()
        .filter(|(_, flag)| *flag)
        .map(|(i, _)| i as u32 + 1)
        .collect()
}
