//! Packages: fetched from the coordinator by manifest hash and verified;
//! integrity failures refused with their tags; hostile archives refused by
//! the unpacker without writing outside the destination.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use auspex_worker::kind;
use auspex_worker::package::{ArchiveError, UnpackCaps, unpack_archive};
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn packages_are_fetched_from_the_coordinator_and_verified() {
    let net = Net::start(|c| c).await;
    let exp = net
        .experiment("fetched", "py-square", &["python", "executor.py"], 1)
        .await;
    let r = net.push_package(&exp).await;
    assert_eq!(r.status, 201, "{}", r.text);
    net.submit(&exp, &[("f1", json!({"x": 11})), ("f2", json!({"x": 12}))])
        .await;
    let mut cfg = net.worker_config("fetcher", 101);
    cfg.package_sources.clear();
    cfg.auto_fetch = true;
    let cache = cfg.work_dir.join("packages").join(&exp.hash);
    let w = auspex_worker::spawn(cfg);
    net.wait_completed(&exp, 2, Duration::from_secs(60)).await;
    let stats = w.shutdown().await.expect("test step");
    assert_eq!(stats.results.len(), 2, "{:?}", stats.refusals);
    // Installed in the verified cache, with the coordinator's manifest.json.
    let manifest = std::fs::read(cache.join("manifest.json")).expect("test step");
    let parsed = auspex_wire::json::parse(&manifest).expect("test step");
    assert_eq!(auspex_wire::json::canonical_sha256(&parsed), exp.hash);
    assert!(cache.join("executor.py").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn integrity_failures_are_refused_with_their_tags() {
    let net = Net::start(|c| c).await;
    // 1. Tampered after staging: the digest no longer matches the pin.
    let tampered = net
        .experiment("tampered", "py-square", &["python", "executor.py"], 1)
        .await;
    std::fs::write(
        net.staging.join(&tampered.hash).join("executor.py"),
        "print('evil')\n",
    )
    .expect("test step");
    // 2. A different manifest staged under the hash.
    let swapped = net
        .experiment("swapped", "sh-echo", &["sh", "run.sh"], 1)
        .await;
    let mpath = net.staging.join(&swapped.hash).join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&mpath).expect("test step")).expect("test step");
    m["executor"]["command"] = json!(["sh", "-c", "cat /etc/shadow"]);
    std::fs::write(&mpath, serde_json::to_vec(&m).expect("test step")).expect("test step");
    // 3. Nowhere to be found.
    let missing = net
        .experiment("missing", "sh-echo", &["sh", "run.sh"], 1)
        .await;
    std::fs::remove_dir_all(net.staging.join(&missing.hash)).expect("test step");
    for (exp, unit) in [(&tampered, "t1"), (&swapped, "s1"), (&missing, "m1")] {
        net.submit(exp, &[(unit, json!({"x": 1, "word": "w"}))])
            .await;
    }
    let mut cfg = net.worker_config("careful", 102);
    // 4. Hand-staged in the worker's own cache, then altered.
    let hand = net
        .experiment("hand-staged", "py-square", &["python", "executor.py"], 1)
        .await;
    let cached = cfg.work_dir.join("packages").join(&hand.hash);
    copy_dir(&net.staging.join(&hand.hash), &cached);
    std::fs::write(cached.join("extra.py"), "x = 1\n").expect("test step");
    net.submit(&hand, &[("h1", json!({"x": 2}))]).await;
    cfg.poll_interval = Duration::from_millis(50);
    let w = auspex_worker::spawn(cfg);
    wait_for("four refusals", Duration::from_secs(30), || {
        let s = w.stats();
        ["t1", "s1", "m1", "h1"]
            .iter()
            .all(|u| s.refusals.iter().any(|r| r.unit_id == *u))
    })
    .await;
    let stats = w.shutdown().await.expect("test step");
    assert!(stats.results.is_empty(), "{:?}", stats.results);
    let reason = |unit: &str| {
        let r = stats
            .refusals
            .iter()
            .find(|r| r.unit_id == unit)
            .expect("test step");
        assert_eq!(r.kind, kind::EXECUTOR_REFUSED, "{r:?}");
        r.reason.clone()
    };
    assert!(
        reason("t1").contains("(auto_fetch_digest_mismatch)"),
        "{}",
        reason("t1")
    );
    assert!(
        reason("s1").contains("(manifest_hash_mismatch)"),
        "{}",
        reason("s1")
    );
    assert!(
        reason("m1").contains("(package_unavailable)"),
        "{}",
        reason("m1")
    );
    assert!(
        reason("h1").contains("(package_digest_mismatch)"),
        "{}",
        reason("h1")
    );
    // Nothing unverified was installed in the cache.
    let cache = net.dir.path().join("workers/careful/packages");
    for e in [&tampered, &swapped, &missing] {
        assert!(!cache.join(&e.hash).exists());
    }
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .expect("test step")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".fetch-"))
        .collect();
    assert!(leftovers.is_empty());
}

// ---------------------------------------------------------------------------
// The unpacker against hand-made archives.
// ---------------------------------------------------------------------------

/// One raw ustar member.
fn member(name: &[u8], kind: u8, data: &[u8], mode: u32, link: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn gz(members: &[Vec<u8>]) -> Vec<u8> {
    let mut tar: Vec<u8> = members.concat();
    tar.extend_from_slice(&[0u8; 1024]);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&tar).expect("test step");
    e.finish().expect("test step")
}

fn unpack(archive: &[u8], caps: &UnpackCaps) -> (tempfile::TempDir, Result<(), ArchiveError>) {
    let root = tempfile::tempdir().expect("test step");
    let dest = root.path().join("dest");
    std::fs::create_dir(&dest).expect("test step");
    let r = unpack_archive(archive, &dest, caps);
    (root, r)
}

fn only_dest(root: &Path) {
    let names: Vec<String> = std::fs::read_dir(root)
        .expect("test step")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["dest".to_owned()],
        "something was written beside dest"
    );
}

#[test]
fn a_plain_archive_unpacks_with_sanitised_modes() {
    let a = gz(&[
        member(b"lib/", b'5', b"", 0o700, b""),
        member(b"lib/util.py", b'0', b"A=1\n", 0o666, b""),
        member(b"./run", b'0', b"#!/bin/sh\n", 0o4777, b""),
    ]);
    let (root, r) = unpack(&a, &UnpackCaps::default());
    r.expect("a plain archive unpacks");
    let dest = root.path().join("dest");
    assert_eq!(
        std::fs::read(dest.join("lib/util.py")).expect("test step"),
        b"A=1\n"
    );
    let mode = |p: &str| {
        std::fs::metadata(dest.join(p))
            .expect("test step")
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("lib/util.py"), 0o644);
    assert_eq!(mode("run"), 0o755, "set-id and group/other write dropped");
    assert_eq!(mode("lib"), 0o755);
}

#[test]
fn hostile_archives_are_refused_whole() {
    let caps = UnpackCaps {
        max_entries: 8,
        max_file_bytes: 1024,
        max_total_bytes: 4096,
        ..UnpackCaps::default()
    };
    let ok = member(b"ok.txt", b'0', b"fine", 0o644, b"");
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "parent dir",
            gz(&[ok.clone(), member(b"../evil", b'0', b"x", 0o644, b"")]),
            true,
        ),
        (
            "nested parent",
            gz(&[member(b"a/../../evil", b'0', b"x", 0o644, b"")]),
            true,
        ),
        (
            "absolute",
            gz(&[member(b"/tmp/auspex-evil", b'0', b"x", 0o644, b"")]),
            true,
        ),
        (
            "symlink",
            gz(&[member(b"link", b'2', b"", 0o777, b"/etc/passwd")]),
            true,
        ),
        (
            "symlink then write through it",
            gz(&[
                member(b"d", b'2', b"", 0o777, b".."),
                member(b"d/evil", b'0', b"x", 0o644, b""),
            ]),
            true,
        ),
        (
            "hard link",
            gz(&[ok.clone(), member(b"hard", b'1', b"", 0o644, b"ok.txt")]),
            true,
        ),
        (
            "char device",
            gz(&[member(b"null", b'3', b"", 0o666, b"")]),
            true,
        ),
        (
            "block device",
            gz(&[member(b"sda", b'4', b"", 0o666, b"")]),
            true,
        ),
        ("fifo", gz(&[member(b"pipe", b'6', b"", 0o666, b"")]), true),
        (
            "file too big",
            gz(&[member(b"big", b'0', &[0u8; 2048], 0o644, b"")]),
            false,
        ),
        (
            "too much in all",
            gz(&(0..6)
                .map(|i| member(format!("f{i}").as_bytes(), b'0', &[1u8; 1000], 0o644, b""))
                .collect::<Vec<_>>()),
            false,
        ),
        (
            "too many members",
            gz(&(0..9)
                .map(|i| member(format!("f{i}").as_bytes(), b'0', b"x", 0o644, b""))
                .collect::<Vec<_>>()),
            false,
        ),
        ("duplicate", gz(&[ok.clone(), ok.clone()]), false),
        (
            "file then dir of same name",
            gz(&[ok.clone(), member(b"ok.txt/x", b'0', b"x", 0o644, b"")]),
            false,
        ),
        ("not gzip", b"PK\x03\x04 zip".to_vec(), false),
        (
            "truncated",
            gz(std::slice::from_ref(&ok))[..20].to_vec(),
            false,
        ),
    ];
    for (what, archive, unsafe_kind) in cases {
        let (root, r) = unpack(&archive, &caps);
        match r {
            Err(ArchiveError::Unsafe(_)) if unsafe_kind => {}
            Err(ArchiveError::Invalid(_)) if !unsafe_kind => {}
            other => panic!("{what}: {other:?}"),
        }
        only_dest(root.path());
        assert!(!Path::new("/tmp/auspex-evil").exists());
    }
}
