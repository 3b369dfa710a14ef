//! FCM HTTP v1 (`projects/{id}/messages:send`). A service-account key signs an RS256
//! assertion that the token endpoint exchanges for an OAuth2 access token, cached until
//! shortly before it expires. The legacy server-key API is shut down and not used.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{PushError, PushMessage, PushSender};

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// The fields of a Google service-account JSON file that FCM needs.
#[derive(Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub private_key_id: String,
    pub private_key: String,
    pub client_email: String,
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FcmConfigError {
    #[error("cannot read the FCM service-account file {0}: {1}")]
    Read(String, std::io::Error),
    #[error(
        "the FCM service-account file is not valid JSON with project_id, private_key, client_email, token_uri: {0}"
    )]
    Parse(serde_json::Error),
    #[error("the FCM service-account private key is not an RSA PEM key: {0}")]
    Key(jsonwebtoken::errors::Error),
    #[error("HTTP client: {0}")]
    Http(reqwest::Error),
}

pub struct FcmSender {
    http: reqwest::Client,
    account: ServiceAccount,
    key: EncodingKey,
    send_url: String,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorInner,
}

#[derive(Deserialize, Default)]
struct ErrorInner {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

impl FcmSender {
    pub fn from_file(path: &Path, endpoint: &str) -> Result<Self, FcmConfigError> {
        let raw = std::fs::read_to_string(path).map_err(|e| FcmConfigError::Read(path.display().to_string(), e))?;
        let account: ServiceAccount = serde_json::from_str(&raw).map_err(FcmConfigError::Parse)?;
        Self::new(account, endpoint)
    }

    pub fn new(account: ServiceAccount, endpoint: &str) -> Result<Self, FcmConfigError> {
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes()).map_err(FcmConfigError::Key)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(FcmConfigError::Http)?;
        let send_url = format!("{}/v1/projects/{}/messages:send", endpoint.trim_end_matches('/'), account.project_id);
        Ok(FcmSender { http, account, key, send_url, token: Mutex::new(None) })
    }

    /// A cached access token, or a fresh one (`force`, or within a minute of expiry).
    async fn access_token(&self, force: bool) -> Result<String, PushError> {
        let mut cached = self.token.lock().await;
        if !force
            && let Some((t, until)) = cached.as_ref()
            && *until > Instant::now() + Duration::from_secs(60)
        {
            return Ok(t.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let claims = Assertion {
            iss: &self.account.client_email,
            scope: SCOPE,
            aud: &self.account.token_uri,
            iat: now,
            exp: now + 3600,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.account.private_key_id.clone());
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| PushError::Rejected(format!("oauth assertion: {e}")))?;
        let resp = self
            .http
            .post(&self.account.token_uri)
            .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())])
            .send()
            .await
            .map_err(|e| PushError::Retry { reason: format!("oauth: {e}"), retry_after: None })?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(PushError::Retry { reason: format!("oauth: HTTP {status}"), retry_after: retry_after(&resp) });
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(PushError::Rejected(format!(
                "oauth: HTTP {status}: {}",
                body.chars().take(200).collect::<String>()
            )));
        }
        let t: TokenResponse = resp
            .json()
            .await
            .map_err(|e| PushError::Retry { reason: format!("oauth body: {e}"), retry_after: None })?;
        let until = Instant::now() + Duration::from_secs(t.expires_in);
        *cached = Some((t.access_token.clone(), until));
        Ok(t.access_token)
    }

    fn body(msg: &PushMessage) -> serde_json::Value {
        // FCM data values must be strings
        let data: serde_json::Map<String, serde_json::Value> = msg
            .data
            .iter()
            .map(|(k, v)| {
                (k.clone(), serde_json::Value::String(v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
            })
            .collect();
        serde_json::json!({
            "message": {
                "token": msg.token,
                "notification": { "title": msg.title, "body": msg.body },
                "data": data,
                "android": {
                    "priority": if msg.high_priority { "HIGH" } else { "NORMAL" },
                    "notification": { "channel_id": msg.category, "sound": "default" }
                },
                "apns": {
                    "headers": { "apns-priority": if msg.high_priority { "10" } else { "5" } },
                    "payload": { "aps": { "sound": "default", "category": msg.category } }
                }
            }
        })
    }

    async fn post(&self, token: &str, body: &serde_json::Value) -> Result<reqwest::Response, PushError> {
        self.http
            .post(&self.send_url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| PushError::Retry { reason: format!("fcm: {e}"), retry_after: None })
    }

    async fn send_message(&self, msg: &PushMessage) -> Result<(), PushError> {
        let body = Self::body(msg);
        let mut resp = self.post(&self.access_token(false).await?, &body).await?;
        if resp.status().as_u16() == 401 {
            // the cached token was revoked or expired early: one fresh token, one more try
            resp = self.post(&self.access_token(true).await?, &body).await?;
        }
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let after = retry_after(&resp);
        let err: ErrorBody = resp.json().await.unwrap_or_default();
        let code = err
            .error
            .details
            .iter()
            .find_map(|d| d.get("errorCode").and_then(|c| c.as_str()).map(str::to_owned))
            .unwrap_or_else(|| err.error.status.clone());
        Err(classify(status.as_u16(), &code, &err.error.message, after))
    }
}

/// v1 error codes → what the dispatcher should do.
fn classify(status: u16, code: &str, message: &str, retry_after: Option<Duration>) -> PushError {
    match code {
        "UNREGISTERED" | "SENDER_ID_MISMATCH" => PushError::Unregistered(code.to_owned()),
        "INVALID_ARGUMENT" if message.to_lowercase().contains("registration token") => {
            PushError::Unregistered(format!("{code}: {message}"))
        }
        "QUOTA_EXCEEDED" | "UNAVAILABLE" | "INTERNAL" => PushError::Retry { reason: code.to_owned(), retry_after },
        _ if status == 429 || status >= 500 => {
            PushError::Retry { reason: format!("HTTP {status} {code}"), retry_after }
        }
        _ => PushError::Rejected(format!("HTTP {status} {code}: {message}")),
    }
}

/// `Retry-After` in seconds (the form FCM uses).
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

impl PushSender for FcmSender {
    fn provider(&self) -> &'static str {
        "fcm"
    }

    fn send<'a>(&'a self, msg: &'a PushMessage) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(self.send_message(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes() {
        assert!(matches!(classify(404, "UNREGISTERED", "", None), PushError::Unregistered(_)));
        assert!(matches!(classify(403, "SENDER_ID_MISMATCH", "", None), PushError::Unregistered(_)));
        assert!(matches!(
            classify(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", None),
            PushError::Unregistered(_)
        ));
        assert!(matches!(classify(400, "INVALID_ARGUMENT", "Invalid JSON payload", None), PushError::Rejected(_)));
        let r = classify(429, "QUOTA_EXCEEDED", "", Some(Duration::from_secs(7)));
        assert!(matches!(r, PushError::Retry { retry_after: Some(d), .. } if d.as_secs() == 7));
        assert!(matches!(classify(503, "UNAVAILABLE", "", None), PushError::Retry { .. }));
        assert!(matches!(classify(500, "INTERNAL", "", None), PushError::Retry { .. }));
    }
}
