//! 线上支付: WeChat Pay API v3 and Alipay orders of bills, their signed notifications,
//! reconciliation with the providers, and refunds through the approval kit.

pub mod alipay;
pub mod gateway;
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
pub mod wechat;
