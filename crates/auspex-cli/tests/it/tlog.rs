//! `auspex tlog verify-entry`: entries and roots written by the library's
//! test log (Ed25519 and P-256), a real public Rekor entry, mutations, and
//! garbage.

use auspex_crypto::tlog::RekorEntry;
use auspex_crypto::tlog::testlog::{LogSigner, TestLog, rekord_body};

use crate::common::*;

const ARTIFACT: [u8; 32] = [0x5a; 32];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn log(signer: LogSigner) -> TestLog {
    let mut log = TestLog::new(signer, "rekor.test").expect("log");
    for i in 0..5u8 {
        let artifact = if i == 3 { ARTIFACT } else { [i; 32] };
        log.append(rekord_body(&artifact, b"sig", b"key"), 1_735_787_045);
    }
    log
}

fn signers() -> [LogSigner; 2] {
    [
        LogSigner::ed25519([1; 32]),
        LogSigner::ecdsa_p256([2; 32]).expect("key"),
    ]
}

/// Writes entry 3 and the log's trusted root; returns their paths.
fn write(ctx: &Ctx, log: &TestLog, entry: &RekorEntry) -> (std::path::PathBuf, std::path::PathBuf) {
    (
        ctx.write("entry.json", entry.to_json()),
        ctx.write("root.json", log.trusted_root().to_json()),
    )
}

fn no_panic(run: &Run) {
    assert!(!run.stderr.contains("panicked"), "panic: {}", run.stderr);
}

#[test]
fn a_good_entry_verifies() {
    for signer in signers() {
        let ctx = Ctx::new();
        let log = log(signer);
        let entry = log.entry(3).expect("entry");
        let (e, r) = write(&ctx, &log, &entry);
        let run = ctx
            .run(&[
                &"tlog",
                &"verify-entry",
                &e,
                &"--trusted-root",
                &r,
                &"--artifact-sha256",
                &hex(&ARTIFACT),
            ])
            .ok();
        for check in [
            "tlog.body_hash",
            "tlog.inclusion_proof",
            "tlog.entry_uuid",
            "tlog.log_index",
            "tlog.log_key_trusted",
            "tlog.log_key_valid_at_integrated_time",
            "tlog.checkpoint_signature",
            "tlog.checkpoint_origin",
            "tlog.checkpoint_matches_proof",
            "tlog.set_signature",
        ] {
            assert!(
                run.stdout.contains(&format!("passed       {check}\n")),
                "{check}: {}",
                run.stdout
            );
        }
        assert!(
            run.stdout.ends_with("verified \u{2713}\n"),
            "{}",
            run.stdout
        );

        // Without the artifact digest, the body check is optional.
        let run = ctx
            .run(&[&"tlog", &"verify-entry", &e, &"--trusted-root", &r])
            .ok();
        assert!(
            run.stdout.contains(
                "not checked  tlog.body_hash \u{2014} no artifact digest given (not required)"
            ),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn json_output_is_the_report() {
    let ctx = Ctx::new();
    let log = log(LogSigner::ed25519([3; 32]));
    let (e, r) = write(&ctx, &log, &log.entry(3).expect("entry"));
    let run = ctx
        .run(&[
            &"tlog",
            &"verify-entry",
            &e,
            &"--trusted-root",
            &r,
            &"--json",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(v["verified"], true);
    let checks = v["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 10);
    assert_eq!(checks[0]["check"], "tlog.body_hash");
    assert_eq!(checks[0]["outcome"], "not_checked");
    assert!(checks[1..].iter().all(|c| c["outcome"] == "passed"), "{v}");
    assert!(
        !v["required"]
            .as_array()
            .expect("required")
            .iter()
            .any(|c| c == "tlog.body_hash")
    );
}

#[test]
fn a_mutated_entry_exits_1_naming_the_check() {
    for signer in signers() {
        let ctx = Ctx::new();
        let log = log(signer);
        let good = log.entry(3).expect("entry");
        let cases: Vec<(RekorEntry, &str)> = vec![
            {
                let mut e = good.clone();
                e.integrated_time += 1;
                (e, "tlog.set_signature")
            },
            {
                let mut e = good.clone();
                let p = e.inclusion_proof.as_mut().expect("proof");
                let mut h = p.root_hash.clone().into_bytes();
                h[0] = if h[0] == b'0' { b'1' } else { b'0' };
                p.root_hash = String::from_utf8(h).expect("ascii");
                (e, "tlog.inclusion_proof")
            },
            {
                let mut e = good.clone();
                let p = e.inclusion_proof.as_mut().expect("proof");
                p.checkpoint = Some(log.signed_checkpoint(4).expect("stale"));
                (e, "tlog.checkpoint_matches_proof")
            },
        ];
        for (entry, check) in cases {
            let (e, r) = write(&ctx, &log, &entry);
            let run = ctx
                .run(&[
                    &"tlog",
                    &"verify-entry",
                    &e,
                    &"--trusted-root",
                    &r,
                    &"--artifact-sha256",
                    &hex(&ARTIFACT),
                ])
                .code(1);
            no_panic(&run);
            assert!(
                run.stdout
                    .contains(&format!("FAILED       {check} \u{2014} ")),
                "{check}: {}",
                run.stdout
            );
            assert!(
                run.stderr.contains("NOT verified") && run.stderr.contains(check),
                "{}",
                run.stderr
            );
        }
        // Another artifact.
        let (e, r) = write(&ctx, &log, &good);
        let run = ctx
            .run(&[
                &"tlog",
                &"verify-entry",
                &e,
                &"--trusted-root",
                &r,
                &"--artifact-sha256",
                &hex(&[0; 32]),
            ])
            .code(1);
        assert!(
            run.stdout.contains("FAILED       tlog.body_hash"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn an_unknown_log_and_a_missing_checkpoint_exit_1() {
    let ctx = Ctx::new();
    let log = log(LogSigner::ed25519([4; 32]));
    let other = TestLog::new(LogSigner::ed25519([5; 32]), "rekor.test").expect("other");
    let entry = log.entry(3).expect("entry");
    let e = ctx.write("entry.json", entry.to_json());
    let r = ctx.write("other-root.json", other.trusted_root().to_json());
    let run = ctx
        .run(&[&"tlog", &"verify-entry", &e, &"--trusted-root", &r])
        .code(1);
    assert!(
        run.stdout.contains("FAILED       tlog.log_key_trusted"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("not checked  tlog.set_signature \u{2014} needs tlog.log_key_trusted"),
        "{}",
        run.stdout
    );

    let mut bare = entry;
    bare.signed_entry_timestamp = None;
    if let Some(p) = bare.inclusion_proof.as_mut() {
        p.checkpoint = None;
    }
    let (e, r) = write(&ctx, &log, &bare);
    let run = ctx
        .run(&[&"tlog", &"verify-entry", &e, &"--trusted-root", &r])
        .code(1);
    assert!(!run.stdout.contains("FAILED"), "{}", run.stdout);
    assert!(
        run.stderr.contains("not checked tlog.checkpoint_signature"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_real_public_rekor_entry_verifies() {
    let ctx = Ctx::new();
    let dir = workspace().join("crates/auspex-crypto/tests/fixtures/tlog");
    let run = ctx
        .run(&[
            &"tlog",
            &"verify-entry",
            &dir.join("rekor_prod_entry.json"),
            &"--trusted-root",
            &dir.join("trusted_root_sigstore_prod.json"),
            &"--artifact-sha256",
            &"C4E92E9ECC828BEF2AA7DBA1DE8AC983511F7532A0DF11C770D39099A25CF201",
        ])
        .ok();
    assert!(
        run.stdout.contains("passed       tlog.set_signature"),
        "{}",
        run.stdout
    );
    // The shared vector has no real checkpoint or SET.
    let run = ctx
        .run(&[
            &"tlog",
            &"verify-entry",
            &vectors("rekor_inclusion.json"),
            &"--trusted-root",
            &dir.join("trusted_root_sigstore_prod.json"),
        ])
        .code(2);
    no_panic(&run);
}

#[test]
fn garbage_exits_2_without_panic() {
    let ctx = Ctx::new();
    let log = log(LogSigner::ed25519([6; 32]));
    let (e, r) = write(&ctx, &log, &log.entry(0).expect("entry"));
    let garbage = ctx.write("garbage", b"\xff\x00 not json");
    let not_entry = ctx.write("not-entry.json", r#"{"a": 1, "b": 2}"#);
    for (entry, root) in [
        (&garbage, &r),
        (&not_entry, &r),
        (&e, &garbage),
        (&e, &e),
        (&ctx.path("missing.json"), &r),
    ] {
        let run = ctx
            .run(&[&"tlog", &"verify-entry", entry, &"--trusted-root", root])
            .code(2);
        no_panic(&run);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    }
    for digest in ["abc", &"g".repeat(64), &"0".repeat(66)] {
        let run = ctx
            .run(&[
                &"tlog",
                &"verify-entry",
                &e,
                &"--trusted-root",
                &r,
                &"--artifact-sha256",
                &digest,
            ])
            .code(2);
        assert!(run.stderr.contains("--artifact-sha256"), "{}", run.stderr);
    }
}

#[test]
fn help_and_usage() {
    let ctx = Ctx::new();
    for cmd in [&["tlog"][..], &["tlog", "verify-entry"]] {
        let mut c = ctx.auspex();
        c.args(cmd).arg("--help");
        let run = Run::from(c.output().expect("runs")).ok();
        assert!(
            run.stdout
                .contains(&format!("Usage: auspex {}", cmd.join(" "))),
            "{}",
            run.stdout
        );
    }
    let run = ctx.run(&[&"tlog"]);
    assert_eq!(run.code, 2);
    let run = ctx.run(&[&"tlog", &"verify-entry", &"x.json"]);
    assert_eq!(run.code, 2, "--trusted-root is required");
}
