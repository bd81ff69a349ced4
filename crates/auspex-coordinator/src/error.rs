//! The one error type every route returns, and its mapping to the
//! coordinator's wire envelopes (`coordinator.md` §2, `tenant-sdk.md` §4.1).

use auspex_wire::json::Value;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::util::{Obj, to_json};

/// The request-body cap of the real service (2 MiB, `coordinator.md` §2.5).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A failed request.
///
/// [`ApiError::Api`] is the `{"detail":{"error":{code,message,details}}}`
/// envelope; [`ApiError::Validation`] is FastAPI's 422 list; the other
/// variants reproduce the few non-envelope bodies of the real service.
/// Internal failures are logged and answered with a generic 500 that names
/// nothing internal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A typed error with its machine code.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// `detail.error.code`.
        code: &'static str,
        /// `detail.error.message`.
        message: String,
        /// `detail.error.details` (an object).
        details: Value,
    },
    /// FastAPI request validation: 422 `{"detail": [ {type, loc, msg, input?} ]}`.
    #[error("request validation failed ({} errors)", .0.len())]
    Validation(Vec<Value>),
    /// A plain-string `detail` (FastAPI `HTTPException(detail="...")`).
    #[error("{status}: {detail}")]
    Plain {
        /// HTTP status.
        status: StatusCode,
        /// The `detail` string.
        detail: String,
    },
    /// The body cap: 413 `{"error":"payload_too_large","max_bytes":…}`
    /// (not the `detail` envelope, as the real middleware answers).
    #[error("request body over {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    /// A storage or other internal failure; never shown to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A typed error with empty `details`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Api {
            status,
            code,
            message: message.into(),
            details: Obj::new().build(),
        }
    }

    /// A typed error with `details`.
    pub fn with(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        details: Obj,
    ) -> ApiError {
        ApiError::Api {
            status,
            code,
            message: message.into(),
            details: details.build(),
        }
    }

    /// 404 `experiment_not_found` (also for other tenants' experiments).
    pub fn experiment_not_found(experiment_id: &str) -> ApiError {
        ApiError::with(
            StatusCode::NOT_FOUND,
            "experiment_not_found",
            format!("experiment {experiment_id} not found"),
            Obj::new().set("experiment_id", experiment_id),
        )
    }

    /// One FastAPI-style validation error at `loc` (`["body", …]`).
    pub fn invalid(loc: &[&str], kind: &str, msg: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![validation_item(loc, kind, msg)])
    }

    /// The machine code, when the error has one (tests and logs).
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Api { code, .. } => Some(code),
            ApiError::PayloadTooLarge => Some("payload_too_large"),
            _ => None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Api { status, .. } | ApiError::Plain { status, .. } => *status,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// One item of a FastAPI 422 list.
pub fn validation_item(loc: &[&str], kind: &str, msg: impl Into<String>) -> Value {
    let loc: Vec<Value> = loc
        .iter()
        .map(|s| match s.parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::from(*s),
        })
        .collect();
    Obj::new()
        .set("type", kind)
        .set("loc", Value::Array(loc))
        .set("msg", msg.into())
        .build()
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> ApiError {
        ApiError::Internal(format!("sqlite: {e}"))
    }
}

/// Writes an internal error to stderr (the only logging this crate does):
/// the client sees a generic 500, the operator sees the cause.
#[allow(clippy::print_stderr)]
fn log_internal(message: &str) {
    eprintln!("auspex-coordinator: internal error: {message}");
}

/// A JSON response with `status`.
pub fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut resp = (status, to_json(v)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match self {
            ApiError::Api {
                code,
                message,
                details,
                ..
            } => Obj::new()
                .set(
                    "detail",
                    Obj::new().set(
                        "error",
                        Obj::new()
                            .set("code", code)
                            .set("message", message)
                            .set("details", details),
                    ),
                )
                .build(),
            ApiError::Validation(items) => Obj::new().set("detail", Value::Array(items)).build(),
            ApiError::Plain { detail, .. } => Obj::new().set("detail", detail).build(),
            ApiError::PayloadTooLarge => Obj::new()
                .set("error", "payload_too_large")
                .set("max_bytes", MAX_BODY_BYTES as u64)
                .build(),
            ApiError::Internal(message) => {
                log_internal(&message);
                Obj::new()
                    .set(
                        "detail",
                        Obj::new().set(
                            "error",
                            Obj::new()
                                .set("code", "internal_error")
                                .set("message", "internal server error")
                                .set("details", Obj::new()),
                        ),
                    )
                    .build()
            }
        };
        json_response(status, &body)
    }
}
