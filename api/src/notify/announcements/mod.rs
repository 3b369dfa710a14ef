//! 公告 announcements: a project's notice to its owners (all, or one building) or its staff,
//! optionally pinned and with an expiry, pushed through the outbox, with read receipts.
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
