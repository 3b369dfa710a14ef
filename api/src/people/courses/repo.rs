//! 培训 SQL.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::model::{Attendee, Course, Material, MaterialKind, Session};

pub async fn upsert_course(db: impl PgExecutor<'_>, c: &Course, by: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO courses (id, company_id, project_id, title, content, audience, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (id) DO UPDATE SET title = $4, content = $5, audience = $6, updated_at = $8",
        c.id,
        c.company_id,
        c.project_id,
        c.title,
        c.content,
        c.audience,
        by,
        c.updated_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn course(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Course>> {
    sqlx::query_as!(
        Course,
        "SELECT id, company_id, project_id, title, content, audience, updated_at FROM courses
         WHERE company_id = $1 AND id = $2",
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// Courses of some projects (None: all; company-wide ones always), in id order.
pub async fn courses(
    db: impl PgExecutor<'_>,
    company: Uuid,
    projects: Option<&[Uuid]>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Course>> {
    sqlx::query_as!(
        Course,
        "SELECT id, company_id, project_id, title, content, audience, updated_at FROM courses
         WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id IS NULL OR project_id = ANY($2))
           AND ($3::uuid IS NULL OR id > $3)
         ORDER BY id LIMIT $4",
        company,
        projects,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn insert_material(db: impl PgExecutor<'_>, company: Uuid, m: &Material, by: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO course_materials (id, company_id, course_id, file_key, kind, name, size_bytes, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        m.id,
        company,
        m.course_id,
        m.file_key,
        m.kind.as_str(),
        m.name,
        m.size_bytes,
        by,
        m.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn materials(db: impl PgExecutor<'_>, courses: &[Uuid]) -> sqlx::Result<Vec<Material>> {
    sqlx::query_as!(
        Material,
        r#"SELECT id, course_id, file_key, kind AS "kind: MaterialKind", name, size_bytes, created_at
           FROM course_materials WHERE course_id = ANY($1) ORDER BY course_id, created_at"#,
        courses
    )
    .fetch_all(db)
    .await
}

/// A material with its course's project.
pub async fn material(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<(Material, Uuid)>> {
    let r = sqlx::query!(
        r#"SELECT m.id, m.course_id, m.file_key, m.kind AS "kind: MaterialKind", m.name, m.size_bytes, m.created_at
           FROM course_materials m WHERE m.company_id = $1 AND m.id = $2"#,
        company,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(r.map(|r| {
        (
            Material {
                id: r.id,
                course_id: r.course_id,
                file_key: r.file_key,
                kind: r.kind,
                name: r.name,
                size_bytes: r.size_bytes,
                created_at: r.created_at,
            },
            r.course_id,
        )
    }))
}

pub async fn delete_material(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM course_materials WHERE id = $1", id).execute(db).await?.rows_affected())
}

pub async fn insert_session(
    db: &mut sqlx::PgConnection,
    s: &Session,
    by: Uuid,
    at: DateTime<Utc>,
    attendees: &[Uuid],
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO training_sessions (id, company_id, course_id, project_id, starts_at, ends_at, place, trainer_id,
                                        created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        s.id,
        s.company_id,
        s.course_id,
        s.project_id,
        s.starts_at,
        s.ends_at,
        s.place,
        s.trainer_id,
        by,
        at
    )
    .execute(&mut *db)
    .await?;
    sqlx::query!(
        "INSERT INTO session_attendees (session_id, user_id) SELECT $1, u FROM unnest($2::uuid[]) AS u",
        s.id,
        attendees
    )
    .execute(&mut *db)
    .await?;
    Ok(())
}

pub async fn session(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Session>> {
    sqlx::query_as!(
        Session,
        "SELECT id, company_id, course_id, project_id, starts_at, ends_at, place, trainer_id FROM training_sessions
         WHERE company_id = $1 AND id = $2",
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// Sessions starting within `from..to`: of some projects (None: all), or those a person
/// attends or trains (`person`), by start.
pub async fn sessions(
    db: impl PgExecutor<'_>,
    company: Uuid,
    projects: Option<&[Uuid]>,
    person: Option<Uuid>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<Session>> {
    sqlx::query_as!(
        Session,
        "SELECT id, company_id, course_id, project_id, starts_at, ends_at, place, trainer_id FROM training_sessions s
         WHERE company_id = $1 AND starts_at >= $4 AND starts_at < $5
           AND ($2::uuid[] IS NULL OR project_id IS NULL OR project_id = ANY($2))
           AND ($3::uuid IS NULL OR trainer_id = $3
                OR EXISTS (SELECT 1 FROM session_attendees a WHERE a.session_id = s.id AND a.user_id = $3))
         ORDER BY starts_at, id LIMIT 500",
        company,
        projects,
        person,
        from,
        to
    )
    .fetch_all(db)
    .await
}

pub async fn attendees(db: impl PgExecutor<'_>, sessions: &[Uuid]) -> sqlx::Result<Vec<Attendee>> {
    sqlx::query_as!(
        Attendee,
        "SELECT session_id, user_id, attended, marked_at FROM session_attendees WHERE session_id = ANY($1)
         ORDER BY session_id, user_id",
        sessions
    )
    .fetch_all(db)
    .await
}

/// Whether a person attends or trains any session of a course.
pub async fn takes_part(db: impl PgExecutor<'_>, course: Uuid, user: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM training_sessions s WHERE s.course_id = $1 AND (s.trainer_id = $2
              OR EXISTS (SELECT 1 FROM session_attendees a WHERE a.session_id = s.id AND a.user_id = $2))) AS "x!""#,
        course,
        user
    )
    .fetch_one(db)
    .await
}

/// Marks attendees of a session; returns how many of the listed were attendees.
pub async fn mark(
    db: impl PgExecutor<'_>,
    session: Uuid,
    users: &[Uuid],
    attended: bool,
    by: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE session_attendees SET attended = $3, marked_by = $4, marked_at = $5
         WHERE session_id = $1 AND user_id = ANY($2)",
        session,
        users,
        attended,
        by,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// One person's sessions with their course titles, newest first (a transcript).
pub async fn attended_by(db: impl PgExecutor<'_>, user: Uuid) -> sqlx::Result<Vec<(Session, String, Option<bool>)>> {
    let rows = sqlx::query!(
        "SELECT s.id, s.company_id, s.course_id, s.project_id, s.starts_at, s.ends_at, s.place, s.trainer_id,
                c.title, a.attended
         FROM session_attendees a JOIN training_sessions s ON s.id = a.session_id JOIN courses c ON c.id = s.course_id
         WHERE a.user_id = $1 ORDER BY s.starts_at DESC",
        user
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                Session {
                    id: r.id,
                    company_id: r.company_id,
                    course_id: r.course_id,
                    project_id: r.project_id,
                    starts_at: r.starts_at,
                    ends_at: r.ends_at,
                    place: r.place,
                    trainer_id: r.trainer_id,
                },
                r.title,
                r.attended,
            )
        })
        .collect())
}
