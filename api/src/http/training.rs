//! Course materials: `POST /training/courses/{courseId}/materials?name=…` with the bearer
//! token and the file as the body (a PDF or an MP4 video, each kind within its own limit),
//! outside GraphQL so a video never sits in a multipart form; the body is streamed to
//! storage as it arrives, never held whole. Answers 201 with the material,
//! or `{code, message, field}` with the status the error calls for.

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::kit::error::AppError;
use crate::kit::state::AppState;

#[derive(serde::Deserialize)]
pub struct Named {
    name: Option<String>,
}

fn status_of(e: &AppError) -> StatusCode {
    match e.code() {
        "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
        "FORBIDDEN" => StatusCode::FORBIDDEN,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "VALIDATION" => StatusCode::BAD_REQUEST,
        "CONFLICT" => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn refused(e: &AppError, headers: &axum::http::HeaderMap) -> Response {
    e.log_if_internal();
    let locale = super::graphql::locale_of(headers);
    let field = match e {
        AppError::Validation { field, .. } => Some(field.to_string()),
        _ => None,
    };
    (
        status_of(e),
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "code": e.code(), "message": e.message(locale), "field": field }).to_string(),
    )
        .into_response()
}

fn uploads(state: &AppState) -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| Arc::new(Semaphore::new(state.config.training.concurrent_uploads.max(1)))).clone()
}

pub async fn upload_material(
    State(state): State<AppState>,
    Path(course): Path<String>,
    Query(q): Query<Named>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let actor = match super::auth::authenticate(&state, token.as_deref()).await {
        Ok((c, _)) => match c.actor() {
            Some(a) => a.clone(),
            None => return refused(&AppError::unauthenticated(), &parts.headers),
        },
        Err(e) => return refused(&e, &parts.headers),
    };
    let Ok(course) = Uuid::parse_str(&course) else {
        return refused(&AppError::not_found("course"), &parts.headers);
    };
    // a body that says up front it is over every limit is refused before it is read
    let limit = state.config.training.max_pdf_bytes.max(state.config.training.max_video_bytes);
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return refused(&crate::people::courses::service::too_big(limit), &parts.headers);
    }
    let name = q.name.unwrap_or_default();
    let body = body.into_data_stream();
    let slots = uploads(&state);
    match crate::people::courses::service::add_material(&state, &actor, course, &name, &slots, body).await {
        Ok(m) => (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "id": m.id, "courseId": m.course_id, "kind": m.kind, "name": m.name, "sizeBytes": m.size_bytes })
                .to_string(),
        )
            .into_response(),
        Err(e) => refused(&e, &parts.headers),
    }
}
