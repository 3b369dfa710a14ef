//! 保养计划 maintenance plans per device or per category, the tasks the scheduler makes
//! ahead of each due date (`schedule.rs` holds the pure date arithmetic), and the records
//! that complete them (a failed checklist item is a repair request on the device).
pub mod graphql;
pub mod model;
pub mod repo;
pub mod schedule;
pub mod service;
