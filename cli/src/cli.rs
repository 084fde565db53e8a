//! The command line: commands, flags and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::size;

const EXIT_CODES: &str = "\
Exit status:
  0    success
  1    a failure of data, keys or I/O (damaged, incomplete or foreign volumes,
       wrong key or passphrase, files that cannot be read or written)
  2    a usage error (unknown or conflicting options, bad sizes)
  3    damage found and all of it repairable from parity: the data is whole;
       refresh the medium (`kuvert repair`)
  130  interrupted by Ctrl-C (partial output is removed)";

/// Seal data for removable media: chunked authenticated encryption to
/// X25519 keys (age keys work as they are) or a passphrase, split into
/// volumes sized for CD, DVD, BD or FAT32.
#[derive(Debug, Parser)]
#[command(
    name = "kuvert",
    version,
    propagate_version = true,
    after_help = EXIT_CODES,
    after_long_help = format!("{EXIT_CODES}\n\nSee `kuvert help COMMAND` for each command."),
)]
pub struct Cli {
    /// No progress bars or summaries on stderr (errors are still printed).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an X25519 identity (secret key) in age's file layout.
    #[command(after_help = EXIT_CODES)]
    Keygen(KeygenArgs),
    /// Seal files and directories (an archive) or standard input (a stream).
    #[command(after_help = EXIT_CODES, after_long_help = seal_long_help())]
    Seal(SealArgs),
    /// Open a set: extract an archive, or write a stream.
    #[command(after_help = EXIT_CODES)]
    Open(OpenArgs),
    /// List the entries of an archive (control characters in names shown
    /// escaped, as by `ls -b`).
    #[command(after_help = EXIT_CODES)]
    List(ListArgs),
    /// Authenticate volumes without writing anything; a report per volume.
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyArgs),
    /// Show what volume headers say, without any key.
    #[command(after_help = EXIT_CODES)]
    Info(InfoArgs),
    /// Repair damaged volumes from their own parity, without any key:
    /// byte-identical copies written to DIR (an archivist can refresh
    /// ageing discs without being able to read them).
    #[command(after_help = EXIT_CODES)]
    Repair(RepairArgs),
    /// Write each signed volume's statement and signatures as files
    /// (VOLUME.statement, VOLUME.sig) and print the commands that check
    /// them with `ssh-keygen` and `b3sum` alone.
    #[command(after_help = EXIT_CODES)]
    ExportSignature(ExportSignatureArgs),
}

fn seal_long_help() -> String {
    format!(
        "Volume size presets (each leaves at least 0.5% of the disc for the ISO 9660/UDF \
         filesystem it is burned in):\n{}\n\n{EXIT_CODES}",
        size::presets_help()
    )
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write the identity to FILE (created with mode 0600, never replaced)
    /// instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print the recipients (public keys) of the identity file INPUT
    /// (standard input if none or `-`); for a signing key file or an
    /// unencrypted OpenSSH ed25519 private key, its two public forms.
    #[arg(short = 'y')]
    pub convert: bool,

    /// Make a classical X25519 identity (`AGE-SECRET-KEY-1…`) instead of
    /// the default hybrid post-quantum one (`AGE-SECRET-KEY-PQ-1…`,
    /// ML-KEM-768 + X25519, as `age-keygen -pq`).
    #[arg(long)]
    pub classical: bool,

    /// Make an Ed25519 signing key (`KUVERT-SIGN-KEY-1…`) for `seal
    /// --sign`, instead of an identity. Its public key is printed as
    /// `kuvertsign1…` and as an OpenSSH `ssh-ed25519` line (for an
    /// allowed_signers file). Signing keys never decrypt.
    #[arg(long, conflicts_with = "classical")]
    pub sign: bool,

    /// Write age's encodings: what kuvert writes anyway now (kept so that
    /// scripts using it go on working).
    #[arg(long, hide = true)]
    pub age: bool,

    /// Identity file for -y.
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
}

/// Keys that open a set.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Identity file (age or kuvert secret keys, or age plugin identities
    /// `AGE-PLUGIN-NAME-1…` run by `age-plugin-NAME` from PATH; one per
    /// line; `#` starts a comment). Repeatable. `-` reads standard input.
    #[arg(short = 'i', long = "identity", value_name = "IDENTITY")]
    pub identities: Vec<PathBuf>,

    /// Use a passphrase: from the file named by KUVERT_PASSPHRASE_FILE if
    /// set, else asked on the terminal. Without -i a passphrase is asked
    /// for anyway when the set has a passphrase recipient.
    #[arg(short = 'p', long = "passphrase", conflicts_with = "passphrase_file")]
    pub passphrase: bool,

    /// Read the passphrase from the first line of FILE (for scripts; it is
    /// never taken as an argument).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Stop an age plugin that stays silent for SECONDS (default 60; a
    /// hardware key waiting for a touch counts as silence, time spent
    /// answering its prompts does not).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub plugin_timeout: Option<u64>,

    #[command(flatten)]
    pub limits: LimitArgs,
}

const LIMITS: &str = "Limits on untrusted headers";

/// Caps on the work a passphrase recipient may ask for. A header is not
/// authenticated before its passphrase is tried, so anyone could write one
/// asking for terabytes: it is refused before any work, unless raised here.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Largest Argon2id memory a passphrase recipient may ask for (default
    /// 2G; K, M or G as for sizes). Raise it only for a set you trust.
    #[arg(long, value_name = "SIZE", value_parser = size::argon2_memory, help_heading = LIMITS)]
    pub max_argon2_memory: Option<u32>,

    /// Largest Argon2id pass count a passphrase recipient may ask for
    /// (default 8).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
          help_heading = LIMITS)]
    pub max_argon2_passes: Option<u32>,

    /// Largest Argon2id lane count a passphrase recipient may ask for
    /// (default 16).
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=0x00FF_FFFF), help_heading = LIMITS)]
    pub max_argon2_lanes: Option<u32>,
}

impl LimitArgs {
    /// The limits asked for, the library's defaults otherwise.
    pub fn limits(&self) -> kuvert::Limits {
        let mut limits = kuvert::Limits::default();
        if let Some(kib) = self.max_argon2_memory {
            limits.argon2_max_memory_kib = kib;
        }
        if let Some(passes) = self.max_argon2_passes {
            limits.argon2_max_passes = passes;
        }
        if let Some(lanes) = self.max_argon2_lanes {
            limits.argon2_max_lanes = lanes;
        }
        limits
    }
}

#[derive(Debug, Args)]
pub struct SealArgs {
    /// Seal to this public key (`age1pq1…`, `age1…` or kuvert's older
    /// `kuvert1…`), or to an age plugin's recipient (`age1NAME1…`, wrapped
    /// by `age-plugin-NAME` from PATH). Repeatable.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Allow post-quantum (`age1pq1…`) and classical (`age1…`) recipients
    /// in one set: whoever breaks a classical one opens the set, so the
    /// post-quantum protection is lost. Refused without this.
    #[arg(long)]
    pub allow_classical: bool,

    /// Seal to every public key in FILE (one per line; `#` starts a
    /// comment). Repeatable.
    #[arg(short = 'R', long = "recipients-file", value_name = "RECIPIENTS_FILE")]
    pub recipients_files: Vec<PathBuf>,

    /// Also seal to a passphrase, asked on the terminal twice (or read
    /// from the file named by KUVERT_PASSPHRASE_FILE). An empty answer
    /// generates a strong one and prints it once.
    #[arg(short = 'p', long = "passphrase", conflicts_with = "passphrase_file")]
    pub passphrase: bool,

    /// Seal to the passphrase on the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Stop an age plugin that stays silent for SECONDS (default 60; a
    /// hardware key waiting for a touch counts as silence, time spent
    /// answering its prompts does not).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub plugin_timeout: Option<u64>,

    /// Split into volumes of at most SIZE bytes: a number with K, M or G
    /// (powers of 1024; B or iB may follow, any case), or a preset: cd, dvd,
    /// dvd-dl, bd, bd-nodm, bd-dl, bd-dl-nodm, fat32. Volumes are STEM.001.kuv, STEM.002.kuv, …
    /// for -o STEM.kuv (one volume keeps the name given).
    #[arg(long, value_name = "SIZE", value_parser = size::volume_size)]
    pub volume_size: Option<u64>,

    /// Leave out the volume trailers of keyless chunk digests (written by
    /// default, 32 bytes per chunk): without them `kuvert verify` needs the
    /// key, and a burning station or courier cannot check a disc.
    #[arg(long)]
    pub no_digests: bool,

    /// Reed–Solomon parity inside every volume: PERCENT of the data (3 to
    /// 200), or `none`. With 20, 43 of 255 layers are parity: one run of
    /// unreadable or damaged sectors up to about 16.9 % of a volume (a
    /// scratch), or scattered bad sectors, is repaired without any key
    /// (`kuvert repair`). The volume size includes the parity, so a preset
    /// still fits its disc. Default: 20 for the disc presets (cd, dvd,
    /// dvd-dl, bd, bd-nodm, bd-dl, bd-dl-nodm), none otherwise (fat32,
    /// explicit sizes, unsplit sets: USB sticks fail whole). Needs the
    /// digests and a file output.
    #[arg(long, value_name = "PERCENT|none", value_parser = parse_parity)]
    pub parity: Option<kuvert::Parity>,

    /// Parity volumes across the set: P extra files STEM.p01.kuv … such
    /// that any P lost or destroyed data volumes are rebuilt from the rest
    /// (`kuvert open`, `verify` and `repair` take them among the volumes).
    /// Written after the last data volume by reading the set back once.
    /// Needs --volume-size and -o FILE.
    #[arg(long, value_name = "P")]
    pub parity_volumes: Option<u16>,

    /// Sign every volume with the key in FILE: a kuvert signing key
    /// (`kuvert keygen --sign`) or an unencrypted OpenSSH ed25519 private
    /// key. Repeatable, up to 4 signers in all. The set then proves who
    /// sealed it to anyone with the public key, without a decryption key.
    #[arg(long = "sign", value_name = "FILE")]
    pub sign: Vec<PathBuf>,

    /// Sign every volume with a key held by ssh-agent (`$SSH_AUTH_SOCK`),
    /// named by its public key (`ssh-ed25519 AAAA…`, `kuvertsign1…`, a
    /// `.pub` file) or its `SHA256:` fingerprint: for encrypted OpenSSH
    /// keys, after `ssh-add`. Repeatable.
    #[cfg(all(unix, feature = "ssh-agent"))]
    #[arg(long = "sign-agent", value_name = "KEY")]
    pub sign_agent: Vec<String>,

    /// With --sign: also write each volume's statement and signatures
    /// beside it (STEM.001.kuv.statement, STEM.001.kuv.sig, a second
    /// signer's STEM.001.kuv.2.sig, …) to burn on the same disc, as
    /// `kuvert export-signature` would.
    #[arg(long)]
    pub sig_files: bool,

    /// Ciphertext chunk size: a power of two from 4K to 16M (default 64K,
    /// 32 CD sectors: one unreadable sector costs one chunk).
    #[arg(long, value_name = "SIZE", value_parser = size::chunk_size)]
    pub chunk_size: Option<usize>,

    /// Threads that seal chunks (default: one per core). The bytes written
    /// are the same for every count.
    #[arg(short = 'j', long = "threads", value_name = "THREADS",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,

    /// A label for the encrypted manifest, shown by open, list and info
    /// with a key (nothing of it without one): up to 256 bytes, no control
    /// characters.
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,

    /// A note for the encrypted manifest: up to 3,072 bytes, line feeds
    /// allowed, no other control characters.
    #[arg(long, value_name = "TEXT", conflicts_with = "note_file")]
    pub note: Option<String>,

    /// Take the note from FILE (UTF-8; one final line feed is dropped).
    #[arg(long, value_name = "FILE")]
    pub note_file: Option<PathBuf>,

    /// The creation time the manifest records: `now` (default), `none`,
    /// or a UTC time such as 2026-12-02T14:00:00Z.
    #[arg(long, value_name = "WHEN", default_value = "now",
          value_parser = crate::manifest::parse_created)]
    pub created: crate::manifest::Created,

    /// Pad the payload so that the volume lengths hide its size: `padme`
    /// (default; at most 3.1% more from 64 KiB up), `volume` (fill the last
    /// volume to --volume-size) or `none` (the exact size shows).
    #[arg(long, value_name = "RULE", default_value = "padme",
          value_parser = crate::manifest::parse_padding)]
    pub pad: kuvert::Padding,

    /// Output: FILE (split sets get numbered names) or `-` for standard
    /// output (unsplit only).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,

    /// Replace existing output; allow binary output to a terminal.
    #[arg(short, long)]
    pub force: bool,

    /// Files and directories to seal as an archive, or `-` to seal standard
    /// input as a single stream.
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,
}

const SIGNERS: &str = "Who sealed it";

/// The keys whose signature a set must carry.
#[derive(Debug, Args)]
pub struct SignerArgs {
    /// Require a signature by this key: `kuvertsign1…`, an `ssh-ed25519
    /// AAAA…` line, or a FILE of such lines or an OpenSSH allowed_signers
    /// file. Repeatable; one trusted signer suffices. An unsigned set, a
    /// set signed by other keys or a bad signature is refused before
    /// anything is released.
    #[arg(long = "signer", value_name = "KEY|FILE", help_heading = SIGNERS)]
    pub signers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    #[command(flatten)]
    pub keys: KeyArgs,

    #[command(flatten)]
    pub signers: SignerArgs,

    /// Where to put the payload. An archive is extracted into the directory
    /// DEST (created if missing); without -o, into a new directory named
    /// after the set in the current directory (`register.001.kuv` gives
    /// `register/`), which must not exist yet and is removed again if
    /// extraction fails. A stream or --tar goes to the file DEST (without
    /// -o, or with `-`: standard output).
    #[arg(short, long, value_name = "DEST")]
    pub output: Option<PathBuf>,

    /// Extract only this entry (a directory brings everything under it).
    /// Repeatable.
    #[arg(long = "entry", value_name = "PATH", conflicts_with = "tar")]
    pub entries: Vec<String>,

    /// Write the archive as a tar stream instead of extracting it.
    #[arg(long)]
    pub tar: bool,

    /// Write the payload's content as it is, whatever its kind (for an
    /// archive: its tar stream, index and trailer), to DEST or standard output.
    #[arg(long, conflicts_with_all = ["tar", "entries"])]
    pub raw: bool,

    /// Threads that authenticate chunks (default: one per core). The output
    /// is the same for every count.
    #[arg(short = 'j', long = "threads", value_name = "THREADS",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,

    /// Keep everything that authenticates instead of nothing: damaged
    /// entries are left out (a stream gets zeros for damaged chunks), each
    /// is reported, and the exit status is still 1.
    #[arg(long)]
    pub salvage: bool,

    /// Replace existing files: an extracted top-level entry that exists is
    /// moved aside and deleted only once everything new is in place. Also
    /// allows binary output to a terminal.
    #[arg(short, long)]
    pub force: bool,

    /// Keep the archived permission bits instead of masking them with the
    /// umask (as tar's --preserve-permissions). Set-uid, set-gid, sticky and
    /// world-write bits are never set.
    #[arg(long, conflicts_with = "tar")]
    pub preserve_permissions: bool,

    /// Do not repair a damaged volume from its parity while reading it:
    /// damage is an error at once, as without parity.
    #[arg(long)]
    pub no_repair: bool,

    /// The volumes of the set, in any order. A disc image or device
    /// (disc.iso, /dev/sr0) is scanned for the volumes on it.
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub keys: KeyArgs,

    #[command(flatten)]
    pub signers: SignerArgs,

    /// Also show kind and permissions, size and modification time (UTC).
    #[arg(short, long)]
    pub long: bool,

    /// Print JSON.
    #[arg(long, conflicts_with = "long")]
    pub json: bool,

    /// Do not repair a damaged volume from its parity while reading it:
    /// damage is an error at once, as without parity.
    #[arg(long)]
    pub no_repair: bool,

    /// The volumes of the set, in any order. A disc image or device
    /// (disc.iso, /dev/sr0) is scanned for the volumes on it.
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Without -i, -p or --passphrase-file, every volume is checked without
    /// a key against its trailer's digests: damage, not who sealed it.
    #[command(flatten)]
    pub keys: KeyArgs,

    /// With --signer and no key, each volume's signature and every chunk
    /// digest are checked without any decryption key.
    #[command(flatten)]
    pub signers: SignerArgs,

    /// Succeed when every volume given is intact, even if the set is not
    /// complete (to check each disc on its own after burning).
    #[arg(long)]
    pub allow_incomplete: bool,

    /// Do not try whether a damaged volume's parity repairs it (exit
    /// status 3 when it does): report the damage alone.
    #[arg(long)]
    pub no_repair: bool,
    /// Without a key or --signer: one JSON document on standard output,
    /// each volume's digests and, for a damaged one, its parity repair
    /// (sectors lost, repaired, unrecoverable, margin, a 64-cell map).
    #[arg(long)]
    pub json: bool,

    /// Volumes to verify, in any order. A disc image or device (disc.iso,
    /// /dev/sr0) is scanned for the volumes on it.
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Directory for the repaired copies, named as the volumes given;
    /// an existing file there is never overwritten.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: PathBuf,

    /// Volumes to repair.
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<PathBuf>,
}

/// Parses `--parity`: a percentage 3..=200 or `none`.
fn parse_parity(text: &str) -> Result<kuvert::Parity, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(kuvert::Parity::None);
    }
    let percent = text.trim_end_matches('%');
    match percent.parse::<u16>() {
        Ok(percent) if (3..=200).contains(&percent) => Ok(kuvert::Parity::Percent(percent)),
        _ => Err(format!("{text:?}: use a percentage from 3 to 200, or none")),
    }
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,

    /// With -i, -p or --passphrase-file, also open the volumes as one set
    /// and show its encrypted manifest (label, creation time, note).
    #[command(flatten)]
    pub keys: KeyArgs,

    /// Volumes to inspect. Nothing in a header is authenticated without a
    /// key: `kuvert verify` checks it.
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportSignatureArgs {
    /// Write the files into DIR (default: beside each volume).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Signed volumes. Existing files are never replaced.
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<PathBuf>,
}
