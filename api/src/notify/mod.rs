//! Telling people things: a transactional outbox drained by dispatchers on every replica,
//! the in-app inbox with a live subscription, push (FCM / JPush) and SMS senders.

pub mod announcements;
pub mod dispatcher;
pub mod graphql;
pub mod model;
pub mod push;
pub mod repo;
pub mod service;
pub mod sms;

use std::sync::Arc;

/// The senders of this replica, registered at startup (`AppState::part`).
pub struct Senders {
    pub sms: Arc<dyn sms::SmsSender>,
    pub push: push::PushSenders,
}
