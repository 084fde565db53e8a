//! `kuvert`, the reference CLI: seal data for removable media and open it
//! again. See `kuvert --help`.
//!
//! Exit status: 0 on success, 1 for any failure of data, keys or I/O, 2 for
//! usage errors (clap's own included), 3 when `verify` found damage that
//! parity repairs in full, 130 after Ctrl-C.

#![forbid(unsafe_code)]

mod cli;
mod export;
mod keys;
mod manifest;
mod open;
mod output;
mod parity_volumes;
#[cfg(feature = "plugins")]
mod plugin_ui;
mod progress;
mod repair;
mod report;
mod seal;
mod signers;
mod size;
mod verify;
mod volumes;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = cli.quiet;
    let result = match &cli.command {
        Command::Keygen(args) => keys::keygen(args),
        Command::Seal(args) => seal::seal(args, quiet),
        Command::Open(args) => open::open(args, quiet),
        Command::List(args) => open::list(args, quiet),
        Command::Verify(args) => verify::verify(args, quiet),
        Command::Info(args) => verify::info(args),
        Command::Repair(args) => repair::repair(args, quiet),
        Command::ExportSignature(args) => export::export_signature(args),
    };
    // After Ctrl-C the handler ends the process, with 130.
    output::wait_if_interrupted();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(fail) => {
            eprintln!("kuvert: {}", fail.message);
            ExitCode::from(fail.code)
        }
    }
}
