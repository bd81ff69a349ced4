//! Command-line arguments (clap derive). Parsing only: no behaviour here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// auspex — run experiments on the AuspexAI volunteer compute network, and
/// prove what it computed.
#[derive(Debug, Parser)]
#[command(name = "auspex", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The command groups (those of the official `auspexai-tenant` CLI).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and inspect the tenant's Ed25519 signing key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Validate and sign experiment manifests.
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Decode and inspect receipts.
    #[command(subcommand)]
    Receipts(ReceiptsCommand),
    /// Executor packages: the digest a manifest pins.
    #[command(subcommand)]
    Package(PackageCommand),
    /// Run a local stand-in network (coordinator on 127.0.0.1) and administer it.
    #[command(subcommand)]
    Devnet(DevnetCommand),
    /// Verify transparency-log (Rekor) entries offline.
    #[command(subcommand)]
    Tlog(TlogCommand),
    /// Run a volunteer worker: lease work units from a coordinator (a devnet
    /// or the network), run them sandboxed, sign and upload the results.
    #[command(subcommand)]
    Worker(WorkerCommand),
}

/// `auspex key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a new Ed25519 tenant key (PKCS#8 PEM, mode 0600).
    Generate {
        /// Where to write the key [default: ~/.config/auspexai-tenant/tenant_key].
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Overwrite an existing key file (the old key is lost).
        #[arg(long)]
        force: bool,
    },
    /// Print the public key (64 lowercase hex characters).
    Pubkey(KeyArg),
}

/// The `--key` option shared by commands that sign.
#[derive(Debug, Args)]
pub struct KeyArg {
    /// The tenant key file [default: ~/.config/auspexai-tenant/tenant_key, or
    /// maintainer_key beside it when only that exists].
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
}

/// `auspex manifest …`
#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Check a manifest against its schema version's rules, reporting every violation.
    Validate {
        /// The manifest (JSON).
        path: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign a manifest with the tenant key and write the signature file.
    Sign {
        /// The manifest (JSON).
        path: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        /// Where to write the signature [default: PATH with `.sig` appended].
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Whose signing layout to reproduce: `0.5.5` (v0.1 manifests) or
        /// `0.6.67` (needed for v0.2 and later) [default: by schema version].
        #[arg(long, value_name = "VERSION")]
        sdk: Option<String>,
    },
    /// Check a manifest's signature file against the manifest.
    Verify {
        /// The manifest (JSON).
        path: PathBuf,
        /// The signature file [default: PATH with `.sig` appended].
        #[arg(long, value_name = "PATH")]
        sig: Option<PathBuf>,
        /// Require this signer (64 hex characters).
        #[arg(long, value_name = "HEX")]
        signer: Option<String>,
        /// Whose signing layout to check against [default: by schema version].
        #[arg(long, value_name = "VERSION")]
        sdk: Option<String>,
    },
    /// Print the manifest hash (the experiment's content address).
    Hash {
        /// The manifest (JSON).
        path: PathBuf,
    },
}

/// `auspex receipts …`
#[derive(Debug, Subcommand)]
pub enum ReceiptsCommand {
    /// Decode a receipt (naked CBOR or COSE_Sign1) and print it.
    Show {
        /// The receipt file (binary CBOR).
        path: PathBuf,
        /// Print machine-readable JSON instead of the human form.
        #[arg(long)]
        json: bool,
        /// Require the receipt to be signed by this key (64 hex characters).
        #[arg(long, value_name = "HEX")]
        signer: Option<String>,
    },
}

/// `auspex tlog …`
#[derive(Debug, Subcommand)]
pub enum TlogCommand {
    /// Verify a Rekor v1 log entry offline against a pinned Sigstore trusted
    /// root: inclusion proof, signed checkpoint, signed entry timestamp, the
    /// log's key and (with --artifact-sha256) what the entry commits to.
    VerifyEntry {
        /// The entry: the JSON answer of `GET /api/v1/log/entries/{uuid}`
        /// (or the bare entry object).
        entry: PathBuf,
        /// The Sigstore `trusted_root.json` naming the logs to trust.
        #[arg(long, value_name = "PATH")]
        trusted_root: PathBuf,
        /// Require the entry to commit to this artifact digest (64 hex characters).
        #[arg(long, value_name = "HEX")]
        artifact_sha256: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `auspex worker …`
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Enrol (once per key and coordinator), then heartbeat, lease, run and
    /// upload work units until Ctrl-C or SIGTERM (the unit in hand is
    /// finished, or refused after the grace period).
    Run {
        /// The coordinator's base URL [default: the running devnet's].
        #[arg(long, value_name = "URL")]
        coordinator: Option<String>,
        /// The worker's Ed25519 key, created if missing [default:
        /// ~/.local/share/auspex-worker/worker_key].
        #[arg(long, value_name = "PATH")]
        key: Option<PathBuf>,
        /// State: workspaces, package cache, pending results, receipts
        /// [default: ~/.local/state/auspex-worker].
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// Model store (one directory per model id), reported to the
        /// coordinator and bound read-only for units that name the model.
        #[arg(long, value_name = "DIR")]
        models: Option<PathBuf>,
        /// Serve the store's stand-in models (`auspex devnet up
        /// --stand-in-model`) to executors through the inference broker with
        /// the deterministic stand-in generator (NOT a language model).
        #[arg(long, requires = "models")]
        stand_in_inference: bool,
        /// Units run in parallel, each in its own workspace.
        #[arg(long, value_name = "N", default_value_t = 1)]
        concurrency: usize,
        /// Run tenant code WITHOUT any isolation (network, files, this
        /// worker's key). Only for code you trust.
        #[arg(long)]
        no_sandbox: bool,
        /// The bubblewrap binary.
        #[arg(long, value_name = "PATH", default_value = "/usr/bin/bwrap")]
        bwrap: PathBuf,
        /// Wall-clock limit of one unit, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 600)]
        timeout: u64,
        /// Seconds between assignment polls while idle.
        #[arg(long, value_name = "SECS", default_value_t = 3.0)]
        poll_interval: f64,
        /// Inject a fault, for tests and demos: wrong-answer, crash, hang,
        /// garbage, slow or slow:SECS.
        #[arg(long, value_name = "FAULT")]
        fault: Option<String>,
    },
}

/// `auspex devnet …`
#[derive(Debug, Subcommand)]
pub enum DevnetCommand {
    /// Start a devnet in the foreground (Ctrl-C stops it).
    Up {
        /// Keep state in DIR (created if missing) [default: a temporary directory].
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// The coordinator's port on 127.0.0.1 [default: a free port].
        #[arg(long, value_name = "N", default_value_t = 0)]
        port: u16,
        /// Approve uploaded experiments without `auspex devnet approve`.
        #[arg(long)]
        auto_approve: bool,
        /// Start N sandboxed workers, each with its own key.
        #[arg(long, value_name = "N", default_value_t = 0)]
        workers: usize,
        /// Make the last K of them misbehave (see --fault).
        #[arg(long, value_name = "K", default_value_t = 0, requires = "fault")]
        faulty_workers: usize,
        /// How faulty workers misbehave: wrong-answer, crash, hang, garbage,
        /// slow or slow:SECS.
        #[arg(long, value_name = "FAULT")]
        fault: Option<String>,
        /// Run executors without the sandbox (trusted code only; logged loudly).
        #[arg(long)]
        no_sandbox: bool,
        /// How long a worker holds a replica before it is offered to another
        /// worker, in seconds [default: 600].
        #[arg(long, value_name = "SECS")]
        lease: Option<u64>,
        /// Give the workers a model STAND-IN under this id (a deterministic
        /// text generator behind the real inference broker, not a language
        /// model), so that manifests declaring this model run.
        #[arg(long, value_name = "MODEL_ID")]
        stand_in_model: Option<String>,
    },
    /// Stop the running devnet.
    Down(DevnetSelect),
    /// Show the running devnet: URLs, keys, tenants, experiments.
    Status {
        #[command(flatten)]
        select: DevnetSelect,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage the devnet's tenants.
    #[command(subcommand)]
    Tenant(DevnetTenantCommand),
    /// Approve an uploaded experiment (as the devnet's maintainer).
    Approve {
        /// The coordinator's experiment id (`exp-…`).
        experiment_id: String,
        #[command(flatten)]
        select: DevnetSelect,
    },
}

/// Which devnet an administrative command talks to.
#[derive(Debug, Args)]
pub struct DevnetSelect {
    /// The state directory of the devnet [default: the running one started
    /// by `auspex devnet up`].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

/// `auspex devnet tenant …`
#[derive(Debug, Subcommand)]
pub enum DevnetTenantCommand {
    /// Register a tenant and the public key its requests are signed with.
    Add {
        /// The tenant id (as in manifests' `tenant_id`).
        tenant_id: String,
        /// The tenant's public key (64 hex characters).
        #[arg(
            long,
            value_name = "HEX",
            conflicts_with = "key",
            required_unless_present = "key"
        )]
        pubkey: Option<String>,
        /// Read the public key from this tenant key file.
        #[arg(long, value_name = "PATH")]
        key: Option<PathBuf>,
        #[command(flatten)]
        select: DevnetSelect,
    },
}

/// `auspex package …`
#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// Print the package digest of DIR (the value of `executor.package_sha256`).
    Digest {
        /// The package directory.
        dir: PathBuf,
        /// Also list every file with its SHA-256, in digest order.
        #[arg(long)]
        files: bool,
    },
}
