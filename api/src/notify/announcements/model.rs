//! Announcements and who they are for.

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const AUDIENCES: &[&str] = &["owners", "building", "staff"];

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Announcement {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub audience: String,
    pub building_id: Option<Uuid>,
    pub title: String,
    pub body: String,
    pub pinned: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub published_by: Uuid,
    pub published_at: DateTime<Utc>,
    pub recipients: i32,
    /// whether the caller has read it
    pub read: bool,
    /// how many recipients have read it
    pub read_count: i64,
}
