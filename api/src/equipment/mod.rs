//! 设施设备: the equipment ledger (设备台账) — devices with category attributes, search,
//! CSV import and QR payloads. Live monitoring, alarms and maintenance build on it; when
//! devices are added it says so on the event bus (`EVENT_LEDGER_CHANGED`).
pub mod graphql;
mod import;
pub mod model;
pub mod repo;
pub mod service;
