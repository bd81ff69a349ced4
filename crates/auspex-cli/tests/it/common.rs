//! Shared helpers: run the binary in a scratch home, find the Python peers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const TENANT_PUB: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
pub const TENANT_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn vectors(name: &str) -> PathBuf {
    workspace()
        .join("crates/auspex-wire/tests/fixtures/vectors")
        .join(name)
}

/// A scratch directory that doubles as `$HOME`.
pub struct Ctx {
    pub dir: tempfile::TempDir,
}

impl Ctx {
    pub fn new() -> Ctx {
        Ctx {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, bytes).expect("write");
        p
    }

    /// `auspex` with `$HOME` pointing into the scratch directory.
    pub fn auspex(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_auspex"));
        c.env("HOME", self.dir.path()).env("NO_COLOR", "1");
        c
    }

    pub fn run(&self, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Run {
        let mut c = self.auspex();
        for a in args {
            c.arg(a);
        }
        Run::from(c.output().expect("auspex runs"))
    }

    /// Writes the RFC 8032 test-1 key (the shared vectors' tenant key).
    pub fn tenant_key(&self) -> PathBuf {
        self.write("tenant_key", TENANT_PEM)
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The interpreter of the official SDK's virtual environment, or `None` when
/// the user opted out with `AUSPEX_SKIP_INTEROP=1` (said on stderr). A missing
/// environment is a test failure, never a silent skip.
#[allow(clippy::print_stderr)] // says that a check was knowingly skipped
pub fn python(version: &str) -> Option<PathBuf> {
    if std::env::var_os("AUSPEX_SKIP_INTEROP").is_some_and(|v| v == "1") {
        eprintln!("interop with auspexai-tenant {version} NOT CHECKED: AUSPEX_SKIP_INTEROP=1");
        return None;
    }
    let var = format!("AUSPEX_PYTHON_{}", version.replace('.', ""));
    let path = std::env::var_os(&var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(format!("target/py-{version}/bin/python")));
    assert!(
        path.exists(),
        "the official SDK {version} is not installed at {}: run `bash scripts/python-peers.sh` \
         (or set {var}, or AUSPEX_SKIP_INTEROP=1 to skip interop tests knowingly)",
        path.display()
    );
    Some(path)
}

/// Runs a Python script with the official SDK's interpreter; panics with its
/// output on failure.
pub fn run_python(python: &Path, script: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let mut c = Command::new(python);
    c.arg("-c").arg(script);
    for a in args {
        c.arg(a);
    }
    let out = c.output().expect("python runs");
    assert!(
        out.status.success(),
        "python failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
