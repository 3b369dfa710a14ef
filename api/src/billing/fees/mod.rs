//! 费用项目设置 fee items and their prices, with the amount of a bill line computed in
//! `Decimal` by the item's method (area, fixed, metered, tiered, or a formula in a small
//! safe language).

pub mod formula;
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
