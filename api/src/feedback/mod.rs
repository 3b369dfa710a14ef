//! 客服 owner feedback: complaints, suggestions, praise and enquiries, the conversation with
//! the project's customer service, conversion to a work order, closing and rating, and a
//! response deadline the scheduler escalates. Sits above workorders (it opens orders).
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
