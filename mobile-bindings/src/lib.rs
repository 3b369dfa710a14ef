//! wuye-mobile: the SDK the owner and staff apps share, exported with UniFFI (Kotlin,
//! Swift, Python; `deploy/sdk.sh` generates the bindings). The server never links it: the
//! rules both sides need live in `wuye-validate`, which this crate re-exports.
//!
//! - `WuyeClient`: the session (password or SMS code, refreshed ahead of expiry, kept by
//!   the app's secure storage through `TokenStore`), operations sent by hash, and
//! - the offline queue (`queue`): actions taken without signal, in SQLite, replayed in
//!   order with their clientMutationId and original time;
//! - `Operation`: every operation of the apps' manifests, generated (`build.rs`);
//! - `subscribe`: graphql-transport-ws with reconnect and resubscribe.

uniffi::setup_scaffolding!();

pub mod client;
pub mod operations;
pub mod queue;
pub mod subscribe;
pub mod validate;

pub use client::{ClientConfig, ReplayReport, SdkError, SessionInfo, TokenStore, WuyeClient};
pub use operations::{App, Operation, OperationInfo, OperationKind};
pub use queue::{ActionState, QueuedAction};
pub use subscribe::{Subscription, SubscriptionListener};
pub use validate::{IdCardInfo, ValidationError, normalize_phone, validate_credit_code, validate_id_card};
