//! Experiments: manifest upload (`coordinator.md` §3.3), the experiment
//! object (§3.4), listing, and the lifecycle actions with the §3.1
//! transition table (§3.2).

use auspex_crypto::manifest::verify_manifest;
use auspex_wire::json::{self, Object, Value};
use auspex_wire::manifest::{ManifestSignature, SdkProfile};
use axum::http::StatusCode;
use axum::response::Response;
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use crate::AppState;
use crate::attestation;
use crate::auth::{Credential, forbidden};
use crate::db::{ApiResult, unique_violation};
use crate::error::{ApiError, json_response};
use crate::keys::CoordinatorKey;
use crate::util::{Obj, iso_now, now_micros, parse_stored, to_json, token_urlsafe};

use super::{Body, query_get};

/// Experiment statuses (§3.1).
pub mod status {
    /// Uploaded, awaiting approval.
    pub const SUBMITTED: &str = "submitted";
    /// Running: units are offered to workers.
    pub const APPROVED: &str = "approved";
    /// Not offered; still accepts units and results.
    pub const PAUSED: &str = "paused";
    /// Stopped by the researcher or a maintainer.
    pub const ABORTED: &str = "aborted";
    /// Finalized and every unit settled.
    pub const COMPLETED: &str = "completed";
    /// Terminal.
    pub const ARCHIVED: &str = "archived";
}

/// The §3.1 transition table.
fn allowed(from: &str, to: &str) -> bool {
    use status::*;
    matches!(
        (from, to),
        (SUBMITTED, APPROVED)
            | (SUBMITTED, ABORTED)
            | (APPROVED, PAUSED)
            | (APPROVED, ABORTED)
            | (APPROVED, COMPLETED)
            | (PAUSED, APPROVED)
            | (PAUSED, ABORTED)
            | (ABORTED, ARCHIVED)
            | (COMPLETED, ARCHIVED)
    )
}

/// One `experiments` row.
#[derive(Debug, Clone)]
// Not every column has a reader yet.
#[allow(dead_code)]
pub struct ExperimentRow {
    /// Registration order.
    pub seq: i64,
    /// `exp-…`.
    pub experiment_id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// `tenant_experiment_label` (= manifest `experiment_id`).
    pub label: String,
    /// Manifest hash.
    pub manifest_hash: String,
    /// Status.
    pub status: String,
    /// Bumped by every transition.
    pub revision: i64,
    /// Upload time.
    pub submitted_at: String,
    /// First approval.
    pub started_at: Option<String>,
    /// First completion or abort.
    pub completed_at: Option<String>,
    /// Last action time.
    pub last_action_at: Option<String>,
    /// Credential class of the last action.
    pub last_action_by_class: Option<String>,
    /// `finalize-submissions` was called.
    pub submissions_finalized: bool,
    /// Maintainer-only note.
    pub error_summary: Option<String>,
    /// `trusted` / `standard` / `high`.
    pub integrity_policy: String,
    /// Replicas per unit.
    pub replication_target: i64,
    /// Minimum agreeing replicas (tolerance reducer).
    pub replication_floor: i64,
    /// Resource bound.
    pub max_unit_duration_seconds: Option<i64>,
    /// Unit cap.
    pub max_units: Option<i64>,
    /// Concurrency cap.
    pub max_concurrent_assignments: Option<i64>,
    /// Payload cap (Python `json.dumps` length).
    pub max_payload_bytes: Option<i64>,
    /// JSON text.
    pub required_capabilities: String,
    /// Manifest `requires_real_execution`.
    pub requires_real_execution: bool,
    /// `reducer.kind` of the manifest.
    pub reducer_kind: String,
    /// Manifest `replication_factor`.
    pub declared_replication_factor: Option<i64>,
    /// Manifest `expected_duration_hours`.
    pub expected_duration_hours: Option<f64>,
    /// Retention hold.
    pub retention_hold: bool,
    /// Export stamp.
    pub results_collected_at: Option<String>,
}

const COLS: &str = "seq, experiment_id, tenant_id, label, manifest_hash, status, revision, \
    submitted_at, started_at, completed_at, last_action_at, last_action_by_class, \
    submissions_finalized, error_summary, integrity_policy, replication_target, \
    replication_floor, max_unit_duration_seconds, max_units, max_concurrent_assignments, \
    max_payload_bytes, required_capabilities, requires_real_execution, reducer_kind, \
    declared_replication_factor, expected_duration_hours, retention_hold, results_collected_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExperimentRow> {
    Ok(ExperimentRow {
        seq: r.get(0)?,
        experiment_id: r.get(1)?,
        tenant_id: r.get(2)?,
        label: r.get(3)?,
        manifest_hash: r.get(4)?,
        status: r.get(5)?,
        revision: r.get(6)?,
        submitted_at: r.get(7)?,
        started_at: r.get(8)?,
        completed_at: r.get(9)?,
        last_action_at: r.get(10)?,
        last_action_by_class: r.get(11)?,
        submissions_finalized: r.get(12)?,
        error_summary: r.get(13)?,
        integrity_policy: r.get(14)?,
        replication_target: r.get(15)?,
        replication_floor: r.get(16)?,
        max_unit_duration_seconds: r.get(17)?,
        max_units: r.get(18)?,
        max_concurrent_assignments: r.get(19)?,
        max_payload_bytes: r.get(20)?,
        required_capabilities: r.get(21)?,
        requires_real_execution: r.get(22)?,
        reducer_kind: r.get(23)?,
        declared_replication_factor: r.get(24)?,
        expected_duration_hours: r.get(25)?,
        retention_hold: r.get(26)?,
        results_collected_at: r.get(27)?,
    })
}

/// Loads an experiment by id.
pub fn load(conn: &Connection, experiment_id: &str) -> rusqlite::Result<Option<ExperimentRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLS} FROM experiments WHERE experiment_id = ?1"
    ))?
    .query_row(params![experiment_id], row)
    .optional()
}

/// Whether `cred` may see `exp` (maintainer, or the owning tenant).
pub fn visible(cred: &Credential, exp: &ExperimentRow) -> bool {
    cred.is_maintainer() || cred.tenant_id() == Some(exp.tenant_id.as_str())
}

/// Loads an experiment the caller may see; 404 `experiment_not_found`
/// otherwise (missing and foreign alike, §11(c)).
pub fn load_visible(
    conn: &Connection,
    cred: &Credential,
    experiment_id: &str,
) -> ApiResult<ExperimentRow> {
    match load(conn, experiment_id)? {
        Some(e) if visible(cred, &e) => Ok(e),
        _ => Err(ApiError::experiment_not_found(experiment_id)),
    }
}

/// The presentation-only `run_phase` (§3.1); `None` for terminal states.
pub(crate) fn run_phase(
    conn: &Connection,
    e: &ExperimentRow,
) -> rusqlite::Result<Option<&'static str>> {
    Ok(Some(match e.status.as_str() {
        status::SUBMITTED => "awaiting_assessment",
        status::PAUSED => "paused",
        status::APPROVED => {
            let (units, pending, completions): (i64, i64, i64) = conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(status = 'pending'), 0), \
                 COALESCE(SUM(completions_so_far), 0) FROM work_units WHERE experiment_id = ?1",
                params![e.experiment_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            if units == 0 {
                let age_old = e
                    .started_at
                    .as_deref()
                    .and_then(crate::util::parse_time)
                    .is_some_and(|t| now_micros() - t.micros > 600_000_000);
                if age_old { "inert" } else { "provisioning" }
            } else if e.submissions_finalized {
                "completing"
            } else if completions > 0 || pending < units {
                "running"
            } else {
                "queued"
            }
        }
        _ => return Ok(None),
    }))
}

/// The experiment object (§3.4, `exclude_none`).
pub fn value(
    conn: &Connection,
    e: &ExperimentRow,
    detail: bool,
    maintainer: bool,
) -> ApiResult<Value> {
    let mut o = Obj::new()
        .set("experiment_id", e.experiment_id.as_str())
        .set("tenant_id", e.tenant_id.as_str())
        .set("status", e.status.as_str())
        .opt("run_phase", run_phase(conn, e)?);
    if detail {
        o = o
            .opt("expected_duration_hours", e.expected_duration_hours)
            .opt("declared_replication_factor", e.declared_replication_factor);
    }
    let caps = parse_stored(&e.required_capabilities);
    let caps_empty = caps.as_object().is_none_or(|c| c.is_empty());
    o = o
        .set("submitted_at", e.submitted_at.as_str())
        .opt("started_at", e.started_at.clone())
        .opt("completed_at", e.completed_at.clone())
        .set("submissions_finalized", e.submissions_finalized)
        .opt("last_action_at", e.last_action_at.clone())
        .opt("last_action_by_class", e.last_action_by_class.clone())
        .set("tenant_experiment_label", e.label.as_str())
        .set("manifest_hash", e.manifest_hash.as_str())
        .set("revision", e.revision)
        .set("integrity_policy", e.integrity_policy.as_str())
        .set("replication_target", e.replication_target)
        .set("replication_floor", e.replication_floor)
        .opt("max_unit_duration_seconds", e.max_unit_duration_seconds)
        .opt("max_units", e.max_units)
        .opt("max_concurrent_assignments", e.max_concurrent_assignments)
        .opt("max_payload_bytes", e.max_payload_bytes)
        .opt("required_capabilities", (!caps_empty).then_some(caps))
        .opt("retention_hold", e.retention_hold.then_some(true))
        .opt("results_collected_at", e.results_collected_at.clone());
    if maintainer {
        o = o.opt("error_summary", e.error_summary.clone());
    }
    Ok(o.build())
}

fn respond(
    conn: &Connection,
    status: StatusCode,
    e: &ExperimentRow,
    cred: &Credential,
) -> ApiResult<Response> {
    Ok(json_response(
        status,
        &value(conn, e, true, cred.is_maintainer())?,
    ))
}

/// `GET /experiments`: maintainer all, researcher own tenant, others `[]`.
pub fn list(state: &AppState, cred: &Credential) -> ApiResult<Response> {
    let conn = state.db().lock();
    let rows: Vec<ExperimentRow> = match cred {
        Credential::Maintainer { .. } => {
            let mut stmt = conn.prepare(&format!("SELECT {COLS} FROM experiments ORDER BY seq"))?;
            stmt.query_map([], row)?.collect::<Result<_, _>>()?
        }
        Credential::Researcher { tenant_id, .. } => {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLS} FROM experiments WHERE tenant_id = ?1 ORDER BY seq"
            ))?;
            stmt.query_map(params![tenant_id], row)?
                .collect::<Result<_, _>>()?
        }
        _ => Vec::new(),
    };
    let mut out = Vec::with_capacity(rows.len());
    for e in &rows {
        out.push(value(&conn, e, false, cred.is_maintainer())?);
    }
    Ok(json_response(
        StatusCode::OK,
        &Obj::new().set("experiments", Value::Array(out)).build(),
    ))
}

/// `GET /experiments/{id}`.
pub fn get(state: &AppState, cred: &Credential, experiment_id: &str) -> ApiResult<Response> {
    let conn = state.db().lock();
    let e = load_visible(&conn, cred, experiment_id)?;
    respond(&conn, StatusCode::OK, &e, cred)
}

fn unprocessable(code: &'static str, message: impl Into<String>, details: Obj) -> ApiError {
    ApiError::with(StatusCode::UNPROCESSABLE_ENTITY, code, message, details)
}

/// `resolve_replication` (§13.3): the tenant floor raises the target; the
/// floor is `min(max(requested or 2, tier floor), target)`.
fn resolve_replication(
    requested_target: i64,
    requested_floor: Option<i64>,
    tier_floor: i64,
) -> (i64, i64) {
    let target = requested_target.max(tier_floor).max(1);
    let floor = requested_floor
        .unwrap_or(2)
        .max(tier_floor)
        .min(target)
        .max(1);
    (target, floor)
}

fn integrity_label(target: i64) -> &'static str {
    if target <= 1 {
        "trusted"
    } else if target <= 3 {
        "standard"
    } else {
        "high"
    }
}

fn int_of(v: Option<&Value>) -> Option<i64> {
    match v {
        Some(Value::Int(i)) => i.as_i64(),
        _ => None,
    }
}

fn num_of(v: Option<&Value>) -> Option<f64> {
    match v {
        Some(Value::Int(i)) => Some(i.to_f64()),
        Some(Value::Float(f)) => Some(*f),
        _ => None,
    }
}

fn violation_strings(v: &auspex_wire::validate::Violations, prefix: Option<&str>) -> Vec<Value> {
    v.0.iter()
        .filter(|x| {
            prefix.is_none_or(|p| {
                matches!(x.path.0.first(), Some(auspex_wire::validate::Segment::Key(k)) if k == p)
            })
        })
        .take(20)
        .map(|x| Value::from(x.to_string()))
        .collect()
}

/// `POST /experiments` (§3.3): every check of the real service in its
/// order, then — where the real service stores the signature unverified —
/// schema validation and manifest-signature verification under the
/// uploading tenant's key (§11(c)), then an atomic manifest + experiment
/// insert.
pub fn create(state: &AppState, cred: &Credential, body: &Body) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let manifest = body.req_obj("manifest", &mut errors);
    let signature = body.req_obj("signature", &mut errors);
    let (Some(manifest), Some(signature)) = (manifest, signature) else {
        return Err(ApiError::Validation(errors));
    };
    let raw = Value::Object(manifest.clone());
    let field = |k: &str| manifest.get(k);

    // 1. tenant_id and experiment_id are non-empty strings.
    let tenant_id = field("tenant_id").and_then(Value::as_str).unwrap_or("");
    let label = field("experiment_id").and_then(Value::as_str).unwrap_or("");
    if tenant_id.is_empty() || label.is_empty() {
        return Err(unprocessable(
            "manifest_malformed",
            "manifest.tenant_id and manifest.experiment_id must be non-empty strings",
            Obj::new(),
        ));
    }
    // 2. (certified profiles: Tier-1 accounts only; the devnet has none.)
    // 3. Authorization: the signer's tenant must be the manifest's.
    let (cred_tenant, cred_key) = match cred {
        Credential::Researcher { tenant_id, pubkey } => (tenant_id.as_str(), pubkey.as_str()),
        _ => {
            return Err(forbidden(
                "researcher_or_account_required",
                "a researcher (tenant key) credential is required",
                cred,
            ));
        }
    };
    if tenant_id != cred_tenant {
        return Err(ApiError::with(
            StatusCode::FORBIDDEN,
            "manifest_tenant_mismatch",
            "manifest.tenant_id is not the signer's tenant",
            Obj::new()
                .set("manifest_tenant", tenant_id)
                .set("credential_tenant", cred_tenant),
        ));
    }
    let schema_version = field("schema_version")
        .and_then(Value::as_str)
        .unwrap_or("");
    let reducer_kind = field("reducer")
        .and_then(|r| r.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("builtin_hash_agreement")
        .to_owned();
    // 4. custom reducers are refused.
    if reducer_kind == "custom" {
        return Err(unprocessable(
            "custom_reducer_unsupported",
            "custom reducers are not supported",
            Obj::new(),
        ));
    }
    // 5. feature_schema needs schema_version >= 0.3.
    let feature_schema = field("feature_schema").filter(|v| !matches!(v, Value::Null));
    if feature_schema.is_some() && matches!(schema_version, "0.1" | "0.2") {
        return Err(unprocessable(
            "feature_schema_requires_v0_3",
            "feature_schema requires manifest schema_version 0.3 or later",
            Obj::new().set("schema_version", schema_version),
        ));
    }
    // 6. the tolerance reducer needs comparison envelopes to compare with.
    if reducer_kind == "builtin_within_cell_tolerance" {
        let with_comparison: Vec<&str> = feature_schema
            .and_then(Value::as_object)
            .map(|fs| {
                fs.iter()
                    .filter(|(_, d)| {
                        d.get("comparison")
                            .is_some_and(|c| !matches!(c, Value::Null))
                    })
                    .map(|(k, _)| k.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let wanted: Option<Vec<&str>> = field("reducer")
            .and_then(|r| r.get("tolerance_features"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect());
        let bad = with_comparison.is_empty()
            || wanted.is_some_and(|w| w.iter().any(|f| !with_comparison.contains(f)));
        if bad {
            return Err(unprocessable(
                "tolerance_reducer_invalid",
                "builtin_within_cell_tolerance needs feature_schema entries with a comparison \
                 for every tolerance feature",
                Obj::new(),
            ));
        }
    }
    // 7. pre_registration validity: checked with the schema below.
    // 8. Sampling gate.
    let tier_floor = i64::from(state.config().tenant_replication_floor);
    let declared_rf = int_of(field("replication_factor"));
    let (target, floor) = resolve_replication(
        declared_rf.unwrap_or(1),
        int_of(field("replication_floor")),
        tier_floor,
    );
    let determinism = field("inference_determinism").filter(|v| !matches!(v, Value::Null));
    let temperature = determinism
        .and_then(|d| num_of(d.get("temperature")))
        .unwrap_or(0.0);
    if temperature > 0.0 {
        if !matches!(determinism.and_then(|d| d.get("seed")), Some(Value::Int(_))) {
            return Err(unprocessable(
                "sampling_requires_pinned_seed",
                "inference_determinism.temperature > 0 requires an integer seed",
                Obj::new(),
            ));
        }
        if reducer_kind == "builtin_hash_agreement" && target != 1 {
            return Err(unprocessable(
                "sampling_incoherent_with_agreement_consensus",
                "sampling with hash agreement needs a replication target of 1",
                Obj::new().set("replication_target", target),
            ));
        }
    }
    // 8a (devnet). The manifest must be valid: its signature is over the
    // normalised model, which only a valid manifest has.
    let parsed = auspex_wire::manifest::validate_value(&raw).map_err(|v| {
        for (prefix, code) in [
            ("feature_schema", "feature_schema_invalid"),
            ("pre_registration", "pre_registration_invalid"),
        ] {
            let errs = violation_strings(&v, Some(prefix));
            if !errs.is_empty() {
                return unprocessable(
                    code,
                    format!("{prefix} is invalid"),
                    Obj::new().set("errors", Value::Array(errs)),
                );
            }
        }
        unprocessable(
            "manifest_invalid",
            "the manifest does not satisfy its schema",
            Obj::new().set("errors", Value::Array(violation_strings(&v, None))),
        )
    })?;
    // 8b (devnet). The signature must verify under the uploading tenant's
    // key, as signed by either SDK profile.
    let sig_invalid = |reason: &str| {
        unprocessable(
            "manifest_signature_invalid",
            format!("manifest signature rejected: {reason}"),
            Obj::new().set("reason", reason),
        )
    };
    let sig = ManifestSignature::from_value(&Value::Object(signature.clone()))
        .map_err(|_| sig_invalid("malformed"))?;
    if !sig.maintainer_pubkey.eq_ignore_ascii_case(cred_key) {
        return Err(sig_invalid("signer_mismatch"));
    }
    let verified = [SdkProfile::V0_5_5, SdkProfile::V0_6_67]
        .into_iter()
        .any(|p| verify_manifest(&parsed, &sig, p, Some(cred_key)).is_ok());
    if !verified {
        return Err(sig_invalid("bad_signature"));
    }

    // 9–11. Insert manifest and experiment atomically.
    let manifest_hash = json::canonical_sha256(&raw);
    let models: Vec<Value> = parsed
        .models()
        .iter()
        .filter(|m| m.local_weights_required)
        .map(|m| Value::from(m.id.as_str()))
        .collect();
    let mut caps = Object::new();
    caps.insert("models".into(), Value::Array(models));
    if temperature > 0.0 {
        caps.insert(
            "features".into(),
            Value::Array(vec![Value::from("generation_policy")]),
        );
    }
    let now = iso_now();
    let auto = state.config().auto_approve;
    let mut conn = state.db().lock();
    let tx = conn.transaction()?;
    if let Err(e) = tx.execute(
        "INSERT INTO manifests (manifest_hash, tenant_id, manifest_json, signature_json, uploaded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            manifest_hash,
            tenant_id,
            to_json(&raw),
            to_json(&Value::Object(signature)),
            now
        ],
    ) {
        return Err(match unique_violation(&e) {
            Some(_) => ApiError::with(
                StatusCode::CONFLICT,
                "duplicate_manifest",
                "a manifest with this hash is already stored",
                Obj::new().set("manifest_hash", manifest_hash.as_str()),
            ),
            None => e.into(),
        });
    }
    let label_taken: bool = tx
        .query_row(
            "SELECT 1 FROM experiments WHERE tenant_id = ?1 AND label = ?2",
            params![tenant_id, label],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    if label_taken {
        // The transaction is dropped: unlike the real service, the manifest
        // row does not survive a label conflict (§12 #5).
        return Err(ApiError::with(
            StatusCode::CONFLICT,
            "duplicate_experiment_label",
            "this tenant already has an experiment with this label",
            Obj::new()
                .set("tenant_id", tenant_id)
                .set("tenant_experiment_label", label),
        ));
    }
    let experiment_id = loop {
        let id = format!("exp-{}", token_urlsafe(6));
        let exists: bool = tx
            .query_row(
                "SELECT 1 FROM experiments WHERE experiment_id = ?1",
                params![id],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if !exists {
            break id;
        }
    };
    tx.execute(
        "INSERT INTO experiments (experiment_id, tenant_id, label, manifest_hash, status, revision, \
         submitted_at, integrity_policy, replication_target, replication_floor, \
         required_capabilities, requires_real_execution, reducer_kind, \
         declared_replication_factor, expected_duration_hours) \
         VALUES (?1, ?2, ?3, ?4, 'submitted', 1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            experiment_id,
            tenant_id,
            label,
            manifest_hash,
            now,
            integrity_label(target),
            target,
            floor,
            to_json(&Value::Object(caps.clone())),
            parsed.requires_real_execution(),
            reducer_kind,
            declared_rf,
            num_of(field("expected_duration_hours")),
        ],
    )?;
    // 12. The pre-registration anchor, signed before any data can exist.
    let prereg = field("pre_registration").filter(|v| !matches!(v, Value::Null));
    if let Some(design) = prereg {
        crate::prereg::insert_anchor(
            &tx,
            state.key(),
            &experiment_id,
            tenant_id,
            &manifest_hash,
            design,
            &now,
        )?;
    }
    let mut events = vec![(
        "experiment.submitted",
        Obj::new()
            .set("status", status::SUBMITTED)
            .set("tenant_id", tenant_id)
            .set("tenant_experiment_label", label)
            .set("manifest_hash", manifest_hash.as_str())
            .set("submitted_at", now.as_str())
            .set("required_capabilities", Value::Object(caps))
            .build(),
    )];
    if auto {
        let e = load(&tx, &experiment_id)?
            .ok_or_else(|| ApiError::Internal("inserted experiment vanished".into()))?;
        events.push(transition(&tx, &e, status::APPROVED, "system")?);
    }
    tx.commit()?;
    state.publish(Some(&experiment_id), events);
    if prereg.is_some() {
        state.wake_anchorer();
    }
    let e = load(&conn, &experiment_id)?
        .ok_or_else(|| ApiError::Internal("inserted experiment vanished".into()))?;
    respond(&conn, StatusCode::CREATED, &e, cred)
}

/// Applies a transition inside `tx`; returns the `experiment.status` event
/// to publish after commit. 409 `invalid_status_transition` when the table
/// forbids it.
pub(crate) fn transition(
    tx: &Transaction<'_>,
    e: &ExperimentRow,
    to: &str,
    actor_class: &str,
) -> ApiResult<(&'static str, Value)> {
    if !allowed(&e.status, to) {
        return Err(ApiError::with(
            StatusCode::CONFLICT,
            "invalid_status_transition",
            format!("cannot move from {} to {to}", e.status),
            Obj::new()
                .set("current_status", e.status.as_str())
                .set("requested_status", to),
        ));
    }
    let now = iso_now();
    tx.execute(
        "UPDATE experiments SET status = ?2, revision = revision + 1, last_action_at = ?3, \
         last_action_by_class = ?4, \
         started_at = CASE WHEN ?2 = 'approved' AND started_at IS NULL THEN ?3 ELSE started_at END, \
         completed_at = CASE WHEN ?2 IN ('completed', 'aborted') AND completed_at IS NULL \
                        THEN ?3 ELSE completed_at END \
         WHERE experiment_id = ?1",
        params![e.experiment_id, to, now, actor_class],
    )?;
    let mut data = Obj::new()
        .set("status", to)
        .set("from_status", e.status.as_str())
        .set("revision", e.revision + 1)
        .set("actor_class", actor_class);
    if actor_class == "system" && to == status::COMPLETED {
        data = data.set("trigger", "auto_complete");
    }
    Ok(("experiment.status", data.build()))
}

/// The auto-complete rule: an approved, finalized experiment with no unit
/// still `pending`/`in_progress` becomes `completed` (actor `system`), and
/// its final attestation is built and stored in the same transaction
/// (§7 (a)). Returns the events to publish: `experiment.status` and, when
/// the attestation could be built, `attestation.issued`. An attestation the
/// recount guard refuses is not fatal here: the first `GET …/attestation`
/// reports it (409 `attestation_incomplete_set`).
pub(crate) fn maybe_auto_complete(
    tx: &Transaction<'_>,
    key: &CoordinatorKey,
    experiment_id: &str,
) -> ApiResult<Vec<(&'static str, Value)>> {
    let Some(e) = load(tx, experiment_id)? else {
        return Ok(Vec::new());
    };
    if e.status != status::APPROVED || !e.submissions_finalized {
        return Ok(Vec::new());
    }
    // EXISTS, not COUNT: this runs after every settled unit.
    let open: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM work_units WHERE experiment_id = ?1 \
             AND status IN ('pending', 'in_progress'))",
        )?
        .query_row(params![experiment_id], |r| r.get(0))?;
    if open {
        return Ok(Vec::new());
    }
    let mut events = vec![transition(tx, &e, status::COMPLETED, "system")?];
    match attestation::ensure_final(tx, key, &e) {
        Ok((a, true)) => events.push(attestation::issued_event(&a)),
        Ok((_, false)) => {}
        Err(ApiError::Api { .. }) => {}
        Err(err) => return Err(err),
    }
    Ok(events)
}

/// The abort/archive cascade (`scheduler/teardown.py`): open units are
/// cancelled and every result without a receipt gets a terminal outcome,
/// so workers get 410 instead of polling forever.
fn teardown(tx: &Transaction<'_>, experiment_id: &str, reason: &str) -> ApiResult<()> {
    tx.execute(
        "UPDATE work_units SET status = 'cancelled' WHERE experiment_id = ?1 \
         AND status IN ('pending', 'in_progress')",
        params![experiment_id],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO receipt_outcomes \
         (result_id, worker_id, experiment_id, unit_id, outcome, reason, recorded_at) \
         SELECT r.result_id, r.worker_id, r.experiment_id, r.unit_id, 'experiment_terminal', ?2, ?3 \
         FROM results r WHERE r.experiment_id = ?1 \
         AND NOT EXISTS (SELECT 1 FROM receipts c WHERE c.result_id = r.result_id)",
        params![experiment_id, reason, iso_now()],
    )?;
    Ok(())
}

fn parse_opt_int(q: &[(String, String)], name: &str, errors: &mut Vec<Value>) -> Option<i64> {
    let v = query_get(q, name)?;
    match v.trim().parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(crate::error::validation_item(
                &["query", name],
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
            ));
            None
        }
    }
}

fn parse_opt_bool(q: &[(String, String)], name: &str, errors: &mut Vec<Value>) -> bool {
    match query_get(q, name).map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no" | "off" | "f" | "n") => false,
        Some("true" | "1" | "yes" | "on" | "t" | "y") => true,
        Some(_) => {
            errors.push(crate::error::validation_item(
                &["query", name],
                "bool_parsing",
                "Input should be a valid boolean, unable to interpret input",
            ));
            false
        }
    }
}

/// `POST /experiments/{id}/actions/{action}` (§3.2).
pub fn action(
    state: &AppState,
    cred: &Credential,
    experiment_id: &str,
    action: &str,
    query: &[(String, String)],
) -> ApiResult<Response> {
    let maintainer_only = match action {
        "approve" | "archive" => true,
        "abort" | "pause" | "resume" | "finalize-submissions" => false,
        _ => {
            return Err(ApiError::Plain {
                status: StatusCode::NOT_FOUND,
                detail: "Not Found".to_owned(),
            });
        }
    };
    // Approve's query parameters are validated first, as FastAPI does.
    let mut errors = Vec::new();
    let approve = if action == "approve" {
        Some(ApproveParams {
            integrity_policy: query_get(query, "integrity_policy").map(str::to_owned),
            replication_target: parse_opt_int(query, "replication_target", &mut errors),
            replication_floor: parse_opt_int(query, "replication_floor", &mut errors),
            max_unit_duration_seconds: parse_opt_int(
                query,
                "max_unit_duration_seconds",
                &mut errors,
            ),
            max_units: parse_opt_int(query, "max_units", &mut errors),
            max_concurrent_assignments: parse_opt_int(
                query,
                "max_concurrent_assignments",
                &mut errors,
            ),
            max_payload_bytes: parse_opt_int(query, "max_payload_bytes", &mut errors),
            force: parse_opt_bool(query, "force", &mut errors),
            reason: query_get(query, "reason").map(str::to_owned),
        })
    } else {
        None
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut conn = state.db().lock();
    let tx = conn.transaction()?;
    let e = load_visible(&tx, cred, experiment_id)?;
    if maintainer_only && !cred.is_maintainer() {
        return Err(ApiError::with(
            StatusCode::FORBIDDEN,
            "experiment_action_forbidden",
            format!("{action} requires a maintainer"),
            Obj::new().set("experiment_id", experiment_id),
        ));
    }
    let actor = cred.class();
    let mut events = Vec::new();
    match action {
        "approve" => {
            let p = approve.unwrap_or_default();
            approve_experiment(state, &tx, &e, &p)?;
            events.push(transition(&tx, &e, status::APPROVED, actor)?);
        }
        "abort" => {
            events.push(transition(&tx, &e, status::ABORTED, actor)?);
            teardown(&tx, experiment_id, "experiment_aborted")?;
        }
        "archive" => {
            events.push(transition(&tx, &e, status::ARCHIVED, actor)?);
            teardown(&tx, experiment_id, "experiment_archived")?;
        }
        "pause" => events.push(transition(&tx, &e, status::PAUSED, actor)?),
        "resume" => {
            events.push(transition(&tx, &e, status::APPROVED, actor)?);
            // The real resume skips this (§12 #14): a unit that settled
            // while paused after finalize would leave the run stuck.
            events.extend(maybe_auto_complete(&tx, state.key(), experiment_id)?);
        }
        _ => {
            // finalize-submissions
            if !matches!(e.status.as_str(), status::APPROVED | status::PAUSED) {
                return Err(ApiError::with(
                    StatusCode::CONFLICT,
                    "finalize_not_applicable",
                    format!("cannot finalize submissions of a {} experiment", e.status),
                    Obj::new().set("current_status", e.status.as_str()),
                ));
            }
            tx.execute(
                "UPDATE experiments SET submissions_finalized = 1, revision = revision + 1, \
                 last_action_at = ?2, last_action_by_class = ?3 WHERE experiment_id = ?1",
                params![experiment_id, iso_now(), actor],
            )?;
            events.extend(maybe_auto_complete(&tx, state.key(), experiment_id)?);
        }
    }
    tx.commit()?;
    state.publish(Some(experiment_id), events);
    let e =
        load(&conn, experiment_id)?.ok_or_else(|| ApiError::experiment_not_found(experiment_id))?;
    respond(&conn, StatusCode::OK, &e, cred)
}

#[derive(Debug, Default)]
struct ApproveParams {
    integrity_policy: Option<String>,
    replication_target: Option<i64>,
    replication_floor: Option<i64>,
    max_unit_duration_seconds: Option<i64>,
    max_units: Option<i64>,
    max_concurrent_assignments: Option<i64>,
    max_payload_bytes: Option<i64>,
    force: bool,
    reason: Option<String>,
}

fn policy_replication(policy: &str) -> Option<i64> {
    match policy {
        "trusted" => Some(1),
        "standard" => Some(3),
        "high" => Some(5),
        _ => None,
    }
}

/// Approve-time replication and resource bounds (§3.2).
fn approve_experiment(
    state: &AppState,
    tx: &Transaction<'_>,
    e: &ExperimentRow,
    p: &ApproveParams,
) -> ApiResult<()> {
    if !allowed(&e.status, status::APPROVED) {
        // Reported by `transition` with its details.
        return Ok(());
    }
    let tier_floor = i64::from(state.config().tenant_replication_floor);
    let policy_target = match &p.integrity_policy {
        None => None,
        Some(policy) => Some(policy_replication(policy).ok_or_else(|| ApiError::Plain {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: format!(
                "integrity_policy must be one of trusted, standard, high (got {policy:?})"
            ),
        })?),
    };
    if let Some(t) = policy_target
        && t < tier_floor
    {
        if !p.force {
            return Err(ApiError::with(
                StatusCode::CONFLICT,
                "sub_floor_integrity_policy",
                "this integrity policy is below the tenant's replication floor",
                Obj::new().set("tier_floor", tier_floor).set("requested", t),
            ));
        }
        if p.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(unprocessable(
                "force_requires_reason",
                "force=true requires a reason",
                Obj::new(),
            ));
        }
    }
    for (name, v) in [
        ("replication_target", p.replication_target),
        ("replication_floor", p.replication_floor),
    ] {
        if let Some(n) = v
            && !(1..=15).contains(&n)
        {
            return Err(ApiError::invalid(
                &["query", name],
                "less_than_equal",
                "Input should be between 1 and 15",
            ));
        }
    }
    let requested = p.replication_target.or(policy_target);
    if requested.is_some() || p.replication_floor.is_some() {
        let (target, floor) = if p.force {
            let t = requested.unwrap_or(e.replication_target).max(1);
            (
                t,
                p.replication_floor
                    .unwrap_or(e.replication_floor)
                    .clamp(1, t),
            )
        } else {
            resolve_replication(
                requested.unwrap_or(e.replication_target),
                p.replication_floor.or(Some(e.replication_floor)),
                tier_floor,
            )
        };
        let sampling = parse_stored(&e.required_capabilities)
            .get("features")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("generation_policy")));
        if sampling && e.reducer_kind == "builtin_hash_agreement" && target > 1 {
            return Err(ApiError::with(
                StatusCode::CONFLICT,
                "sampling_incoherent_with_agreement_consensus",
                "a sampling experiment with hash agreement must keep replication 1",
                Obj::new().set("replication_target", target),
            ));
        }
        let policy = p
            .integrity_policy
            .clone()
            .unwrap_or_else(|| integrity_label(target).to_owned());
        tx.execute(
            "UPDATE experiments SET replication_target = ?2, replication_floor = ?3, \
             integrity_policy = ?4 WHERE experiment_id = ?1",
            params![e.experiment_id, target, floor, policy],
        )?;
    }
    if p.max_unit_duration_seconds.is_some()
        || p.max_units.is_some()
        || p.max_concurrent_assignments.is_some()
        || p.max_payload_bytes.is_some()
    {
        // All four are overwritten when any is given (real behaviour).
        tx.execute(
            "UPDATE experiments SET max_unit_duration_seconds = ?2, max_units = ?3, \
             max_concurrent_assignments = ?4, max_payload_bytes = ?5 WHERE experiment_id = ?1",
            params![
                e.experiment_id,
                p.max_unit_duration_seconds,
                p.max_units,
                p.max_concurrent_assignments,
                p.max_payload_bytes
            ],
        )?;
    }
    Ok(())
}
