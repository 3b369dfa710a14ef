//! 告警: alarm rules (the rule engine in `rules.rs` runs in memory on every message),
//! raising, acknowledging and resolving alarms, their follow-up (the on-duty staff's push,
//! reminders, escalation to the manager), the default rules of a new company, and the
//! repair requests alarms (and maintenance) record.
pub mod graphql;
pub mod model;
pub mod repo;
pub mod rules;
pub mod service;
