//! kuvert seals data for removable media: discs and USB sticks that travel
//! by post, can reach the wrong hands, and can arrive damaged, incomplete or
//! out of order.
//!
//! A sealed payload is a *set* of one or more *volumes*. Each volume carries
//! the full header, so any one of them can be inspected and verified on its
//! own; the payload runs across them in fixed-size authenticated chunks
//! (ChaCha20-Poly1305 in the STREAM construction). SPEC.md is the normative
//! description of the bytes.
//!
//! # Which type do I use?
//!
//! | to …                                   | use                                        |
//! |----------------------------------------|--------------------------------------------|
//! | seal a byte stream                     | [`Sealer::seal`] → [`SealWriter`] (`Write`) |
//! | seal files and directories             | [`Sealer::seal_archive`] → [`archive::ArchiveWriter`] |
//! | open a set and read or seek in it      | [`Opener`] → [`OpenReader`] (`Read + Seek`)|
//! | tell a stream from an archive          | [`OpenReader::kind`], [`archive::Payload::detect`] |
//! | label a parcel, hide its size          | [`Sealer::label`], [`Sealer::note`], [`Sealer::pad`] ([`Padding`]) → [`OpenReader::manifest`] ([`Manifest`]) |
//! | check one disc on its own              | [`Opener::verify_volume`]                  |
//! | map every damaged chunk of a set       | [`Opener::verify_set`] → [`SetReport`], [`DamageMap`] |
//! | keep what survives of a damaged stream | [`OpenReader::salvage_to`]                 |
//! | read a header without any key          | [`inspect`]                                |
//! | which discs of a set are there, keyless | [`SetSurvey::of`] over [`inspect`]s       |
//! | address someone                        | [`HybridRecipient`] (post-quantum), [`X25519Recipient`], [`Passphrase`] |
//! | be addressed                           | [`HybridIdentity`], [`X25519Identity`], [`Identity::parse_file`] |
//! | tell whether a set resists a quantum computer, keyless | [`VolumeInfo::post_quantum`] |
//! | write volumes to files, memory, a `Write` | [`FileSink`], [`MemorySink`], [`WriteSink`] |
//! | read volumes from files or memory      | [`FileSource`], `Vec<u8>`, `Bytes`, `&[u8]` |
//! | read through unreadable sectors (EIO)  | [`RetryingSource`] ([`ReadPolicy`]) → [`ErasureMap`] |
//! | open through damage, repaired from parity | [`Opener::repair`] (on by default) → [`OpenReader::repairs`] ([`VolumeRepair`]) |
//! | survive a lost disc: parity volumes    | [`write_parity_volumes`] → [`ParitySet::assemble`], [`ParitySet::rebuild`] |
//! | find volumes on a disc image or device | [`find_volumes`] → [`FoundVolume`] → [`OffsetSource`] |
//! | print a name a sender chose            | [`escape_name`]                            |
//! | make or read a signing key             | [`SigningKey`], [`SignerKey`] (`kuvertsign1…`, `ssh-ed25519 …`) |
//! | sign or check a statement (SSHSIG)     | [`sign::sshsig`], [`sign::statement`]      |
//! | read an allowed_signers file           | [`sign::parse_allowed_signers`]            |
//! | sign every volume of a set             | [`Sealer::sign_with`]                      |
//! | open only what a trusted key signed    | [`Opener::require_signer`], [`Opener::require_allowed_signers`] → [`OpenReader::signature`] ([`SignatureStatus`]) |
//! | check who signed a disc, keyless       | [`verify_signed_volume`], [`verify_signed_set`] with [`TrustedSigners`] → [`SignedReport`] |
//!
//! # Sealing onto CD-sized volumes and opening again
//!
//! ```
//! use std::io::{Read, Write};
//! use kuvert::{MemorySink, Opener, Sealer, X25519Identity};
//!
//! let identity = X25519Identity::generate()?;
//! let mut writer = Sealer::new()
//!     .recipient(identity.to_public())
//!     .volume_size(1 << 20) // 1 MiB here; 700 MiB for a CD
//!     .seal(MemorySink::new())?;
//! writer.write_all(&vec![42u8; 3 << 20])?;
//! let volumes = writer.finish()?.into_volumes();
//! assert_eq!(volumes.len(), 4);
//!
//! let mut reader = Opener::new().identity(identity).open(volumes)?;
//! let mut plaintext = Vec::new();
//! reader.read_to_end(&mut plaintext)?;
//! assert_eq!(plaintext.len(), 3 << 20);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Post-quantum recipients
//!
//! A [`HybridIdentity`] (age's `AGE-SECRET-KEY-PQ-1…`, ML-KEM-768 and
//! X25519) stays safe if either half does. Its recipients are never mixed
//! with classical ones by accident (SPEC.md §4.7):
//!
//! ```
//! use kuvert::{Error, HybridIdentity, MemorySink, PostQuantum, Sealer, X25519Identity, inspect};
//!
//! let pq = HybridIdentity::generate()?;
//! let classical = X25519Identity::generate()?;
//! let mixed = Sealer::new().recipient(pq.to_public()).recipient(classical.to_public());
//! assert!(matches!(
//!     mixed.seal(MemorySink::new()),
//!     Err(Error::IncompatibleRecipients { .. })
//! ));
//! let volumes = Sealer::new()
//!     .recipient(pq.to_public())
//!     .seal(MemorySink::new())?
//!     .finish()?
//!     .into_volumes();
//! assert_eq!(inspect(&volumes[0])?.post_quantum(), PostQuantum::Protected);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # With a passphrase
//!
//! ```
//! use std::io::{Read, Write};
//! use kuvert::{Argon2Params, MemorySink, Opener, Passphrase, Sealer};
//!
//! let mut writer = Sealer::new()
//!     .passphrase(Passphrase::new("correct horse battery staple"))
//!     .argon2_params(Argon2Params::MINIMUM) // the default costs take about a second
//!     .seal(MemorySink::new())?;
//! writer.write_all(b"diagnoses")?;
//! let volumes = writer.finish()?.into_volumes();
//!
//! let wrong = Opener::new().passphrase(Passphrase::new("tr0ub4dor")).open(volumes.clone());
//! assert!(matches!(wrong, Err(kuvert::Error::WrongPassphrase)));
//! let mut reader = Opener::new()
//!     .passphrase(Passphrase::new("correct horse battery staple"))
//!     .open(volumes)?;
//! let mut plaintext = String::new();
//! reader.read_to_string(&mut plaintext)?;
//! assert_eq!(plaintext, "diagnoses");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Performance
//!
//! Sealing and opening are one ChaCha20-Poly1305 pass over the data, cut
//! into chunks (64 KiB by default) that are sealed in place in batches of
//! about 1 MiB.
//!
//! **Backends.** Both write and read the same bytes, so the choice never
//! changes a set:
//!
//! | features | chunk cipher | speed | payload key copy |
//! |---|---|---|---|
//! | default (`ring`) | `ring`'s assembly (fused AVX2 or SSE4.1 on x86-64, NEON on aarch64, chosen at run time) | full speed in any build, no flags | not wiped: it lives in the [`SealWriter`] / [`OpenReader`] and is freed, unwiped, with it |
//! | `default-features = false`, or `zeroize-chunk-key` | `chacha20poly1305` (pure Rust) | AVX2 at run time; AVX-512 only with `RUSTFLAGS="--cfg chacha20_avx512"` | wiped on drop |
//!
//! `zeroize-chunk-key` wins over `ring`, so a crate that needs the wiped key
//! gets it whatever other crates in the same build enable. Every other key
//! (file key, header MAC key, identities, passphrases) is wiped on drop with
//! either backend. The `--cfg chacha20_avx512` flag reaches every crate of a
//! build or none (a dependency cannot set it), needs rustc 1.89, and is
//! still checked at run time, so such a binary runs on CPUs without
//! AVX-512 too; this repository sets no flags, so it builds as a dependent
//! does.
//!
//! **Threads.** [`Sealer::threads`] and [`Opener::threads`] (for
//! [`OpenReader::copy_to`]) count the calling thread: with n, n − 1 workers
//! start, and the calling thread seals or opens a batch itself whenever
//! every worker already has one waiting. The default is all cores
//! ([`std::thread::available_parallelism`]). Workers start only when a
//! second batch is needed, so a payload under about 1 MiB starts no
//! thread: it costs one X25519 (or Argon2id) wrap per recipient, a header
//! HMAC per volume and one chunk. A 14-byte seal to one X25519 recipient
//! took 100–155 µs (median of 1000, `cargo run --release --example
//! measure`, last line; a 2-core Intel Xeon VM with AVX-512F, busy with
//! other builds). [`Read`](std::io::Read) and
//! [`Seek`](std::io::Seek) on an `OpenReader` open one chunk at a time on
//! the calling thread. Memory is bounded by threads × 2 batches, never by
//! the payload.
//!
//! **Payloads in memory.** Hand the whole payload to one `write_all` on a
//! [`MemorySink`] (or any sink that implements
//! [`VolumeSink::append_in_place`]): each chunk is then copied once, to its
//! place in the sink, and sealed there on every thread, instead of going
//! through a batch buffer and being copied again. Writes of a few MiB or
//! less, and sinks that do not lend, take the batch path.
//!
//! **Measured** (`cargo run --release --example measure`, every backend and
//! build side by side: `bash benches/backends.sh`; against age and rage:
//! `bash benches/compare.sh`; numbers in README.md, "Performance").
//!
//! # Security
//!
//! Nothing but sizes (and the volume count) leaks without a key. Every
//! header is authenticated by an HMAC that commits the file key before any
//! payload key exists; every chunk is authenticated before a byte of it is
//! returned; a set that lacks its end-of-set chunk never opens as complete.
//! Secrets are wiped on drop and never printed by `Debug`.
//!
//! # Features
//!
//! Only `ring` is on by default, and no CLI crate is ever built: the
//! `kuvert` command is the separate package `kuvert-cli`.
//!
//! - `ring` (default): chunks are sealed and opened with ring's
//!   ChaCha20-Poly1305; without it, with the `chacha20poly1305` crate's. The
//!   bytes are the same (see Performance above).
//! - `zeroize-chunk-key`: the `chacha20poly1305` backend even if `ring` is
//!   on, so the payload key's copy is wiped on drop.
//! - `plugins`: age plugin recipients and identities (module `plugin`), which
//!   run `age-plugin-NAME` from PATH. Off by default, so that a recipient
//!   string cannot make a program start another one unless it opted in.
//!
//! - `ssh-agent` (unix): `sign::AgentSigner`, a signing key held by
//!   ssh-agent (the socket `$SSH_AUTH_SOCK` names). Off by default.
//!
//! `insecure-test-hooks` exists for this crate's own tests and must never be
//! enabled by a user: it makes sealing deterministic.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod archive;
mod chunk_digest;
mod damage;
mod digest_checked_source;
mod disc_scan;
mod erasure_map;
mod error;
mod escape;
mod format;
#[doc(hidden)]
pub mod fuzz;
mod header;
mod keys;
mod last_chunk;
mod manifest;
pub mod media;
mod open;
mod open_repair;
mod parity;
mod pipeline;
#[cfg(feature = "plugins")]
#[cfg_attr(docsrs, doc(cfg(feature = "plugins")))]
pub mod plugin;
mod rand;
mod repair;
mod retrying_source;
mod seal;
pub mod sign;
mod signature_check;
mod signature_records;
mod stream;
mod survey;
#[doc(hidden)]
pub mod testing;
mod trailer;
mod verify;
mod volumes;

pub use chunk_digest::root_from_table;
pub use damage::{Damage, DamageKind, DamageMap};
pub use digest_checked_source::DigestCheckedSource;
pub use disc_scan::{
    DiscScan, FoundVolume, MAX_DISC_VOLUMES, OffsetSource, find_volumes, find_volumes_with,
    is_raw_disc,
};
pub use erasure_map::ErasureMap;
pub use error::{
    Error, KeyError, Location, MixError, OptionError, PluginFailure, TrailerError, Volume,
};
pub use escape::escape_name;
pub use format::{
    FORMAT_VERSION, PAYLOAD_PREFIX_LEN, PayloadKind, SECTOR, TAG_LEN, padded_header_len,
    plaintext_per_chunk,
};
pub use header::{VolumeInfo, inspect};
pub use keys::{
    Argon2Params, HybridIdentity, HybridRecipient, Identity, Limits, Passphrase, PostQuantum,
    Recipient, Warning, X25519Identity, X25519Recipient, parse_recipients_file, rfc3339_utc,
};
pub use manifest::{MAX_LABEL_LEN, MAX_MANIFEST_LEN, MAX_NOTE_LEN, Manifest, Padding, padme};
pub use open::{OpenReader, Opener};
pub use open_repair::VolumeRepair;
pub use parity::Parity;
pub use parity::across::{PARITY_VOLUME_MAGIC, ParitySet, ParityVolumeCheck, write_parity_volumes};
#[cfg(feature = "plugins")]
pub use plugin::{PluginIdentity, PluginOptions, PluginRecipient, PluginUi};
pub use repair::{
    Margin, RepairReport, SectorMap, SectorState, repair_volume, repair_volume_best_effort,
};
pub use retrying_source::{Erasures, ReadPolicy, RetryingSource, is_unreadable};
pub use seal::{Plan, SealWriter, Sealer};
pub use sign::{SignerKey, SigningKey, VolumeSigner};
pub use signature_check::{SignatureStatus, TrustedSigners};
pub use signature_records::{SignatureRecords, signature_records};
pub use survey::SetSurvey;
pub use verify::{
    DigestReport, Rejected, Rejection, SetCheck, SetReport, SignedReport, VolumeReport,
    VolumeVerifier, scan_digests, verify_digests, verify_signed_set, verify_signed_volume,
};
pub use volumes::{FileSink, FileSource, MemorySink, VolumeSink, VolumeSource, WriteSink};
