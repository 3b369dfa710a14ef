//! 物联网: what devices say and what comes of it, one capability per folder —
//! `broker` (connecting to it, each device's own account), `telemetry` (MQTT ingest, live state, offline sweep, dashboard), `commands` (remote
//! control), `alarms` (rules, alarms, follow-up, repair requests), `history` (trends,
//! meter readings, elevator state) and `sim` (the device simulator). It builds on the
//! equipment ledger and follows its changes through the event bus.
pub mod alarms;
pub mod broker;
pub mod commands;
pub mod history;
pub mod sim;
pub mod telemetry;
