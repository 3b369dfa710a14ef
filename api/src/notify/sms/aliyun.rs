//! Aliyun SMS `SendSms` (dysmsapi 2017-05-25) signed with V3, ACS3-HMAC-SHA256: the
//! canonical request (method, path, sorted query, signed headers, body hash) is hashed
//! and HMAC'd with the AccessKey secret.

use std::time::Duration;

use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{SmsError, SmsMessage, SmsSender};
use crate::kit::config::SmsTemplates;

pub struct AliyunSms {
    http: reqwest::Client,
    endpoint: String,
    access_key_id: String,
    access_key_secret: SecretString,
    sign_name: String,
    templates: SmsTemplates,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// RFC 3986 percent-encoding, as the V3 canonical query wants it.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The V3 signature of a request: returns (signed header names, signature hex).
pub fn sign(
    secret: &str,
    method: &str,
    query: &str,
    headers: &[(String, String)],
    body_hash: &str,
) -> (String, String) {
    let mut h: Vec<(String, String)> =
        headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned())).collect();
    h.sort();
    let canonical_headers: String = h.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: String = h.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical = format!("{method}\n/\n{query}\n{canonical_headers}\n{signed}\n{body_hash}");
    let to_sign = format!("ACS3-HMAC-SHA256\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    (signed, hex(&hmac_sha256(secret.as_bytes(), to_sign.as_bytes())))
}

/// `a=1&b=2`, keys sorted, both sides percent-encoded.
pub fn canonical_query(params: &[(&str, String)]) -> String {
    let mut p: Vec<(String, String)> = params.iter().map(|(k, v)| (percent_encode(k), percent_encode(v))).collect();
    p.sort();
    p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

impl AliyunSms {
    pub fn new(
        cfg: &crate::kit::config::AliyunSmsConfig,
        sign_name: &str,
        templates: SmsTemplates,
    ) -> Result<Self, reqwest::Error> {
        Ok(AliyunSms {
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
            endpoint: cfg.endpoint.trim_end_matches('/').to_owned(),
            access_key_id: cfg.access_key_id.clone(),
            access_key_secret: cfg.access_key_secret.clone(),
            sign_name: sign_name.to_owned(),
            templates,
        })
    }

    async fn send_sms(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        let template = super::template(&self.templates, msg.kind)?;
        let params = serde_json::to_string(&msg.params).map_err(|e| SmsError::Template(e.to_string()))?;
        let query = canonical_query(&[
            ("PhoneNumbers", msg.phone.clone()),
            ("SignName", self.sign_name.clone()),
            ("TemplateCode", template.to_owned()),
            ("TemplateParam", params),
        ]);
        let url = format!("{}/?{query}", self.endpoint);
        let host = super::host_of(&url);
        let body_hash = hex(&Sha256::digest(b""));
        let headers = vec![
            ("host".to_owned(), host),
            ("x-acs-action".to_owned(), "SendSms".to_owned()),
            ("x-acs-version".to_owned(), "2017-05-25".to_owned()),
            ("x-acs-date".to_owned(), chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            ("x-acs-signature-nonce".to_owned(), uuid::Uuid::new_v4().simple().to_string()),
            ("x-acs-content-sha256".to_owned(), body_hash.clone()),
        ];
        let (signed, signature) = sign(self.access_key_secret.expose_secret(), "POST", &query, &headers, &body_hash);
        let mut req = self.http.post(&url);
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            req = req.header(k, v);
        }
        let auth =
            format!("ACS3-HMAC-SHA256 Credential={},SignedHeaders={signed},Signature={signature}", self.access_key_id);
        let resp = req.header("authorization", auth).send().await.map_err(|e| SmsError::Transport(e.to_string()))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(SmsError::Transport(format!("HTTP {status}")));
        }
        let reply: Reply = resp.json().await.map_err(|e| SmsError::Transport(format!("reply: {e}")))?;
        classify(&reply.code, &reply.message)
    }
}

fn classify(code: &str, message: &str) -> Result<(), SmsError> {
    match code {
        "OK" => Ok(()),
        "isv.BUSINESS_LIMIT_CONTROL" | "Throttling.User" | "isv.DAY_LIMIT_CONTROL" => {
            Err(SmsError::RateLimited { retry_after_secs: Some(60) })
        }
        "isv.MOBILE_NUMBER_ILLEGAL" | "isv.MOBILE_COUNT_OVER_LIMIT" => Err(SmsError::InvalidNumber),
        c if c.starts_with("isv.SMS_TEMPLATE")
            || c.starts_with("isv.SMS_SIGNATURE")
            || c == "isv.TEMPLATE_MISSING_PARAMETERS" =>
        {
            Err(SmsError::Template(format!("{c}: {message}")))
        }
        c if c.starts_with("InvalidAccessKeyId") || c.contains("Signature") || c == "Forbidden.RAM" => {
            Err(SmsError::Auth(format!("{c}: {message}")))
        }
        c if c.starts_with("isp.") || c == "ServiceUnavailable" || c == "InternalError" => {
            Err(SmsError::Transport(format!("{c}: {message}")))
        }
        c => Err(SmsError::Template(format!("{c}: {message}"))),
    }
}

impl SmsSender for AliyunSms {
    fn name(&self) -> &'static str {
        "aliyun"
    }

    fn send<'a>(&'a self, msg: &'a SmsMessage) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(self.send_sms(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_rfc3986() {
        assert_eq!(percent_encode("a b*~"), "a%20b%2A~");
        assert_eq!(percent_encode("{\"code\":\"1\"}"), "%7B%22code%22%3A%221%22%7D");
        assert_eq!(percent_encode("物"), "%E7%89%A9");
    }

    #[test]
    fn error_codes() {
        assert!(classify("OK", "").is_ok());
        assert!(matches!(classify("isv.BUSINESS_LIMIT_CONTROL", ""), Err(SmsError::RateLimited { .. })));
        assert!(matches!(classify("isv.MOBILE_NUMBER_ILLEGAL", ""), Err(SmsError::InvalidNumber)));
        assert!(matches!(classify("isv.SMS_TEMPLATE_ILLEGAL", ""), Err(SmsError::Template(_))));
        assert!(matches!(classify("SignatureDoesNotMatch", ""), Err(SmsError::Auth(_))));
        assert!(matches!(classify("InvalidAccessKeyId.NotFound", ""), Err(SmsError::Auth(_))));
    }
}
