//! Tenant manifests, all versions 0.1–0.7: validation, the signing input, the
//! manifest hash, and the detached signature file (spec `tenant-sdk.md` §2.1,
//! §2.2, §2.3, §3.1, §3a).
//!
//! A manifest has **two** canonical forms, and they differ (§11.2 #22):
//!
//! * the **signing input** is the official SDK's Pydantic `model_dump_json()`
//!   of the *normalised* model (declaration order, every declared field, the
//!   normalised e-mail, `1` → `1.0`, …). It depends on which SDK's model is
//!   reproduced ([`SdkProfile`]): 0.6.67 declares more fields than 0.5.5, so
//!   the same v0.1 manifest signs to different bytes (§3a.3);
//! * the **manifest hash** is sha256 of the Python-canonical JSON of the *raw*
//!   parsed file (§3a.4), the content address used by the coordinator, work
//!   units and workers.
//!
//! ```
//! use auspex_wire::manifest::{parse_manifest, SdkProfile};
//! let text = br#"{"schema_version": "0.1", "tenant_id": "acme-lab",
//!   "tenant_maintainer_contact": "Alice <Alice@Example.COM>",
//!   "experiment_id": "exp-one",
//!   "research_goal_paragraph": "A goal paragraph that is long enough to pass the minimum.",
//!   "models": [{"id": "m", "version": "1", "local_weights_required": false}],
//!   "prompt_set_characteristics": "Short prompts.", "expected_duration_hours": 1,
//!   "replication_factor": 3,
//!   "work_unit_source": {"kind": "static", "tarball_sha256": "0000000000000000000000000000000000000000000000000000000000000000"},
//!   "executor": {"command": ["python", "x.py"]}, "reducer": {"kind": "builtin_hash_agreement"}}"#;
//! let m = parse_manifest(text).unwrap();
//! assert_eq!(m.contact(), "Alice@example.com");
//! assert_eq!(m.default_profile(), SdkProfile::V0_5_5);
//! let signing = String::from_utf8(m.signing_input(SdkProfile::V0_5_5).unwrap()).unwrap();
//! assert!(signing.contains(r#""expected_duration_hours":1.0,"#));
//! assert_eq!(m.manifest_hash().len(), 64);
//! ```

mod check;
pub mod email;
mod pyrepr;
pub(crate) use pyrepr::repr_str as pyrepr_str;
mod signature;
mod signing;
mod types;

use std::fmt;

pub use signature::{ManifestSignature, SIG_V};
pub use types::{
    ApproverAttestation, Capture, ComparisonRule, ConfigProvenance, Executor, FeatureComparison,
    FeatureDeclaration, FeatureKind, FeatureRange, FeatureRole, FeatureSchema,
    InferenceDeterminism, MeasurementLevel, Model, OutputSchema, PreRegistration, Reducer,
    ResearchClass, SchemaVersion, SeedPolicy, SensitiveContentFlag, SetElementKind, Timescale,
    ValidWhen, ValidWhenOp, ValidWhenValue, WorkUnitSource,
};

use crate::json::{self, Value};
use crate::validate::Violations;

/// Whose Pydantic model defines the signing bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SdkProfile {
    /// auspexai-tenant 0.5.5: manifest v0.1 only.
    V0_5_5,
    /// auspexai-tenant 0.6.67: manifests v0.1–v0.7, with the v0.2+ members
    /// dumped (as `null`/defaults when absent) even for v0.1.
    V0_6_67,
}

impl SdkProfile {
    /// The SDK version, e.g. `0.5.5`.
    pub fn as_str(self) -> &'static str {
        match self {
            SdkProfile::V0_5_5 => "0.5.5",
            SdkProfile::V0_6_67 => "0.6.67",
        }
    }
}

impl fmt::Display for SdkProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a manifest (or signature file) could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The bytes are not JSON (Python `json.loads` semantics).
    #[error("not valid JSON: {0}")]
    Json(#[from] json::ParseError),
    /// The JSON does not satisfy the contract; every violation is listed.
    #[error("{0}")]
    Invalid(#[from] Violations),
}

/// Why a signing input cannot be produced for the requested profile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningInputError {
    /// The profile's SDK does not know this `schema_version` (0.5.5 knows 0.1 only).
    #[error(
        "auspexai-tenant {profile} cannot sign a manifest with schema_version {schema_version} (it knows \"0.1\" only)"
    )]
    UnsupportedVersion {
        /// The requested profile.
        profile: SdkProfile,
        /// The manifest's version.
        schema_version: SchemaVersion,
    },
    /// The profile's model would refuse this manifest (0.6.67 constrains
    /// `models[].id`, which 0.5.5 does not).
    #[error("auspexai-tenant {profile} would refuse this manifest: {violations}")]
    Rejected {
        /// The requested profile.
        profile: SdkProfile,
        /// What that model refuses.
        violations: Violations,
    },
}

/// A validated manifest: typed members (normalised as the SDK normalises them)
/// plus the parsed file as submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    schema_version: SchemaVersion,
    tenant_id: String,
    tenant_maintainer_contact: String,
    experiment_id: String,
    research_goal_paragraph: String,
    research_class: Option<ResearchClass>,
    models: Vec<Model>,
    prompt_set_characteristics: String,
    sensitive_content_flags: Vec<SensitiveContentFlag>,
    approver_attestations: Option<Vec<ApproverAttestation>>,
    expected_duration_hours: f64,
    replication_factor: u8,
    work_unit_source: WorkUnitSource,
    executor: Executor,
    reducer: Reducer,
    requires_real_execution: bool,
    inference_determinism: Option<InferenceDeterminism>,
    output_schema: Option<OutputSchema>,
    feature_schema: Option<FeatureSchema>,
    pre_registration: Option<PreRegistration>,
    config_provenance: Option<ConfigProvenance>,
    capture: Option<Capture>,
    raw: Value,
}

/// Parses manifest bytes (Python `json.loads` semantics) and validates them
/// (see [`validate_value`]).
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let v = json::parse(bytes)?;
    Ok(validate_value(&v)?)
}

/// Validates a parsed manifest against the official Pydantic model for its
/// `schema_version` (auspexai-tenant 0.5.5 for `"0.1"`, 0.6.67 for `"0.2"` to
/// `"0.7"`), reporting every violation with its path. Exotic lax coercions
/// (`"3"` → 3, `true` → 1, `"yes"` → true) and non-finite numbers are refused.
pub fn validate_value(v: &Value) -> Result<Manifest, Violations> {
    check::validate(v)
}

impl Manifest {
    /// `schema_version` as written (`"0.1"` … `"0.7"`).
    pub fn schema_version(&self) -> &str {
        self.schema_version.as_str()
    }

    /// `schema_version` as an enum.
    pub fn version(&self) -> SchemaVersion {
        self.schema_version
    }

    /// The profile whose signing input the official tooling for this version
    /// produces: 0.5.5 for v0.1, 0.6.67 for later versions.
    pub fn default_profile(&self) -> SdkProfile {
        match self.schema_version {
            SchemaVersion::V0_1 => SdkProfile::V0_5_5,
            _ => SdkProfile::V0_6_67,
        }
    }

    /// The normalised model as `profile`'s Pydantic dumps it, objects in
    /// declaration order; [`Manifest::signing_input`] is its
    /// [`json::pydantic_compact`] text.
    pub fn normalized(&self, profile: SdkProfile) -> Result<Value, SigningInputError> {
        signing::dump(self, profile)
    }

    /// The bytes the tenant signs: `profile`'s `model_dump_json()` of the
    /// normalised model (§3a.1). Fails when `profile` cannot represent the
    /// manifest (0.5.5 knows v0.1 only).
    pub fn signing_input(&self, profile: SdkProfile) -> Result<Vec<u8>, SigningInputError> {
        Ok(json::pydantic_compact(&self.normalized(profile)?).into_bytes())
    }

    /// The Python-canonical JSON of the raw parsed file, the input of
    /// [`Manifest::manifest_hash`].
    pub fn manifest_hash_input(&self) -> String {
        json::canonical(&self.raw)
    }

    /// The manifest hash (§3a.4): lowercase hex sha256 of the Python-canonical
    /// JSON of the raw parsed object (not of the normalised model).
    pub fn manifest_hash(&self) -> String {
        json::canonical_sha256(&self.raw)
    }

    /// The parsed file as submitted.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// `tenant_id`.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// `experiment_id` (the coordinator's `tenant_experiment_label`).
    pub fn experiment_id(&self) -> &str {
        &self.experiment_id
    }

    /// `tenant_maintainer_contact`, normalised as the SDK signs it
    /// (`Alice <Alice@Example.COM>` → `Alice@example.com`).
    pub fn contact(&self) -> &str {
        &self.tenant_maintainer_contact
    }

    /// `tenant_maintainer_contact` exactly as written in the file.
    pub fn contact_as_submitted(&self) -> &str {
        self.raw
            .get("tenant_maintainer_contact")
            .and_then(Value::as_str)
            .unwrap_or(&self.tenant_maintainer_contact)
    }

    /// `research_goal_paragraph`.
    pub fn research_goal_paragraph(&self) -> &str {
        &self.research_goal_paragraph
    }

    /// `research_class` (v0.2+).
    pub fn research_class(&self) -> Option<ResearchClass> {
        self.research_class
    }

    /// `models`.
    pub fn models(&self) -> &[Model] {
        &self.models
    }

    /// `prompt_set_characteristics`.
    pub fn prompt_set_characteristics(&self) -> &str {
        &self.prompt_set_characteristics
    }

    /// `sensitive_content_flags` (duplicates preserved, as the SDK does).
    pub fn sensitive_content_flags(&self) -> &[SensitiveContentFlag] {
        &self.sensitive_content_flags
    }

    /// `approver_attestations` (`None` when absent or `null`).
    pub fn approver_attestations(&self) -> Option<&[ApproverAttestation]> {
        self.approver_attestations.as_deref()
    }

    /// `expected_duration_hours`.
    pub fn expected_duration_hours(&self) -> f64 {
        self.expected_duration_hours
    }

    /// `replication_factor` (1..=100).
    pub fn replication_factor(&self) -> u8 {
        self.replication_factor
    }

    /// `work_unit_source`.
    pub fn work_unit_source(&self) -> &WorkUnitSource {
        &self.work_unit_source
    }

    /// `executor`.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// `reducer`.
    pub fn reducer(&self) -> &Reducer {
        &self.reducer
    }

    /// `requires_real_execution` (v0.2+, default `false`).
    pub fn requires_real_execution(&self) -> bool {
        self.requires_real_execution
    }

    /// `inference_determinism` (v0.2+).
    pub fn inference_determinism(&self) -> Option<&InferenceDeterminism> {
        self.inference_determinism.as_ref()
    }

    /// `output_schema` (v0.2+).
    pub fn output_schema(&self) -> Option<&OutputSchema> {
        self.output_schema.as_ref()
    }

    /// `feature_schema` (v0.3+ member), in file order.
    pub fn feature_schema(&self) -> Option<&FeatureSchema> {
        self.feature_schema.as_ref()
    }

    /// `pre_registration` (v0.4+).
    pub fn pre_registration(&self) -> Option<&PreRegistration> {
        self.pre_registration.as_ref()
    }

    /// `config_provenance` (v0.6+).
    pub fn config_provenance(&self) -> Option<&ConfigProvenance> {
        self.config_provenance.as_ref()
    }

    /// `capture` (v0.6+ member).
    pub fn capture(&self) -> Option<Capture> {
        self.capture
    }
}

#[cfg(test)]
mod tests;
