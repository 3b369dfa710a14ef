//! Health, readiness and stored files.

use std::ops::Range;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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

/// A `Range` header (RFC 9110) against an object of `size` bytes: `Ok(None)` serves the
/// whole object (no header, several ranges, a unit other than bytes, a malformed value — a
/// server may ignore any of them), `Ok(Some(r))` one range clipped to the object, `Err(())`
/// a range that starts past the end (416).
fn byte_range(header: Option<&HeaderValue>, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = header.and_then(|h| h.to_str().ok()).and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Ok(None) };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| if s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u64>().ok() } else { None };
    match (first.is_empty(), last.is_empty()) {
        // the last n bytes
        (true, false) => match parse(last) {
            Some(0) => Err(()),
            Some(n) if size > 0 => Ok(Some(size.saturating_sub(n)..size)),
            Some(_) => Err(()),
            None => Ok(None),
        },
        (false, _) => {
            let Some(start) = parse(first) else { return Ok(None) };
            let end = if last.is_empty() {
                size
            } else {
                match parse(last) {
                    Some(l) if l >= start => l.saturating_add(1).min(size),
                    _ => return Ok(None),
                }
            };
            if start >= size { Err(()) } else { Ok(Some(start..end)) }
        }
        (true, true) => Ok(None),
    }
}

/// Private files through signed, short-lived URLs (`files::service::signed_url`): a wrong
/// signature or key is 404, an expired URL 410; never kept by shared caches. Streamed from
/// storage, whole or one byte range (players seek in course videos).
pub async fn serve_private(
    State(app): State<AppState>,
    Path(key): Path<String>,
    axum::extract::Query(q): axum::extract::Query<Signed>,
    headers: HeaderMap,
) -> Response {
    let key = format!("private/{key}");
    let f = match crate::files::service::open_signed(&app, &key, q.exp, &q.sig).await {
        Ok(Ok(f)) => f,
        Ok(Err(crate::files::service::Refusal::Expired)) => return StatusCode::GONE.into_response(),
        Ok(Err(crate::files::service::Refusal::NotFound)) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            e.log_if_internal();
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let size = u64::try_from(f.size_bytes).unwrap_or(0);
    let Ok(range) = byte_range(headers.get(header::RANGE), size) else {
        return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{size}"))])
            .into_response();
    };
    let reading = match app.storage.open(&f.key, range.clone()).await {
        Ok(Some(r)) => r,
        Ok(None) | Err(StorageError::BadKey) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "private file read failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let served = reading.range.end - reading.range.start;
    let mut resp = Response::new(Body::from_stream(reading.body));
    let h = resp.headers_mut();
    let value = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
    h.insert(header::CONTENT_TYPE, value(f.content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(served));
    if range.is_some() {
        let (a, b) = (reading.range.start, reading.range.end.saturating_sub(1));
        h.insert(header::CONTENT_RANGE, value(format!("bytes {a}-{b}/{}", reading.size)));
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(h: &str, size: u64) -> Result<Option<Range<u64>>, ()> {
        byte_range(Some(&HeaderValue::from_str(h).unwrap()), size)
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(byte_range(None, 100), Ok(None));
        assert_eq!(r("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(r("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(r("bytes=90-500", 100), Ok(Some(90..100)));
        assert_eq!(r("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(r("bytes=-500", 100), Ok(Some(0..100)));
        assert_eq!(r("bytes=100-", 100), Err(()));
        assert_eq!(r("bytes=-0", 100), Err(()));
        // ignored: the whole object
        for h in ["bytes=0-1,5-6", "items=0-1", "bytes=9-3", "bytes=a-b", "bytes=-", "bytes=+1-2"] {
            assert_eq!(r(h, 100), Ok(None), "{h}");
        }
    }
}
