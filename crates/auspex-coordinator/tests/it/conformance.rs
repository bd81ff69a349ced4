//! Status and error codes of each route, in the real check order.

use auspex_crypto::http_sig::sign_request;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn auth_codes() {
    let net = Net::start().await;
    let key = tenant_key();
    net.add_tenant(TENANT, &key).await;

    // Anonymous: scoped list is empty.
    let r = net.anonymous("GET", "/api/v0/experiments", None).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"experiments": []}))
    );

    // Unknown key.
    let r = net.get(&other_key(), "/api/v0/experiments").await;
    assert_eq!((r.status, r.code()), (401, "invalid_signature"));

    // Expired (both directions), with server_time.
    for skew in [-400, 400] {
        let r = net
            .signed_at(&key, "GET", "/api/v0/experiments", None, now() + skew)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (401, "signature_expired"),
            "{}",
            r.text
        );
        assert!(r.body["detail"]["error"]["details"]["server_time"].is_i64());
        assert_eq!(
            r.body["detail"]["error"]["details"]["created"],
            now() + skew
        );
    }

    // Tampered signature bytes.
    let h = sign_request(
        &key,
        "GET",
        "/api/v0/experiments",
        &net.authority(),
        b"",
        now(),
    );
    let r = net
        .http
        .get(net.url("/api/v0/experiments"))
        .header("Signature-Input", &h.signature_input)
        .header("Signature", flip(&h.signature))
        .send()
        .await
        .expect("test step");
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.expect("test step");
    assert_eq!(v["detail"]["error"]["code"], "invalid_signature");

    // Signature-Input without Signature.
    let r = net
        .http
        .get(net.url("/api/v0/experiments"))
        .header("Signature-Input", &h.signature_input)
        .send()
        .await
        .expect("test step");
    let v: serde_json::Value = r.json().await.expect("test step");
    assert_eq!(v["detail"]["error"]["code"], "auth_error");

    // Unsupported algorithm.
    let input = h.signature_input.replace("ed25519", "rsa-pss-sha512");
    let r = net
        .http
        .get(net.url("/api/v0/experiments"))
        .header("Signature-Input", input)
        .header("Signature", &h.signature)
        .send()
        .await
        .expect("test step");
    let v: serde_json::Value = r.json().await.expect("test step");
    assert_eq!(
        v["detail"]["error"]["code"],
        "unsupported_signature_algorithm"
    );

    // Bearer problems.
    let r = net
        .http
        .get(net.url("/api/v0/experiments"))
        .header("Authorization", "Basic abc")
        .send()
        .await
        .expect("test step");
    let v: serde_json::Value = r.json().await.expect("test step");
    assert_eq!(
        v["detail"]["error"]["code"],
        "malformed_authorization_header"
    );
    let r = net
        .http
        .get(net.url("/api/v0/experiments"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("test step");
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.expect("test step");
    assert_eq!(v["detail"]["error"]["code"], "invalid_maintainer_token");

    // Security headers on every response.
    let r = net
        .http
        .get(net.url("/api/v0/nope"))
        .send()
        .await
        .expect("test step");
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let v: serde_json::Value = r.json().await.expect("test step");
    assert_eq!(v, json!({"detail": "Not Found"}));
}

fn flip(sig_header: &str) -> String {
    // sig1=:<base64>: → change one base64 character.
    let mut chars: Vec<char> = sig_header.chars().collect();
    let i = 8;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test]
async fn replays_of_actions_are_refused_uploads_meet_their_409() {
    let net = Net::start().await;
    let key = tenant_key();
    let (exp, hash) = net.ready("replay-probe", 1).await;
    // A replayed upload runs again and meets the uniqueness check.
    let units = serde_json::to_vec(
        &json!({"work_units": [unit("r1", TENANT, "replay-probe", &hash, json!({}))]}),
    )
    .expect("test step");
    let path = format!("/api/v0/experiments/{exp}/work-units");
    let created = now();
    let r = net
        .signed_raw(&key, "POST", &path, units.clone(), created)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = net.signed_raw(&key, "POST", &path, units, created).await;
    assert_eq!((r.status, r.code()), (409, "unit_id_already_submitted"));
    let target = format!("/api/v0/experiments/{exp}/actions/pause");
    let created = now();
    let first = net
        .signed_raw(&key, "POST", &target, Vec::new(), created)
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = net
        .signed_raw(&key, "POST", &target, Vec::new(), created)
        .await;
    assert_eq!((again.status, again.code()), (401, "invalid_signature"));
    assert_eq!(
        again.body["detail"]["error"]["details"]["reason"],
        "replayed_signature"
    );
    // Paging GETs within one second carry identical signatures.
    let t = format!("/api/v0/experiments/{exp}");
    for _ in 0..3 {
        let r = net.signed_raw(&key, "GET", &t, Vec::new(), created).await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn manifest_upload_codes() {
    let net = Net::start().await;
    let key = tenant_key();
    net.add_tenant(TENANT, &key).await;
    net.add_tenant("other-lab", &other_key()).await;

    // Body validation: FastAPI list.
    let r = net
        .post(&key, "/api/v0/experiments", &json!({"manifest": {}}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "signature"]));

    // 1. malformed.
    let r = net
        .post(
            &key,
            "/api/v0/experiments",
            &json!({"manifest": {"tenant_id": ""}, "signature": {}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "manifest_malformed"));

    // 3. tenant mismatch; anonymous and maintainers are not researchers.
    let (m, s) = signed_manifest(&key, "other-lab", "probe-one", 1, "builtin_hash_agreement");
    let r = net
        .post(
            &key,
            "/api/v0/experiments",
            &json!({"manifest": m, "signature": s}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "manifest_tenant_mismatch"));
    assert_eq!(
        r.body["detail"]["error"]["details"]["credential_tenant"],
        TENANT
    );
    let (m, s) = signed_manifest(&key, TENANT, "probe-one", 1, "builtin_hash_agreement");
    let r = net
        .maintainer(
            "POST",
            "/api/v0/experiments",
            Some(&json!({"manifest": m, "signature": s})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "researcher_or_account_required")
    );

    // 4. custom reducer.
    let mut m = manifest_value(TENANT, "probe-two", 1, "custom");
    m["reducer"] = json!({"kind": "custom", "command": ["x"]});
    let r = net
        .post(
            &key,
            "/api/v0/experiments",
            &json!({"manifest": m, "signature": {}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "custom_reducer_unsupported"));

    // 5. feature_schema on v0.1.
    let mut m = manifest_value(TENANT, "probe-three", 1, "builtin_hash_agreement");
    m["feature_schema"] = json!({});
    let r = net
        .post(
            &key,
            "/api/v0/experiments",
            &json!({"manifest": m, "signature": {}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "feature_schema_requires_v0_3"));

    // Devnet: schema and signature are checked.
    let mut m = manifest_value(TENANT, "probe-four", 1, "builtin_hash_agreement");
    m["research_goal_paragraph"] = json!("short");
    let r = net
        .post(
            &key,
            "/api/v0/experiments",
            &json!({"manifest": m, "signature": {}}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "manifest_invalid"),
        "{}",
        r.text
    );
    let (m, _) = signed_manifest(&key, TENANT, "probe-five", 1, "builtin_hash_agreement");
    let (_, s_other) = signed_manifest(&key, TENANT, "probe-six", 1, "builtin_hash_agreement");
    let r = net
        .post(
            &key,
            "/api/v0/experiments",
            &json!({"manifest": m, "signature": s_other}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "manifest_signature_invalid"));
    assert_eq!(
        r.body["detail"]["error"]["details"]["reason"],
        "bad_signature"
    );
    let s_wrong = sign_value(&other_key(), &m);
    let r = net
        .post(
            &key,
            "/api/v0/experiments",
            &json!({"manifest": m, "signature": s_wrong}),
        )
        .await;
    assert_eq!(
        r.body["detail"]["error"]["details"]["reason"],
        "signer_mismatch"
    );

    // 9/10. duplicates; a label conflict leaves no manifest behind.
    let (m, s) = signed_manifest(&key, TENANT, "probe-seven", 1, "builtin_hash_agreement");
    let body = json!({"manifest": m, "signature": s});
    let r = net.post(&key, "/api/v0/experiments", &body).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["status"], "submitted");
    assert_eq!(r.body["revision"], 1);
    assert_eq!(r.body["tenant_experiment_label"], "probe-seven");
    assert!(
        r.body["experiment_id"]
            .as_str()
            .expect("test step")
            .starts_with("exp-")
    );
    assert_eq!(
        r.body["experiment_id"].as_str().expect("test step").len(),
        12
    );
    let r = net.post(&key, "/api/v0/experiments", &body).await;
    assert_eq!((r.status, r.code()), (409, "duplicate_manifest"));
    let mut m2 = m.clone();
    m2["expected_duration_hours"] = json!(2);
    let s2 = sign_value(&key, &m2);
    let body2 = json!({"manifest": m2, "signature": s2});
    let r = net.post(&key, "/api/v0/experiments", &body2).await;
    assert_eq!((r.status, r.code()), (409, "duplicate_experiment_label"));
    // The label conflict rolled back: the same upload later says label again,
    // not duplicate_manifest.
    let r = net.post(&key, "/api/v0/experiments", &body2).await;
    assert_eq!(r.code(), "duplicate_experiment_label");
}

#[tokio::test]
async fn foreign_experiments_are_404_and_lifecycle_409s() {
    let net = Net::start().await;
    let key = tenant_key();
    net.add_tenant(TENANT, &key).await;
    net.add_tenant("other-lab", &other_key()).await;
    let (exp, hash) = net.upload(&key, TENANT, "life-one", 1).await;

    for target in [
        format!("/api/v0/experiments/{exp}"),
        format!("/api/v0/experiments/{exp}/results?include=raw"),
        format!("/api/v0/experiments/{exp}/receipts"),
        format!("/api/v0/experiments/{exp}/work-units"),
        "/api/v0/experiments/exp-missing".to_owned(),
    ] {
        let r = net.get(&other_key(), &target).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "experiment_not_found"),
            "{target}"
        );
    }
    let r = net
        .post(
            &other_key(),
            &format!("/api/v0/experiments/{exp}/actions/abort"),
            &json!({}),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "experiment_not_found"));
    let r = net.get(&other_key(), "/api/v0/experiments").await;
    assert_eq!(r.body["experiments"], json!([]));

    // Units before approval.
    let r = net.submit(&exp, "life-one", &hash, &["u1"]).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "experiment_not_open_for_submissions")
    );
    assert_eq!(
        r.body["detail"]["error"]["details"]["experiment_status"],
        "submitted"
    );
    // Finalize before approval.
    let r = net
        .signed(
            &key,
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/finalize-submissions"),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "finalize_not_applicable"));
    // The owner cannot approve.
    let r = net
        .signed(
            &key,
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/approve"),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "experiment_action_forbidden"));
    // Bad integrity policy: plain-string detail.
    let r = net.approve(&exp, "?integrity_policy=bogus").await;
    assert_eq!(r.status, 422);
    assert!(r.body["detail"].is_string());
    let r = net.approve(&exp, "?max_units=2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "approved");
    assert_eq!(r.body["max_units"], 2);
    assert_eq!(r.body["revision"], 2);
    assert_eq!(r.body["last_action_by_class"], "maintainer");
    let r = net.approve(&exp, "").await;
    assert_eq!((r.status, r.code()), (409, "invalid_status_transition"));
    assert_eq!(
        r.body["detail"]["error"]["details"]["current_status"],
        "approved"
    );
    // Pause/resume by the owner.
    let r = net
        .signed(
            &key,
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/pause"),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "paused");
    assert_eq!(r.body["run_phase"], "paused");
    let r = net
        .signed(
            &key,
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/resume"),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "approved");
    // Unknown action.
    let r = net
        .signed(
            &key,
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/explode"),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    // Abort is terminal; archive only by a maintainer.
    let r = net
        .signed(
            &key,
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/abort"),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "aborted");
    assert!(r.body["completed_at"].is_string());
    assert!(r.body.get("run_phase").is_none());
    let r = net
        .signed(
            &key,
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/resume"),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "invalid_status_transition"));
    let r = net
        .maintainer(
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/archive"),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "archived");
}

#[tokio::test]
async fn work_unit_check_order() {
    let net = Net::start().await;
    let key = tenant_key();
    let (exp, hash) = net.ready("units-one", 1).await;
    let path = format!("/api/v0/experiments/{exp}/work-units");
    let label = "units-one";

    // 6. Body validation first (even for a non-researcher).
    let r = net
        .maintainer("POST", &path, Some(&json!({"work_units": []})))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["detail"][0]["type"], "too_short");
    let r = net
        .post(
            &key,
            &path,
            &json!({"work_units": [{"unit_id": "bad id!", "tenant_id": TENANT,
            "experiment_id": label, "manifest_sha256": hash, "payload": []}]}),
        )
        .await;
    assert_eq!(r.status, 422);
    let locs: Vec<_> = r.body["detail"]
        .as_array()
        .expect("test step")
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert!(
        locs.contains(&json!(["body", "work_units", 0, "unit_id"])),
        "{locs:?}"
    );
    assert!(
        locs.contains(&json!(["body", "work_units", 0, "payload"])),
        "{locs:?}"
    );

    // 1. researcher required.
    let good = json!({"work_units": [unit("u1", TENANT, label, &hash, json!({}))]});
    let r = net.maintainer("POST", &path, Some(&good)).await;
    assert_eq!((r.status, r.code()), (403, "researcher_required"));

    // 7. per-unit checks, in order, for the first failing unit.
    let cases = [
        (
            unit("u1", "zzz-lab", label, &hash, json!({})),
            "work_unit_tenant_mismatch",
        ),
        (
            unit("u1", TENANT, "other-label", &hash, json!({})),
            "work_unit_experiment_label_mismatch",
        ),
        (
            unit("u1", TENANT, label, &"a".repeat(64), json!({})),
            "work_unit_manifest_mismatch",
        ),
    ];
    for (u, code) in cases {
        let r = net.post(&key, &path, &json!({"work_units": [u]})).await;
        assert_eq!((r.status, r.code()), (422, code));
        assert_eq!(r.body["detail"]["error"]["details"]["unit_id"], "u1");
    }
    // Tenant mismatch is reported before a duplicate in the same unit list.
    let r = net
        .post(
            &key,
            &path,
            &json!({"work_units": [
                unit("u1", TENANT, label, &hash, json!({})),
                unit("u1", TENANT, label, &hash, json!({})),
            ]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "duplicate_unit_id_in_batch"));

    // 8/9/10 with caps: max_payload_bytes and max_units.
    let (exp3, hash3) = {
        let key = tenant_key();
        let (e, h) = net.upload(&key, TENANT, "units-three", 1).await;
        let r = net.approve(&e, "?max_units=3&max_payload_bytes=12").await;
        assert_eq!(r.status, 200, "{}", r.text);
        (e, h)
    };
    let path3 = format!("/api/v0/experiments/{exp3}/work-units");
    // {"i": "x"} is 10 bytes with Python's default separators.
    let big =
        json!({"work_units": [unit("p1", TENANT, "units-three", &hash3, json!({"i": "xxxxx"}))]});
    let r = net.post(&key, &path3, &big).await;
    assert_eq!((r.status, r.code()), (422, "payload_too_large"));
    let two = json!({"work_units": [
        unit("a", TENANT, "units-three", &hash3, json!({"i": "x"})),
        unit("b", TENANT, "units-three", &hash3, json!({"i": "y"})),
    ]});
    let r = net.post(&key, &path3, &two).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"submitted_unit_ids": ["a", "b"], "count": 2})
    );
    // Re-submitting the same batch near the cap: max_units_exceeded first.
    let r = net.post(&key, &path3, &two).await;
    assert_eq!((r.status, r.code()), (409, "max_units_exceeded"));
    // Within the cap, a duplicate fails the whole batch.
    let r = net
        .post(
            &key,
            &path3,
            &json!({"work_units": [unit("a", TENANT, "units-three", &hash3, json!({"i": "x"}))]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "unit_id_already_submitted"));
    assert!(
        r.body["detail"]["error"]["details"]["db_error"]
            .as_str()
            .expect("test step")
            .contains("UNIQUE")
    );
    let r = net.get(&key, &path3).await;
    assert_eq!(r.body["counts_by_status"], json!({"pending": 2}));
    assert_eq!(r.body["work_units"].as_array().expect("test step").len(), 2);

    // 5. finalized.
    let r = net
        .signed(
            &key,
            "POST",
            &format!("/api/v0/experiments/{exp}/actions/finalize-submissions"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    // No units and finalized: completes at once.
    assert_eq!(r.body["status"], "completed");
    let r = net.post(&key, &path, &good).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "experiment_not_open_for_submissions")
    );
    let r = net
        .signed(
            &key,
            "POST",
            &format!("/api/v0/experiments/{exp3}/actions/finalize-submissions"),
            None,
        )
        .await;
    assert_eq!(r.body["submissions_finalized"], true);
    assert_eq!(r.body["status"], "approved");
    let r = net
        .post(
            &key,
            &path3,
            &json!({"work_units": [unit("c", TENANT, "units-three", &hash3, json!({}))]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "submissions_finalized"));
}

#[tokio::test]
async fn router_oneshot_not_found_and_body_cap() {
    use tower::ServiceExt as _;
    let dir = tempfile::tempdir().expect("test step");
    let state = auspex_coordinator::AppState::open(auspex_coordinator::Config::new(dir.path()))
        .expect("test step");
    let app = auspex_coordinator::router(state);
    let req = axum::http::Request::builder()
        .uri("/api/v0/does-not-exist")
        .body(axum::body::Body::empty())
        .expect("test step");
    let resp = app.clone().oneshot(req).await.expect("test step");
    assert_eq!(resp.status(), 404);
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v0/experiments")
        .header("content-length", "3000000")
        .body(axum::body::Body::empty())
        .expect("test step");
    let resp = app.oneshot(req).await.expect("test step");
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .expect("test step");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("test step");
    assert_eq!(
        v,
        json!({"error": "payload_too_large", "max_bytes": 2097152})
    );
}
