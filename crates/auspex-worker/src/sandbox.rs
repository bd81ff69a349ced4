//! The sandbox (`worker.md` §3.6): bubblewrap plus rlimits, built as an argv
//! (no `unsafe`, no code of ours runs in the child).
//!
//! ```text
//! bwrap --die-with-parent --new-session
//!       --unshare-all --cap-drop ALL                      (unprivileged worker)
//!     | --unshare-{ipc,pid,net,uts,cgroup-try}
//!       --cap-drop ALL --cap-add CAP_SET{UID,GID,PCAP}    (root worker, see below)
//!       --ro-bind /usr /usr, /bin /sbin /lib* as binds or symlinks,
//!       four read-only /etc entries (ld.so.cache, alternatives, passwd, group)
//!       --proc /proc --dev /dev --perms 1777 --size S --tmpfs /tmp
//!       --ro-bind <package> <package>  [--ro-bind <model dir> <model dir>]
//!       --perms 0777 --size S --tmpfs <workspace>
//!       --ro-bind <host exec_input.json> <workspace>/exec_input.json
//!       [--bind <workspace>/inference.sock <workspace>/inference.sock]
//!       --chdir <package> --clearenv --setenv … --
//!   [setpriv --reuid U --regid U --clear-groups --inh-caps=-all
//!            --bounding-set=-all --no-new-privs --]            (root worker)
//!   [/run/auspex/landlock-exec __landlock-exec --read … --write … --]
//!    /bin/sh -c <wrapper> sh <workspace>/exec_output.json <executor argv…>
//! ```
//!
//! The wrapper ([`WRAPPER`]) sets the rlimits with `ulimit` builtins (core
//! 0, open files, file size, address space, CPU soft then hard, processes:
//! dash `-p`, bash `-u`) and exits 97 before announcing itself if any
//! cannot be set (fail closed: `sandbox_unavailable`), then runs the
//! executor, reports its status and streams the output file.
//!
//! * **Network**: a new, empty network namespace; only loopback, on which
//!   nothing listens. A unit with an inference broker (`worker.md` §7) also
//!   gets its socket, bound in at `<workspace>/inference.sock`.
//! * **Files**: the sandbox root is a fresh tmpfs; the system is read-only;
//!   the worker's key, home, work directory and every other package are
//!   simply not there. The package is read-only. The workspace is a private
//!   size-capped tmpfs at the workspace path (so the disk cannot be filled
//!   through it) and `/tmp` another; `exec_input.json` is bound in
//!   read-only. The executor's `exec_output.json` leaves the sandbox through
//!   the wrapper's stdout after the executor exits (capped at
//!   [`Limits::output_bytes`](crate::Limits)); the executor's own stdout goes
//!   to stderr, which the worker keeps a tail of.
//! * **Processes**: a new session and PID namespace (`--die-with-parent`):
//!   killing bwrap's process group on the wall-clock deadline takes the whole
//!   namespace down. `RLIMIT_NPROC` counts per user, and root is exempt from
//!   it, so a worker running as root drops tenant code to a dedicated uid
//!   ([`BwrapOptions::sandbox_uid_base`] + slot) with every capability
//!   dropped and `no_new_privs`; an unprivileged worker gets a user
//!   namespace, where the count is per sandbox.
//! * **Landlock**, when [`BwrapOptions::landlock_shim`] is set (the CLI
//!   sets it after [`crate::landlock::probe`] found the kernel enforcing
//!   it): the shim is bound read-only at
//!   [`SHIM_PATH_IN_SANDBOX`](crate::landlock::SHIM_PATH_IN_SANDBOX) and
//!   runs first (after `setpriv`), restricting itself to
//!   [`landlock_policy`] — read/execute under the system, the package and
//!   the model store, write only in the workspace and `/tmp`, no TCP bind
//!   or connect, no signals or abstract sockets outside — and then `exec`s
//!   the wrapper. No seccomp filter (bwrap takes one only as an inherited
//!   file descriptor).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::config::{BwrapOptions, Limits};
use crate::landlock::{self, SHIM_PATH_IN_SANDBOX};

/// The first line the wrapper prints: the sandbox came up.
pub const MARK_UP: &str = "AUSPEX-SANDBOX-UP";
/// `AUSPEX-EXIT <status>`: the executor ended with this status.
pub const MARK_EXIT: &str = "AUSPEX-EXIT";

/// The in-sandbox wrapper: announce, run the executor with stdout folded
/// into stderr and no stdin, report its status, then stream the output
/// file on success.
pub const WRAPPER: &str = r#"out=$1; shift
{ ulimit -c 0 && ulimit -n "$AUSPEX_NOFILE" && ulimit -f "$AUSPEX_FSIZE_BLOCKS" &&
  ulimit -v "$AUSPEX_AS_KIB" && ulimit -S -t "$AUSPEX_CPU" && ulimit -H -t "$AUSPEX_CPU_HARD" &&
  { ulimit -p "$AUSPEX_NPROC" 2>/dev/null || ulimit -u "$AUSPEX_NPROC"; }; } || exit 97
unset AUSPEX_NOFILE AUSPEX_FSIZE_BLOCKS AUSPEX_AS_KIB AUSPEX_CPU_HARD AUSPEX_CPU AUSPEX_NPROC
printf 'AUSPEX-SANDBOX-UP\n'
"$@" >&2 </dev/null
rc=$?
printf 'AUSPEX-EXIT %d\n' "$rc"
if [ "$rc" -eq 0 ] && [ -f "$out" ]; then exec cat -- "$out"; fi
exit 0"#;

/// `/etc` entries bound read-only: the dynamic loader's cache, Debian's
/// alternatives (some `/usr/bin` commands are links into it), and user and
/// group names. Nothing else of `/etc` is visible.
const ETC_FILES: [&str; 4] = [
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/etc/passwd",
    "/etc/group",
];

/// Top-level system directories, bound read-only (or re-created as the
/// symbolic links they are on merged-/usr systems).
const SYSTEM_DIRS: [&str; 6] = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// Whether the worker runs as root (tenant code then gets its own uid).
pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Uids handed to concurrent sandboxes of this process.
static UIDS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// A sandbox uid held for one run (released on drop).
#[derive(Debug)]
pub struct UidLease(u32);

impl UidLease {
    /// The smallest free uid from `base` (1024 candidates).
    pub fn acquire(base: u32) -> Option<UidLease> {
        let mut used = UIDS.lock().unwrap_or_else(|p| p.into_inner());
        let uid = (base..base.saturating_add(1024)).find(|u| !used.contains(u))?;
        used.insert(uid);
        Some(UidLease(uid))
    }

    /// The uid (also used as the gid).
    pub fn uid(&self) -> u32 {
        self.0
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        UIDS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

/// What one sandboxed run binds and runs.
#[derive(Debug, Clone)]
pub struct SandboxPlan<'a> {
    /// The package directory (read-only, the cwd).
    pub package_dir: &'a Path,
    /// The workspace path (a private tmpfs inside).
    pub workspace: &'a Path,
    /// The host file bound read-only at `<workspace>/exec_input.json`.
    pub host_input: &'a Path,
    /// A model directory from the store (read-only), or `None` for an
    /// empty `<workspace>/models`.
    pub model_dir: Option<&'a Path>,
    /// The unit's inference broker socket inside the workspace, bound in at
    /// the same path (the workspace is a private tmpfs inside).
    pub inference_socket: Option<&'a Path>,
    /// Extra read-only binds (interpreter prefixes).
    pub extra_ro: &'a [PathBuf],
    /// `Some(uid)` when the worker is root.
    pub drop_to_uid: Option<u32>,
    /// The environment (after `--clearenv`).
    pub env: &'a [(String, String)],
    /// The executor argv (program first).
    pub argv: &'a [String],
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Every proper ancestor of `p` below `/`, outermost first.
fn ancestors(p: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = p
        .ancestors()
        .skip(1)
        .filter(|a| a.parent().is_some())
        .map(Path::to_path_buf)
        .collect();
    out.reverse();
    out
}

/// Whether `p` is, or lies under, a path the sandbox binds from the system.
fn under_system(p: &Path) -> bool {
    ["/usr", "/etc", "/proc", "/dev"]
        .iter()
        .chain(SYSTEM_DIRS.iter())
        .any(|d| p.starts_with(d))
}

/// The paths the sandbox makes visible from the host (for checks such as
/// "the worker key is not among them").
pub fn visible_paths(plan: &SandboxPlan<'_>) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = vec![PathBuf::from("/usr")];
    v.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
    v.extend(ETC_FILES.iter().map(PathBuf::from));
    v.push(plan.package_dir.to_path_buf());
    v.push(plan.host_input.to_path_buf());
    if let Some(m) = plan.model_dir {
        v.push(m.to_path_buf());
    }
    if let Some(sock) = plan.inference_socket {
        v.push(sock.to_path_buf());
    }
    v.extend(plan.extra_ro.iter().cloned());
    v
}

/// The full argv (program first) of one sandboxed run.
pub fn bwrap_argv(opts: &BwrapOptions, limits: &Limits, plan: &SandboxPlan<'_>) -> Vec<String> {
    let mut a: Vec<String> = vec![
        s(&opts.bwrap),
        "--die-with-parent".into(),
        "--new-session".into(),
    ];
    let push =
        |a: &mut Vec<String>, items: &[&str]| a.extend(items.iter().map(|x| (*x).to_owned()));
    if plan.drop_to_uid.is_some() {
        push(
            &mut a,
            &[
                "--unshare-ipc",
                "--unshare-pid",
                "--unshare-net",
                "--unshare-uts",
                "--unshare-cgroup-try",
                "--cap-drop",
                "ALL",
                "--cap-add",
                "CAP_SETUID",
                "--cap-add",
                "CAP_SETGID",
                "--cap-add",
                "CAP_SETPCAP",
            ],
        );
    } else {
        push(&mut a, &["--unshare-all", "--cap-drop", "ALL"]);
    }
    push(&mut a, &["--ro-bind", "/usr", "/usr"]);
    for d in SYSTEM_DIRS {
        match std::fs::symlink_metadata(d) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(t) = std::fs::read_link(d) {
                    a.extend(["--symlink".into(), s(&t), d.into()]);
                }
            }
            Ok(m) if m.is_dir() => a.extend(["--ro-bind".into(), d.into(), d.into()]),
            _ => {}
        }
    }
    for f in ETC_FILES {
        a.extend(["--ro-bind-try".into(), f.into(), f.into()]);
    }
    push(&mut a, &["--proc", "/proc", "--dev", "/dev"]);
    a.extend([
        "--perms".into(),
        "1777".into(),
        "--size".into(),
        limits.scratch_bytes.to_string(),
        "--tmpfs".into(),
        "/tmp".into(),
    ]);
    for e in plan.extra_ro {
        a.extend(["--ro-bind".into(), s(e), s(e)]);
    }
    // Mount points below a fresh root: create their ancestors world-
    // traversable (bwrap would copy restrictive host modes).
    let mut made: BTreeSet<PathBuf> = BTreeSet::new();
    let mut targets = vec![plan.package_dir, plan.workspace];
    if let Some(m) = plan.model_dir {
        targets.push(m);
    }
    for t in targets {
        for anc in ancestors(t) {
            if under_system(&anc) || anc == Path::new("/tmp") || !made.insert(anc.clone()) {
                continue;
            }
            a.extend(["--perms".into(), "0755".into(), "--dir".into(), s(&anc)]);
        }
    }
    a.extend(["--ro-bind".into(), s(plan.package_dir), s(plan.package_dir)]);
    if let Some(m) = plan.model_dir {
        a.extend(["--ro-bind".into(), s(m), s(m)]);
    }
    a.extend([
        "--perms".into(),
        "0777".into(),
        "--size".into(),
        limits.scratch_bytes.to_string(),
        "--tmpfs".into(),
        s(plan.workspace),
        "--ro-bind".into(),
        s(plan.host_input),
        s(&plan.workspace.join("exec_input.json")),
    ]);
    if let Some(sock) = plan.inference_socket {
        // The broker's socket: the only thing outside the sandbox it can
        // reach (a bind of a socket inode; no network).
        a.extend(["--bind".into(), s(sock), s(sock)]);
    }
    if plan.model_dir.is_none() {
        // Writable, like the empty directory the official runner creates.
        a.extend([
            "--perms".into(),
            "0777".into(),
            "--dir".into(),
            s(&plan.workspace.join("models")),
        ]);
    }
    a.extend(["--chdir".into(), s(plan.package_dir), "--clearenv".into()]);
    for (k, v) in plan.env {
        a.extend(["--setenv".into(), k.clone(), v.clone()]);
    }
    // The rlimits, applied by the wrapper's `ulimit` builtins (and unset
    // before the executor starts).
    let cpu = limits.cpu_seconds.max(1);
    for (k, v) in [
        ("AUSPEX_NOFILE", limits.open_files),
        ("AUSPEX_FSIZE_BLOCKS", limits.file_size_bytes.div_ceil(512)),
        ("AUSPEX_AS_KIB", limits.address_space_bytes / 1024),
        ("AUSPEX_CPU", cpu),
        // One second after SIGXCPU, the hard limit's SIGKILL.
        ("AUSPEX_CPU_HARD", cpu.saturating_add(1)),
        ("AUSPEX_NPROC", limits.processes),
    ] {
        a.extend(["--setenv".into(), k.into(), v.to_string()]);
    }
    if let Some(shim) = &opts.landlock_shim {
        // World-traversable parents, so the dropped uid can reach it.
        for d in ["/run", "/run/auspex"] {
            a.extend(["--perms".into(), "0755".into(), "--dir".into(), d.into()]);
        }
        a.extend(["--ro-bind".into(), s(shim), SHIM_PATH_IN_SANDBOX.into()]);
    }
    a.push("--".into());
    if let Some(uid) = plan.drop_to_uid {
        a.extend([
            s(&opts.setpriv),
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".into(),
            "--inh-caps=-all".into(),
            "--bounding-set=-all".into(),
            "--no-new-privs".into(),
            "--".into(),
        ]);
    }
    let mut wrapper: Vec<String> = vec![
        "/bin/sh".into(),
        "-c".into(),
        WRAPPER.into(),
        "sh".into(),
        s(&plan.workspace.join("exec_output.json")),
    ];
    wrapper.extend(plan.argv.iter().cloned());
    if opts.landlock_shim.is_some() {
        a.extend(landlock::shim_argv(&landlock_policy(plan), &wrapper));
    } else {
        a.extend(wrapper);
    }
    a
}

/// What Landlock lets tenant code touch: read and execute beneath the
/// system directories, `/etc`, the extra binds, the package and the model
/// store; write only in the workspace and `/tmp` (devices and `/proc` are
/// added by [`landlock::restrict`]).
pub fn landlock_policy(plan: &SandboxPlan<'_>) -> landlock::Policy {
    let mut read: Vec<PathBuf> = ["/usr", "/etc"].iter().map(PathBuf::from).collect();
    read.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
    // (`plan.extra_ro` already holds `BwrapOptions::extra_ro_binds`.)
    read.extend(plan.extra_ro.iter().cloned());
    read.push(plan.package_dir.to_path_buf());
    if let Some(m) = plan.model_dir {
        read.push(m.to_path_buf());
    }
    landlock::Policy {
        read,
        write: vec![plan.workspace.to_path_buf(), PathBuf::from("/tmp")],
    }
}

/// The message given when bubblewrap is missing or broken.
pub fn install_hint(detail: &str) -> String {
    format!(
        "bubblewrap sandbox unavailable: {detail}. The worker refuses to run tenant code \
         unsandboxed. Install it with `apt-get install bubblewrap` (Debian/Ubuntu; `dnf install \
         bubblewrap` on Fedora) and make sure unprivileged user namespaces are allowed \
         (Ubuntu 24.04: `sysctl kernel.apparmor_restrict_unprivileged_userns=0`), or pass \
         --no-sandbox to run trusted code without isolation"
    )
}

/// Checks that the sandbox tools exist (the full run is probed by the
/// worker at start).
pub fn check_tools(opts: &BwrapOptions) -> Result<(), String> {
    let exe = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
            .unwrap_or(false)
    };
    if !exe(&opts.bwrap) {
        return Err(install_hint(&format!("{} not found", opts.bwrap.display())));
    }
    if running_as_root() && !exe(&opts.setpriv) {
        return Err(format!(
            "{} not found: install util-linux (`apt-get install util-linux`)",
            opts.setpriv.display()
        ));
    }
    Ok(())
}
