//! wuye (物业): the GraphQL server of a smart property management system.
//!
//! Layers, bottom to top (see ARCHITECTURE.md; `tests/architecture.rs` keeps the order):
//! `kit` → `rbac` → `files` → `org` → `notify` → `auth` → `equipment` → `iot` →
//! `maintenance` → `workorders` → `feedback` → `billing` → `onboarding` → `http` → `app`.

// the merged GraphQL root's resolver nests deeper than the default limit when optimised
#![recursion_limit = "256"]

pub mod app;
pub mod auth;
pub mod billing;
pub mod equipment;
pub mod feedback;
pub mod files;
pub mod http;
pub mod iot;
pub mod kit;
pub mod maintenance;
pub mod notify;
pub mod onboarding;
pub mod org;
pub mod people;
pub mod rbac;
pub mod workorders;

pub use app::App;
pub use kit::config::Config;
pub use kit::state::AppState;
