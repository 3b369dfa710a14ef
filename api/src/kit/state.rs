//! `AppState`: what every service is handed. The kit names only infrastructure (pools,
//! clients, keys, clock, bus, storage); singletons a domain owns — the actor cache, the
//! SMS and push senders, device caches — are registered once at startup as `Parts`, so
//! the kit never imports a domain.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use super::redis::Redis;
use sqlx::PgPool;

use super::clock::Clock;
use super::config::Config;
use super::crypto::Keys;
use super::error::{AppError, AppResult};
use super::events::EventBus;
use super::storage::Storage;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: Redis,
    pub config: Arc<Config>,
    pub keys: Arc<Keys>,
    pub storage: Arc<Storage>,
    pub clock: Arc<dyn Clock>,
    pub events: EventBus,
    /// publishes device commands; its event loop runs in the server's background tasks
    pub mqtt: rumqttc::AsyncClient,
    parts: Arc<Parts>,
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: PgPool,
        redis: Redis,
        config: Arc<Config>,
        keys: Arc<Keys>,
        storage: Arc<Storage>,
        clock: Arc<dyn Clock>,
        events: EventBus,
        mqtt: rumqttc::AsyncClient,
        parts: Parts,
    ) -> Self {
        AppState { db, redis, config, keys, storage, clock, events, mqtt, parts: Arc::new(parts) }
    }

    /// A domain's singleton; every one is registered by the startup code.
    pub fn part<T: Any + Send + Sync>(&self) -> AppResult<&T> {
        self.parts.get::<T>().ok_or_else(|| AppError::internal(MissingPart(std::any::type_name::<T>())))
    }

    /// The pool for read-only work that may lag the primary by a moment (reports, history):
    /// the streaming replica's when `database_replica_url` is set, else the primary's.
    pub fn reads(&self) -> &PgPool {
        self.parts.get::<ReadReplica>().map(|r| &r.0).unwrap_or(&self.db)
    }

    /// A Redis key under this deployment's prefix: `prefix` + `parts` joined by `:`.
    pub fn redis_key(&self, parts: &[&str]) -> String {
        let mut k = self.config.redis_prefix.clone();
        k.push_str(&parts.join(":"));
        k
    }
}

/// The read-only replica's pool (`database_replica_url`).
pub struct ReadReplica(pub PgPool);

#[derive(Debug, thiserror::Error)]
#[error("state part {0} was not registered at startup")]
struct MissingPart(&'static str);

/// Domain singletons by type.
#[derive(Default)]
pub struct Parts(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl Parts {
    pub fn with<T: Any + Send + Sync>(mut self, part: T) -> Self {
        self.0.insert(TypeId::of::<T>(), Box::new(part));
        self
    }

    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>()).and_then(|b| b.downcast_ref::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_by_type() {
        struct A(u8);
        struct B;
        let p = Parts::default().with(A(7));
        assert_eq!(p.get::<A>().map(|a| a.0), Some(7));
        assert!(p.get::<B>().is_none());
    }
}
