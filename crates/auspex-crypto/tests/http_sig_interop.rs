//! Live RFC 9421 interop with the official SDK (`auspexai-tenant` 0.5.5 and
//! 0.6.67, from their virtual environments).
//!
//! **SDK → us.** A small HTTP/1.1 server on `127.0.0.1:0` (std `TcpListener`,
//! one thread per connection) verifies every request with
//! [`verify_request`] (the coordinator's rules) and answers 200 or the
//! coordinator's 401 body. The SDK's Python sends GETs (query strings,
//! percent-encoded and non-ASCII paths, a `Host` override), DELETE, and
//! POST/PUT/PATCH bodies (non-ASCII JSON, binary, empty, 200 KB) through
//! `httpx` with `Rfc9421Auth`, plus hand-built requests (`sign_request`) that
//! must be refused: unknown key, `created` 301 s off either way, a swapped
//! body, an encoded line break in the path. For every captured request the
//! test checks the verdict again, and checks that our [`sign_request`] with
//! the same inputs and `created` yields the same `Signature-Input`,
//! `Signature` and `Content-Digest` headers byte for byte, and that our
//! `@path` derivation equals httpx's `URL.path`.
//!
//! **Us → SDK.** Requests signed by our [`sign_request`] are sent over TCP to
//! the same server (accepted), and handed to the SDK's interpreter, where a
//! verifier written from the coordinator's published rules (spec
//! `tenant-sdk.md` §3b) rebuilds the base with the SDK's own
//! `build_signature_base` (compared byte for byte with ours) and checks the
//! Ed25519 signature with `cryptography`; the SDK's `sign_request` with the
//! same `created` must produce our headers byte for byte.
//!
//! A missing virtual environment fails the test with a hint to run
//! `bash scripts/python-peers.sh`, unless `AUSPEX_SKIP_INTEROP=1` (then it
//! says on stderr that nothing was checked).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auspex_crypto::http_sig::{
    self, ComponentErrorKind, HttpSigError, Policy, RequestParts, parse_signature_input, sdk_path,
    sign_request, verify_request,
};
use auspex_crypto::keys::TenantKey;
use auspex_wire::json::{self, Object, Value};
use ed25519_dalek::VerifyingKey;

// ---------------------------------------------------------------------------
// The interpreters
// ---------------------------------------------------------------------------

/// The interpreter of the SDK `version` venv: `$AUSPEX_PYTHON_<digits>`, else
/// `<workspace>/target/py-<version>/bin/python`. Missing → the test fails
/// unless `AUSPEX_SKIP_INTEROP=1`.
#[allow(clippy::print_stderr)] // says that a check was knowingly skipped
fn python(version: &str) -> Option<PathBuf> {
    let var = format!("AUSPEX_PYTHON_{}", version.replace('.', ""));
    let path = std::env::var_os(&var)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../target/py-{version}/bin/python"))
        });
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("AUSPEX_SKIP_INTEROP").is_some_and(|v| v == "1") {
        eprintln!(
            "RFC 9421 interop with auspexai-tenant {version} NOT CHECKED: {} missing and \
             AUSPEX_SKIP_INTEROP=1",
            path.display()
        );
        return None;
    }
    panic!(
        "the auspexai-tenant {version} interpreter {} does not exist: run \
         `bash scripts/python-peers.sh` (or set {var}), or set AUSPEX_SKIP_INTEROP=1 to skip \
         the interop tests knowingly",
        path.display()
    );
}

/// Runs `script` with `python`, the job as a JSON file argument; returns the
/// JSON it prints.
fn run_peer(python: &Path, script: &str, job: &Value) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let job_path = dir.path().join("job.json");
    std::fs::write(&job_path, json::canonical(job)).expect("write job");
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&job_path)
        .output()
        .expect("run the SDK interpreter");
    assert!(
        out.status.success(),
        "the SDK script failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    json::parse(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "SDK script output is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

// ---------------------------------------------------------------------------
// The test server
// ---------------------------------------------------------------------------

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Captured {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The server's clock when it verified.
    now: i64,
    /// The server's verdict: the keyid, or the error.
    verdict: Result<String, HttpSigError>,
}

impl Captured {
    fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn verify(&self, keys: &[VerifyingKey], now: i64) -> Result<String, HttpSigError> {
        let headers = self.header_refs();
        let req = RequestParts::new(&self.method, &self.target, &headers, &self.body);
        verify_request(&req, now, |id| lookup(keys, id), &Policy::default())
            .map(|v| v.keyid().to_owned())
    }
}

fn lookup(keys: &[VerifyingKey], keyid: &str) -> Option<VerifyingKey> {
    keys.iter()
        .find(|k| auspex_wire::hex_lower(k.as_bytes()) == keyid)
        .copied()
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("time fits")
}

struct Server {
    addr: SocketAddr,
    captured: Arc<Mutex<Vec<Captured>>>,
}

impl Server {
    /// Starts the server; it knows `keys` and lives until the test process
    /// ends.
    fn start(keys: Vec<VerifyingKey>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let captured = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&captured);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let sink = Arc::clone(&sink);
                let keys = keys.clone();
                std::thread::spawn(move || serve(stream, &keys, &sink));
            }
        });
        Server { addr, captured }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The captured request whose `x-auspex-case` header is `name`.
    fn case(&self, name: &str) -> Captured {
        let all = self.captured.lock().expect("lock");
        let mut found = all
            .iter()
            .filter(|c| c.header("x-auspex-case") == Some(name));
        let first = found
            .next()
            .unwrap_or_else(|| panic!("the server never received case {name}"))
            .clone();
        assert!(found.next().is_none(), "case {name} received twice");
        first
    }
}

/// Serves one HTTP/1.1 connection (keep-alive, `Content-Length` bodies).
fn serve(stream: TcpStream, keys: &[VerifyingKey], sink: &Mutex<Vec<Captured>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let request_line = String::from_utf8_lossy(&line).trim_end().to_owned();
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(_version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let mut headers = Vec::new();
        loop {
            let mut h = Vec::new();
            match reader.read_until(b'\n', &mut h) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let h = String::from_utf8(h).expect("header lines are UTF-8 (ASCII) here");
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').expect("header line has a colon");
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| {
                v.parse::<usize>().expect("numeric Content-Length")
            });
        assert!(
            !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding")),
            "the test server reads Content-Length bodies only"
        );
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut captured = Captured {
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
            body,
            now: unix_now(),
            verdict: Ok(String::new()),
        };
        captured.verdict = captured.verify(keys, captured.now);
        let (status, response) = match &captured.verdict {
            Ok(keyid) => ("200 OK", format!("{{\"ok\":true,\"keyid\":\"{keyid}\"}}")),
            Err(e) => (
                "401 Unauthorized",
                format!("{{\"detail\":{{\"error\":{{\"code\":\"{}\"}}}}}}", e.code()),
            ),
        };
        let close = captured
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        sink.lock().expect("lock").push(captured);
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{response}",
            response.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// Sends one request with `headers` over a fresh connection; returns the
/// status code.
fn send_raw(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read reply");
    reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad reply {reply:?}"))
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn obj(members: &[(&str, Value)]) -> Value {
    let mut o = Object::new();
    for (k, v) in members {
        o.insert((*k).to_owned(), v.clone());
    }
    Value::Object(o)
}

fn hex(bytes: &[u8]) -> String {
    auspex_wire::hex_lower(bytes)
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("string member {key} in {v:?}"))
}

fn int(v: &Value, key: &str) -> i64 {
    match v.get(key) {
        Some(Value::Int(i)) => i.as_i64().expect("i64"),
        other => panic!("integer member {key}, found {other:?}"),
    }
}

/// The tenant key the server knows (RFC 8032 test 1 seed, as in the shared
/// vectors) and a second key it does not know.
fn keys() -> (TenantKey, TenantKey) {
    let seed = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let known = TenantKey::from_seed(seed.try_into().expect("32 bytes"));
    let unknown = TenantKey::from_seed([0x42; 32]);
    (known, unknown)
}

/// Writes both keys as the SDK writes key files.
fn write_keys(dir: &Path, known: &TenantKey, unknown: &TenantKey) -> (PathBuf, PathBuf) {
    let a = dir.join("known.pem");
    let b = dir.join("unknown.pem");
    std::fs::write(&a, known.to_pem()).expect("write key");
    std::fs::write(&b, unknown.to_pem()).expect("write key");
    (a, b)
}

// ---------------------------------------------------------------------------
// SDK → us
// ---------------------------------------------------------------------------

/// Sends the job's `wire` cases through httpx + `Rfc9421Auth` (or, for
/// `manual` cases, headers from `sign_request` attached by hand) and reports
/// what was sent and what the server answered.
const SDK_CLIENT: &str = r#"
import json, sys, time
from pathlib import Path
import httpx
import auspexai_tenant.http_signing as h

Key = getattr(h, "MaintainerKey", None) or getattr(h, "TenantKey")
job = json.load(open(sys.argv[1]))
known = Key.load(Path(job["key_path"]))
unknown = Key.load(Path(job["unknown_key_path"]))
out = {"known_pubkey_hex": known.pubkey_hex, "unknown_pubkey_hex": unknown.pubkey_hex, "wire": []}

with httpx.Client(auth=h.Rfc9421Auth(known), timeout=30) as client:
    for case in job["wire"]:
        kw = {"headers": dict(case.get("headers", {}))}
        kw["headers"]["x-auspex-case"] = case["name"]
        if "json" in case:
            kw["json"] = json.loads(case["json"])
        if "body_hex" in case:
            kw["content"] = bytes.fromhex(case["body_hex"])
        if "params" in case:
            kw["params"] = case["params"]
        url = job["base_url"] + case["path"]
        manual = case.get("manual")
        if manual is None:
            auth = h.Rfc9421Auth(unknown) if case.get("unknown_key") else httpx.USE_CLIENT_DEFAULT
            r = client.request(case["method"], url, auth=auth, **kw)
        else:
            signed = kw
            if "signed_body_hex" in manual:
                signed = dict(kw)
                signed.pop("json", None)
                signed["content"] = bytes.fromhex(manual["signed_body_hex"])
            to_sign = client.build_request(case["method"], url, **signed)
            hdrs = h.sign_request(
                key=known, method=to_sign.method, path=to_sign.url.path,
                authority=to_sign.headers["host"], body=to_sign.content,
                created=int(time.time()) + manual.get("created_offset", 0),
            )
            req = client.build_request(case["method"], url, **kw)
            for k, v in hdrs.items():
                req.headers[k] = v
            r = client.send(req, auth=None)
        sent = r.request
        out["wire"].append({
            "name": case["name"],
            "status": r.status_code,
            "response": r.text,
            "url_path": sent.url.path,
            "signature_input": sent.headers.get("signature-input"),
            "signature": sent.headers.get("signature"),
            "content_digest": sent.headers.get("content-digest"),
            "body_hex": sent.content.hex(),
        })
print(json.dumps(out))
"#;

/// What the server must say about a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Accepted,
    UnknownKey,
    Expired,
    DigestMismatch,
    LineBreakInPath,
}

struct WireCase {
    name: &'static str,
    method: &'static str,
    path: String,
    extra: Vec<(&'static str, Value)>,
    expect: Expect,
}

fn wire(name: &'static str, method: &'static str, path: &str) -> WireCase {
    WireCase {
        name,
        method,
        path: path.to_owned(),
        extra: Vec::new(),
        expect: Expect::Accepted,
    }
}

impl WireCase {
    fn with(mut self, key: &'static str, value: Value) -> WireCase {
        self.extra.push((key, value));
        self
    }

    fn expect(mut self, expect: Expect) -> WireCase {
        self.expect = expect;
        self
    }

    fn to_json(&self) -> Value {
        let mut members = vec![
            ("name", Value::from(self.name)),
            ("method", Value::from(self.method)),
            ("path", Value::from(self.path.as_str())),
        ];
        members.extend(self.extra.iter().cloned());
        obj(&members)
    }
}

fn wire_cases() -> Vec<WireCase> {
    let large = format!(
        "{{\"rows\":[{}]}}",
        (0..4000)
            .map(|i| format!(
                "{{\"i\":{i},\"text\":\"ünit-{i} ☕ 日本語 {}\"}}",
                "x".repeat(20)
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    let params = obj(&[
        ("include", Value::from("raw")),
        ("cursor", Value::from("2025-01-02T03:04:05+00:00|res-1")),
    ]);
    vec![
        wire("get_plain", "GET", "/api/v0/experiments"),
        wire("get_query_params", "GET", "/api/v0/experiments/exp-CmK1YYqC/results")
            .with("params", params),
        wire("get_query_non_ascii", "GET", "/api/v0/search?q=café ☕&tag=a+b&empty="),
        wire("get_percent_encoded_path", "GET", "/api/v0/experiments/a%20b/x%2Fy/100%25/%7Euser"),
        wire("get_non_ascii_path", "GET", "/api/v0/tenants/café/☕/日本"),
        wire("get_invalid_utf8_escapes", "GET", "/api/v0/caf%E9/x%C3/%F0%9F%A6"),
        wire("get_mixed_case_host_override", "GET", "/api/v0/me").with(
            "headers",
            obj(&[("Host", Value::from("Coord.AuspexAI.Network"))]),
        ),
        wire("get_host_override_with_port", "GET", "/api/v0/me").with(
            "headers",
            obj(&[("Host", Value::from("LOCALHOST:8000"))]),
        ),
        wire("delete_no_body", "DELETE", "/api/v0/experiments/exp-1"),
        wire("post_json_non_ascii", "POST", "/api/v0/model-requests").with(
            "json",
            Value::from(
                r#"{"model_id":"qwen2.5-0.5b-instruct-q4","reason":"café ☕ drift"}"#,
            ),
        ),
        wire("post_json_numbers", "POST", "/api/v0/experiments/exp-1/units?dry_run=true").with(
            "json",
            Value::from(
                r#"{"n":1e-07,"big":123456789012345678901234567890,"f":0.1,"neg":-0.0,"nested":{"emoji":"🦀","list":[1,2.5,null,true,"é"]}}"#,
            ),
        ),
        wire("post_empty", "POST", "/api/v0/experiments/exp-1/start"),
        wire("post_empty_content", "POST", "/api/v0/experiments/exp-1/stop")
            .with("body_hex", Value::from("")),
        wire("post_binary", "POST", "/api/v0/packages")
            .with("body_hex", Value::from("00fffe0d0a0d0a2522e29895c3")),
        wire("put_large_json", "PUT", "/api/v0/experiments/exp-1/blob")
            .with("json", Value::from(large.as_str())),
        wire("patch_json", "PATCH", "/api/v0/experiments/exp-1")
            .with("json", Value::from(r#"{"label":"Ünïcödé"}"#)),
        // Refused, each by its named check.
        wire("unknown_key", "GET", "/api/v0/experiments")
            .with("unknown_key", Value::Bool(true))
            .expect(Expect::UnknownKey),
        wire("created_301s_ago", "GET", "/api/v0/experiments")
            .with("manual", obj(&[("created_offset", Value::from(-301i64))]))
            .expect(Expect::Expired),
        wire("created_310s_ahead", "POST", "/api/v0/experiments")
            .with("json", Value::from(r#"{"a":1}"#))
            .with("manual", obj(&[("created_offset", Value::from(310i64))]))
            .expect(Expect::Expired),
        wire("body_swapped", "POST", "/api/v0/experiments")
            .with("json", Value::from(r#"{"budget":1000000}"#))
            .with(
                "manual",
                obj(&[("signed_body_hex", Value::from(hex(br#"{"budget":1}"#)))]),
            )
            .expect(Expect::DigestMismatch),
        // The SDK signs a decoded line break into @path; we refuse it (a
        // line break could imitate another line of the base).
        wire("encoded_line_break_in_path", "GET", "/api/v0/a%0Ab")
            .expect(Expect::LineBreakInPath),
    ]
}

fn check_verdict(
    name: &str,
    verdict: &Result<String, HttpSigError>,
    expect: Expect,
    known: &str,
    unknown: &str,
) {
    match (expect, verdict) {
        (Expect::Accepted, Ok(keyid)) => assert_eq!(keyid, known, "{name}"),
        (Expect::UnknownKey, Err(HttpSigError::UnknownKey { keyid })) => {
            assert_eq!(keyid.as_deref(), Some(unknown), "{name}");
        }
        (Expect::Expired, Err(HttpSigError::SignatureExpired { .. }))
        | (Expect::DigestMismatch, Err(HttpSigError::ContentDigestMismatch { .. }))
        | (
            Expect::LineBreakInPath,
            Err(HttpSigError::Component {
                kind: ComponentErrorKind::ControlCharacter,
                ..
            }),
        ) => {}
        (want, got) => panic!("{name}: expected {want:?}, got {got:?}"),
    }
}

fn sdk_requests_verify(version: &str) {
    let Some(python) = python(version) else {
        return;
    };
    let (known, unknown) = keys();
    let dir = tempfile::tempdir().expect("tempdir");
    let (known_path, unknown_path) = write_keys(dir.path(), &known, &unknown);
    // The server knows only `known`.
    let server = Server::start(vec![known.verifying_key()]);
    let cases = wire_cases();
    let job = obj(&[
        ("base_url", Value::from(server.base_url())),
        (
            "key_path",
            Value::from(known_path.to_str().expect("utf-8 path")),
        ),
        (
            "unknown_key_path",
            Value::from(unknown_path.to_str().expect("utf-8 path")),
        ),
        (
            "wire",
            Value::Array(cases.iter().map(WireCase::to_json).collect()),
        ),
    ]);
    let out = run_peer(&python, SDK_CLIENT, &job);

    // The SDK reads our PEM files as the same keys.
    assert_eq!(s(&out, "known_pubkey_hex"), known.public_hex());
    assert_eq!(s(&out, "unknown_pubkey_hex"), unknown.public_hex());

    let results: HashMap<&str, &Value> = out
        .get("wire")
        .and_then(Value::as_array)
        .expect("wire results")
        .iter()
        .map(|r| (s(r, "name"), r))
        .collect();
    assert_eq!(results.len(), cases.len());
    let all_keys = [known.verifying_key(), unknown.verifying_key()];
    for case in &cases {
        let name = case.name;
        let sent = results[name];
        let got = server.case(name);

        // 1. The live server's verdict, as the client saw it.
        let status = int(sent, "status");
        if case.expect == Expect::Accepted {
            assert_eq!(status, 200, "{name}: {}", s(sent, "response"));
        } else {
            assert_eq!(status, 401, "{name}: {}", s(sent, "response"));
            let code = got.verdict.as_ref().expect_err("refused").code();
            assert!(s(sent, "response").contains(code), "{name}");
        }
        check_verdict(
            name,
            &got.verdict,
            case.expect,
            &known.public_hex(),
            &unknown.public_hex(),
        );
        // ... and again at the server's clock, so the verdict is no accident
        // of timing.
        assert_eq!(
            got.verify(&[known.verifying_key()], got.now),
            got.verdict,
            "{name}"
        );

        // 2. What arrived is what httpx says it sent.
        assert_eq!(got.method, case.method, "{name}");
        assert_eq!(hex(&got.body), s(sent, "body_hex"), "{name}");
        let si = got.header("signature-input").expect("Signature-Input");
        let sig = got.header("signature").expect("Signature");
        assert_eq!(si, s(sent, "signature_input"), "{name}");
        assert_eq!(sig, s(sent, "signature"), "{name}");
        assert_eq!(
            got.header("content-digest"),
            sent.get("content_digest").and_then(Value::as_str),
            "{name}"
        );

        // 3. Our @path derivation is httpx's URL.path.
        assert_eq!(sdk_path(&got.target), s(sent, "url_path"), "{name}");

        // 4. Our signer, given the same request and `created`, sends the
        // same headers byte for byte.
        let input = parse_signature_input(si).expect("Signature-Input parses");
        let [input] = input.as_slice() else {
            panic!("{name}: one signature");
        };
        let created = input.params().created.expect("created");
        let keyid = input.params().keyid.clone().expect("keyid");
        let signer = if keyid == unknown.public_hex() {
            &unknown
        } else {
            &known
        };
        let signed_body = case
            .extra
            .iter()
            .find(|(k, _)| *k == "manual")
            .and_then(|(_, m)| m.get("signed_body_hex"))
            .and_then(Value::as_str)
            .map_or_else(|| got.body.clone(), unhex);
        let host = got.header("host").expect("Host");
        let ours = sign_request(
            signer,
            &got.method,
            &got.target,
            host,
            &signed_body,
            created,
        );
        assert_eq!(ours.signature_input, si, "{name}: Signature-Input");
        assert_eq!(ours.signature, sig, "{name}: Signature");
        assert_eq!(
            ours.content_digest.as_deref(),
            got.header("content-digest"),
            "{name}: Content-Digest"
        );
        // content-digest is covered exactly when a body is signed.
        let covered: Vec<&str> = input.components().iter().map(|c| c.name()).collect();
        assert_eq!(
            covered.contains(&"content-digest"),
            !signed_body.is_empty(),
            "{name}: {covered:?}"
        );

        // 5. Under the right key every SDK signature is mathematically valid,
        // even those refused by policy (their base is what the SDK signed).
        if case.expect != Expect::LineBreakInPath {
            let base = http_sig::signature_base(
                &got.method,
                &got.target,
                host,
                &signed_body,
                created,
                &keyid,
            );
            let raw = parse_signature_input(si).expect("parses");
            assert_eq!(raw[0].signature_params(), &si["sig1=".len()..], "{name}");
            let sig_bytes = &http_sig::parse_signature(sig).expect("parses")[0].1;
            let sig = ed25519_dalek::Signature::from_slice(sig_bytes).expect("64 bytes");
            assert!(
                all_keys
                    .iter()
                    .any(|k| k.verify_strict(base.as_bytes(), &sig).is_ok()),
                "{name}: SDK signature does not verify over our base"
            );
        }
    }
}

#[test]
fn sdk_0_5_5_httpx_requests_verify_live_and_match_our_signer() {
    sdk_requests_verify("0.5.5");
}

#[test]
fn sdk_0_6_67_httpx_requests_verify_live_and_match_our_signer() {
    sdk_requests_verify("0.6.67");
}

// ---------------------------------------------------------------------------
// Us → SDK
// ---------------------------------------------------------------------------

/// For each case signed by us: the coordinator's rules (spec §3b, written
/// from the published description) with the SDK's `build_signature_base`
/// and `cryptography`'s Ed25519; and the SDK's own `sign_request` with the
/// same `created`.
const SDK_VERIFIER: &str = r#"
import base64, json, re, sys
import auspexai_tenant.http_signing as h
from pathlib import Path
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

Key = getattr(h, "MaintainerKey", None) or getattr(h, "TenantKey")
job = json.load(open(sys.argv[1]))
key = Key.load(Path(job["key_path"]))
known = set(job["known_keyids"])
ALLOWED = ("@method", "@path", "@authority", "content-digest")
SI = re.compile(r'^([A-Za-z0-9_*.-]+)=\(([^)]*)\)((?:;[A-Za-z0-9_*.-]+=(?:"[^"]*"|-?[0-9]+))*)$')
PARAM = re.compile(r';([A-Za-z0-9_*.-]+)=("[^"]*"|-?[0-9]+)')
SIG = re.compile(r'^([A-Za-z0-9_*.-]+)=:([A-Za-z0-9+/]*={0,2}):$')

def coordinator(c, body):
    """(verdict, signature base or None)"""
    hd = {k.lower(): v for k, v in c["headers"].items()}
    si, sig = hd.get("signature-input"), hd.get("signature")
    if si is None:
        return "signature_required", None
    if sig is None:
        return "auth_error", None
    m = SI.match(si)
    if not m:
        return "malformed_authorization_header", None
    label, covered_raw, params_raw = m.groups()
    items = covered_raw.split(" ") if covered_raw else []
    if any(len(i) < 3 or i[0] != '"' or i[-1] != '"' for i in items):
        return "malformed_authorization_header", None
    covered = tuple(i[1:-1] for i in items)
    params = {k.lower(): v.strip('"') for k, v in PARAM.findall(params_raw)}
    sm = SIG.match(sig)
    if not sm or sm.group(1) != label:
        return "malformed_authorization_header", None
    try:
        created = int(params["created"])
        alg, keyid = params["alg"].lower(), params["keyid"].lower()
    except (KeyError, ValueError):
        return "invalid_signature", None
    if alg != "ed25519":
        return "unsupported_signature_algorithm", None
    if abs(job["now"] - created) > 300:
        return "signature_expired", None
    if any(x not in covered for x in ("@method", "@path", "@authority")):
        return "invalid_signature", None
    if body and "content-digest" not in covered:
        return "invalid_signature", None
    if any(x not in ALLOWED for x in covered):
        return "invalid_signature", None
    cd = hd.get("content-digest")
    if "content-digest" in covered and cd is not None and cd.strip() != h.compute_content_digest(body):
        return "invalid_signature", None
    if keyid not in known:
        return "invalid_signature", None
    base = h.build_signature_base(
        covered=covered, raw_covered_and_params=si[len(label) + 1:], method=c["method"],
        path=c["path"], authority=c["authority"], content_digest_header=cd,
    )
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(keyid)).verify(base64.b64decode(sm.group(2)), base)
    except InvalidSignature:
        return "invalid_signature", base
    return "ok", base

out = []
for c in job["cases"]:
    body = bytes.fromhex(c["body_hex"])
    verdict, base = coordinator(c, bytes.fromhex(c.get("sent_body_hex", c["body_hex"])))
    sdk = h.sign_request(key=key, method=c["method"], path=c["path"], authority=c["authority"],
                         body=body, created=c["created"])
    out.append({
        "name": c["name"],
        "verdict": verdict,
        "base_hex": None if base is None else base.hex(),
        "sdk_headers": sdk,
    })
print(json.dumps(out))
"#;

struct OurCase {
    name: &'static str,
    method: &'static str,
    target: &'static str,
    host: &'static str,
    body: Vec<u8>,
    /// Seconds from now.
    created_offset: i64,
    /// The body actually sent, when it differs from the signed one.
    sent_body: Option<Vec<u8>>,
    /// What the coordinator rules must say.
    verdict: &'static str,
}

fn our(name: &'static str, method: &'static str, target: &'static str, body: &[u8]) -> OurCase {
    OurCase {
        name,
        method,
        target,
        host: "coord.auspexai.network",
        body: body.to_vec(),
        created_offset: 0,
        sent_body: None,
        verdict: "ok",
    }
}

fn our_cases() -> Vec<OurCase> {
    vec![
        our("get", "GET", "/api/v0/experiments", b""),
        our(
            "get_query",
            "GET",
            "/api/v0/experiments/exp-CmK1YYqC/results?include=raw&cursor=2025-01-02T03%3A04%3A05%2B00%3A00%7Cres-1",
            b"",
        ),
        our(
            "get_encoded_non_ascii_path",
            "GET",
            "/api/v0/tenants/caf%C3%A9/a%20b/x%2Fy/100%25/%E2%98%95",
            b"",
        ),
        OurCase {
            host: "Coord.AuspexAI.Network:8443",
            ..our("get_mixed_case_host_with_port", "get", "/api/v0/me", b"")
        },
        OurCase {
            host: "[::1]:8443",
            ..our("get_ipv6_host", "GET", "/api/v0/me", b"")
        },
        our(
            "post_json_non_ascii",
            "POST",
            "/api/v0/model-requests",
            r#"{"model_id":"qwen2.5-0.5b-instruct-q4","reason":"café ☕ drift"}"#.as_bytes(),
        ),
        our("post_empty", "POST", "/api/v0/experiments/exp-1/start", b""),
        our(
            "post_binary",
            "post",
            "/api/v0/packages?x=1",
            b"\x00\xff\xfe\r\n\r\n%\"",
        ),
        our("put_large", "PUT", "/api/v0/blob", &[b'a'; 100_000]),
        OurCase {
            created_offset: -301,
            verdict: "signature_expired",
            ..our("expired", "GET", "/api/v0/experiments", b"")
        },
        OurCase {
            sent_body: Some(br#"{"budget":1000000}"#.to_vec()),
            verdict: "invalid_signature",
            ..our(
                "body_swapped",
                "POST",
                "/api/v0/experiments",
                br#"{"budget":1}"#,
            )
        },
    ]
}

fn our_requests_verify(version: &str) {
    let Some(python) = python(version) else {
        return;
    };
    let (known, unknown) = keys();
    let dir = tempfile::tempdir().expect("tempdir");
    let (known_path, _) = write_keys(dir.path(), &known, &unknown);
    let server = Server::start(vec![known.verifying_key()]);
    let now = unix_now();
    let cases = our_cases();

    let mut job_cases = Vec::new();
    let mut ours = Vec::new();
    for case in &cases {
        let created = now + case.created_offset;
        let signed = sign_request(
            &known,
            case.method,
            case.target,
            case.host,
            &case.body,
            created,
        );
        let sent_body = case.sent_body.as_deref().unwrap_or(&case.body);

        // Over TCP to the coordinator-rules server. (The Host carries the
        // signed authority; the connection goes to 127.0.0.1.)
        let mut headers = vec![("host", case.host), ("x-auspex-case", case.name)];
        headers.extend(signed.header_pairs());
        let status = send_raw(server.addr, case.method, case.target, &headers, sent_body);
        let got = server.case(case.name);
        if case.verdict == "ok" {
            assert_eq!(status, 200, "{}: {:?}", case.name, got.verdict);
            assert_eq!(got.verdict.as_deref(), Ok(known.public_hex().as_str()));
        } else {
            assert_eq!(status, 401, "{}", case.name);
            assert_eq!(
                got.verdict.as_ref().expect_err("refused").code(),
                case.verdict,
                "{}",
                case.name
            );
        }

        let mut hdrs = Object::new();
        for (n, v) in signed.header_pairs() {
            hdrs.insert(n.to_owned(), Value::from(v));
        }
        job_cases.push(obj(&[
            ("name", Value::from(case.name)),
            ("method", Value::from(case.method)),
            ("path", Value::from(sdk_path(case.target))),
            ("authority", Value::from(case.host)),
            ("body_hex", Value::from(hex(&case.body))),
            ("sent_body_hex", Value::from(hex(sent_body))),
            ("created", Value::from(created)),
            ("headers", Value::Object(hdrs)),
        ]));
        ours.push((signed, created));
    }
    let job = obj(&[
        (
            "key_path",
            Value::from(known_path.to_str().expect("utf-8 path")),
        ),
        (
            "known_keyids",
            Value::Array(vec![Value::from(known.public_hex())]),
        ),
        ("now", Value::from(now)),
        ("cases", Value::Array(job_cases)),
    ]);
    let out = run_peer(&python, SDK_VERIFIER, &job);
    let out = out.as_array().expect("array");
    assert_eq!(out.len(), cases.len());
    for ((case, (signed, created)), res) in cases.iter().zip(&ours).zip(out) {
        let name = case.name;
        assert_eq!(s(res, "name"), name);
        assert_eq!(s(res, "verdict"), case.verdict, "{name}: coordinator rules");
        if case.verdict == "ok" {
            let base = http_sig::signature_base(
                case.method,
                case.target,
                case.host,
                &case.body,
                *created,
                &known.public_hex(),
            );
            assert_eq!(
                s(res, "base_hex"),
                hex(base.as_bytes()),
                "{name}: signature base differs from the SDK's build_signature_base"
            );
        }
        let sdk = res.get("sdk_headers").expect("sdk headers");
        assert_eq!(s(sdk, "Signature-Input"), signed.signature_input, "{name}");
        assert_eq!(s(sdk, "Signature"), signed.signature, "{name}");
        assert_eq!(
            sdk.get("Content-Digest").and_then(Value::as_str),
            signed.content_digest.as_deref(),
            "{name}"
        );
    }
}

#[test]
fn our_requests_pass_coordinator_rules_with_the_sdk_0_5_5_base() {
    our_requests_verify("0.5.5");
}

#[test]
fn our_requests_pass_coordinator_rules_with_the_sdk_0_6_67_base() {
    our_requests_verify("0.6.67");
}
