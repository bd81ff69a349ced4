//! SIGKILL under load: a child process (this test binary, running
//! [`child_server`]) serves the log; the parent posts entries from several
//! connections, kills the child with SIGKILL mid-stream, reopens the state
//! and checks that every acknowledged entry is there at its index, that
//! every checkpoint the child served is consistent with the reopened tree
//! (and re-signs identically), and that a restarted service serves them.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use auspex_crypto::tlog::RekorEntry;
use auspex_tlog::Log;

use crate::common::*;

/// A 201 response body and the artifact it anchors.
type Acked = (Vec<u8>, Vec<u8>);

const CHILD_ENV: &str = "AUSPEX_TLOG_KILL_CHILD_STATE";

/// In the child: serve the log in `$AUSPEX_TLOG_KILL_CHILD_STATE`, print its
/// URL, and wait to be killed. Without the variable: nothing (passes).
#[test]
#[allow(clippy::print_stdout)] // the URL is how the parent finds the child
fn child_server() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let tlog = start(std::path::Path::new(&dir)).await;
        println!("AUSPEX_TLOG_URL {}", tlog.url());
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(dir: &std::path::Path) -> (Killed, String) {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([
            "kill::child_server",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("stdout");
    let guard = Killed(child);
    let mut url = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        // libtest prints "test kill::child_server ... " before it.
        if let Some((_, u)) = line.split_once("AUSPEX_TLOG_URL ") {
            url = Some(u.trim().to_owned());
            break;
        }
    }
    (guard, url.expect("the child printed its URL"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, url) = spawn_child(dir.path());

    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let (url, acked) = (url.clone(), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let c = client();
            for i in 0.. {
                let a = artifact(t * 1_000_000 + i);
                let Ok(r) = c
                    .post(format!("{url}/api/v1/log/entries"))
                    .header("content-type", "application/json")
                    .body(rekord(&a, &submitter()))
                    .send()
                    .await
                else {
                    return;
                };
                if r.status().as_u16() != 201 {
                    return;
                }
                let Ok(body) = r.bytes().await else { return };
                acked
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((body.to_vec(), a));
            }
        }));
    }
    // Kill once enough entries are acknowledged, with requests in flight.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let n = acked.lock().map(|v| v.len()).unwrap_or(0);
        if n >= 150 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    child.0.kill().expect("SIGKILL");
    let _ = child.0.wait();
    for t in tasks {
        let _ = t.await;
    }
    let acked = std::mem::take(
        &mut *acked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    assert!(
        acked.len() >= 150,
        "only {} entries were acknowledged",
        acked.len()
    );

    let log = Log::open(dir.path()).expect("reopen after SIGKILL");
    let size = log.verify_integrity().expect("the tree matches the leaves");
    let tl = log.transparency_log(&url).expect("tlog");
    let root = log.trusted_root(&url).expect("root");
    let now = log.checkpoint().expect("checkpoint");
    for (body, a) in &acked {
        let served = RekorEntry::parse(body).expect("entry");
        let uuid = served.uuid.as_deref().expect("uuid");
        let kept = log
            .entry_by_id(uuid)
            .expect("acknowledged entry survives SIGKILL");
        assert_eq!(kept.log_index, served.log_index);
        assert_eq!(kept.body, served.body);
        // The entry as served before the kill still verifies.
        assert_verifies(body, &root, Some(a));
        // Its checkpoint is the reopened tree's at that size, and consistent
        // with the current one.
        let (old_size, old_note) = checkpoint_of(body);
        assert_eq!(log.checkpoint_at(old_size).expect("cp").note, old_note);
        let proof = log.consistency_proof(old_size, size).expect("proof");
        assert_consistent(&tl, &old_note, &now.note, &proof);
    }
    drop(log);

    // A restarted service serves them.
    let again = start(dir.path()).await;
    let c = client();
    for (body, a) in acked.iter().take(20) {
        let uuid = RekorEntry::parse(body).expect("entry").uuid.expect("uuid");
        let (status, fresh) = get(&c, &format!("{}/api/v1/log/entries/{uuid}", again.url())).await;
        assert_eq!(status, 200);
        assert_verifies(&fresh, again.trusted_root(), Some(a));
    }
    again.shutdown().await.expect("shutdown");
}
