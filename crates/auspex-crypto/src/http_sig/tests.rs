//! Unit tests of the RFC 9421 module: helpers, parsing and error codes.

use super::components::{form_reencode, normalize_authority, percent_decode};
use super::*;

#[test]
fn content_digest_rfc9530_examples() {
    // RFC 9530 §2 and Appendix B: the empty body and `{"hello": "world"}`.
    assert_eq!(
        content_digest(b""),
        "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    );
    assert_eq!(
        content_digest(br#"{"hello": "world"}"#),
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    );
}

#[test]
fn sdk_params_string() {
    assert_eq!(
        signature_params(false, 1, "ab"),
        r#"("@method" "@path" "@authority");created=1;alg="ed25519";keyid="ab""#
    );
    assert_eq!(
        signature_params(true, -5, "ab"),
        r#"("@method" "@path" "@authority" "content-digest");created=-5;alg="ed25519";keyid="ab""#
    );
}

#[test]
fn sdk_signature_input_serializes_back_to_itself() {
    let params = signature_params(true, 1_735_787_045, &"d7".repeat(32));
    let inputs = parse_signature_input(&format!("sig1={params}")).expect("parses");
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].label(), "sig1");
    assert_eq!(inputs[0].signature_params(), params);
    let names: Vec<&str> = inputs[0].components().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["@method", "@path", "@authority", "content-digest"]);
    assert_eq!(inputs[0].params().created, Some(1_735_787_045));
    assert_eq!(inputs[0].params().alg.as_deref(), Some("ed25519"));
}

#[test]
fn non_canonical_signature_input_is_reserialized() {
    // The `@signature-params` line is the RFC 8941 serialization (RFC 9421
    // §2.3); the coordinator would use the text verbatim. They differ only
    // for non-canonical input like this, which no known signer emits.
    let inputs =
        parse_signature_input(r#"sig1=( "@method"   "@path" );created=01;keyid="k""#).expect("ok");
    assert_eq!(
        inputs[0].signature_params(),
        r#"("@method" "@path");created=1;keyid="k""#
    );
}

#[test]
fn signature_header_parses_byte_sequences() {
    let sigs = parse_signature("a=:AAEC:, b=:/w==:").expect("parses");
    assert_eq!(
        sigs,
        vec![("a".to_owned(), vec![0, 1, 2]), ("b".to_owned(), vec![255])]
    );
}

#[test]
fn python_unquote_semantics() {
    assert_eq!(percent_decode(b"%41%4a%4A"), b"AJJ");
    assert_eq!(percent_decode(b"%"), b"%");
    assert_eq!(percent_decode(b"%4"), b"%4");
    assert_eq!(percent_decode(b"%G1x"), b"%G1x");
    assert_eq!(percent_decode(b"a%2Fb"), b"a/b");
}

#[test]
fn query_param_reencoding() {
    assert_eq!(
        form_reencode("with+plus+whitespace"),
        "with%20plus%20whitespace"
    );
    assert_eq!(
        form_reencode("fa%C3%A7ade%22%3A%20"),
        "fa%C3%A7ade%22%3A%20"
    );
    assert_eq!(form_reencode("a~b!c"), "a%7Eb%21c");
    assert_eq!(form_reencode("*-._AZaz09"), "*-._AZaz09");
}

#[test]
fn rfc_authority_normalisation() {
    assert_eq!(
        normalize_authority("Example.COM:443", "https"),
        "example.com"
    );
    assert_eq!(normalize_authority("example.com:80", "http"), "example.com");
    assert_eq!(
        normalize_authority("example.com:80", "https"),
        "example.com:80"
    );
    assert_eq!(normalize_authority("[::1]:8443", "https"), "[::1]:8443");
}

#[test]
fn every_error_has_a_coordinator_code() {
    let cases = [
        (HttpSigError::MissingSignatureInput, "signature_required"),
        (HttpSigError::MissingSignature, "auth_error"),
        (
            HttpSigError::UnsupportedAlgorithm { alg: "x".into() },
            "unsupported_signature_algorithm",
        ),
        (
            HttpSigError::SignatureExpired {
                created: 0,
                server_time: 301,
                window_secs: 300,
            },
            "signature_expired",
        ),
        (
            HttpSigError::ExpiresPassed {
                expires: 0,
                server_time: 1,
            },
            "signature_expired",
        ),
        (HttpSigError::MissingContentDigest, "invalid_signature"),
        (
            HttpSigError::UnknownKey { keyid: None },
            "invalid_signature",
        ),
        (
            HttpSigError::BadSignature { keyid: None },
            "invalid_signature",
        ),
        (
            HttpSigError::Malformed {
                header: SignatureHeader::SignatureInput,
                kind: MalformedKind::Empty,
            },
            "invalid_signature",
        ),
    ];
    for (err, code) in cases {
        assert_eq!(err.code(), code, "{err}");
        assert_eq!(err.status(), 401);
    }
    assert_eq!(
        HttpSigError::SignatureExpired {
            created: 0,
            server_time: 301,
            window_secs: 300
        }
        .server_time(),
        Some(301)
    );
    assert_eq!(HttpSigError::MissingSignature.server_time(), None);
}
