use crate::common::*;

fn fixture(name: &str) -> std::path::PathBuf {
    workspace()
        .join("crates/auspex-crypto/tests/fixtures")
        .join(name)
}

fn vector(key: &str) -> String {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors("receipt_cbor_cose.json")).expect("vector"))
            .expect("json");
    doc[key].as_str().expect("string").to_owned()
}

#[test]
fn naked_cbor_prints_exactly_what_the_official_cli_prints() {
    let ctx = Ctx::new();
    let run = ctx
        .run(&[&"receipts", &"show", &fixture("receipt.cbor")])
        .ok();
    assert_eq!(
        run.stdout,
        format!(
            "{}\n",
            vector("receipt_json_pretty_as_printed_by_receipts_show")
        )
    );
    assert!(run.stderr.contains("unsigned"), "{}", run.stderr);
}

#[test]
fn cose_receipt_is_decoded_and_its_signature_checked() {
    let ctx = Ctx::new();
    let run = ctx
        .run(&[&"receipts", &"show", &fixture("receipt.cose")])
        .ok();
    let coordinator = vector("coordinator_pubkey_hex");
    assert!(
        run.stdout.contains(&format!("signer:      {coordinator}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("signature:   valid"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&vector("receipt_json_pretty_as_printed_by_receipts_show")),
        "{}",
        run.stdout
    );
    let run = ctx
        .run(&[&"receipts", &"show", &fixture("receipt.cose"), &"--json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(v["signature"], "valid");
    assert_eq!(v["signer"], coordinator.as_str());
    assert_eq!(v["receipt"]["tenant_id"], "acme-lab");
}

#[test]
fn a_flipped_signature_bit_is_reported_invalid() {
    let ctx = Ctx::new();
    let mut bytes = std::fs::read(fixture("receipt.cose")).expect("fixture");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let path = ctx.write("tampered.cose", bytes);
    let run = ctx.run(&[&"receipts", &"show", &path]).code(1);
    assert!(
        run.stdout.contains("signature:   INVALID"),
        "{}",
        run.stdout
    );
}

#[test]
fn signer_pinning() {
    let ctx = Ctx::new();
    let coordinator = vector("coordinator_pubkey_hex");
    let run = ctx
        .run(&[
            &"receipts",
            &"show",
            &fixture("receipt.cose"),
            &"--signer",
            &coordinator,
        ])
        .ok();
    assert!(
        run.stdout.contains("signer pin:  checked"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("signature:   valid"), "{}", run.stdout);
    let run = ctx
        .run(&[
            &"receipts",
            &"show",
            &fixture("receipt.cose"),
            &"--signer",
            &TENANT_PUB,
        ])
        .code(1);
    assert!(
        run.stdout.contains("signature:   INVALID"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains(TENANT_PUB), "{}", run.stderr);
    let run = ctx
        .run(&[
            &"receipts",
            &"show",
            &fixture("receipt.cose"),
            &"--signer",
            &"xyz",
        ])
        .code(2);
    assert!(
        run.stderr.contains("not an Ed25519 public key"),
        "{}",
        run.stderr
    );
}
