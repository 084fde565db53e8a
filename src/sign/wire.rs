//! SSH wire fields (RFC 4251 §5: big-endian u32 lengths before byte
//! strings), read and written one way for SSHSIG blobs, OpenSSH key files
//! and ssh-agent messages. Each reader names its own error for a field
//! that runs past the end.

/// Appends `bytes` as an SSH string: u32 length, then the bytes.
pub(crate) fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    // Every string here is bounded well below 4 GiB.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A bounded reader of SSH wire fields; `bytes` is what is left.
pub(crate) struct Fields<'a, E> {
    pub(crate) bytes: &'a [u8],
    truncated: fn() -> E,
}

impl<'a, E> Fields<'a, E> {
    /// Reads `bytes`, failing with `truncated()` where a field runs past them.
    pub(crate) fn new(bytes: &'a [u8], truncated: fn() -> E) -> Self {
        Fields { bytes, truncated }
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], E> {
        if self.bytes.len() < len {
            return Err((self.truncated)());
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, E> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    pub(crate) fn string(&mut self) -> Result<&'a [u8], E> {
        let len = self.u32()?;
        self.take(len as usize)
    }
}
