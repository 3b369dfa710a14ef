//! SQL for maintenance plans, tasks and records.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{
    ChecklistResult, Counter, IntervalKind, PartUsed, Plan, PlanAnchor, Record, RecordKind, Task, TaskState,
};
use crate::equipment::model::{DeviceCategory, Importance};

// ---- plans -----------------------------------------------------------------------------

pub async fn insert_plan(db: impl PgExecutor<'_>, p: &Plan) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO maintenance_plans (id, company_id, project_id, device_id, category, name, checklist, interval_kind,
             interval_days, anchor, start_date, lead_days, responsible_user_id, active, created_at, trigger,
             counter_metric, counter_every, counter_lead)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        p.id,
        p.company_id,
        p.project_id,
        p.device_id,
        p.category.map(|c| c.as_str()),
        p.name,
        &p.checklist,
        p.interval_kind.map(|k| k.as_str()),
        p.interval_days,
        p.anchor.as_str(),
        p.start_date,
        p.lead_days,
        p.responsible_user_id,
        p.active,
        p.created_at,
        p.trigger().as_str(),
        p.counter_metric,
        p.counter_every,
        p.counter_lead
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_plan_active(db: impl PgExecutor<'_>, id: Uuid, active: bool, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!("UPDATE maintenance_plans SET active = $2, updated_at = $3 WHERE id = $1", id, active, at)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn get_plan(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Plan>> {
    sqlx::query_as!(
        Plan,
        r#"SELECT id, company_id, project_id, device_id, category AS "category: DeviceCategory", name, checklist,
                  interval_kind AS "interval_kind: IntervalKind", interval_days, anchor AS "anchor: PlanAnchor",
                  start_date, lead_days, counter_metric, counter_every, counter_lead, responsible_user_id, active,
                  created_at
           FROM maintenance_plans WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// A project's plans in id (creation) order, after `after`.
pub async fn plans(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Plan>> {
    sqlx::query_as!(
        Plan,
        r#"SELECT id, company_id, project_id, device_id, category AS "category: DeviceCategory", name, checklist,
                  interval_kind AS "interval_kind: IntervalKind", interval_days, anchor AS "anchor: PlanAnchor",
                  start_date, lead_days, counter_metric, counter_every, counter_lead, responsible_user_id, active,
                  created_at
           FROM maintenance_plans
           WHERE company_id = $1 AND project_id = $2 AND ($3::uuid IS NULL OR id > $3)
           ORDER BY id LIMIT $4"#,
        company_id,
        project_id,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn active_plans(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Plan>> {
    sqlx::query_as!(
        Plan,
        r#"SELECT id, company_id, project_id, device_id, category AS "category: DeviceCategory", name, checklist,
                  interval_kind AS "interval_kind: IntervalKind", interval_days, anchor AS "anchor: PlanAnchor",
                  start_date, lead_days, counter_metric, counter_every, counter_lead, responsible_user_id, active,
                  created_at
           FROM maintenance_plans WHERE active ORDER BY id"#
    )
    .fetch_all(db)
    .await
}

/// A device a plan covers, with the plan's history on it.
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
        p.category.map(|c| c.as_str())
    )
    .fetch_all(db)
    .await
}

// ---- tasks -----------------------------------------------------------------------------

/// A task the scheduler creates.
pub struct NewTask {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub plan_id: Uuid,
    pub device_id: Uuid,
    pub due_date: NaiveDate,
    /// a usage task's due counter value
    pub due_counter: Option<f64>,
    pub assignee_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// Inserts a pending task; false when the plan already has one for the device and day.
pub async fn insert_task(db: &mut PgConnection, t: &NewTask) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO maintenance_tasks (id, company_id, project_id, plan_id, device_id, due_date, assignee_id, state,
                                        created_at, due_counter)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        t.id,
        t.company_id,
        t.project_id,
        t.plan_id,
        t.device_id,
        t.due_date,
        t.assignee_id,
        TaskState::Pending.as_str(),
        t.at,
        t.due_counter
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

pub async fn get_task(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Task>> {
    sqlx::query_as!(
        Task,
        r#"SELECT t.id, t.company_id, t.project_id, t.plan_id, t.device_id, t.due_date, t.due_counter, t.assignee_id,
                  t.state AS "state: TaskState", t.created_at, t.completed_at, p.name AS plan_name, p.checklist,
                  d.importance AS "importance: Importance"
           FROM maintenance_tasks t JOIN maintenance_plans p ON p.id = t.plan_id JOIN devices d ON d.id = t.device_id
           WHERE t.company_id = $1 AND t.id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// The task, locked until the transaction ends (a completion reads and changes its state).
pub async fn lock_task(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Task>> {
    sqlx::query_as!(
        Task,
        r#"SELECT t.id, t.company_id, t.project_id, t.plan_id, t.device_id, t.due_date, t.due_counter, t.assignee_id,
                  t.state AS "state: TaskState", t.created_at, t.completed_at, p.name AS plan_name, p.checklist,
                  d.importance AS "importance: Importance"
           FROM maintenance_tasks t JOIN maintenance_plans p ON p.id = t.plan_id JOIN devices d ON d.id = t.device_id
           WHERE t.company_id = $1 AND t.id = $2
           FOR UPDATE OF t"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// Which tasks a list shows; `projects` is the caller's scope (`None`: the whole company).
pub struct TaskQuery {
    pub company_id: Uuid,
    pub projects: Option<Vec<Uuid>>,
    pub project_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    pub state: Option<TaskState>,
    pub due_before: Option<NaiveDate>,
    pub after: Option<(i16, NaiveDate, Uuid)>,
    pub limit: i64,
}

/// Tasks of the most important devices first (critical, normal, low), then by due date.
pub async fn tasks(db: impl PgExecutor<'_>, q: &TaskQuery) -> sqlx::Result<Vec<Task>> {
    sqlx::query_as!(
        Task,
        r#"SELECT t.id, t.company_id, t.project_id, t.plan_id, t.device_id, t.due_date, t.due_counter, t.assignee_id,
                  t.state AS "state: TaskState", t.created_at, t.completed_at, p.name AS plan_name, p.checklist,
                  d.importance AS "importance: Importance"
           FROM maintenance_tasks t JOIN maintenance_plans p ON p.id = t.plan_id JOIN devices d ON d.id = t.device_id
           WHERE t.company_id = $1 AND ($2::uuid[] IS NULL OR t.project_id = ANY($2))
             AND ($3::uuid IS NULL OR t.project_id = $3) AND ($4::uuid IS NULL OR t.device_id = $4)
             AND ($5::uuid IS NULL OR t.assignee_id = $5) AND ($6::text IS NULL OR t.state = $6)
             AND ($7::date IS NULL OR t.due_date <= $7)
             AND ($8::smallint IS NULL OR importance_rank(d.importance) < $8
                  OR (importance_rank(d.importance) = $8 AND (t.due_date, t.id) > ($9::date, $10::uuid)))
           ORDER BY importance_rank(d.importance) DESC, t.due_date, t.id LIMIT $11"#,
        q.company_id,
        q.projects.as_deref(),
        q.project_id,
        q.device_id,
        q.assignee_id,
        q.state.map(|s| s.as_str()),
        q.due_before,
        q.after.map(|k| k.0),
        q.after.map(|k| k.1),
        q.after.map(|k| k.2),
        q.limit
    )
    .fetch_all(db)
    .await
}

/// Pending tasks past their due day, not yet reported.
pub async fn overdue(db: impl PgExecutor<'_>, today: NaiveDate) -> sqlx::Result<Vec<Task>> {
    sqlx::query_as!(
        Task,
        r#"SELECT t.id, t.company_id, t.project_id, t.plan_id, t.device_id, t.due_date, t.due_counter, t.assignee_id,
                  t.state AS "state: TaskState", t.created_at, t.completed_at, p.name AS plan_name, p.checklist,
                  d.importance AS "importance: Importance"
           FROM maintenance_tasks t JOIN maintenance_plans p ON p.id = t.plan_id JOIN devices d ON d.id = t.device_id
           WHERE t.state = $2 AND t.due_date < $1 AND t.overdue_notified_at IS NULL
           ORDER BY t.due_date LIMIT 500"#,
        today,
        TaskState::Pending.as_str()
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

/// Pending → done; the number of rows changed (0: it was not pending).
pub async fn complete_task(db: impl PgExecutor<'_>, id: Uuid, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE maintenance_tasks SET state = $3, completed_at = $2 WHERE id = $1 AND state = $4",
        id,
        at,
        TaskState::Done.as_str(),
        TaskState::Pending.as_str()
    )
    .execute(db)
    .await?
    .rows_affected())
}

// ---- records ---------------------------------------------------------------------------

fn to_json<T: serde::Serialize>(v: &T) -> sqlx::Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

pub async fn insert_record(db: impl PgExecutor<'_>, r: &Record) -> sqlx::Result<()> {
    let results = to_json(&r.results)?;
    let parts = to_json(&r.parts)?;
    sqlx::query!(
        "INSERT INTO maintenance_records (id, company_id, project_id, device_id, task_id, plan_id, done_at, staff_id,
                                          results, parts, notes, photos, kind, work_order_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (work_order_id) DO UPDATE
         SET done_at = EXCLUDED.done_at, staff_id = EXCLUDED.staff_id, parts = EXCLUDED.parts, notes = EXCLUDED.notes,
             photos = EXCLUDED.photos",
        r.id,
        r.company_id,
        r.project_id,
        r.device_id,
        r.task_id,
        r.plan_id,
        r.done_at,
        r.staff_id,
        results,
        parts,
        r.notes,
        &r.photos,
        r.kind.as_str(),
        r.work_order_id
    )
    .execute(db)
    .await?;
    Ok(())
}

struct RecordRow {
    id: Uuid,
    company_id: Uuid,
    project_id: Uuid,
    device_id: Uuid,
    task_id: Option<Uuid>,
    plan_id: Option<Uuid>,
    done_at: DateTime<Utc>,
    staff_id: Uuid,
    results: Json<Vec<ChecklistResult>>,
    parts: Json<Vec<PartUsed>>,
    notes: String,
    photos: Vec<String>,
    kind: RecordKind,
    work_order_id: Option<Uuid>,
}

impl RecordRow {
    fn into_record(self) -> Record {
        Record {
            id: self.id,
            company_id: self.company_id,
            project_id: self.project_id,
            device_id: self.device_id,
            task_id: self.task_id,
            plan_id: self.plan_id,
            done_at: self.done_at,
            staff_id: self.staff_id,
            results: self.results.0,
            parts: self.parts.0,
            notes: self.notes,
            photos: self.photos,
            kind: self.kind,
            work_order_id: self.work_order_id,
        }
    }
}

pub async fn get_record(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Record>> {
    let row = sqlx::query_as!(
        RecordRow,
        r#"SELECT id, company_id, project_id, device_id, task_id, plan_id, done_at, staff_id,
                  results AS "results: Json<Vec<ChecklistResult>>", parts AS "parts: Json<Vec<PartUsed>>",
                  notes, photos, kind AS "kind: RecordKind", work_order_id
           FROM maintenance_records WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(RecordRow::into_record))
}

/// A device's records, newest first, after the `(done_at, id)` of the last one seen.
pub async fn records(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    device_id: Uuid,
    kind: Option<RecordKind>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Record>> {
    let rows = sqlx::query_as!(
        RecordRow,
        r#"SELECT id, company_id, project_id, device_id, task_id, plan_id, done_at, staff_id,
                  results AS "results: Json<Vec<ChecklistResult>>", parts AS "parts: Json<Vec<PartUsed>>",
                  notes, photos, kind AS "kind: RecordKind", work_order_id
           FROM maintenance_records
           WHERE company_id = $1 AND device_id = $2 AND ($6::text IS NULL OR kind = $6)
             AND ($3::timestamptz IS NULL OR (done_at, id) < ($3::timestamptz, $4::uuid))
           ORDER BY done_at DESC, id DESC LIMIT $5"#,
        company_id,
        device_id,
        after.map(|k| k.0),
        after.map(|k| k.1),
        limit,
        kind.map(|k| k.as_str())
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(RecordRow::into_record).collect())
}

/// Takes a work order's repair record out of the archive (its result was rejected).
pub async fn delete_repair(db: impl PgExecutor<'_>, work_order_id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM maintenance_records WHERE work_order_id = $1", work_order_id)
        .execute(db)
        .await?
        .rows_affected())
}

// ---- usage counters ----------------------------------------------------------------------

/// When each device's counter on the plan was last read.
pub async fn counters_read_at(db: impl PgExecutor<'_>, plan_id: Uuid) -> sqlx::Result<Vec<(Uuid, DateTime<Utc>)>> {
    let rows = sqlx::query!("SELECT device_id, last_at FROM maintenance_counters WHERE plan_id = $1", plan_id)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.device_id, r.last_at)).collect())
}

/// The device's counter on the plan, locked until the transaction ends; `first` makes the
/// row when there is none yet (so two transactions never both start from nothing).
pub async fn lock_counter(
    db: &mut PgConnection,
    plan_id: Uuid,
    device_id: Uuid,
    company_id: Uuid,
    first: &Counter,
) -> sqlx::Result<Counter> {
    sqlx::query!(
        "INSERT INTO maintenance_counters (plan_id, device_id, company_id, baseline, baseline_at, last_value, last_at,
                                           pace_value)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        plan_id,
        device_id,
        company_id,
        first.baseline,
        first.baseline_at,
        first.last_value,
        first.last_at,
        first.pace_value
    )
    .execute(&mut *db)
    .await?;
    lock_counter_if_any(db, plan_id, device_id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// The device's counter on the plan, locked, if it has one.
pub async fn lock_counter_if_any(
    db: impl PgExecutor<'_>,
    plan_id: Uuid,
    device_id: Uuid,
) -> sqlx::Result<Option<Counter>> {
    sqlx::query_as!(
        Counter,
        "SELECT baseline, baseline_at, pace_value, last_value, last_at, dropped_to FROM maintenance_counters
         WHERE plan_id = $1 AND device_id = $2 FOR UPDATE",
        plan_id,
        device_id
    )
    .fetch_optional(db)
    .await
}

/// The device has a pending task of the plan.
pub async fn has_pending(db: impl PgExecutor<'_>, plan_id: Uuid, device_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM maintenance_tasks WHERE plan_id = $1 AND device_id = $2 AND state = 'pending')
           AS "x!""#,
        plan_id,
        device_id
    )
    .fetch_one(db)
    .await
}

/// Moves a pending usage task's estimated due day (not onto a day the plan already has a
/// task of the device on).
pub async fn move_usage_due(
    db: impl PgExecutor<'_>,
    plan_id: Uuid,
    device_id: Uuid,
    due: NaiveDate,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE maintenance_tasks t SET due_date = $3
         WHERE t.plan_id = $1 AND t.device_id = $2 AND t.state = 'pending' AND t.due_counter IS NOT NULL
           AND t.due_date <> $3
           AND NOT EXISTS (SELECT 1 FROM maintenance_tasks o WHERE o.plan_id = $1 AND o.device_id = $2 AND o.due_date = $3)",
        plan_id,
        device_id,
        due
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn save_counter(
    db: impl PgExecutor<'_>,
    plan_id: Uuid,
    device_id: Uuid,
    company_id: Uuid,
    c: &Counter,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO maintenance_counters (plan_id, device_id, company_id, baseline, baseline_at, last_value, last_at,
                                           dropped_to, pace_value)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (plan_id, device_id) DO UPDATE
         SET baseline = EXCLUDED.baseline, baseline_at = EXCLUDED.baseline_at, last_value = EXCLUDED.last_value,
             last_at = EXCLUDED.last_at, dropped_to = EXCLUDED.dropped_to, pace_value = EXCLUDED.pace_value",
        plan_id,
        device_id,
        company_id,
        c.baseline,
        c.baseline_at,
        c.last_value,
        c.last_at,
        c.dropped_to,
        c.pace_value
    )
    .execute(db)
    .await?;
    Ok(())
}
