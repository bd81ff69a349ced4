//! Tenant key files: the vectors of `keys.json`, the file-handling contract
//! (atomic 0600 writes, refusal to overwrite, clear load errors) and interop
//! with the official SDK 0.5.5.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auspex_crypto::atomic::{self, AtomicWriteError};
use auspex_crypto::keys::{
    self, KeyError, MAX_KEY_FILE_BYTES, PemError, ResolvedKey, TenantKey, default_key_path,
    legacy_key_path, resolve_key_for_reading,
};
use auspex_wire::hex_lower;
use auspex_wire::json::{self, Value};

fn keys_vector() -> Value {
    let path = format!(
        "{}/../auspex-wire/tests/fixtures/vectors/keys.json",
        env!("CARGO_MANIFEST_DIR")
    );
    json::parse(&fs::read(path).expect("keys.json present")).expect("keys.json is JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).expect("string member")
}

fn seed(hex: &str) -> [u8; 32] {
    assert_eq!(hex.len(), 64);
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn tenant() -> TenantKey {
    let doc = keys_vector();
    TenantKey::from_seed(seed(s(doc.get("tenant").expect("tenant"), "seed_hex")))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

fn pem_error(text: &str) -> PemError {
    TenantKey::from_pem(text).expect_err("must be refused")
}

fn load_error(path: &Path) -> KeyError {
    keys::load(path).expect_err("must be refused")
}

// ---------------------------------------------------------------------------
// Vectors.

#[test]
fn all_vector_seeds_give_their_public_keys() {
    let doc = keys_vector();
    let mut pairs = vec![
        doc.get("tenant").expect("tenant"),
        doc.get("coordinator").expect("coord"),
    ];
    pairs.extend(
        doc.get("workers")
            .and_then(Value::as_array)
            .expect("workers"),
    );
    assert_eq!(pairs.len(), 5);
    for pair in pairs {
        let key = TenantKey::from_seed(seed(s(pair, "seed_hex")));
        assert_eq!(key.public_hex(), s(pair, "pubkey_hex"));
        assert_eq!(hex_lower(&key.public_bytes()), s(pair, "pubkey_hex"));
        assert_eq!(key.verifying_key().to_bytes(), key.public_bytes());
    }
}

#[test]
fn tenant_pem_text_is_exact_and_round_trips() {
    let doc = keys_vector();
    let t = doc.get("tenant").expect("tenant");
    let key = tenant();
    let pem = key.to_pem();
    assert_eq!(pem, s(t, "pkcs8_pem_text"));
    let back = TenantKey::from_pem(&pem).expect("own PEM loads");
    assert_eq!(back.public_hex(), s(t, "pubkey_hex"));
    assert_eq!(
        hex_lower(
            &TenantKey::from_pem(s(t, "pkcs8_pem_text"))
                .expect("vector")
                .public_bytes()
        ),
        s(t, "pubkey_hex")
    );
    let der = seed_der(s(t, "pkcs8_der_hex"));
    assert_eq!(
        TenantKey::from_pkcs8_der(&der).expect("der").public_hex(),
        s(t, "pubkey_hex")
    );
    // Debug never shows the secret.
    let debug = format!("{key:?}");
    assert!(debug.contains(s(t, "pubkey_hex")));
    assert!(!debug.contains(&s(t, "seed_hex")[..16]));
}

fn seed_der(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn signatures_are_rfc8032() {
    // RFC 8032 §7.1 tests 1 and 2 (the tenant and coordinator seeds).
    let doc = keys_vector();
    let coordinator = TenantKey::from_seed(seed(s(
        doc.get("coordinator").expect("coordinator"),
        "seed_hex",
    )));
    assert_eq!(
        hex_lower(&tenant().sign(b"")),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
    assert_eq!(
        hex_lower(&coordinator.sign(&[0x72])),
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    );
}

#[test]
fn generated_keys_differ_and_round_trip() {
    let a = TenantKey::generate().expect("rng");
    let b = TenantKey::generate().expect("rng");
    assert_ne!(a.public_hex(), b.public_hex());
    let back = TenantKey::from_pem(&a.to_pem()).expect("round trip");
    assert_eq!(back.public_hex(), a.public_hex());
    assert_eq!(back.sign(b"m"), a.sign(b"m"));
    assert_eq!(a.public_hex().len(), 64);
    assert!(
        a.public_hex()
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    );
}

// ---------------------------------------------------------------------------
// PEM acceptance.

#[test]
fn lenient_pem_forms_are_accepted() {
    let pem = tenant().to_pem();
    let want = tenant().public_hex();
    let variants = [
        pem.replace('\n', "\r\n"),
        format!("Bag Attributes\n  friendlyName: tenant\n{pem}"),
        format!("{}\n\n", pem.trim_end()),
        pem.trim_end().to_owned(),
        // A certificate (or any other block) before the key is skipped.
        format!("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n{pem}"),
        // Base64 split differently.
        pem.replace("MC4CAQAwBQYDK2Vw", "MC4CAQAw\nBQYDK2Vw"),
    ];
    for text in variants {
        assert_eq!(TenantKey::from_pem(&text).expect(&text).public_hex(), want);
    }
}

#[test]
fn pkcs8_v2_with_public_key() {
    let key = tenant();
    let mut der = vec![
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed(s(
        keys_vector().get("tenant").expect("t"),
        "seed_hex",
    )));
    der.extend_from_slice(&[0x81, 0x21, 0x00]);
    der.extend_from_slice(&key.public_bytes());
    assert_eq!(
        TenantKey::from_pkcs8_der(&der)
            .expect("v2 loads")
            .public_hex(),
        key.public_hex()
    );
    // Another key's public half: refused.
    let other = TenantKey::from_seed([7u8; 32]).public_bytes();
    let n = der.len();
    der[n - 32..].copy_from_slice(&other);
    assert_eq!(
        TenantKey::from_pkcs8_der(&der).expect_err("mismatch"),
        PemError::PublicKeyMismatch
    );
}

#[test]
fn openssl_ed25519_key_loads() {
    let key = keys::load(&fixture("ed25519_openssl.pem")).expect("openssl key loads");
    assert_eq!(
        key.public_hex(),
        "2fa8297ffaa078ef405876d31e85709d62907c85d9625cf56bb75e4c65c2e6eb"
    );
    // Re-encoded exactly like the file (OpenSSL writes the same v1 form).
    assert_eq!(
        key.to_pem(),
        fs::read_to_string(fixture("ed25519_openssl.pem")).expect("read")
    );
}

// ---------------------------------------------------------------------------
// Refusals.

#[test]
fn wrong_algorithms_are_named() {
    for (file, name, oid) in [
        ("ec_p256_pkcs8.pem", "EC", Some("1.2.840.10045.2.1")),
        ("rsa_2048_pkcs8.pem", "RSA", Some("1.2.840.113549.1.1.1")),
        ("x25519_pkcs8.pem", "X25519", Some("1.3.101.110")),
        ("ed448_pkcs8.pem", "Ed448", Some("1.3.101.113")),
        ("ec_p256_traditional.pem", "EC", None),
    ] {
        let path = fixture(file);
        match load_error(&path) {
            KeyError::Invalid {
                path: p,
                source: PemError::WrongAlgorithm { found },
            } => {
                assert_eq!(p, path);
                assert!(found.starts_with(name), "{file}: {found}");
                if let Some(oid) = oid {
                    assert!(found.contains(oid), "{file}: {found}");
                }
                let message = PemError::WrongAlgorithm { found }.to_string();
                assert!(message.starts_with("expected an Ed25519 private key, found "));
            }
            other => panic!("{file}: unexpected {other:?}"),
        }
    }
}

#[test]
fn encrypted_public_and_other_blocks_are_refused_clearly() {
    let encrypted = fixture("ed25519_encrypted_pkcs8.pem");
    assert!(matches!(
        load_error(&encrypted),
        KeyError::Invalid {
            source: PemError::Encrypted,
            ..
        }
    ));
    let public = fixture("ed25519_public.pem");
    assert!(matches!(
        load_error(&public),
        KeyError::Invalid { source: PemError::PublicKey { label }, .. } if label == "PUBLIC KEY"
    ));
    let traditional_encrypted = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    assert!(matches!(
        pem_error(traditional_encrypted),
        PemError::WrongAlgorithm { found } if found == "RSA"
    ));
    let pkcs8_with_header = tenant()
        .to_pem()
        .replace("KEY-----\n", "KEY-----\nProc-Type: 4,ENCRYPTED\n\n");
    assert_eq!(pem_error(&pkcs8_with_header), PemError::Encrypted);
    assert_eq!(
        pem_error(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n"
        ),
        PemError::OpenSsh
    );
    assert_eq!(
        pem_error("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        PemError::PublicKey {
            label: "CERTIFICATE".into()
        }
    );
    assert_eq!(
        pem_error("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"),
        PemError::UnsupportedLabel {
            label: "X509 CRL".into()
        }
    );
}

#[test]
fn malformed_texts() {
    assert_eq!(pem_error(""), PemError::Empty);
    assert_eq!(pem_error(" \n\t\n"), PemError::Empty);
    assert_eq!(pem_error("hello, I am not a key\n"), PemError::NotPem);
    // A raw hex seed (a plausible mistake) is not PEM either.
    assert_eq!(
        pem_error("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n"),
        PemError::NotPem
    );
    let pem = tenant().to_pem();
    assert_eq!(
        pem_error(pem.trim_end().trim_end_matches("-----END PRIVATE KEY-----")),
        PemError::Unterminated {
            label: "PRIVATE KEY".into()
        }
    );
    assert_eq!(pem_error(&pem.replace("MC4C", "M*4C")), PemError::Base64);
    // Valid base64 of a truncated DER.
    let truncated =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v\n-----END PRIVATE KEY-----\n";
    assert!(matches!(pem_error(truncated), PemError::Malformed { .. }));
    // Ed25519 OID with a wrong inner length.
    let mut der = seed_der("302e020100300506032b657004220420");
    der.extend_from_slice(&[1u8; 32]);
    der[15] = 0x1f;
    assert!(matches!(
        TenantKey::from_pkcs8_der(&der),
        Err(PemError::Malformed { .. })
    ));
}

#[test]
fn load_errors_carry_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");

    let missing = dir.path().join("nope/tenant_key");
    assert!(matches!(load_error(&missing), KeyError::NotFound { path } if path == missing));
    let message = load_error(&missing).to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );

    assert!(matches!(
        load_error(dir.path()),
        KeyError::NotAFile { path } if path == dir.path()
    ));

    let empty = dir.path().join("empty");
    fs::write(&empty, b"").expect("write");
    assert!(matches!(
        load_error(&empty),
        KeyError::Invalid { path, source: PemError::Empty } if path == empty
    ));

    let binary = dir.path().join("binary");
    fs::write(&binary, [0xff, 0xfe, 0x00, 0x80]).expect("write");
    assert!(matches!(load_error(&binary), KeyError::NotUtf8 { path } if path == binary));

    let ok = dir.path().join("ok");
    fs::write(&ok, tenant().to_pem()).expect("write");
    assert_eq!(
        keys::load(&ok).expect("loads").public_hex(),
        tenant().public_hex()
    );
}

#[test]
fn huge_files_are_refused_without_reading_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let huge = dir.path().join("huge");
    let file = fs::File::create(&huge).expect("create");
    file.set_len(100 * 1024 * 1024).expect("sparse 100 MB");
    drop(file);
    let started = Instant::now();
    let err = load_error(&huge);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(matches!(
        err,
        KeyError::TooLarge { ref path, limit } if *path == huge && limit == MAX_KEY_FILE_BYTES
    ));
    // Exactly at the limit: read (and refused for what it is, not its size).
    let at_limit = dir.path().join("at_limit");
    fs::write(&at_limit, vec![b' '; MAX_KEY_FILE_BYTES as usize]).expect("write");
    assert!(matches!(
        load_error(&at_limit),
        KeyError::Invalid {
            source: PemError::Empty,
            ..
        }
    ));
    let over = dir.path().join("over");
    fs::write(&over, vec![b' '; MAX_KEY_FILE_BYTES as usize + 1]).expect("write");
    assert!(matches!(load_error(&over), KeyError::TooLarge { .. }));
}

#[cfg(unix)]
#[test]
fn special_files_are_refused_without_blocking() {
    let zero = Path::new("/dev/zero");
    if zero.exists() {
        assert!(matches!(load_error(zero), KeyError::NotAFile { .. }));
    }
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("key");
    fs::write(&path, tenant().to_pem()).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).expect("chmod");
    if fs::read(&path).is_ok() {
        return; // running as root: permissions do not apply
    }
    assert!(matches!(load_error(&path), KeyError::PermissionDenied { path: p } if p == path));
}

// ---------------------------------------------------------------------------
// Saving.

#[cfg(unix)]
#[test]
fn save_creates_private_dirs_and_file() {
    let home = tempfile::tempdir().expect("tempdir");
    let path = default_key_path(home.path());
    keys::save(&tenant(), &path, false).expect("save");
    assert_eq!(
        fs::read_to_string(&path).expect("read"),
        s(keys_vector().get("tenant").expect("t"), "pkcs8_pem_text")
    );
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&home.path().join(".config")), 0o700);
    assert_eq!(mode(path.parent().expect("parent")), 0o700);
    // No temporary file left beside it.
    assert_eq!(entries(path.parent().expect("parent")), ["tenant_key"]);
    assert_eq!(
        keys::load(&path).expect("loads").public_hex(),
        tenant().public_hex()
    );
}

#[cfg(unix)]
#[test]
fn existing_parent_directories_keep_their_mode() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join(".config");
    fs::create_dir(&config).expect("mkdir");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = default_key_path(home.path());
    keys::save(&tenant(), &path, false).expect("save");
    assert_eq!(mode(&config), 0o755);
    assert_eq!(mode(path.parent().expect("parent")), 0o700);
}

#[test]
fn save_refuses_to_overwrite_unless_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("key");
    let first = TenantKey::generate().expect("rng");
    keys::save(&first, &path, false).expect("first save");

    let second = TenantKey::generate().expect("rng");
    match keys::save(&second, &path, false) {
        Err(KeyError::Exists { path: p }) => assert_eq!(p, path),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        keys::load(&path).expect("still the first").public_hex(),
        first.public_hex()
    );
    assert_eq!(entries(dir.path()), ["key"]);

    keys::save(&second, &path, true).expect("overwrite");
    assert_eq!(
        keys::load(&path).expect("now the second").public_hex(),
        second.public_hex()
    );
    assert_eq!(entries(dir.path()), ["key"]);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
}

#[cfg(unix)]
#[test]
fn save_refuses_a_dangling_symlink_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("key");
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), &path).expect("symlink");
    assert!(matches!(
        keys::save(&tenant(), &path, false),
        Err(KeyError::Exists { .. })
    ));
    assert!(!dir.path().join("elsewhere").exists());
}

#[test]
fn failed_save_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The target is a directory: the rename fails after the temp file exists.
    let path = dir.path().join("key");
    fs::create_dir(&path).expect("mkdir");
    fs::write(path.join("inside"), b"x").expect("write");
    match keys::save(&tenant(), &path, true) {
        Err(KeyError::Write { path: p, .. }) => assert_eq!(p, path),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(entries(dir.path()), ["key"]);
    assert_eq!(entries(&path), ["inside"]);

    // A parent that is a file: directory creation fails.
    fs::write(dir.path().join("file"), b"x").expect("write");
    let under_file = dir.path().join("file/key");
    assert!(matches!(
        keys::save(&tenant(), &under_file, false),
        Err(KeyError::Write {
            source: AtomicWriteError::CreateDir { .. },
            ..
        })
    ));
}

/// With a umask of 0 every file and directory would be created world-writable
/// unless its mode says otherwise: the key must still be 0600 and never be
/// observed with wider permissions, and the directories 0700. One test, so the
/// process-wide umask change is not interleaved with another umask test.
#[cfg(unix)]
#[test]
fn permissions_do_not_depend_on_the_umask() {
    use rustix::fs::Mode;
    use rustix::process::umask;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join(".config/auspexai-tenant");
    let previous = umask(Mode::empty());

    let result = std::panic::catch_unwind(|| {
        let path = default_key_path(home.path());
        keys::save(&tenant(), &path, false).expect("save");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&home.path().join(".config")), 0o700);
        assert_eq!(mode(&dir), 0o700);

        // Watch the directory while keys are rewritten: every entry ever seen
        // (the final file and the temporary ones) is 0600.
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let stop = Arc::clone(&stop);
            let dir = dir.clone();
            std::thread::spawn(move || {
                use std::os::unix::fs::PermissionsExt;
                let mut seen = 0usize;
                let mut wider = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(list) = fs::read_dir(&dir) else {
                        continue;
                    };
                    for entry in list.flatten() {
                        if let Ok(meta) = entry.metadata() {
                            seen += 1;
                            let m = meta.permissions().mode() & 0o777;
                            if m != 0o600 {
                                wider.push((entry.file_name(), m));
                            }
                        }
                    }
                }
                (seen, wider)
            })
        };
        for _ in 0..200 {
            keys::save(&TenantKey::from_seed([9u8; 32]), &path, true).expect("overwrite");
        }
        stop.store(true, Ordering::Relaxed);
        let (seen, wider) = watcher.join().expect("watcher");
        assert!(seen > 0);
        assert!(wider.is_empty(), "entries seen with other modes: {wider:?}");
        assert_eq!(entries(&dir), ["tenant_key"]);
    });
    umask(previous);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

// ---------------------------------------------------------------------------
// The atomic writer on its own.

#[cfg(unix)]
#[test]
fn write_atomic_modes_and_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sig = dir.path().join("manifest.json.sig");
    atomic::write_atomic(&sig, b"one", 0o644).expect("write");
    assert_eq!(fs::read(&sig).expect("read"), b"one");
    assert_eq!(mode(&sig), 0o644);
    atomic::write_atomic(&sig, b"two", 0o600).expect("replace");
    assert_eq!(fs::read(&sig).expect("read"), b"two");
    assert_eq!(mode(&sig), 0o600);

    assert!(matches!(
        atomic::write_atomic_new(&sig, b"three", 0o600),
        Err(AtomicWriteError::Exists { path }) if path == sig
    ));
    assert_eq!(fs::read(&sig).expect("read"), b"two");
    let fresh = dir.path().join("fresh");
    atomic::write_atomic_new(&fresh, b"new", 0o640).expect("new file");
    assert_eq!(mode(&fresh), 0o640);
    assert_eq!(entries(dir.path()), ["fresh", "manifest.json.sig"]);

    // A missing parent is an error (only `keys::save` creates directories).
    let orphan = dir.path().join("no/such/dir/file");
    assert!(matches!(
        atomic::write_atomic(&orphan, b"x", 0o600),
        Err(AtomicWriteError::Write { .. })
    ));
    assert!(matches!(
        atomic::write_atomic(Path::new("/"), b"x", 0o600),
        Err(AtomicWriteError::NoFileName { .. })
    ));
    assert_eq!(entries(dir.path()), ["fresh", "manifest.json.sig"]);
}

// ---------------------------------------------------------------------------
// Default paths.

#[test]
fn default_and_legacy_paths() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    assert_eq!(
        default_key_path(h),
        h.join(".config").join("auspexai-tenant").join("tenant_key")
    );
    assert_eq!(
        legacy_key_path(h),
        h.join(".config")
            .join("auspexai-tenant")
            .join("maintainer_key")
    );
    let neither = resolve_key_for_reading(h);
    assert_eq!(
        neither,
        ResolvedKey {
            path: default_key_path(h),
            fell_back_to_legacy: false
        }
    );

    keys::save(&tenant(), &legacy_key_path(h), false).expect("save legacy");
    let legacy = resolve_key_for_reading(h);
    assert_eq!(
        legacy,
        ResolvedKey {
            path: legacy_key_path(h),
            fell_back_to_legacy: true
        }
    );

    keys::save(&tenant(), &default_key_path(h), false).expect("save new");
    assert_eq!(
        resolve_key_for_reading(h),
        ResolvedKey {
            path: default_key_path(h),
            fell_back_to_legacy: false
        }
    );
}

// ---------------------------------------------------------------------------
// Interop with the official SDK 0.5.5.

/// The interpreter of the 0.5.5 SDK venv: `$AUSPEX_PYTHON_055`, else
/// `<workspace>/target/py-0.5.5/bin/python`. Missing → the test fails (it is
/// never skipped silently) unless `AUSPEX_SKIP_INTEROP=1`.
#[allow(clippy::print_stderr)]
fn python_055() -> Option<PathBuf> {
    let path = std::env::var_os("AUSPEX_PYTHON_055")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-0.5.5/bin/python")
        });
    if path.exists() {
        return Some(path);
    }
    if std::env::var("AUSPEX_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED interop with auspexai-tenant 0.5.5: {} missing and AUSPEX_SKIP_INTEROP=1",
            path.display()
        );
        return None;
    }
    panic!(
        "the auspexai-tenant 0.5.5 interpreter {} does not exist; create it with \
         `bash scripts/python-peers.sh` (or point AUSPEX_PYTHON_055 at one), \
         or set AUSPEX_SKIP_INTEROP=1 to skip the interop tests",
        path.display()
    );
}

#[test]
fn interop_with_sdk_0_5_5() {
    let Some(python) = python_055() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = dir.path().join("ours/tenant_key");
    let theirs = dir.path().join("theirs/maintainer_key");
    let key = TenantKey::generate().expect("rng");
    keys::save(&key, &ours, false).expect("save");

    let script = r#"
import sys
from pathlib import Path
from auspexai_tenant.signing import MaintainerKey
k = MaintainerKey.load(Path(sys.argv[1]))
print(k.pubkey_hex)
print(k.sign(b"auspex interop").hex())
g = MaintainerKey.generate()
g.save(Path(sys.argv[2]))
print(g.pubkey_hex)
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&ours)
        .arg(&theirs)
        .output()
        .expect("run the 0.5.5 interpreter");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");

    // The SDK reads our file as the same key, and signs identically.
    assert_eq!(lines[0], key.public_hex());
    assert_eq!(lines[1], hex_lower(&key.sign(b"auspex interop")));

    // We read the SDK's file as the same key, and would write the same bytes.
    let loaded = keys::load(&theirs).expect("SDK-written key loads");
    assert_eq!(loaded.public_hex(), lines[2]);
    assert_eq!(
        loaded.to_pem(),
        fs::read_to_string(&theirs).expect("read SDK file")
    );
}
