//! Health, readiness and stored files.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::kit::state::AppState;
use crate::kit::storage::StorageError;

pub async fn readyz(State(app): State<AppState>) -> Response {
    let db = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&app.db).await.is_ok();
    let mut conn = app.redis.clone();
    let redis = redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok();
    let broker = app.part::<crate::iot::telemetry::mqtt::BrokerLink>().is_ok_and(|b| b.up());
    let body = serde_json::json!({ "postgres": db, "redis": redis, "broker": broker });
    let status = if db && redis && broker { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

/// Public files (company logos). Keys are UUID-named, so they cannot be guessed; private
/// files are never served here, whatever their key.
pub async fn serve_file(State(app): State<AppState>, Path(key): Path<String>) -> Response {
    if key.starts_with("private/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let content_type = if key.ends_with(".png") {
        "image/png"
    } else if key.ends_with(".jpg") {
        "image/jpeg"
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match app.storage.get(&key).await {
        Ok(Some(bytes)) => {
            ([(header::CONTENT_TYPE, content_type), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], bytes).into_response()
        }
        Ok(None) | Err(StorageError::BadKey) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "file read failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The query of a signed private-file URL.
#[derive(serde::Deserialize)]
pub struct Signed {
    exp: i64,
    sig: String,
}

/// Private files through signed, short-lived URLs (`files::service::signed_url`): a wrong
/// signature or key is 404, an expired URL 410; never kept by shared caches.
pub async fn serve_private(
    State(app): State<AppState>,
    Path(key): Path<String>,
    axum::extract::Query(q): axum::extract::Query<Signed>,
) -> Response {
    let key = format!("private/{key}");
    match crate::files::service::open_signed(&app, &key, q.exp, &q.sig).await {
        Ok(Ok((content_type, bytes))) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                (header::CACHE_CONTROL, "private, max-age=300".to_owned()),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(crate::files::service::Refusal::Expired)) => StatusCode::GONE.into_response(),
        Ok(Err(crate::files::service::Refusal::NotFound)) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            e.log_if_internal();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
