//! The route table and the middleware every request passes: a request id (`x-fc-request-id`),
//! bearer-token authentication, and rendering of `ApiError`s into FC's error body.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fnbridge_dispatch::{Dispatcher, ids};
use fnbridge_event::limits::MAX_API_BODY;

use crate::error::{ApiError, ErrorBody};
use crate::{
    aliases, async_config, dlq, events, functions, invoke, tasks, testing, triggers, versions,
};

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub dispatcher: Dispatcher,
    /// The admin token every request must present as `Authorization: Bearer <token>`.
    pub token: Arc<str>,
    /// The interpreter used to check Python handlers at deploy time.
    pub python: Arc<std::path::Path>,
}

pub fn router(state: AppState) -> Router {
    let v = "/2023-03-30";
    let api = Router::new()
        .route(
            &format!("{v}/functions"),
            post(functions::create).get(functions::list),
        )
        .route(
            &format!("{v}/functions/{{name}}"),
            get(functions::get)
                .put(functions::update)
                .delete(functions::delete),
        )
        .route(
            &format!("{v}/functions/{{name}}/invocations"),
            post(invoke::invoke),
        )
        .route(
            &format!("{v}/functions/{{name}}/versions"),
            post(versions::publish).get(versions::list),
        )
        .route(
            &format!("{v}/functions/{{name}}/versions/{{version}}"),
            axum::routing::delete(versions::delete),
        )
        .route(
            &format!("{v}/functions/{{name}}/aliases"),
            post(aliases::create).get(aliases::list),
        )
        .route(
            &format!("{v}/functions/{{name}}/aliases/{{alias}}"),
            get(aliases::get)
                .put(aliases::update)
                .delete(aliases::delete),
        )
        .route(
            &format!("{v}/functions/{{name}}/triggers"),
            post(triggers::create).get(triggers::list),
        )
        .route(
            &format!("{v}/functions/{{name}}/triggers/{{trigger}}"),
            get(triggers::get)
                .put(triggers::update)
                .delete(triggers::delete),
        )
        .route(
            &format!("{v}/functions/{{name}}/async-invoke-config"),
            get(async_config::get)
                .put(async_config::put)
                .delete(async_config::delete),
        )
        .route(
            &format!("{v}/async-invoke-configs"),
            get(async_config::list),
        )
        .route(
            &format!("{v}/functions/{{name}}/async-tasks"),
            get(tasks::list_for_function),
        )
        .route(
            &format!("{v}/functions/{{name}}/async-tasks/{{task}}"),
            get(tasks::get),
        )
        .route("/tasks", get(tasks::list_all))
        .route(
            &format!("{v}/functions/{{name}}/logs"),
            get(testing::read_logs),
        )
        .route(
            &format!("{v}/functions/{{name}}/test-events"),
            get(testing::list),
        )
        .route(
            &format!("{v}/functions/{{name}}/test-events/{{event}}"),
            get(testing::get).put(testing::put).delete(testing::delete),
        )
        .route("/templates", get(testing::list_templates))
        .route("/templates/{name}", get(testing::get_template))
        .route("/events", post(events::put))
        .route("/stats", get(stats))
        .route("/dlq", get(dlq::list))
        .route("/dlq/{id}", get(dlq::get).delete(dlq::delete))
        .route("/dlq/{id}/redrive", post(dlq::redrive))
        .fallback(unknown_path)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state);
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(api)
        // Bodies are bounded here once, generously; each handler applies its own tighter limit.
        .layer(DefaultBodyLimit::max(MAX_API_BODY))
        .layer(middleware::from_fn(request_id))
}

/// Delivery counters since start (fnbridge extension), for monitoring and benchmarks.
async fn stats(State(state): State<AppState>) -> axum::Json<fnbridge_dispatch::Stats> {
    axum::Json(state.dispatcher.stats())
}

async fn unknown_path(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "PathNotSupported",
        format!(
            "'{}' against '{}' is not supported",
            req.method(),
            req.uri().path()
        ),
    )
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "AccessDenied",
            "missing 'Authorization: Bearer <token>' header (the token is in the data dir's admin.token)",
        )
        .into_response(),
        Some(t) if !same(t.trim().as_bytes(), state.token.as_bytes()) => {
            ApiError::new(StatusCode::FORBIDDEN, "InvalidAccessKeyID", "the bearer token is not valid").into_response()
        }
        Some(_) => next.run(req).await,
    }
}

/// Gives every request an id, echoes it as `x-fc-request-id`, and renders error bodies.
async fn request_id(req: Request, next: Next) -> Response {
    let id = ids::request_id();
    let mut resp = next.run(req).await;
    if let Some(err) = resp.extensions_mut().remove::<ErrorBody>() {
        let status = resp.status();
        let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
        let body = serde_json::json!({"Code": err.code, "Message": err.message, "RequestId": id});
        resp = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(v) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    } else if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let body = serde_json::json!({
            "Code": "EntityTooLarge",
            "Message": format!("payload size exceeds maximum allowed size ({MAX_API_BODY} bytes)"),
            "RequestId": id
        });
        resp = (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    if !resp.headers().contains_key("x-fc-request-id")
        && let Ok(v) = HeaderValue::from_str(&id)
    {
        resp.headers_mut().insert("x-fc-request-id", v);
    }
    resp
}
