//! 预存: a house's prepaid balance, its top-ups and the automatic deductions for its bills.

pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
