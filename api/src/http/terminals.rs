//! Attendance terminals: `POST /attendance/terminals/{terminalId}/punches`, signed with the
//! terminal's key (`X-Wuye-Timestamp`, `X-Wuye-Nonce`, `X-Wuye-Signature`: lowercase hex
//! HMAC-SHA256 of `{terminalId}\n{timestamp}\n{nonce}\n{body}`), with its own body limit.
//! 200 with what became of each punch; 401 for an unknown terminal or a bad signature, 409
//! for a replayed nonce, 400 for a stale timestamp or a malformed body.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::kit::state::AppState;
use crate::people::attendance::service::{self, Signed, TerminalError};

fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "code": code, "message": message }).to_string(),
    )
        .into_response()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

pub async fn punches(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let Ok(terminal) = Uuid::parse_str(&id) else {
        return answer(StatusCode::UNAUTHORIZED, "UNKNOWN_TERMINAL", "考勤机不存在");
    };
    let (parts, body): (_, Body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, state.config.attendance.terminal_max_body_bytes).await else {
        return answer(StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE", "报文过大");
    };
    let h = &parts.headers;
    let signed = Signed {
        timestamp: header(h, "x-wuye-timestamp"),
        nonce: header(h, "x-wuye-nonce"),
        signature: header(h, "x-wuye-signature"),
    };
    match service::terminal_punches(&state, terminal, signed, &bytes).await {
        Ok(receipt) => {
            metrics::counter!("wuye_terminal_punches_total").increment(receipt.accepted as u64);
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::to_string(&receipt).unwrap_or_default(),
            )
                .into_response()
        }
        Err(e) => {
            let (status, code, msg) = match &e {
                TerminalError::Unknown => (StatusCode::UNAUTHORIZED, "UNKNOWN_TERMINAL", "考勤机不存在或已停用"),
                TerminalError::BadSignature => (StatusCode::UNAUTHORIZED, "BAD_SIGNATURE", "签名无效"),
                TerminalError::Stale => {
                    (StatusCode::BAD_REQUEST, "STALE_TIMESTAMP", "时间戳超出允许范围，请校准考勤机时间")
                }
                TerminalError::Replayed => (StatusCode::CONFLICT, "REPLAYED", "重复的请求"),
                TerminalError::Invalid(_) => (StatusCode::BAD_REQUEST, "VALIDATION", "报文格式错误"),
                TerminalError::App(a) => {
                    a.log_if_internal();
                    (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "处理失败")
                }
            };
            if !matches!(e, TerminalError::App(_)) {
                tracing::warn!(terminal = %terminal, error = %e, "terminal request refused");
                metrics::counter!("wuye_terminal_refused_total", "code" => code).increment(1);
            }
            let msg = match &e {
                TerminalError::Invalid(why) => format!("{msg}: {why}"),
                _ => msg.to_owned(),
            };
            answer(status, code, &msg)
        }
    }
}
