//! RFC 9421 request signatures: the SDK's vectors byte for byte, the
//! coordinator's checks one by one (each test asserts the rejecting check
//! and its 401 code), RFC 9421 Appendix B.2 and B.4, replay protection and
//! property tests (signer → verifier round trips, mutations rejected).

use std::fs;
use std::path::{Path, PathBuf};

use auspex_crypto::http_sig::{
    self, ComponentErrorKind, Derivation, HttpSigError, MalformedKind, Policy, ReplayCache,
    ReplayError, RequestParts, Rfc9421Policy, SignatureHeader, parse_signature_input,
    verify_request, verify_rfc9421,
};
use auspex_crypto::keys::TenantKey;
use auspex_crypto::manifest::parse_pubkey;
use auspex_wire::json::{self, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn vectors(name: &str) -> Value {
    let path = format!(
        "{}/../auspex-wire/tests/fixtures/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    json::parse(&fs::read(path).expect("vector present")).expect("vector is JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).expect("string member")
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The tenant key of `keys.json` (RFC 8032 test 1).
fn tenant() -> TenantKey {
    let keys = vectors("keys.json");
    let seed = unhex(s(keys.get("tenant").expect("tenant"), "seed_hex"));
    TenantKey::from_seed(seed.try_into().expect("32 bytes"))
}

fn rfc_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rfc9421")
        .join(name)
}

fn rfc_text(name: &str) -> String {
    fs::read_to_string(rfc_fixture(name)).expect("fixture present")
}

/// An HTTP/1.1 request as stored in the fixtures: request line, header
/// lines, blank line, body bytes.
struct Msg {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Msg {
    fn parse(text: &str) -> Msg {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let request_line = lines.next().expect("request line");
        let mut parts = request_line.split(' ');
        let method = parts.next().expect("method").to_owned();
        let target = parts.next().expect("target").to_owned();
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.to_owned(), v.trim().to_owned())
            })
            .collect();
        Msg {
            method,
            target,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn add_header_lines(&mut self, text: &str) {
        for l in text.lines().filter(|l| !l.is_empty()) {
            let (n, v) = l.split_once(':').expect("header line");
            self.headers.push((n.to_owned(), v.trim().to_owned()));
        }
    }

    fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

/// A signed request owning its parts.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    target: String,
    host: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    /// A request signed by `key` with the SDK's signer.
    fn signed(key: &TenantKey, method: &str, target: &str, host: &str, body: &[u8]) -> Req {
        let signed = http_sig::sign_request(key, method, target, host, body, CREATED);
        let mut headers = vec![("Host".to_owned(), host.to_owned())];
        headers.extend(
            signed
                .header_pairs()
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned())),
        );
        Req {
            method: method.to_owned(),
            target: target.to_owned(),
            host: host.to_owned(),
            headers,
            body: body.to_vec(),
        }
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    fn get(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .expect("header present")
    }

    /// Replaces the signature with one by `key` over this request's base
    /// under `signature_input` (for inputs the SDK never produces).
    fn resign(&mut self, key: &TenantKey, signature_input: &str) {
        self.set("Signature-Input", signature_input);
        let inputs = parse_signature_input(signature_input).expect("input parses");
        let input = &inputs[0];
        let headers = self.header_pairs();
        let parts = RequestParts::new(&self.method, &self.target, &headers, &self.body);
        // Inputs without a base (duplicates, parameters) get a signature over
        // nothing: the verifier must refuse them before the signature check.
        let base = input
            .signature_base(&parts, Derivation::AuspexSdk, &[])
            .unwrap_or_default();
        let sig = STANDARD.encode(key.sign(base.as_bytes()));
        let label = input.label().to_owned();
        self.set("Signature", &format!("{label}=:{sig}:"));
    }

    fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    fn verify_at(&self, now: i64) -> Result<http_sig::VerifiedRequest, HttpSigError> {
        let headers = self.header_pairs();
        let parts = RequestParts::new(&self.method, &self.target, &headers, &self.body);
        verify_request(&parts, now, parse_pubkey, &Policy::default())
    }

    fn verify(&self) -> Result<http_sig::VerifiedRequest, HttpSigError> {
        self.verify_at(CREATED)
    }
}

const CREATED: i64 = 1_735_787_045;
const HOST: &str = "coord.auspexai.network";
const BODY: &[u8] = br#"{"work_units":[]}"#;

fn post() -> Req {
    Req::signed(
        &tenant(),
        "POST",
        "/api/v0/experiments/exp-1/work-units",
        HOST,
        BODY,
    )
}

fn get() -> Req {
    Req::signed(&tenant(), "GET", "/api/v0/experiments", HOST, b"")
}

fn params(covered: &str, extra: &str) -> String {
    let keyid = tenant().public_hex();
    format!("sig1=({covered});created={CREATED};alg=\"ed25519\";keyid=\"{keyid}\"{extra}")
}

const GET_COVERED: &str = r#""@method" "@path" "@authority""#;
const POST_COVERED: &str = r#""@method" "@path" "@authority" "content-digest""#;

#[track_caller]
fn assert_rejects(req: &Req, want: HttpSigError) {
    let err = req.verify().expect_err("must be rejected");
    assert_eq!(err, want);
}

// ---------------------------------------------------------------------------
// SDK vectors (http_signatures.json), byte for byte
// ---------------------------------------------------------------------------

#[test]
fn sdk_direct_vectors_are_reproduced_byte_for_byte() {
    let v = vectors("http_signatures.json");
    let key = tenant();
    assert_eq!(key.public_hex(), s(&v, "tenant_pubkey_hex"));
    let cases = v.get("direct").and_then(Value::as_array).expect("direct");
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = s(case, "name");
        let body = unhex(s(case, "body_hex"));
        let created = case
            .get("created")
            .and_then(|c| match c {
                Value::Int(i) => i.as_i64(),
                _ => None,
            })
            .expect("created");
        let (method, path, authority) = (s(case, "method"), s(case, "path"), s(case, "authority"));
        let base =
            http_sig::signature_base(method, path, authority, &body, created, &key.public_hex());
        assert_eq!(base, s(case, "signature_base_utf8"), "{name}: base");
        assert_eq!(
            auspex_wire::hex_lower(base.as_bytes()),
            s(case, "signature_base_hex"),
            "{name}: base bytes"
        );
        let signed = http_sig::sign_request(&key, method, path, authority, &body, created);
        let headers = case.get("headers").expect("headers");
        assert_eq!(
            signed.signature_input,
            s(headers, "Signature-Input"),
            "{name}"
        );
        assert_eq!(signed.signature, s(headers, "Signature"), "{name}");
        assert_eq!(
            signed.content_digest.as_deref(),
            headers.get("Content-Digest").and_then(Value::as_str),
            "{name}"
        );

        // And the coordinator rules accept the vector's own headers.
        let mut hs: Vec<(&str, &str)> = vec![("Host", authority)];
        if let Some(obj) = headers.as_object() {
            hs.extend(
                obj.iter()
                    .map(|(n, v)| (n.as_str(), v.as_str().expect("str"))),
            );
        }
        let req = RequestParts::new(method, path, &hs, &body);
        let ok = verify_request(&req, created, parse_pubkey, &Policy::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ok.keyid(), key.public_hex());
        assert_eq!(ok.label(), "sig1");
        assert_eq!(ok.created(), created);
    }
}

/// Splits `scheme://host[:port]/path?query` into scheme, host header value
/// (as httpx sends it) and request target.
fn split_url(url: &str) -> (&str, String, &str) {
    let (scheme, rest) = url.split_once("://").expect("absolute URL");
    let slash = rest.find('/').expect("path");
    let (netloc, target) = rest.split_at(slash);
    let (host, port) = match netloc.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().expect("port"))),
        None => (netloc, None),
    };
    (scheme, http_sig::authority_for(scheme, host, port), target)
}

#[test]
fn sdk_wire_requests_via_httpx_verify_and_are_reproduced() {
    let v = vectors("http_signatures.json");
    let key = tenant();
    let cases = v.get("via_httpx").and_then(Value::as_array).expect("cases");
    assert_eq!(cases.len(), 2);
    for case in cases {
        let (scheme, host, target) = split_url(s(case, "url"));
        let headers = case
            .get("headers")
            .and_then(Value::as_object)
            .expect("headers");
        assert_eq!(host, headers["host"].as_str().expect("host"));
        let hs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str().expect("str")))
            .collect();
        let body = unhex(s(case, "body_hex"));
        let method = s(case, "method");
        let req = RequestParts::new(method, target, &hs, &body).with_scheme(scheme);
        let ok = verify_request(&req, CREATED, parse_pubkey, &Policy::default())
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(ok.keyid(), key.public_hex());
        let expected: &[&str] = if body.is_empty() {
            &["@method", "@path", "@authority"]
        } else {
            &["@method", "@path", "@authority", "content-digest"]
        };
        assert_eq!(ok.covered(), expected);

        // Our signer, fed the wire request, emits the same headers.
        let ours = http_sig::sign_request(&key, method, target, &host, &body, CREATED);
        assert_eq!(
            ours.signature_input,
            headers["signature-input"].as_str().expect("s")
        );
        assert_eq!(ours.signature, headers["signature"].as_str().expect("s"));
        assert_eq!(
            ours.content_digest.as_deref(),
            headers.get("content-digest").and_then(Value::as_str)
        );
    }
}

#[test]
fn httpx_authority_rules() {
    assert_eq!(
        http_sig::authority_for("https", "COORD.Example.com", Some(443)),
        "coord.example.com"
    );
    assert_eq!(
        http_sig::authority_for("http", "localhost", Some(8000)),
        "localhost:8000"
    );
    assert_eq!(
        http_sig::authority_for("http", "localhost", Some(80)),
        "localhost"
    );
    assert_eq!(
        http_sig::authority_for("https", "::1", Some(8443)),
        "[::1]:8443"
    );
    assert_eq!(http_sig::authority_for("https", "[::1]", None), "[::1]");
}

#[test]
fn path_is_percent_decoded_and_query_is_not_signed() {
    // spec §3b: `/a%20b` → `/a b`, `%2F` → `/`, `caf%C3%A9` → `café`.
    assert_eq!(http_sig::sdk_path("/a%20b?x=1"), "/a b");
    assert_eq!(http_sig::sdk_path("/x%2Fy"), "/x/y");
    assert_eq!(http_sig::sdk_path("/caf%C3%A9"), "/café");
    assert_eq!(http_sig::sdk_path("/100%"), "/100%");
    assert_eq!(http_sig::sdk_path("/%zz%4"), "/%zz%4");
    assert_eq!(http_sig::sdk_path("/%FF"), "/\u{FFFD}");
    assert_eq!(http_sig::sdk_path(""), "/");

    let req = Req::signed(&tenant(), "GET", "/units/caf%C3%A9%20x?cursor=a", HOST, b"");
    req.verify().expect("decoded path verifies");
    // Equivalent encodings verify alike (the coordinator decodes too).
    let mut same = req.clone();
    same.target = "/units/caf%c3%a9 x?cursor=b".to_owned();
    same.verify().expect("same decoded path");
    // The query rides unsigned (spec §11 #20): changing it still verifies.
    let mut query = req.clone();
    query.target = "/units/caf%C3%A9%20x?cursor=zzz&include=raw".to_owned();
    query.verify().expect("query is not covered");
}

// ---------------------------------------------------------------------------
// Coordinator checks, one test per rejecting check
// ---------------------------------------------------------------------------

#[test]
fn check01_missing_signature_input_is_signature_required() {
    let mut req = get();
    req.remove("Signature-Input");
    let err = req.verify().expect_err("rejected");
    assert_eq!(err, HttpSigError::MissingSignatureInput);
    assert_eq!(err.code(), "signature_required");
}

#[test]
fn check01_missing_signature_is_auth_error() {
    let mut req = get();
    req.remove("Signature");
    let err = req.verify().expect_err("rejected");
    assert_eq!(err, HttpSigError::MissingSignature);
    assert_eq!(err.code(), "auth_error");
}

#[test]
fn check02_unparseable_signature_input() {
    for bad in [
        r#"sig1=("@method" "@path""#,
        r#"sig1="@method""#,
        r#"sig1=("@method" @path)"#,
        r#"sig1=("@method" "");created=1"#,
        "sig1=(\"@method\");created=1.5;alg=\"ed25519\"",
        r#"sig1=("@method");created="1""#,
        r#"sig1=("@method");alg=ed25519"#,
        r#"Sig1=("@method")"#,
        "",
    ] {
        let mut req = get();
        req.set("Signature-Input", bad);
        let err = req.verify().expect_err(bad);
        assert!(
            matches!(
                err,
                HttpSigError::Malformed {
                    header: SignatureHeader::SignatureInput,
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
        assert_eq!(err.code(), "invalid_signature");
    }
}

#[test]
fn check02_signature_must_be_a_byte_sequence() {
    let mut req = get();
    req.set("Signature", "sig1=\"abc\"");
    assert_rejects(
        &req,
        HttpSigError::Malformed {
            header: SignatureHeader::Signature,
            kind: MalformedKind::NotByteSequence {
                label: "sig1".into(),
            },
        },
    );
    req.set("Signature", "sig1=:not base64!:");
    assert!(matches!(
        req.verify(),
        Err(HttpSigError::Malformed {
            header: SignatureHeader::Signature,
            kind: MalformedKind::Syntax { .. }
        })
    ));
}

#[test]
fn check03_exactly_one_signature() {
    let req = get();
    let mut two = req.clone();
    let input = req.get("Signature-Input").to_owned();
    two.set(
        "Signature-Input",
        &format!("{input}, {}", input.replace("sig1", "sig2")),
    );
    assert_rejects(
        &two,
        HttpSigError::MultipleSignatures {
            header: SignatureHeader::SignatureInput,
            count: 2,
        },
    );
    // Two header lines combine into one dictionary (RFC 9421 §4).
    let mut lines = req.clone();
    lines
        .headers
        .push(("Signature-Input".into(), input.replace("sig1", "sig2")));
    assert!(matches!(
        lines.verify(),
        Err(HttpSigError::MultipleSignatures { count: 2, .. })
    ));
    let mut sigs = req.clone();
    let sig = req.get("Signature").to_owned();
    sigs.set(
        "Signature",
        &format!("{sig}, {}", sig.replace("sig1", "sig2")),
    );
    assert_rejects(
        &sigs,
        HttpSigError::MultipleSignatures {
            header: SignatureHeader::Signature,
            count: 2,
        },
    );
}

#[test]
fn check03_labels_must_match() {
    let mut req = get();
    let sig = req.get("Signature").replace("sig1", "sig2");
    req.set("Signature", &sig);
    assert_rejects(
        &req,
        HttpSigError::LabelNotFound {
            label: "sig1".into(),
            header: SignatureHeader::Signature,
        },
    );
    // Any label is accepted when both agree (coordinator.md §2.2)...
    let mut other = get();
    other.resign(&tenant(), &params(GET_COVERED, "").replace("sig1", "mine"));
    other.verify().expect("any matching label");
    // ...unless the policy pins one.
    let headers = other.header_pairs();
    let parts = RequestParts::new(&other.method, &other.target, &headers, &other.body);
    let policy = Policy::default().label("sig1");
    assert_eq!(
        verify_request(&parts, CREATED, parse_pubkey, &policy),
        Err(HttpSigError::LabelNotFound {
            label: "sig1".into(),
            header: SignatureHeader::SignatureInput
        })
    );
}

#[test]
fn check04_created_alg_keyid_are_required() {
    let keyid = tenant().public_hex();
    for (input, param) in [
        (
            format!(r#"sig1=({GET_COVERED});alg="ed25519";keyid="{keyid}""#),
            "created",
        ),
        (
            format!(r#"sig1=({GET_COVERED});created={CREATED};keyid="{keyid}""#),
            "alg",
        ),
        (
            format!(r#"sig1=({GET_COVERED});created={CREATED};alg="ed25519""#),
            "keyid",
        ),
    ] {
        let mut req = get();
        req.resign(&tenant(), &input);
        let err = req.verify().expect_err(param);
        assert_eq!(err, HttpSigError::MissingParameter { param });
        assert_eq!(err.code(), "invalid_signature");
    }
}

#[test]
fn check05_algorithm_must_be_ed25519() {
    let mut req = get();
    let input = params(GET_COVERED, "").replace("ed25519", "rsa-pss-sha512");
    req.resign(&tenant(), &input);
    let err = req.verify().expect_err("rsa");
    assert_eq!(
        err,
        HttpSigError::UnsupportedAlgorithm {
            alg: "rsa-pss-sha512".into()
        }
    );
    assert_eq!(err.code(), "unsupported_signature_algorithm");
    // The coordinator lowercases alg and keyid before comparing.
    let mut upper = get();
    let input = params(GET_COVERED, "")
        .replace("ed25519", "ED25519")
        .replace(
            &tenant().public_hex(),
            &tenant().public_hex().to_uppercase(),
        );
    upper.resign(&tenant(), &input);
    let ok = upper.verify().expect("case-insensitive alg and keyid");
    assert_eq!(ok.keyid(), tenant().public_hex());
}

#[test]
fn check06_only_profile_components() {
    for extra in [
        r#""@query""#,
        r#""content-type""#,
        r#""@target-uri""#,
        r#""@path";req"#,
    ] {
        let mut req = get();
        req.set("Content-Type", "application/json");
        req.resign(&tenant(), &params(&format!("{GET_COVERED} {extra}"), ""));
        let err = req.verify().expect_err(extra);
        assert_eq!(
            err,
            HttpSigError::ComponentNotAllowed {
                component: (*extra).to_owned()
            }
        );
        assert_eq!(err.code(), "invalid_signature");
    }
}

#[test]
fn check06_required_components() {
    let mut req = get();
    req.resign(&tenant(), &params(r#""@method" "@path""#, ""));
    assert_rejects(
        &req,
        HttpSigError::MissingComponent {
            component: "\"@authority\"".into(),
        },
    );
    // A body must be bound by content-digest, else it could be swapped.
    let mut post = post();
    post.resign(&tenant(), &params(GET_COVERED, ""));
    assert_rejects(
        &post,
        HttpSigError::MissingComponent {
            component: "\"content-digest\"".into(),
        },
    );
    let mut dup = get();
    dup.resign(
        &tenant(),
        &params(r#""@method" "@path" "@authority" "@path""#, ""),
    );
    assert_rejects(
        &dup,
        HttpSigError::DuplicateComponent {
            component: "\"@path\"".into(),
        },
    );
}

#[test]
fn check07_clock_window_is_inclusive_both_ways() {
    let req = get();
    req.verify_at(CREATED + 300).expect("+300 s");
    req.verify_at(CREATED - 300).expect("-300 s");
    for now in [CREATED + 301, CREATED - 301, 0, i64::MAX, i64::MIN] {
        let err = req.verify_at(now).expect_err("outside window");
        assert_eq!(
            err,
            HttpSigError::SignatureExpired {
                created: CREATED,
                server_time: now,
                window_secs: 300
            }
        );
        assert_eq!(err.code(), "signature_expired");
        assert_eq!(err.server_time(), Some(now));
    }
}

#[test]
fn check07_expires_is_honoured() {
    let mut req = get();
    req.resign(
        &tenant(),
        &params(GET_COVERED, &format!(";expires={}", CREATED + 10)),
    );
    req.verify_at(CREATED + 10).expect("not yet expired");
    let err = req.verify_at(CREATED + 11).expect_err("expired");
    assert_eq!(
        err,
        HttpSigError::ExpiresPassed {
            expires: CREATED + 10,
            server_time: CREATED + 11
        }
    );
    assert_eq!(err.code(), "signature_expired");
}

#[test]
fn check07_unknown_parameters_are_carried_in_the_base() {
    let mut req = get();
    req.resign(
        &tenant(),
        &params(GET_COVERED, r#";nonce="abc";x-custom=?1"#),
    );
    req.verify()
        .expect("nonce and unknown params are tolerated");
}

#[test]
fn check08_content_digest_must_match_the_body() {
    let mut req = post();
    req.body.push(b' ');
    let err = req.verify().expect_err("body changed");
    let HttpSigError::ContentDigestMismatch {
        algorithm, actual, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*algorithm, "sha-256");
    assert_eq!(*actual, STANDARD.encode(Sha256::digest(&req.body)));
    assert_eq!(err.code(), "invalid_signature");

    let mut absent = post();
    absent.remove("Content-Digest");
    assert_rejects(&absent, HttpSigError::MissingContentDigest);

    let mut sha512 = post();
    sha512.set(
        "Content-Digest",
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
    );
    assert_rejects(
        &sha512,
        HttpSigError::UnsupportedDigestAlgorithm {
            algorithms: vec!["sha-512".into()],
        },
    );

    let mut garbage = post();
    garbage.set("Content-Digest", "sha-256=abc");
    assert!(matches!(
        garbage.verify(),
        Err(HttpSigError::Malformed {
            header: SignatureHeader::ContentDigest,
            ..
        })
    ));
}

#[test]
fn check08_empty_body_with_covered_digest_must_match_empty() {
    let mut req = get();
    req.set("Content-Digest", &http_sig::content_digest(b""));
    req.resign(&tenant(), &params(POST_COVERED, ""));
    req.verify().expect("digest of the empty body");
    req.set("Content-Digest", &http_sig::content_digest(b"x"));
    assert!(matches!(
        req.verify(),
        Err(HttpSigError::ContentDigestMismatch { .. })
    ));
}

#[test]
fn check09_unknown_key() {
    let req = get();
    let headers = req.header_pairs();
    let parts = RequestParts::new(&req.method, &req.target, &headers, &req.body);
    let err = verify_request(&parts, CREATED, |_| None, &Policy::default()).expect_err("unknown");
    assert_eq!(
        err,
        HttpSigError::UnknownKey {
            keyid: Some(tenant().public_hex())
        }
    );
    assert_eq!(err.code(), "invalid_signature");
}

#[test]
fn check10_signature_must_verify() {
    let keyid = Some(tenant().public_hex());
    // Every covered part is bound.
    let mut method = get();
    method.method = "DELETE".into();
    let mut path = get();
    path.target = "/api/v0/experiments/other".into();
    let mut authority = get();
    authority.set("Host", "evil.example");
    let mut body = post();
    body.body = br#"{"work_units":[1]}"#.to_vec();
    body.set("Content-Digest", &http_sig::content_digest(&body.body));
    let mut created = get();
    let input = created.get("Signature-Input").replace(
        &format!("created={CREATED}"),
        &format!("created={}", CREATED + 1),
    );
    created.set("Signature-Input", &input);
    for req in [method, path, authority, body, created] {
        assert_eq!(
            req.verify(),
            Err(HttpSigError::BadSignature {
                keyid: keyid.clone()
            })
        );
    }
    // A flipped signature bit, and a signature by another key.
    let mut flipped = get();
    let mut sig = STANDARD
        .decode(
            flipped
                .get("Signature")
                .trim_start_matches("sig1=:")
                .trim_end_matches(':'),
        )
        .expect("b64");
    sig[10] ^= 1;
    flipped.set("Signature", &format!("sig1=:{}:", STANDARD.encode(&sig)));
    assert_eq!(
        flipped.verify(),
        Err(HttpSigError::BadSignature {
            keyid: keyid.clone()
        })
    );
    let mut other = get();
    other.resign(&TenantKey::from_seed([9; 32]), &params(GET_COVERED, ""));
    assert_eq!(other.verify(), Err(HttpSigError::BadSignature { keyid }));

    let mut short = get();
    short.set(
        "Signature",
        &format!("sig1=:{}:", STANDARD.encode([0u8; 63])),
    );
    assert_rejects(&short, HttpSigError::SignatureLength { len: 63 });
}

#[test]
fn checks_run_in_the_documented_order() {
    // Unsupported algorithm beats an expired clock.
    let mut req = get();
    req.resign(
        &tenant(),
        &params(GET_COVERED, "").replace("ed25519", "hmac-sha256"),
    );
    assert!(matches!(
        req.verify_at(CREATED + 10_000),
        Err(HttpSigError::UnsupportedAlgorithm { .. })
    ));
    // A disallowed component beats the clock.
    let mut comp = get();
    comp.resign(
        &tenant(),
        &params(r#""@method" "@path" "@authority" "@query""#, ""),
    );
    assert!(matches!(
        comp.verify_at(CREATED + 10_000),
        Err(HttpSigError::ComponentNotAllowed { .. })
    ));
    // The clock beats the body digest.
    let mut body = post();
    body.body.push(b'x');
    assert!(matches!(
        body.verify_at(CREATED + 10_000),
        Err(HttpSigError::SignatureExpired { .. })
    ));
    // The body digest beats the key lookup and the signature.
    let headers = body.header_pairs();
    let parts = RequestParts::new(&body.method, &body.target, &headers, &body.body);
    assert!(matches!(
        verify_request(&parts, CREATED, |_| None, &Policy::default()),
        Err(HttpSigError::ContentDigestMismatch { .. })
    ));
    // The key lookup beats the signature.
    let mut bad = get();
    bad.method = "PUT".into();
    let headers = bad.header_pairs();
    let parts = RequestParts::new(&bad.method, &bad.target, &headers, &bad.body);
    assert!(matches!(
        verify_request(&parts, CREATED, |_| None, &Policy::default()),
        Err(HttpSigError::UnknownKey { .. })
    ));
}

#[test]
fn line_breaks_cannot_be_smuggled_into_the_base() {
    // A decoded `%0A` would add a line to the signature base.
    let req = Req::signed(
        &tenant(),
        "GET",
        "/a%0A%22@authority%22:%20evil.example",
        HOST,
        b"",
    );
    assert_eq!(
        req.verify(),
        Err(HttpSigError::Component {
            component: "\"@path\"".into(),
            kind: ComponentErrorKind::ControlCharacter
        })
    );
}

#[test]
fn method_case_and_host_case_are_normalised_like_the_sdk() {
    // spec vector post_action_empty_body_nondefault_port: lowercase method,
    // uppercase authority.
    let req = Req::signed(&tenant(), "post", "/x", "LOCALHOST:8443", b"");
    let mut other_case = req.clone();
    other_case.method = "Post".into();
    other_case.set("Host", "localhost:8443");
    other_case.verify().expect("same normalised components");
}

// ---------------------------------------------------------------------------
// Replay cache
// ---------------------------------------------------------------------------

#[test]
fn replay_cache_refuses_a_second_use_until_the_window_ends() {
    let req = get();
    let ok = req.verify().expect("verifies");
    let mut cache = ReplayCache::new(300, 10);
    cache.check_and_insert(&ok, CREATED).expect("first use");
    let err = cache
        .check_and_insert(&ok, CREATED + 1)
        .expect_err("replay");
    assert_eq!(
        err,
        ReplayError::Replayed {
            keyid: tenant().public_hex(),
            created: CREATED
        }
    );
    assert_eq!(err.code(), "invalid_signature");
    // A different request is a different signature.
    let other = post().verify().expect("verifies");
    cache.check_and_insert(&other, CREATED + 2).expect("other");
    assert_eq!(cache.len(), 2);
    // After created + window the entry is forgotten (and verification's
    // clock check refuses the request anyway).
    cache.evict_expired(CREATED + 301);
    assert!(cache.is_empty());
}

#[test]
fn replay_cache_fails_closed_when_full() {
    let mut cache = ReplayCache::new(300, 1);
    cache
        .check_and_insert(&get().verify().expect("ok"), CREATED)
        .expect("first");
    let err = cache
        .check_and_insert(&post().verify().expect("ok"), CREATED)
        .expect_err("full");
    assert_eq!(err, ReplayError::Full { capacity: 1 });
}

// ---------------------------------------------------------------------------
// RFC 9421 Appendix B (fixtures/rfc9421, see SOURCES.md)
// ---------------------------------------------------------------------------

fn rfc_test_key() -> TenantKey {
    TenantKey::from_pem(&rfc_text("test-key-ed25519.pem")).expect("B.1.4 private key")
}

fn rfc_public_key() -> VerifyingKey {
    let pem = rfc_text("test-key-ed25519.pub.pem");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(b64).expect("base64");
    // SubjectPublicKeyInfo for Ed25519: 12-byte prefix, then the key.
    assert_eq!(der[..12], unhex("302a300506032b6570032100")[..]);
    VerifyingKey::from_bytes(&der[12..].try_into().expect("32 bytes")).expect("point")
}

fn rfc_lookup(params: &http_sig::SignatureParams) -> Option<VerifyingKey> {
    (params.keyid.as_deref() == Some("test-key-ed25519")).then(rfc_public_key)
}

fn b2_request_with(sig_file: &str) -> Msg {
    let mut msg = Msg::parse(&rfc_text("b2-test-request.http"));
    assert_eq!(msg.body.len(), 18, "Content-Length: 18");
    msg.add_header_lines(&rfc_text(sig_file));
    msg
}

#[test]
fn rfc9421_b1_4_private_key_matches_its_public_key() {
    assert_eq!(rfc_test_key().verifying_key(), rfc_public_key());
}

#[test]
fn rfc9421_b2_signature_bases_are_reproduced() {
    for case in ["b2_1", "b2_2", "b2_3", "b2_5", "b2_6"] {
        let msg = b2_request_with(&format!("{case}.sig"));
        let headers = msg.header_refs();
        let req = RequestParts::new(&msg.method, &msg.target, &headers, &msg.body);
        let input_value = req.field("signature-input").expect("input");
        let inputs = parse_signature_input(&input_value).expect("parses");
        let base = inputs[0]
            .signature_base(&req, Derivation::Rfc9421, &[])
            .expect("base");
        assert_eq!(base, rfc_text(&format!("{case}.base")), "{case}");
    }
}

/// HMAC-SHA256 (RFC 2104), only to check the B.2.5 base against the
/// published MAC.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[test]
fn rfc9421_b2_5_base_reproduces_the_published_hmac() {
    let secret = STANDARD
        .decode(rfc_text("test-shared-secret.b64").trim())
        .expect("B.1.5 secret");
    let mac = hmac_sha256(&secret, rfc_text("b2_5.base").as_bytes());
    assert_eq!(
        STANDARD.encode(mac),
        "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8="
    );
}

#[test]
fn rfc9421_b2_6_ed25519_signature_is_reproduced_and_verifies() {
    // Ed25519 is deterministic: signing the published base with the
    // published key must give the published signature.
    let published =
        "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==";
    let sig = rfc_test_key().sign(rfc_text("b2_6.base").as_bytes());
    assert_eq!(STANDARD.encode(sig), published);

    let msg = b2_request_with("b2_6.sig");
    let headers = msg.header_refs();
    let req = RequestParts::new(&msg.method, &msg.target, &headers, &msg.body);
    let ok = verify_rfc9421(&req, 1_618_884_473, rfc_lookup, &Rfc9421Policy::default())
        .expect("B.2.6 verifies");
    assert_eq!(ok.label(), "sig-b26");
    assert_eq!(ok.base(), rfc_text("b2_6.base"));
    assert_eq!(ok.params().keyid.as_deref(), Some("test-key-ed25519"));
    assert_eq!(ok.params().alg, None);

    // With a clock window the 2021 signature is stale today.
    let policy = Rfc9421Policy::default().window(300);
    assert!(matches!(
        verify_rfc9421(&req, CREATED, rfc_lookup, &policy),
        Err(HttpSigError::SignatureExpired { .. })
    ));
    // The coordinator profile refuses it (no alg; covers date & co.).
    assert_eq!(
        verify_request(&req, 1_618_884_473, |_| None, &Policy::default()),
        Err(HttpSigError::MissingParameter { param: "alg" })
    );
}

#[test]
fn rfc9421_b2_digest_of_the_test_request_is_checked_when_covered() {
    // B.2.2 covers content-digest (sha-512 of the body): the verifier checks
    // it before the key. RSA-PSS is not supported, so no key is found.
    let msg = b2_request_with("b2_2.sig");
    let headers = msg.header_refs();
    let req = RequestParts::new(&msg.method, &msg.target, &headers, &msg.body);
    let lookup = |_: &http_sig::SignatureParams| None;
    let policy = Rfc9421Policy::default();
    let mut with_sig: Vec<(&str, &str)> = headers.clone();
    with_sig.push(("Signature", "sig-b22=:AAAA:"));
    let req_sig = RequestParts {
        headers: &with_sig,
        ..req
    };
    assert_eq!(
        verify_rfc9421(&req_sig, 0, lookup, &policy),
        Err(HttpSigError::UnknownKey {
            keyid: Some("test-key-rsa-pss".into())
        })
    );
    let tampered = br#"{"hello": "World"}"#;
    let req_bad = RequestParts {
        body: tampered,
        ..req_sig
    };
    assert!(matches!(
        verify_rfc9421(&req_bad, 0, lookup, &policy),
        Err(HttpSigError::ContentDigestMismatch {
            algorithm: "sha-512",
            ..
        })
    ));
}

fn verify_b4(file: &str) -> Result<http_sig::VerifiedSignature, HttpSigError> {
    let msg = Msg::parse(&rfc_text(file));
    let headers = msg.header_refs();
    let req = RequestParts::new(&msg.method, &msg.target, &headers, &msg.body);
    verify_rfc9421(&req, 1_618_884_473, rfc_lookup, &Rfc9421Policy::default())
}

#[test]
fn rfc9421_b4_transformations() {
    let published =
        "ZT1kooQsEHpZ0I1IjCqtQppOmIqlJPeo7DHR3SoMn0s5JZ1eRGS0A+vyYP9t/LXlh5QMFFQ6cpLt2m0pmj3NDA==";
    let sig = rfc_test_key().sign(rfc_text("b4.base").as_bytes());
    assert_eq!(STANDARD.encode(sig), published);

    let ok = verify_b4("b4-original.http").expect("original verifies");
    assert_eq!(ok.base(), rfc_text("b4.base"));
    // Allowed: added query parameter and header; collapsed Accept lines and
    // dropped/added uncovered headers; reordered fields.
    for valid in ["b4-valid-1.http", "b4-valid-2.http", "b4-valid-3.http"] {
        let ok = verify_b4(valid).unwrap_or_else(|e| panic!("{valid}: {e}"));
        assert_eq!(ok.base(), rfc_text("b4.base"), "{valid}");
    }
    // Disallowed: changed method and authority; reordered Accept values.
    for invalid in ["b4-invalid-1.http", "b4-invalid-2.http"] {
        assert_eq!(
            verify_b4(invalid).map(|_| ()),
            Err(HttpSigError::BadSignature {
                keyid: Some("test-key-ed25519".into())
            }),
            "{invalid}"
        );
    }
}

// ---------------------------------------------------------------------------
// RFC 9421 §2 component examples (values quoted from the RFC's text)
// ---------------------------------------------------------------------------

/// The base lines (without `@signature-params`) for `covered` on a request.
fn lines_for(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    covered: &str,
    structured: &[(String, http_sig::StructuredType)],
) -> Result<Vec<String>, HttpSigError> {
    let input = format!("sig=({covered})");
    let inputs = parse_signature_input(&input)?;
    let req = RequestParts::new(method, target, headers, b"");
    let base = inputs[0].signature_base(&req, Derivation::Rfc9421, structured)?;
    let mut lines: Vec<String> = base.lines().map(str::to_owned).collect();
    lines.pop();
    Ok(lines)
}

#[test]
fn rfc9421_2_2_derived_components() {
    let h = [("Host", "www.example.com")];
    let got = lines_for(
        "POST",
        "/path?param=value",
        &h,
        r#""@method" "@target-uri" "@authority" "@scheme" "@request-target" "@path" "@query""#,
        &[],
    )
    .expect("derives");
    assert_eq!(
        got,
        [
            r#""@method": POST"#,
            r#""@target-uri": https://www.example.com/path?param=value"#,
            r#""@authority": www.example.com"#,
            r#""@scheme": https"#,
            r#""@request-target": /path?param=value"#,
            r#""@path": /path"#,
            r#""@query": ?param=value"#,
        ]
    );
    // §2.2.7: an absent query is `?`; §2.2.3: the default port is dropped.
    let h = [("Host", "www.example.com:443")];
    let got = lines_for("GET", "/path", &h, r#""@query" "@authority""#, &[]).expect("derives");
    assert_eq!(got, [r#""@query": ?"#, r#""@authority": www.example.com"#]);
}

#[test]
fn rfc9421_2_2_8_query_parameters() {
    let h = [("Host", "www.example.com")];
    let got = lines_for(
        "GET",
        "/path?param=value&foo=bar&baz=batman&qux=",
        &h,
        r#""@query-param";name="baz" "@query-param";name="qux" "@query-param";name="param""#,
        &[],
    )
    .expect("derives");
    assert_eq!(
        got,
        [
            r#""@query-param";name="baz": batman"#,
            r#""@query-param";name="qux": "#,
            r#""@query-param";name="param": value"#,
        ]
    );
    let got = lines_for(
        "GET",
        "/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something",
        &h,
        r#""@query-param";name="var" "@query-param";name="bar" "@query-param";name="fa%C3%A7ade%22%3A%20""#,
        &[],
    )
    .expect("derives");
    assert_eq!(
        got,
        [
            r#""@query-param";name="var": this%20is%20a%20big%0Amultiline%20value"#,
            r#""@query-param";name="bar": with%20plus%20whitespace"#,
            r#""@query-param";name="fa%C3%A7ade%22%3A%20": something"#,
        ]
    );
    // Missing and repeated parameters have no value.
    assert!(matches!(
        lines_for("GET", "/p?a=1", &h, r#""@query-param";name="b""#, &[]),
        Err(HttpSigError::Component {
            kind: ComponentErrorKind::QueryParamMissing { .. },
            ..
        })
    ));
    assert!(matches!(
        lines_for("GET", "/p?a=1&a=2", &h, r#""@query-param";name="a""#, &[]),
        Err(HttpSigError::Component {
            kind: ComponentErrorKind::QueryParamRepeated { .. },
            ..
        })
    ));
}

#[test]
fn rfc9421_2_1_fields_sf_key_bs() {
    let h = [
        ("Host", "www.example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:56 GMT"),
        ("X-OWS-Header", "   Leading and trailing whitespace.   "),
        ("Cache-Control", "max-age=60"),
        ("Cache-Control", "   must-revalidate"),
        ("Example-Dict", " a=1,    b=2;x=1;y=2,   c=(a   b   c)"),
    ];
    let dict = vec![(
        "example-dict".to_owned(),
        http_sig::StructuredType::Dictionary,
    )];
    let got = lines_for(
        "GET",
        "/",
        &h,
        r#""host" "date" "x-ows-header" "cache-control" "example-dict" "example-dict";sf"#,
        &dict,
    )
    .expect("derives");
    assert_eq!(
        got,
        [
            r#""host": www.example.com"#,
            r#""date": Tue, 20 Apr 2021 02:07:56 GMT"#,
            r#""x-ows-header": Leading and trailing whitespace."#,
            r#""cache-control": max-age=60, must-revalidate"#,
            r#""example-dict": a=1,    b=2;x=1;y=2,   c=(a   b   c)"#,
            r#""example-dict";sf: a=1, b=2;x=1;y=2, c=(a b c)"#,
        ]
    );
    // §2.1.2 dictionary members.
    let h = [("Example-Dict", "  a=1, b=2;x=1;y=2, c=(a   b    c), d")];
    let got = lines_for(
        "GET",
        "/",
        &h,
        r#""example-dict";key="a" "example-dict";key="d" "example-dict";key="b" "example-dict";key="c""#,
        &dict,
    )
    .expect("derives");
    assert_eq!(
        got,
        [
            r#""example-dict";key="a": 1"#,
            r#""example-dict";key="d": ?1"#,
            r#""example-dict";key="b": 2;x=1;y=2"#,
            r#""example-dict";key="c": (a b c)"#,
        ]
    );
    assert!(matches!(
        lines_for("GET", "/", &h, r#""example-dict";key="z""#, &dict),
        Err(HttpSigError::Component {
            kind: ComponentErrorKind::DictionaryKeyMissing { .. },
            ..
        })
    ));
    // Without a declared type, `;sf` is refused rather than guessed.
    assert!(matches!(
        lines_for("GET", "/", &h, r#""example-dict";sf"#, &[]),
        Err(HttpSigError::Component {
            kind: ComponentErrorKind::UnknownStructuredType,
            ..
        })
    ));
    // §2.1.3 binary-wrapped lines.
    let h = [
        ("Example-Header", "value, with, lots"),
        ("Example-Header", "of, commas"),
    ];
    let got = lines_for(
        "GET",
        "/",
        &h,
        r#""example-header" "example-header";bs"#,
        &[],
    )
    .expect("derives");
    assert_eq!(
        got,
        [
            r#""example-header": value, with, lots, of, commas"#,
            r#""example-header";bs: :dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:"#,
        ]
    );
}

#[test]
fn rfc9421_components_without_a_value_fail_the_signature() {
    let h = [("Host", "example.com")];
    for (covered, kind) in [
        (r#""@status""#, ComponentErrorKind::ResponseOnly),
        (r#""@signature-params""#, ComponentErrorKind::UnknownDerived),
        (r#""@nope""#, ComponentErrorKind::UnknownDerived),
        (r#""x-absent""#, ComponentErrorKind::MissingField),
        (r#""Host""#, ComponentErrorKind::NotLowercase),
        (
            r#""host";req"#,
            ComponentErrorKind::UnsupportedParameter {
                param: "req".into(),
            },
        ),
        (
            r#""host";tr"#,
            ComponentErrorKind::UnsupportedParameter { param: "tr".into() },
        ),
        (
            r#""host";foo=1"#,
            ComponentErrorKind::UnsupportedParameter {
                param: "foo".into(),
            },
        ),
        (
            r#""@method";sf"#,
            ComponentErrorKind::UnsupportedParameter { param: "sf".into() },
        ),
    ] {
        assert_eq!(
            lines_for("GET", "/", &h, covered, &[]),
            Err(HttpSigError::Component {
                component: covered.to_owned(),
                kind
            }),
            "{covered}"
        );
    }
}

#[test]
fn rfc9421_verifier_label_selection_and_algorithm() {
    let msg = b2_request_with("b2_6.sig");
    let mut headers = msg.header_refs();
    let other = r#"other=("@method");created=1;keyid="x""#;
    let own = msg
        .headers
        .iter()
        .find(|(n, _)| n == "Signature-Input")
        .map(|(_, v)| v.clone())
        .expect("input");
    let input = format!("{own}, {other}");
    headers.retain(|(n, _)| *n != "Signature-Input");
    headers.push(("Signature-Input", &input));
    let req = RequestParts::new(&msg.method, &msg.target, &headers, &msg.body);
    assert_eq!(
        verify_rfc9421(&req, 0, rfc_lookup, &Rfc9421Policy::default()),
        Err(HttpSigError::AmbiguousLabel {
            labels: vec!["sig-b26".into(), "other".into()]
        })
    );
    let pick = Rfc9421Policy::default()
        .label("sig-b26")
        .require("@authority");
    verify_rfc9421(&req, 0, rfc_lookup, &pick).expect("label chosen");
    let other_label = Rfc9421Policy::default().label("other");
    assert_eq!(
        verify_rfc9421(&req, 0, rfc_lookup, &other_label),
        Err(HttpSigError::LabelNotFound {
            label: "other".into(),
            header: SignatureHeader::Signature
        })
    );
    let needs_query = Rfc9421Policy::default().label("sig-b26").require("@query");
    assert_eq!(
        verify_rfc9421(&req, 0, rfc_lookup, &needs_query),
        Err(HttpSigError::MissingComponent {
            component: "\"@query\"".into()
        })
    );
}

#[test]
fn general_verifier_accepts_sdk_requests_with_sdk_derivation() {
    let req = post();
    let headers = req.header_pairs();
    let parts = RequestParts::new(&req.method, &req.target, &headers, &req.body);
    let policy = Rfc9421Policy::default()
        .derivation(Derivation::AuspexSdk)
        .window(300);
    let lookup = |p: &http_sig::SignatureParams| p.keyid.as_deref().and_then(parse_pubkey);
    let ok = verify_rfc9421(&parts, CREATED, lookup, &policy).expect("verifies");
    assert_eq!(ok.covered().len(), 4);
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("PUT"),
        Just("DELETE"),
        Just("PATCH")
    ]
    .prop_map(str::to_owned)
}

/// Request targets: segments of unreserved characters and `%XX` escapes of
/// printable bytes (never CR/LF), optionally a query.
fn target() -> impl Strategy<Value = String> {
    let segment = prop::collection::vec(
        prop_oneof![
            "[A-Za-z0-9._~-]{1,8}",
            (0x20u8..0x7f).prop_map(|b| format!("%{b:02X}")),
            Just("%C3%A9".to_owned()),
        ],
        1..4,
    )
    .prop_map(|parts| parts.concat());
    (
        prop::collection::vec(segment, 0..5),
        prop::option::of("[a-z]{1,5}=[A-Za-z0-9%]{0,8}"),
    )
        .prop_map(|(segs, q)| {
            let mut t = format!("/{}", segs.join("/"));
            if let Some(q) = q {
                t.push('?');
                t.push_str(&q);
            }
            t
        })
}

fn host() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z][a-zA-Z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}",
        prop::option::of(1u16..),
    )
        .prop_map(|(h, p)| match p {
            Some(p) => format!("{h}:{p}"),
            None => h,
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Method,
    PathAppend(char),
    Host,
    BodyBit(usize),
    BodyAppend(u8),
    SignatureBit(usize),
    Created(i64),
    Key,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Method),
        prop::char::range('a', 'z').prop_map(Mutation::PathAppend),
        Just(Mutation::Host),
        any::<usize>().prop_map(Mutation::BodyBit),
        any::<u8>().prop_map(Mutation::BodyAppend),
        (0usize..512).prop_map(Mutation::SignatureBit),
        prop_oneof![-1000i64..0, 1i64..1000].prop_map(Mutation::Created),
        Just(Mutation::Key),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn signed_requests_verify(
        seed in any::<[u8; 32]>(),
        method in method(),
        target in target(),
        host in host(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        skew in -300i64..=300,
    ) {
        let key = TenantKey::from_seed(seed);
        let req = Req::signed(&key, &method, &target, &host, &body);
        let ok = req.verify_at(CREATED + skew).expect("round trip");
        prop_assert_eq!(ok.keyid(), key.public_hex());
        prop_assert_eq!(ok.covered().len(), if body.is_empty() { 3 } else { 4 });
    }

    #[test]
    fn mutated_requests_are_rejected(
        seed in any::<[u8; 32]>(),
        method in method(),
        target in target(),
        host in host(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        m in mutation(),
    ) {
        let key = TenantKey::from_seed(seed);
        let mut req = Req::signed(&key, &method, &target, &host, &body);
        match &m {
            Mutation::Method => {
                req.method = if req.method == "PATCH" { "GET" } else { "PATCH" }.to_owned();
            }
            Mutation::PathAppend(c) => {
                let (p, q) = req.target.split_once('?').map_or(
                    (req.target.clone(), None),
                    |(p, q)| (p.to_owned(), Some(q.to_owned())),
                );
                req.target = match q {
                    Some(q) => format!("{p}{c}?{q}"),
                    None => format!("{p}{c}"),
                };
            }
            Mutation::Host => {
                let h = format!("x{}", req.host);
                req.set("Host", &h);
            }
            Mutation::BodyBit(i) => {
                if req.body.is_empty() {
                    req.body.push(0);
                } else {
                    let n = req.body.len();
                    req.body[i % n] ^= 1;
                }
            }
            Mutation::BodyAppend(b) => req.body.push(*b),
            Mutation::SignatureBit(bit) => {
                let value = req.get("Signature").to_owned();
                let b64 = value.trim_start_matches("sig1=:").trim_end_matches(':');
                let mut sig = STANDARD.decode(b64).expect("b64");
                sig[bit / 8] ^= 1 << (bit % 8);
                req.set("Signature", &format!("sig1=:{}:", STANDARD.encode(&sig)));
            }
            Mutation::Created(d) => {
                let input = req.get("Signature-Input").replace(
                    &format!("created={CREATED}"),
                    &format!("created={}", CREATED + d),
                );
                req.set("Signature-Input", &input);
            }
            Mutation::Key => {
                let other = TenantKey::from_seed(Sha256::digest(seed).into());
                let input = req.get("Signature-Input").replace(&key.public_hex(), &other.public_hex());
                req.set("Signature-Input", &input);
            }
        }
        prop_assert!(req.verify().is_err(), "{:?} accepted", m);
    }

    #[test]
    fn arbitrary_headers_never_panic(input in ".{0,200}", sig in ".{0,120}", cd in ".{0,80}") {
        let mut req = post();
        req.set("Signature-Input", &input);
        req.set("Signature", &sig);
        req.set("Content-Digest", &cd);
        let _ = req.verify();
        let headers = req.header_pairs();
        let parts = RequestParts::new(&req.method, &req.target, &headers, &req.body);
        let _ = verify_rfc9421(&parts, CREATED, |_| None, &Rfc9421Policy::default());
    }
}
