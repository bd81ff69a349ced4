//! The REST service: every served entry verifies offline with the served
//! trusted root, served checkpoints are consistent with each other and
//! across restarts, duplicates answer 409, bad input answers 4xx.

use std::time::Duration;

use auspex_crypto::tlog::{RekorEntry, TrustedRoot, verify_checkpoint};
use auspex_tlog::{Log, TlogConfig};
use auspex_wire::json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::*;

/// GETs the consistency proof between two sizes.
async fn proof(c: &reqwest::Client, url: &str, first: u64, last: u64) -> (Vec<[u8; 32]>, String) {
    let (status, body) = get(
        c,
        &format!("{url}/api/v1/log/proof?firstSize={first}&lastSize={last}"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v = parse(&body);
    let hashes = v
        .get("hashes")
        .and_then(Value::as_array)
        .expect("hashes")
        .iter()
        .map(|h| hex32(h.as_str().expect("hex")))
        .collect();
    let root = v
        .get("rootHash")
        .and_then(Value::as_str)
        .expect("rootHash")
        .to_owned();
    (hashes, root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_entries_verify_and_checkpoints_are_consistent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tlog = start(dir.path()).await;
    let url = tlog.url().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let c = client();

    // The published trusted root and key are the service's.
    let (status, body) = get(&c, &format!("{url}/api/v1/log/trusted_root.json")).await;
    assert_eq!(status, 200);
    let root = TrustedRoot::from_json(&body).expect("trusted root parses");
    assert_eq!(&root, tlog.trusted_root());
    assert_eq!(root.tlogs[0].base_url, url);
    assert_eq!(root.tlogs[0].log_id, tlog.log_id());
    let (status, pem) = get(&c, &format!("{url}/api/v1/log/publicKey")).await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(pem).expect("utf8"), tlog.public_key_pem());

    // Empty log.
    let (status, body) = get(&c, &format!("{url}/api/v1/log")).await;
    assert_eq!(status, 200);
    let info = parse(&body);
    assert_eq!(info.get("treeSize").and_then(|v| v.as_str_int()), Some(0));

    let signer = submitter();
    let mut served: Vec<(u64, String)> = Vec::new();
    let mut entries = Vec::new();
    for i in 0..24u64 {
        let a = artifact(i);
        let proposal = if i % 6 == 5 {
            intoto_legacy(&a)
        } else {
            rekord(&a, &signer)
        };
        let (status, loc, body) = post(&c, &url, proposal).await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        let e = RekorEntry::parse(&body).expect("entry");
        let uuid = e.uuid.clone().expect("uuid");
        assert_eq!(loc, Some(format!("/api/v1/log/entries/{uuid}")));
        assert_eq!(e.log_index, i);
        assert_verifies(&body, &root, Some(&a));
        served.push(checkpoint_of(&body));
        entries.push((uuid, a));
    }

    // Fresh proofs against the current tree, by UUID, leaf hash and index.
    for (i, (uuid, a)) in entries.iter().enumerate() {
        for id in [
            uuid.clone(),
            uuid[16..].to_owned(),
            uuid.to_ascii_uppercase(),
        ] {
            let (status, body) = get(&c, &format!("{url}/api/v1/log/entries/{id}")).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            assert_verifies(&body, &root, Some(a));
            let e = RekorEntry::parse(&body).expect("entry");
            assert_eq!(e.uuid.as_deref(), Some(uuid.as_str()), "canonical key");
            assert_eq!(e.inclusion_proof.map(|p| p.tree_size), Some(24));
        }
        let (status, body) = get(&c, &format!("{url}/api/v1/log/entries?logIndex={i}")).await;
        assert_eq!(status, 200);
        assert_verifies(&body, &root, Some(a));
    }

    // The log info's signed tree head.
    let (_, body) = get(&c, &format!("{url}/api/v1/log")).await;
    let info = parse(&body);
    let sth = info
        .get("signedTreeHead")
        .and_then(Value::as_str)
        .expect("sth");
    let tl = &root.tlogs[0];
    let key = tl.key.as_ref().expect("key");
    let cp = verify_checkpoint(sth, key, tl.note_name()).expect("signed tree head verifies");
    assert_eq!(cp.size, 24);
    assert_eq!(info.get("treeSize").and_then(|v| v.as_str_int()), Some(24));
    assert_eq!(
        info.get("rootHash").and_then(Value::as_str),
        Some(auspex_wire::hex_lower(&cp.root_hash).as_str())
    );
    assert_eq!(
        info.get("treeID").and_then(Value::as_str),
        Some(tlog.tree_id().to_string().as_str())
    );
    assert_eq!(
        info.get("inactiveShards")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(0)
    );
    served.push((24, sth.to_owned()));

    // Consistency between every pair of served checkpoints.
    for (a, (size_a, note_a)) in served.iter().enumerate() {
        for (size_b, note_b) in &served[a..] {
            let (hashes, root_hex) = proof(&c, &url, *size_a, *size_b).await;
            assert_consistent(tl, note_a, note_b, &hashes);
            let signed = verify_checkpoint(note_b, key, tl.note_name()).expect("note");
            assert_eq!(root_hex, auspex_wire::hex_lower(&signed.root_hash));
        }
    }
    // firstSize defaults to 1.
    let (status, _) = get(&c, &format!("{url}/api/v1/log/proof?lastSize=24")).await;
    assert_eq!(status, 200);

    // Duplicates: 409 with the existing entry's location, nothing appended.
    let (status, loc, body) = post(&c, &url, rekord(&artifact(0), &signer)).await;
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    assert_eq!(loc, Some(format!("/api/v1/log/entries/{}", entries[0].0)));
    let err = parse(&body);
    assert_eq!(err.get("code").and_then(|v| v.as_str_int()), Some(409));
    assert!(
        err.get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| m.contains(&entries[0].0))
    );
    let (_, body) = get(&c, &format!("{url}/api/v1/log")).await;
    assert_eq!(
        parse(&body).get("treeSize").and_then(|v| v.as_str_int()),
        Some(24)
    );

    tlog.shutdown().await.expect("shutdown");
    assert_eq!(
        Log::open(dir.path())
            .expect("open")
            .verify_integrity()
            .expect("integrity"),
        24
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_are_group_committed_and_all_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tlog = start(dir.path()).await;
    let url = tlog.url().to_owned();
    let root = tlog.trusted_root().clone();
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut got = Vec::new();
            for i in 0..25u64 {
                let a = artifact(1000 + t * 100 + i);
                let (status, _, body) = post(&c, &url, rekord(&a, &submitter())).await;
                assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
                got.push((body, a));
            }
            got
        }));
    }
    let mut indices = Vec::new();
    for t in tasks {
        for (body, a) in t.await.expect("task") {
            assert_verifies(&body, &root, Some(&a));
            indices.push(RekorEntry::parse(&body).expect("entry").log_index);
        }
    }
    indices.sort_unstable();
    assert_eq!(indices, (0..200).collect::<Vec<_>>());
    tlog.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_tree_key_and_consistency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = client();
    let first = start(dir.path()).await;
    let url1 = first.url().to_owned();
    let mut old_entries = Vec::new();
    for i in 0..7 {
        let (status, _, body) = post(&c, &url1, rekord(&artifact(i), &submitter())).await;
        assert_eq!(status, 201);
        old_entries.push((body, artifact(i)));
    }
    let (_, body) = get(&c, &format!("{url1}/api/v1/log")).await;
    let old_sth = parse(&body)
        .get("signedTreeHead")
        .and_then(Value::as_str)
        .expect("sth")
        .to_owned();
    let (log_id, tree_id) = (first.log_id(), first.tree_id());
    first.shutdown().await.expect("shutdown");

    let second = start(dir.path()).await;
    let url2 = second.url().to_owned();
    assert_eq!(second.log_id(), log_id, "same key");
    assert_eq!(second.tree_id(), tree_id, "same tree");
    let root2 = second.trusted_root().clone();
    // Entries served before the restart verify with the new trusted root
    // (the port is not part of the log's signing name).
    for (body, a) in &old_entries {
        assert_verifies(body, &root2, Some(a));
    }
    for i in 7..12 {
        let (status, _, body) = post(&c, &url2, rekord(&artifact(i), &submitter())).await;
        assert_eq!(status, 201);
        assert_verifies(&body, &root2, Some(&artifact(i)));
    }
    let (_, body) = get(&c, &format!("{url2}/api/v1/log")).await;
    let new_sth = parse(&body)
        .get("signedTreeHead")
        .and_then(Value::as_str)
        .expect("sth")
        .to_owned();
    let (hashes, _) = proof(&c, &url2, 7, 12).await;
    assert_consistent(&root2.tlogs[0], &old_sth, &new_sth, &hashes);
    // Same size, same signed checkpoint after the restart.
    let (status, body) = get(&c, &format!("{url2}/api/v1/log/entries?logIndex=0")).await;
    assert_eq!(status, 200);
    assert_verifies(&body, &root2, Some(&artifact(0)));
    second.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_without_shutdown_mid_append_keeps_every_acknowledged_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tlog = start(dir.path()).await;
    let url = tlog.url().to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let (url, tx) = (url.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            for i in 0.. {
                let a = artifact(5000 + t * 100_000 + i);
                let Ok(r) = c
                    .post(format!("{url}/api/v1/log/entries"))
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
                if tx.send((body.to_vec(), a)).is_err() {
                    return;
                }
            }
        }));
    }
    drop(tx);
    let mut acked = Vec::new();
    while acked.len() < 60 {
        acked.push(rx.recv().await.expect("an ack"));
    }
    drop(tlog); // no shutdown: stop serving with appends in flight
    while let Some(a) = rx.recv().await {
        acked.push(a);
    }
    for t in tasks {
        let _ = t.await;
    }
    // Let the detached writer finish what it had queued.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let log = Log::open(dir.path()).expect("reopen");
    let size = log.verify_integrity().expect("integrity");
    let root = log.trusted_root(&url).expect("root");
    let last = log.checkpoint().expect("cp");
    for (body, a) in &acked {
        let served = RekorEntry::parse(body).expect("entry");
        let uuid = served.uuid.as_deref().expect("uuid");
        let now = log.entry_by_id(uuid).expect("acknowledged entry survives");
        assert_eq!(now.log_index, served.log_index);
        assert_eq!(now.body, served.body);
        assert_verifies(&now.to_json(), &root, Some(a));
        let (old_size, old_note) = checkpoint_of(body);
        let proof = log.consistency_proof(old_size, size).expect("proof");
        assert_consistent(&root.tlogs[0], &old_note, &last.note, &proof);
    }
}

/// One request as raw HTTP/1.1; returns the status code (0 if the
/// connection closed without one).
async fn raw(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = head.as_bytes().to_vec();
    req.extend_from_slice(body);
    let _ = s.write_all(&req).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_answers_4xx_with_rekors_error_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = TlogConfig::new(dir.path());
    config.max_body_bytes = 64 * 1024;
    let tlog = auspex_tlog::serve(config).await.expect("serve");
    let url = tlog.url().to_owned();
    let c = client();
    let (status, _, body) = post(&c, &url, rekord(b"good", &submitter())).await;
    assert_eq!(status, 201);
    let uuid = RekorEntry::parse(&body).expect("entry").uuid.expect("uuid");

    let other_key = auspex_crypto::tlog::testlog::LogSigner::ed25519([1; 32]);
    let mut wrong_sig = String::from_utf8(rekord(b"x", &submitter())).expect("utf8");
    let good_sig = base64_of(&submitter().sign(b"x"));
    wrong_sig = wrong_sig.replace(&good_sig, &base64_of(&other_key.sign(b"x")));
    let cert = format!(
        r#"{{"apiVersion":"0.0.1","kind":"rekord","spec":{{"data":{{"content":"eA=="}},"signature":{{"content":"eA==","format":"x509","publicKey":{{"content":"{}"}}}}}}}}"#,
        base64_of(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    );
    let bodies: Vec<(Vec<u8>, u16)> = vec![
        (b"{".to_vec(), 400),
        (b"null".to_vec(), 400),
        (b"[1,2]".to_vec(), 400),
        (b"\"rekord\"".to_vec(), 400),
        (b"{}".to_vec(), 400),
        (br#"{"kind":"rekord"}"#.to_vec(), 400),
        (br#"{"kind":"cose","apiVersion":"0.0.1","spec":{}}"#.to_vec(), 400),
        (br#"{"kind":"rekord","apiVersion":"0.0.2","spec":{}}"#.to_vec(), 400),
        (br#"{"kind":"rekord","apiVersion":"0.0.1","spec":[]}"#.to_vec(), 400),
        (br#"{"kind":"rekord","apiVersion":"0.0.1","spec":{"data":{"url":"http://x"},"signature":{"format":"x509","content":"eA==","publicKey":{"content":"eA=="}}}}"#.to_vec(), 400),
        (br#"{"kind":"intoto","apiVersion":"0.0.2","spec":{"content":{"envelope":"%%%"}}}"#.to_vec(), 400),
        (br#"{"kind":"intoto","apiVersion":"0.0.2","spec":{"content":{"envelope":{"payload":"eA==","payloadType":"t","signatures":[]}}}}"#.to_vec(), 400),
        (wrong_sig.into_bytes(), 400),
        (cert.into_bytes(), 400),
        ([b"{\"a\":".repeat(5000), b"1".to_vec(), b"}".repeat(5000)].concat(), 400),
        (vec![0xff, 0xfe, 0x00], 400),
        (Vec::new(), 400),
    ];
    for (body, want) in bodies {
        let (status, _, resp) = post(&c, &url, body.clone()).await;
        assert_eq!(
            status,
            want,
            "{} -> {}",
            String::from_utf8_lossy(&body[..body.len().min(200)]),
            String::from_utf8_lossy(&resp)
        );
        assert_error_shape(&resp, status);
    }

    // Content type, size caps (declared and chunked).
    let r = c
        .post(format!("{url}/api/v1/log/entries"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(rekord(b"form", &submitter()))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 415);
    let (status, _, resp) = post(&c, &url, vec![b' '; 64 * 1024 + 1]).await;
    assert_eq!(status, 413);
    assert_error_shape(&resp, 413);
    let mut chunked = Vec::new();
    for _ in 0..8 {
        chunked.extend_from_slice(format!("{:x}\r\n", 16 * 1024).as_bytes());
        chunked.extend_from_slice(&[b' '; 16 * 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let status = raw(
        tlog.addr(),
        "POST /api/v1/log/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        &chunked,
    )
    .await;
    assert_eq!(status, 413, "chunked body over the cap");

    // GETs with bad parameters.
    let bad_ids = [
        ("abc".to_owned(), 422),
        ("g".repeat(64), 422),
        ("a".repeat(63), 422),
        ("a".repeat(65), 422),
        ("a".repeat(81), 422),
        ("%ff%fe".to_owned(), 422),
        (format!("{}{}", "0".repeat(16), &uuid[16..]), 404),
        ("ab".repeat(32), 404),
        (format!("{}{}", &uuid[..16], "cd".repeat(32)), 404),
    ];
    for (id, want) in bad_ids {
        let (status, resp) = get(&c, &format!("{url}/api/v1/log/entries/{id}")).await;
        assert_eq!(status, want, "{id}: {}", String::from_utf8_lossy(&resp));
        assert_error_shape(&resp, if want == 422 { 605 } else { want });
    }
    for (q, want, code) in [
        ("", 422, 602),
        ("?logIndex=", 422, 601),
        ("?logIndex=abc", 422, 601),
        ("?logIndex=-1", 422, 609),
        ("?logIndex=1.5", 422, 601),
        ("?logIndex=99999999999999999999999", 422, 601),
        ("?logIndex=1", 404, 404),
        ("?logIndex=9223372036854775807", 404, 404),
    ] {
        let (status, resp) = get(&c, &format!("{url}/api/v1/log/entries{q}")).await;
        assert_eq!(status, want, "{q}: {}", String::from_utf8_lossy(&resp));
        assert_error_shape(&resp, code);
    }
    for (q, want) in [
        ("", 422),
        ("?firstSize=1", 422),
        ("?lastSize=0", 422),
        ("?firstSize=0&lastSize=1", 422),
        ("?firstSize=x&lastSize=1", 422),
        ("?firstSize=2&lastSize=1", 400),
        ("?firstSize=1&lastSize=2", 400),
        ("?firstSize=1&lastSize=1&treeID=7", 400),
    ] {
        let (status, resp) = get(&c, &format!("{url}/api/v1/log/proof{q}")).await;
        assert_eq!(status, want, "{q}: {}", String::from_utf8_lossy(&resp));
    }
    let (status, resp) = get(&c, &format!("{url}/api/v1/nope")).await;
    assert_eq!(status, 404);
    assert_error_shape(&resp, 404);
    let r = c
        .delete(format!("{url}/api/v1/log/entries/{uuid}"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 405);
    let r = c
        .put(format!("{url}/api/v1/log"))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 405);

    // Mutations of a good proposal: never a 5xx.
    let good = rekord(b"mutate me", &submitter());
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..300 {
        let mut m = good.clone();
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % m.len();
            match next() % 3 {
                0 => m[at] = (next() & 0xff) as u8,
                1 => {
                    m.remove(at);
                }
                _ => m.insert(at, b"{}[]\",:0\\"[(next() % 9) as usize]),
            }
        }
        let (status, _, resp) = post(&c, &url, m).await;
        assert!(
            matches!(status, 201 | 400 | 409),
            "{status}: {}",
            String::from_utf8_lossy(&resp)
        );
    }

    // Still healthy.
    let (status, _) = get(&c, &format!("{url}/api/v1/log")).await;
    assert_eq!(status, 200);
    tlog.shutdown().await.expect("shutdown");
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn assert_error_shape(resp: &[u8], code: u16) {
    let v = parse(resp);
    let o = v.as_object().expect("error object");
    assert_eq!(o.len(), 2, "{v:?}");
    assert_eq!(
        o.get("code").and_then(|c| c.as_str_int()),
        Some(u64::from(code)),
        "{v:?}"
    );
    assert!(
        o.get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty())
    );
}

/// Integer accessor for the tests.
trait AsInt {
    fn as_str_int(&self) -> Option<u64>;
}

impl AsInt for Value {
    fn as_str_int(&self) -> Option<u64> {
        match self {
            Value::Int(i) => i.as_u64(),
            _ => None,
        }
    }
}
