//! Landlock as a second layer inside the bubblewrap sandbox (`worker.md`
//! §3.6).
//!
//! Bubblewrap decides what tenant code can *see* (a mount namespace with
//! the system read-only, the package, a private workspace). Landlock decides
//! what it may *do* with what it sees, enforced by the kernel on the process
//! and everything it starts, independently of the mount setup: read and
//! execute under the system directories, the package and the model store;
//! write only in the workspace and `/tmp`; existing device files may be
//! read and written but nothing created in `/dev`; `/proc` read-only; no TCP
//! `bind`/`connect` at all; no signals to, and no abstract Unix sockets of,
//! processes outside the sandbox.
//!
//! A restriction must be applied by code running inside the sandbox before
//! tenant code starts, so the `auspex` binary doubles as a tiny shim:
//! bubblewrap binds it read-only into the sandbox and runs `<shim>
//! __landlock-exec --read P… --write P… -- <wrapper argv>`; the shim
//! restricts itself with [`restrict`] and `exec`s the wrapper (no `unsafe`:
//! the restriction is the crate's safe API, the `exec` is the standard
//! library's). The worker only uses the shim after [`probe`] showed the
//! kernel enforces Landlock; the shim then fails closed (exit
//! [`SHIM_FAILED`]) if the restriction cannot be applied.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

/// The hidden subcommand of the `auspex` binary that is the shim.
pub const SHIM_COMMAND: &str = "__landlock-exec";

/// Where the shim is bound inside the sandbox.
pub const SHIM_PATH_IN_SANDBOX: &str = "/run/auspex/landlock-exec";

/// The shim's exit status when it cannot restrict or exec (the sandbox
/// wrapper's "sandbox unavailable" status, so the unit is refused, not run
/// without the layer).
pub const SHIM_FAILED: i32 = 97;

/// The ABI whose rights we ask for (Linux 6.12); a kernel with less enforces
/// what it has and the status says "partially".
const TARGET: ABI = ABI::V6;

/// What tenant code may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Read and execute beneath these.
    pub read: Vec<PathBuf>,
    /// Everything (create, write, remove, …) beneath these.
    pub write: Vec<PathBuf>,
}

/// How much of the requested restriction the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// Every requested right is enforced.
    Full,
    /// The kernel enforces an older subset.
    Partial,
}

impl Enforcement {
    /// The line the shim prints after `--probe` ([`probe`] reads it back).
    pub fn probe_line(self) -> &'static str {
        match self {
            Enforcement::Full => "landlock: full",
            Enforcement::Partial => "landlock: partial",
        }
    }
}

/// Why a restriction could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    /// The kernel has no (enabled) Landlock.
    #[error("the kernel does not enforce Landlock (not built in, or not enabled at boot)")]
    Unsupported,
    /// Building or applying the ruleset failed.
    #[error("landlock ruleset: {0}")]
    Ruleset(#[from] landlock::RulesetError),
    /// The shim's command line is wrong.
    #[error("{SHIM_COMMAND}: {0}")]
    Usage(String),
    /// `exec` failed.
    #[error("{SHIM_COMMAND}: cannot run {program}: {source}")]
    Exec {
        /// The program.
        program: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn rule(path: &Path, access: BitFlags<AccessFs>) -> Option<PathBeneath<PathFd>> {
    // A path that does not exist on this system (say `/lib32`) is simply
    // not granted.
    PathFd::new(path)
        .ok()
        .map(|fd| PathBeneath::new(fd, access))
}

/// Restricts this process and its future children to `policy`.
pub fn restrict(policy: &Policy) -> Result<Enforcement, LandlockError> {
    let all = AccessFs::from_all(TARGET);
    let read = AccessFs::from_read(TARGET);
    // Existing device files (`/dev/null`, `/dev/urandom`, a tty): read,
    // write, truncate (`> /dev/null`), device ioctls — no creating.
    let devices = read | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;
    let mut rules: Vec<PathBeneath<PathFd>> = Vec::new();
    rules.extend(policy.read.iter().filter_map(|p| rule(p, read)));
    rules.extend(policy.write.iter().filter_map(|p| rule(p, all)));
    rules.extend(rule(Path::new("/dev"), devices));
    rules.extend(rule(Path::new("/proc"), read));
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)?
        // No rules for TCP: every bind and connect is denied.
        .handle_access(AccessNet::from_all(TARGET))?
        .scope(Scope::from_all(TARGET))?
        .create()?
        .add_rules(rules.into_iter().map(Ok::<_, landlock::RulesetError>))?
        .restrict_self()?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(Enforcement::Full),
        RulesetStatus::PartiallyEnforced => Ok(Enforcement::Partial),
        _ => Err(LandlockError::Unsupported),
    }
}

/// The shim: `__landlock-exec [--read P]… [--write P]… -- PROGRAM ARGS…`
/// (arguments after the subcommand). Restricts, then replaces this process
/// with `PROGRAM`; returns only on failure. `--probe` instead restricts
/// (to nothing) and returns the enforcement, for [`probe`].
pub fn shim(args: &[OsString]) -> Result<Enforcement, LandlockError> {
    let mut policy = Policy::default();
    let mut it = args.iter();
    let mut probe = false;
    let program: Vec<OsString> = loop {
        let Some(a) = it.next() else {
            return if probe {
                restrict(&policy)
            } else {
                Err(LandlockError::Usage("missing `-- PROGRAM`".into()))
            };
        };
        match a.to_str() {
            Some("--read") | Some("--write") => {
                let p = it
                    .next()
                    .ok_or_else(|| LandlockError::Usage(format!("{a:?} needs a path")))?;
                if a == "--read" {
                    policy.read.push(PathBuf::from(p));
                } else {
                    policy.write.push(PathBuf::from(p));
                }
            }
            Some("--probe") => probe = true,
            Some("--") => break it.cloned().collect(),
            _ => return Err(LandlockError::Usage(format!("unexpected argument {a:?}"))),
        }
    };
    let Some((first, rest)) = program.split_first() else {
        return Err(LandlockError::Usage("missing PROGRAM after `--`".into()));
    };
    restrict(&policy)?;
    use std::os::unix::process::CommandExt as _;
    let source = Command::new(first).args(rest).exec();
    Err(LandlockError::Exec {
        program: first.to_string_lossy().into_owned(),
        source,
    })
}

/// Runs `shim_binary __landlock-exec --probe` and reports whether the
/// kernel enforces Landlock there (the worker itself is never restricted).
pub fn probe(shim_binary: &Path) -> Result<Enforcement, String> {
    let out = Command::new(shim_binary)
        .args([SHIM_COMMAND, "--probe"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", shim_binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.trim();
    match [Enforcement::Full, Enforcement::Partial]
        .into_iter()
        .find(|e| out.status.success() && e.probe_line() == line)
    {
        Some(e) => Ok(e),
        None => Err(format!(
            "{}{}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The shim's argv inside the sandbox: the policy for one unit followed by
/// `program`.
pub fn shim_argv(policy: &Policy, program: &[String]) -> Vec<String> {
    let mut v = vec![SHIM_PATH_IN_SANDBOX.to_owned(), SHIM_COMMAND.to_owned()];
    for p in &policy.read {
        v.extend(["--read".to_owned(), p.to_string_lossy().into_owned()]);
    }
    for p in &policy.write {
        v.extend(["--write".to_owned(), p.to_string_lossy().into_owned()]);
    }
    v.push("--".to_owned());
    v.extend(program.iter().cloned());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_argv_lists_the_policy_then_the_program() {
        let p = Policy {
            read: vec!["/usr".into(), "/pkg".into()],
            write: vec!["/ws".into()],
        };
        assert_eq!(
            shim_argv(&p, &["/bin/sh".into(), "-c".into()]),
            [
                SHIM_PATH_IN_SANDBOX,
                SHIM_COMMAND,
                "--read",
                "/usr",
                "--read",
                "/pkg",
                "--write",
                "/ws",
                "--",
                "/bin/sh",
                "-c"
            ]
        );
    }

    #[test]
    fn bad_shim_arguments_are_usage_errors() {
        for args in [
            vec![],
            vec!["--read"],
            vec!["--bogus", "--", "x"],
            vec!["--write", "/tmp", "--"],
        ] {
            let args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
            assert!(
                matches!(shim(&args), Err(LandlockError::Usage(_))),
                "{args:?}"
            );
        }
    }
}
