//! End-to-end tests of a running server: one binary, modules per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alarms;
mod announce;
mod auth;
mod enums;
mod equipment;
mod iot;
mod maintenance;
mod notify;
mod operations;
mod org;
mod rbac;
mod server;
mod sms;
