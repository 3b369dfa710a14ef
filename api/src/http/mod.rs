//! The HTTP transport: POST /graphql (JSON and multipart uploads, with real body limits),
//! GET /graphql (GraphiQL), GET /graphql/ws (graphql-transport-ws), health, readiness,
//! metrics and files. Errors are given their code and the caller's language here.

mod auth;
mod files;
pub mod graphql;
mod input;
pub mod localize;
pub mod metrics;
mod pay;
pub mod persisted;
mod playground;
pub mod schema;
mod terminals;
mod training;
pub mod ws;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use tracing::Instrument;

pub use schema::{Schemas, sdl};

use crate::kit::state::AppState;

type Shared = (AppState, Schemas);

pub fn router(state: AppState, schemas: Schemas) -> Router {
    let plain = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(files::readyz))
        .route("/metrics", get(metrics::render))
        .route("/files/{*key}", get(files::serve_file))
        .route("/private/{*key}", get(files::serve_private))
        .route("/pay/wechat/{code}/notify", axum::routing::post(pay::wechat))
        .route("/pay/alipay/{code}/notify", axum::routing::post(pay::alipay))
        .route("/attendance/terminals/{id}/punches", axum::routing::post(terminals::punches))
        .route("/training/courses/{id}/materials", axum::routing::post(training::upload_material))
        .with_state(state.clone());
    Router::new()
        .route("/graphql", get(playground::page).post(graphql::post))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/graphql/assets/{name}", get(playground::asset))
        .with_state((state, schemas))
        .merge(plain)
        .layer(axum::middleware::from_fn(request_span))
}

/// The id of a request: the client's `X-Request-Id` when it is sane, else a new one.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn sane_request_id(v: &str) -> bool {
    (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A new request id: this process's random prefix and a counter (no random bytes, hence
/// no system call, per request); unique across replicas by the prefix.
fn new_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_owned());
    format!("{prefix}{:016x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One span per request (request id, method, path; the GraphQL handler adds the operation,
/// user and company), and the id echoed in `X-Request-Id`.
async fn request_span(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        operation = tracing::field::Empty,
        user_id = tracing::field::Empty,
        company_id = tracing::field::Empty,
    );
    let mut resp = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_bounded() {
        assert!(super::sane_request_id("0190a1b2-c3d4"));
        assert!(!super::sane_request_id(""));
        assert!(!super::sane_request_id("a b"));
        assert!(!super::sane_request_id(&"x".repeat(65)));
    }
}
