//! 历史: what the telemetry history tells — a metric's trend, each meter's readings over a
//! billing period, and an elevator's running state and component health.
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
