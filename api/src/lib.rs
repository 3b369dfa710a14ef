//! wuye (物业): the GraphQL server of a smart property management system.

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod equipment;
pub mod error;
pub mod events;
pub mod graphql;
pub mod iot;
pub mod jobs;
pub mod maintenance;
pub mod notify;
pub mod org;
pub mod rbac;
pub mod seed;
pub mod storage;
pub mod types;

pub use app::{App, AppState};
pub use config::Config;
