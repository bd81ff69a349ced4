//! The route table and the request plumbing shared by the route modules.

pub mod experiments;
pub mod receipts;
pub mod results;
pub mod tenants;
pub mod work_units;
pub mod workers;

use auspex_wire::json::{self, Object, Value};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};

use crate::auth::{Credential, RawRequest, authenticate, authenticate_once, forbidden};
use crate::db::ApiResult;
use crate::error::{ApiError, validation_item};
use crate::{AppState, blocking};

/// Every route of this crate.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v0/auth/whoami", get(whoami))
        .route("/api/v0/tenants", post(tenant_create).get(tenant_list))
        .route("/api/v0/tenants/{tenant_id}", get(tenant_get))
        .route(
            "/api/v0/experiments",
            post(experiment_create).get(experiment_list),
        )
        .route("/api/v0/experiments/{id}", get(experiment_get))
        .route(
            "/api/v0/experiments/{id}/actions/{action}",
            post(experiment_action),
        )
        .route(
            "/api/v0/experiments/{id}/work-units",
            post(units_submit).get(units_list),
        )
        .route(
            "/api/v0/experiments/{id}/work-units/{unit_id}",
            get(unit_get),
        )
        .route("/api/v0/experiments/{id}/results", get(results_list))
        .route(
            "/api/v0/experiments/{id}/results/{result_id}",
            get(result_get),
        )
        .route("/api/v0/experiments/{id}/receipts", get(receipts_list))
        .route("/api/v0/receipts/{receipt_id}", get(receipt_get))
        .route("/api/v0/workers/enroll", post(worker_enroll))
        .route("/api/v0/workers/{wid}", get(worker_get))
        .route("/api/v0/workers/{wid}/heartbeat", post(worker_heartbeat))
        .route("/api/v0/workers/{wid}/assignments", get(worker_assignments))
        .route(
            "/api/v0/workers/{wid}/assignments/{unit_id}/result",
            post(worker_result),
        )
        .route(
            "/api/v0/workers/{wid}/assignments/{unit_id}/refuse",
            post(worker_refuse),
        )
        .route("/api/v0/workers/{wid}/prestage", get(worker_prestage))
        .route(
            "/api/v0/workers/{wid}/results/{result_id}/canonical-receipt",
            get(worker_canonical_receipt),
        )
}

// ---------------------------------------------------------------------------
// Handlers: authenticate, then run the route's synchronous code.
// ---------------------------------------------------------------------------

macro_rules! handler {
    ($name:ident, |$s:ident, $cred:ident, $req:ident $(, $p:ident : $t:ty)*| $body:expr) => {
        handler!(@ authenticate, $name, |$s, $cred, $req $(, $p: $t)*| $body);
    };
    (once $name:ident, |$s:ident, $cred:ident, $req:ident $(, $p:ident : $t:ty)*| $body:expr) => {
        handler!(@ authenticate_once, $name, |$s, $cred, $req $(, $p: $t)*| $body);
    };
    (@ $auth:ident, $name:ident, |$s:ident, $cred:ident, $req:ident $(, $p:ident : $t:ty)*| $body:expr) => {
        async fn $name(
            State(state): State<AppState>,
            $(Path($p): Path<$t>,)*
            $req: RawRequest,
        ) -> Response {
            blocking(state, move |$s| {
                let $cred = $auth($s, &$req)?;
                $body
            })
            .await
        }
    };
}

handler!(whoami, |_s, cred, _req| tenants::whoami(&cred));
handler!(tenant_create, |s, cred, req| {
    let body = Body::parse(&req, true)?;
    tenants::create(s, &cred, &body)
});
handler!(tenant_list, |s, cred, _req| tenants::list(s, &cred));
handler!(tenant_get, |s, cred, _req, id: String| tenants::get(
    s, &cred, &id
));
handler!(experiment_create, |s, cred, req| {
    let body = Body::parse(&req, true)?;
    experiments::create(s, &cred, &body)
});
handler!(experiment_list, |s, cred, _req| experiments::list(s, &cred));
handler!(experiment_get, |s, cred, _req, id: String| {
    experiments::get(s, &cred, &id)
});
handler!(once experiment_action, |s, cred, req, p: (String, String)| {
    experiments::action(s, &cred, &p.0, &p.1, &query_params(&req.target))
});
handler!(units_submit, |s, cred, req, id: String| {
    let body = Body::parse(&req, true)?;
    work_units::submit(s, &cred, &id, &body)
});
handler!(units_list, |s, cred, _req, id: String| work_units::list(
    s, &cred, &id
));
handler!(unit_get, |s, cred, _req, p: (String, String)| {
    work_units::get(s, &cred, &p.0, &p.1)
});
handler!(results_list, |s, cred, req, id: String| {
    results::list(s, &cred, &id, &query_params(&req.target))
});
handler!(result_get, |s, cred, _req, p: (String, String)| {
    results::get(s, &cred, &p.0, &p.1)
});
handler!(receipts_list, |s, cred, _req, id: String| receipts::list(
    s, &cred, &id
));
handler!(receipt_get, |s, _cred, _req, id: String| {
    receipts::get_public(s, &id)
});
handler!(worker_get, |s, cred, _req, wid: String| workers::get(
    s, &cred, &wid
));
handler!(once worker_heartbeat, |s, cred, req, wid: String| {
    let body = Body::parse(&req, false)?;
    workers::heartbeat(s, &cred, &wid, &body)
});
handler!(worker_assignments, |s, cred, _req, wid: String| {
    workers::assignments(s, &cred, &wid)
});
handler!(worker_result, |s, cred, req, p: (String, String)| {
    let body = Body::parse(&req, true)?;
    workers::result(s, &cred, &p.0, &p.1, &body)
});
handler!(worker_refuse, |s, cred, req, p: (String, String)| {
    let body = Body::parse(&req, true)?;
    workers::refuse(s, &cred, &p.0, &p.1, &body)
});
handler!(worker_prestage, |s, cred, _req, wid: String| {
    workers::prestage(s, &cred, &wid)
});
handler!(
    worker_canonical_receipt,
    |s, cred, _req, p: (String, String)| receipts::canonical(s, &cred, &p.0, &p.1)
);

/// `POST /workers/enroll` is anonymous: signature headers, if any, are not
/// evaluated (the 0.2.80 worker sends it unsigned; a signature by the key
/// being enrolled could not resolve yet anyway).
async fn worker_enroll(State(state): State<AppState>, req: RawRequest) -> Response {
    blocking(state, move |s| {
        let body = Body::parse(&req, true)?;
        workers::enroll(s, &body)
    })
    .await
}

// ---------------------------------------------------------------------------
// Shared helpers.
// ---------------------------------------------------------------------------

/// 403 `maintainer_required` unless the caller is a maintainer.
pub(crate) fn require_maintainer(cred: &Credential) -> ApiResult<()> {
    if cred.is_maintainer() {
        Ok(())
    } else {
        Err(forbidden(
            "maintainer_required",
            "maintainer credential required",
            cred,
        ))
    }
}

/// Percent-decodes a query component (`+` is a space).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query parameters of a request target, decoded, in order.
pub(crate) fn query_params(target: &str) -> Vec<(String, String)> {
    let Some((_, q)) = target.split_once('?') else {
        return Vec::new();
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// The last value of query parameter `name` (FastAPI takes the last).
pub(crate) fn query_get<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// FastAPI's pattern-mismatch item at `body.<field>`.
pub(crate) fn pattern_error(field: &str, pattern: &str, input: &str) -> Value {
    let mut v = validation_item(
        &["body", field],
        "string_pattern_mismatch",
        format!("String should match pattern '{pattern}'"),
    );
    if let Value::Object(o) = &mut v {
        o.insert("input".into(), input.into());
    }
    v
}

/// A parsed JSON request body (an object), read with Python's `json.loads`
/// semantics so numbers keep their exact form.
#[derive(Debug, Clone)]
pub struct Body(Object);

impl Body {
    /// Parses `req`'s body. An empty body is a FastAPI "Field required" 422
    /// when `required`, else an empty object.
    pub fn parse(req: &RawRequest, required: bool) -> ApiResult<Body> {
        if req.body.iter().all(u8::is_ascii_whitespace) {
            return if required {
                Err(ApiError::invalid(&["body"], "missing", "Field required"))
            } else {
                Ok(Body(Object::new()))
            };
        }
        let v = json::parse(&req.body).map_err(|e| {
            ApiError::Validation(vec![validation_item(
                &["body", &e.offset.to_string()],
                "json_invalid",
                format!("JSON decode error: {}", e.kind),
            )])
        })?;
        match v {
            Value::Object(o) => Ok(Body(o)),
            _ => Err(ApiError::invalid(
                &["body"],
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
            )),
        }
    }

    /// The raw member.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// A required string member.
    pub fn req_str(&self, key: &str, errors: &mut Vec<Value>) -> Option<String> {
        match self.0.get(key) {
            None => {
                errors.push(validation_item(&["body", key], "missing", "Field required"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(validation_item(
                    &["body", key],
                    "string_type",
                    "Input should be a valid string",
                ));
                None
            }
        }
    }

    /// An optional string member (`null` = absent).
    pub fn opt_str(&self, key: &str, errors: &mut Vec<Value>) -> Option<String> {
        match self.0.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(validation_item(
                    &["body", key],
                    "string_type",
                    "Input should be a valid string",
                ));
                None
            }
        }
    }

    /// An optional boolean member.
    pub fn opt_bool(&self, key: &str, errors: &mut Vec<Value>) -> Option<bool> {
        match self.0.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                errors.push(validation_item(
                    &["body", key],
                    "bool_type",
                    "Input should be a valid boolean",
                ));
                None
            }
        }
    }

    /// A required object member.
    pub fn req_obj(&self, key: &str, errors: &mut Vec<Value>) -> Option<Object> {
        match self.0.get(key) {
            None => {
                errors.push(validation_item(&["body", key], "missing", "Field required"));
                None
            }
            Some(Value::Object(o)) => Some(o.clone()),
            Some(_) => {
                errors.push(validation_item(
                    &["body", key],
                    "dict_type",
                    "Input should be a valid dictionary",
                ));
                None
            }
        }
    }

    /// A required integer member within `min..=max`.
    pub fn req_int(&self, key: &str, min: i64, max: i64, errors: &mut Vec<Value>) -> Option<i64> {
        match self.0.get(key) {
            None => {
                errors.push(validation_item(&["body", key], "missing", "Field required"));
                None
            }
            Some(Value::Int(i)) => match i.as_i64() {
                Some(n) if (min..=max).contains(&n) => Some(n),
                _ => {
                    errors.push(validation_item(
                        &["body", key],
                        "less_than_equal",
                        format!("Input should be between {min} and {max}"),
                    ));
                    None
                }
            },
            Some(_) => {
                errors.push(validation_item(
                    &["body", key],
                    "int_type",
                    "Input should be a valid integer",
                ));
                None
            }
        }
    }
}
