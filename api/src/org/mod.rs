//! Company and estate structure (企业信息, 项目信息, 楼栋/单元/房屋/车位, 业主), in three
//! capabilities stacked one way, each calling only the services of those below it:
//!
//! - `company`: the company profile and logo, projects with their manager, customer-service
//!   team and geofence;
//! - `owners`: people registered by the property office, their house links and their one
//!   account (reads house rows by its own SQL);
//! - `estate`: buildings, units, houses, parking and the CSV import (projects from
//!   `company`, people from `owners`).
pub mod company;
pub mod estate;
pub mod owners;
