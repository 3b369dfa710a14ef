//! Announcements and who they are for.

use chrono::{DateTime, Utc};
use uuid::Uuid;

crate::text_enum! {
    /// 公告对象 who an announcement is for.
    pub enum Audience {
        /// every owner, member and tenant of the project
        Owners = "owners",
        /// the residents of one building
        Building = "building",
        /// the project's staff only
        Staff = "staff",
    }
}

/// 公告 a project's notice, with what the caller may know about its reading.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Announcement {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub audience: Audience,
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
    /// the caller sees it as staff of its project (read receipts, recipient count)
    pub staff_view: bool,
}
