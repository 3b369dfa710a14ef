//! Payment notifications: `POST /pay/wechat/{companyCode}/notify` and
//! `POST /pay/alipay/{companyCode}/notify`, with their own body limit, answered in the
//! providers' exact formats (WeChat Pay: 204 without a body, or 4xx/5xx with
//! `{"code":"FAIL","message":…}`; Alipay: the plain text `success`, else `fail`, and it
//! tries again).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::billing::pay::model::PayProvider;
use crate::billing::pay::service::{self, NotifyError};
use crate::kit::state::AppState;

pub async fn wechat(State(state): State<AppState>, Path(code): Path<String>, req: Request) -> Response {
    match take(&state, PayProvider::Wechat, &code, req).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err((status, why)) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "code": "FAIL", "message": why }).to_string(),
        )
            .into_response(),
    }
}

pub async fn alipay(State(state): State<AppState>, Path(code): Path<String>, req: Request) -> Response {
    let text = match take(&state, PayProvider::Alipay, &code, req).await {
        Ok(()) => "success",
        Err(_) => "fail",
    };
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

async fn take(state: &AppState, provider: PayProvider, code: &str, req: Request) -> Result<(), (StatusCode, String)> {
    let (parts, body): (_, Body) = req.into_parts();
    let headers: HashMap<String, String> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    let bytes = axum::body::to_bytes(body, state.config.pay.notify_max_body_bytes)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "报文过大".to_owned()))?;
    match service::notified(state, provider, code, &headers, &bytes).await {
        Ok(()) => Ok(()),
        Err(NotifyError::UnknownMerchant) => Err((StatusCode::NOT_FOUND, "商户不存在".into())),
        Err(NotifyError::Refused(e)) => {
            tracing::warn!(provider = %provider, company = code, error = %e, "payment notification refused");
            metrics::counter!("wuye_pay_notify_refused_total", "provider" => provider.as_str()).increment(1);
            Err((StatusCode::UNAUTHORIZED, "验签失败".into()))
        }
        Err(NotifyError::Replayed) => {
            tracing::warn!(provider = %provider, company = code, "payment notification replayed");
            Err((StatusCode::UNAUTHORIZED, "重复的通知".into()))
        }
        Err(NotifyError::App(e)) => {
            e.log_if_internal();
            Err((StatusCode::INTERNAL_SERVER_ERROR, "处理失败".into()))
        }
    }
}
