//! Every route under hostile input: malformed and wrong-typed bodies, bad
//! and unknown signatures, stale and future `created`, replays, hostile
//! path parameters and query strings, oversized chunked bodies. Each answer
//! must be a 4xx (or a scoped 2xx) with a JSON error body, never a 5xx or a
//! dropped connection, and the coordinator must still serve afterwards.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

/// How a request is authenticated.
#[derive(Clone, Copy, Debug)]
enum Cred {
    Tenant,
    Worker,
    Maintainer,
    Anonymous,
    /// Signed by the tenant, one base64 character of the signature changed.
    BadSignature,
    /// Signed by a key the coordinator has never seen.
    UnknownKey,
    /// `created` twenty minutes ago.
    Stale,
    /// `created` twenty minutes ahead.
    Future,
    /// A `Signature-Input` that is not a structured-field dictionary.
    GarbledHeaders,
    /// A maintainer token that is wrong.
    WrongBearer,
}

const ALL_CREDS: [Cred; 10] = [
    Cred::Tenant,
    Cred::Worker,
    Cred::Maintainer,
    Cred::Anonymous,
    Cred::BadSignature,
    Cred::UnknownKey,
    Cred::Stale,
    Cred::Future,
    Cred::GarbledHeaders,
    Cred::WrongBearer,
];

struct Ctx<'a> {
    net: &'a Net,
    worker: &'a Worker,
}

impl Ctx<'_> {
    async fn send(&self, cred: Cred, method: &str, target: &str, body: Vec<u8>) -> (u16, String) {
        let net = self.net;
        let mut rb = net.http.request(
            Method::from_bytes(method.as_bytes()).expect("method"),
            net.url(target),
        );
        let sign = |key: &auspex_crypto::keys::TenantKey, created: i64| {
            auspex_crypto::http_sig::sign_request(
                key,
                method,
                target,
                &net.authority(),
                &body,
                created,
            )
            .header_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
        };
        let headers: Vec<(String, String)> = match cred {
            Cred::Tenant => sign(&tenant_key(), now()),
            Cred::Worker => sign(&self.worker.key, now()),
            Cred::UnknownKey => sign(&auspex_crypto::keys::TenantKey::from_seed([99; 32]), now()),
            Cred::Stale => sign(&tenant_key(), now() - 1200),
            Cred::Future => sign(&tenant_key(), now() + 1200),
            Cred::BadSignature => sign(&tenant_key(), now())
                .into_iter()
                .map(|(k, v)| {
                    if k.eq_ignore_ascii_case("signature") {
                        let mut c: Vec<char> = v.chars().collect();
                        if let Some(ch) = c.get_mut(8) {
                            *ch = if *ch == 'A' { 'B' } else { 'A' };
                        }
                        (k, c.into_iter().collect())
                    } else {
                        (k, v)
                    }
                })
                .collect(),
            Cred::GarbledHeaders => sign(&tenant_key(), now())
                .into_iter()
                .map(|(k, v)| {
                    if k.eq_ignore_ascii_case("signature-input") {
                        (k, format!("{v});;(\"@path\"=:"))
                    } else {
                        (k, v)
                    }
                })
                .collect(),
            Cred::Maintainer => vec![(
                "authorization".to_owned(),
                format!("Bearer {}", net.server.state().maintainer_token()),
            )],
            Cred::WrongBearer => vec![(
                "authorization".to_owned(),
                "Bearer not-the-token".to_owned(),
            )],
            Cred::Anonymous => Vec::new(),
        };
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        if !body.is_empty() {
            rb = rb.header("content-type", "application/json").body(body);
        }
        let r = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {target} ({cred:?}): no answer: {e}"));
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, text)
    }

    /// Sends and checks the answer is well-formed and not a server error.
    async fn probe(&self, cred: Cred, method: &str, target: &str, body: Vec<u8>) -> u16 {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        let (status, text) = self.send(cred, method, target, body).await;
        assert!(
            status < 500,
            "{method} {target} ({cred:?}) body {shown:?} → {status} {text}"
        );
        if status >= 400 {
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
                panic!("{method} {target} ({cred:?}) → {status} with a non-JSON body: {text:?}")
            });
            assert!(
                v.get("detail").is_some() || v.get("error").is_some(),
                "{method} {target} ({cred:?}) → {status} without an error member: {text}"
            );
        }
        status
    }
}

/// Bodies that are not what any route wants.
fn hostile_bodies() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"{".to_vec(),
        b"}".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"0".to_vec(),
        b"\"\"".to_vec(),
        b"{}".to_vec(),
        vec![0xff, 0xfe, 0xfd],
        b"{\"a\":\"\\ud800\"}".to_vec(),
        b"{\"a\": NaN, \"b\": Infinity, \"c\": -Infinity}".to_vec(),
        b"{\"a\": 1e999999, \"b\": 123456789012345678901234567890}".to_vec(),
        b"{\"a\": 1, \"a\": 2}".to_vec(),
        format!("{}{}", "[".repeat(3000), "]".repeat(3000)).into_bytes(),
        format!("{}{}", "{\"a\":".repeat(3000), "}".repeat(3000)).into_bytes(),
        // Every member the routes read, with the wrong type.
        serde_json::to_vec(&json!({
            "work_units": {"x": 1}, "manifest": 5, "signature": [], "unit_id": 7,
            "exit_code": "zero", "payload": "p", "worker_signature": 3,
            "worker_pubkey": {}, "completed_at": 12, "kind": [], "reason": {},
            "capabilities": "all", "pubkey_hex": 1, "tenant_id": [], "pubkey": 2,
            "model_id": {}, "name": 3, "contact_email": 4, "assignment_id": 5,
            "schema_version": "3", "served_weights": [], "generation_options": {},
            "ran_under": 1, "package": 9, "archive_b64": 1, "justification": [],
            "status": 1, "note": [], "max_units": "lots", "timestamp": "now"
        }))
        .expect("json"),
        // The right types, absurd values.
        serde_json::to_vec(&json!({
            "work_units": [{"unit_id": "", "payload": null}], "unit_id": "../../etc/passwd",
            "exit_code": -99999999999i64, "payload": {"": "\u{0}"}, "worker_signature": "zz",
            "worker_pubkey": "00", "completed_at": "9999-99-99T99:99:99Z", "kind": "x".repeat(10000),
            "capabilities": {"os": "\u{202e}"}, "pubkey_hex": "g".repeat(64), "tenant_id": "A B",
            "schema_version": 999, "served_weights": {"m": 5}, "generation_options": [5]
        }))
        .expect("json"),
    ]
}

fn hostile_queries() -> Vec<String> {
    vec![
        String::new(),
        "?limit=-1".to_owned(),
        "?limit=99999999999999999999".to_owned(),
        "?cursor=%ff%fe".to_owned(),
        "?cursor=a|b|c|d".to_owned(),
        "?include=x&include=y&limit=1&limit=2".to_owned(),
        "?since=yesterday&status=%00".to_owned(),
        format!("?q={}", "a".repeat(8000)),
        "?%zz=1".to_owned(),
    ]
}

/// Path-parameter values that no route should choke on.
fn hostile_params() -> Vec<String> {
    vec![
        "%2e%2e".to_owned(),
        "..%2f..%2fetc%2fpasswd".to_owned(),
        "x".repeat(4000),
        "%00".to_owned(),
        "%ff%fe".to_owned(),
        "%C3%A9t%C3%A9".to_owned(),
        "-1".to_owned(),
        "99999999999999999999999999".to_owned(),
        "a%20b".to_owned(),
    ]
}

/// Every route of the router as (method, path template). `{x}` segments
/// are filled in by `fill`.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v0/auth/whoami"),
    ("POST", "/api/v0/tenants"),
    ("GET", "/api/v0/tenants"),
    ("GET", "/api/v0/tenants/{tenant}"),
    ("POST", "/api/v0/experiments"),
    ("GET", "/api/v0/experiments"),
    ("GET", "/api/v0/experiments/{exp}"),
    ("POST", "/api/v0/experiments/{exp}/actions/{action}"),
    ("POST", "/api/v0/experiments/{exp}/work-units"),
    ("GET", "/api/v0/experiments/{exp}/work-units"),
    ("GET", "/api/v0/experiments/{exp}/work-units/{unit}"),
    ("GET", "/api/v0/experiments/{exp}/results"),
    ("GET", "/api/v0/experiments/{exp}/results/export"),
    ("GET", "/api/v0/experiments/{exp}/results/{result}"),
    ("GET", "/api/v0/experiments/{exp}/attestation"),
    ("GET", "/api/v0/experiments/{exp}/activity"),
    ("GET", "/api/v0/experiments/{exp}/events/recent"),
    ("GET", "/api/v0/events/recent"),
    ("POST", "/api/v0/experiments/{exp}/driver-heartbeat"),
    ("GET", "/api/v0/models/catalog"),
    ("GET", "/api/v0/models/supported"),
    ("POST", "/api/v0/model-requests"),
    ("GET", "/api/v0/model-requests"),
    ("POST", "/api/v0/model-requests/{req}/actions/{action}"),
    ("POST", "/api/v0/software-requests"),
    ("GET", "/api/v0/software-requests"),
    ("POST", "/api/v0/software-requests/{req}/actions/{action}"),
    ("POST", "/api/v0/packages"),
    ("GET", "/api/v0/packages/by-manifest/{hash}"),
    ("GET", "/api/v0/packages/{digest}"),
    ("POST", "/api/v0/tenant-applications"),
    ("GET", "/api/v0/tenant-applications"),
    ("GET", "/api/v0/tenant-applications/mine"),
    ("POST", "/api/v0/tenant-applications/{req}/actions/{action}"),
    ("GET", "/api/v0/experiments/{exp}/receipts"),
    ("GET", "/api/v0/receipts/{receipt}"),
    ("POST", "/api/v0/workers/enroll"),
    ("GET", "/api/v0/workers/{wid}"),
    ("POST", "/api/v0/workers/{wid}/heartbeat"),
    ("GET", "/api/v0/workers/{wid}/assignments"),
    ("POST", "/api/v0/workers/{wid}/assignments/{unit}/result"),
    ("POST", "/api/v0/workers/{wid}/assignments/{unit}/refuse"),
    ("GET", "/api/v0/workers/{wid}/prestage"),
    (
        "GET",
        "/api/v0/workers/{wid}/results/{result}/canonical-receipt",
    ),
];

/// Real identifiers for the placeholders.
struct Ids {
    exp: String,
    hash: String,
    unit: String,
    result: String,
    receipt: String,
    wid: String,
}

fn fill(template: &str, ids: &Ids, action: &str, hostile: Option<&str>) -> String {
    let pick = |real: &str| hostile.map_or_else(|| real.to_owned(), str::to_owned);
    template
        .replace("{tenant}", &pick(TENANT))
        .replace("{exp}", &pick(&ids.exp))
        .replace("{action}", &pick(action))
        .replace("{unit}", &pick(&ids.unit))
        .replace("{result}", &pick(&ids.result))
        .replace("{receipt}", &pick(&ids.receipt))
        .replace("{hash}", &pick(&ids.hash))
        .replace("{digest}", &pick(&"ab".repeat(32)))
        .replace("{req}", &pick("1"))
        .replace("{wid}", &pick(&ids.wid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_hostile_input_with_a_4xx() {
    let net = Net::start().await;
    let key = tenant_key();
    let (exp, hash) = net.ready("hostile", 1).await;
    let r = net.submit(&exp, "hostile", &hash, &["h1", "h2"]).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let worker = Worker::enroll(&net, 77).await;
    let (unit, r) = worker
        .work_once(&net, &|_| json!({"v": 1}))
        .await
        .expect("a lease");
    assert_eq!(r.status, 201, "{}", r.text);
    let result = r.body["result_id"].as_str().unwrap_or("1").to_owned();
    let receipts = net
        .get(&key, &format!("/api/v0/experiments/{exp}/receipts"))
        .await;
    let receipt = receipts.body["receipts"][0]["receipt_id"]
        .as_str()
        .unwrap_or("1")
        .to_owned();
    let ids = Ids {
        exp,
        hash,
        unit,
        result,
        receipt,
        wid: worker.id.clone(),
    };
    let ctx = Ctx {
        net: &net,
        worker: &worker,
    };
    let bodies = hostile_bodies();
    let queries = hostile_queries();
    let mut probes = 0usize;
    for &(method, template) in ROUTES {
        // Actions that would end the experiment early are probed last, with
        // real identifiers, by the replay section below.
        let target = fill(template, &ids, "no-such-action", None);
        for cred in ALL_CREDS {
            if method == "GET" {
                // Hostile queries with real credentials; every credential
                // with a plain query.
                let qs = if matches!(cred, Cred::Tenant | Cred::Worker | Cred::Maintainer) {
                    &queries[..]
                } else {
                    &queries[..1]
                };
                for q in qs {
                    ctx.probe(cred, method, &format!("{target}{q}"), Vec::new())
                        .await;
                    probes += 1;
                }
            } else {
                ctx.probe(cred, method, &target, b"{".to_vec()).await;
                probes += 1;
            }
        }
        if method == "POST" {
            for cred in [Cred::Tenant, Cred::Worker, Cred::Maintainer] {
                for b in &bodies {
                    ctx.probe(cred, method, &target, b.clone()).await;
                    probes += 1;
                }
            }
        }
        if template.contains('{') {
            for p in hostile_params() {
                let target = fill(template, &ids, "pause", Some(&p));
                for cred in [Cred::Tenant, Cred::Worker, Cred::Maintainer] {
                    let body = if method == "POST" {
                        b"{}".to_vec()
                    } else {
                        Vec::new()
                    };
                    ctx.probe(cred, method, &target, body).await;
                    probes += 1;
                }
            }
        }
    }
    // Replays: the same signed bytes twice, on every POST route.
    for &(method, template) in ROUTES.iter().filter(|(m, _)| *m == "POST") {
        let target = fill(template, &ids, "pause", None);
        let body = b"{}".to_vec();
        let created = now();
        for _ in 0..2 {
            let net = ctx.net;
            let signed = auspex_crypto::http_sig::sign_request(
                &key,
                method,
                &target,
                &net.authority(),
                &body,
                created,
            );
            let mut rb = net.http.post(net.url(&target));
            for (k, v) in signed.header_pairs() {
                rb = rb.header(k, v);
            }
            let r = rb
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("an answer");
            let status = r.status().as_u16();
            assert!(status < 500, "replay of POST {target} → {status}");
            probes += 1;
        }
    }
    // Oversized chunked bodies on every POST route.
    for &(_, template) in ROUTES.iter().filter(|(m, _)| *m == "POST") {
        let target = fill(template, &ids, "pause", None);
        let r = net
            .http
            .post(net.url(&target))
            .header("content-type", "application/json")
            .body(crate::bad_input::chunked_body(5 * 512 * 1024))
            .send()
            .await;
        // The server may answer 413 and close before reading everything;
        // either an early 413/4xx or a reset after the cap is fine, a 5xx
        // is not.
        if let Ok(r) = r {
            let status = r.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "chunked 2.5 MiB to {target} → {status}"
            );
        }
        probes += 1;
    }
    assert!(probes > 1500, "only {probes} probes ran");
    // Still serving, and the experiment's data is intact.
    let r = net
        .get(&key, &format!("/api/v0/experiments/{}", ids.exp))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = net
        .get(&key, &format!("/api/v0/experiments/{}/results", ids.exp))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(1));
}
