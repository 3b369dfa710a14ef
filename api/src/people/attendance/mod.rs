//! 考勤 attendance: shifts and rotas with the public-holiday calendar, punches from phones
//! (geofenced, queued offline) and signed terminals, daily results and the monthly report,
//! corrections and leave through the approval kit, and who is on duty now.

pub mod compute;
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
