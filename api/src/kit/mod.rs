//! The kit: what every domain uses and that imports no domain — state, configuration,
//! errors, ids and pagination, the clock, crypto, the event bus, storage, the audit log,
//! retry-safe mutations, money and parsed values.

pub mod approval;
pub mod audit;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod enums;
pub mod error;
pub mod events;
pub mod gql;
pub mod idempotency;
pub mod money;
pub mod pagination;
pub mod pdf;
pub mod redis;
pub mod state;
pub mod storage;
pub mod types;
