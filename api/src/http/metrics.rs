//! Prometheus metrics: request counts, latency histograms and error codes per operation.

use std::sync::OnceLock;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

use crate::kit::crypto::constant_eq;
use crate::kit::state::AppState;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// One Prometheus recorder per process (tests run several servers in one process).
pub fn handle() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let builder = PrometheusBuilder::new();
        let builder =
            match builder.set_buckets_for_metric(Matcher::Full("graphql_request_duration_seconds".into()), &buckets) {
                Ok(b) => b,
                Err(_) => PrometheusBuilder::new(),
            };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed");
        }
        handle
    })
}

/// Operation names become metric labels: only short, plain names; others are "other".
pub fn op_label(name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() && n.len() <= 40 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            n.to_owned()
        }
        Some(_) => "other".into(),
        None => "anonymous".into(),
    }
}

/// Prometheus text format, for a scraper that shows the token (or runs on this host).
pub async fn render(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let allowed = match &state.config.metrics_token {
        Some(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| constant_eq(given.trim().as_bytes(), token.expose_secret().as_bytes())),
        None => peer.ip().is_loopback(),
    };
    if !allowed {
        return StatusCode::NOT_FOUND.into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle().render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_labels_are_bounded() {
        assert_eq!(op_label(Some("Me")), "Me");
        assert_eq!(op_label(Some("x y")), "other");
        assert_eq!(op_label(Some(&"a".repeat(41))), "other");
        assert_eq!(op_label(None), "anonymous");
    }
}
