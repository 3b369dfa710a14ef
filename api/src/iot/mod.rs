//! 设备状态监测: device messages over MQTT → live state in Redis, telemetry history in
//! PostgreSQL, rules → alarms, state changes to subscribers, commands and offline sweeps.
pub mod alarm;
pub mod alarm_graphql;
pub mod graphql;
pub mod ingest;
pub mod model;
pub mod mqtt;
pub mod repo;
pub mod rules;
pub mod service;
pub mod sim;
