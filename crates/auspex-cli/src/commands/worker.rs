//! `auspex worker run`: a volunteer worker in the foreground.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auspex_devnet::{discover, pointer_path};
use auspex_worker::{
    BwrapOptions, Fault, KeySource, Level, Limits, SandboxMode, WorkerConfig, WorkerError,
};

use super::{CliError, ExitStatus, home_dir, wait_for_stop};
use crate::args::WorkerCommand;
use crate::printer::Printer;

pub fn run(cmd: WorkerCommand, p: &mut Printer) -> Result<ExitStatus, CliError> {
    let WorkerCommand::Run {
        coordinator,
        key,
        work_dir,
        models,
        stand_in_inference,
        concurrency,
        no_sandbox,
        bwrap,
        timeout,
        poll_interval,
        fault,
    } = cmd;
    if concurrency == 0 {
        return Err(CliError::usage("--concurrency must be at least 1"));
    }
    let poll = Duration::try_from_secs_f64(poll_interval)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| CliError::usage("--poll-interval must be a positive number of seconds"))?;
    let fault = match fault {
        None => None,
        Some(f) => Some(Fault::parse(&f).ok_or_else(|| {
            CliError::usage(format!(
                "unknown fault {f:?}: use wrong-answer, crash, hang, garbage, slow or slow:SECS"
            ))
        })?),
    };
    let home = home_dir()?;
    let coordinator = match coordinator {
        Some(url) => url,
        None => discover(&pointer_path(&home))
            .map(|d| d.coordinator_url)
            .ok_or_else(|| {
                CliError::usage("no --coordinator given and no devnet is running")
                    .hint("pass --coordinator URL, or start one with `auspex devnet up`")
            })?,
    };
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".local/share"));
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".local/state"));
    let key = key.unwrap_or_else(|| data.join("auspex-worker").join("worker_key"));
    let work_dir = work_dir.unwrap_or_else(|| state.join("auspex-worker"));

    let mut config = WorkerConfig::new(coordinator.clone(), KeySource::Path(key.clone()), work_dir);
    config.concurrency = concurrency;
    config.sandbox = if no_sandbox {
        SandboxMode::None
    } else {
        SandboxMode::Bubblewrap(BwrapOptions {
            bwrap,
            landlock_shim: landlock_shim(p),
            ..BwrapOptions::default()
        })
    };
    config.limits = Limits {
        wall_clock: Duration::from_secs(timeout.max(1)),
        cpu_seconds: timeout.max(1),
        ..Limits::default()
    };
    config.poll_interval = poll;
    config.fault = fault;
    config.models_dir = models;
    if stand_in_inference {
        config.inference = Some(Arc::new(auspex_worker::broker::standin::StandIn::new()));
    }
    config.logger = Some(Arc::new(|level: Level, msg: &str| {
        let tag = match level {
            Level::Info => "worker",
            Level::Warn => "worker: warning",
            Level::Error => "worker: error",
        };
        let _ = writeln!(std::io::stderr().lock(), "{tag}: {msg}");
    }));

    p.note(format!("coordinator: {coordinator}"));
    p.note(format!("worker key:  {}", key.display()));
    if let Some(f) = fault {
        p.note(format!("injected fault: {f:?}"));
    }
    if stand_in_inference {
        p.note("inference: the deterministic stand-in generator (not a language model)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure("cannot start the async runtime").caused_by(&e))?;
    let outcome = rt.block_on(auspex_worker::run(config, wait_for_stop()));
    let stats = match outcome {
        Ok(s) => s,
        Err(WorkerError::SandboxUnavailable(msg)) => {
            return Err(CliError::failure("the worker refuses to run tenant code")
                .cause(msg)
                .hint("install bubblewrap: `apt-get install bubblewrap`"));
        }
        Err(e) => return Err(CliError::failure("the worker stopped").caused_by(&e)),
    };
    p.line(format!("worker:    {}", stats.worker_id));
    p.line(format!("leased:    {}", stats.leased));
    p.line(format!("results:   {}", stats.results.len()));
    p.line(format!("refusals:  {}", stats.refusals.len()));
    p.line(format!("receipts:  {}", stats.receipts.len()));
    Ok(ExitStatus::Success)
}

/// This binary as the Landlock shim of the workers' sandboxes, when the
/// kernel enforces Landlock (says which on stderr either way).
pub(crate) fn landlock_shim(p: &mut Printer) -> Option<PathBuf> {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            p.note(format!(
                "sandbox: bubblewrap only (Landlock shim: cannot locate this binary: {e})"
            ));
            return None;
        }
    };
    // The stand-alone shim next to this binary, when installed, starts
    // about a millisecond faster per unit than this (much larger) binary.
    let small = exe.with_file_name("auspex-landlock-shim");
    let small_probe = small
        .is_file()
        .then(|| auspex_worker::landlock::probe(&small))
        .filter(Result::is_ok);
    let (exe, probe) = match small_probe {
        Some(probe) => (small, probe),
        None => {
            let probe = auspex_worker::landlock::probe(&exe);
            (exe, probe)
        }
    };
    match probe {
        Ok(auspex_worker::landlock::Enforcement::Full) => {
            p.note("sandbox: bubblewrap + Landlock");
            Some(exe)
        }
        Ok(auspex_worker::landlock::Enforcement::Partial) => {
            p.note("sandbox: bubblewrap + Landlock (partially enforced by this kernel)");
            Some(exe)
        }
        Err(why) => {
            p.note(format!(
                "sandbox: bubblewrap only (this kernel does not enforce Landlock: {why})"
            ));
            None
        }
    }
}
