//! 业主与住户: owners (people registered by the property office), their links to houses
//! (owner, household member, tenant) and to their app account. Above `company`, below
//! `estate`: it reads house rows only through its own SQL, never through `estate`.
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
