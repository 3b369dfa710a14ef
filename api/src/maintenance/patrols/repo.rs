//! SQL for patrol routes, checkpoints, patrols and scans.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Checkpoint, PatrolState, PatrolTask, Route, Scan};

// ---- routes ------------------------------------------------------------------------------

pub async fn insert_route(db: &mut PgConnection, r: &Route, points: &[Checkpoint]) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO patrol_routes (id, company_id, project_id, name, times, window_minutes, active) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        r.id,
        r.company_id,
        r.project_id,
        r.name,
        &r.times,
        r.window_minutes,
        r.active
    )
    .execute(&mut *db)
    .await?;
    for c in points {
        sqlx::query!(
            "INSERT INTO patrol_checkpoints (id, route_id, seq, name, code, lat, lng, radius_m) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            c.id,
            c.route_id,
            c.seq,
            c.name,
            c.code,
            c.lat,
            c.lng,
            c.radius_m
        )
        .execute(&mut *db)
        .await?;
    }
    Ok(())
}

pub async fn get_route(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Route>> {
    sqlx::query_as!(
        Route,
        "SELECT id, company_id, project_id, name, times, window_minutes, active FROM patrol_routes
         WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// A project's routes in id (creation) order, after `after`.
pub async fn routes(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Route>> {
    sqlx::query_as!(
        Route,
        "SELECT id, company_id, project_id, name, times, window_minutes, active FROM patrol_routes
         WHERE company_id = $1 AND project_id = $2 AND ($3::uuid IS NULL OR id > $3)
         ORDER BY id LIMIT $4",
        company_id,
        project_id,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn active_routes(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Route>> {
    sqlx::query_as!(
        Route,
        "SELECT id, company_id, project_id, name, times, window_minutes, active FROM patrol_routes WHERE active ORDER BY id"
    )
    .fetch_all(db)
    .await
}

/// The checkpoints of routes, by route and walking order.
pub async fn checkpoints(db: impl PgExecutor<'_>, route_ids: &[Uuid]) -> sqlx::Result<Vec<Checkpoint>> {
    sqlx::query_as!(
        Checkpoint,
        "SELECT id, route_id, seq, name, code, lat, lng, radius_m FROM patrol_checkpoints
         WHERE route_id = ANY($1) ORDER BY route_id, seq",
        route_ids
    )
    .fetch_all(db)
    .await
}

/// A checkpoint by its QR code, among the company's routes.
pub async fn checkpoint_by_code(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    code: &str,
) -> sqlx::Result<Option<(Checkpoint, Route)>> {
    let row = sqlx::query!(
        "SELECT c.id, c.route_id, c.seq, c.name, c.code, c.lat, c.lng, c.radius_m,
                r.company_id, r.project_id, r.name AS route_name, r.times, r.window_minutes, r.active
         FROM patrol_checkpoints c JOIN patrol_routes r ON r.id = c.route_id
         WHERE r.company_id = $1 AND c.code = $2 LIMIT 1",
        company_id,
        code
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| {
        (
            Checkpoint {
                id: r.id,
                route_id: r.route_id,
                seq: r.seq,
                name: r.name,
                code: r.code,
                lat: r.lat,
                lng: r.lng,
                radius_m: r.radius_m,
            },
            Route {
                id: r.route_id,
                company_id: r.company_id,
                project_id: r.project_id,
                name: r.route_name,
                times: r.times,
                window_minutes: r.window_minutes,
                active: r.active,
            },
        )
    }))
}

// ---- patrols -----------------------------------------------------------------------------

/// A pending patrol of a route; false when the route already has one at that start.
pub async fn insert_patrol_task(
    db: impl PgExecutor<'_>,
    r: &Route,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO patrol_tasks (id, company_id, project_id, route_id, starts_at, ends_at, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        Uuid::now_v7(),
        r.company_id,
        r.project_id,
        r.id,
        starts_at,
        ends_at,
        PatrolState::Pending.as_str()
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// The route's patrol under way at `now`, locked until the transaction ends (scans of one
/// patrol follow each other, so the order check and the completion see every scan).
pub async fn current_patrol_task(
    db: impl PgExecutor<'_>,
    route_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<PatrolTask>> {
    sqlx::query_as!(
        PatrolTask,
        r#"SELECT id, company_id, project_id, route_id, starts_at, ends_at, state AS "state: PatrolState", missed
           FROM patrol_tasks
           WHERE route_id = $1 AND starts_at <= $2 AND ends_at > $2 AND state = $3
           ORDER BY starts_at DESC LIMIT 1
           FOR UPDATE"#,
        route_id,
        now,
        PatrolState::Pending.as_str()
    )
    .fetch_optional(db)
    .await
}

/// The route's latest patrol that has started by `now`, whatever its state.
pub async fn latest_started_patrol_task(
    db: impl PgExecutor<'_>,
    route_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<PatrolTask>> {
    sqlx::query_as!(
        PatrolTask,
        r#"SELECT id, company_id, project_id, route_id, starts_at, ends_at, state AS "state: PatrolState", missed
           FROM patrol_tasks
           WHERE route_id = $1 AND starts_at <= $2
           ORDER BY starts_at DESC LIMIT 1"#,
        route_id,
        now
    )
    .fetch_optional(db)
    .await
}

/// A project's patrols starting within `from`..`to`, by start time, after the
/// `(starts_at, id)` of the last one seen.
#[allow(clippy::too_many_arguments)]
pub async fn patrol_tasks(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<PatrolTask>> {
    sqlx::query_as!(
        PatrolTask,
        r#"SELECT id, company_id, project_id, route_id, starts_at, ends_at, state AS "state: PatrolState", missed
           FROM patrol_tasks
           WHERE company_id = $1 AND project_id = $2 AND starts_at >= $3 AND starts_at < $4
             AND ($5::timestamptz IS NULL OR (starts_at, id) > ($5::timestamptz, $6::uuid))
           ORDER BY starts_at, id LIMIT $7"#,
        company_id,
        project_id,
        from,
        to,
        after.map(|k| k.0),
        after.map(|k| k.1),
        limit
    )
    .fetch_all(db)
    .await
}

/// Pending patrols whose window has closed.
pub async fn ended_patrol_tasks(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<Vec<PatrolTask>> {
    sqlx::query_as!(
        PatrolTask,
        r#"SELECT id, company_id, project_id, route_id, starts_at, ends_at, state AS "state: PatrolState", missed
           FROM patrol_tasks
           WHERE state = $2 AND ends_at <= $1 ORDER BY ends_at LIMIT 500"#,
        now,
        PatrolState::Pending.as_str()
    )
    .fetch_all(db)
    .await
}

/// Pending → `state`; the number of rows changed (0: it was closed already).
pub async fn close_patrol_task(
    db: impl PgExecutor<'_>,
    id: Uuid,
    state: PatrolState,
    missed: &[String],
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE patrol_tasks SET state = $2, missed = $3, closed_at = $4 WHERE id = $1 AND state = $5",
        id,
        state.as_str(),
        missed,
        at,
        PatrolState::Pending.as_str()
    )
    .execute(db)
    .await?
    .rows_affected())
}

// ---- scans -------------------------------------------------------------------------------

/// The scans of patrols, in the order they were made.
pub async fn scans(db: impl PgExecutor<'_>, task_ids: &[Uuid]) -> sqlx::Result<Vec<Scan>> {
    sqlx::query_as!(
        Scan,
        "SELECT id, task_id, checkpoint_id, user_id, scanned_at, lat, lng, distance_m, accuracy_m FROM patrol_scans
         WHERE task_id = ANY($1) ORDER BY scanned_at, id",
        task_ids
    )
    .fetch_all(db)
    .await
}

/// A scan of the company, with its patrol's project.
pub async fn get_scan(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<(Scan, Uuid)>> {
    let row = sqlx::query!(
        "SELECT s.id, s.task_id, s.checkpoint_id, s.user_id, s.scanned_at, s.lat, s.lng, s.distance_m, s.accuracy_m,
                t.project_id
         FROM patrol_scans s JOIN patrol_tasks t ON t.id = s.task_id
         WHERE t.company_id = $1 AND s.id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| {
        (
            Scan {
                id: r.id,
                task_id: r.task_id,
                checkpoint_id: r.checkpoint_id,
                user_id: r.user_id,
                scanned_at: r.scanned_at,
                lat: r.lat,
                lng: r.lng,
                distance_m: r.distance_m,
                accuracy_m: r.accuracy_m,
            },
            r.project_id,
        )
    }))
}

/// Inserts a scan; false when the point was already scanned in this patrol.
pub async fn insert_scan(db: impl PgExecutor<'_>, s: &Scan) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO patrol_scans (id, task_id, checkpoint_id, user_id, scanned_at, lat, lng, distance_m, accuracy_m)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        s.id,
        s.task_id,
        s.checkpoint_id,
        s.user_id,
        s.scanned_at,
        s.lat,
        s.lng,
        s.distance_m,
        s.accuracy_m
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}
