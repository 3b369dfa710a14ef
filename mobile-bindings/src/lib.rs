//! wuye-mobile: the SDK the owner and staff apps share, exported with UniFFI (Kotlin,
//! Swift, Python). The server never links it: the rules both sides need live in
//! `wuye-validate`, which this crate re-exports.

uniffi::setup_scaffolding!();

pub mod validate;

pub use validate::{IdCardInfo, ValidationError, normalize_phone, validate_credit_code, validate_id_card};
