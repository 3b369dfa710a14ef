//! Sign-in: passwords, captcha, lockout, SMS codes, tokens.
pub mod captcha;
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
