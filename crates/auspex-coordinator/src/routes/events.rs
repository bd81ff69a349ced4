//! Server-sent events (`coordinator.md` §9, `tenant-sdk.md` §4.8):
//! `GET /experiments/{id}/events` (owning researcher or maintainer),
//! `GET /events` (the maintainer firehose), and the ring-buffer replays
//! `…/events/recent?limit=`.
//!
//! A stream starts with `: connected`, then one frame per event —
//! `id: <seq>`, `event: <type>`, `data: <compact JSON, experiment_id first,
//! then the payload's members>` — and `: ping` after
//! [`Config::sse_keepalive`](crate::Config) without a frame. `seq` is
//! global, so a per-experiment stream sees gaps that are not losses.
//! Unlike the real service, a reconnect with `Last-Event-ID: <seq>` first
//! replays the events after `seq` still in the ring buffer
//! ([`RING_CAPACITY`](crate::events::RING_CAPACITY)). A subscriber that
//! falls more than [`SUBSCRIBER_QUEUE`](crate::events::SUBSCRIBER_QUEUE)
//! events behind loses the oldest, as on the real bus. Streams end when the
//! server shuts down.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use auspex_wire::json::{Object, Value};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::AppState;
use crate::auth::{RawRequest, authenticate};
use crate::db::ApiResult;
use crate::error::{ApiError, json_response, validation_item};
use crate::events::{Event, RING_CAPACITY};
use crate::util::{Obj, to_json};

use super::{experiments, query_get, query_params, require_maintainer, results};

/// The `data:` JSON of an event: `experiment_id` first, then the payload.
fn data_json(e: &Event) -> String {
    let mut o = Object::new();
    o.insert(
        "experiment_id".into(),
        e.experiment_id.as_deref().map_or(Value::Null, Value::from),
    );
    if let Value::Object(d) = &e.data {
        for (k, v) in d {
            if k != "experiment_id" {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    to_json(&Value::Object(o))
}

/// One SSE frame.
pub fn frame(e: &Event) -> String {
    format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        e.seq,
        e.event_type,
        data_json(e)
    )
}

/// The body stream: frames from the pump task.
struct FrameStream(mpsc::Receiver<Bytes>);

impl futures_core::Stream for FrameStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|o| o.map(Ok))
    }
}

fn wanted(e: &Event, filter: Option<&str>) -> bool {
    filter.is_none_or(|id| e.experiment_id.as_deref() == Some(id))
}

async fn pump(
    state: AppState,
    mut rx: broadcast::Receiver<Event>,
    filter: Option<String>,
    last_event_id: Option<u64>,
    tx: mpsc::Sender<Bytes>,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    let keepalive = state.config().sse_keepalive;
    let send = |text: String| {
        let tx = tx.clone();
        async move { tx.send(Bytes::from(text)).await.is_ok() }
    };
    if !send(": connected\n\n".to_owned()).await {
        return;
    }
    let mut last_seq = 0u64;
    if let Some(after) = last_event_id {
        for e in state.events().since(filter.as_deref(), after) {
            last_seq = e.seq;
            if !send(frame(&e)).await {
                return;
            }
        }
    }
    let mut idle_until = Instant::now() + keepalive;
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(e) => {
                    if e.seq > last_seq && wanted(&e, filter.as_deref()) {
                        last_seq = e.seq;
                        if !send(frame(&e)).await {
                            return;
                        }
                        idle_until = Instant::now() + keepalive;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tokio::time::sleep_until(idle_until) => {
                if !send(": ping\n\n".to_owned()).await {
                    return;
                }
                idle_until = Instant::now() + keepalive;
            }
            // `wait_for` also sees a shutdown that began before this task
            // first ran (a plain `changed()` would miss it and keep the
            // connection, and so the graceful shutdown, open forever).
            _ = async { closing.wait_for(|closing| *closing).await.is_ok() } => return,
            () = tx.closed() => return,
        }
    }
}

fn stream_response(
    state: &AppState,
    filter: Option<String>,
    last_event_id: Option<u64>,
) -> Response {
    // Subscribe before the replay is read, so nothing falls in between.
    let rx = state.events().subscribe();
    let closing = state.closing();
    let (tx, body_rx) = mpsc::channel(64);
    tokio::spawn(pump(state.clone(), rx, filter, last_event_id, tx, closing));
    let mut resp = Body::from_stream(FrameStream(body_rx)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

fn last_event_id(req: &RawRequest) -> Option<u64> {
    req.header("last-event-id")
        .and_then(|v| v.trim().parse::<u64>().ok())
}

async fn authorize(
    state: &AppState,
    req: RawRequest,
    experiment_id: Option<String>,
) -> ApiResult<RawRequest> {
    let s = state.clone();
    tokio::task::spawn_blocking(move || {
        let cred = authenticate(&s, &req)?;
        match &experiment_id {
            Some(id) => {
                results::viewer(&cred)?;
                let conn = s.db().lock();
                experiments::load_visible(&conn, &cred, id)?;
            }
            None => require_maintainer(&cred)?,
        }
        Ok(req)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("handler panicked: {e}")))?
}

/// `GET /experiments/{id}/events`.
pub(crate) async fn experiment_stream(
    State(state): State<AppState>,
    super::Params(id): super::Params<String>,
    req: RawRequest,
) -> Response {
    match authorize(&state, req, Some(id.clone())).await {
        Ok(req) => stream_response(&state, Some(id), last_event_id(&req)),
        Err(e) => e.into_response(),
    }
}

/// `GET /events` (maintainer firehose).
pub(crate) async fn firehose(State(state): State<AppState>, req: RawRequest) -> Response {
    match authorize(&state, req, None).await {
        Ok(req) => stream_response(&state, None, last_event_id(&req)),
        Err(e) => e.into_response(),
    }
}

/// `…/events/recent?limit=` (1..=2000, default 100): `{events: [{seq, type,
/// experiment_id, data, at}]}`, oldest first.
pub(crate) fn recent(
    state: &AppState,
    experiment_id: Option<&str>,
    target: &str,
) -> ApiResult<Response> {
    let q = query_params(target);
    let limit = match query_get(&q, "limit") {
        None => 100,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if (1..=RING_CAPACITY).contains(&n) => n,
            _ => {
                return Err(ApiError::Validation(vec![validation_item(
                    &["query", "limit"],
                    "less_than_equal",
                    format!("Input should be an integer between 1 and {RING_CAPACITY}"),
                )]));
            }
        },
    };
    let events: Vec<Value> = state
        .events()
        .recent(experiment_id, limit)
        .into_iter()
        .map(|e| {
            Obj::new()
                .set("seq", e.seq)
                .set("type", e.event_type)
                .set(
                    "experiment_id",
                    e.experiment_id.map_or(Value::Null, Value::from),
                )
                .set("data", e.data)
                .set("at", e.at)
                .build()
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &Obj::new().set("events", Value::Array(events)).build(),
    ))
}
