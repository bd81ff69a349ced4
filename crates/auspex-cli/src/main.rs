//! The `auspex` binary: parse → run → render. Only this crate prints; library
//! crates return typed errors that are turned into messages and exit codes here.
//!
//! Exit codes follow the official CLI: 0 success, 1 failure (invalid input,
//! failed verification), 2 usage or decoding errors.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod commands;
mod printer;

use std::process::ExitCode;

use clap::Parser;

use crate::printer::Printer;

fn main() -> ExitCode {
    // The Landlock shim the worker runs inside its sandbox (hidden; see
    // `auspex_worker::landlock`): handled before any parsing or printing.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if raw
        .get(1)
        .is_some_and(|a| a == auspex_worker::landlock::SHIM_COMMAND)
    {
        return landlock_shim(&raw[2..]);
    }
    let cli = args::Cli::parse();
    let mut printer = Printer::stdio();
    let status = match commands::run(cli, &mut printer) {
        Ok(status) => status,
        Err(err) => {
            printer.error(&err);
            err.status
        }
    };
    // A closed stdout (`auspex … | head`) is not a failure.
    if printer.broken_pipe() {
        return ExitCode::SUCCESS;
    }
    ExitCode::from(status as u8)
}

/// `auspex __landlock-exec …`: restrict, then become the sandbox wrapper.
/// Returns only on failure (or after `--probe`).
fn landlock_shim(args: &[std::ffi::OsString]) -> ExitCode {
    match auspex_worker::landlock::shim(args) {
        Ok(enforcement) => {
            println!("{}", enforcement.probe_line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("auspex sandbox: {e}");
            ExitCode::from(auspex_worker::landlock::SHIM_FAILED as u8)
        }
    }
}
