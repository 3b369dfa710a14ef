//! Company and estate structure (企业信息, 项目信息, 楼栋/单元/房屋/车位, 业主).
pub mod graphql;
pub mod import;
pub mod model;
pub mod repo;
pub mod service;
