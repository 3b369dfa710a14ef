//! SQL for maintenance plans, tasks, records and patrols.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Plan {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Option<Uuid>,
    pub category: Option<String>,
    pub name: String,
    pub checklist: Vec<String>,
    pub interval_kind: String,
    pub interval_days: Option<i32>,
    pub anchor: String,
    pub start_date: NaiveDate,
    pub lead_days: i32,
    pub responsible_user_id: Option<Uuid>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_plan(db: impl PgExecutor<'_>, p: &Plan) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO maintenance_plans (id, company_id, project_id, device_id, category, name, checklist, interval_kind,
             interval_days, anchor, start_date, lead_days, responsible_user_id, active, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        p.id,
        p.company_id,
        p.project_id,
        p.device_id,
        p.category,
        p.name,
        &p.checklist,
        p.interval_kind,
        p.interval_days,
        p.anchor,
        p.start_date,
        p.lead_days,
        p.responsible_user_id,
        p.active,
        p.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_plan_active(db: impl PgExecutor<'_>, id: Uuid, active: bool) -> sqlx::Result<()> {
    sqlx::query!("UPDATE maintenance_plans SET active = $2, updated_at = now() WHERE id = $1", id, active)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn get_plan(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Plan>> {
    sqlx::query_as!(
        Plan,
        "SELECT id, company_id, project_id, device_id, category, name, checklist, interval_kind, interval_days, anchor,
                start_date, lead_days, responsible_user_id, active, created_at
         FROM maintenance_plans WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn plans(db: impl PgExecutor<'_>, company_id: Uuid, project_id: Uuid) -> sqlx::Result<Vec<Plan>> {
    sqlx::query_as!(
        Plan,
        "SELECT id, company_id, project_id, device_id, category, name, checklist, interval_kind, interval_days, anchor,
                start_date, lead_days, responsible_user_id, active, created_at
         FROM maintenance_plans WHERE company_id = $1 AND project_id = $2 ORDER BY created_at, id",
        company_id,
        project_id
    )
    .fetch_all(db)
    .await
}

pub async fn active_plans(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Plan>> {
    sqlx::query_as!(
        Plan,
        "SELECT id, company_id, project_id, device_id, category, name, checklist, interval_kind, interval_days, anchor,
                start_date, lead_days, responsible_user_id, active, created_at
         FROM maintenance_plans WHERE active ORDER BY id"
    )
    .fetch_all(db)
    .await
}

pub struct Covered {
    pub device_id: Uuid,
    pub code: String,
    pub name: String,
    pub responsible_user_id: Option<Uuid>,
    pub last_due: Option<NaiveDate>,
    pub open: bool,
    pub last_done: Option<DateTime<Utc>>,
}

/// The devices a plan covers, with its history on each.
pub async fn covered(db: impl PgExecutor<'_>, p: &Plan) -> sqlx::Result<Vec<Covered>> {
    sqlx::query_as!(
        Covered,
        r#"SELECT d.id AS device_id, d.code, d.name, d.responsible_user_id,
                  t.due_date AS "last_due?", coalesce(t.state = 'pending', false) AS "open!",
                  (SELECT max(r.done_at) FROM maintenance_records r WHERE r.plan_id = $1 AND r.device_id = d.id) AS last_done
           FROM devices d
           LEFT JOIN LATERAL (SELECT due_date, state FROM maintenance_tasks
                              WHERE plan_id = $1 AND device_id = d.id ORDER BY due_date DESC LIMIT 1) t ON true
           WHERE d.project_id = $2 AND d.status <> 'scrapped'
             AND ($3::uuid IS NULL OR d.id = $3) AND ($4::text IS NULL OR d.category = $4)"#,
        p.id,
        p.project_id,
        p.device_id,
        p.category
    )
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Task {
    pub id: Uuid,
    pub project_id: Uuid,
    pub plan_id: Uuid,
    pub device_id: Uuid,
    pub due_date: NaiveDate,
    pub assignee_id: Option<Uuid>,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub plan_name: String,
    pub checklist: Vec<String>,
    pub company_id: Uuid,
}

pub struct NewTask {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub plan_id: Uuid,
    pub device_id: Uuid,
    pub due_date: NaiveDate,
    pub assignee_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

pub async fn insert_task(db: &mut PgConnection, t: &NewTask) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO maintenance_tasks (id, company_id, project_id, plan_id, device_id, due_date, assignee_id, state, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8) ON CONFLICT DO NOTHING",
        t.id,
        t.company_id,
        t.project_id,
        t.plan_id,
        t.device_id,
        t.due_date,
        t.assignee_id,
        t.at
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

pub async fn get_task(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Task>> {
    sqlx::query_as!(
        Task,
        "SELECT t.id, t.project_id, t.plan_id, t.device_id, t.due_date, t.assignee_id, t.state, t.created_at,
                t.completed_at, p.name AS plan_name, p.checklist, t.company_id
         FROM maintenance_tasks t JOIN maintenance_plans p ON p.id = t.plan_id
         WHERE t.company_id = $1 AND t.id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub struct TaskQuery {
    pub company_id: Uuid,
    pub projects: Option<Vec<Uuid>>,
    pub project_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    pub state: Option<String>,
    pub due_before: Option<NaiveDate>,
    pub limit: i64,
}

pub async fn tasks(db: impl PgExecutor<'_>, q: &TaskQuery) -> sqlx::Result<Vec<Task>> {
    sqlx::query_as!(
        Task,
        "SELECT t.id, t.project_id, t.plan_id, t.device_id, t.due_date, t.assignee_id, t.state, t.created_at,
                t.completed_at, p.name AS plan_name, p.checklist, t.company_id
         FROM maintenance_tasks t JOIN maintenance_plans p ON p.id = t.plan_id
         WHERE t.company_id = $1 AND ($2::uuid[] IS NULL OR t.project_id = ANY($2))
           AND ($3::uuid IS NULL OR t.project_id = $3) AND ($4::uuid IS NULL OR t.device_id = $4)
           AND ($5::uuid IS NULL OR t.assignee_id = $5) AND ($6::text IS NULL OR t.state = $6)
           AND ($7::date IS NULL OR t.due_date <= $7)
         ORDER BY t.due_date, t.id LIMIT $8",
        q.company_id,
        q.projects.as_deref(),
        q.project_id,
        q.device_id,
        q.assignee_id,
        q.state,
        q.due_before,
        q.limit
    )
    .fetch_all(db)
    .await
}

/// Pending tasks past their due day, not yet reported.
pub async fn overdue(db: impl PgExecutor<'_>, today: NaiveDate) -> sqlx::Result<Vec<Task>> {
    sqlx::query_as!(
        Task,
        "SELECT t.id, t.project_id, t.plan_id, t.device_id, t.due_date, t.assignee_id, t.state, t.created_at,
                t.completed_at, p.name AS plan_name, p.checklist, t.company_id
         FROM maintenance_tasks t JOIN maintenance_plans p ON p.id = t.plan_id
         WHERE t.state = 'pending' AND t.due_date < $1 AND t.overdue_notified_at IS NULL ORDER BY t.due_date LIMIT 500",
        today
    )
    .fetch_all(db)
    .await
}

pub async fn mark_overdue_notified(db: impl PgExecutor<'_>, id: Uuid, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE maintenance_tasks SET overdue_notified_at = $2 WHERE id = $1 AND overdue_notified_at IS NULL",
        id,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn complete_task(db: impl PgExecutor<'_>, id: Uuid, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE maintenance_tasks SET state = 'done', completed_at = $2 WHERE id = $1 AND state = 'pending'",
        id,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Record {
    pub id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub task_id: Option<Uuid>,
    pub plan_id: Option<Uuid>,
    pub done_at: DateTime<Utc>,
    pub staff_id: Uuid,
    pub results: serde_json::Value,
    pub parts: serde_json::Value,
    pub notes: String,
    pub photos: Vec<String>,
}

pub async fn insert_record(db: impl PgExecutor<'_>, company_id: Uuid, r: &Record) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO maintenance_records (id, company_id, project_id, device_id, task_id, plan_id, done_at, staff_id, results, parts, notes, photos)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        r.id,
        company_id,
        r.project_id,
        r.device_id,
        r.task_id,
        r.plan_id,
        r.done_at,
        r.staff_id,
        r.results,
        r.parts,
        r.notes,
        &r.photos
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn records(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    device_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Record>> {
    sqlx::query_as!(
        Record,
        "SELECT id, project_id, device_id, task_id, plan_id, done_at, staff_id, results, parts, notes, photos
         FROM maintenance_records WHERE company_id = $1 AND device_id = $2 ORDER BY done_at DESC, id DESC LIMIT $3",
        company_id,
        device_id,
        limit
    )
    .fetch_all(db)
    .await
}

// ---- patrols -------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Route {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub times: Vec<String>,
    pub window_minutes: i32,
    pub active: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Checkpoint {
    pub id: Uuid,
    pub route_id: Uuid,
    pub seq: i32,
    pub name: String,
    pub code: String,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub radius_m: i32,
}

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

pub async fn routes(db: impl PgExecutor<'_>, company_id: Uuid, project_id: Uuid) -> sqlx::Result<Vec<Route>> {
    sqlx::query_as!(
        Route,
        "SELECT id, company_id, project_id, name, times, window_minutes, active FROM patrol_routes
         WHERE company_id = $1 AND project_id = $2 ORDER BY created_at, id",
        company_id,
        project_id
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

pub async fn checkpoints(db: impl PgExecutor<'_>, route_ids: &[Uuid]) -> sqlx::Result<Vec<Checkpoint>> {
    sqlx::query_as!(
        Checkpoint,
        "SELECT id, route_id, seq, name, code, lat, lng, radius_m FROM patrol_checkpoints WHERE route_id = ANY($1) ORDER BY route_id, seq",
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

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PatrolTask {
    pub id: Uuid,
    pub project_id: Uuid,
    pub route_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub state: String,
    pub missed: Vec<String>,
}

pub async fn insert_patrol_task(
    db: impl PgExecutor<'_>,
    r: &Route,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO patrol_tasks (id, company_id, project_id, route_id, starts_at, ends_at, state)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending') ON CONFLICT DO NOTHING",
        Uuid::now_v7(),
        r.company_id,
        r.project_id,
        r.id,
        starts_at,
        ends_at
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

pub async fn current_patrol_task(
    db: impl PgExecutor<'_>,
    route_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<PatrolTask>> {
    sqlx::query_as!(
        PatrolTask,
        "SELECT id, project_id, route_id, starts_at, ends_at, state, missed FROM patrol_tasks
         WHERE route_id = $1 AND starts_at <= $2 AND ends_at > $2 AND state = 'pending' ORDER BY starts_at DESC LIMIT 1",
        route_id,
        now
    )
    .fetch_optional(db)
    .await
}

pub async fn patrol_tasks(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<PatrolTask>> {
    sqlx::query_as!(
        PatrolTask,
        "SELECT id, project_id, route_id, starts_at, ends_at, state, missed FROM patrol_tasks
         WHERE company_id = $1 AND project_id = $2 AND starts_at >= $3 AND starts_at < $4 ORDER BY starts_at, id LIMIT 500",
        company_id,
        project_id,
        from,
        to
    )
    .fetch_all(db)
    .await
}

/// Pending tasks whose window has closed.
pub async fn ended_patrol_tasks(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<Vec<(PatrolTask, Uuid)>> {
    let rows = sqlx::query!(
        "SELECT id, project_id, route_id, starts_at, ends_at, state, missed, company_id FROM patrol_tasks
         WHERE state = 'pending' AND ends_at <= $1 ORDER BY ends_at LIMIT 500",
        now
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                PatrolTask {
                    id: r.id,
                    project_id: r.project_id,
                    route_id: r.route_id,
                    starts_at: r.starts_at,
                    ends_at: r.ends_at,
                    state: r.state,
                    missed: r.missed,
                },
                r.company_id,
            )
        })
        .collect())
}

pub async fn close_patrol_task(
    db: impl PgExecutor<'_>,
    id: Uuid,
    state: &str,
    missed: &[String],
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE patrol_tasks SET state = $2, missed = $3, closed_at = $4 WHERE id = $1 AND state = 'pending'",
        id,
        state,
        missed,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Scan {
    pub task_id: Uuid,
    pub checkpoint_id: Uuid,
    pub user_id: Uuid,
    pub scanned_at: DateTime<Utc>,
    pub lat: f64,
    pub lng: f64,
    pub distance_m: Option<f64>,
}

pub async fn scans(db: impl PgExecutor<'_>, task_ids: &[Uuid]) -> sqlx::Result<Vec<Scan>> {
    sqlx::query_as!(
        Scan,
        "SELECT task_id, checkpoint_id, user_id, scanned_at, lat, lng, distance_m FROM patrol_scans
         WHERE task_id = ANY($1) ORDER BY scanned_at",
        task_ids
    )
    .fetch_all(db)
    .await
}

pub async fn insert_scan(db: impl PgExecutor<'_>, s: &Scan) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO patrol_scans (id, task_id, checkpoint_id, user_id, scanned_at, lat, lng, distance_m)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        Uuid::now_v7(),
        s.task_id,
        s.checkpoint_id,
        s.user_id,
        s.scanned_at,
        s.lat,
        s.lng,
        s.distance_m
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}
