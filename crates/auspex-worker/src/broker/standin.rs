//! The model stand-in: a small deterministic local text generator behind
//! the real broker protocol, so that executors using the inference client
//! run on the devnet without a model server. **It is not a language
//! model** and says so everywhere:
//!
//! * it serves only stand-in model files ([`write_standin_model`]): a GGUF
//!   v3 header with no tensors whose `general.architecture` is
//!   `auspex-standin` — so a signed `served_weights` can never name real
//!   weights that were not actually used;
//! * its serving version is `auspex-standin/<crate version>` (what a
//!   manifest's `serving_version_pin` is compared with, and what heartbeats
//!   declare);
//! * every reply's content starts with [`CONTENT_PREFIX`].
//!
//! Output is a function of the served file's digest, the messages and the
//! sampler chain only: SHA-256 of their canonical JSON seeds a SHA-256
//! counter stream that picks words from a fixed list. Under greedy decoding
//! (temperature 0) the seed is left out, as it would not matter to a real
//! model either; under sampling it is in. `num_predict` sets the number of
//! words (default [`DEFAULT_WORDS`]); `eval_count` is that number.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use auspex_wire::json::{self, Object, Value};

use super::backend::{BackendError, BoxFuture, GenerateRequest, Generation, InferenceBackend};
use super::models::ServedModel;

/// `general.architecture` of a stand-in model file.
pub const STANDIN_ARCHITECTURE: &str = "auspex-standin";

/// The file name [`write_standin_model`] uses.
pub const STANDIN_FILE: &str = "standin.gguf";

/// Every generated content starts with this.
pub const CONTENT_PREFIX: &str = "[auspex stand-in generator, not a language model]";

/// Words generated when the request sets no `num_predict`.
pub const DEFAULT_WORDS: u64 = 24;

const WORDS: [&str; 32] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "commodo",
];

fn gguf_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The bytes of the stand-in model file for `model_id`: a GGUF v3 header
/// with no tensors and three string metadata entries (architecture
/// `auspex-standin`, a name, and a description saying it holds no weights).
/// Deterministic: the same id gives the same bytes (and digest).
pub fn standin_gguf_bytes(model_id: &str) -> Vec<u8> {
    let kvs = [
        ("general.architecture", STANDIN_ARCHITECTURE.to_owned()),
        (
            "general.name",
            format!("auspex stand-in for {model_id} (not a language model)"),
        ),
        (
            "general.description",
            "Placeholder served by auspex's deterministic stand-in generator on the devnet. \
             It holds no weights; text generated against it is not model output."
                .to_owned(),
        ),
    ];
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // tensors
    out.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for (k, v) in &kvs {
        gguf_string(&mut out, k);
        out.extend_from_slice(&8u32.to_le_bytes()); // GGUF_TYPE_STRING
        gguf_string(&mut out, v);
    }
    out
}

/// Creates `<store>/<model_id>/standin.gguf` (and the directories); an
/// existing identical file is left alone. Returns the file's path.
pub fn write_standin_model(store: &Path, model_id: &str) -> std::io::Result<PathBuf> {
    let single = !model_id.is_empty()
        && model_id != "."
        && model_id != ".."
        && !model_id.contains(['/', '\\', '\0']);
    if !single {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("model id {model_id:?} is not a single path segment"),
        ));
    }
    let dir = store.join(model_id);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(STANDIN_FILE);
    let bytes = standin_gguf_bytes(model_id);
    if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
        let tmp = dir.join(format!(".{STANDIN_FILE}.tmp"));
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

/// Whether `path` is a stand-in model file: GGUF v3 whose first metadata
/// entry is `general.architecture = "auspex-standin"`.
pub fn is_standin_gguf(path: &Path) -> bool {
    let mut head = Vec::with_capacity(256);
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    if f.take(256).read_to_end(&mut head).is_err() {
        return false;
    }
    let mut expected = Vec::new();
    expected.extend_from_slice(b"GGUF");
    expected.extend_from_slice(&3u32.to_le_bytes());
    expected.extend_from_slice(&0u64.to_le_bytes());
    let Some(rest) = head.strip_prefix(expected.as_slice()) else {
        return false;
    };
    let Some(rest) = rest.get(8..) else {
        return false;
    };
    let mut first = Vec::new();
    gguf_string(&mut first, "general.architecture");
    first.extend_from_slice(&8u32.to_le_bytes());
    gguf_string(&mut first, STANDIN_ARCHITECTURE);
    rest.starts_with(&first)
}

/// The deterministic stand-in backend (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct StandIn;

impl StandIn {
    /// The stand-in.
    pub fn new() -> StandIn {
        StandIn
    }

    /// The generation for one request (pure).
    pub fn generate_now(req: &GenerateRequest<'_>) -> Generation {
        let greedy = matches!(req.options.get("temperature"), Some(Value::Int(_)))
            || matches!(req.options.get("temperature"), Some(Value::Float(t)) if *t == 0.0);
        let mut options: Object = req.options.clone();
        if greedy {
            options.shift_remove("seed");
        }
        let words = match req.options.get("num_predict") {
            Some(Value::Int(n)) => n.as_u64().unwrap_or(DEFAULT_WORDS),
            _ => DEFAULT_WORDS,
        };
        let mut material = Object::new();
        material.insert(
            "gguf_sha256".into(),
            Value::from(req.model.gguf_sha256.as_str()),
        );
        material.insert("messages".into(), Value::Array(req.messages.to_vec()));
        material.insert("model".into(), Value::from(req.model.model_id.as_str()));
        material.insert("options".into(), Value::Object(options));
        let seed = json::canonical_sha256(&Value::Object(material));
        let mut text = String::from(CONTENT_PREFIX);
        let mut block = Vec::new();
        for i in 0..words {
            let at = (i % 32) as usize;
            if at == 0 {
                block = hex_bytes(&auspex_wire::sha256_hex(
                    format!("{seed}:{}", i / 32).as_bytes(),
                ));
            }
            let w = block.get(at).map_or(0, |b| usize::from(*b) % WORDS.len());
            text.push(' ');
            text.push_str(WORDS[w]);
        }
        let mut message = Object::new();
        message.insert("role".into(), Value::from("assistant"));
        message.insert("content".into(), Value::from(text));
        Generation {
            message: Value::Object(message),
            eval_count: words,
        }
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .filter_map(|p| std::str::from_utf8(p).ok())
        .filter_map(|p| u8::from_str_radix(p, 16).ok())
        .collect()
}

impl InferenceBackend for StandIn {
    fn serving_version(&self) -> String {
        format!("{STANDIN_ARCHITECTURE}/{}", env!("CARGO_PKG_VERSION"))
    }

    fn prepare<'a>(&'a self, model: &'a ServedModel) -> BoxFuture<'a, Result<(), BackendError>> {
        let ok = is_standin_gguf(&model.gguf_path);
        let path = model.gguf_path.display().to_string();
        Box::pin(async move {
            if ok {
                Ok(())
            } else {
                Err(BackendError(format!(
                    "the stand-in generator serves only stand-in model files \
                     (general.architecture = {STANDIN_ARCHITECTURE:?}); {path} is not one"
                )))
            }
        })
    }

    fn generate<'a>(
        &'a self,
        req: GenerateRequest<'a>,
    ) -> BoxFuture<'a, Result<Generation, BackendError>> {
        let out = StandIn::generate_now(&req);
        Box::pin(async move { Ok(out) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::models::ModelStore;
    use crate::broker::policy::{GenerationPolicy, sanitize_options};

    fn served(dir: &Path) -> ServedModel {
        write_standin_model(dir, "standin-tiny").expect("written");
        ModelStore::new(dir).serve("standin-tiny").expect("served")
    }

    fn generate(m: &ServedModel, msgs: &str, policy: &GenerationPolicy, opts: &str) -> Generation {
        let messages = match json::parse(msgs.as_bytes()) {
            Ok(Value::Array(a)) => a,
            _ => panic!("messages"),
        };
        let options = sanitize_options(
            Some(&json::parse(opts.as_bytes()).expect("options")),
            policy,
        )
        .expect("valid options");
        StandIn::generate_now(&GenerateRequest {
            model: m,
            messages: &messages,
            options: &options,
        })
    }

    #[test]
    fn the_model_file_is_labelled_and_deterministic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = served(dir.path());
        assert_eq!(
            m.gguf_path,
            dir.path().join("standin-tiny").join(STANDIN_FILE)
        );
        assert!(is_standin_gguf(&m.gguf_path));
        assert_eq!(
            m.gguf_sha256,
            auspex_wire::sha256_hex(&standin_gguf_bytes("standin-tiny"))
        );
        let text = String::from_utf8_lossy(&standin_gguf_bytes("x")).into_owned();
        assert!(text.contains("not a language model") && text.contains("holds no weights"));
        // Rewriting leaves the file (and digest) as it was.
        write_standin_model(dir.path(), "standin-tiny").expect("rewritten");
        assert_eq!(
            ModelStore::new(dir.path())
                .serve("standin-tiny")
                .expect("served")
                .gguf_sha256,
            m.gguf_sha256
        );
        // A real (or any other) GGUF is refused by the stand-in.
        let other = dir.path().join("real");
        std::fs::create_dir_all(&other).expect("mkdir");
        std::fs::write(other.join("w.gguf"), b"GGUF\x03\0\0\0 real weights").expect("write");
        let real = ModelStore::new(dir.path()).serve("real").expect("resolves");
        assert!(!is_standin_gguf(&real.gguf_path));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert!(rt.block_on(StandIn.prepare(&m)).is_ok());
        let e = rt.block_on(StandIn.prepare(&real)).expect_err("refused");
        assert!(e.0.contains("serves only stand-in model files"), "{e}");
        assert_eq!(
            StandIn.serving_version(),
            format!("auspex-standin/{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn greedy_output_depends_on_the_messages_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = served(dir.path());
        let g = GenerationPolicy::greedy();
        let hi = r#"[{"role": "user", "content": "hi"}]"#;
        let a = generate(&m, hi, &g, r#"{"num_predict": 8}"#);
        let b = generate(&m, hi, &g, r#"{"num_predict": 8, "seed": 99}"#);
        assert_eq!(a, b, "the seed does not matter under greedy decoding");
        assert_eq!(a.eval_count, 8);
        let content = a
            .message
            .get("content")
            .and_then(Value::as_str)
            .expect("content");
        assert!(content.starts_with(CONTENT_PREFIX));
        assert_eq!(
            content.split(' ').count(),
            CONTENT_PREFIX.split(' ').count() + 8
        );
        assert_eq!(
            a.message.get("role").and_then(Value::as_str),
            Some("assistant")
        );
        let c = generate(
            &m,
            r#"[{"role": "user", "content": "ho"}]"#,
            &g,
            r#"{"num_predict": 8}"#,
        );
        assert_ne!(a.message, c.message);
        let d = generate(&m, hi, &g, "{}");
        assert_eq!(d.eval_count, DEFAULT_WORDS);
        let long = generate(&m, hi, &g, r#"{"num_predict": 100}"#);
        assert_eq!(long.eval_count, 100);
    }

    #[test]
    fn sampling_output_depends_on_the_seed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = served(dir.path());
        let p = GenerationPolicy::from_block(
            &json::parse(br#"{"temperature": 0.7, "seed": 42}"#).expect("json"),
        )
        .expect("policy");
        let hi = r#"[{"role": "user", "content": "hi"}]"#;
        let a = generate(&m, hi, &p, "{}");
        let b = generate(&m, hi, &p, r#"{"seed": 42}"#);
        let c = generate(&m, hi, &p, r#"{"seed": 43}"#);
        assert_eq!(a, b);
        assert_ne!(a.message, c.message);
    }
}
