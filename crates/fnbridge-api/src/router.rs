//! The route table and the middleware every request passes: a request id (`x-fc-request-id`)
//! with a tracing span carrying it, a deadline on reading the body, a panic guard,
//! authentication (`identity::authenticate`), and rendering of `ApiError`s into FC's error body
//! (EventBridge's lower-case one on PutEvents).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fnbridge_dispatch::{Dispatcher, ids};
use fnbridge_event::limits::MAX_API_BODY;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::deadline::DeadlineBody;
use crate::error::{ApiError, ErrorBody};
use crate::{
    aliases, archives, async_config, bus, cdn, dlq, events, functions, identity, invoke, tasks,
    testing, triggers, versions,
};

/// EventBridge's PutEvents, as its SDK calls it; its errors are rendered in EventBridge's shape
/// `{"code","message","requestId"}`, every other route's in FC's `{"Code","Message","RequestId"}`.
const PUT_EVENTS: &str = "/openapi/putEvents";

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The dispatcher, and through it the identity service (`Dispatcher::auth`) that decides
    /// who each request is.
    pub dispatcher: Dispatcher,
    /// The interpreter used to check Python handlers at deploy time.
    pub python: Arc<std::path::Path>,
    /// How long reading a request body may take once it has started (`408` beyond it); `None`
    /// for no bound.
    pub body_timeout: Option<Duration>,
    /// The CDN control plane served at `/` (RPC style); `None` when the CDN is off.
    pub cdn: Option<fnbridge_cdn::Cdn>,
}

pub fn router(state: AppState) -> Router {
    let body_timeout = state.body_timeout;
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
            &format!("{v}/functions/{{name}}/code"),
            get(functions::get_code),
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
        .route("/", get(cdn::rpc).post(cdn::rpc))
        .route("/events", post(events::put))
        .route("/events/explain", post(events::explain))
        .route(PUT_EVENTS, post(bus::put_events))
        .route("/buses/{bus}/events", post(bus::post_binding))
        .route("/buses", post(bus::create).get(bus::list))
        .route("/test-event-pattern", post(bus::test_pattern))
        .route("/buses/{bus}", get(bus::get).delete(bus::delete))
        .route("/archives", post(archives::create).get(archives::list))
        .route(
            "/archives/{name}",
            get(archives::get).delete(archives::delete),
        )
        .route(
            "/replays",
            post(archives::start).get(archives::list_replays),
        )
        .route("/replays/{name}", get(archives::get_replay))
        .route("/replays/{name}/cancel", post(archives::cancel_replay))
        .route("/stats", get(stats))
        .route("/dlq", get(dlq::list))
        .route("/dlq/{id}", get(dlq::get).delete(dlq::delete))
        .route("/dlq/{id}/redrive", post(dlq::redrive))
        .route("/keys", post(identity::create_key).get(identity::list_keys))
        .route("/keys/{id}", axum::routing::delete(identity::delete_key))
        .route(
            "/roles",
            post(identity::create_role).get(identity::list_roles),
        )
        .route(
            "/roles/{name}",
            get(identity::get_role).delete(identity::delete_role),
        )
        .fallback(unknown_path)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            identity::authenticate,
        ))
        .with_state(state.clone());
    // Presigned: the URL itself is the credential (GetFunctionCode hands it out).
    let downloads = Router::new()
        .route(
            "/code-downloads/{name}/{file}",
            get(functions::download_code),
        )
        .with_state(state);
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(downloads)
        .merge(api)
        // Bodies are bounded here once, generously; each handler applies its own tighter limit.
        .layer(DefaultBodyLimit::max(MAX_API_BODY));
    edge(app, body_timeout)
}

/// The outermost layers: the request id middleware, and inside it the panic guard, so a
/// panicking handler is answered with FC's error body and the same request id.
fn edge(app: Router, body_timeout: Option<Duration>) -> Router {
    app.layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            Edge { body_timeout },
            request_id,
        ))
}

/// What the request id middleware needs besides the request.
#[derive(Clone, Copy)]
struct Edge {
    body_timeout: Option<Duration>,
}

/// A handler panicked: log it (inside the request's span, so with its id) and answer 500.
fn panic_response(panic: Box<dyn std::any::Any + Send>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    ApiError::internal(format!("handler panicked: {message}")).into_response()
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

/// Gives every request an id, runs it in a tracing span carrying the id (so every log line of
/// the request names it), bounds the time reading its body, echoes the id as
/// `x-fc-request-id`, and renders error bodies.
async fn request_id(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let id = ids::request_id();
    // At error level, so it is enabled whenever the request's warnings and errors are.
    let span = tracing::error_span!("request", request_id = %id);
    respond(edge, id, req, next).instrument(span).await
}

/// The request's id, for handlers that render their own bodies (the CDN's RPC answers).
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub String);

/// The error body of a request to `path`: EventBridge's lower-case one on PutEvents (its SDK
/// reads `code`, `message` and `requestId`), FC's everywhere else.
fn error_body(path: &str, code: &str, message: &str, id: &str) -> serde_json::Value {
    if path == PUT_EVENTS {
        serde_json::json!({"code": code, "message": message, "requestId": id})
    } else {
        serde_json::json!({"Code": code, "Message": message, "RequestId": id})
    }
}

async fn respond(edge: Edge, id: String, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(RequestId(id.clone()));
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let expired = Arc::new(AtomicBool::new(false));
    let req = match edge.body_timeout {
        Some(limit) => {
            let expired = expired.clone();
            req.map(|b| Body::new(DeadlineBody::new(b, limit, expired)))
        }
        None => req,
    };
    let mut resp = next.run(req).await;
    if expired.load(Ordering::Relaxed) {
        // The handler saw a failed body read and answered whatever it answers for that; the
        // cause was the client's slowness.
        let limit = edge.body_timeout.unwrap_or_default().as_secs_f64();
        resp = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeout",
            format!("the request body was not received within {limit} s"),
        )
        .into_response();
    }
    if let Some(err) = resp.extensions_mut().remove::<ErrorBody>() {
        let status = resp.status();
        let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
        let body = error_body(&path, err.code, &err.message, &id);
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
        let body = error_body(
            &path,
            "EntityTooLarge",
            &format!("payload size exceeds maximum allowed size ({MAX_API_BODY} bytes)"),
            &id,
        );
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
    tracing::debug!(%method, path, status = resp.status().as_u16(), "answered");
    resp
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    use axum::body::Bytes;
    use http_body::Frame;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    /// Log lines written while the returned guard lives (on this thread).
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Log {
        fn capture() -> (Log, tracing::subscriber::DefaultGuard) {
            let log = Log::default();
            let writer = log.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .finish();
            (log, tracing::subscriber::set_default(subscriber))
        }
        fn lines_with(&self, needle: &str) -> Vec<String> {
            String::from_utf8_lossy(&self.0.lock().unwrap())
                .lines()
                .filter(|l| l.contains(needle))
                .map(str::to_owned)
                .collect()
        }
    }

    async fn boom() -> &'static str {
        panic!("boom in a handler")
    }

    async fn logs() -> &'static str {
        tracing::warn!("a line from the handler");
        "ok"
    }

    async fn call(app: Router, req: axum::http::Request<Body>) -> (StatusCode, String, Value) {
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let id = resp.headers()["x-fc-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, id, v)
    }

    fn get_req(path: &str) -> axum::http::Request<Body> {
        axum::http::Request::get(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_fc_500_with_the_request_id() {
        let (log, _guard) = Log::capture();
        let app = edge(Router::new().route("/boom", get(boom)), None);
        let (status, id, v) = call(app.clone(), get_req("/boom")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(v["Code"], "InternalServerError", "{v}");
        assert_eq!(v["RequestId"], id.as_str());
        assert!(v["Message"].as_str().unwrap().contains("internal error"));
        // The panic is logged, with the request id.
        let lines = log.lines_with("handler panicked: boom in a handler");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains(&format!("request_id={id}")), "{lines:?}");
        // The router still answers.
        let (status, ..) = call(app, get_req("/boom")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn every_log_line_of_a_request_carries_its_id() {
        let (log, _guard) = Log::capture();
        let app = edge(Router::new().route("/logs", get(logs)), None);
        let resp = app.oneshot(get_req("/logs")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let id = resp.headers()["x-fc-request-id"].to_str().unwrap();
        for needle in ["a line from the handler", "answered"] {
            let lines = log.lines_with(needle);
            assert_eq!(lines.len(), 1, "{needle}: {lines:?}");
            assert!(lines[0].contains(&format!("request_id={id}")), "{lines:?}");
        }
    }

    /// A body that sends one byte and then nothing, without ending.
    struct Stalled(bool);

    impl http_body::Body for Stalled {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.0 {
                return Poll::Pending;
            }
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{")))))
        }
    }

    #[tokio::test]
    async fn a_body_not_received_in_time_is_answered_408() {
        let echo = post(|b: Bytes| async move { b.len().to_string() });
        let app = edge(
            Router::new().route("/echo", echo),
            Some(Duration::from_millis(100)),
        );
        let stalled = axum::http::Request::post("/echo")
            .body(Body::new(Stalled(false)))
            .unwrap();
        let (status, id, v) = call(app.clone(), stalled).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(v["Code"], "RequestTimeout", "{v}");
        assert_eq!(v["RequestId"], id.as_str());
        // A body that arrives is read as before.
        let ok = axum::http::Request::post("/echo")
            .body(Body::from("{}"))
            .unwrap();
        let resp = app.oneshot(ok).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
}
