//! 远程控制: commands to devices over MQTT (open a door, send an elevator to its base
//! floor, reset), each with its own permission and project scope, audited, answered by
//! the device or failed after a timeout.
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
