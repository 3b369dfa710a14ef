//! 员工培训 courses and sessions: a course's content and its private materials (PDF and
//! video, each kind with its own size limit), sessions with a time, a place, a trainer and
//! attendees who are told, and who came.

pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
