//! `auspex devnet up|down|status|tenant add|approve`.

use std::time::{Duration, Instant};

use auspex_devnet::admin::{self, AdminError};
use auspex_devnet::{Devnet, DevnetConfig, DevnetInfo, discover, pointer_path};
use auspex_wire::json::{self, Value};

use super::{CliError, ExitStatus, home_dir, wait_for_stop};
use crate::args::{DevnetCommand, DevnetSelect, DevnetTenantCommand};
use crate::printer::Printer;

pub fn run(cmd: DevnetCommand, p: &mut Printer) -> Result<ExitStatus, CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure("cannot start the async runtime").caused_by(&e))?;
    match cmd {
        DevnetCommand::Up {
            state,
            port,
            auto_approve,
            workers,
            faulty_workers,
            fault,
            no_sandbox,
            lease,
            stand_in_model,
        } => {
            let fault = match fault.as_deref() {
                None => None,
                Some(f) => Some(auspex_worker::Fault::parse(f).ok_or_else(|| {
                    CliError::usage(format!(
                        "unknown fault {f:?}: use wrong-answer, crash, hang, garbage, slow or slow:SECS"
                    ))
                })?),
            };
            if faulty_workers > workers {
                return Err(CliError::usage(format!(
                    "--faulty-workers {faulty_workers} is more than --workers {workers}"
                )));
            }
            let config = DevnetConfig {
                state_dir: state,
                coordinator_port: port,
                auto_approve,
                workers,
                faulty_workers,
                fault,
                no_sandbox,
                lease: lease.map(std::time::Duration::from_secs),
                pointer: None,
                stand_in_model,
                landlock_shim: if no_sandbox {
                    None
                } else {
                    super::worker::landlock_shim(p)
                },
            };
            rt.block_on(up(config, p))
        }
        DevnetCommand::Down(select) => down(&select, p),
        DevnetCommand::Status { select, json } => rt.block_on(status(&select, json, p)),
        DevnetCommand::Tenant(DevnetTenantCommand::Add {
            tenant_id,
            pubkey,
            key,
            select,
        }) => {
            let pubkey = match (pubkey, key) {
                (Some(hex), _) => {
                    let hex = hex.to_ascii_lowercase();
                    if auspex_crypto::manifest::parse_pubkey(&hex).is_none() {
                        return Err(CliError::usage(format!(
                            "--pubkey {hex:?} is not an Ed25519 public key (64 hex characters)"
                        )));
                    }
                    hex
                }
                (None, Some(path)) => auspex_crypto::keys::load(&path)
                    .map_err(|e| {
                        CliError::failure(format!("failed to load key from {}", path.display()))
                            .caused_by(&e)
                    })?
                    .public_hex(),
                (None, None) => return Err(CliError::usage("pass --pubkey HEX or --key PATH")),
            };
            let info = select_devnet(&select)?;
            rt.block_on(admin::add_tenant(&info, &tenant_id, &pubkey))
                .map_err(|e| admin_error(&info, "cannot add the tenant", e))?;
            p.line(format!("tenant {tenant_id} registered with key {pubkey}"));
            p.line(format!("coordinator: {}", info.coordinator_url));
            Ok(ExitStatus::Success)
        }
        DevnetCommand::Approve {
            experiment_id,
            select,
        } => {
            let info = select_devnet(&select)?;
            let v = rt
                .block_on(admin::approve(&info, &experiment_id))
                .map_err(|e| admin_error(&info, "cannot approve the experiment", e))?;
            let status = v.get("status").and_then(Value::as_str).unwrap_or("?");
            p.line(format!("{experiment_id}: {status}"));
            Ok(ExitStatus::Success)
        }
    }
}

fn admin_error(info: &DevnetInfo, what: &str, e: AdminError) -> CliError {
    let hint = matches!(e, AdminError::Unreachable { .. }).then(|| {
        format!(
            "is the devnet still running? `auspex devnet status` checks ({})",
            info.coordinator_url
        )
    });
    let err = CliError::failure(what).caused_by(&e);
    match hint {
        Some(h) => err.hint(h),
        None => err,
    }
}

/// The devnet named by `--state`, or the running one.
fn select_devnet(select: &DevnetSelect) -> Result<DevnetInfo, CliError> {
    if let Some(dir) = &select.state {
        let path = dir.join("devnet.json");
        return DevnetInfo::load(&path).map_err(|e| {
            CliError::failure(format!("no devnet description in {}", dir.display())).caused_by(&e)
        });
    }
    let pointer = pointer_path(&home_dir()?);
    discover(&pointer).ok_or_else(|| {
        CliError::failure("no devnet is running").hint("start one with `auspex devnet up`")
    })
}

async fn up(mut config: DevnetConfig, p: &mut Printer) -> Result<ExitStatus, CliError> {
    let pointer = pointer_path(&home_dir()?);
    if let Some(running) = discover(&pointer) {
        return Err(CliError::failure(format!(
            "a devnet is already running (pid {}, {})",
            running.pid, running.coordinator_url
        ))
        .hint("stop it with `auspex devnet down`, or use it as it is"));
    }
    if config.workers > 0 && !config.no_sandbox && !bwrap_available() {
        return Err(CliError::failure(
            "the devnet's workers need bubblewrap to sandbox tenant code",
        )
        .hint(
            "install it with `apt-get install bubblewrap`, or pass --no-sandbox for trusted code",
        ));
    }
    if let Some(id) = &config.stand_in_model {
        let valid = id.len() <= 128
            && id.starts_with(|c: char| c.is_ascii_alphanumeric())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
        if !valid {
            return Err(CliError::usage(format!(
                "--stand-in-model {id:?} is not a model id ([A-Za-z0-9][A-Za-z0-9._:-]*, at most 128)"
            )));
        }
    }
    config.pointer = Some(pointer);
    let stand_in = config.stand_in_model.clone();
    let devnet = Devnet::start(config)
        .await
        .map_err(|e| CliError::failure("the devnet did not start").caused_by(&e))?;
    print_info(devnet.info(), p);
    if let Some(id) = stand_in {
        p.line(format!(
            "stand-in model:    {id} (a deterministic text generator, NOT a language model)"
        ));
    }
    p.note("devnet up; Ctrl-C (or `auspex devnet down`) stops it");
    wait_for_stop().await;
    p.note("stopping the devnet…");
    let ephemeral = devnet.info().ephemeral;
    devnet.shutdown().await;
    if ephemeral {
        p.note("temporary state removed");
    }
    Ok(ExitStatus::Success)
}

fn bwrap_available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("bwrap").is_file()))
}

fn print_info(info: &DevnetInfo, p: &mut Printer) {
    p.line(format!("coordinator:       {}", info.coordinator_url));
    p.line(format!("coordinator key:   {}", info.coordinator_pubkey));
    if let Some(tlog) = &info.tlog_url {
        p.line(format!("transparency log:  {tlog}"));
    }
    if let Some(root) = &info.trusted_root_path {
        p.line(format!("trusted root:      {}", root.display()));
    }
    p.line(format!(
        "maintainer token:  {}",
        info.maintainer_token_path.display()
    ));
    p.line(format!(
        "state:             {}{}",
        info.state_dir.display(),
        if info.ephemeral {
            " (temporary: removed when the devnet stops; pass --state DIR to keep it)"
        } else {
            ""
        }
    ));
    p.line(format!(
        "description:       {}",
        info.state_dir.join("devnet.json").display()
    ));
    p.line(format!("workers:           {}", info.workers));
    p.line(format!(
        "approval:          {}",
        if info.auto_approve {
            "automatic"
        } else {
            "by `auspex devnet approve EXPERIMENT_ID`"
        }
    ));
}

fn down(select: &DevnetSelect, p: &mut Printer) -> Result<ExitStatus, CliError> {
    let info = select_devnet(select)?;
    if !info.is_alive() {
        return Err(CliError::failure(format!(
            "the devnet of {} is not running (pid {} is gone)",
            info.state_dir.display(),
            info.pid
        )));
    }
    let pid = rustix::process::Pid::from_raw(info.pid as i32)
        .ok_or_else(|| CliError::failure(format!("invalid pid {}", info.pid)))?;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).map_err(|e| {
        CliError::failure(format!("cannot signal the devnet (pid {})", info.pid)).caused_by(&e)
    })?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while info.is_alive() {
        if Instant::now() > deadline {
            return Err(CliError::failure(format!(
                "the devnet (pid {}) did not stop within 20 s",
                info.pid
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    p.line(format!("devnet stopped ({})", info.coordinator_url));
    Ok(ExitStatus::Success)
}

async fn status(
    select: &DevnetSelect,
    as_json: bool,
    p: &mut Printer,
) -> Result<ExitStatus, CliError> {
    let info = select_devnet(select)?;
    let tenants = admin::tenants(&info)
        .await
        .map_err(|e| admin_error(&info, "cannot list tenants", e))?;
    let experiments = admin::experiments(&info)
        .await
        .map_err(|e| admin_error(&info, "cannot list experiments", e))?;
    let list = |v: &Value, key: &str| -> Vec<Value> {
        match v {
            Value::Array(a) => a.clone(),
            other => other
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        }
    };
    let tenants = list(&tenants, "tenants");
    let experiments = list(&experiments, "experiments");
    if as_json {
        let mut o = match info.to_value() {
            Value::Object(o) => o,
            _ => json::Object::new(),
        };
        o.insert("running".into(), Value::Bool(info.is_alive()));
        o.insert("tenants".into(), Value::Array(tenants));
        o.insert("experiments".into(), Value::Array(experiments));
        p.line(json::python_indent(&Value::Object(o)));
        return Ok(ExitStatus::Success);
    }
    print_info(&info, p);
    p.line(format!("process:           {} (running)", info.pid));
    p.line(format!("tenants:           {}", tenants.len()));
    for t in &tenants {
        let id = t.get("tenant_id").and_then(Value::as_str).unwrap_or("?");
        let key = t
            .get("maintainer_pubkey")
            .and_then(Value::as_str)
            .unwrap_or("?");
        p.line(format!("  {id}  {key}"));
    }
    p.line(format!("experiments:       {}", experiments.len()));
    for e in &experiments {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        p.line(format!(
            "  {}  {}  {}",
            s("experiment_id"),
            s("status"),
            s("tenant_experiment_label")
        ));
    }
    Ok(ExitStatus::Success)
}
