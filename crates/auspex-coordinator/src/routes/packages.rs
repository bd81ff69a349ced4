//! Executor packages (`coordinator.md` §13.7, `tenant-sdk.md` §3i, §10):
//! `POST /packages` (0.6.67 `package upload`, researcher) and
//! `GET /packages/{digest}`, `GET /packages/by-manifest/{manifest_sha256}`
//! (workers).
//!
//! An upload is a `.tar.gz` body (≤ 64 MiB, exempt from the 2 MiB cap). It
//! is read in memory — never extracted to disk — with a strict tar reader:
//! regular files and directories only, relative paths without `..`
//! (400 `unsafe_package` otherwise; 400 `invalid_package` for a malformed
//! archive). The package digest is recomputed over its files exactly as
//! `compute_package_digest` walks a directory (component-wise path order,
//! top-level `manifest.json`/`manifest.json.sig`, `*.pyc` and `__pycache__`
//! excluded) and must equal `X-Package-Digest` (422 `digest_mismatch`).
//!
//! `by-manifest` answers a new gzip tar (gzip mtime 0) with the stored
//! members followed by `manifest.json` and `manifest.json.sig`, each the
//! stored JSON with sorted keys and compact separators — so the worker's
//! re-hash of `manifest.json` is the dispatched `manifest_sha256`.

use std::io::{Read as _, Write as _};

use auspex_wire::json::{self, Value};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use rusqlite::{OptionalExtension as _, params};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::{Credential, RawRequest, forbidden};
use crate::db::ApiResult;
use crate::error::{ApiError, json_response};
use crate::util::{Obj, is_hex64_lower, iso_now, parse_stored};

/// Largest package upload (64 MiB).
pub const MAX_PACKAGE_BYTES: usize = 64 * 1024 * 1024;
/// Largest decompressed archive accepted (a gzip bomb guard).
pub const MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Relative POSIX path, without `./` or a trailing `/`.
    pub path: String,
    /// `None` for a directory.
    pub data: Option<Vec<u8>>,
}

/// Why an archive was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Not gzip, not tar, truncated, too big unpacked, duplicate members.
    #[error("invalid package archive: {0}")]
    Invalid(String),
    /// A member that could escape the package or is not a plain file or
    /// directory.
    #[error("unsafe package archive: {0}")]
    Unsafe(String),
}

fn octal(field: &[u8]) -> Option<u64> {
    // GNU base-256 for large values.
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            n = n.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(n);
    }
    let text = std::str::from_utf8(field).ok()?;
    let t = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if t.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(t, 8).ok()
}

fn cstr(field: &[u8]) -> Result<String, ArchiveError> {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8(field[..end].to_vec())
        .map_err(|_| ArchiveError::Invalid("member name is not UTF-8".into()))
}

fn clean_path(raw: &str) -> Result<Option<String>, ArchiveError> {
    if raw.starts_with('/') {
        return Err(ArchiveError::Unsafe(format!("absolute path {raw:?}")));
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(ArchiveError::Unsafe(format!(
                    "path {raw:?} leaves the package"
                )));
            }
            c if c.contains('\\') || c.contains('\0') => {
                return Err(ArchiveError::Unsafe(format!("path {raw:?}")));
            }
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn pax_records(data: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(sp) = rest.iter().position(|b| *b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp || len > rest.len() {
            break;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|b| *b == b'=') {
            out.push((
                String::from_utf8_lossy(&rec[..eq]).into_owned(),
                String::from_utf8_lossy(&rec[eq + 1..]).into_owned(),
            ));
        }
        rest = &rest[len..];
    }
    out
}

/// Reads a gzip'd tar strictly (see the module docs).
pub fn read_archive(gz: &[u8]) -> Result<Vec<Member>, ArchiveError> {
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .take(MAX_UNPACKED_BYTES + 1)
        .read_to_end(&mut tar)
        .map_err(|e| ArchiveError::Invalid(format!("gzip: {e}")))?;
    if tar.len() as u64 > MAX_UNPACKED_BYTES {
        return Err(ArchiveError::Invalid(
            "archive unpacks to more than 256 MiB".into(),
        ));
    }
    let mut members: Vec<Member> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut pos = 0usize;
    let mut long_name: Option<String> = None;
    let mut pax_path: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    loop {
        let Some(h) = tar.get(pos..pos + 512) else {
            return Err(ArchiveError::Invalid(
                "truncated archive (no end marker)".into(),
            ));
        };
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(*b)
                }
            })
            .sum();
        if octal(&h[148..156]) != Some(sum) {
            return Err(ArchiveError::Invalid("bad header checksum".into()));
        }
        let size = match pax_size.take() {
            Some(s) => s,
            None => octal(&h[124..136])
                .ok_or_else(|| ArchiveError::Invalid("bad member size".into()))?,
        };
        let size =
            usize::try_from(size).map_err(|_| ArchiveError::Invalid("member too large".into()))?;
        let start = pos + 512;
        let data = tar
            .get(start..start.saturating_add(size))
            .ok_or_else(|| ArchiveError::Invalid("truncated member".into()))?;
        pos = start + size.div_ceil(512) * 512;
        let kind = h[156];
        match kind {
            b'x' => {
                for (k, v) in pax_records(data) {
                    match k.as_str() {
                        "path" => pax_path = Some(v),
                        "size" => {
                            pax_size = Some(
                                v.parse()
                                    .map_err(|_| ArchiveError::Invalid("bad PAX size".into()))?,
                            );
                        }
                        _ => {}
                    }
                }
                continue;
            }
            b'g' => continue,
            b'L' => {
                long_name = Some(cstr(data)?);
                continue;
            }
            _ => {}
        }
        let name = match (pax_path.take(), long_name.take()) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => {
                let name = cstr(&h[0..100])?;
                let prefix = if &h[257..262] == b"ustar" {
                    cstr(&h[345..500])?
                } else {
                    String::new()
                };
                if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                }
            }
        };
        let Some(path) = clean_path(&name)? else {
            continue;
        };
        let data = match kind {
            b'0' | 0 | b'7' => Some(data.to_vec()),
            b'5' => None,
            b'1' | b'2' => {
                return Err(ArchiveError::Unsafe(format!("{path:?} is a link")));
            }
            other => {
                return Err(ArchiveError::Unsafe(format!(
                    "{path:?} has member type {:?}",
                    other as char
                )));
            }
        };
        if !seen.insert(path.clone()) {
            return Err(ArchiveError::Invalid(format!("{path:?} appears twice")));
        }
        members.push(Member { path, data });
    }
    Ok(members)
}

fn excluded(path: &str) -> bool {
    path == "manifest.json"
        || path == "manifest.json.sig"
        || path.ends_with(".pyc")
        || path.split('/').any(|c| c == "__pycache__")
}

/// `compute_package_digest` over the files of an archive.
pub fn digest(members: &[Member]) -> String {
    let mut files: Vec<(Vec<&str>, &Member)> = members
        .iter()
        .filter(|m| m.data.is_some() && !excluded(&m.path))
        .map(|m| (m.path.split('/').collect(), m))
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let lines: Vec<String> = files
        .iter()
        .map(|(_, m)| {
            format!(
                "{}\0{}",
                m.path,
                auspex_wire::sha256_hex(m.data.as_deref().unwrap_or_default())
            )
        })
        .collect();
    auspex_wire::hex_lower(&Sha256::digest(lines.join("\n").as_bytes()))
}

fn octal_field(out: &mut [u8], n: u64) {
    let width = out.len() - 1;
    let s = format!("{n:0width$o}");
    let bytes = s.as_bytes();
    let take = bytes.len().min(width);
    out[..take].copy_from_slice(&bytes[bytes.len() - take..]);
    out[width] = 0;
}

fn header(name: &[u8], size: u64, dir: bool) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal_field(&mut h[100..108], if dir { 0o755 } else { 0o644 });
    octal_field(&mut h[108..116], 0);
    octal_field(&mut h[116..124], 0);
    octal_field(&mut h[124..136], size);
    octal_field(&mut h[136..148], 0);
    h[156] = if dir { b'5' } else { b'0' };
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

fn pax_header(path: &str) -> Vec<u8> {
    let body = |len: usize| format!("{len} path={path}\n");
    let mut len = body(0).len();
    while body(len).len() != len {
        len = body(len).len();
    }
    let data = body(len).into_bytes();
    let mut out = header(b"././@PaxHeader", data.len() as u64, false).to_vec();
    out[156] = b'x';
    // Recompute the checksum after changing the type flag.
    out[148..156].copy_from_slice(b"        ");
    let sum: u64 = out.iter().map(|b| u64::from(*b)).sum();
    out[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A PAX/ustar tar of `members`, gzip'd with mtime 0.
pub fn write_archive(members: &[Member]) -> std::io::Result<Vec<u8>> {
    let mut tar = Vec::new();
    for m in members {
        let dir = m.data.is_none();
        let name = if dir {
            format!("{}/", m.path)
        } else {
            m.path.clone()
        };
        if name.len() > 100 || !name.is_ascii() {
            tar.extend_from_slice(&pax_header(&name));
        }
        let data = m.data.as_deref().unwrap_or_default();
        tar.extend_from_slice(&header(name.as_bytes(), data.len() as u64, dir));
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    tar.resize(tar.len().div_ceil(10_240) * 10_240, 0);
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar)?;
    gz.finish()
}

fn err(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
    details: Obj,
) -> ApiError {
    ApiError::with(status, code, message, details)
}

/// `POST /packages` (researcher): 201 `stored` / 200 `already_exists`.
pub fn upload(state: &AppState, cred: &Credential, req: &RawRequest) -> ApiResult<Response> {
    let Some(tenant) = cred.tenant_id() else {
        return Err(forbidden(
            "researcher_required",
            "a researcher credential is required",
            cred,
        ));
    };
    let ctype = req.header("content-type").map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if !matches!(
        ctype.as_deref(),
        Some("application/gzip" | "application/x-gzip")
    ) {
        return Err(err(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the package body must be application/gzip",
            Obj::new().set("content_type", ctype.map_or(Value::Null, Value::from)),
        ));
    }
    let claimed = req
        .header("x-package-digest")
        .unwrap_or("")
        .trim()
        .to_owned();
    if !is_hex64_lower(&claimed) {
        return Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_package_digest_header",
            "X-Package-Digest must be 64 lowercase hex characters",
            Obj::new(),
        ));
    }
    let members = read_archive(&req.body).map_err(|e| match e {
        ArchiveError::Unsafe(m) => err(StatusCode::BAD_REQUEST, "unsafe_package", m, Obj::new()),
        ArchiveError::Invalid(m) => err(StatusCode::BAD_REQUEST, "invalid_package", m, Obj::new()),
    })?;
    let computed = digest(&members);
    if computed != claimed {
        return Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "digest_mismatch",
            "X-Package-Digest does not match the archive's package digest",
            Obj::new()
                .set("claimed", claimed)
                .set("computed", computed.as_str()),
        ));
    }
    let size = req.body.len() as u64;
    let conn = state.db().lock();
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO packages (digest, tenant_id, size_bytes, archive, uploaded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![computed, tenant, size as i64, req.body.as_ref(), iso_now()],
    )?;
    drop(conn);
    let (status, label) = if inserted == 1 {
        state.publish(
            None,
            [(
                "package.uploaded",
                Obj::new()
                    .set("digest", computed.as_str())
                    .set("tenant_id", tenant)
                    .build(),
            )],
        );
        (StatusCode::CREATED, "stored")
    } else {
        (StatusCode::OK, "already_exists")
    };
    Ok(json_response(
        status,
        &Obj::new()
            .set("digest", computed.as_str())
            .set("package_digest", computed.as_str())
            .set("size_bytes", size)
            .set("status", label)
            .build(),
    ))
}

fn worker_only(cred: &Credential) -> ApiResult<()> {
    if matches!(cred, Credential::Worker { .. }) {
        Ok(())
    } else {
        Err(forbidden(
            "worker_required",
            "a worker credential is required",
            cred,
        ))
    }
}

fn package_not_found(what: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "package_not_found",
        format!("no package for {what}"),
        Obj::new(),
    )
}

fn gzip_response(bytes: Vec<u8>, filename: &str) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

fn load_archive(conn: &rusqlite::Connection, digest: &str) -> ApiResult<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            "SELECT archive FROM packages WHERE digest = ?1",
            params![digest],
            |r| r.get(0),
        )
        .optional()?)
}

/// `GET /packages/{digest}` (worker): the archive as uploaded.
pub fn get(state: &AppState, cred: &Credential, digest: &str) -> ApiResult<Response> {
    worker_only(cred)?;
    let digest = digest.to_ascii_lowercase();
    if !is_hex64_lower(&digest) {
        return Err(package_not_found(&digest));
    }
    let conn = state.db().lock();
    let bytes = load_archive(&conn, &digest)?.ok_or_else(|| package_not_found(&digest))?;
    Ok(gzip_response(bytes, &format!("{digest}.tar.gz")))
}

/// `GET /packages/by-manifest/{manifest_sha256}` (worker).
pub fn by_manifest(state: &AppState, cred: &Credential, hash: &str) -> ApiResult<Response> {
    worker_only(cred)?;
    let hash = hash.to_ascii_lowercase();
    if !is_hex64_lower(&hash) {
        return Err(package_not_found(&hash));
    }
    let conn = state.db().lock();
    let stored: Option<(String, String)> = conn
        .query_row(
            "SELECT manifest_json, signature_json FROM manifests WHERE manifest_hash = ?1",
            params![hash],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (manifest, signature) = stored.ok_or_else(|| package_not_found(&hash))?;
    let manifest = parse_stored(&manifest);
    let pin = manifest
        .get("executor")
        .and_then(|x| x.get("package_sha256"))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .filter(|p| is_hex64_lower(p))
        .ok_or_else(|| package_not_found(&hash))?;
    let archive = load_archive(&conn, &pin)?.ok_or_else(|| package_not_found(&pin))?;
    drop(conn);
    let mut members = read_archive(&archive)
        .map_err(|e| ApiError::Internal(format!("stored package {pin}: {e}")))?;
    members.retain(|m| m.path != "manifest.json" && m.path != "manifest.json.sig");
    members.push(Member {
        path: "manifest.json".into(),
        data: Some(json::canonical(&manifest).into_bytes()),
    });
    members.push(Member {
        path: "manifest.json.sig".into(),
        data: Some(json::canonical(&parse_stored(&signature)).into_bytes()),
    });
    let bytes =
        write_archive(&members).map_err(|e| ApiError::Internal(format!("package archive: {e}")))?;
    Ok(gzip_response(bytes, &format!("{pin}.tar.gz")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_round_trip_and_digest_match_the_sdk_walk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("a-b")).expect("mkdir");
        std::fs::create_dir_all(root.join("a")).expect("mkdir");
        std::fs::write(root.join("a/b"), b"one").expect("write");
        std::fs::write(root.join("a-b/x"), b"two").expect("write");
        std::fs::write(root.join("run.py"), b"print(1)\n").expect("write");
        std::fs::write(root.join("manifest.json"), b"{}").expect("write");
        let built = auspex_wire::package::build_package_archive(root).expect("archive");
        let members = read_archive(&built.bytes).expect("read");
        assert_eq!(digest(&members), built.digest.sha256);
        let again = read_archive(&write_archive(&members).expect("write")).expect("re-read");
        assert_eq!(again, members);
        let long = Member {
            path: format!("{}/f.txt", "d".repeat(120)),
            data: Some(b"x".to_vec()),
        };
        let back =
            read_archive(&write_archive(std::slice::from_ref(&long)).expect("w")).expect("r");
        assert_eq!(back, vec![long]);
    }

    #[test]
    fn unsafe_members_are_refused() {
        assert!(matches!(clean_path("../x"), Err(ArchiveError::Unsafe(_))));
        assert!(matches!(clean_path("/etc/x"), Err(ArchiveError::Unsafe(_))));
        assert_eq!(clean_path("./a//b").expect("ok"), Some("a/b".into()));
        assert!(matches!(
            read_archive(b"not gzip"),
            Err(ArchiveError::Invalid(_))
        ));
    }
}
