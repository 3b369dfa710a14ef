//! 打印 printed bills (缴费通知单), receipts (收据), and a run's bills as one PDF rendered
//! in the background with its progress. Every document is a private file served through
//! short-lived signed URLs.

pub mod graphql;
pub mod model;
pub mod render;
pub mod repo;
pub mod service;
