//! 设施设备: the equipment ledger (设备台账) — devices with category attributes, search,
//! CSV import and QR payloads. Live monitoring, alarms and maintenance build on it.
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
