//! Owners and residents: the people living in (or owning, or renting) houses.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::kit::types::{IdCardNumber, Phone};

/// 业主/住户 a person registered by the property office.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Owner {
    pub id: Uuid,
    pub company_id: Uuid,
    /// the app account linked to this record (one per person in a company)
    pub user_id: Option<Uuid>,
    pub name: String,
    pub phone: String,
    /// AES-256-GCM (nonce || ciphertext) of the ID-card number
    pub id_card_enc: Option<Vec<u8>>,
    /// the linked account has been activated
    pub activated: bool,
    pub created_at: DateTime<Utc>,
}

crate::text_enum! {
    /// 住户关系 how a person is linked to a house
    pub enum Relation {
        /// 产权人 owns it
        Owner = "owner",
        /// 家庭成员 a member of the owner's household
        Member = "member",
        /// 租户 rents it
        Tenant = "tenant",
    }
}

/// A person's link to a house, with the person's name and phone.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Resident {
    pub house_id: Uuid,
    pub owner_id: Uuid,
    pub relation: Relation,
    pub name: String,
    /// in clear from the repo; the service masks it for the caller
    pub phone: String,
}

/// What the caller may see of a person's contact and identity data.
#[derive(Debug, Clone)]
pub struct OwnerView {
    pub owner: Owner,
    /// masked unless the caller holds `pii:read` or it is their own record
    pub phone: String,
    /// decrypted, masked likewise
    pub id_card_number: Option<String>,
}

/// Owner fields that passed validation, ready to insert.
#[derive(Debug, Clone)]
pub struct CheckedOwner {
    pub name: String,
    pub phone: Phone,
    pub id_card: Option<IdCardNumber>,
}
