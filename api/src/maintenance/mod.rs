//! 维修与保养计划, 巡检: maintenance plans, the tasks the scheduler creates from them, the
//! records that complete them, and patrol routes with their checkpoint scans.
pub mod graphql;
pub mod repo;
pub mod schedule;
pub mod service;
