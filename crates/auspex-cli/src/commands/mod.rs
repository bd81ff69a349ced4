//! Command implementations: each takes parsed arguments, does the work through
//! the library crates, and prints through the [`Printer`].

mod devnet;
mod key;
mod manifest;
mod package;
mod receipts;
mod tlog;
mod worker;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::args::{Cli, Command};
use crate::printer::Printer;

/// Process exit status (the official CLI's convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Everything worked.
    Success = 0,
    /// The input is invalid, or a check failed.
    Failure = 1,
    /// Usage error, missing input file, or undecodable input.
    Usage = 2,
}

/// An error on its way to the user: message, causes (outermost first), hint.
#[derive(Debug)]
pub struct CliError {
    pub status: ExitStatus,
    pub message: String,
    pub causes: Vec<String>,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(status: ExitStatus, message: impl Into<String>) -> CliError {
        CliError {
            status,
            message: message.into(),
            causes: Vec::new(),
            hint: None,
        }
    }

    pub fn failure(message: impl Into<String>) -> CliError {
        CliError::new(ExitStatus::Failure, message)
    }

    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(ExitStatus::Usage, message)
    }

    /// Adds a cause, and the cause's own sources.
    pub fn caused_by(mut self, cause: &dyn std::error::Error) -> CliError {
        self.causes.push(cause.to_string());
        let mut source = cause.source();
        while let Some(s) = source {
            self.causes.push(s.to_string());
            source = s.source();
        }
        self
    }

    pub fn cause(mut self, cause: impl fmt::Display) -> CliError {
        self.causes.push(cause.to_string());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli, p: &mut Printer) -> Result<ExitStatus, CliError> {
    match cli.command {
        Command::Key(cmd) => key::run(cmd, p),
        Command::Manifest(cmd) => manifest::run(cmd, p),
        Command::Receipts(cmd) => receipts::run(cmd, p),
        Command::Package(cmd) => package::run(cmd, p),
        Command::Devnet(cmd) => devnet::run(cmd, p),
        Command::Tlog(cmd) => tlog::run(cmd, p),
        Command::Worker(cmd) => worker::run(cmd, p),
    }
}

/// The user's home directory (for the default key path).
pub fn home_dir() -> Result<PathBuf, CliError> {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Ok(PathBuf::from(h)),
        _ => Err(
            CliError::usage("cannot find the default key: $HOME is not set")
                .hint("pass --key PATH"),
        ),
    }
}

/// Reads an input file of at most `limit` bytes. A missing file is a usage
/// error (exit 2), as in the official CLI; an oversized one is refused before
/// it is read into memory.
pub fn read_input(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, CliError> {
    let file = std::fs::File::open(path).map_err(|e| {
        let status = if e.kind() == std::io::ErrorKind::NotFound {
            ExitStatus::Usage
        } else {
            ExitStatus::Failure
        };
        CliError::new(status, format!("cannot read {what} {}", path.display())).caused_by(&e)
    })?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| {
        CliError::failure(format!("cannot read {what} {}", path.display())).caused_by(&e)
    })?;
    if bytes.len() as u64 > limit {
        return Err(CliError::failure(format!(
            "{what} {} is larger than the limit of {} bytes",
            path.display(),
            limit
        ))
        .hint(format!("is {} really a {what}?", path.display())));
    }
    Ok(bytes)
}

/// `PATH` with `.sig` appended to its file name (`manifest.json.sig`).
pub fn sig_path_for(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// Resolves on Ctrl-C or SIGTERM (long-running commands: `devnet up`,
/// `worker run`).
pub async fn wait_for_stop() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
