//! 企业与项目: the company profile and logo, and its projects with their manager,
//! customer-service team and attendance geofence. The bottom of `org`: it calls no other
//! part of it.
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
