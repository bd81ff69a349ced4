//! The pluggable serving side of the broker: [`InferenceBackend`].
//!
//! The broker validates and pins every request (§7.3–§7.4) and hands the
//! backend only the complete sampler chain; the backend turns messages into
//! a message. The one implementation in this crate is the labelled
//! [`StandIn`](super::standin::StandIn); a real serving path (Ollama's
//! `/api/chat` with the chain as `options`, as the official worker does)
//! implements the same trait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use auspex_wire::json::{Object, Value};

use super::models::ServedModel;

/// A boxed, sendable future (the trait stays object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A serving failure: a declined unit (when preparing) or a
/// `backend_error` reply (when generating).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// One validated `generate` request.
#[derive(Debug, Clone, Copy)]
pub struct GenerateRequest<'a> {
    /// The unit's model, as served.
    pub model: &'a ServedModel,
    /// The messages (each an object with string `role` and `content`;
    /// other members are passed through as the executor sent them).
    pub messages: &'a [Value],
    /// The complete sampler chain ([`sanitize_options`](super::policy::sanitize_options)).
    pub options: &'a Object,
}

/// What the backend generated.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The message object relayed to the executor (normally
    /// `{"role": "assistant", "content": …}`).
    pub message: Value,
    /// Tokens generated (`eval_count`).
    pub eval_count: u64,
}

/// A model-serving backend behind the broker.
pub trait InferenceBackend: fmt::Debug + Send + Sync {
    /// The serving stack's version, compared with a manifest's
    /// `inference_determinism.serving_version_pin` on the part after the
    /// last `/` and declared in heartbeats as `ollama_version` (the wire
    /// name). Ollama: `ollama/0.17.7`.
    fn serving_version(&self) -> String;

    /// Loads (and warms) `model` before a unit's session opens; an error
    /// declines the unit `executor_refused`. The default accepts.
    fn prepare<'a>(&'a self, model: &'a ServedModel) -> BoxFuture<'a, Result<(), BackendError>> {
        let _ = model;
        Box::pin(async { Ok(()) })
    }

    /// One chat generation with exactly `req.options`.
    fn generate<'a>(
        &'a self,
        req: GenerateRequest<'a>,
    ) -> BoxFuture<'a, Result<Generation, BackendError>>;
}
