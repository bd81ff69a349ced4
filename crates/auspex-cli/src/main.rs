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
