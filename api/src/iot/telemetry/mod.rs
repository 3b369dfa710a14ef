//! 设备状态监测: device messages over MQTT → telemetry history in PostgreSQL, live state in
//! Redis, rules → alarms, status changes to subscribers; the offline sweep, the device
//! cache that follows the ledger, and the live dashboard.
pub mod graphql;
pub mod model;
pub mod mqtt;
pub mod repo;
pub mod service;
