//! The typed members of a manifest (every version, 0.1 through 0.7).
//!
//! Field order in each struct is the SDK's Pydantic declaration order, which is
//! also the order of the signing input (§3.1). Numbers keep the precision the
//! SDK keeps: `float` fields are `f64`, unbounded Python `int` fields are
//! [`Int`] (any size), bounded ones a machine integer.

use indexmap::IndexMap;

use crate::json::Int;

macro_rules! str_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every wire spelling, in the SDK's declaration order.
            pub const ALL: &'static [&'static str] = &[$($text),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }

            /// Parses a wire spelling.
            pub fn from_wire(s: &str) -> Option<Self> {
                match s {
                    $( $text => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum! {
    /// `schema_version`: which published manifest contract a file follows.
    pub enum SchemaVersion {
        /// `"0.1"` (the only version auspexai-tenant 0.5.5 knows).
        V0_1 = "0.1",
        /// `"0.2"`: research class, real-execution flag, inference determinism, output schema.
        V0_2 = "0.2",
        /// `"0.3"`: feature schema, tolerance reducer.
        V0_3 = "0.3",
        /// `"0.4"`: pre-registration.
        V0_4 = "0.4",
        /// `"0.5"`: sampling knobs.
        V0_5 = "0.5",
        /// `"0.6"`: config provenance, raw-content capture, process-only reducer, seed policy.
        V0_6 = "0.6",
        /// `"0.7"`: penalty knobs, knobs under greedy decoding.
        V0_7 = "0.7",
    }
}

impl SchemaVersion {
    /// True if this version is `other` or later.
    pub fn at_least(self, other: SchemaVersion) -> bool {
        self as u8 >= other as u8
    }
}

str_enum! {
    /// A research-ethics flag (`sensitive_content_flags[]`).
    pub enum SensitiveContentFlag {
        /// `dual_use`.
        DualUse = "dual_use",
        /// `red_team`.
        RedTeam = "red_team",
        /// `harmful_output_generation`.
        HarmfulOutputGeneration = "harmful_output_generation",
        /// `raw_content_capture` (v0.6 model; a data-custody declaration that
        /// does not by itself require an approver attestation).
        RawContentCapture = "raw_content_capture",
    }
}

impl SensitiveContentFlag {
    /// The flags manifest v0.1 (auspexai-tenant 0.5.5) accepts.
    pub const V0_1: &'static [&'static str] =
        &["dual_use", "red_team", "harmful_output_generation"];
}

str_enum! {
    /// `research_class` (v0.2+): the declared research class.
    pub enum ResearchClass {
        /// `behavioral_drift`.
        BehavioralDrift = "behavioral_drift",
        /// `eval_sweeps`.
        EvalSweeps = "eval_sweeps",
        /// `refusal_boundary_mapping`.
        RefusalBoundaryMapping = "refusal_boundary_mapping",
        /// `cross_model_comparison`.
        CrossModelComparison = "cross_model_comparison",
        /// `quantization_effects`.
        QuantizationEffects = "quantization_effects",
        /// `prompt_sensitivity`.
        PromptSensitivity = "prompt_sensitivity",
        /// `other`.
        Other = "other",
    }
}

/// A model the experiment needs (`models[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Model identifier (v0.2+ model: `^[A-Za-z0-9][A-Za-z0-9._:-]*$`, at most 128).
    pub id: String,
    /// Model version label.
    pub version: String,
    /// Whether workers must hold the weights locally.
    pub local_weights_required: bool,
    /// Optional HuggingFace repository for lazy acquisition.
    pub hf_repo: Option<String>,
    /// Optional exact file within `hf_repo`.
    pub hf_filename: Option<String>,
    /// Optional expected sha256 of the served GGUF (v0.2+ member).
    pub expected_gguf_sha256: Option<String>,
}

/// An approver's attestation (`approver_attestations[]`); nothing verifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproverAttestation {
    /// `ed25519:<base64>`.
    pub approver_pubkey: String,
    /// Base64 signature.
    pub sig: String,
}

/// `work_unit_source`, discriminated by `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkUnitSource {
    /// `kind: "static"` — a tarball of pre-generated units.
    Static {
        /// sha256 of the tarball, lowercase hex.
        tarball_sha256: String,
    },
    /// `kind: "http"` — a tenant-hosted endpoint.
    Http {
        /// An `https://` URL.
        url: String,
    },
}

impl WorkUnitSource {
    /// The `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            WorkUnitSource::Static { .. } => "static",
            WorkUnitSource::Http { .. } => "http",
        }
    }
}

/// `executor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executor {
    /// argv run inside the worker's sandbox (at least one element).
    pub command: Vec<String>,
    /// Optional container image digest.
    pub image_sha256: Option<String>,
    /// Optional executor package digest (§3i); in the 0.5.5 model although the
    /// v0.1 JSON Schema omits it.
    pub package_sha256: Option<String>,
}

/// `reducer`, discriminated by `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reducer {
    /// `builtin_hash_agreement`.
    BuiltinHashAgreement,
    /// `builtin_within_cell_tolerance` (v0.3+ model).
    BuiltinWithinCellTolerance {
        /// Optional subset of feature paths (at least one when present).
        tolerance_features: Option<Vec<String>>,
    },
    /// `builtin_process_only` (schema_version 0.6+).
    BuiltinProcessOnly,
    /// `custom` (the live coordinator refuses it).
    Custom {
        /// argv of the reducer (at least one element).
        command: Vec<String>,
        /// Optional container image digest.
        image_sha256: Option<String>,
    },
}

impl Reducer {
    /// The `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Reducer::BuiltinHashAgreement => "builtin_hash_agreement",
            Reducer::BuiltinWithinCellTolerance { .. } => "builtin_within_cell_tolerance",
            Reducer::BuiltinProcessOnly => "builtin_process_only",
            Reducer::Custom { .. } => "custom",
        }
    }
}

str_enum! {
    /// `inference_determinism.seed_policy`.
    pub enum SeedPolicy {
        /// One constant seed across rounds (the default).
        Fixed = "fixed",
        /// `seed + round` per round; only under sampling.
        PerRound = "per_round",
    }
}

/// `inference_determinism` (v0.2+ member; knobs v0.5+/v0.7+).
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceDeterminism {
    /// Sampling temperature, `>= 0` (default `0.0`, greedy).
    pub temperature: f64,
    /// Pinned seed (required when `temperature > 0`).
    pub seed: Option<Int>,
    /// Serving stack pin, e.g. `ollama/0.17.7`.
    pub serving_version_pin: Option<String>,
    /// Hardware class, e.g. `cpu`.
    pub hardware_class: Option<String>,
    /// `top_p` in `(0, 1]`.
    pub top_p: Option<f64>,
    /// `top_k >= 1`.
    pub top_k: Option<Int>,
    /// `min_p` in `[0, 1)`.
    pub min_p: Option<f64>,
    /// `repeat_penalty > 0`.
    pub repeat_penalty: Option<f64>,
    /// `repeat_last_n >= -1`.
    pub repeat_last_n: Option<Int>,
    /// Seed-stream policy (default `fixed`).
    pub seed_policy: SeedPolicy,
}

impl InferenceDeterminism {
    /// True under seeded sampling (`temperature > 0`).
    pub fn is_sampling(&self) -> bool {
        self.temperature > 0.0
    }

    /// Names of the declared v0.5 sampling knobs (`top_p`, `top_k`, `min_p`).
    pub fn sampling_knobs(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        if self.top_p.is_some() {
            k.push("top_p");
        }
        if self.top_k.is_some() {
            k.push("top_k");
        }
        if self.min_p.is_some() {
            k.push("min_p");
        }
        k
    }

    /// Names of the declared v0.7 penalty knobs.
    pub fn penalty_knobs(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        if self.repeat_penalty.is_some() {
            k.push("repeat_penalty");
        }
        if self.repeat_last_n.is_some() {
            k.push("repeat_last_n");
        }
        k
    }
}

str_enum! {
    /// `output_schema.measurement_level` (Stevens typology).
    pub enum MeasurementLevel {
        /// `nominal`.
        Nominal = "nominal",
        /// `ordinal`.
        Ordinal = "ordinal",
        /// `interval`.
        Interval = "interval",
        /// `ratio`.
        Ratio = "ratio",
    }
}

/// `output_schema` (v0.2+ member).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSchema {
    /// The measurement level.
    pub measurement_level: MeasurementLevel,
    /// `[]` scalar, `[N]` vector, `[R, C]` matrix.
    pub shape: Option<Vec<Int>>,
    /// e.g. `float32`.
    pub dtype: Option<String>,
}

str_enum! {
    /// `feature_schema.*.kind`.
    pub enum FeatureKind {
        /// `hash` (needs `algorithm`).
        Hash = "hash",
        /// `count`.
        Count = "count",
        /// `numeric` (needs `range`).
        Numeric = "numeric",
        /// `categorical` (needs `categories`).
        Categorical = "categorical",
        /// `ordinal` (needs `categories`).
        Ordinal = "ordinal",
        /// `set` (needs `element_kind` and `max_cardinality`).
        Set = "set",
    }
}

str_enum! {
    /// `feature_schema.*.role`.
    pub enum FeatureRole {
        /// `anchor`.
        Anchor = "anchor",
        /// `summary`.
        Summary = "summary",
        /// `provenance`.
        Provenance = "provenance",
        /// `key`.
        Key = "key",
        /// `diagnostic`.
        Diagnostic = "diagnostic",
    }
}

str_enum! {
    /// `feature_schema.*.element_kind`.
    pub enum SetElementKind {
        /// `categorical`.
        Categorical = "categorical",
        /// `numeric`.
        Numeric = "numeric",
        /// `count`.
        Count = "count",
        /// `hash`.
        Hash = "hash",
    }
}

/// `feature_schema.*.range`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRange {
    /// Lower bound.
    pub min: f64,
    /// Upper bound (`None` = unbounded).
    pub max: Option<f64>,
}

str_enum! {
    /// `valid_when.op`.
    pub enum ValidWhenOp {
        /// `>=`.
        Ge = ">=",
        /// `<=`.
        Le = "<=",
        /// `>`.
        Gt = ">",
        /// `<`.
        Lt = "<",
        /// `==`.
        Eq = "==",
        /// `!=`.
        Ne = "!=",
    }
}

/// `valid_when.value`: Pydantic's `float | int | str` smart union keeps the
/// JSON type (`5` stays an int, `5.0` a float).
#[derive(Debug, Clone, PartialEq)]
pub enum ValidWhenValue {
    /// A JSON number with a fraction or exponent.
    Float(f64),
    /// A JSON integer.
    Int(Int),
    /// A string.
    Str(String),
}

/// `feature_schema.*.valid_when`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidWhen {
    /// The payload field the predicate reads.
    pub field: String,
    /// The comparison.
    pub op: ValidWhenOp,
    /// The right-hand side.
    pub value: ValidWhenValue,
}

str_enum! {
    /// `comparison.rule`.
    pub enum ComparisonRule {
        /// `exact` (no rel/abs/min).
        Exact = "exact",
        /// `numeric` (needs rel or abs).
        Numeric = "numeric",
        /// `set_jaccard` (needs min in [0, 1]).
        SetJaccard = "set_jaccard",
        /// `categorical_exact` (no rel/abs/min).
        CategoricalExact = "categorical_exact",
    }
}

/// `feature_schema.*.comparison`: how replicas must agree.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureComparison {
    /// The rule.
    pub rule: ComparisonRule,
    /// Relative tolerance (numeric).
    pub rel: Option<f64>,
    /// Absolute tolerance (numeric).
    pub abs: Option<f64>,
    /// Minimum similarity (set_jaccard).
    pub min: Option<f64>,
}

/// One `feature_schema` entry (v0.3+ member).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDeclaration {
    /// What the feature means (non-empty).
    pub meaning: String,
    /// Measurement type.
    pub kind: FeatureKind,
    /// Authority of the feature.
    pub role: FeatureRole,
    /// What a change implies (non-empty).
    pub change_means: String,
    /// Unit.
    pub unit: Option<String>,
    /// Bounds (numeric/count only).
    pub range: Option<FeatureRange>,
    /// Closed category set (categorical/ordinal/set only).
    pub categories: Option<Vec<String>>,
    /// Hash algorithm (hash only).
    pub algorithm: Option<String>,
    /// Element kind (set only).
    pub element_kind: Option<SetElementKind>,
    /// Maximum cardinality `>= 1` (set only).
    pub max_cardinality: Option<Int>,
    /// Invariances (default empty).
    pub invariant_to: Vec<String>,
    /// Validity predicate.
    pub valid_when: Option<ValidWhen>,
    /// Agreement envelope.
    pub comparison: Option<FeatureComparison>,
}

str_enum! {
    /// `pre_registration.timescale`.
    pub enum Timescale {
        /// `intra_experiment_rounds`.
        IntraExperimentRounds = "intra_experiment_rounds",
        /// `long_horizon`.
        LongHorizon = "long_horizon",
        /// `inter_experiment`.
        InterExperiment = "inter_experiment",
    }
}

/// `pre_registration` (schema_version 0.4+).
#[derive(Debug, Clone, PartialEq)]
pub struct PreRegistration {
    /// Block version, always `"0.1"`.
    pub version: String,
    /// Hypothesis (20..=2000 characters).
    pub hypothesis: String,
    /// Analysis method (10..=2000).
    pub analysis_method: String,
    /// Declared feature paths the analysis reads (at least one).
    pub features: Vec<String>,
    /// Timescale.
    pub timescale: Timescale,
    /// Decision rule (10..=2000).
    pub decision_rule: String,
    /// Expected result (5..=2000).
    pub expected_result: String,
    /// Stopping rule (10..=1000).
    pub stopping_rule: String,
    /// Join keys (default empty).
    pub comparison_keys: Vec<String>,
    /// Minimum replication `>= 1`.
    pub min_replication: Option<Int>,
}

/// `config_provenance` (schema_version 0.6+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProvenance {
    /// Active profile.
    pub profile: Option<String>,
    /// sha256 of the resolved config.
    pub resolved_config_sha256: String,
    /// Git commit (7..=40 lowercase hex).
    pub git_commit: Option<String>,
    /// Whether the tree was dirty.
    pub git_dirty: Option<bool>,
}

/// `capture` (v0.6+ member).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    /// Raw model-output capture (requires the `raw_content_capture` flag).
    pub raw: bool,
}

/// `feature_schema`: declarations keyed by dotted payload path, in file order.
pub type FeatureSchema = IndexMap<String, FeatureDeclaration>;
