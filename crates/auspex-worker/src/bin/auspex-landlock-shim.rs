//! The Landlock shim as a stand-alone program: `auspex-landlock-shim
//! __landlock-exec [--probe] [--read P]… [--write P]… -- PROGRAM ARGS…`.
//!
//! The `auspex` binary is its own shim; this one serves programs that embed
//! the worker library without being `auspex` (and the sandbox tests). See
//! `auspex_worker::landlock`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::ffi::OsString;
use std::process::ExitCode;

use auspex_worker::landlock::{self, SHIM_COMMAND, SHIM_FAILED};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let rest = match args.split_first() {
        Some((first, rest)) if first == SHIM_COMMAND => rest,
        _ => {
            eprintln!(
                "usage: auspex-landlock-shim {SHIM_COMMAND} [--probe] [--read PATH]… [--write PATH]… -- PROGRAM ARGS…"
            );
            return ExitCode::from(2);
        }
    };
    match landlock::shim(rest) {
        Ok(e) => {
            println!("{}", e.probe_line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("auspex sandbox: {e}");
            ExitCode::from(SHIM_FAILED as u8)
        }
    }
}
