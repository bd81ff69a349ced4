use std::os::unix::fs::PermissionsExt;

use crate::common::*;

#[test]
fn generate_writes_0600_pem_and_prints_the_public_key() {
    let ctx = Ctx::new();
    let run = ctx.run(&[&"key", &"generate"]).ok();
    let path = ctx.path(".config/auspexai-tenant/tenant_key");
    assert!(
        run.stdout
            .contains(&format!("Generated tenant key at {}", path.display()))
    );
    let pem = std::fs::read_to_string(&path).expect("key written");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pubkey = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Public key: "))
        .expect("public key line");
    let again = ctx.run(&[&"key", &"pubkey"]).ok();
    assert_eq!(again.stdout.trim(), pubkey);
}

#[test]
fn generate_refuses_to_overwrite_without_force() {
    let ctx = Ctx::new();
    let out = ctx.path("k");
    ctx.run(&[&"key", &"generate", &"-o", &out]).ok();
    let before = std::fs::read(&out).expect("key");
    let run = ctx.run(&[&"key", &"generate", &"-o", &out]).code(1);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(
        std::fs::read(&out).expect("key"),
        before,
        "key must be untouched"
    );
    ctx.run(&[&"key", &"generate", &"-o", &out, &"--force"])
        .ok();
    assert_ne!(std::fs::read(&out).expect("key"), before);
}

#[test]
fn pubkey_of_the_rfc8032_key() {
    let ctx = Ctx::new();
    let key = ctx.tenant_key();
    let run = ctx.run(&[&"key", &"pubkey", &"--key", &key]).ok();
    assert_eq!(run.stdout, format!("{TENANT_PUB}\n"));
}

#[test]
fn legacy_maintainer_key_is_used_and_announced() {
    let ctx = Ctx::new();
    ctx.write(".config/auspexai-tenant/maintainer_key", TENANT_PEM);
    let run = ctx.run(&[&"key", &"pubkey"]).ok();
    assert_eq!(run.stdout.trim(), TENANT_PUB);
    assert!(run.stderr.contains("maintainer_key"), "{}", run.stderr);
}
