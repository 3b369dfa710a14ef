//! 巡检 patrol routes of QR checkpoints walked in order at scheduled times, the patrols
//! the scheduler makes from them, the scans that tick the points off, and missed points
//! reported to the project's managers.
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
