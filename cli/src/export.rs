//! `kuvert export-signature` and `seal --sig-files`: a signed volume's
//! statement and signatures as files (`VOL.statement`, `VOL.sig`, a second
//! signer's `VOL.2.sig`, …), and the stock commands that check them
//! (SPEC.md §14): `ssh-keygen -Y verify` for the signature, `b3sum` for the
//! volume's chunk bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use kuvert::FileSource;

use crate::cli::ExportSignatureArgs;
use crate::output::TempOutput;
use crate::report::{Fail, Names, Result, io_fail, shown};
use crate::volumes::open_fail;

const STATEMENT_SUFFIX: &str = ".statement";
const SIGNATURE_SUFFIX: &str = ".sig";

/// The statement file of the volume file `name`.
fn statement_name(name: &str) -> String {
    format!("{name}{STATEMENT_SUFFIX}")
}

/// The signature file of signer `index` (from 0) of the volume `name`:
/// `NAME.sig` for the first, `NAME.2.sig`, … for the others.
fn signature_name(name: &str, index: usize) -> String {
    match index {
        0 => format!("{name}{SIGNATURE_SUFFIX}"),
        _ => format!("{name}.{}{SIGNATURE_SUFFIX}", index + 1),
    }
}

/// The volume file name a statement or signature file belongs to, if
/// `name` is one of those names.
pub fn volume_of_signature_file(name: &str) -> Option<&str> {
    if let Some(volume) = name.strip_suffix(STATEMENT_SUFFIX) {
        return Some(volume);
    }
    let rest = name.strip_suffix(SIGNATURE_SUFFIX)?;
    match rest.rsplit_once('.') {
        Some((volume, "2" | "3" | "4")) => Some(volume),
        _ => Some(rest),
    }
}

/// Files written for one volume, and what the stock commands need.
struct Exported {
    statement: PathBuf,
    signatures: Vec<PathBuf>,
    header_len: u64,
    chunk_end: u64,
    volume: u32,
    signers: Vec<kuvert::SignerKey>,
}

/// Writes the statement and signature files of the signed volume `path`
/// into `dir` (beside the volume if `None`); never replaces a file unless
/// `force`. Returns the files written.
pub fn write_signature_files(path: &Path, dir: Option<&Path>, force: bool) -> Result<Vec<PathBuf>> {
    let exported = export(path, dir, force)?;
    let mut written = vec![exported.statement];
    written.extend(exported.signatures);
    Ok(written)
}

fn export(path: &Path, dir: Option<&Path>, force: bool) -> Result<Exported> {
    let source = FileSource::open(path).map_err(|err| open_fail(path, &err))?;
    let mut names = Names::new();
    names.push(path, None);
    let records = kuvert::signature_records(&source).map_err(|err| names.fail(&err))?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| Fail::usage(format!("{} is not a file name", shown(path))))?;
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let statement = dir.join(statement_name(&name));
    let signatures: Vec<PathBuf> = (0..records.signatures.len())
        .map(|index| dir.join(signature_name(&name, index)))
        .collect();
    // All or nothing: refuse before writing any file of this volume.
    for target in std::iter::once(&statement).chain(&signatures) {
        crate::output::check_new(target, force)?;
    }
    write_file(&statement, &records.statement, force)?;
    for (target, armored) in signatures.iter().zip(&records.signatures) {
        write_file(target, armored, force)?;
    }
    Ok(Exported {
        statement,
        signatures,
        header_len: records.header_len,
        chunk_end: records.chunk_end,
        volume: records.volume,
        signers: records.signers,
    })
}

/// Writes `bytes` to `target` through a temporary name.
fn write_file(target: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let mut out = TempOutput::create(target, force)?;
    out.write_all(bytes)
        .map_err(|err| io_fail("cannot write", target, &err))?;
    out.commit()
}

/// `kuvert export-signature VOLUME… [-o DIR]`.
pub fn export_signature(args: &ExportSignatureArgs) -> Result<()> {
    if let Some(dir) = &args.output
        && !dir.is_dir()
    {
        return Err(Fail::data(format!("{} is not a directory", shown(dir))));
    }
    let mut out = std::io::stdout().lock();
    for path in &args.volumes {
        let exported = export(path, args.output.as_deref(), false)?;
        let lines = commands(path, &exported);
        for line in lines {
            writeln!(out, "{line}")
                .map_err(|err| Fail::data(format!("cannot write to standard output: {err}")))?;
        }
    }
    Ok(())
}

/// What `export-signature` prints for one volume: the files, then the
/// commands that check them with stock tools alone.
fn commands(path: &Path, exported: &Exported) -> Vec<String> {
    let volume = sh_quote(&path.to_string_lossy());
    let statement = sh_quote(&exported.statement.to_string_lossy());
    let mut lines = vec![format!(
        "# {}: volume {}, signed by {}",
        shown(path),
        exported.volume,
        crate::signers::fingerprints(&exported.signers)
    )];
    let mut files = vec![shown(&exported.statement)];
    files.extend(exported.signatures.iter().map(|sig| shown(sig)));
    lines.push(format!("# wrote {}", files.join(", ")));
    lines.push(
        "# check the signature (PRINCIPAL: the signer's name in allowed_signers), then the \
         volume's chunk bytes (bash):"
            .into(),
    );
    for sig in &exported.signatures {
        lines.push(format!(
            "ssh-keygen -Y verify -f allowed_signers -I PRINCIPAL -n kuvert -s {} < {statement}",
            sh_quote(&sig.to_string_lossy())
        ));
    }
    // `head` first: a `tail` cut short by `head` dies of SIGPIPE, which
    // fails the pipeline under `set -o pipefail`.
    lines.push(format!(
        "head -c {} {volume} | tail -c +{} | b3sum -c <(tail -n 1 {statement})",
        exported.chunk_end,
        exported.header_len + 1
    ));
    lines
}

/// `text` as one shell word: as it is if it needs no quoting, else in
/// single quotes.
fn sh_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-+=:,@%".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_file_names_map_back_to_their_volume() {
        assert_eq!(statement_name("p.001.kuv"), "p.001.kuv.statement");
        assert_eq!(signature_name("p.001.kuv", 0), "p.001.kuv.sig");
        assert_eq!(signature_name("p.001.kuv", 1), "p.001.kuv.2.sig");
        for name in [
            "p.001.kuv.statement",
            "p.001.kuv.sig",
            "p.001.kuv.2.sig",
            "p.001.kuv.4.sig",
        ] {
            assert_eq!(volume_of_signature_file(name), Some("p.001.kuv"), "{name}");
        }
        assert_eq!(
            volume_of_signature_file("p.001.kuv.5.sig"),
            Some("p.001.kuv.5")
        );
        assert_eq!(volume_of_signature_file("p.001.kuv"), None);
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(
            sh_quote("parcel/register.001.kuv"),
            "parcel/register.001.kuv"
        );
        assert_eq!(sh_quote("my disc.kuv"), "'my disc.kuv'");
        assert_eq!(sh_quote("it's.kuv"), "'it'\\''s.kuv'");
        assert_eq!(sh_quote(""), "''");
    }
}
