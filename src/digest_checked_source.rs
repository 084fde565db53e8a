//! A volume source that releases bytes only after they matched the
//! volume's trailer digests (SPEC.md §13.4): the header only if it hashes
//! to h_v, a chunk only if its BLAKE3 chaining value is its table entry.
//!
//! Opening through it means that no byte the table does not vouch for ever
//! reaches the cipher, which is what a required signer needs (issue 11's
//! signing step): once a signature covers the table, a co-recipient who
//! knows the file key can no longer substitute a chunk. Without a
//! signature the table is only as trustworthy as the volume itself.

use std::io;

use crate::chunk_digest::{DIGEST_LEN, chunk_cv, header_digest};
use crate::error::{Error, Location, Volume};
use crate::format::Geometry;
use crate::header::{read_header, read_trailer};
use crate::trailer::Trailer;
use crate::volumes::{VolumeSource, location};

/// Wraps a trailered volume; see the module documentation.
///
/// ```
/// use std::io::{Read, Write};
/// use kuvert::{DigestCheckedSource, MemorySink, Opener, Sealer, X25519Identity};
///
/// let identity = X25519Identity::generate()?;
/// let mut writer = Sealer::new().recipient(identity.to_public()).seal(MemorySink::new())?;
/// writer.write_all(b"register extract")?;
/// let volume = writer.finish()?.into_volumes().remove(0);
/// let checked = DigestCheckedSource::new(volume.as_slice())?;
/// let mut out = Vec::new();
/// Opener::new().identity(identity).open_one(checked)?.read_to_end(&mut out)?;
/// assert_eq!(out, b"register extract");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DigestCheckedSource<S> {
    source: S,
    geometry: Geometry,
    volume: u32,
    first_chunk: u64,
    trailer: Trailer,
}

impl<S: VolumeSource> DigestCheckedSource<S> {
    /// Reads the volume's header and trailer (SPEC.md §7.1, §13.3; no key).
    ///
    /// # Errors
    ///
    /// The header's errors as [`inspect`](crate::inspect),
    /// [`Error::NoDigests`] without a trailer, [`Error::Truncated`] and
    /// [`Error::MalformedTrailer`].
    pub fn new(source: S) -> Result<Self, Error> {
        let (mut header, len) = read_header(&source, 1)?;
        let origin = location(&source, Volume::Input(1));
        read_trailer(&source, &mut header, len, &origin)?;
        let Some(trailer) = header.trailer.take() else {
            return Err(Error::NoDigests { at: origin });
        };
        let geometry = header.geometry();
        Ok(DigestCheckedSource {
            first_chunk: geometry.first_chunk(header.volume),
            volume: header.volume,
            geometry,
            trailer,
            source,
        })
    }

    /// The wrapped source.
    pub fn into_inner(self) -> S {
        self.source
    }

    fn mismatch(&self, chunk: Option<u64>, offset: u64) -> io::Error {
        let mut at = Location::volume(self.volume)
            .byte(offset)
            .name(self.source.name());
        if let Some(chunk) = chunk {
            at = at.chunk(chunk);
        }
        io::Error::from(Error::DigestMismatch { chunk, at })
    }

    /// Reads [start, end) of the chunk region, whole chunks at a time, and
    /// checks each chunk before any of it is copied to `buf`.
    fn read_chunks(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let data = self.geometry.data_offset;
        let chunk_len = self.geometry.chunk_len() as u64;
        let end = offset + buf.len() as u64;
        let first = (offset - data) / chunk_len;
        let last = (end - 1 - data) / chunk_len;
        let mut chunk = vec![0u8; chunk_len as usize];
        let origin = location(&self.source, Volume::Number(self.volume));
        for local in first..=last {
            let at = data + local * chunk_len;
            let len = (self.trailer.chunk_end - at).min(chunk_len) as usize;
            self.source.read_exact_at(&mut chunk[..len], at)?;
            let matches = entry_matches(
                &self.trailer,
                &self.source,
                &origin,
                local,
                chunk_len as usize,
                &chunk[..len],
            )
            .map_err(io::Error::from)?;
            if !matches {
                return Err(self.mismatch(Some(self.first_chunk + local), at));
            }
            let from = offset.max(at);
            let to = end.min(at + len as u64);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&chunk[(from - at) as usize..(to - at) as usize]);
        }
        Ok(())
    }
}

/// Whether `chunk`, the ciphertext of the chunk at local index `local` of
/// the volume whose trailer is `trailer`, C = `chunk_len` bytes apart,
/// matches its table entry.
///
/// # Errors
///
/// [`Error::Read`] reading the entry.
pub(crate) fn entry_matches<S: VolumeSource + ?Sized>(
    trailer: &Trailer,
    source: &S,
    origin: &Location,
    local: u64,
    chunk_len: usize,
    chunk: &[u8],
) -> Result<bool, Error> {
    if local >= trailer.chunks {
        return Ok(false);
    }
    let mut entry = [[0u8; DIGEST_LEN]];
    trailer.read_entries(source, origin, local, &mut entry)?;
    Ok(chunk_cv(local, chunk_len, chunk) == entry[0])
}

impl<S: VolumeSource> VolumeSource for DigestCheckedSource<S> {
    fn size(&self) -> io::Result<u64> {
        self.source.size()
    }

    /// Header bytes after the whole padded header matched h_v; chunk bytes
    /// after each chunk they touch matched its entry; the trailer as it is
    /// (it checks itself). A read that spans regions is checked per region.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let data = self.geometry.data_offset;
        let chunk_end = self.trailer.chunk_end;
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        if buf.is_empty() {
            return Ok(());
        }
        if offset < data {
            let mut header = vec![0u8; data as usize];
            self.source.read_exact_at(&mut header, 0)?;
            if header_digest(&header) != self.trailer.header_digest {
                return Err(self.mismatch(None, 0));
            }
            let upto = end.min(data);
            buf[..(upto - offset) as usize]
                .copy_from_slice(&header[offset as usize..upto as usize]);
            if end > data {
                return self.read_exact_at(&mut buf[(data - offset) as usize..], data);
            }
            return Ok(());
        }
        if offset < chunk_end {
            let upto = end.min(chunk_end);
            let split = (upto - offset) as usize;
            let (chunks, rest) = buf.split_at_mut(split);
            self.read_chunks(chunks, offset)?;
            if !rest.is_empty() {
                return self.source.read_exact_at(rest, chunk_end);
            }
            return Ok(());
        }
        self.source.read_exact_at(buf, offset)
    }

    fn name(&self) -> Option<&str> {
        self.source.name()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::keys::X25519Identity;
    use crate::open::Opener;
    use crate::seal::Sealer;
    use crate::volumes::MemorySink;

    fn sealed(identity: &X25519Identity, content: &[u8]) -> Vec<u8> {
        let mut writer = Sealer::new()
            .recipient(identity.to_public())
            .chunk_size(4096)
            .seal(MemorySink::new())
            .expect("seal");
        writer.write_all(content).expect("write");
        writer.finish().expect("finish").into_volumes().remove(0)
    }

    fn identity() -> X25519Identity {
        X25519Identity::from_bytes([7; 32])
    }

    #[test]
    fn an_intact_volume_opens_through_it() {
        let content: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
        let volume = sealed(&identity(), &content);
        let checked = DigestCheckedSource::new(volume.as_slice()).expect("trailer");
        let mut out = Vec::new();
        Opener::new()
            .identity(identity())
            .open_one(checked)
            .expect("open")
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, content);
    }

    #[test]
    fn a_chunk_that_does_not_match_its_entry_is_never_read_out() {
        let content = vec![5u8; 20_000];
        let mut volume = sealed(&identity(), &content);
        volume[2048 + 4096 + 10] ^= 1;
        let checked = DigestCheckedSource::new(volume.as_slice()).expect("trailer");
        // Reading inside the damaged chunk, or across it, fails, and the
        // buffer is left as it was.
        for (offset, len) in [(2048 + 4096, 4096), (2048 + 4096 + 100, 10), (2048, 9000)] {
            let mut buf = vec![0xEEu8; len];
            let err = checked
                .read_exact_at(&mut buf, offset)
                .expect_err("mismatch");
            match Error::from_io(err) {
                Error::DigestMismatch { chunk: Some(1), at } => {
                    assert_eq!(at.offset, Some(2048 + 4096));
                }
                other => panic!("{other:?}"),
            }
            assert!(buf[..len.min(4096)].iter().all(|&b| b == 0xEE) || offset == 2048);
        }
        // Chunk 0 still reads: its entry matches.
        let mut chunk0 = vec![0u8; 4096];
        checked.read_exact_at(&mut chunk0, 2048).expect("chunk 0");
        assert_eq!(chunk0, volume[2048..2048 + 4096]);
    }

    #[test]
    fn a_changed_header_is_never_read_out() {
        let mut volume = sealed(&identity(), b"x");
        volume[185] ^= 1; // the MAC's last byte
        let checked = DigestCheckedSource::new(volume.as_slice()).expect("trailer");
        let mut buf = [0u8; 14];
        let err = checked.read_exact_at(&mut buf, 0).expect_err("mismatch");
        assert!(matches!(
            Error::from_io(err),
            Error::DigestMismatch { chunk: None, .. }
        ));
        assert_eq!(buf, [0; 14]);
    }

    #[test]
    fn a_volume_without_trailer_is_refused() {
        let mut writer = Sealer::new()
            .recipient(identity().to_public())
            .digests(false)
            .seal(MemorySink::new())
            .expect("seal");
        writer.write_all(b"x").expect("write");
        let volume = writer.finish().expect("finish").into_volumes().remove(0);
        assert!(matches!(
            DigestCheckedSource::new(volume.as_slice()),
            Err(Error::NoDigests { .. })
        ));
    }
}
