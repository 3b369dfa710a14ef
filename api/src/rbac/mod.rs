//! Roles, permissions, data scope and staff accounts.
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
