//! 设备接入: how the server reaches the broker (URL, credentials, TLS, packet limits) and
//! each device's own broker account — provisioned from the ledger through Mosquitto's
//! dynamic-security plugin, limited by ACL to the device's own topics.
pub mod dynsec;
pub mod graphql;
pub mod model;
pub mod service;
