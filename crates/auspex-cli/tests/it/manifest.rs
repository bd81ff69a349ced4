use crate::common::*;

fn vector_case(i: usize) -> (String, String, String) {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors("manifest_signing.json")).expect("vector"))
            .expect("json");
    let case = &doc["cases"][i];
    let s = |k: &str| case[k].as_str().expect("string").to_owned();
    (
        s("manifest_file_text"),
        s("sig_file_text"),
        s("manifest_hash"),
    )
}

#[test]
fn sign_reproduces_the_official_sig_files_byte_for_byte() {
    for i in 0..2 {
        let ctx = Ctx::new();
        let key = ctx.tenant_key();
        let (text, sig_text, hash) = vector_case(i);
        let path = ctx.write("manifest.json", &text);
        let run = ctx.run(&[&"manifest", &"sign", &path, &"--key", &key]).ok();
        assert!(run.stdout.contains("OK: signed"), "{}", run.stdout);
        assert!(
            run.stdout
                .contains(&format!("Maintainer pubkey: {TENANT_PUB}"))
        );
        let written = std::fs::read_to_string(ctx.path("manifest.json.sig")).expect("sig written");
        assert_eq!(written, sig_text, "case {i}");
        let run = ctx.run(&[&"manifest", &"hash", &path]).ok();
        assert_eq!(run.stdout.trim(), hash);
        ctx.run(&[&"manifest", &"verify", &path, &"--signer", &TENANT_PUB])
            .ok();
    }
}

#[test]
fn validate_ok_and_json_report() {
    let ctx = Ctx::new();
    let (text, _, hash) = vector_case(0);
    let path = ctx.write("m.json", &text);
    let run = ctx.run(&[&"manifest", &"validate", &path]).ok();
    assert_eq!(
        run.stdout,
        format!("OK: {} is a valid v0.1 manifest\n", path.display())
    );
    let run = ctx.run(&[&"manifest", &"validate", &path, &"--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json report");
    assert_eq!(report["valid"], true);
    assert_eq!(report["manifest_hash"], hash.as_str());
}

#[test]
fn validate_reports_every_violation_with_its_path() {
    let ctx = Ctx::new();
    let (text, _, _) = vector_case(0);
    let mut m: serde_json::Value = serde_json::from_str(&text).expect("json");
    m["models"][0].as_object_mut().expect("model").remove("id");
    m["tenant_id"] = "Not Valid".into();
    m["replication_factor"] = 0.into();
    m["surprise"] = true.into();
    let path = ctx.write("bad.json", serde_json::to_vec(&m).expect("ser"));
    let run = ctx.run(&[&"manifest", &"validate", &path]).code(1);
    for needle in [
        "models[0].id: field required",
        "tenant_id:",
        "replication_factor:",
        "surprise:",
    ] {
        assert!(
            run.stderr.contains(needle),
            "missing {needle:?} in:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr
            .contains("failed manifest v0.1 validation (4 errors)"),
        "{}",
        run.stderr
    );
    let run = ctx
        .run(&[&"manifest", &"validate", &path, &"--json"])
        .code(1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json report");
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"].as_array().expect("errors").len(), 4);
}

#[test]
fn verify_detects_a_changed_manifest_and_a_wrong_signer() {
    let ctx = Ctx::new();
    let key = ctx.tenant_key();
    let (text, _, _) = vector_case(0);
    let path = ctx.write("manifest.json", &text);
    ctx.run(&[&"manifest", &"sign", &path, &"--key", &key]).ok();
    let other = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
    let run = ctx
        .run(&[&"manifest", &"verify", &path, &"--signer", &other])
        .code(1);
    assert!(run.stderr.contains("was required"), "{}", run.stderr);
    let changed = text.replace("\"replication_factor\": 3", "\"replication_factor\": 4");
    assert_ne!(changed, text);
    std::fs::write(&path, changed).expect("write");
    let run = ctx.run(&[&"manifest", &"verify", &path]).code(1);
    assert!(run.stderr.contains("does not match"), "{}", run.stderr);
}
