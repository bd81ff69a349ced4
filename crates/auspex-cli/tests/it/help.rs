//! `--help` works on every group and command, and `--version` everywhere.

use crate::common::*;

const COMMANDS: &[&[&str]] = &[
    &[],
    &["key"],
    &["key", "generate"],
    &["key", "pubkey"],
    &["manifest"],
    &["manifest", "validate"],
    &["manifest", "sign"],
    &["manifest", "verify"],
    &["manifest", "hash"],
    &["receipts"],
    &["receipts", "show"],
    &["tlog"],
    &["tlog", "verify-entry"],
    &["devnet"],
    &["devnet", "up"],
    &["devnet", "down"],
    &["devnet", "status"],
    &["devnet", "tenant"],
    &["devnet", "tenant", "add"],
    &["devnet", "approve"],
];

#[test]
fn help_on_every_command() {
    let ctx = Ctx::new();
    for cmd in COMMANDS {
        let mut c = ctx.auspex();
        c.args(*cmd).arg("--help");
        let run = Run::from(c.output().expect("runs")).ok();
        let usage = format!(
            "Usage: auspex{}{}",
            if cmd.is_empty() { "" } else { " " },
            cmd.join(" ")
        );
        assert!(run.stdout.contains(&usage), "{cmd:?}: {}", run.stdout);
    }
}

#[test]
fn version_everywhere() {
    let ctx = Ctx::new();
    for cmd in COMMANDS {
        let mut c = ctx.auspex();
        c.args(*cmd).arg("--version");
        let run = Run::from(c.output().expect("runs")).ok();
        let want = format!(" {}\n", env!("CARGO_PKG_VERSION"));
        assert!(
            run.stdout.starts_with("auspex") && run.stdout.ends_with(&want),
            "{cmd:?}: {}",
            run.stdout
        );
    }
}

#[test]
fn a_group_without_a_command_is_a_usage_error() {
    let ctx = Ctx::new();
    for group in ["key", "manifest", "receipts", "tlog", "devnet"] {
        let run = ctx.run(&[&group]);
        assert_eq!(run.code, 2, "{group}: {}", run.stderr);
    }
}
