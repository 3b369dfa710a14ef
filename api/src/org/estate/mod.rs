//! 房产资料: buildings → units → houses, parking spaces, and the CSV import of houses with
//! their owners. The top of `org`: it calls the services of `company` (projects and their
//! scope) and `owners` (people and their house links), never the other way round.
pub mod graphql;
pub mod import;
pub mod model;
pub mod repo;
pub mod service;
