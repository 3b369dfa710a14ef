//! 账单 bill runs (preview, then commit; idempotent), bills with their lines, the owner's
//! bills, and payments recorded by finance with numbered receipts.

pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
