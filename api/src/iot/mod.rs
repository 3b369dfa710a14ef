//! 设备状态监测: device messages over MQTT → live state in Redis, telemetry history in
//! PostgreSQL, state changes to subscribers. Alarms, commands and offline sweeps build on it.
pub mod graphql;
pub mod model;
pub mod mqtt;
pub mod repo;
pub mod service;
