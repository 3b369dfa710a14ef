//! Tokens and one-time codes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Claims of the access token (JWT HS256, 15 minutes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    /// company
    pub cid: Uuid,
    /// `staff` or `owner`
    pub knd: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone)]
pub struct TokenPair {
    pub user_id: Uuid,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub must_change_password: bool,
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
}

#[derive(Debug, Clone)]
pub struct CodeSent {
    pub resend_after_secs: u64,
    pub expires_in_secs: u64,
}
