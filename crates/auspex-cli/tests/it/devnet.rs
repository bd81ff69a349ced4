//! `auspex devnet …` end to end: the real binary starts a devnet on
//! 127.0.0.1, the official SDK talks to it, and state survives `kill -9`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

struct Up {
    child: Child,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn up(ctx: &Ctx, state: &Path, extra: &[&str]) -> (Up, serde_json::Value) {
    let _ = std::fs::remove_file(state.join("devnet.json"));
    let child = ctx
        .auspex()
        .args(["devnet", "up", "--state"])
        .arg(state)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("devnet up starts");
    let up = Up { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(bytes) = std::fs::read(state.join("devnet.json"))
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
        {
            return (up, v);
        }
        assert!(Instant::now() < deadline, "devnet.json did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plain HTTP/1.1 GET over a TCP socket (the tests need no HTTP client).
fn http_get(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

fn status(ctx: &Ctx) -> serde_json::Value {
    let run = ctx.run(&[&"devnet", &"status", &"--json"]).ok();
    serde_json::from_str(&run.stdout).expect("status JSON")
}

#[test]
fn devnet_up_tenant_upload_approve_down() {
    let ctx = Ctx::new();
    let state = ctx.path("devnet");
    let (mut up, info) = up(&ctx, &state, &[]);
    let url = info["coordinator_url"].as_str().expect("url").to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(info["pid"], up.child.id());

    // The transparency log runs beside the coordinator, with its trusted root on disk.
    let tlog = info["tlog_url"].as_str().expect("tlog url").to_owned();
    let root_path = info["trusted_root_path"].as_str().expect("trusted root");
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root_path).expect("trusted root written"))
            .expect("trusted root JSON");
    assert_eq!(root["tlogs"][0]["baseUrl"], tlog.as_str());
    let log = http_get(&tlog, "/api/v1/log");
    assert!(log.starts_with("HTTP/1.1 200"), "{log}");
    assert!(log.contains("\"treeSize\""), "{log}");

    let key = ctx.tenant_key();
    ctx.run(&[
        &"devnet",
        &"tenant",
        &"add",
        &"synth-doubler",
        &"--key",
        &key,
    ])
    .ok();
    let st = status(&ctx);
    assert_eq!(st["tenants"][0]["tenant_id"], "synth-doubler");
    assert_eq!(st["tenants"][0]["maintainer_pubkey"], TENANT_PUB);

    // The official SDK uploads a manifest we signed.
    if let Some(python) = python("0.5.5") {
        let doc: serde_json::Value = serde_json::from_slice(
            &std::fs::read(vectors("manifest_signing.json")).expect("vector"),
        )
        .expect("json");
        let manifest = ctx.write(
            "manifest.json",
            doc["cases"][0]["manifest_file_text"]
                .as_str()
                .expect("text"),
        );
        ctx.run(&[&"manifest", &"sign", &manifest, &"--key", &key])
            .ok();
        let cli = python.with_file_name("auspexai-tenant");
        let out = Command::new(&cli)
            .args(["manifest", "upload"])
            .arg(&manifest)
            .args(["--coordinator", &url, "--key"])
            .arg(&key)
            .output()
            .expect("official CLI runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("OK: submitted (201)"), "{stdout}");
        let st = status(&ctx);
        let exp = &st["experiments"][0];
        assert_eq!(exp["status"], "submitted");
        let id = exp["experiment_id"].as_str().expect("id").to_owned();
        let run = ctx.run(&[&"devnet", &"approve", &id]).ok();
        assert!(run.stdout.contains("approved"), "{}", run.stdout);
        assert_eq!(status(&ctx)["experiments"][0]["status"], "approved");
    }

    let run = ctx.run(&[&"devnet", &"down"]).ok();
    assert!(run.stdout.contains("devnet stopped"), "{}", run.stdout);
    let exit = up.child.wait().expect("devnet exits");
    assert!(exit.success(), "{exit:?}");
    let run = ctx.run(&[&"devnet", &"status"]).code(1);
    assert!(
        run.stderr.contains("no devnet is running"),
        "{}",
        run.stderr
    );
}

#[test]
fn state_survives_kill_9() {
    let ctx = Ctx::new();
    let state = ctx.path("devnet");
    let (mut first, info) = up(&ctx, &state, &[]);
    let key = ctx.tenant_key();
    ctx.run(&[&"devnet", &"tenant", &"add", &"acme-lab", &"--key", &key])
        .ok();
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reaped");

    let (_second, info2) = up(&ctx, &state, &[]);
    // Same persistent coordinator key, same tenants.
    assert_eq!(info2["coordinator_pubkey"], info["coordinator_pubkey"]);
    let st = status(&ctx);
    assert_eq!(st["tenants"][0]["tenant_id"], "acme-lab");
}

#[test]
fn a_second_devnet_is_refused_while_one_runs() {
    let ctx = Ctx::new();
    let (_up, _) = up(&ctx, &ctx.path("a"), &[]);
    let run = ctx
        .run(&[&"devnet", &"up", &"--state", &ctx.path("b")])
        .code(1);
    assert!(run.stderr.contains("already running"), "{}", run.stderr);
}

#[test]
fn admin_commands_without_a_devnet_say_so() {
    let ctx = Ctx::new();
    let run = ctx.run(&[&"devnet", &"approve", &"exp-x"]).code(1);
    assert!(
        run.stderr.contains("no devnet is running"),
        "{}",
        run.stderr
    );
    let run = ctx
        .run(&[
            &"devnet",
            &"tenant",
            &"add",
            &"acme-lab",
            &"--pubkey",
            &"zz",
        ])
        .code(2);
    assert!(
        run.stderr.contains("not an Ed25519 public key"),
        "{}",
        run.stderr
    );
}
