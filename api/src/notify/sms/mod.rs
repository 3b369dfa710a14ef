//! `SmsSender`: one trait in front of every SMS gateway (Aliyun, Tencent Cloud, with an
//! optional failover). The development sender records messages in Redis
//! (`{prefix}dev:sms:{phone}`), where tests and the playground read them.

pub mod aliyun;
pub mod failover;
pub mod tencent;

use crate::kit::redis::Redis;
use futures_util::future::BoxFuture;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::kit::config::SmsTemplates;
use crate::kit::types::Phone;

/// What a message is for: each kind has its own template at a real gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsKind {
    SecurityCode,
    BillNotice,
    AlarmEscalation,
    WorkOrderUpdate,
    Notice,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmsMessage {
    pub phone: String,
    pub kind: SmsKind,
    /// template parameters, e.g. `code`
    pub params: serde_json::Map<String, serde_json::Value>,
    /// the rendered Chinese text, for senders without templates
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("gateway rate limited, retry after {retry_after_secs:?} s")]
    RateLimited { retry_after_secs: Option<u64> },
    #[error("gateway rejected the number")]
    InvalidNumber,
    /// template or sign name not approved / not matching: fix the configuration
    #[error("template or sign problem: {0}")]
    Template(String),
    /// our credentials were refused
    #[error("gateway refused our credentials: {0}")]
    Auth(String),
    #[error("gateway unreachable: {0}")]
    Transport(String),
}

/// The configured template of a kind, or the typed error gateways report for a missing one.
pub fn template(templates: &SmsTemplates, kind: SmsKind) -> Result<&str, SmsError> {
    let t = match kind {
        SmsKind::SecurityCode => &templates.security_code,
        SmsKind::BillNotice => &templates.bill_notice,
        SmsKind::AlarmEscalation => &templates.alarm_escalation,
        SmsKind::WorkOrderUpdate => &templates.work_order_update,
        SmsKind::Notice => &templates.notice,
    };
    t.as_deref().ok_or_else(|| SmsError::Template(format!("no template configured for {kind:?}")))
}

/// The `Host` header value of a URL (host, and the port when it is not the default):
/// both gateways sign it.
pub fn host_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => String::new(),
        },
        Err(_) => String::new(),
    }
}

impl SmsMessage {
    /// Template parameters in the order positional gateways (Tencent) expect.
    pub fn ordered_params(&self) -> Vec<String> {
        let keys: &[&str] = match self.kind {
            SmsKind::SecurityCode => &["code"],
            _ => &["title", "content"],
        };
        keys.iter()
            .map(|k| {
                self.params
                    .get(*k)
                    .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                    .unwrap_or_default()
            })
            .collect()
    }
}

pub trait SmsSender: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn send<'a>(&'a self, msg: &'a SmsMessage) -> BoxFuture<'a, Result<(), SmsError>>;
}

/// Records instead of sending: development and tests only (production refuses it).
pub struct DevSmsSender {
    redis: Redis,
    prefix: String,
}

impl DevSmsSender {
    pub fn new(redis: Redis, prefix: &str) -> Self {
        DevSmsSender { redis, prefix: prefix.to_owned() }
    }

    pub fn key(prefix: &str, phone: &str) -> String {
        format!("{prefix}dev:sms:{phone}")
    }
}

impl SmsSender for DevSmsSender {
    fn name(&self) -> &'static str {
        "dev"
    }

    fn send<'a>(&'a self, msg: &'a SmsMessage) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(async move {
            let key = Self::key(&self.prefix, &msg.phone);
            let body = serde_json::to_string(msg).map_err(|e| SmsError::Transport(e.to_string()))?;
            let mut conn = self.redis.clone();
            let res: redis::RedisResult<()> =
                redis::pipe().lpush(&key, body).ltrim(&key, 0, 49).expire(&key, 86_400).query_async(&mut conn).await;
            res.map_err(|e| SmsError::Transport(e.to_string()))?;
            tracing::info!(phone = %Phone::masked(&msg.phone), kind = ?msg.kind, "dev SMS recorded");
            Ok(())
        })
    }
}

/// The messages the development sender recorded for a phone, newest first.
pub async fn dev_messages(redis: &Redis, prefix: &str, phone: &str) -> redis::RedisResult<Vec<SmsMessage>> {
    let mut conn = redis.clone();
    let raw: Vec<String> = conn.lrange(DevSmsSender::key(prefix, phone), 0, 49).await?;
    Ok(raw.iter().filter_map(|s| serde_json::from_str(s).ok()).collect())
}
