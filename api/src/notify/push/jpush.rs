//! JPush (极光推送) REST API v3 `POST /v3/push`, for Android phones in mainland China
//! without Google services. HTTP Basic auth with the app key and master secret.

use std::time::Duration;

use base64::Engine;
use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{PushError, PushMessage, PushSender};

pub struct JPushSender {
    http: reqwest::Client,
    url: String,
    auth: SecretString,
    apns_production: bool,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorInner,
}

#[derive(Deserialize, Default)]
struct ErrorInner {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

impl JPushSender {
    pub fn new(
        app_key: &str,
        master_secret: &SecretString,
        endpoint: &str,
        apns_production: bool,
    ) -> Result<Self, reqwest::Error> {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{app_key}:{}", master_secret.expose_secret()));
        Ok(JPushSender {
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
            url: format!("{}/v3/push", endpoint.trim_end_matches('/')),
            auth: SecretString::from(format!("Basic {basic}")),
            apns_production,
        })
    }

    fn body(&self, msg: &PushMessage) -> serde_json::Value {
        serde_json::json!({
            "platform": [msg.platform.as_str()],
            "audience": { "registration_id": [msg.token] },
            "notification": {
                "android": {
                    "alert": msg.body, "title": msg.title, "extras": msg.data,
                    "priority": if msg.high_priority { 2 } else { 0 }, "category": msg.category
                },
                "ios": { "alert": { "title": msg.title, "body": msg.body }, "sound": "default", "extras": msg.data }
            },
            "options": { "time_to_live": 86400, "apns_production": self.apns_production }
        })
    }

    async fn push(&self, msg: &PushMessage) -> Result<(), PushError> {
        let resp = self
            .http
            .post(&self.url)
            .header("authorization", self.auth.expose_secret())
            .json(&self.body(msg))
            .send()
            .await
            .map_err(|e| PushError::Retry { reason: format!("jpush: {e}"), retry_after: None })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        // X-Rate-Limit-Reset: seconds until the quota window resets
        let reset = resp
            .headers()
            .get("x-rate-limit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let e: ErrorBody = resp.json().await.unwrap_or_default();
        Err(classify(status, e.error.code, &e.error.message, reset))
    }
}

fn classify(status: u16, code: i64, message: &str, reset: Option<Duration>) -> PushError {
    match code {
        // cannot find user by this audience: the registration id is gone
        1011 => PushError::Unregistered(format!("{code}: {message}")),
        2002 | 2008 => PushError::Retry { reason: format!("rate limited {code}"), retry_after: reset },
        1000 => PushError::Retry { reason: format!("{code}: {message}"), retry_after: reset },
        _ if status == 429 || status >= 500 => {
            PushError::Retry { reason: format!("HTTP {status} {code}"), retry_after: reset }
        }
        _ => PushError::Rejected(format!("HTTP {status} {code}: {message}")),
    }
}

impl PushSender for JPushSender {
    fn provider(&self) -> &'static str {
        "jpush"
    }

    fn send<'a>(&'a self, msg: &'a PushMessage) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(self.push(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes() {
        assert!(matches!(classify(400, 1011, "cannot find user by this audience", None), PushError::Unregistered(_)));
        assert!(matches!(
            classify(429, 2002, "", Some(Duration::from_secs(5))),
            PushError::Retry { retry_after: Some(_), .. }
        ));
        assert!(matches!(classify(401, 1004, "appkey/secret mismatch", None), PushError::Rejected(_)));
        assert!(matches!(classify(500, 1000, "", None), PushError::Retry { .. }));
    }
}
