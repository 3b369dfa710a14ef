//! SQL for work orders, their log and the projects' dispatch settings. A transition locks
//! the order's row (`lock`), changes it in Rust and writes it back (`save`), so concurrent
//! transitions of one order queue on the row and each sees the state the last one left.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{
    Action, Category, Deadlines, Dispatch, Event, Filter, Overdue, PartUsed, Priority, Report, Settings, Sla, Source,
    State, TechnicianFigures, WorkOrder,
};

pub async fn insert(db: impl PgExecutor<'_>, w: &WorkOrder) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO work_orders (id, company_id, project_id, source, category, priority, state, title, description,
             location, house_id, device_id, rule_id, owner_id, reporter_id, photos, preferred_from, preferred_to,
             assignee_id, created_at, updated_at, assigned_at, origin_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $21, $22)
         RETURNING no",
        w.id,
        w.company_id,
        w.project_id,
        w.source.as_str(),
        w.category.as_str(),
        w.priority.as_str(),
        w.state.as_str(),
        w.title,
        w.description,
        w.location,
        w.house_id,
        w.device_id,
        w.rule_id,
        w.owner_id,
        w.reporter_id,
        &w.photos,
        w.preferred_from,
        w.preferred_to,
        w.assignee_id,
        w.created_at,
        w.assigned_at,
        w.origin_id
    )
    .fetch_one(db)
    .await
}

/// Writes back what a transition may change.
pub async fn save(db: impl PgExecutor<'_>, w: &WorkOrder) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE work_orders SET priority = $2, state = $3, paused_from = $4, assignee_id = $5, updated_at = $6,
             assigned_at = $7, accepted_at = $8, started_at = $9, paused_at = $10, paused_secs = $11,
             completed_at = $12, confirmed_at = $13, closed_at = $14, cancelled_at = $15, result = $16,
             result_photos = $17, parts = $18, labour_minutes = $19, charge = $20, cash_receipt_no = $21,
             rating = $22, rating_comment = $23, visit_note = $24, cancel_reason = $25, alarm_cleared_at = $26
         WHERE id = $1",
        w.id,
        w.priority.as_str(),
        w.state.as_str(),
        w.paused_from.map(|s| s.as_str()),
        w.assignee_id,
        w.updated_at,
        w.assigned_at,
        w.accepted_at,
        w.started_at,
        w.paused_at,
        w.paused_secs,
        w.completed_at,
        w.confirmed_at,
        w.closed_at,
        w.cancelled_at,
        w.result,
        &w.result_photos,
        Json(&w.parts.0) as _,
        w.labour_minutes,
        w.charge,
        w.cash_receipt_no,
        w.rating,
        w.rating_comment,
        w.visit_note,
        w.cancel_reason,
        w.alarm_cleared_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<WorkOrder>> {
    sqlx::query_as!(
        WorkOrder,
        r#"SELECT id, no, company_id, project_id, source AS "source: Source", category AS "category: Category",
                  priority AS "priority: Priority", state AS "state: State", paused_from AS "paused_from: State",
                  title, description, location, house_id, device_id, rule_id, origin_id, owner_id, reporter_id, photos,
                  preferred_from, preferred_to, assignee_id, created_at, updated_at, assigned_at, accepted_at,
                  started_at, paused_at, paused_secs, completed_at, confirmed_at, closed_at, cancelled_at, result,
                  result_photos, parts AS "parts: Json<Vec<PartUsed>>", labour_minutes, charge, cash_receipt_no,
                  rating, rating_comment, visit_note, cancel_reason, alarm_cleared_at
           FROM work_orders WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// The order, its row locked until the transaction ends.
pub async fn lock(db: &mut PgConnection, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<WorkOrder>> {
    sqlx::query_as!(
        WorkOrder,
        r#"SELECT id, no, company_id, project_id, source AS "source: Source", category AS "category: Category",
                  priority AS "priority: Priority", state AS "state: State", paused_from AS "paused_from: State",
                  title, description, location, house_id, device_id, rule_id, origin_id, owner_id, reporter_id, photos,
                  preferred_from, preferred_to, assignee_id, created_at, updated_at, assigned_at, accepted_at,
                  started_at, paused_at, paused_secs, completed_at, confirmed_at, closed_at, cancelled_at, result,
                  result_photos, parts AS "parts: Json<Vec<PartUsed>>", labour_minutes, charge, cash_receipt_no,
                  rating, rating_comment, visit_note, cancel_reason, alarm_cleared_at
           FROM work_orders WHERE company_id = $1 AND id = $2 FOR UPDATE"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// The order locked, unless another transaction holds it (then `None`).
pub async fn lock_skip_locked(db: &mut PgConnection, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<WorkOrder>> {
    sqlx::query_as!(
        WorkOrder,
        r#"SELECT id, no, company_id, project_id, source AS "source: Source", category AS "category: Category",
                  priority AS "priority: Priority", state AS "state: State", paused_from AS "paused_from: State",
                  title, description, location, house_id, device_id, rule_id, origin_id, owner_id, reporter_id, photos,
                  preferred_from, preferred_to, assignee_id, created_at, updated_at, assigned_at, accepted_at,
                  started_at, paused_at, paused_secs, completed_at, confirmed_at, closed_at, cancelled_at, result,
                  result_photos, parts AS "parts: Json<Vec<PartUsed>>", labour_minutes, charge, cash_receipt_no,
                  rating, rating_comment, visit_note, cancel_reason, alarm_cleared_at
           FROM work_orders WHERE company_id = $1 AND id = $2 FOR UPDATE SKIP LOCKED"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// The unfinished order of a device and alarm rule, locked.
pub async fn lock_open_for_rule(db: &mut PgConnection, device: Uuid, rule: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM work_orders
         WHERE device_id = $1 AND rule_id = $2 AND state IN ('submitted', 'assigned', 'accepted', 'in_progress', 'paused')
         FOR UPDATE",
        device,
        rule
    )
    .fetch_optional(db)
    .await
}

/// The unfinished maintenance order a record's failed items share, locked.
pub async fn lock_open_for_record(db: &mut PgConnection, device: Uuid, record: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM work_orders
         WHERE device_id = $1 AND source = 'maintenance' AND origin_id = $2
           AND state IN ('submitted', 'assigned', 'accepted', 'in_progress', 'paused')
         FOR UPDATE",
        device,
        record
    )
    .fetch_optional(db)
    .await
}

/// Who sees which orders in a list.
pub struct Visible {
    pub company_id: Uuid,
    /// the projects the caller's permission reaches (`None`: all of the company)
    pub projects: Option<Vec<Uuid>>,
    /// an owner's view: only orders about the owner or reported by the user
    pub owner: Option<(Option<Uuid>, Uuid)>,
}

/// Newest first, after the cursor (created_at, id).
pub async fn list(
    db: impl PgExecutor<'_>,
    v: &Visible,
    f: &Filter,
    assignee: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<WorkOrder>> {
    let states: Vec<&str> = f.states.iter().map(|s| s.as_str()).collect();
    sqlx::query_as!(
        WorkOrder,
        r#"SELECT id, no, company_id, project_id, source AS "source: Source", category AS "category: Category",
                  priority AS "priority: Priority", state AS "state: State", paused_from AS "paused_from: State",
                  title, description, location, house_id, device_id, rule_id, origin_id, owner_id, reporter_id, photos,
                  preferred_from, preferred_to, assignee_id, created_at, updated_at, assigned_at, accepted_at,
                  started_at, paused_at, paused_secs, completed_at, confirmed_at, closed_at, cancelled_at, result,
                  result_photos, parts AS "parts: Json<Vec<PartUsed>>", labour_minutes, charge, cash_receipt_no,
                  rating, rating_comment, visit_note, cancel_reason, alarm_cleared_at
           FROM work_orders
           WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id = ANY($2))
             AND ($3::uuid IS NULL OR project_id = $3)
             AND (cardinality($4::text[]) = 0 OR state = ANY($4))
             AND ($5::text IS NULL OR category = $5)
             AND ($6::uuid IS NULL OR assignee_id = $6)
             AND (NOT $7 OR (state = 'submitted' AND assignee_id IS NULL))
             AND ($8::uuid IS NULL OR device_id = $8)
             AND (NOT $9 OR owner_id = $10 OR (source = 'owner' AND reporter_id = $11))
             AND ($12::timestamptz IS NULL OR (created_at, id) < ($12, $13::uuid))
           ORDER BY created_at DESC, id DESC LIMIT $14"#,
        v.company_id,
        v.projects.as_deref(),
        f.project_id,
        &states as &[&str],
        f.category.map(|c| c.as_str()),
        assignee,
        f.pool,
        f.device_id,
        v.owner.is_some(),
        v.owner.and_then(|o| o.0),
        v.owner.map(|o| o.1),
        after.map(|k| k.0),
        after.map(|k| k.1),
        limit
    )
    .fetch_all(db)
    .await
}

/// 派单队列 the keys of the unfinished orders of the same list as [`list`], most urgent
/// first (priority, then the device's importance as it is now), then the longest waiting,
/// after the cursor (urgency, created_at, id).
pub async fn queue(
    db: impl PgExecutor<'_>,
    v: &Visible,
    f: &Filter,
    assignee: Option<Uuid>,
    after: Option<(i16, DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, i16)>> {
    let states: Vec<&str> = f.states.iter().map(|s| s.as_str()).collect();
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", urgency AS "urgency!"
           FROM (SELECT w.id, w.created_at, work_order_urgency(w.priority, d.importance) AS urgency
                 FROM work_orders w LEFT JOIN devices d ON d.id = w.device_id
                 WHERE w.company_id = $1 AND ($2::uuid[] IS NULL OR w.project_id = ANY($2))
                   AND w.state IN ('submitted', 'assigned', 'accepted', 'in_progress', 'paused')
                   AND ($3::uuid IS NULL OR w.project_id = $3)
                   AND (cardinality($4::text[]) = 0 OR w.state = ANY($4))
                   AND ($5::text IS NULL OR w.category = $5)
                   AND ($6::uuid IS NULL OR w.assignee_id = $6)
                   AND (NOT $7 OR (w.state = 'submitted' AND w.assignee_id IS NULL))
                   AND ($8::uuid IS NULL OR w.device_id = $8)
                   AND (NOT $9 OR w.owner_id = $10 OR (w.source = 'owner' AND w.reporter_id = $11))) q
           WHERE $12::smallint IS NULL OR urgency < $12
              OR (urgency = $12 AND (created_at, id) > ($13::timestamptz, $14::uuid))
           ORDER BY urgency DESC, created_at, id LIMIT $15"#,
        v.company_id,
        v.projects.as_deref(),
        f.project_id,
        &states as &[&str],
        f.category.map(|c| c.as_str()),
        assignee,
        f.pool,
        f.device_id,
        v.owner.is_some(),
        v.owner.and_then(|o| o.0),
        v.owner.map(|o| o.1),
        after.map(|k| k.0),
        after.map(|k| k.1),
        after.map(|k| k.2),
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.urgency)).collect())
}

/// The company's orders among `ids`, in no particular order.
pub async fn by_ids(db: impl PgExecutor<'_>, company_id: Uuid, ids: &[Uuid]) -> sqlx::Result<Vec<WorkOrder>> {
    sqlx::query_as!(
        WorkOrder,
        r#"SELECT id, no, company_id, project_id, source AS "source: Source", category AS "category: Category",
                  priority AS "priority: Priority", state AS "state: State", paused_from AS "paused_from: State",
                  title, description, location, house_id, device_id, rule_id, origin_id, owner_id, reporter_id, photos,
                  preferred_from, preferred_to, assignee_id, created_at, updated_at, assigned_at, accepted_at,
                  started_at, paused_at, paused_secs, completed_at, confirmed_at, closed_at, cancelled_at, result,
                  result_photos, parts AS "parts: Json<Vec<PartUsed>>", labour_minutes, charge, cash_receipt_no,
                  rating, rating_comment, visit_note, cancel_reason, alarm_cleared_at
           FROM work_orders WHERE company_id = $1 AND id = ANY($2)"#,
        company_id,
        ids
    )
    .fetch_all(db)
    .await
}

/// One technician's orders, newest first: a plain `assignee_id = $1` so every plan walks
/// the assignee index (the technician's most frequent query).
pub async fn list_assigned(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    assignee: Uuid,
    f: &Filter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<WorkOrder>> {
    let states: Vec<&str> = f.states.iter().map(|s| s.as_str()).collect();
    sqlx::query_as!(
        WorkOrder,
        r#"SELECT id, no, company_id, project_id, source AS "source: Source", category AS "category: Category",
                  priority AS "priority: Priority", state AS "state: State", paused_from AS "paused_from: State",
                  title, description, location, house_id, device_id, rule_id, origin_id, owner_id, reporter_id, photos,
                  preferred_from, preferred_to, assignee_id, created_at, updated_at, assigned_at, accepted_at,
                  started_at, paused_at, paused_secs, completed_at, confirmed_at, closed_at, cancelled_at, result,
                  result_photos, parts AS "parts: Json<Vec<PartUsed>>", labour_minutes, charge, cash_receipt_no,
                  rating, rating_comment, visit_note, cancel_reason, alarm_cleared_at
           FROM work_orders
           WHERE assignee_id = $1 AND company_id = $2
             AND (cardinality($3::text[]) = 0 OR state = ANY($3))
             AND ($4::text IS NULL OR category = $4)
             AND ($5::uuid IS NULL OR project_id = $5)
             AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
           ORDER BY created_at DESC, id DESC LIMIT $8"#,
        assignee,
        company_id,
        &states as &[&str],
        f.category.map(|c| c.as_str()),
        f.project_id,
        after.map(|k| k.0),
        after.map(|k| k.1),
        limit
    )
    .fetch_all(db)
    .await
}

/// How many orders of a list are in each state.
pub async fn counts(
    db: impl PgExecutor<'_>,
    v: &Visible,
    f: &Filter,
    assignee: Option<Uuid>,
) -> sqlx::Result<Vec<(State, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT state AS "state: State", count(*) AS "n!"
           FROM work_orders
           WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id = ANY($2))
             AND ($3::uuid IS NULL OR project_id = $3)
             AND ($4::text IS NULL OR category = $4)
             AND ($5::uuid IS NULL OR assignee_id = $5)
             AND (NOT $6 OR (state = 'submitted' AND assignee_id IS NULL))
             AND ($7::uuid IS NULL OR device_id = $7)
             AND (NOT $8 OR owner_id = $9 OR (source = 'owner' AND reporter_id = $10))
           GROUP BY state"#,
        v.company_id,
        v.projects.as_deref(),
        f.project_id,
        f.category.map(|c| c.as_str()),
        assignee,
        f.pool,
        f.device_id,
        v.owner.is_some(),
        v.owner.and_then(|o| o.0),
        v.owner.map(|o| o.1),
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.state, r.n)).collect())
}

// ---- the log -------------------------------------------------------------------------------

pub async fn insert_event(db: impl PgExecutor<'_>, e: &Event) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO work_order_events (id, work_order_id, action, from_state, to_state, actor_id, note, lat, lng, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        e.id,
        e.work_order_id,
        e.action.as_str(),
        e.from_state.map(|s| s.as_str()),
        e.to_state.as_str(),
        e.actor_id,
        e.note,
        e.lat,
        e.lng,
        e.at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn events_of(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as!(
        Event,
        r#"SELECT id, work_order_id, action AS "action: Action", from_state AS "from_state: State",
                  to_state AS "to_state: State", actor_id, note, lat, lng, at
           FROM work_order_events WHERE work_order_id = ANY($1) ORDER BY at, id"#,
        ids
    )
    .fetch_all(db)
    .await
}

// ---- settings and dispatch ----------------------------------------------------------------

pub async fn settings(db: impl PgExecutor<'_>, project_id: Uuid) -> sqlx::Result<Option<Settings>> {
    sqlx::query_as!(
        Settings,
        r#"SELECT project_id, dispatch AS "dispatch: Dispatch", auto_confirm_days, reporter_relations,
                  visit_categories, alarm_clear_grace_secs, last_assignee_id
           FROM work_order_settings WHERE project_id = $1"#,
        project_id
    )
    .fetch_optional(db)
    .await
}

pub async fn upsert_settings(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    s: &Settings,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO work_order_settings (project_id, company_id, dispatch, auto_confirm_days, reporter_relations,
             visit_categories, alarm_clear_grace_secs, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (project_id) DO UPDATE SET dispatch = $3, auto_confirm_days = $4, reporter_relations = $5,
             visit_categories = $6, alarm_clear_grace_secs = $7, updated_at = $8",
        s.project_id,
        company_id,
        s.dispatch.as_str(),
        s.auto_confirm_days,
        &s.reporter_relations,
        &s.visit_categories,
        s.alarm_clear_grace_secs,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Whose turn it was, the settings row locked until the transaction ends.
pub async fn lock_last_assignee(db: &mut PgConnection, project_id: Uuid) -> sqlx::Result<Option<Uuid>> {
    Ok(sqlx::query_scalar!(
        "SELECT last_assignee_id FROM work_order_settings WHERE project_id = $1 FOR UPDATE",
        project_id
    )
    .fetch_optional(db)
    .await?
    .flatten())
}

/// Round-robin remembers whose turn it was (the settings row exists when round-robin is set).
pub async fn set_last_assignee(db: impl PgExecutor<'_>, project_id: Uuid, user: Uuid) -> sqlx::Result<()> {
    sqlx::query!("UPDATE work_order_settings SET last_assignee_id = $2 WHERE project_id = $1", project_id, user)
        .execute(db)
        .await?;
    Ok(())
}

/// Unfinished orders per technician, for the least-loaded choice.
pub async fn loads(db: impl PgExecutor<'_>, users: &[Uuid]) -> sqlx::Result<Vec<(Uuid, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT assignee_id AS "user!", count(*) AS "n!" FROM work_orders
           WHERE assignee_id = ANY($1) AND state IN ('assigned', 'accepted', 'in_progress', 'paused')
           GROUP BY assignee_id"#,
        users
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.user, r.n)).collect())
}

// ---- the scheduler's work ------------------------------------------------------------------

/// Orders whose alarms all cleared by themselves longer ago than the project's grace and
/// that nobody has taken on.
pub async fn cleared_before_acceptance(
    db: impl PgExecutor<'_>,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<(Uuid, Uuid, Uuid)>> {
    let rows = sqlx::query!(
        "SELECT w.id, w.company_id, w.project_id FROM work_orders w
         LEFT JOIN work_order_settings s ON s.project_id = w.project_id
         WHERE w.alarm_cleared_at IS NOT NULL AND w.state IN ('submitted', 'assigned')
           AND w.alarm_cleared_at + make_interval(secs => coalesce(s.alarm_clear_grace_secs, 300)) <= $1
         LIMIT 500",
        now
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.company_id, r.project_id)).collect())
}

/// Completed orders the confirmer left alone longer than the project's limit.
pub async fn unconfirmed(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<Vec<(Uuid, Uuid, Uuid)>> {
    let rows = sqlx::query!(
        "SELECT w.id, w.company_id, w.project_id FROM work_orders w
         LEFT JOIN work_order_settings s ON s.project_id = w.project_id
         WHERE w.state = 'completed'
           AND w.completed_at + make_interval(days => coalesce(s.auto_confirm_days, 3)) <= $1
         LIMIT 500",
        now
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.company_id, r.project_id)).collect())
}

// ---- time limits ---------------------------------------------------------------------------

/// The project's limits for a category and priority (a category's own row first, then the
/// project's row for any category).
pub async fn sla_for(
    db: impl PgExecutor<'_>,
    project_id: Uuid,
    category: Category,
    priority: Priority,
) -> sqlx::Result<Option<Sla>> {
    sqlx::query_as!(
        Sla,
        "SELECT response_minutes, completion_minutes FROM work_order_sla
         WHERE project_id = $1 AND priority = $3 AND (category = $2 OR category IS NULL)
         ORDER BY category NULLS LAST LIMIT 1",
        project_id,
        category.as_str(),
        priority.as_str()
    )
    .fetch_optional(db)
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn upsert_sla(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    category: Option<Category>,
    priority: Priority,
    sla: Sla,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO work_order_sla (id, company_id, project_id, category, priority, response_minutes,
             completion_minutes, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT ON CONSTRAINT work_order_sla_key
         DO UPDATE SET response_minutes = $6, completion_minutes = $7, updated_at = $8",
        Uuid::now_v7(),
        company_id,
        project_id,
        category.map(|c| c.as_str()),
        priority.as_str(),
        sla.response_minutes,
        sla.completion_minutes,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// New deadlines (a new order, or a new priority); steps of the ladder already taken are
/// not taken again.
pub async fn set_deadlines(
    db: impl PgExecutor<'_>,
    id: Uuid,
    response_due: DateTime<Utc>,
    complete_due: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE work_orders SET response_due_at = $2, complete_due_at = $3 WHERE id = $1",
        id,
        response_due,
        complete_due
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn deadlines_of(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<Deadlines>> {
    sqlx::query_as!(
        Deadlines,
        "SELECT id, response_due_at, complete_due_at, response_level, completion_level FROM work_orders
         WHERE id = ANY($1)",
        ids
    )
    .fetch_all(db)
    .await
}

/// Unfinished orders past a deadline whose ladder has a step left: not taken on in time,
/// or not done in time (paused time added; a paused order's clock stands still).
pub async fn overdue(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<Vec<Overdue>> {
    sqlx::query_as!(
        Overdue,
        r#"SELECT id, no, company_id, project_id, title, priority AS "priority: Priority", assignee_id,
                  category AS "category: Category", accepted_at IS NOT NULL AS "accepted!", created_at,
                  response_due_at, complete_due_at, paused_secs, response_level, completion_level
           FROM work_orders
           WHERE (accepted_at IS NULL AND state IN ('submitted', 'assigned') AND response_level < 3
                  AND response_due_at + response_level * greatest((response_due_at - created_at) / 2, interval '10 minutes') <= $1)
              OR (state IN ('accepted', 'in_progress') AND completion_level < 3
                  AND complete_due_at + make_interval(secs => paused_secs)
                      + completion_level * greatest((complete_due_at - created_at) / 2, interval '10 minutes') <= $1)
           ORDER BY least(response_due_at, complete_due_at)
           LIMIT 500"#,
        now
    )
    .fetch_all(db)
    .await
}

/// Moves an order up a ladder (`completion`: the completion ladder, else the response
/// one); 0 when another round already did.
pub async fn raise_level(db: impl PgExecutor<'_>, id: Uuid, completion: bool, level: i16) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE work_orders
         SET response_level = CASE WHEN $2 THEN response_level ELSE $3 END,
             completion_level = CASE WHEN $2 THEN $3 ELSE completion_level END
         WHERE id = $1 AND (CASE WHEN $2 THEN completion_level ELSE response_level END) < $3",
        id,
        completion,
        level
    )
    .execute(db)
    .await?
    .rows_affected())
}

// ---- charges (the billing module's input) ---------------------------------------------------

/// The charge of a completed chargeable order: pending, or paid with a cash receipt. A
/// completion after a rejection replaces it.
#[allow(clippy::too_many_arguments)]
pub async fn upsert_charge(
    db: impl PgExecutor<'_>,
    w: &WorkOrder,
    amount: rust_decimal::Decimal,
    description: &str,
    by: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let status = if w.cash_receipt_no.is_some() { "paid" } else { "pending" };
    sqlx::query!(
        "INSERT INTO charges (id, company_id, project_id, house_id, owner_id, source, source_id, description, amount,
             status, cash_receipt_no, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, 'work_order', $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT ON CONSTRAINT charges_source_key
         DO UPDATE SET amount = $8, description = $7, status = $9, cash_receipt_no = $10, created_by = $11, created_at = $12
         WHERE charges.status = 'pending'",
        Uuid::now_v7(),
        w.company_id,
        w.project_id,
        w.house_id,
        w.owner_id,
        w.id,
        description,
        amount,
        status,
        w.cash_receipt_no,
        by,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A rejected result takes back its charge while it is still pending (a charge paid in
/// cash or already billed stays: the money moved, and only a refund undoes it).
pub async fn drop_charge(db: impl PgExecutor<'_>, work_order: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM charges WHERE source = 'work_order' AND source_id = $1 AND status = 'pending'",
        work_order
    )
    .execute(db)
    .await?
    .rows_affected())
}

// ---- reports -------------------------------------------------------------------------------

/// Figures over the orders of the company (`projects`: `None` all, else those; `project`:
/// one) reported in [from, to).
pub async fn report(
    db: &mut PgConnection,
    company_id: Uuid,
    projects: Option<&[Uuid]>,
    project: Option<Uuid>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Report> {
    let states = sqlx::query!(
        r#"SELECT state AS "state: State", count(*) AS "n!" FROM work_orders
           WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id = ANY($2)) AND ($3::uuid IS NULL OR project_id = $3)
             AND created_at >= $4 AND created_at < $5
           GROUP BY state"#,
        company_id,
        projects,
        project,
        from,
        to
    )
    .fetch_all(&mut *db)
    .await?;
    let categories = sqlx::query!(
        r#"SELECT category AS "category: Category", count(*) AS "n!" FROM work_orders
           WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id = ANY($2)) AND ($3::uuid IS NULL OR project_id = $3)
             AND created_at >= $4 AND created_at < $5
           GROUP BY category ORDER BY 2 DESC, 1"#,
        company_id,
        projects,
        project,
        from,
        to
    )
    .fetch_all(&mut *db)
    .await?;
    let a = sqlx::query!(
        r#"SELECT count(*) AS "total!",
                  avg(extract(epoch FROM accepted_at - created_at) / 60)::float8 AS response,
                  avg(extract(epoch FROM completed_at - created_at) / 60 - paused_secs / 60.0)::float8 AS completion,
                  count(*) FILTER (WHERE response_level > 0 OR completion_level > 0 OR accepted_at > response_due_at
                      OR completed_at > complete_due_at + make_interval(secs => paused_secs)) AS "breached!",
                  count(rating) AS "rated!", avg(rating)::float8 AS rating
           FROM work_orders
           WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id = ANY($2)) AND ($3::uuid IS NULL OR project_id = $3)
             AND created_at >= $4 AND created_at < $5"#,
        company_id,
        projects,
        project,
        from,
        to
    )
    .fetch_one(&mut *db)
    .await?;
    let techs = sqlx::query!(
        r#"SELECT w.assignee_id AS "user_id!", u.name, count(*) AS "assigned!",
                  count(w.completed_at) AS "completed!",
                  avg(extract(epoch FROM w.completed_at - w.created_at) / 60 - w.paused_secs / 60.0)::float8 AS completion,
                  avg(w.rating)::float8 AS rating,
                  count(*) FILTER (WHERE w.response_level > 0 OR w.completion_level > 0) AS "breached!"
           FROM work_orders w JOIN users u ON u.id = w.assignee_id
           WHERE w.company_id = $1 AND ($2::uuid[] IS NULL OR w.project_id = ANY($2)) AND ($3::uuid IS NULL OR w.project_id = $3)
             AND w.created_at >= $4 AND w.created_at < $5
           GROUP BY w.assignee_id, u.name ORDER BY 4 DESC, 3 DESC, 1
           LIMIT 200"#,
        company_id,
        projects,
        project,
        from,
        to
    )
    .fetch_all(&mut *db)
    .await?;
    Ok(Report {
        total: a.total,
        by_state: states.into_iter().map(|r| (r.state, r.n)).collect(),
        by_category: categories.into_iter().map(|r| (r.category, r.n)).collect(),
        avg_response_minutes: a.response,
        avg_completion_minutes: a.completion,
        breached: a.breached,
        rated: a.rated,
        avg_rating: a.rating,
        technicians: techs
            .into_iter()
            .map(|t| TechnicianFigures {
                user_id: t.user_id,
                name: t.name,
                assigned: t.assigned,
                completed: t.completed,
                avg_completion_minutes: t.completion,
                avg_rating: t.rating,
                breached: t.breached,
            })
            .collect(),
    })
}

/// An order back in the pool or handed to someone else gets a fresh response deadline and
/// its response ladder starts again from there.
pub async fn rearm_response(db: impl PgExecutor<'_>, id: Uuid, due: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!("UPDATE work_orders SET response_due_at = $2, response_level = 0 WHERE id = $1", id, due)
        .execute(db)
        .await?;
    Ok(())
}
