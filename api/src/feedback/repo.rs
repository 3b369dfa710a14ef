//! SQL for owner feedback and its conversation.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Feedback, Kind, Message, State};

pub async fn insert(db: impl PgExecutor<'_>, f: &Feedback) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO feedback (id, company_id, project_id, owner_id, reporter_id, house_id, kind, content, photos, state,
             respond_due_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        f.id,
        f.company_id,
        f.project_id,
        f.owner_id,
        f.reporter_id,
        f.house_id,
        f.kind.as_str(),
        f.content,
        &f.photos,
        f.state.as_str(),
        f.respond_due_at,
        f.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn save(db: impl PgExecutor<'_>, f: &Feedback) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE feedback SET state = $2, work_order_id = $3, first_reply_at = $4, closed_at = $5, rating = $6,
             rating_comment = $7, updated_at = $8
         WHERE id = $1",
        f.id,
        f.state.as_str(),
        f.work_order_id,
        f.first_reply_at,
        f.closed_at,
        f.rating,
        f.rating_comment,
        f.updated_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Feedback>> {
    sqlx::query_as!(
        Feedback,
        r#"SELECT id, company_id, project_id, owner_id, reporter_id, house_id, kind AS "kind: Kind", content, photos,
                  state AS "state: State", work_order_id, respond_due_at, first_reply_at, closed_at, rating,
                  rating_comment, created_at, updated_at
           FROM feedback WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn lock(db: &mut PgConnection, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Feedback>> {
    sqlx::query_as!(
        Feedback,
        r#"SELECT id, company_id, project_id, owner_id, reporter_id, house_id, kind AS "kind: Kind", content, photos,
                  state AS "state: State", work_order_id, respond_due_at, first_reply_at, closed_at, rating,
                  rating_comment, created_at, updated_at
           FROM feedback WHERE company_id = $1 AND id = $2 FOR UPDATE"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// Newest first after the cursor; `projects` `None`: all of the company; `owner`: only theirs.
#[allow(clippy::too_many_arguments)]
pub async fn list(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    projects: Option<&[Uuid]>,
    project: Option<Uuid>,
    owner: Option<Uuid>,
    states: &[State],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Feedback>> {
    let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    sqlx::query_as!(
        Feedback,
        r#"SELECT id, company_id, project_id, owner_id, reporter_id, house_id, kind AS "kind: Kind", content, photos,
                  state AS "state: State", work_order_id, respond_due_at, first_reply_at, closed_at, rating,
                  rating_comment, created_at, updated_at
           FROM feedback
           WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id = ANY($2)) AND ($3::uuid IS NULL OR project_id = $3)
             AND ($4::uuid IS NULL OR owner_id = $4) AND (cardinality($5::text[]) = 0 OR state = ANY($5))
             AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
           ORDER BY created_at DESC, id DESC LIMIT $8"#,
        company_id,
        projects,
        project,
        owner,
        &states as &[&str],
        after.map(|k| k.0),
        after.map(|k| k.1),
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn insert_message(db: impl PgExecutor<'_>, m: &Message) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO feedback_messages (id, feedback_id, author_id, from_staff, body, at) VALUES ($1, $2, $3, $4, $5, $6)",
        m.id,
        m.feedback_id,
        m.author_id,
        m.from_staff,
        m.body,
        m.at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn messages_of(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<Message>> {
    sqlx::query_as!(
        Message,
        "SELECT id, feedback_id, author_id, from_staff, body, at FROM feedback_messages
         WHERE feedback_id = ANY($1) ORDER BY at, id",
        ids
    )
    .fetch_all(db)
    .await
}

/// Open feedback past its reply deadline that was not escalated yet: (id, company, project, kind).
pub async fn overdue(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<Vec<(Uuid, Uuid, Uuid, Kind)>> {
    let rows = sqlx::query!(
        r#"SELECT id, company_id, project_id, kind AS "kind: Kind" FROM feedback
           WHERE state = 'open' AND first_reply_at IS NULL AND escalated_at IS NULL AND respond_due_at <= $1
           LIMIT 500"#,
        now
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.company_id, r.project_id, r.kind)).collect())
}

pub async fn mark_escalated(db: impl PgExecutor<'_>, id: Uuid, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!("UPDATE feedback SET escalated_at = $2 WHERE id = $1 AND escalated_at IS NULL", id, at)
        .execute(db)
        .await?
        .rows_affected())
}
