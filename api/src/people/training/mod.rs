//! 员工考核 exams: a question bank by topic, exams that draw from it in a random order,
//! attempts timed and graded by the server (the right answers unreachable before
//! submission), practical assessments a trainer scores, and each employee's transcript.

pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
