//! Telling people things. For now: the SMS sender used for security codes. The outbox,
//! push providers and the real SMS gateways build on this in the notifications module.

pub mod sms;
