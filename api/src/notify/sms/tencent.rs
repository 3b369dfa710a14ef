//! Tencent Cloud SMS `SendSms` (2021-01-11) signed with TC3-HMAC-SHA256: a signing key
//! derived from the secret, the day and the service signs the canonical request. The
//! per-number results are checked, not just the request status.

use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::aliyun::{hex, hmac_sha256};
use super::{SmsError, SmsMessage, SmsSender};
use crate::kit::config::SmsTemplates;

pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

pub struct TencentSms {
    http: reqwest::Client,
    endpoint: String,
    secret_id: String,
    secret_key: SecretString,
    sdk_app_id: String,
    region: String,
    sign_name: String,
    templates: SmsTemplates,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Reply,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(rename = "Error")]
    error: Option<ApiError>,
    #[serde(rename = "SendStatusSet", default)]
    statuses: Vec<SendStatus>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

#[derive(Deserialize)]
struct SendStatus {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// TC3 signature: returns the hex signature of a POST with a JSON body.
pub fn sign(secret_key: &str, host: &str, body: &str, timestamp: i64, service: &str) -> String {
    let date = chrono::DateTime::from_timestamp(timestamp, 0).unwrap_or_default().format("%Y-%m-%d").to_string();
    let canonical = format!(
        "POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\n\ncontent-type;host\n{}",
        hex(&Sha256::digest(body.as_bytes()))
    );
    let scope = format!("{date}/{service}/tc3_request");
    let to_sign = format!("TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    hex(&hmac_sha256(&k_signing, to_sign.as_bytes()))
}

impl TencentSms {
    pub fn new(
        cfg: &crate::kit::config::TencentSmsConfig,
        sign_name: &str,
        templates: SmsTemplates,
    ) -> Result<Self, reqwest::Error> {
        Ok(TencentSms {
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
            endpoint: cfg.endpoint.trim_end_matches('/').to_owned(),
            secret_id: cfg.secret_id.clone(),
            secret_key: cfg.secret_key.clone(),
            sdk_app_id: cfg.sdk_app_id.clone(),
            region: cfg.region.clone(),
            sign_name: sign_name.to_owned(),
            templates,
        })
    }

    async fn send_sms(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        let template = super::template(&self.templates, msg.kind)?;
        let body = serde_json::json!({
            "PhoneNumberSet": [format!("+86{}", msg.phone)],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": template,
            "TemplateParamSet": msg.ordered_params(),
        })
        .to_string();
        let url = format!("{}/", self.endpoint);
        let host = super::host_of(&url);
        let ts = chrono::Utc::now().timestamp();
        let date = chrono::DateTime::from_timestamp(ts, 0).unwrap_or_default().format("%Y-%m-%d").to_string();
        let signature = sign(self.secret_key.expose_secret(), &host, &body, ts, "sms");
        let auth = format!(
            "TC3-HMAC-SHA256 Credential={}/{date}/sms/tc3_request, SignedHeaders=content-type;host, Signature={signature}",
            self.secret_id
        );
        let resp = self
            .http
            .post(&url)
            .header("content-type", CONTENT_TYPE)
            .header("x-tc-action", "SendSms")
            .header("x-tc-version", "2021-01-11")
            .header("x-tc-timestamp", ts.to_string())
            .header("x-tc-region", &self.region)
            .header("authorization", auth)
            .body(body)
            .send()
            .await
            .map_err(|e| SmsError::Transport(e.to_string()))?;
        if resp.status().is_server_error() {
            return Err(SmsError::Transport(format!("HTTP {}", resp.status())));
        }
        let env: Envelope = resp.json().await.map_err(|e| SmsError::Transport(format!("reply: {e}")))?;
        if let Some(e) = env.response.error {
            return Err(classify(&e.code, &e.message));
        }
        // the request can succeed while the number failed
        match env.response.statuses.first() {
            Some(s) if s.code == "Ok" => Ok(()),
            Some(s) => Err(classify(&s.code, &s.message)),
            None => Err(SmsError::Transport("no per-number status in the reply".into())),
        }
    }
}

fn classify(code: &str, message: &str) -> SmsError {
    match code {
        "LimitExceeded.PhoneNumberThirtySecondLimit" => SmsError::RateLimited { retry_after_secs: Some(30) },
        "LimitExceeded.PhoneNumberOneHourLimit" => SmsError::RateLimited { retry_after_secs: Some(3600) },
        c if c.starts_with("LimitExceeded") || c == "RequestLimitExceeded" => {
            SmsError::RateLimited { retry_after_secs: None }
        }
        "InvalidParameterValue.IncorrectPhoneNumber"
        | "FailedOperation.PhonenumberParseFail"
        | "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber" => SmsError::InvalidNumber,
        c if c.starts_with("AuthFailure") => SmsError::Auth(format!("{c}: {message}")),
        c if c.starts_with("InternalError") || c.ends_with("Timeout") => SmsError::Transport(format!("{c}: {message}")),
        c => SmsError::Template(format!("{c}: {message}")),
    }
}

impl SmsSender for TencentSms {
    fn name(&self) -> &'static str {
        "tencent"
    }

    fn send<'a>(&'a self, msg: &'a SmsMessage) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(self.send_sms(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes() {
        assert!(matches!(
            classify("LimitExceeded.PhoneNumberThirtySecondLimit", ""),
            SmsError::RateLimited { retry_after_secs: Some(30) }
        ));
        assert!(matches!(classify("InvalidParameterValue.IncorrectPhoneNumber", ""), SmsError::InvalidNumber));
        assert!(matches!(classify("AuthFailure.SignatureFailure", ""), SmsError::Auth(_)));
        assert!(matches!(classify("FailedOperation.TemplateIncorrectOrUnapproved", ""), SmsError::Template(_)));
        assert!(matches!(classify("InternalError.Timeout", ""), SmsError::Transport(_)));
    }
}
