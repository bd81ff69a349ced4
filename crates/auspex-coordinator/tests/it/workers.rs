//! Worker routes: enrolment, the idle shape, leases, result and refusal
//! codes, canonical receipts.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn enrolment_and_identity() {
    let net = Net::start().await;
    net.add_tenant(TENANT, &tenant_key()).await;
    let w = Worker::enroll(&net, 31).await;
    assert!(w.id.starts_with("wkr-") && w.id.len() == 16);

    let dup = json!({"pubkey_hex": w.pubkey()});
    let r = net
        .anonymous("POST", "/api/v0/workers/enroll", Some(&dup))
        .await;
    assert_eq!((r.status, r.code()), (409, "pubkey_already_enrolled"));
    let tenant = json!({"pubkey_hex": tenant_key().public_hex()});
    let r = net
        .anonymous("POST", "/api/v0/workers/enroll", Some(&tenant))
        .await;
    assert_eq!((r.status, r.code()), (409, "pubkey_already_tenant"));
    let r = net
        .anonymous(
            "POST",
            "/api/v0/workers/enroll",
            Some(&json!({"pubkey_hex": "xyz"})),
        )
        .await;
    assert_eq!(r.status, 422);

    // Heartbeat: own route only.
    let hb = json!({"capabilities": {"os": "linux", "worker_version": "0.2.80"}});
    let r = net
        .post(&w.key, &format!("/api/v0/workers/{}/heartbeat", w.id), &hb)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["worker_id"], w.id.as_str());
    assert_eq!(r.body["trust_tier"], 0);
    assert!(r.body["last_heartbeat_at"].is_string());
    assert!(r.body.get("capabilities").is_none());
    let other = Worker::enroll(&net, 32).await;
    let r = net
        .post(
            &other.key,
            &format!("/api/v0/workers/{}/heartbeat", w.id),
            &hb,
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "worker_id_mismatch"));
    let r = net
        .post(
            &tenant_key(),
            &format!("/api/v0/workers/{}/heartbeat", w.id),
            &hb,
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "worker_required"));

    // Idle: the exact null shape; pre-stage empty.
    let r = w.poll(&net).await;
    assert_eq!(
        r.text,
        r#"{"assignment_id":null,"assigned_at":null,"experiment_id":null,"work_unit":null}"#
    );
    let r = net
        .get(&w.key, &format!("/api/v0/workers/{}/prestage", w.id))
        .await;
    assert_eq!(r.body, json!({"prestage": []}));
}

#[tokio::test]
async fn result_and_refusal_codes() {
    let net = Net::start().await;
    let (exp, hash) = net.ready("worker-codes", 2).await;
    net.submit(&exp, "worker-codes", &hash, &["u1", "u2"]).await;
    let w = Worker::enroll(&net, 41).await;
    let v = Worker::enroll(&net, 42).await;

    let a = w.poll(&net).await;
    assert_eq!(a.body["experiment_id"], exp.as_str());
    let wu = &a.body["work_unit"];
    assert_eq!(wu["unit_id"], "u1");
    assert_eq!(wu["experiment_id"], "worker-codes");
    assert_eq!(wu["tenant_id"], TENANT);
    assert_eq!(wu["manifest_sha256"], hash.as_str());
    assert_eq!(wu["schema_version"], "0.1");
    assert_eq!(wu["payload"], json!({"i": "u1"}));
    let aid = a.body["assignment_id"]
        .as_str()
        .expect("test step")
        .to_owned();
    assert!(aid.starts_with("asg-"));

    let good = w.result_body("u1", Some(&aid), json!({"x": 1}), "2026-07-01T12:00:00Z");
    // unit_id_mismatch (path vs body).
    let r = w.submit(&net, "u2", &good).await;
    assert_eq!((r.status, r.code()), (422, "unit_id_mismatch"));
    // worker_pubkey_mismatch.
    let mut wrong = good.clone();
    wrong["worker_pubkey"] = json!(v.pubkey());
    let r = w.submit(&net, "u1", &wrong).await;
    assert_eq!((r.status, r.code()), (403, "worker_pubkey_mismatch"));
    // assignment_not_found (v has no assignment for u1).
    let vb = v.result_body("u1", None, json!({"x": 1}), "2026-07-01T12:00:00Z");
    let r = v.submit(&net, "u1", &vb).await;
    assert_eq!((r.status, r.code()), (404, "assignment_not_found"));
    // Bad signature: the payload differs from what was signed.
    let mut forged = good.clone();
    forged["payload"] = json!({"x": 2});
    let r = w.submit(&net, "u1", &forged).await;
    assert_eq!((r.status, r.code()), (422, "invalid_worker_signature"));
    // Other worker's route.
    let r = net
        .post(
            &v.key,
            &format!("/api/v0/workers/{}/assignments/u1/result", w.id),
            &good,
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "worker_id_mismatch"));

    let r = w.submit(&net, "u1", &good).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["unit_status_after"], "in_progress");
    assert_eq!(r.body["completions_so_far"], 1);
    assert_eq!(r.body["replication_target"], 2);
    let rid = r.body["result_id"].as_str().expect("test step").to_owned();
    let r = w.submit(&net, "u1", &good).await;
    assert_eq!((r.status, r.code()), (409, "result_already_submitted"));
    assert_eq!(
        r.body["detail"]["error"]["details"]["existing_result_id"],
        rid.as_str()
    );

    // Canonical receipt: pending → 404.
    let r = net
        .get(
            &w.key,
            &format!("/api/v0/workers/{}/results/{rid}/canonical-receipt", w.id),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "receipt_not_issued"));
    let r = net
        .get(
            &v.key,
            &format!("/api/v0/workers/{}/results/{rid}/canonical-receipt", w.id),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "worker_self_or_maintainer_required")
    );

    // Refusal: w takes u2 and refuses it; a second refusal conflicts.
    let a2 = w.poll(&net).await;
    assert_eq!(a2.body["work_unit"]["unit_id"], "u2");
    let refuse = json!({"kind": "refused_sensitive", "reason": "no", "assignment_id": a2.body["assignment_id"]});
    let r = net
        .post(
            &w.key,
            &format!("/api/v0/workers/{}/assignments/u2/refuse", w.id),
            &refuse,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["refused_kind"], "refused_sensitive");
    assert_eq!(r.body["unit_id"], "u2");
    let r = net
        .post(
            &w.key,
            &format!("/api/v0/workers/{}/assignments/u2/refuse", w.id),
            &refuse,
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "assignment_already_resolved"));
    let r = net
        .post(
            &w.key,
            &format!("/api/v0/workers/{}/assignments/zz/refuse", w.id),
            &refuse,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "assignment_not_found"));
    // A terminal refusal: w never gets u2 again; v gets u1 then u2.
    let r = w.poll(&net).await;
    assert!(r.body["work_unit"].is_null(), "{}", r.text);
    assert_eq!(v.poll(&net).await.body["work_unit"]["unit_id"], "u1");
    assert_eq!(v.poll(&net).await.body["work_unit"]["unit_id"], "u2");
}

#[tokio::test]
async fn retryable_refusal_is_rearmed_for_the_same_worker() {
    let net = Net::start().await;
    let (exp, hash) = net.ready("rearm-one", 1).await;
    net.submit(&exp, "rearm-one", &hash, &["u1"]).await;
    let w = Worker::enroll(&net, 51).await;
    for attempt in 1..=3 {
        let a = w.poll(&net).await;
        assert_eq!(
            a.body["work_unit"]["unit_id"], "u1",
            "attempt {attempt}: {}",
            a.text
        );
        let refuse = json!({"kind": "runner_failed", "reason": "crash", "assignment_id": a.body["assignment_id"]});
        let r = net
            .post(
                &w.key,
                &format!("/api/v0/workers/{}/assignments/u1/refuse", w.id),
                &refuse,
            )
            .await;
        assert_eq!(r.status, 200);
    }
    // Attempt cap reached.
    assert!(w.poll(&net).await.body["work_unit"].is_null());
}

#[tokio::test]
async fn expired_lease_goes_to_another_worker_never_the_same_one_twice() {
    let net = Net::start_with(|c| c.lease(Duration::from_millis(300))).await;
    let (exp, hash) = net.ready("lease-one", 1).await;
    net.submit(&exp, "lease-one", &hash, &["u1"]).await;
    let a = Worker::enroll(&net, 61).await;
    let b = Worker::enroll(&net, 62).await;
    let first = a.poll(&net).await;
    assert_eq!(first.body["work_unit"]["unit_id"], "u1");
    // The slot is held while the lease runs.
    assert!(b.poll(&net).await.body["work_unit"].is_null());
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Expired: not re-offered to a; offered to b.
    assert!(a.poll(&net).await.body["work_unit"].is_null());
    let second = b.poll(&net).await;
    assert_eq!(second.body["work_unit"]["unit_id"], "u1");
    assert_ne!(second.body["assignment_id"], first.body["assignment_id"]);
    // b completes it; a's late result is still accepted, without a receipt.
    let rb = b.result_body(
        "u1",
        second.body["assignment_id"].as_str(),
        json!({"v": 1}),
        "2026-07-01T12:00:00Z",
    );
    let r = b.submit(&net, "u1", &rb).await;
    assert_eq!(r.body["unit_status_after"], "completed");
    let ra = a.result_body(
        "u1",
        first.body["assignment_id"].as_str(),
        json!({"v": 1}),
        "2026-07-01T12:00:01Z",
    );
    let r = a.submit(&net, "u1", &ra).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rid = r.body["result_id"].as_str().expect("test step");
    let r = net
        .get(
            &a.key,
            &format!("/api/v0/workers/{}/results/{rid}/canonical-receipt", a.id),
        )
        .await;
    assert_eq!((r.status, r.code()), (410, "receipt_will_not_issue"));
}

/// Polls `w` until it is offered `unit` (nothing else may be offered in
/// between), within a generous deadline; no wall-clock assertion.
async fn poll_until_offered(net: &Net, w: &Worker, unit: &str) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = w.poll(net).await;
        assert_eq!(r.status, 200, "{}", r.text);
        match r.body["work_unit"]["unit_id"].as_str() {
            Some(u) if u == unit => return r,
            Some(other) => panic!("offered {other} while waiting for {unit}"),
            None => {}
        }
        assert!(Instant::now() < deadline, "{unit} never came back");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn expired_lease_comes_back_to_its_holder_when_no_other_worker_can_take_it() {
    // Replication 3 and exactly three workers: when the holder of a replica
    // crashes, no other worker may take that replica (each already holds
    // one), so once the lease expires it is re-delivered to its holder — the
    // same assignment row, so still one replica per worker.
    let net = Net::start_with(|c| c.lease(Duration::from_millis(200))).await;
    let (exp, hash) = net.ready("redeliver-one", 3).await;
    net.submit(&exp, "redeliver-one", &hash, &["u1"]).await;
    let a = Worker::enroll(&net, 71).await;
    let b = Worker::enroll(&net, 72).await;
    let c = Worker::enroll(&net, 73).await;
    let first = a.poll(&net).await;
    assert_eq!(first.body["work_unit"]["unit_id"], "u1", "{}", first.text);
    for w in [&b, &c] {
        let (unit, r) = w
            .work_once(&net, &|_| json!({"v": 1}))
            .await
            .expect("test step");
        assert_eq!((unit.as_str(), r.status), ("u1", 201), "{}", r.text);
    }
    // `a` crashed with its lease: it never answers. After the expiry the
    // replica comes back to it, and to nobody else.
    assert!(b.poll(&net).await.body["work_unit"].is_null());
    let again = poll_until_offered(&net, &a, "u1").await;
    assert_eq!(again.body["assignment_id"], first.body["assignment_id"]);
    assert!(c.poll(&net).await.body["work_unit"].is_null());
    let body = a.result_body(
        "u1",
        again.body["assignment_id"].as_str(),
        json!({"v": 1}),
        "2026-07-01T12:00:02Z",
    );
    let r = a.submit(&net, "u1", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["unit_status_after"], "completed");
    assert_eq!(r.body["completions_so_far"], 3);
    // One result per worker: a second answer on the same row is refused,
    // and nothing is offered any more.
    let r = a.submit(&net, "u1", &body).await;
    assert_eq!((r.status, r.code()), (409, "result_already_submitted"));
    assert!(a.poll(&net).await.body["work_unit"].is_null());
    let key = tenant_key();
    let rows = net
        .get(
            &key,
            &format!("/api/v0/experiments/{exp}/results?include=raw"),
        )
        .await;
    let mut workers: Vec<&str> = rows.body["results"]
        .as_array()
        .expect("test step")
        .iter()
        .filter_map(|r| r["worker_id"].as_str())
        .collect();
    workers.sort_unstable();
    let mut expected = vec![a.id.as_str(), b.id.as_str(), c.id.as_str()];
    expected.sort_unstable();
    assert_eq!(workers, expected);
    let receipts = net
        .get(&key, &format!("/api/v0/experiments/{exp}/receipts"))
        .await;
    assert_eq!(receipts.body["receipts"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn expired_lease_is_not_redelivered_while_another_worker_could_take_it() {
    // Replication 2 with three workers: `a`'s expired replica belongs to
    // `c`, who has none yet; `a` is not offered it again, and once `c`
    // holds it there is no slot left for `a`'s old lease.
    let net = Net::start_with(|c| c.lease(Duration::from_millis(200))).await;
    let (exp, hash) = net.ready("redeliver-two", 2).await;
    net.submit(&exp, "redeliver-two", &hash, &["u1"]).await;
    let a = Worker::enroll(&net, 74).await;
    let b = Worker::enroll(&net, 75).await;
    let c = Worker::enroll(&net, 76).await;
    let first = a.poll(&net).await;
    assert_eq!(first.body["work_unit"]["unit_id"], "u1", "{}", first.text);
    let (_, r) = b
        .work_once(&net, &|_| json!({"v": 1}))
        .await
        .expect("test step");
    assert_eq!(r.status, 201, "{}", r.text);
    // Wait for the expiry through `c`, which gets the replica.
    let taken = poll_until_offered(&net, &c, "u1").await;
    assert_ne!(taken.body["assignment_id"], first.body["assignment_id"]);
    assert!(a.poll(&net).await.body["work_unit"].is_null());
}
