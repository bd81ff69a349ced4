//! `auspex worker run`: enrols with a devnet started by the binary,
//! reuses its enrolment, stops cleanly on SIGTERM; refuses to run tenant
//! code without bubblewrap; `--no-sandbox` is loud.

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn devnet(ctx: &Ctx, state: &Path) -> (Kill, String) {
    let child = ctx
        .auspex()
        .args(["devnet", "up", "--auto-approve", "--state"])
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("devnet up starts");
    let guard = Kill(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(bytes) = std::fs::read(state.join("devnet.json"))
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && let Some(url) = v["coordinator_url"].as_str()
        {
            return (guard, url.to_owned());
        }
        assert!(Instant::now() < deadline, "devnet.json did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the worker until its enrolment exists, then SIGTERMs it.
fn run_until_enrolled(ctx: &Ctx, url: &str, key: &Path, extra: &[&str]) -> (i32, String, String) {
    let enrollment = {
        let mut s = key.as_os_str().to_owned();
        s.push(".enrollment.json");
        std::path::PathBuf::from(s)
    };
    let _ = std::fs::remove_file(&enrollment);
    let mut child = ctx
        .auspex()
        .args(["worker", "run", "--coordinator", url, "--key"])
        .arg(key)
        .arg("--work-dir")
        .arg(ctx.path("work"))
        .args(["--poll-interval", "0.2"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker starts");
    wait_for("the enrolment record", || enrollment.exists());
    // A heartbeat and a few polls.
    std::thread::sleep(Duration::from_millis(500));
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let status = child.wait().expect("worker exits");
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let _ = std::fs::copy(&enrollment, ctx.path("last-enrollment.json"));
    (status.code().unwrap_or(-1), out, err)
}

#[test]
fn worker_run_enrols_reuses_its_enrolment_and_stops_on_sigterm() {
    let ctx = Ctx::new();
    let (_devnet, url) = devnet(&ctx, &ctx.path("devnet"));
    let key = ctx.path("keys/worker_key");
    let (code, out, err) = run_until_enrolled(&ctx, &url, &key, &[]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(key.exists(), "the key was created");
    let first = std::fs::read_to_string(ctx.path("last-enrollment.json")).expect("record");
    let record: serde_json::Value = serde_json::from_str(&first).expect("json");
    let wid = record[url.as_str()]["worker_id"]
        .as_str()
        .expect("worker id")
        .to_owned();
    assert!(wid.starts_with("wkr-"), "{first}");
    assert!(out.contains(&format!("worker:    {wid}")), "{out}");
    assert!(out.contains("results:   0"), "{out}");
    assert!(err.contains("enrolled as"), "{err}");

    // Same key again: the stored enrolment is reused (no second enrol).
    let enrollment = {
        let mut s = key.as_os_str().to_owned();
        s.push(".enrollment.json");
        std::path::PathBuf::from(s)
    };
    std::fs::write(&enrollment, &first).expect("restore the record");
    let mut child = ctx
        .auspex()
        .args(["worker", "run", "--coordinator", &url, "--key"])
        .arg(&key)
        .arg("--work-dir")
        .arg(ctx.path("work"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker starts");
    std::thread::sleep(Duration::from_millis(1500));
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    assert!(child.wait().expect("exit").success());
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert!(out.contains(&format!("worker:    {wid}")), "{out}");
    assert!(!err.contains("enrolled as"), "{err}");
}

#[test]
fn no_sandbox_is_announced_loudly() {
    let ctx = Ctx::new();
    let (_devnet, url) = devnet(&ctx, &ctx.path("devnet"));
    let (code, out, err) = run_until_enrolled(&ctx, &url, &ctx.path("k"), &["--no-sandbox"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("SANDBOX DISABLED"), "{err}");
}

#[test]
fn without_bubblewrap_tenant_code_is_refused() {
    let ctx = Ctx::new();
    let run = ctx.run(&[
        &"worker",
        &"run",
        &"--coordinator",
        &"http://127.0.0.1:9",
        &"--key",
        &ctx.path("k"),
        &"--work-dir",
        &ctx.path("work"),
        &"--bwrap",
        &"/nonexistent/bwrap",
    ]);
    let run = run.code(1);
    assert!(
        run.stderr.contains("refuses to run tenant code"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("apt-get install bubblewrap"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors() {
    let ctx = Ctx::new();
    let run = ctx.run(&[
        &"worker",
        &"run",
        &"--coordinator",
        &"http://127.0.0.1:9",
        &"--fault",
        &"sneaky",
    ]);
    let run = run.code(2);
    assert!(run.stderr.contains("unknown fault"), "{}", run.stderr);
    let run = ctx
        .run(&[&"worker", &"run", &"--concurrency", &"0"])
        .code(2);
    assert!(run.stderr.contains("--concurrency"), "{}", run.stderr);
}
