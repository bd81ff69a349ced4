//! Bad input gets a clear error naming the problem and where — never a panic.

use crate::common::*;

fn no_panic(run: &Run) {
    assert!(!run.stderr.contains("panicked"), "panic: {}", run.stderr);
}

#[test]
fn invalid_json_says_where() {
    let ctx = Ctx::new();
    let path = ctx.write("m.json", "{\n  \"schema_version\": \"0.1\",\n  oops\n}");
    let run = ctx.run(&[&"manifest", &"validate", &path]).code(2);
    no_panic(&run);
    assert!(run.stderr.contains("is not valid JSON"), "{}", run.stderr);
    assert!(run.stderr.contains("line 3 column 3"), "{}", run.stderr);
}

#[test]
fn non_utf8_bytes() {
    let ctx = Ctx::new();
    let path = ctx.write("m.json", b"{\"tenant_id\": \"\xff\xfe\"}");
    let run = ctx.run(&[&"manifest", &"validate", &path]).code(2);
    no_panic(&run);
    assert!(run.stderr.contains("invalid UTF-8"), "{}", run.stderr);
}

#[test]
fn wrong_types_and_missing_fields() {
    let ctx = Ctx::new();
    let path = ctx.write(
        "m.json",
        r#"{"schema_version": "0.1", "tenant_id": 7, "models": "none", "replication_factor": "3"}"#,
    );
    let run = ctx.run(&[&"manifest", &"validate", &path]).code(1);
    no_panic(&run);
    for needle in [
        "tenant_id: expected string, found integer",
        "models: expected array, found string",
        "experiment_id: field required",
        "executor: field required",
    ] {
        assert!(
            run.stderr.contains(needle),
            "missing {needle:?} in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn not_an_object() {
    let ctx = Ctx::new();
    let path = ctx.write("m.json", "[1, 2]");
    let run = ctx.run(&[&"manifest", &"validate", &path]).code(1);
    no_panic(&run);
    assert!(
        run.stderr.contains("(root): expected object, found array"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_100_mb_file_is_refused_quickly() {
    let ctx = Ctx::new();
    let path = ctx.path("huge.json");
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(100 * 1024 * 1024).expect("sparse 100 MB file");
    let run = ctx.run(&[&"manifest", &"validate", &path]).code(1);
    no_panic(&run);
    assert!(
        run.stderr.contains("larger than the limit"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_manifest_file() {
    let ctx = Ctx::new();
    let run = ctx.run(&[&"manifest", &"validate", &"nope.json"]).code(2);
    no_panic(&run);
    assert!(run.stderr.contains("nope.json"), "{}", run.stderr);
}

#[test]
fn missing_key_file() {
    let ctx = Ctx::new();
    let path = ctx.write("m.json", "{}");
    let _ = path;
    let run = ctx.run(&[&"key", &"pubkey"]).code(2);
    no_panic(&run);
    assert!(run.stderr.contains("failed to load key"), "{}", run.stderr);
    assert!(run.stderr.contains("auspex key generate"), "{}", run.stderr);
}

#[test]
fn key_of_the_wrong_algorithm() {
    let ctx = Ctx::new();
    let key = workspace().join("crates/auspex-cli/tests/fixtures/p256_key.pem");
    let run = ctx.run(&[&"key", &"pubkey", &"--key", &key]).code(1);
    no_panic(&run);
    assert!(run.stderr.contains("Ed25519"), "{}", run.stderr);
}

#[test]
fn garbage_key_file() {
    let ctx = Ctx::new();
    let key = ctx.write("k", "not a key at all\n");
    let run = ctx.run(&[&"key", &"pubkey", &"--key", &key]).code(1);
    no_panic(&run);
    assert!(run.stderr.contains("failed to load key"), "{}", run.stderr);
}

#[test]
fn unknown_sdk_profile_is_a_usage_error() {
    let ctx = Ctx::new();
    let key = ctx.tenant_key();
    let path = ctx.write(
        "m.json",
        std::fs::read(workspace().join("examples/doubler/manifest.json")).expect("example"),
    );
    let run = ctx
        .run(&[
            &"manifest",
            &"sign",
            &path,
            &"--key",
            &key,
            &"--sdk",
            &"9.9",
        ])
        .code(2);
    assert!(run.stderr.contains("unknown SDK version"), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let ctx = Ctx::new();
    let run = ctx.run(&[&"manifest", &"frobnicate"]).code(2);
    no_panic(&run);
    let run = ctx.run(&[&"--version"]).ok();
    assert!(run.stdout.starts_with("auspex "), "{}", run.stdout);
}

#[test]
fn receipts_show_garbage() {
    let ctx = Ctx::new();
    for (name, bytes) in [
        ("empty", &b""[..]),
        ("text", &b"hello"[..]),
        ("truncated", &b"\x84\x58\x46"[..]),
        ("deep", &[0x81u8; 10_000][..]),
    ] {
        let path = ctx.write(name, bytes);
        let run = ctx.run(&[&"receipts", &"show", &path]);
        no_panic(&run);
        assert_ne!(run.code, 0, "{name}: {}", run.stdout);
        assert!(run.stderr.contains("error:"), "{name}: {}", run.stderr);
    }
}
