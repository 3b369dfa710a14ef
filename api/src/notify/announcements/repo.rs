//! SQL for announcements and their read receipts.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Announcement, Audience};

/// A new announcement row.
pub struct NewAnnouncement<'a> {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub audience: Audience,
    pub building_id: Option<Uuid>,
    pub title: &'a str,
    pub body: &'a str,
    pub pinned: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub published_by: Uuid,
    pub published_at: DateTime<Utc>,
    pub recipients: i32,
}

pub async fn insert(db: &mut PgConnection, a: &NewAnnouncement<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO announcements (id, company_id, project_id, audience, building_id, title, body, pinned, expires_at,
                                    published_by, published_at, recipients)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        a.id,
        a.company_id,
        a.project_id,
        a.audience.as_str(),
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

/// What a caller may see. Staff view: every notice of the listed projects, staff-only and
/// expired ones included. Owner view: the unexpired project-wide notices where they live
/// and those of their buildings. An account that is both sees both.
pub struct Visible<'a> {
    pub company_id: Uuid,
    /// the caller sees as staff
    pub staff: bool,
    /// the staff view's projects; `None`: every project of the company
    pub staff_projects: Option<&'a [Uuid]>,
    /// owner view: projects and buildings the caller lives in (empty: no owner view)
    pub home_projects: &'a [Uuid],
    pub home_buildings: &'a [Uuid],
    /// owners see only notices that have not expired at this instant
    pub now: DateTime<Utc>,
    /// only this project's notices
    pub project_id: Option<Uuid>,
    pub pinned_only: bool,
    /// only this announcement (reading one again)
    pub only: Option<Uuid>,
    /// whose read receipt `read` shows
    pub user_id: Uuid,
}

/// A page of visible announcements, newest first: rows after the cursor
/// `(published_at, id)`.
pub async fn list(
    db: impl PgExecutor<'_>,
    v: &Visible<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Announcement>> {
    sqlx::query_as!(
        Announcement,
        r#"SELECT a.id, a.company_id, a.project_id, a.audience AS "audience: Audience", a.building_id, a.title,
                  a.body, a.pinned, a.expires_at, a.published_by, a.published_at, a.recipients,
                  EXISTS (SELECT 1 FROM announcement_reads r WHERE r.announcement_id = a.id AND r.user_id = $10) AS "read!",
                  (SELECT count(*) FROM announcement_reads r WHERE r.announcement_id = a.id) AS "read_count!",
                  ($2 AND ($3::uuid[] IS NULL OR a.project_id = ANY($3))) AS "staff_view!"
           FROM announcements a
           WHERE a.company_id = $1
             AND (($2 AND ($3::uuid[] IS NULL OR a.project_id = ANY($3)))
                  OR (a.project_id = ANY($4::uuid[]) AND a.audience <> 'staff'
                      AND (a.audience = 'owners' OR a.building_id = ANY($5::uuid[]))
                      AND (a.expires_at IS NULL OR a.expires_at > $6)))
             AND ($7::uuid IS NULL OR a.project_id = $7)
             AND (NOT $8 OR a.pinned)
             AND ($9::uuid IS NULL OR a.id = $9)
             AND ($11::timestamptz IS NULL OR (a.published_at, a.id) < ($11, $12::uuid))
           ORDER BY a.published_at DESC, a.id DESC LIMIT $13"#,
        v.company_id,
        v.staff,
        v.staff_projects,
        v.home_projects,
        v.home_buildings,
        v.now,
        v.project_id,
        v.pinned_only,
        v.only,
        v.user_id,
        after.map(|k| k.0),
        after.map(|k| k.1),
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
