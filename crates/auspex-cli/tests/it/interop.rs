//! Interop with the official SDK (auspexai-tenant 0.5.5, and 0.6.67 where it
//! differs): it must accept our keys and signatures, and we must accept its.

use std::path::Path;

use crate::common::*;

/// A small deterministic generator (SplitMix64), so that a failing case can be
/// reproduced from its index.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn hex64(&mut self) -> String {
        (0..4).map(|_| format!("{:016x}", self.next())).collect()
    }
    fn slug(&mut self, min: usize, max: usize) -> String {
        const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
        const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-";
        let len = min + self.below((max - min + 1) as u64) as usize;
        let mut s = String::new();
        s.push(char::from(FIRST[self.below(26) as usize]));
        for _ in 1..len {
            s.push(char::from(REST[self.below(REST.len() as u64) as usize]));
        }
        s
    }
    /// Text of `min..=max` code points mixing ASCII, accents, CJK, emoji,
    /// quotes, backslashes, control characters, DEL and U+2028.
    fn text(&mut self, min: usize, max: usize) -> String {
        const PIECES: &[&str] = &[
            "drift ", "probe ", "über ", "café ", "naïve ", "模型 ", "😀 ", "\"q\" ", "\\ ", "\t",
            "\n", "\u{7f}", "\u{2028}", "a/b ", "x", "\u{1}", "Ω ", "𝔘 ",
        ];
        let target = min + self.below((max.min(min + 300) - min + 1) as u64) as usize;
        let mut s = String::new();
        while s.chars().count() < target {
            s.push_str(self.pick(PIECES));
        }
        s.chars().take(target.max(min)).collect()
    }
}

fn email(rng: &mut Rng) -> String {
    let local = rng.pick(&["alice", "Bob.Smith", "r_d+lab", "X"]);
    let domain = rng.pick(&[
        "example.com",
        "Example.COM",
        "LAB.University.EDU",
        "xn--bcher-kva.example",
        "Bücher.DE",
        "sub.domain.org",
    ]);
    let addr = format!("{local}@{domain}");
    match rng.below(3) {
        0 => addr,
        1 => format!("Dr. Researcher <{addr}>"),
        _ => format!("  {addr} "),
    }
}

/// A random valid v0.1 manifest, as JSON text (optional members present or
/// absent, sometimes explicit null; keys in random order).
fn manifest(rng: &mut Rng) -> String {
    let mut m = serde_json::Map::new();
    let put = |m: &mut serde_json::Map<String, serde_json::Value>, k: &str, v| {
        m.insert(k.to_owned(), v);
    };
    put(&mut m, "schema_version", "0.1".into());
    put(&mut m, "tenant_id", rng.slug(3, 20).into());
    put(&mut m, "tenant_maintainer_contact", email(rng).into());
    put(&mut m, "experiment_id", rng.slug(3, 40).into());
    put(&mut m, "research_goal_paragraph", rng.text(50, 2000).into());
    let models: Vec<serde_json::Value> = (0..1 + rng.below(3))
        .map(|_| {
            let mut model = serde_json::json!({
                "id": rng.pick(&["qwen2.5-0.5b", "llama-3.2-1b", "synthetic", "模型-x"]),
                "version": rng.pick(&["1.0", "q4_k_m", "2024-06"]),
                "local_weights_required": rng.chance(50),
            });
            if rng.chance(40) {
                model["hf_repo"] = "org/repo-GGUF".into();
            } else if rng.chance(20) {
                model["hf_repo"] = serde_json::Value::Null;
            }
            if rng.chance(40) {
                model["hf_filename"] = "model-Q4_K_M.gguf".into();
            }
            model
        })
        .collect();
    put(&mut m, "models", models.into());
    put(
        &mut m,
        "prompt_set_characteristics",
        rng.text(10, 1000).into(),
    );
    let flags: Vec<serde_json::Value> = ["dual_use", "red_team", "harmful_output_generation"]
        .iter()
        .filter(|_| rng.chance(20))
        .map(|f| (*f).into())
        .collect();
    let flagged = !flags.is_empty();
    if flagged || rng.chance(60) {
        put(&mut m, "sensitive_content_flags", flags.into());
    }
    if flagged || rng.chance(15) {
        put(
            &mut m,
            "approver_attestations",
            serde_json::json!([{"approver_pubkey": "ed25519:QUJDRA==", "sig": "c2ln"}]),
        );
    }
    let duration: serde_json::Value = match rng.below(4) {
        0 => (1 + rng.below(8000)).into(),
        1 => 0.00001.into(),
        2 => (rng.below(1_000_000) as f64 / 997.0 + 0.001).into(),
        _ => 8760.0.into(),
    };
    put(&mut m, "expected_duration_hours", duration);
    put(&mut m, "replication_factor", (1 + rng.below(100)).into());
    let source = if rng.chance(50) {
        serde_json::json!({"kind": "static", "tarball_sha256": rng.hex64()})
    } else {
        serde_json::json!({"kind": "http", "url": "https://data.example.org/units?x=1"})
    };
    put(&mut m, "work_unit_source", source);
    let mut executor = serde_json::json!({"command": ["python3", "executor.py", rng.text(1, 8)]});
    if rng.chance(30) {
        executor["image_sha256"] = rng.hex64().into();
    }
    if rng.chance(30) {
        executor["package_sha256"] = rng.hex64().into();
    }
    put(&mut m, "executor", executor);
    let reducer = if rng.chance(70) {
        serde_json::json!({"kind": "builtin_hash_agreement"})
    } else {
        serde_json::json!({"kind": "custom", "command": ["python3", "reduce.py"]})
    };
    put(&mut m, "reducer", reducer);
    // Random member order: the signing input must not depend on it.
    let mut entries: Vec<_> = m.into_iter().collect();
    for i in (1..entries.len()).rev() {
        entries.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let shuffled: serde_json::Map<_, _> = entries.into_iter().collect();
    if rng.chance(50) {
        serde_json::to_string_pretty(&shuffled).expect("serialise")
    } else {
        // ensure_ascii-style escapes in the file must not matter either.
        ascii_escaped(&serde_json::to_string(&shuffled).expect("serialise"))
    }
}

/// Rewrites non-ASCII characters as \u escapes (what Python's default dump does).
fn ascii_escaped(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

const SIGN_ALL: &str = r#"
import json, pathlib, sys
from auspexai_tenant import MaintainerKey, Manifest, sign_manifest
key = MaintainerKey.load(pathlib.Path(sys.argv[1]))
for path in sorted(pathlib.Path(sys.argv[2]).glob("*.json")):
    manifest = Manifest.model_validate(json.loads(path.read_text()))
    sig = sign_manifest(manifest, key)
    path.with_suffix(".json.py-sig").write_text(sig.model_dump_json(indent=2) + "\n")
print("signed")
"#;

#[test]
fn two_hundred_random_manifests_sign_identically() {
    let Some(python) = python("0.5.5") else {
        return;
    };
    let ctx = Ctx::new();
    let key = ctx.tenant_key();
    let dir = ctx.path("manifests");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut rng = Rng(0x5eed_0001);
    for i in 0..200 {
        ctx.write(&format!("manifests/m{i:03}.json"), manifest(&mut rng));
    }
    run_python(&python, SIGN_ALL, &[&key, &dir]);
    for i in 0..200 {
        let path = dir.join(format!("m{i:03}.json"));
        ctx.run(&[&"manifest", &"sign", &path, &"--key", &key]).ok();
        let ours = std::fs::read_to_string(dir.join(format!("m{i:03}.json.sig"))).expect("ours");
        let theirs =
            std::fs::read_to_string(dir.join(format!("m{i:03}.json.py-sig"))).expect("theirs");
        assert_eq!(
            ours,
            theirs,
            "manifest {i} signs differently:\n{}",
            std::fs::read_to_string(&path).unwrap_or_default()
        );
    }
}

const VERIFY: &str = r#"
import json, sys
from auspexai_tenant import Manifest, ManifestSignature, verify_manifest
manifest = Manifest.model_validate(json.loads(open(sys.argv[1], encoding="utf-8").read()))
sig = ManifestSignature.model_validate_json(open(sys.argv[2], encoding="utf-8").read())
print("valid" if verify_manifest(manifest, sig) else "INVALID")
"#;

#[test]
fn official_sdk_verifies_our_signature_and_loads_our_key() {
    let Some(python) = python("0.5.5") else {
        return;
    };
    let ctx = Ctx::new();
    let key = ctx.path("k");
    let generated = ctx.run(&[&"key", &"generate", &"-o", &key]).ok();
    let ours = generated
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Public key: "))
        .expect("pubkey line")
        .to_owned();
    let theirs = run_python(
        &python,
        "import sys, pathlib\nfrom auspexai_tenant import MaintainerKey\nprint(MaintainerKey.load(pathlib.Path(sys.argv[1])).pubkey_hex)",
        &[&key],
    );
    assert_eq!(theirs.trim(), ours);
    let path = ctx.write(
        "manifest.json",
        std::fs::read(workspace().join("examples/doubler/manifest.json")).expect("example"),
    );
    ctx.run(&[&"manifest", &"sign", &path, &"--key", &key]).ok();
    let verdict = run_python(&python, VERIFY, &[&path, &ctx.path("manifest.json.sig")]);
    assert_eq!(verdict.trim(), "valid");
}

#[test]
fn we_load_a_key_the_official_sdk_wrote_and_verify_its_signature() {
    let Some(python) = python("0.5.5") else {
        return;
    };
    let ctx = Ctx::new();
    let key = ctx.path("py_key");
    let pubkey = run_python(
        &python,
        "import sys, pathlib\nfrom auspexai_tenant import MaintainerKey\nk = MaintainerKey.generate()\nk.save(pathlib.Path(sys.argv[1]))\nprint(k.pubkey_hex)",
        &[&key],
    );
    let run = ctx.run(&[&"key", &"pubkey", &"--key", &key]).ok();
    assert_eq!(run.stdout.trim(), pubkey.trim());
    let path = ctx.write(
        "manifest.json",
        std::fs::read(workspace().join("examples/doubler/manifest.json")).expect("example"),
    );
    official_cli(&python, &["manifest", "sign"], &path, &key);
    ctx.run(&[&"manifest", &"verify", &path, &"--signer", &pubkey.trim()])
        .ok();
}

/// Runs the official console script next to the interpreter.
fn official_cli(python: &Path, cmd: &[&str], path: &Path, key: &Path) {
    let exe = python.with_file_name("auspexai-tenant");
    let out = std::process::Command::new(&exe)
        .args(cmd)
        .arg(path)
        .arg("--key")
        .arg(key)
        .output()
        .expect("official CLI runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn official_cli_and_ours_write_the_same_sig_file() {
    let Some(python) = python("0.5.5") else {
        return;
    };
    let ctx = Ctx::new();
    let key = ctx.tenant_key();
    let mut rng = Rng(0x5eed_0002);
    for i in 0..3 {
        let text = manifest(&mut rng);
        let a = ctx.write(&format!("a{i}/manifest.json"), &text);
        let b = ctx.write(&format!("b{i}/manifest.json"), &text);
        official_cli(&python, &["manifest", "sign"], &a, &key);
        ctx.run(&[&"manifest", &"sign", &b, &"--key", &key]).ok();
        assert_eq!(
            std::fs::read(ctx.path(&format!("a{i}/manifest.json.sig"))).expect("theirs"),
            std::fs::read(ctx.path(&format!("b{i}/manifest.json.sig"))).expect("ours"),
        );
    }
}
