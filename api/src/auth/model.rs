//! Tokens, credentials and one-time codes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::kit::gql::ClientApp;
use crate::rbac::model::AccountStatus;

/// Claims of the access token (JWT HS256, 15 minutes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// issuer: `auth.jwt_issuer`
    pub iss: String,
    /// audience: `auth.jwt_audience`
    pub aud: String,
    pub sub: Uuid,
    /// company
    pub cid: Uuid,
    pub iat: i64,
    pub exp: i64,
    /// the app the session was opened in (tokens issued before apps were told apart have none)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<ClientApp>,
}

#[derive(Debug, Clone)]
pub struct TokenPair {
    pub user_id: Uuid,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub must_change_password: bool,
}

/// What signing in needs to know about an account.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: Uuid,
    pub company_id: Uuid,
    pub company_name: String,
    pub status: AccountStatus,
    pub password_hash: Option<String>,
    pub must_change_password: bool,
    pub tokens_valid_after: Option<DateTime<Utc>>,
    pub sessions_valid_after: Option<DateTime<Utc>>,
    pub is_staff: bool,
    /// linked to an owner record (a member of staff may also own a flat)
    pub is_owner: bool,
}

/// A stored refresh token (its SHA-256), one link of a rotation family.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub used: bool,
    pub revoked: bool,
    /// `None`: a session the previous release opened (the account's own app)
    pub app: Option<ClientApp>,
}

/// What an SMS code may be used for; a code for one purpose is useless for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    SignIn,
    Activate,
    ResetPassword,
}

impl CodePurpose {
    pub fn key(self) -> &'static str {
        match self {
            CodePurpose::SignIn => "signin",
            CodePurpose::Activate => "activate",
            CodePurpose::ResetPassword => "reset",
        }
    }

    /// The account status the purpose is for: activation wakes a pending account.
    pub fn account_status(self) -> AccountStatus {
        match self {
            CodePurpose::Activate => AccountStatus::Pending,
            CodePurpose::SignIn | CodePurpose::ResetPassword => AccountStatus::Active,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CodeSent {
    pub resend_after_secs: u64,
    pub expires_in_secs: u64,
}
