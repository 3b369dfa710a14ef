//! SQL for announcements and their read receipts.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::Announcement;

pub async fn insert(db: &mut PgConnection, a: &Announcement) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO announcements (id, company_id, project_id, audience, building_id, title, body, pinned, expires_at,
                                    published_by, published_at, recipients)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        a.id,
        a.company_id,
        a.project_id,
        a.audience,
        a.building_id,
        a.title,
        a.body,
        a.pinned,
        a.expires_at,
        a.published_by,
        a.published_at,
        a.recipients
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Filters for a page of announcements.
pub struct Visible<'a> {
    pub company_id: Uuid,
    /// projects the caller may see (staff) or lives in (owner)
    pub projects: &'a [Uuid],
    /// an owner's buildings: `building` audiences outside them are hidden; `None` for staff
    pub buildings: Option<&'a [Uuid]>,
    /// staff see staff-only notices, owners do not
    pub staff: bool,
    pub now: Option<DateTime<Utc>>,
    pub pinned_only: bool,
    pub user_id: Uuid,
}

pub async fn list(
    db: impl PgExecutor<'_>,
    v: &Visible<'_>,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Announcement>> {
    sqlx::query_as!(
        Announcement,
        r#"SELECT a.id, a.company_id, a.project_id, a.audience, a.building_id, a.title, a.body, a.pinned, a.expires_at,
                  a.published_by, a.published_at, a.recipients,
                  EXISTS (SELECT 1 FROM announcement_reads r WHERE r.announcement_id = a.id AND r.user_id = $7) AS "read!",
                  (SELECT count(*) FROM announcement_reads r WHERE r.announcement_id = a.id) AS "read_count!"
           FROM announcements a
           WHERE a.company_id = $1 AND a.project_id = ANY($2)
             AND ($3::uuid[] IS NULL OR a.audience = 'owners' OR (a.audience = 'building' AND a.building_id = ANY($3)))
             AND ($4 OR a.audience <> 'staff')
             AND ($5::timestamptz IS NULL OR a.expires_at IS NULL OR a.expires_at > $5)
             AND (NOT $6 OR a.pinned)
             AND ($8::uuid IS NULL OR a.id < $8)
           ORDER BY a.id DESC LIMIT $9"#,
        v.company_id,
        v.projects,
        v.buildings,
        v.staff,
        v.now,
        v.pinned_only,
        v.user_id,
        before,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn mark_read(db: impl PgExecutor<'_>, id: Uuid, user_id: Uuid, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO announcement_reads (announcement_id, user_id, read_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        id,
        user_id,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}
