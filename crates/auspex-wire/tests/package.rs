//! Package digest, package archive and work-unit tar against the vectors made
//! with the official SDK (`package_digest_and_tar.json`, 0.5.5, and the
//! `package_archive` part of `v0_6_67_deltas.json`).

use std::fs;
use std::io::Read;
use std::path::Path;

use auspex_wire::json::{self, Value};
use auspex_wire::package::{
    PackageError, build_package_archive, package_digest, package_files, write_package_tar,
    write_unit_tar, write_unit_tarball,
};
use auspex_wire::{hex_lower, sha256_hex};

fn vectors(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = fs::read(&path).expect("fixture present");
    json::parse(&bytes).expect("fixture is JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).expect("string member")
}

fn n(v: &Value, key: &str) -> u64 {
    let text = json::canonical(v.get(key).expect("member"));
    text.parse().expect("integer member")
}

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, content).expect("write");
}

/// The vector tree (`files` of `package_digest_and_tar.json`) plus the empty
/// directory it mentions.
fn vector_tree() -> (tempfile::TempDir, Value) {
    let doc = vectors("package_digest_and_tar.json");
    let dir = tempfile::tempdir().expect("tempdir");
    let files = doc.get("files").and_then(Value::as_object).expect("files");
    assert_eq!(files.len(), 11);
    for (rel, content) in files.iter() {
        let content = content.as_str().expect("file content is text");
        write(dir.path(), rel, content.as_bytes());
    }
    fs::create_dir(dir.path().join("emptydir")).expect("mkdir emptydir");
    (dir, doc)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

#[test]
fn digest_matches_vector() {
    let (dir, doc) = vector_tree();
    let digest = package_digest(dir.path()).expect("digest");
    let want_lines: Vec<&str> = doc
        .get("digest_lines")
        .and_then(Value::as_array)
        .expect("lines")
        .iter()
        .map(|l| l.as_str().expect("line"))
        .collect();
    assert_eq!(digest.lines, want_lines);
    assert_eq!(
        hex_lower(digest.blob.as_bytes()),
        s(&doc, "digest_blob_hex")
    );
    assert_eq!(digest.sha256, s(&doc, "package_sha256"));
    // The component-order trap, explicitly.
    let rels: Vec<String> = package_files(dir.path())
        .expect("files")
        .into_iter()
        .map(|f| f.rel)
        .collect();
    assert_eq!(
        rels,
        [
            "README.md",
            "a/b",
            "a-b/x",
            "data/é.json",
            "executor.py",
            "lib/util.py",
            "sub/manifest.json"
        ]
    );
}

#[test]
fn package_archive_inner_tar_matches_vector() {
    let (dir, _) = vector_tree();
    let doc = vectors("v0_6_67_deltas.json");
    let want = doc.get("package_archive").expect("package_archive");

    let mut tar = Vec::new();
    let digest = write_package_tar(dir.path(), &mut tar).expect("tar");
    assert_eq!(tar.len() as u64, n(want, "inner_tar_len"));
    assert_eq!(sha256_hex(&tar), s(want, "inner_tar_sha256"));
    assert_eq!(digest.sha256, s(want, "package_sha256"));

    let archive = build_package_archive(dir.path()).expect("archive");
    assert_eq!(hex_lower(&archive.bytes[..10]), s(want, "gzip_header_hex"));
    // zlib-rs happens to compress this tree exactly like the SDK's zlib 1.2.13,
    // so the whole archive is byte-identical, not just the inner tar (only
    // the inner tar is a contract: the coordinator stores by tree digest).
    assert_eq!(archive.bytes.len() as u64, n(want, "archive_len"));
    assert_eq!(sha256_hex(&archive.bytes), s(want, "archive_sha256"));
    assert_eq!(gunzip(&archive.bytes), tar);
    assert_eq!(archive.digest, digest);
    // Deterministic: the same tree gives the same bytes.
    let again = build_package_archive(dir.path()).expect("archive");
    assert_eq!(again.bytes, archive.bytes);

    // The PAX record for the non-ASCII name, and `?` in the ustar name field.
    let at = tar
        .windows(b"21 path=data/\xc3\xa9.json\n".len())
        .position(|w| w == b"21 path=data/\xc3\xa9.json\n")
        .expect("pax path record");
    assert_eq!(at % 512, 0);
    assert_eq!(&tar[at - 512..at - 512 + 14], b"././@PaxHeader");
    assert_eq!(tar[at - 512 + 156], b'x');
    assert_eq!(&tar[at + 512..at + 512 + 12], b"data/?.json\0");
}

#[test]
fn unit_tar_matches_vector() {
    let doc = vectors("package_digest_and_tar.json");
    let tw = doc.get("tar_writer").expect("tar_writer");
    let order: Vec<&str> = tw
        .get("input_unit_order")
        .and_then(Value::as_array)
        .expect("order")
        .iter()
        .map(|u| u.as_str().expect("id"))
        .collect();
    let members = tw
        .get("members")
        .and_then(Value::as_array)
        .expect("members");
    let pairs: Vec<(&str, &str)> = order
        .iter()
        .zip(members)
        .map(|(id, m)| {
            assert_eq!(s(m, "name"), format!("unit_{id}.json"));
            (*id, s(m, "content_utf8"))
        })
        .collect();
    let tar = write_unit_tar(&pairs).expect("tar");
    assert_eq!(tar.len() as u64, n(tw, "inner_tar_len"));
    assert_eq!(sha256_hex(&tar), s(tw, "inner_tar_sha256"));
    // Input order, not sorted.
    assert_eq!(&tar[..13], b"unit_u-2.json");

    let gz = write_unit_tarball(&pairs).expect("tarball");
    // Reproducible, unlike 0.5.5 (FNAME + wall-clock MTIME).
    assert_eq!(hex_lower(&gz[..10]), "1f8b08000000000002ff");
    assert_eq!(gunzip(&gz), tar);
    assert_eq!(write_unit_tarball(&pairs).expect("tarball"), gz);
}

#[test]
fn unit_tar_refuses_duplicate_ids() {
    let err = write_unit_tar(&[("u-1", "{}"), ("u-2", "{}"), ("u-1", "{}")])
        .expect_err("duplicate refused");
    match err {
        PackageError::DuplicateUnitId { unit_id } => assert_eq!(unit_id, "u-1"),
        other => panic!("unexpected {other:?}"),
    }
    // No units: an empty archive (two zero blocks padded to a record).
    let empty = write_unit_tar::<&str, &str>(&[]).expect("empty");
    assert_eq!(empty, vec![0u8; 10240]);
}

#[test]
fn empty_package() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir(dir.path().join("only-a-dir")).expect("mkdir");
    write(dir.path(), "manifest.json", b"{}");
    write(dir.path(), "__pycache__/x.py", b"x");
    let digest = package_digest(dir.path()).expect("digest");
    assert!(digest.lines.is_empty());
    assert_eq!(digest.blob, "");
    assert_eq!(digest.sha256, sha256_hex(b""));
    let mut tar = Vec::new();
    write_package_tar(dir.path(), &mut tar).expect("tar");
    assert_eq!(tar, vec![0u8; 10240]);
}

#[test]
fn exclusions_are_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    for rel in [
        "manifest.json",
        "manifest.json.sig",
        "x.pyc",
        "deep/er/y.pyc",
        "a/__pycache__/z.py",
        "__pycache__",
        // Kept:
        "sub/manifest.json.sig",
        "manifest.json.bak",
        "x.pyc.txt",
        "__pycache__x/k",
        ".hidden",
    ] {
        write(dir.path(), rel, rel.as_bytes());
    }
    let rels: Vec<String> = package_files(dir.path())
        .expect("files")
        .into_iter()
        .map(|f| f.rel)
        .collect();
    assert_eq!(
        rels,
        [
            ".hidden",
            "__pycache__x/k",
            "manifest.json.bak",
            "sub/manifest.json.sig",
            "x.pyc.txt"
        ]
    );
}

/// Ordering by code point per component: uppercase < `_` < lowercase, and a
/// shorter component sorts before its extensions.
#[test]
fn component_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    for rel in ["a", "_x", "B.txt", "ab/c", "a.b", "a-b/x", "aa", "é", "z"] {
        write(dir.path(), rel, b"");
    }
    let rels: Vec<String> = package_files(dir.path())
        .expect("files")
        .into_iter()
        .map(|f| f.rel)
        .collect();
    assert_eq!(
        rels,
        ["B.txt", "_x", "a", "a-b/x", "a.b", "aa", "ab/c", "z", "é"]
    );
}

#[cfg(unix)]
#[test]
fn symlinks() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    write(outside.path(), "target.txt", b"outside\n");
    write(outside.path(), "d/inner.txt", b"inner\n");
    write(dir.path(), "real.txt", b"real\n");
    symlink(
        outside.path().join("target.txt"),
        dir.path().join("link.txt"),
    )
    .expect("symlink");
    symlink(outside.path().join("d"), dir.path().join("linkdir")).expect("symlink");
    symlink(dir.path().join("missing"), dir.path().join("dangling")).expect("symlink");
    symlink(dir.path().join("loop"), dir.path().join("loop")).expect("symlink");

    let digest = package_digest(dir.path()).expect("digest");
    assert_eq!(
        digest.lines,
        [
            format!("link.txt\0{}", sha256_hex(b"outside\n")),
            format!("real.txt\0{}", sha256_hex(b"real\n")),
        ]
    );
    let mut tar = Vec::new();
    let from_tar = write_package_tar(dir.path(), &mut tar).expect("tar");
    assert_eq!(from_tar, digest);
    // The link is archived as a regular file holding the target's bytes.
    assert_eq!(&tar[..9], b"link.txt\0");
    assert_eq!(tar[156], b'0');
    assert_eq!(&tar[512..520], b"outside\n");
}

#[cfg(target_os = "linux")]
#[test]
fn non_utf8_names() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "ok.txt", b"ok");
    // An excluded non-UTF-8 name does not matter…
    let pyc = dir.path().join(OsStr::from_bytes(b"bad\xff.pyc"));
    if fs::write(&pyc, b"x").is_err() {
        // A file system that refuses non-UTF-8 names cannot hold the case.
        return;
    }
    assert_eq!(package_digest(dir.path()).expect("digest").lines.len(), 1);
    // …a kept one is refused with its path.
    let sub = dir.path().join(OsStr::from_bytes(b"d\xfe"));
    fs::create_dir(&sub).expect("mkdir");
    fs::write(sub.join("f"), b"x").expect("write");
    match package_digest(dir.path()) {
        Err(PackageError::NonUtf8Path { path }) => assert_eq!(path, sub.join("f")),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn bad_package_dirs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    assert!(matches!(
        package_digest(&missing),
        Err(PackageError::NotFound { path }) if path == missing
    ));
    write(dir.path(), "file", b"x");
    let file = dir.path().join("file");
    assert!(matches!(
        package_digest(&file),
        Err(PackageError::NotADirectory { path }) if path == file
    ));
}

#[cfg(unix)]
#[test]
fn unreadable_subdirectory_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "locked/secret.py", b"x");
    let locked = dir.path().join("locked");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    let readable_anyway = fs::read_dir(&locked).is_ok(); // running as root
    let result = package_digest(dir.path());
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod back");
    if readable_anyway {
        assert_eq!(result.expect("root reads it").lines.len(), 1);
    } else {
        assert!(matches!(result, Err(PackageError::Io { path, .. }) if path == locked));
    }
}

/// Member names at the ustar limits, checked against Python's `tarfile`
/// (3.11, `PAX_FORMAT`, the metadata of `build_package_archive`): the inner
/// tar SHA-256 of each tree below was produced by 0.6.67
/// `build_package_archive` and gunzipped.
#[test]
fn long_names_match_python_tarfile() {
    let cases: [(&[&str], &str); 4] = [
        (&[LONG_100], "PY_LONG_100"),
        (&[LONG_101], "PY_LONG_101"),
        (&[LONG_NON_ASCII], "PY_LONG_NON_ASCII"),
        (&[LONG_100, LONG_101, LONG_NON_ASCII, "é/ü.txt"], "PY_ALL"),
    ];
    assert_eq!((LONG_100.len(), LONG_101.len()), (100, 101));
    for (rels, want) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        for rel in rels {
            write(dir.path(), rel, rel.as_bytes());
        }
        let mut tar = Vec::new();
        write_package_tar(dir.path(), &mut tar).expect("tar");
        let (inner, archive) = python_sha(want);
        assert_eq!(sha256_hex(&tar), inner, "{rels:?}");
        let built = build_package_archive(dir.path()).expect("archive");
        assert_eq!(gunzip(&built.bytes), tar);
        // zlib-rs reproduces zlib's level-9 stream for these small inputs (not
        // for every input — the multi-file tree compresses differently, which
        // is allowed: the coordinator stores packages by tree digest).
        if let Some(archive) = archive {
            assert_eq!(sha256_hex(&built.bytes), archive, "{rels:?}");
        }
    }
}

const LONG_100: &str = "d123456789/d123456789/d123456789/d123456789/d123456789/d123456789/d123456789/d123456789/d12345/x.txt";
const LONG_101: &str = "d123456789/d123456789/d123456789/d123456789/d123456789/d123456789/d123456789/d123456789/d123456/x.txt";
const LONG_NON_ASCII: &str = "ünïcödé/d123456789/d123456789/d123456789/d123456789/d123456789/d123456789/d123456789/d123456789/d123456789/x.txt";

/// (inner tar SHA-256, archive SHA-256 where zlib-rs reproduces it) from 0.6.67 `build_package_archive`
/// (CPython 3.11.7, zlib 1.2.13) over a tree whose files hold their own
/// relative path as content.
fn python_sha(case: &str) -> (&'static str, Option<&'static str>) {
    match case {
        "PY_LONG_100" => (
            "05b470817d31d64ff2106afb22cc461eb3f82e3c17e21ff9bb6e71a7c46d6dcc",
            Some("9e9699c87f077e4d6d12ea02ce0c6c31fad859344048911745a70b5dfc860855"),
        ),
        "PY_LONG_101" => (
            "41cf476fa8c40f96dbd12eaece9caf67233853fd3e634efc24e90d81ea922b20",
            Some("0053c42866e0c5c05be3bd4722978862a64bed469fe09f606b03e75244d8cc99"),
        ),
        "PY_LONG_NON_ASCII" => (
            "c8b9db1c4a33e9431c132e69981519612056fcbf8bb45436e7b4719e479c2f0c",
            Some("226fd47adbd391a715b15404706365b8cf29f09b57dca3efa0ba74bcf397ee25"),
        ),
        "PY_ALL" => (
            "c1803e04d050fa9a2c4e3c0b4856981e7464bd63f535a92e3f5b1100780a38cf",
            None, // Python: 479cd2f12a2072bfb7038f50f270f13d54d7ce14832d2d6689ee337f8a9c2b71
        ),
        other => panic!("no Python value for {other}"),
    }
}
