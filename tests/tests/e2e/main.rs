//! End-to-end tests of a running server: one binary, modules per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adjust;
mod alarms;
mod announce;
mod auth;
mod billing;
mod bills;
mod broker;
mod dunning;
mod enums;
mod equipment;
mod feedback;
mod iot;
mod maintenance;
mod notify;
mod operations;
mod org;
mod pay;
mod prepaid;
mod rbac;
mod replicas;
mod scope;
mod security;
mod server;
mod sms;
mod workorders;
