//! Malformed bodies, wrong types, oversized and chunked bodies: always a
//! 4xx with the right shape, never a 500.

use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::json;

use crate::common::*;

/// `n` chunks of 64 KiB, sent with chunked transfer encoding.
struct Chunks(usize);

impl futures_core::Stream for Chunks {
    type Item = Result<Vec<u8>, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.0 == 0 {
            return Poll::Ready(None);
        }
        self.0 -= 1;
        Poll::Ready(Some(Ok(vec![b' '; 64 * 1024])))
    }
}

pub(crate) fn chunked_body(total: usize) -> reqwest::Body {
    reqwest::Body::wrap_stream(Chunks(total / (64 * 1024) + 1))
}

#[tokio::test]
async fn malformed_bodies_never_500() {
    let net = Net::start().await;
    let key = tenant_key();
    let (exp, _) = net.ready("bad-input", 1).await;
    let w = Worker::enroll(&net, 101).await;
    let posts = [
        ("/api/v0/experiments".to_owned(), &key),
        (format!("/api/v0/experiments/{exp}/work-units"), &key),
        (format!("/api/v0/workers/{}/heartbeat", w.id), &w.key),
        (
            format!("/api/v0/workers/{}/assignments/u1/result", w.id),
            &w.key,
        ),
        (
            format!("/api/v0/workers/{}/assignments/u1/refuse", w.id),
            &w.key,
        ),
    ];
    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"x\"".to_vec(),
        b"{\"work_units\": 5, \"manifest\": [], \"signature\": 1}".to_vec(),
        b"{\"unit_id\": 1, \"exit_code\": \"0\", \"payload\": [], \"capabilities\": 3}".to_vec(),
        b"{\"kind\": \"\", \"reason\": 5}".to_vec(),
        vec![0xff, 0xfe, 0x00],
        b"{\"a\": 1e999999}".to_vec(),
        format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        br#"{"unit_id":"u1","worker_pubkey":"zz","completed_at":"not a time","exit_code":999,"payload":{},"worker_signature":""}"#.to_vec(),
    ];
    for (path, k) in &posts {
        for b in &bodies {
            let r = net.signed_raw(k, "POST", path, b.clone(), now()).await;
            // A heartbeat body with only unknown members is valid.
            let ok =
                (400..500).contains(&r.status) || (path.ends_with("/heartbeat") && r.status == 200);
            assert!(
                ok,
                "{path} {:?} → {} {}",
                String::from_utf8_lossy(b),
                r.status,
                r.text
            );
        }
    }
    // Unsigned/anonymous on every route: 4xx or a scoped 200.
    for path in [
        "/api/v0/experiments".to_owned(),
        format!("/api/v0/experiments/{exp}"),
        format!("/api/v0/experiments/{exp}/results"),
        format!("/api/v0/experiments/{exp}/receipts"),
        format!("/api/v0/workers/{}/assignments", w.id),
        "/api/v0/tenants".to_owned(),
    ] {
        let r = net.anonymous("GET", &path, None).await;
        assert!(r.status < 500, "{path} → {}", r.status);
    }
    // Bad query parameters.
    for q in [
        "?include=everything",
        "?limit=0",
        "?limit=501",
        "?limit=x",
        "?cursor=nopipe",
        "?cursor=x|y",
    ] {
        let r = net
            .get(&key, &format!("/api/v0/experiments/{exp}/results{q}"))
            .await;
        assert_eq!(r.status, 422, "{q}: {}", r.text);
    }
    let r = net.approve(&exp, "?max_units=lots").await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn oversized_bodies_413_with_and_without_content_length() {
    let net = Net::start().await;
    let key = tenant_key();
    net.add_tenant(TENANT, &key).await;
    let big = vec![b' '; 2 * 1024 * 1024 + 1];
    let r = net
        .signed_raw(&key, "POST", "/api/v0/experiments", big, now())
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(
        r.body,
        json!({"error": "payload_too_large", "max_bytes": 2097152})
    );
    // Chunked (no Content-Length): the real service does not cap these.
    let r = net
        .http
        .post(net.url("/api/v0/experiments"))
        .body(chunked_body(3 * 1024 * 1024))
        .send()
        .await
        .expect("test step");
    assert_eq!(r.status(), 413);
}
