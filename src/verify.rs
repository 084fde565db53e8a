//! Verifying volumes on their own (SPEC.md §7.4), for checking a disc right
//! after burning it: [`Opener::verify_volume`] (stops at the first damage),
//! [`Opener::scan_volume`] (maps all of it), [`VolumeVerifier`] for many
//! volumes, and the [`VolumeReport`] each gives. Whole sets: `set`.

mod keyless;
mod set;
mod signed;

use std::fmt;
use std::io;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::damage::{self, ChunkPlace, Damage, DamageKind, DamageMap};
use crate::error::{Error, Location, Volume};
use crate::format::{ChunkFlag, Header, SET_ID_LEN, TAG_LEN};
use crate::header::{read_header, read_trailer};
use crate::keys::FileKey;
use crate::last_chunk::LastChunk;
use crate::open::Opener;
use crate::open_repair::VolumeSlot;
use crate::repair::RepairReport;
use crate::signature_check::{self, SetPosition, SignatureStatus};
use crate::stream::ChunkCipher;
use crate::volumes::{VolumeSource, location};

pub use keyless::{DigestReport, scan_digests, verify_digests};
pub use set::{Rejected, Rejection, SetCheck, SetReport};
pub use signed::{SignedReport, verify_signed_set, verify_signed_volume};

/// The outcome of verifying one volume on its own.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeReport {
    /// Volume number, from 1 (authenticated).
    pub volume: u32,
    /// Id of the set the volume belongs to.
    pub set_id: [u8; SET_ID_LEN],
    /// SHA-256 of the header's set part (SPEC.md §3.2), authenticated.
    /// Volumes open as one set only if this is equal (SPEC.md §7.2): two
    /// that share a set id but differ here (other stanzas, say) do not.
    pub set_digest: [u8; 32],
    /// Chunks in the volume (wholly or partly there); all authenticated
    /// but those in [`damage`](Self::damage).
    pub chunks: u64,
    /// Payload bytes the volume carries (on volume 1 these include the
    /// 4-byte payload prefix, SPEC.md §6.7).
    pub plaintext_len: u64,
    /// Whether this is the last volume of its set (false if its last
    /// chunk is damaged: then nobody can tell).
    pub last_in_set: bool,
    /// Every damaged run of the volume, in chunk order: always empty from
    /// [`Opener::verify_volume`] and [`VolumeVerifier::verify`], which fail
    /// instead.
    pub damage: DamageMap,
    /// Who signed the volume: [`SignatureStatus::Checked`] with
    /// [`Opener::require_signer`] (verifying fails otherwise, and every
    /// chunk is also checked against the signed table), else the signer
    /// block's unchecked claim or [`SignatureStatus::Unsigned`].
    pub signature: SignatureStatus,
    /// For a damaged volume with parity, when [`Opener::repair`] is on
    /// and all of the damage is repairable: what the repair found, checked
    /// by authenticating every chunk of the repaired volume again. The
    /// data is whole; the medium needs refreshing (`kuvert repair`).
    /// `None` for an intact volume, one without parity, and damage past
    /// the parity's margin.
    pub repair: Option<RepairReport>,
}

/// A volume scanned to its end, and the error [`Opener::verify_volume`]
/// gives for it: the first damage, its last chunk checked first.
pub(crate) struct Scanned {
    pub(crate) report: VolumeReport,
    pub(crate) first_error: Option<Error>,
}

impl Opener {
    /// Authenticates every chunk of one volume without the rest of its set,
    /// for checking a disc right after burning it. Chunks are authenticated
    /// on the opener's threads.
    ///
    /// # Errors
    ///
    /// As [`Opener::open`], for this volume alone; a full volume that ends
    /// with an end-of-volume chunk is intact and reported with
    /// `last_in_set: false`.
    pub fn verify_volume<S: VolumeSource + Sync + ?Sized>(
        &self,
        volume: &S,
    ) -> Result<VolumeReport, Error> {
        let (header, len) = read_header(volume, 1)?;
        let file_key = self.unlock(&header)?.file_key;
        self.verify_with(volume, &header, len, &file_key)
    }

    /// Checks every chunk of one volume as [`verify_volume`](Self::verify_volume)
    /// does, but goes on past damage (unreadable ranges, chunks that do not
    /// authenticate, a cut, trailing bytes) and reports all of it in
    /// [`VolumeReport::damage`].
    ///
    /// # Errors
    ///
    /// Only when nothing of the volume can be checked: header errors,
    /// [`Error::NoMatchingKey`], [`Error::WrongPassphrase`],
    /// [`Error::HeaderDamaged`].
    pub fn scan_volume<S: VolumeSource + Sync + ?Sized>(
        &self,
        volume: &S,
    ) -> Result<VolumeReport, Error> {
        let (header, len) = read_header(volume, 1)?;
        let file_key = self.unlock(&header)?.file_key;
        Ok(self
            .scan_with(
                volume,
                &header,
                len,
                &file_key,
                self.repair_settings().enabled,
            )?
            .report)
    }

    /// A verifier for several volumes that unlocks each distinct set header
    /// once: with a passphrase, one Argon2id run per set, not per volume.
    pub fn volume_verifier(&self) -> VolumeVerifier<'_> {
        VolumeVerifier {
            opener: self,
            keys: Vec::new(),
        }
    }

    /// Verifies `volume`, whose header is read and unlocked to `file_key`
    /// (SPEC.md §7.4 steps 2 to 4), failing at its first damage.
    fn verify_with<S: VolumeSource + Sync + ?Sized>(
        &self,
        volume: &S,
        header: &Header,
        len: u64,
        file_key: &FileKey,
    ) -> Result<VolumeReport, Error> {
        let scanned = self.scan_with(volume, header, len, file_key, false)?;
        match scanned.first_error {
            Some(err) => Err(err),
            None => Ok(scanned.report),
        }
    }

    /// Checks every chunk of `volume`, whose header is read and unlocked to
    /// `file_key`, to its end, mapping the damage; with `repair`, a damaged
    /// volume with parity is repaired into a scratch copy, which is checked
    /// again ([`VolumeReport::repair`]).
    pub(crate) fn scan_with<S: VolumeSource + Sync + ?Sized>(
        &self,
        volume: &S,
        header: &Header,
        len: u64,
        file_key: &FileKey,
        repair: bool,
    ) -> Result<Scanned, Error> {
        let mut scanned = self.scan_damage(volume, header, len, file_key)?;
        if repair && !scanned.report.damage.is_empty() && header.set.parity.is_some() {
            let slot = VolumeSlot::new(volume, 1, self.repair_settings().clone());
            if slot.repaired().is_some() {
                let again = self.scan_damage(&slot, header, len, file_key)?;
                if again.first_error.is_none() {
                    scanned.report.repair = slot.repair_report().map(|r| r.report);
                }
            }
        }
        Ok(scanned)
    }

    /// [`scan_with`](Self::scan_with) of the volume as it is.
    fn scan_damage<S: VolumeSource + Sync + ?Sized>(
        &self,
        volume: &S,
        header: &Header,
        len: u64,
        file_key: &FileKey,
    ) -> Result<Scanned, Error> {
        let geometry = header.geometry();
        let number = header.volume;
        // The header is authenticated: a trailer's E is the volume's
        // length from here on (SPEC.md §7.4).
        let mut header = header.clone();
        let at = Location::volume(number).name(volume.name());
        let len = read_trailer(volume, &mut header, len, &at)?;
        let header = &header;
        // With required signers, refused before any chunk is opened.
        let signature = match self.required_signers().is_empty() {
            true => SignatureStatus::unchecked(&header.set.signers),
            false => {
                let checked = signature_check::check_volume(
                    volume,
                    header,
                    header.trailer.as_ref(),
                    self.required_signers(),
                    SetPosition::Unknown,
                    &at,
                )?;
                let principals = self.required_signers().principals(&checked.signer);
                SignatureStatus::Checked {
                    signer: checked.signer,
                    principals: principals.map(str::to_owned),
                }
            }
        };
        let cipher = ChunkCipher::new(&file_key.payload_key(&header.set.set_id));
        let first = geometry.first_chunk(number);
        let plain_len = geometry.plain_len() as u64;
        let name = volume.name();
        // Where the volume's chunks end, if a full volume's length is known.
        let (end_chunk, end_byte) = match geometry.full_volume_len() {
            Some(full) => (first + geometry.chunks_per_volume, full),
            None => (u64::MAX, u64::MAX),
        };
        let place = |chunk: u64, plain: u64| {
            let (_, offset) = geometry.locate(chunk);
            ChunkPlace {
                at: Location::volume(number)
                    .byte(offset)
                    .chunk(chunk)
                    .name(name),
                len: plain + TAG_LEN as u64,
                plaintext: damage::chunk_content(&geometry, chunk, plain),
            }
        };
        // What is lost from chunk `chunk` on, up to the volume's end.
        let lost_from = |chunk: u64, kind: DamageKind| {
            let (_, offset) = geometry.locate(chunk);
            let plaintext = if end_chunk == u64::MAX {
                damage::chunk_content(&geometry, chunk, 0).start..u64::MAX
            } else {
                let span = (end_chunk - chunk) * plain_len;
                damage::chunk_content(&geometry, chunk, span)
            };
            Damage {
                kind,
                at: Location::volume(number)
                    .byte(offset)
                    .chunk(chunk)
                    .name(name),
                chunks: chunk..end_chunk,
                bytes: offset..end_byte,
                plaintext,
                unreadable: None,
            }
        };
        // Bytes that hold no chunk, from `offset` to the volume's end.
        let trailing = |chunk: u64, offset: u64| {
            let at = damage::chunk_content(&geometry, chunk, 0);
            Damage {
                kind: DamageKind::TrailingData,
                at: Location::volume(number).byte(offset).name(name),
                chunks: chunk..chunk,
                bytes: offset..len,
                plaintext: at,
                unreadable: None,
            }
        };
        let mut map = DamageMap::new();
        let mut first_error = None;
        let mut report = VolumeReport {
            volume: number,
            set_id: header.set.set_id,
            set_digest: Sha256::digest(header.set_bytes()).into(),
            chunks: 0,
            plaintext_len: 0,
            last_in_set: false,
            damage: DamageMap::new(),
            signature,
            repair: None,
        };

        let mut usable = len;
        if len > end_byte {
            map.push(trailing(end_chunk, end_byte));
            first_error = Some(Error::TrailingData {
                at: location(volume, Volume::Number(number)).byte(end_byte),
            });
            usable = end_byte;
        }
        if usable <= geometry.data_offset {
            map.push(lost_from(first, DamageKind::Missing));
            report.damage = map;
            return Ok(Scanned {
                report,
                first_error: first_error.or(Some(Error::Truncated {
                    at: location(volume, Volume::Number(number)).byte(len),
                })),
            });
        }
        let last = LastChunk::locate(&geometry, number, usable, name)?;
        // Wiped on drop too: an error after the chunk opened leaves plaintext.
        let mut buf = Zeroizing::new(Vec::with_capacity(geometry.chunk_len()));
        // The last chunk first, as opening a set does, so that trailing
        // bytes and cuts are named as such rather than as a failed interior
        // chunk.
        let checked = last.authenticate(&cipher, &geometry, volume, &mut buf);
        buf.zeroize();
        let last_plain = last.len.saturating_sub(TAG_LEN) as u64;
        // Chunks before `interior_end` are checked below.
        let mut interior_end = last.chunk;
        report.chunks = last.chunk - first + 1;
        report.plaintext_len = (last.chunk - first) * plain_len + last_plain;
        match checked {
            Ok(flag) => report.last_in_set = flag == ChunkFlag::EndOfSet,
            Err(Error::TrailingData { at }) => {
                // The chunk before is the end of the set; a chunk's worth
                // or less of other bytes follows it.
                map.push(trailing(last.chunk, at.offset.unwrap_or(usable)));
                first_error.get_or_insert(Error::TrailingData { at });
                interior_end = last.chunk - 1;
                report.chunks -= 1;
                report.plaintext_len = report.chunks * plain_len;
                report.last_in_set = true;
            }
            Err(err @ Error::Truncated { .. }) => {
                // A whole chunk that opens as an interior one is intact:
                // what is lost starts after it.
                let intact = last.len == geometry.chunk_len() && {
                    buf.resize(last.len, 0);
                    let (_, offset) = geometry.locate(last.chunk);
                    let read = crate::volumes::read_at(
                        volume,
                        &mut buf,
                        offset,
                        Volume::Number(number),
                        None,
                    );
                    let opened =
                        read.is_ok() && cipher.open(last.chunk, ChunkFlag::Interior, &mut buf);
                    buf.zeroize();
                    opened
                };
                let lost = if intact { last.chunk + 1 } else { last.chunk };
                map.push(lost_from(lost, DamageKind::Missing));
                first_error.get_or_insert(err);
            }
            Err(err) => {
                let damage = place(last.chunk, last_plain).damage(last.chunk, &err);
                let Some(mut damage) = damage else {
                    return Err(err);
                };
                if matches!(damage.kind, DamageKind::Unreadable { .. }) {
                    damage.unreadable = damage::unreadable_in(volume, damage.bytes.clone());
                }
                map.push(damage);
                first_error.get_or_insert(err);
            }
        }
        if interior_end > first {
            let open = |chunk: u64, buf: &mut [u8]| {
                let (_, offset) = geometry.locate(chunk);
                let buf = &mut buf[..geometry.chunk_len()];
                crate::volumes::read_at(volume, buf, offset, Volume::Number(number), Some(chunk))?;
                if cipher.open(chunk, ChunkFlag::Interior, buf) {
                    Ok(geometry.plain_len())
                } else {
                    Err(Error::Unauthenticated {
                        chunk,
                        at: location(volume, Volume::Number(number))
                            .byte(offset)
                            .chunk(chunk),
                    })
                }
            };
            let mut record = |chunk: u64, err: Error| {
                if let Some(mut damage) = place(chunk, plain_len).damage(chunk, &err) {
                    if matches!(damage.kind, DamageKind::Unreadable { .. }) {
                        damage.unreadable = damage::unreadable_in(volume, damage.bytes.clone());
                    }
                    map.push(damage);
                }
                first_error.get_or_insert(err);
            };
            damage::open_through_damage(
                &geometry,
                self.thread_count().max(1),
                (first, interior_end - 1),
                0,
                u64::MAX,
                &open,
                &|_| geometry.plain_len(),
                &mut io::sink(),
                &mut record,
            )?;
        }
        if !self.required_signers().is_empty() {
            // The signed table vouches for every chunk's ciphertext: a
            // co-recipient's chunk authenticates, but does not match it.
            let digests = keyless::scan_digests(volume, self.thread_count().max(1))?;
            if let Some(first) = digests.damage.iter().next() {
                let chunk = (first.chunks.start < first.chunks.end).then_some(first.chunks.start);
                first_error.get_or_insert(Error::DigestMismatch {
                    chunk,
                    at: first.at.clone(),
                });
            }
            map.merge(digests.damage);
        }
        report.damage = map;
        Ok(Scanned {
            report,
            first_error,
        })
    }
}

/// Verifies volumes one at a time, remembering the file key of each set
/// header it has unlocked; see [`Opener::volume_verifier`].
pub struct VolumeVerifier<'a> {
    opener: &'a Opener,
    /// Set part of a header, and the file key it unlocked to.
    keys: Vec<(Vec<u8>, FileKey)>,
}

impl fmt::Debug for VolumeVerifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VolumeVerifier")
            .field("sets", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl VolumeVerifier<'_> {
    /// As [`Opener::verify_volume`], reusing keys already found.
    ///
    /// # Errors
    ///
    /// As [`Opener::verify_volume`].
    pub fn verify<S: VolumeSource + Sync + ?Sized>(
        &mut self,
        volume: &S,
    ) -> Result<VolumeReport, Error> {
        let (header, len) = read_header(volume, 1)?;
        let opener = self.opener;
        let key = self.key_for(&header)?;
        opener.verify_with(volume, &header, len, key)
    }

    /// As [`Opener::scan_volume`], reusing keys already found.
    ///
    /// # Errors
    ///
    /// As [`Opener::scan_volume`].
    pub fn scan<S: VolumeSource + Sync + ?Sized>(
        &mut self,
        volume: &S,
    ) -> Result<VolumeReport, Error> {
        let (header, len) = read_header(volume, 1)?;
        let opener = self.opener;
        let key = self.key_for(&header)?;
        let repair = opener.repair_settings().enabled;
        Ok(opener.scan_with(volume, &header, len, key, repair)?.report)
    }

    /// The file key of `header`'s set, unlocking it if it is new.
    fn key_for(&mut self, header: &Header) -> Result<&FileKey, Error> {
        let known = self
            .keys
            .iter()
            .position(|(set_bytes, _)| set_bytes.as_slice() == header.set_bytes());
        let at = match known {
            Some(at) => {
                // Same set part, so the same file key: a failing MAC is damage.
                self.keys[at].1.verify_header(header)?;
                at
            }
            None => {
                let file_key = self.opener.unlock(header)?.file_key;
                self.keys.push((header.set_bytes().to_vec(), file_key));
                self.keys.len() - 1
            }
        };
        Ok(&self.keys[at].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::PAYLOAD_PREFIX_LEN;
    use crate::keys::X25519Identity;
    use crate::seal::tests::{same_identity, seal};

    #[test]
    fn every_volume_of_a_set_verifies_alone() {
        let identity = X25519Identity::generate().expect("os randomness");
        let data = vec![9u8; 10 * (4096 - TAG_LEN)];
        let volumes = seal(&identity, &data, 4096, Some(2048 + 3 * 4096));
        assert_eq!(volumes.len(), 4);
        let opener = Opener::new().identity(same_identity(&identity)).threads(2);
        let mut verifier = opener.volume_verifier();
        let mut carried = 0;
        for (index, volume) in volumes.iter().enumerate() {
            let report = opener.verify_volume(volume).expect("verify");
            assert_eq!(verifier.verify(volume).expect("verify"), report);
            assert_eq!(report.volume as usize, index + 1);
            assert_eq!(report.chunks, if index < 3 { 3 } else { 2 });
            assert_eq!(report.last_in_set, index == 3);
            carried += report.plaintext_len;
        }
        assert_eq!(carried, (PAYLOAD_PREFIX_LEN + data.len()) as u64);
        assert!(format!("{verifier:?}").contains("sets: 1"));
    }

    #[test]
    fn a_damaged_chunk_is_named() {
        let identity = X25519Identity::generate().expect("os randomness");
        let data = vec![9u8; 10 * (4096 - TAG_LEN)];
        let mut volumes = seal(&identity, &data, 4096, Some(2048 + 3 * 4096));
        // Chunk 4: the second of volume 2.
        volumes[1][2048 + 4096 + 10] ^= 1;
        let opener = Opener::new().identity(same_identity(&identity));
        assert!(opener.verify_volume(&volumes[0]).is_ok());
        assert!(matches!(
            opener.verify_volume(&volumes[1]),
            Err(Error::Unauthenticated { chunk: 4, at })
                if at == crate::Location::volume(2).byte(6144).chunk(4)
        ));
        // The last chunk of a volume is checked first, and names a cut at
        // a chunk boundary.
        volumes[2].truncate(2048 + 2 * 4096);
        assert!(matches!(
            opener.volume_verifier().verify(&volumes[2]),
            Err(Error::Truncated {
                at: crate::Location {
                    volume: Volume::Number(3),
                    ..
                }
            })
        ));
    }

    #[test]
    fn a_scan_maps_cuts_trailing_bytes_and_a_damaged_last_chunk() {
        let identity = X25519Identity::generate().expect("os randomness");
        let data = vec![9u8; 10 * (4096 - TAG_LEN)];
        let volumes = seal(&identity, &data, 4096, Some(2048 + 3 * 4096));
        let opener = Opener::new().identity(same_identity(&identity));
        let runs = |volume: &Vec<u8>| {
            let report = opener.scan_volume(volume).expect("scan");
            let runs: Vec<_> = report
                .damage
                .iter()
                .map(|d| (d.kind.clone(), d.chunks.clone(), d.bytes.clone()))
                .collect();
            (runs, report.last_in_set)
        };
        // Volume 3 (chunks 6, 7, 8) cut after chunk 7: chunk 7 is intact.
        let mut cut = volumes[2].clone();
        cut.truncate(2048 + 2 * 4096);
        assert_eq!(
            runs(&cut),
            (
                vec![(DamageKind::Missing, 8..9, 2048 + 2 * 4096..2048 + 3 * 4096)],
                false
            )
        );
        // Cut to less than a tag inside chunk 7: chunk 7 is lost too (at
        // 17 bytes or more it could be a whole final chunk, damaged).
        cut.truncate(2048 + 4096 + 10);
        assert_eq!(
            runs(&cut).0,
            [(DamageKind::Missing, 7..9, 2048 + 4096..2048 + 3 * 4096)]
        );
        // Bytes after a full volume: all its chunks are checked.
        let mut long = volumes[0].clone();
        long.extend_from_slice(&[0; 10]);
        let full = 2048 + 3 * 4096;
        assert_eq!(
            runs(&long),
            (
                vec![(DamageKind::TrailingData, 3..3, full..full + 10)],
                false
            )
        );
        assert!(matches!(
            opener.verify_volume(&long),
            Err(Error::TrailingData { at }) if at.volume == Volume::Number(1) && at.offset == Some(full)
        ));
        // Volume 4 holds chunk 9 and the final chunk 10 (4 bytes). That
        // damaged: nobody can tell it is the last.
        let mut last = volumes[3].clone();
        let end = last.len() as u64;
        assert_eq!(end, 2048 + 4096 + 4 + TAG_LEN as u64);
        last[end as usize - 1] ^= 1;
        assert_eq!(
            runs(&last),
            (
                vec![(DamageKind::Unauthenticated, 10..11, 2048 + 4096..end)],
                false
            )
        );
        // Interior damage in a volume whose last chunk is fine.
        let mut two = volumes[1].clone();
        two[2048 + 7] ^= 1;
        two[2048 + 4096 + 7] ^= 1;
        assert_eq!(
            runs(&two),
            (
                vec![(DamageKind::Unauthenticated, 3..5, 2048..2048 + 2 * 4096)],
                false
            )
        );
    }

    #[test]
    fn without_the_key_nothing_is_verified() {
        let identity = X25519Identity::generate().expect("os randomness");
        let volumes = seal(&identity, b"x", 4096, None);
        let stranger = Opener::new().identity(X25519Identity::generate().expect("os randomness"));
        assert!(matches!(
            stranger.verify_volume(&volumes[0]),
            Err(Error::NoMatchingKey { .. })
        ));
    }
}
