//! 抄表 meter reading: a meter's register at the close of each billing month, from the
//! devices' telemetry (kept exact from the JSON text), staff entry or import; meter
//! replacements; usage with the meter's multiplier; abnormal usage held for review.

pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
