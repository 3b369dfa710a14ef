//! POST /graphql: JSON and multipart (uploads) bodies with real size limits, batches,
//! a request timeout, and errors in the caller's language.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::http::MultipartOptions;
use async_graphql::{BatchRequest, BatchResponse, ParseRequestError, ServerError};
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::{authenticate, bearer, client_ip};
use super::localize::localize;
use super::metrics::op_label;
use super::persisted::ManifestOp;
use super::schema::{is_introspection, with_loaders};
use super::{RequestId, Shared};
use crate::kit::error::{AppError, Locale, Msg};
use crate::kit::gql::{ExpensiveBudget, RequestMeta};
use crate::kit::state::AppState;
use crate::org::estate::service::{AnswerKey, HousePages};
use crate::rbac::graphql::Caller;
use crate::rbac::model::Perm;

pub fn error_response(status: StatusCode, err: AppError, locale: Locale) -> Response {
    let mut errors = vec![ServerError::new(err.to_string(), None)];
    errors[0].source = Some(Arc::new(err));
    localize(&mut errors, locale);
    (status, axum::Json(serde_json::json!({ "errors": errors }))).into_response()
}

pub fn locale_of(headers: &HeaderMap) -> Locale {
    Locale::from_accept_language(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()))
}

pub async fn post(
    State((state, schema)): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request_id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let locale = locale_of(&headers);
    let limits = &state.config.limits;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let multipart = content_type.as_deref().is_some_and(|c| c.starts_with("multipart/"));
    let max = if multipart { limits.max_multipart_bytes() } else { limits.max_body_bytes };
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            AppError::validation(
                "body",
                Msg::owned(format!("请求体超过{max}字节上限"), format!("Request body exceeds the {max}-byte limit")),
            ),
            locale,
        )
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > max)
    {
        metrics::counter!("graphql_rejected_total", "reason" => "body_too_large").increment(1);
        return too_large();
    }
    // the async-graphql extractor would read any length: read it ourselves, bounded
    let bytes = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(_) => {
            metrics::counter!("graphql_rejected_total", "reason" => "body_too_large").increment(1);
            return too_large();
        }
    };
    let opts =
        MultipartOptions::default().max_file_size(limits.max_upload_bytes).max_num_files(limits.max_upload_files);
    let batch =
        match async_graphql::http::receive_batch_body(content_type, futures_util::io::Cursor::new(bytes), opts).await {
            Ok(b) => b,
            Err(ParseRequestError::PayloadTooLarge) => return too_large(),
            Err(e) => {
                let msg = Msg::owned(format!("无法解析请求：{e}"), format!("Cannot parse the request: {e}"));
                return error_response(StatusCode::BAD_REQUEST, AppError::validation("body", msg), locale);
            }
        };
    if let BatchRequest::Batch(v) = &batch
        && v.len() > limits.max_batch
    {
        let msg = Msg::owned(
            format!("批量请求最多{}个操作", limits.max_batch),
            format!("At most {} operations per batch", limits.max_batch),
        );
        return error_response(StatusCode::BAD_REQUEST, AppError::validation("body", msg), locale);
    }
    // text input is checked once, here, for every string argument
    let checked = match &batch {
        BatchRequest::Single(r) => super::input::check(r),
        BatchRequest::Batch(v) => v.iter().try_for_each(super::input::check),
    };
    if let Err(e) = checked {
        metrics::counter!("graphql_rejected_total", "reason" => "control_characters").increment(1);
        return error_response(StatusCode::OK, e, locale);
    }
    let (caller, app) = match authenticate(&state, bearer(&headers)).await {
        Ok(a) => a,
        Err(e) => return error_response(StatusCode::SERVICE_UNAVAILABLE, e, locale),
    };
    // operations named by hash filled in, manifest documents parsed once, and what an
    // app's token may not send refused
    let mut batch = batch;
    let persisted = match &mut batch {
        BatchRequest::Single(r) => schema.persisted.prepare(r, &caller, app).map(|op| (op.is_some(), op)),
        BatchRequest::Batch(v) => v.iter_mut().try_fold((true, None), |(all, _), r| {
            Ok((schema.persisted.prepare(r, &caller, app)?.is_some() && all, None))
        }),
    };
    let (manifest_only, single_op) = match persisted {
        Ok(m) => m,
        Err(e) => {
            metrics::counter!("graphql_rejected_total", "reason" => "persisted_query").increment(1);
            return error_response(StatusCode::OK, e, locale);
        }
    };
    // the schema is documentation for staff: in development anyone may read it, in
    // production staff who hold `schema:read`, never anonymous callers
    let dev = state.config.is_development();
    let introspection = dev || caller.actor().is_some_and(|a| a.is_staff() && a.has(Perm::SchemaRead));
    let user = match caller.actor() {
        Some(a) => a.user_id.to_string(),
        None => "-".into(),
    };
    let request_id = request_id.map(|Extension(r)| r.0).unwrap_or_default();
    let meta = RequestMeta { locale, ip: client_ip(&state, &headers, peer), request_id, app };
    let op = match &batch {
        BatchRequest::Single(r) => op_label(r.operation_name.as_deref()),
        BatchRequest::Batch(_) => "batch".into(),
    };
    let span = tracing::Span::current();
    span.record("operation", op.as_str());
    if let Some(a) = caller.actor() {
        span.record("user_id", tracing::field::display(a.user_id));
        span.record("company_id", tracing::field::display(a.company_id));
    }
    // a manifest query that reads only house pages: its whole answer may have been kept
    let kept = match (&batch, single_op) {
        (BatchRequest::Single(r), Some(op)) => answer_key(&state, &caller, op, r, locale),
        _ => None,
    };
    if let Some((pages, key)) = &kept
        && let Some(body) = pages.answer(&state, key)
    {
        metrics::counter!("graphql_answers_kept_total", "result" => "hit").increment(1);
        served(&op, &user, started, &[], true);
        return json_body(body);
    }
    let generation = kept.as_ref().map(|(pages, _)| pages.generation());
    let budget = ExpensiveBudget::new(limits.max_expensive_per_request);
    let prepare = |r: async_graphql::Request| {
        let mut r = with_loaders(r.data(caller.clone()).data(meta.clone()).data(budget.clone()));
        if !introspection {
            r = r.disable_introspection();
        }
        r
    };
    // a lone introspection query runs on the schema that counts its depth apart, where no
    // data field resolves; manifest documents skip the per-request document rules (they
    // were checked when the manifests were built)
    let data = if manifest_only { &schema.manifest } else { &schema.http };
    let (batch, target) = match batch {
        BatchRequest::Single(r) if introspection && is_introspection(&r.query) => {
            (BatchRequest::Single(prepare(r).only_introspection()), &schema.introspection)
        }
        BatchRequest::Single(r) => (BatchRequest::Single(prepare(r)), data),
        BatchRequest::Batch(v) => (BatchRequest::Batch(v.into_iter().map(prepare).collect()), data),
    };
    let timeout = Duration::from_secs(limits.request_timeout_secs);
    let mut resp = match tokio::time::timeout(timeout, target.execute_batch(batch)).await {
        Ok(r) => r,
        Err(_) => {
            metrics::counter!("graphql_errors_total", "code" => "UNAVAILABLE").increment(1);
            return error_response(StatusCode::SERVICE_UNAVAILABLE, AppError::Unavailable("timeout"), locale);
        }
    };
    let mut codes = Vec::new();
    match &mut resp {
        BatchResponse::Single(r) => codes.extend(localize(&mut r.errors, locale)),
        BatchResponse::Batch(v) => {
            for r in v {
                codes.extend(localize(&mut r.errors, locale));
            }
        }
    }
    served(&op, &user, started, &codes, false);
    let body = match serde_json::to_vec(&resp) {
        Ok(b) => Bytes::from(b),
        Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, AppError::internal(e), locale),
    };
    if let (Some((pages, key)), Some(generation)) = (kept, generation) {
        let result = if codes.is_empty()
            && matches!(&resp, BatchResponse::Single(r) if r.errors.is_empty())
            && pages.keep_answer(&state, key, generation, body.clone())
        {
            "kept"
        } else {
            "not_kept"
        };
        metrics::counter!("graphql_answers_kept_total", "result" => result).increment(1);
    }
    json_body(body)
}

fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Counts, times and logs a request that was answered (`kept`: from a kept answer).
fn served(op: &str, user: &str, started: Instant, codes: &[&'static str], kept: bool) {
    let elapsed = started.elapsed();
    metrics::counter!("graphql_requests_total", "operation" => op.to_owned()).increment(1);
    metrics::histogram!("graphql_request_duration_seconds", "operation" => op.to_owned()).record(elapsed.as_secs_f64());
    for c in codes {
        metrics::counter!("graphql_errors_total", "code" => *c).increment(1);
    }
    tracing::info!(operation = %op, user = %user, ms = elapsed.as_secs_f64() * 1000.0, errors = ?codes, kept, "graphql");
}

/// Where and under which key the whole answer to a manifest query that reads only house
/// pages is kept: per replica, for the caller as loaded, the operation, the variables it
/// declares (in name order; others do not change its answer) and the language. A request
/// naming another operation, or with large variables, is not answered from a kept answer.
fn answer_key<'s>(
    state: &'s AppState,
    caller: &Caller,
    op: ManifestOp<'_>,
    r: &async_graphql::Request,
    locale: Locale,
) -> Option<(&'s HousePages, AnswerKey)> {
    let keepable = op.keepable?;
    if r.operation_name.as_deref().is_some_and(|n| n != keepable.name) {
        return None;
    }
    let actor = caller.actor()?;
    let pages = state.part::<HousePages>().ok()?;
    let declared: BTreeMap<&str, &async_graphql::Value> =
        keepable.variables.iter().filter_map(|v| r.variables.get(v.as_str()).map(|x| (v.as_str(), x))).collect();
    let variables = serde_json::to_string(&declared).ok().filter(|v| v.len() <= 512)?;
    let key = AnswerKey {
        company_id: actor.company_id,
        user_id: actor.user_id,
        actor_version: actor.version,
        operation: op.id.to_owned(),
        variables,
        english: locale == Locale::En,
    };
    Some((pages, key))
}
