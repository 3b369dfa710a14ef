//! `PushSender`: one trait in front of every push provider (FCM HTTP v1, JPush). Each
//! registered device says which provider it uses.

pub mod fcm;
pub mod jpush;

use std::sync::Arc;
use std::time::Duration;

use crate::kit::redis::Redis;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::model::{Category, Platform, Provider};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushMessage {
    pub token: String,
    pub platform: Platform,
    pub title: String,
    pub body: String,
    /// deep-link data; providers want string values
    pub data: serde_json::Map<String, serde_json::Value>,
    /// high priority wakes the phone (alarms, critical)
    pub high_priority: bool,
    /// Android notification channel / iOS category (its code, e.g. `alarm`)
    pub category: Category,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// the token is dead (uninstalled app, other sender): deactivate it, never retry
    #[error("token no longer valid: {0}")]
    Unregistered(String),
    /// try again later (quota, provider unavailable, network)
    #[error("retryable: {reason}")]
    Retry { reason: String, retry_after: Option<Duration> },
    /// the provider refused this message for good (bad payload, auth not fixable by retrying)
    #[error("rejected: {0}")]
    Rejected(String),
}

pub trait PushSender: Send + Sync + 'static {
    fn provider(&self) -> &'static str;
    fn send<'a>(&'a self, msg: &'a PushMessage) -> BoxFuture<'a, Result<(), PushError>>;
}

/// Records instead of sending (development and tests): `{prefix}dev:push:{token}`.
pub struct DevPushSender {
    redis: Redis,
    prefix: String,
    provider: &'static str,
}

impl DevPushSender {
    pub fn new(redis: Redis, prefix: &str, provider: &'static str) -> Self {
        DevPushSender { redis, prefix: prefix.to_owned(), provider }
    }

    pub fn key(prefix: &str, token: &str) -> String {
        format!("{prefix}dev:push:{token}")
    }
}

impl PushSender for DevPushSender {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn send<'a>(&'a self, msg: &'a PushMessage) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(async move {
            let key = Self::key(&self.prefix, &msg.token);
            let body = serde_json::to_string(msg).map_err(|e| PushError::Rejected(e.to_string()))?;
            let mut conn = self.redis.clone();
            let res: redis::RedisResult<()> =
                redis::pipe().lpush(&key, body).ltrim(&key, 0, 99).expire(&key, 86_400).query_async(&mut conn).await;
            res.map_err(|e| PushError::Retry { reason: e.to_string(), retry_after: None })
        })
    }
}

/// What the development sender recorded for a token, newest first.
pub async fn dev_pushes(redis: &Redis, prefix: &str, token: &str) -> redis::RedisResult<Vec<PushMessage>> {
    use redis::AsyncCommands;
    let mut conn = redis.clone();
    let raw: Vec<String> = conn.lrange(DevPushSender::key(prefix, token), 0, 99).await?;
    Ok(raw.iter().filter_map(|s| serde_json::from_str(s).ok()).collect())
}

/// The sender for each provider a device may name.
#[derive(Clone)]
pub struct PushSenders {
    pub fcm: Arc<dyn PushSender>,
    pub jpush: Arc<dyn PushSender>,
}

impl PushSenders {
    pub fn get(&self, provider: Provider) -> &Arc<dyn PushSender> {
        match provider {
            Provider::Fcm => &self.fcm,
            Provider::Jpush => &self.jpush,
        }
    }
}
