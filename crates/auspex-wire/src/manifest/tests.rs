//! Unit tests of the manifest internals (the public behaviour is covered by
//! `tests/manifest.rs`).

use super::*;

#[test]
fn pydantic_floats() {
    // Observed with pydantic 2.14.4 `model_dump_json()`; the signing input
    // depends on `json::pydantic_compact` writing them so.
    for (f, want) in [
        (1.0, "1.0"),
        (0.1, "0.1"),
        (1e-5, "0.00001"),
        (1e-6, "1e-6"),
        (2.5e-8, "2.5e-8"),
        (1e15, "1000000000000000.0"),
        (9.999e15, "9999000000000000.0"),
        (1e16, "1e+16"),
        (1.2345e17, "1.2345e+17"),
        (-1e22, "-1e+22"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
        (-0.0, "-0.0"),
    ] {
        assert_eq!(json::pydantic_compact(&Value::Float(f)), want, "{f:e}");
    }
}

#[test]
fn schema_versions_order() {
    assert!(SchemaVersion::V0_7.at_least(SchemaVersion::V0_5));
    assert!(!SchemaVersion::V0_4.at_least(SchemaVersion::V0_5));
    assert_eq!(SchemaVersion::from_wire("0.3"), Some(SchemaVersion::V0_3));
    assert_eq!(SchemaVersion::from_wire("0.8"), None);
    assert_eq!(SchemaVersion::ALL.len(), 7);
    assert_eq!(SdkProfile::V0_6_67.to_string(), "0.6.67");
}

#[test]
fn integral_floats_become_exact_ints() {
    // `inference_determinism.seed` is an unbounded Python int.
    let int = |v: Value| {
        let mut doc = match json::parse_str(
            r#"{"schema_version": "0.7", "tenant_id": "abc", "tenant_maintainer_contact": "a@b.cd",
            "experiment_id": "abc", "research_goal_paragraph": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "models": [{"id": "m", "version": "1", "local_weights_required": true}],
            "prompt_set_characteristics": "xxxxxxxxxx", "expected_duration_hours": 1, "replication_factor": 1,
            "work_unit_source": {"kind": "http", "url": "https://x"}, "executor": {"command": ["x"]},
            "reducer": {"kind": "builtin_process_only"}, "inference_determinism": {}}"#,
        ) {
            Ok(Value::Object(o)) => o,
            _ => panic!("base"),
        };
        let mut det = json::Object::new();
        det.insert("seed".to_owned(), v);
        doc.insert("inference_determinism".to_owned(), Value::Object(det));
        validate_value(&Value::Object(doc)).map(|m| {
            m.inference_determinism()
                .and_then(|d| d.seed.as_ref())
                .map(|s| s.as_str().to_owned())
        })
    };
    assert_eq!(int(Value::Float(3.0)).ok().flatten().as_deref(), Some("3"));
    assert_eq!(int(Value::Float(-0.0)).ok().flatten().as_deref(), Some("0"));
    assert_eq!(
        int(Value::Float(4_611_686_018_427_387_904.0))
            .ok()
            .flatten()
            .as_deref(),
        Some("4611686018427387904")
    );
    // Pydantic refuses integral floats from ±2^63 on.
    assert!(int(Value::Float(9_223_372_036_854_775_808.0)).is_err());
    assert!(int(Value::Float(-9_223_372_036_854_775_808.0)).is_err());
    assert!(int(Value::Float(1.5)).is_err());
    assert!(int(Value::Bool(true)).is_err());
    let big = json::Int::from_decimal("123456789012345678901234567890").map(Value::Int);
    assert_eq!(
        big.map(|b| int(b).ok().flatten()),
        Some(Some("123456789012345678901234567890".to_owned()))
    );
}

#[test]
fn signature_round_trip() {
    let sig = ManifestSignature::new("ab".repeat(32), "c2ln");
    let text = sig.to_file_text();
    assert!(text.ends_with("\"\n}\n"));
    assert_eq!(ManifestSignature::parse(text.as_bytes()), Ok(sig));
}

#[test]
fn normalized_value_is_in_declaration_order() {
    let m = parse_manifest(
        br#"{"reducer": {"kind": "builtin_hash_agreement"}, "executor": {"command": ["x"]},
        "work_unit_source": {"url": "https://x", "kind": "http"}, "replication_factor": 2,
        "expected_duration_hours": 2, "prompt_set_characteristics": "xxxxxxxxxx",
        "models": [{"local_weights_required": true, "version": "1", "id": "m"}],
        "research_goal_paragraph": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "experiment_id": "abc", "tenant_maintainer_contact": "a@b.cd", "tenant_id": "abc",
        "schema_version": "0.1"}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let keys = |profile| match m.normalized(profile) {
        Ok(Value::Object(o)) => o.keys().cloned().collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        keys(SdkProfile::V0_5_5),
        [
            "schema_version",
            "tenant_id",
            "tenant_maintainer_contact",
            "experiment_id",
            "research_goal_paragraph",
            "models",
            "prompt_set_characteristics",
            "sensitive_content_flags",
            "approver_attestations",
            "expected_duration_hours",
            "replication_factor",
            "work_unit_source",
            "executor",
            "reducer",
        ]
    );
    let later = keys(SdkProfile::V0_6_67);
    assert_eq!(later.len(), 22);
    assert_eq!(later[5], "research_class");
    assert_eq!(
        later[15..],
        [
            "requires_real_execution",
            "inference_determinism",
            "output_schema",
            "feature_schema",
            "pre_registration",
            "config_provenance",
            "capture",
        ]
    );
}
