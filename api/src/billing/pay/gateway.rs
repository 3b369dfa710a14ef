//! `Gateway`: one trait in front of each payment provider (WeChat Pay API v3, Alipay),
//! the RSA-SHA256 signatures both use, and the development gateway, which records orders
//! in Redis and reports each one paid when asked (refused in production).

use std::collections::HashMap;
use std::path::Path;

use crate::kit::redis::Redis;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use redis::AsyncCommands;
use rust_decimal::Decimal;

use super::model::PayChannel;

#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// the provider could not be reached or answered 5xx: try again later
    #[error("provider unreachable: {0}")]
    Transport(String),
    /// the provider refused the request (its code and message)
    #[error("provider refused: {code}: {message}")]
    Refused { code: String, message: String },
    /// a signature did not verify (a notification, or the provider's answer)
    #[error("bad signature: {0}")]
    Signature(&'static str),
    /// a notification or answer we cannot read
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("key: {0}")]
    Key(String),
}

/// What the app needs to open the provider's cashier for an order.
#[derive(Debug, Clone)]
pub struct PrepayRequest<'a> {
    pub out_trade_no: &'a str,
    pub description: &'a str,
    pub amount: Decimal,
    pub expires_at: DateTime<Utc>,
    pub channel: PayChannel,
    /// the payer's openid (WeChat JSAPI)
    pub openid: Option<&'a str>,
    pub notify_url: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeState {
    Paid,
    /// not paid yet (or the payer never opened the cashier)
    NotPaid,
    /// closed or revoked at the provider
    Closed,
    /// another state (refunded, paying, …): left for the next look
    Other(String),
}

/// An order as the provider reports it.
#[derive(Debug, Clone)]
pub struct Trade {
    pub out_trade_no: String,
    pub state: TradeState,
    pub transaction_id: Option<String>,
    /// what the provider says was paid, in yuan
    pub amount: Option<Decimal>,
    pub paid_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct RefundRequest<'a> {
    pub out_trade_no: &'a str,
    pub transaction_id: &'a str,
    pub out_refund_no: &'a str,
    pub amount: Decimal,
    /// the order's total
    pub total: Decimal,
    pub reason: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundState {
    Succeeded { refund_id: Option<String> },
    Processing { refund_id: Option<String> },
    Failed(String),
}

/// A notification as it arrived: lower-case header names and the raw body.
pub struct NotifyRequest<'a> {
    pub headers: &'a HashMap<String, String>,
    pub body: &'a [u8],
}

#[async_trait::async_trait]
pub trait Gateway: Send + Sync {
    /// the parameters the app hands to the provider's SDK
    async fn prepay(&self, o: &PrepayRequest<'_>) -> Result<serde_json::Value, PayError>;
    async fn query(&self, out_trade_no: &str) -> Result<Trade, PayError>;
    /// closes an unpaid order so it can no longer be paid; false: the provider does not
    /// know it yet (an Alipay order string not opened) and cannot close it
    async fn close(&self, out_trade_no: &str) -> Result<bool, PayError>;
    /// asks for a refund (idempotent by its number)
    async fn refund(&self, r: &RefundRequest<'_>) -> Result<RefundState, PayError>;
    /// how a refund asked for earlier stands
    async fn refund_status(&self, r: &RefundRequest<'_>) -> Result<RefundState, PayError>;
    /// a notification, verified: the order it reports
    fn notice(&self, n: &NotifyRequest<'_>, now: DateTime<Utc>) -> Result<Trade, PayError>;
}

/// A private key from PEM (PKCS#1 or PKCS#8) or bare base64 (PKCS#8, then PKCS#1).
pub fn private_key(text: &str) -> Result<EncodingKey, PayError> {
    let t = text.trim();
    if t.starts_with("-----BEGIN") {
        return EncodingKey::from_rsa_pem(t.as_bytes()).map_err(|e| PayError::Key(e.to_string()));
    }
    EncodingKey::from_rsa_pem(wrap("PRIVATE KEY", t).as_bytes())
        .or_else(|_| EncodingKey::from_rsa_pem(wrap("RSA PRIVATE KEY", t).as_bytes()))
        .map_err(|e| PayError::Key(e.to_string()))
}

/// A public key from a PEM public key, a PEM certificate, or bare base64 (SubjectPublicKeyInfo).
pub fn public_key(text: &str) -> Result<DecodingKey, PayError> {
    let t = text.trim();
    let pem = if t.starts_with("-----BEGIN") { t.to_owned() } else { wrap("PUBLIC KEY", t) };
    DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| PayError::Key(e.to_string()))
}

pub fn read_key_file(path: &Path) -> Result<String, PayError> {
    std::fs::read_to_string(path).map_err(|e| PayError::Key(format!("{}: {e}", path.display())))
}

fn wrap(label: &str, b64: &str) -> String {
    let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in clean.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// SHA256withRSA (PKCS#1 v1.5), standard base64: what both providers use.
pub fn rsa_sign(key: &EncodingKey, message: &[u8]) -> Result<String, PayError> {
    let url = jsonwebtoken::crypto::sign(message, key, Algorithm::RS256).map_err(|e| PayError::Key(e.to_string()))?;
    let raw = URL_SAFE_NO_PAD.decode(url).map_err(|e| PayError::Key(e.to_string()))?;
    Ok(STANDARD.encode(raw))
}

/// Verifies a standard-base64 SHA256withRSA signature.
pub fn rsa_verify(key: &DecodingKey, message: &[u8], signature: &str) -> bool {
    let Ok(raw) = STANDARD.decode(signature.trim()) else { return false };
    if raw.is_empty() {
        return false;
    }
    jsonwebtoken::crypto::verify(&URL_SAFE_NO_PAD.encode(raw), message, key, Algorithm::RS256).unwrap_or(false)
}

/// A random string of letters and digits (nonces).
pub fn nonce() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..32).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// Yuan to fen, exactly (amounts have at most two decimals).
pub fn fen(amount: Decimal) -> Result<i64, PayError> {
    let f = (amount * Decimal::ONE_HUNDRED).normalize();
    if f.scale() != 0 {
        return Err(PayError::Malformed(format!("amount {amount} has more than two decimals")));
    }
    i64::try_from(f.mantissa()).map_err(|_| PayError::Malformed(format!("amount {amount} out of range")))
}

/// The development gateway: remembers each order's amount in Redis and reports it paid
/// when asked, so the whole flow runs without a provider. Production refuses it.
pub struct DevGateway {
    redis: Redis,
    prefix: String,
    provider: &'static str,
}

impl DevGateway {
    pub fn new(redis: Redis, prefix: &str, provider: &'static str) -> Self {
        DevGateway { redis, prefix: format!("{prefix}dev:pay:{provider}:"), provider }
    }
}

fn redis_err(e: redis::RedisError) -> PayError {
    PayError::Transport(e.to_string())
}

#[async_trait::async_trait]
impl Gateway for DevGateway {
    async fn prepay(&self, o: &PrepayRequest<'_>) -> Result<serde_json::Value, PayError> {
        let mut r = self.redis.clone();
        let _: () = r
            .set_ex(format!("{}{}", self.prefix, o.out_trade_no), o.amount.to_string(), 86_400)
            .await
            .map_err(redis_err)?;
        Ok(serde_json::json!({ "provider": self.provider, "dev": true, "outTradeNo": o.out_trade_no }))
    }

    async fn query(&self, out_trade_no: &str) -> Result<Trade, PayError> {
        let mut r = self.redis.clone();
        let amount: Option<String> = r.get(format!("{}{}", self.prefix, out_trade_no)).await.map_err(redis_err)?;
        let amount = amount.and_then(|a| a.parse::<Decimal>().ok());
        Ok(Trade {
            out_trade_no: out_trade_no.to_owned(),
            state: if amount.is_some() { TradeState::Paid } else { TradeState::NotPaid },
            transaction_id: amount.map(|_| format!("DEV{out_trade_no}")),
            amount,
            paid_at: None,
        })
    }

    async fn close(&self, out_trade_no: &str) -> Result<bool, PayError> {
        let mut r = self.redis.clone();
        let _: () = r.del(format!("{}{}", self.prefix, out_trade_no)).await.map_err(redis_err)?;
        Ok(true)
    }

    async fn refund(&self, r: &RefundRequest<'_>) -> Result<RefundState, PayError> {
        Ok(RefundState::Succeeded { refund_id: Some(format!("DEV{}", r.out_refund_no)) })
    }

    async fn refund_status(&self, r: &RefundRequest<'_>) -> Result<RefundState, PayError> {
        self.refund(r).await
    }

    fn notice(&self, _n: &NotifyRequest<'_>, _now: DateTime<Utc>) -> Result<Trade, PayError> {
        Err(PayError::Signature("the development gateway takes no notifications"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_is_exact() {
        assert_eq!(fen(Decimal::new(1234, 2)).unwrap(), 1234);
        assert_eq!(fen(Decimal::new(5, 0)).unwrap(), 500);
        assert_eq!(fen(Decimal::new(12340, 3)).unwrap(), 1234);
        assert!(fen(Decimal::new(12345, 3)).is_err());
    }

    #[test]
    fn bare_base64_keys_are_wrapped() {
        let w = wrap("PUBLIC KEY", "QUJD\nREVG ");
        assert_eq!(w, "-----BEGIN PUBLIC KEY-----\nQUJDREVG\n-----END PUBLIC KEY-----\n");
    }
}
