//! Reopening the same state directory keeps everything: tenants,
//! experiments, units, results, receipts, the coordinator key and the
//! maintainer token.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn reopen_keeps_state_and_key() {
    let net = Net::start().await;
    let key = tenant_key();
    let (exp, hash) = net.ready("durable-one", 1).await;
    net.submit(&exp, "durable-one", &hash, &["d1", "d2"]).await;
    let w = Worker::enroll(&net, 111).await;
    w.work_once(&net, &|_| json!({"v": 1}))
        .await
        .expect("test step");
    let before_exp = net
        .get(&key, &format!("/api/v0/experiments/{exp}"))
        .await
        .body;
    let before_results = net
        .get(
            &key,
            &format!("/api/v0/experiments/{exp}/results?include=raw"),
        )
        .await
        .body;
    let before_receipts = net
        .get(&key, &format!("/api/v0/experiments/{exp}/receipts"))
        .await
        .body;
    let coord = net.server.state().key().public_hex().to_owned();
    let token = net.server.state().maintainer_token().to_owned();
    let Net { dir, server, .. } = net;
    server.shutdown().await;

    let net = Net::start_in(dir, |c| c).await;
    assert_eq!(net.server.state().key().public_hex(), coord);
    assert_eq!(net.server.state().maintainer_token(), token);
    assert_eq!(
        net.get(&key, &format!("/api/v0/experiments/{exp}"))
            .await
            .body,
        before_exp
    );
    let after = net
        .get(
            &key,
            &format!("/api/v0/experiments/{exp}/results?include=raw"),
        )
        .await
        .body;
    assert_eq!(after, before_results);
    assert_eq!(
        net.get(&key, &format!("/api/v0/experiments/{exp}/receipts"))
            .await
            .body,
        before_receipts
    );
    // The worker is still enrolled and the second unit is still offered.
    let (unit, r) = w
        .work_once(&net, &|_| json!({"v": 2}))
        .await
        .expect("test step");
    assert_eq!(unit, "d2");
    assert_eq!(r.status, 201);
    // Key file permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for f in ["coordinator_receipt_signing_key.pem", "maintainer.token"] {
            let mode = std::fs::metadata(net.dir.path().join(f))
                .expect("test step")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
}

#[test]
fn library_add_tenant() {
    let dir = tempfile::tempdir().expect("test step");
    let state = auspex_coordinator::AppState::open(auspex_coordinator::Config::new(dir.path()))
        .expect("test step");
    let t = auspex_coordinator::NewTenant {
        tenant_id: "lib-lab".into(),
        maintainer_pubkey: tenant_key().public_hex().to_uppercase(),
        ..Default::default()
    };
    let v = auspex_coordinator::add_tenant(&state, &t).expect("test step");
    assert_eq!(
        v.get("maintainer_pubkey").and_then(|k| k.as_str()),
        Some(tenant_key().public_hex().as_str())
    );
    assert!(matches!(
        auspex_coordinator::add_tenant(&state, &t),
        Err(auspex_coordinator::TenantError::Duplicate { .. })
    ));
}
