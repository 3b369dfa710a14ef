//! `wuye simulate-devices`: realistic device traffic for the demo, the tests and the
//! ingest benchmark, published to the broker like real devices do.
pub mod model;
pub mod repo;
pub mod service;
