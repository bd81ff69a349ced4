//! The route table and the request plumbing shared by the route modules.

pub mod activity;
pub mod applications;
pub mod catalog;
pub mod events;
pub mod evidence;
pub mod experiments;
pub mod packages;
pub mod prereg;
pub mod receipts;
pub mod results;
pub mod tenants;
pub mod work_units;
pub mod workers;

use auspex_wire::json::{self, Object, Value};
use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};

use crate::auth::{
    Credential, RawRequest, authenticate, authenticate_once, authenticate_self_signed, forbidden,
};
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
            "/api/v0/experiments/{id}/results/export",
            get(evidence::export),
        )
        .route(
            "/api/v0/experiments/{id}/results/{result_id}",
            get(result_get),
        )
        .route(
            "/api/v0/experiments/{id}/attestation",
            get(evidence::get_attestation),
        )
        .route("/api/v0/experiments/{id}/activity", get(activity_get))
        .route(
            "/api/v0/experiments/{id}/events",
            get(events::experiment_stream),
        )
        .route(
            "/api/v0/experiments/{id}/events/recent",
            get(experiment_events_recent),
        )
        .route("/api/v0/events", get(events::firehose))
        .route("/api/v0/events/recent", get(events_recent))
        .route(
            "/api/v0/experiments/{id}/driver-heartbeat",
            post(driver_heartbeat),
        )
        .route(
            "/api/v0/experiments/{id}/pre-registration/deviations",
            post(deviation_create).get(deviation_list),
        )
        .route("/api/v0/models/catalog", get(models_catalog))
        .route("/api/v0/models/supported", get(models_supported))
        .route(
            "/api/v0/model-requests",
            post(model_request_create).get(model_request_list),
        )
        .route(
            "/api/v0/model-requests/{id}/actions/{action}",
            post(model_request_action),
        )
        .route(
            "/api/v0/software-requests",
            post(software_create).get(software_list),
        )
        .route(
            "/api/v0/software-requests/{id}/actions/{action}",
            post(software_action),
        )
        .route("/api/v0/packages", post(package_upload))
        .route(
            "/api/v0/packages/by-manifest/{hash}",
            get(package_by_manifest),
        )
        .route("/api/v0/packages/{digest}", get(package_get))
        .route(
            "/api/v0/tenant-applications",
            post(application_submit).get(application_list),
        )
        .route("/api/v0/tenant-applications/mine", get(application_mine))
        .route(
            "/api/v0/tenant-applications/{id}/actions/{action}",
            post(application_action),
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

/// Path parameters, with a malformed one (bad percent-encoding, invalid
/// UTF-8) answered as a 422 validation error in the API's envelope instead
/// of axum's plain-text 400.
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Params(v)),
            Err(e) => Err(ApiError::Validation(vec![validation_item(
                &["path"],
                "path_invalid",
                e.body_text(),
            )])),
        }
    }
}

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
            $(Params($p): Params<$t>,)*
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

handler!(activity_get, |s, cred, _req, id: String| activity::get(
    s, &cred, &id
));
handler!(experiment_events_recent, |s, cred, req, id: String| {
    results::viewer(&cred)?;
    {
        let conn = s.db().lock();
        experiments::load_visible(&conn, &cred, &id)?;
    }
    events::recent(s, Some(&id), &req.target)
});
handler!(events_recent, |s, cred, req| {
    require_maintainer(&cred)?;
    events::recent(s, None, &req.target)
});
handler!(once deviation_create, |s, cred, req, id: String| {
    let body = Body::parse(&req, true)?;
    prereg::create(s, &cred, &id, &body)
});
handler!(deviation_list, |s, cred, _req, id: String| prereg::list(
    s, &cred, &id
));
handler!(driver_heartbeat, |s, cred, req, id: String| {
    let body = Body::parse(&req, true)?;
    catalog::driver_heartbeat(s, &cred, &id, &body)
});
handler!(models_catalog, |s, cred, _req| catalog::catalog(s, &cred));
handler!(models_supported, |s, cred, _req| catalog::supported(
    s, &cred
));
handler!(model_request_create, |s, cred, req| {
    let body = Body::parse(&req, true)?;
    catalog::model_request_create(s, &cred, &body)
});
handler!(model_request_list, |s, cred, req| {
    catalog::model_request_list(s, &cred, &query_params(&req.target))
});
handler!(model_request_action, |s, cred, req, p: (String, String)| {
    let body = Body::parse(&req, true)?;
    catalog::model_request_action(s, &cred, &p.0, &p.1, &body)
});
handler!(software_create, |s, cred, req| {
    let body = Body::parse(&req, true)?;
    catalog::software_create(s, &cred, &body)
});
handler!(software_list, |s, cred, req| {
    catalog::software_list(s, &cred, &query_params(&req.target))
});
handler!(software_action, |s, cred, req, p: (String, String)| {
    let body = Body::parse(&req, true)?;
    catalog::software_action(s, &cred, &p.0, &p.1, &body)
});
handler!(package_by_manifest, |s, cred, _req, hash: String| {
    packages::by_manifest(s, &cred, &hash)
});
handler!(package_get, |s, cred, _req, digest: String| packages::get(
    s, &cred, &digest
));
handler!(application_list, |s, cred, req| {
    let q = query_params(&req.target);
    applications::list(s, &cred, query_get(&q, "status_filter"))
});
handler!(application_action, |s, cred, req, p: (String, String)| {
    let body = Body::parse(&req, false)?;
    applications::action(s, &cred, &p.0, &p.1, &body)
});

/// `POST /packages`: read with the 64 MiB package cap instead of 2 MiB.
async fn package_upload(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let req = match RawRequest::read(req, packages::MAX_PACKAGE_BYTES).await {
        Ok(r) => r,
        Err(ApiError::PayloadTooLarge) => {
            return ApiError::with(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "package_too_large",
                "the package is over 64 MiB",
                crate::util::Obj::new().set("max_bytes", packages::MAX_PACKAGE_BYTES as u64),
            )
            .into_response();
        }
        Err(e) => return e.into_response(),
    };
    blocking(state, move |s| {
        let cred = authenticate(s, &req)?;
        packages::upload(s, &cred, &req)
    })
    .await
}

/// `POST /tenant-applications` (proof of possession).
async fn application_submit(State(state): State<AppState>, req: RawRequest) -> Response {
    blocking(state, move |s| {
        let pubkey = authenticate_self_signed(s, &req)?;
        let body = Body::parse(&req, true)?;
        applications::submit(s, &pubkey, &body)
    })
    .await
}

/// `GET /tenant-applications/mine` (proof of possession).
async fn application_mine(State(state): State<AppState>, req: RawRequest) -> Response {
    blocking(state, move |s| {
        let pubkey = authenticate_self_signed(s, &req)?;
        applications::mine(s, &pubkey)
    })
    .await
}

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

/// An optional boolean query parameter with Pydantic's spellings (422
/// `bool_parsing` otherwise).
pub(crate) fn query_bool(q: &[(String, String)], name: &str) -> ApiResult<bool> {
    match query_get(q, name).map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no" | "off" | "f" | "n") => Ok(false),
        Some("true" | "1" | "yes" | "on" | "t" | "y") => Ok(true),
        Some(_) => Err(ApiError::invalid(
            &["query", name],
            "bool_parsing",
            "Input should be a valid boolean, unable to interpret input",
        )),
    }
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
