//! 私有文件 private uploads: photos and documents of people's homes (work orders, feedback,
//! maintenance records). Uploaded by a signed-in user, checked by content, stored under a
//! key nobody outside can guess, attached to a record only by the person who uploaded it,
//! and served only through a short-lived signed URL handed to those who may read the record.
//! Sits above rbac; the domains that attach files sit above it.
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
