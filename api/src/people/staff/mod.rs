//! 员工档案 and 资质证书: the employee record of a staff account, its licences for special
//! posts, reminders before they expire, and the work that needs them.

pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
