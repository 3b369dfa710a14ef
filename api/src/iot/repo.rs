//! SQL for telemetry history.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::rules::{DeviceRef, RuleRow};

/// Appends a batch of messages in one statement.
pub async fn append(
    db: impl PgExecutor<'_>,
    devices: &[Uuid],
    ts: &[DateTime<Utc>],
    data: &[serde_json::Value],
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO telemetry (device_id, ts, data) SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[])",
        devices,
        ts,
        data
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn enabled_rules(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<RuleRow>> {
    sqlx::query_as!(
        RuleRow,
        "SELECT id, company_id, project_id, category, device_id, name, kind, metric, op, threshold, codes,
                duration_secs, factor, severity, escalate_after_secs, enabled
         FROM alarm_rules WHERE enabled ORDER BY created_at, id"
    )
    .fetch_all(db)
    .await
}

/// (project code, device) for each (project code, device code) pair that exists.
pub async fn devices_by_topic(
    db: impl PgExecutor<'_>,
    projects: &[String],
    devices: &[String],
) -> sqlx::Result<Vec<(String, DeviceRef)>> {
    let rows = sqlx::query!(
        "SELECT p.code AS project_code, d.id, d.company_id, d.project_id, d.category, d.code
         FROM unnest($1::text[], $2::text[]) AS t(p, d)
         JOIN projects p ON p.code = t.p
         JOIN devices d ON d.project_id = p.id AND d.code = t.d",
        projects,
        devices
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.project_code,
                DeviceRef {
                    id: r.id,
                    company_id: r.company_id,
                    project_id: r.project_id,
                    category: r.category,
                    code: r.code,
                },
            )
        })
        .collect())
}

pub async fn devices_by_id(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<HashMap<Uuid, DeviceRef>> {
    let rows = sqlx::query!("SELECT id, company_id, project_id, category, code FROM devices WHERE id = ANY($1)", ids)
        .fetch_all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.id,
                DeviceRef {
                    id: r.id,
                    company_id: r.company_id,
                    project_id: r.project_id,
                    category: r.category,
                    code: r.code,
                },
            )
        })
        .collect())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Command {
    pub id: Uuid,
    pub device_id: Uuid,
    pub kind: String,
    pub params: serde_json::Value,
    pub status: String,
    pub result: String,
    pub requested_by: Uuid,
    pub sent_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub struct NewCommand<'a> {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub kind: &'a str,
    pub params: &'a serde_json::Value,
    pub requested_by: Uuid,
    pub sent_at: DateTime<Utc>,
}

pub async fn insert_command(db: &mut sqlx::PgConnection, c: &NewCommand<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO device_commands (id, company_id, project_id, device_id, kind, params, status, requested_by, sent_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'sent', $7, $8)",
        c.id,
        c.company_id,
        c.project_id,
        c.device_id,
        c.kind,
        c.params,
        c.requested_by,
        c.sent_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_command(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Command>> {
    sqlx::query_as!(
        Command,
        "SELECT id, device_id, kind, params, status, result, requested_by, sent_at, finished_at
         FROM device_commands WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// Records a device's answer; only the addressed device can answer, and only once.
pub async fn finish_command(
    db: impl PgExecutor<'_>,
    id: Uuid,
    device_id: Uuid,
    ok: bool,
    result: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE device_commands SET status = CASE WHEN $3 THEN 'succeeded' ELSE 'failed' END, result = $4, finished_at = $5
         WHERE id = $1 AND device_id = $2 AND status = 'sent'",
        id,
        device_id,
        ok,
        result,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn time_out_commands(db: impl PgExecutor<'_>, cutoff: DateTime<Utc>, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE device_commands SET status = 'failed', result = 'timeout', finished_at = $2 WHERE status = 'sent' AND sent_at < $1",
        cutoff,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

// ---- alarms --------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Alarm {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub rule_id: Uuid,
    pub severity: String,
    pub kind: String,
    pub title: String,
    pub detail: String,
    pub value: Option<f64>,
    pub state: String,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<Uuid>,
    pub resolution: String,
    pub escalated_at: Option<DateTime<Utc>>,
    pub reminders: i32,
}

pub struct NewAlarm<'a> {
    pub id: Uuid,
    pub device: &'a DeviceRef,
    pub rule: &'a RuleRow,
    pub title: &'a str,
    pub detail: &'a str,
    pub value: Option<f64>,
    pub at: DateTime<Utc>,
}

/// Inserts the alarm unless the device already has an unresolved one for the rule.
pub async fn insert_alarm(db: &mut sqlx::PgConnection, a: &NewAlarm<'_>) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO alarms (id, company_id, project_id, device_id, rule_id, severity, kind, title, detail, value, state, raised_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11)
         ON CONFLICT (device_id, rule_id) WHERE state <> 'resolved' DO NOTHING",
        a.id,
        a.device.company_id,
        a.device.project_id,
        a.device.id,
        a.rule.id,
        a.rule.severity,
        a.rule.kind,
        a.title,
        a.detail,
        a.value,
        a.at
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

pub async fn auto_resolve(db: impl PgExecutor<'_>, device: Uuid, rule: Uuid, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE alarms SET state = 'resolved', resolved_at = $3, resolution = 'auto'
         WHERE device_id = $1 AND rule_id = $2 AND state <> 'resolved'",
        device,
        rule,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn get_alarm(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Alarm>> {
    sqlx::query_as!(
        Alarm,
        "SELECT id, company_id, project_id, device_id, rule_id, severity, kind, title, detail, value, state, raised_at,
                acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution, escalated_at, reminders
         FROM alarms WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub struct AlarmQuery {
    pub company_id: Uuid,
    pub projects: Option<Vec<Uuid>>,
    pub project_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub states: Option<Vec<String>>,
    pub before: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// Newest first.
pub async fn alarms(db: impl PgExecutor<'_>, q: &AlarmQuery) -> sqlx::Result<Vec<Alarm>> {
    sqlx::query_as!(
        Alarm,
        "SELECT id, company_id, project_id, device_id, rule_id, severity, kind, title, detail, value, state, raised_at,
                acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution, escalated_at, reminders
         FROM alarms
         WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id = ANY($2)) AND ($3::uuid IS NULL OR project_id = $3)
           AND ($4::uuid IS NULL OR device_id = $4) AND ($5::text[] IS NULL OR state = ANY($5))
           AND ($6::timestamptz IS NULL OR raised_at < $6)
         ORDER BY raised_at DESC, id DESC LIMIT $7",
        q.company_id,
        q.projects.as_deref(),
        q.project_id,
        q.device_id,
        q.states.as_deref(),
        q.before,
        q.limit
    )
    .fetch_all(db)
    .await
}

pub async fn acknowledge(db: impl PgExecutor<'_>, id: Uuid, by: Uuid, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE alarms SET state = 'acknowledged', acknowledged_at = $3, acknowledged_by = $2 WHERE id = $1 AND state = 'open'",
        id,
        by,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn resolve(
    db: impl PgExecutor<'_>,
    id: Uuid,
    by: Uuid,
    resolution: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE alarms SET state = 'resolved', resolved_at = $4, resolved_by = $2, resolution = $3,
                acknowledged_at = coalesce(acknowledged_at, $4), acknowledged_by = coalesce(acknowledged_by, $2)
         WHERE id = $1 AND state <> 'resolved'",
        id,
        by,
        resolution,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// Open alarms whose rule's escalation time has passed and that were not escalated yet.
pub async fn due_escalations(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<Vec<Alarm>> {
    sqlx::query_as!(
        Alarm,
        "SELECT a.id, a.company_id, a.project_id, a.device_id, a.rule_id, a.severity, a.kind, a.title, a.detail, a.value, a.state, a.raised_at, a.acknowledged_at, a.acknowledged_by, a.resolved_at, a.resolved_by, a.resolution, a.escalated_at, a.reminders
         FROM alarms a JOIN alarm_rules r ON r.id = a.rule_id
         WHERE a.state = 'open' AND a.escalated_at IS NULL AND a.raised_at + make_interval(secs => r.escalate_after_secs) <= $1
         ORDER BY a.raised_at LIMIT 500",
        now
    )
    .fetch_all(db)
    .await
}

pub async fn mark_escalated(db: impl PgExecutor<'_>, id: Uuid, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!("UPDATE alarms SET escalated_at = $2 WHERE id = $1 AND escalated_at IS NULL", id, at)
        .execute(db)
        .await?
        .rows_affected())
}

/// Open alarms not (re)sent to the on-duty staff since `cutoff`.
pub async fn due_reminders(db: impl PgExecutor<'_>, cutoff: DateTime<Utc>) -> sqlx::Result<Vec<Alarm>> {
    sqlx::query_as!(
        Alarm,
        "SELECT id, company_id, project_id, device_id, rule_id, severity, kind, title, detail, value, state, raised_at,
                acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution, escalated_at, reminders
         FROM alarms WHERE state = 'open' AND coalesce(reminded_at, raised_at) <= $1 ORDER BY raised_at LIMIT 500",
        cutoff
    )
    .fetch_all(db)
    .await
}

pub async fn mark_reminded(
    db: impl PgExecutor<'_>,
    id: Uuid,
    cutoff: DateTime<Utc>,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE alarms SET reminded_at = $3, reminders = reminders + 1
         WHERE id = $1 AND state = 'open' AND coalesce(reminded_at, raised_at) <= $2",
        id,
        cutoff,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// 值班人员: active staff holding `alarm:duty` over the project (administrators excepted:
/// they hold every permission, not a duty).
pub async fn on_duty(db: impl PgExecutor<'_>, company_id: Uuid, project_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT u.id AS "id!" FROM users u
           JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
           WHERE u.company_id = $1 AND u.kind = 'staff' AND u.status = 'active' AND r.code <> 'admin'
             AND 'alarm:duty' = ANY(r.permissions) AND (ur.scope = 'company' OR $2 = ANY(ur.project_ids))"#,
        company_id,
        project_id
    )
    .fetch_all(db)
    .await
}

/// The project's manager, else the holders of the project-manager role over it.
pub async fn managers(db: impl PgExecutor<'_>, company_id: Uuid, project_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT p.manager_id AS "id!" FROM projects p WHERE p.id = $2 AND p.company_id = $1 AND p.manager_id IS NOT NULL
           UNION
           SELECT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
           WHERE u.company_id = $1 AND u.status = 'active' AND r.code = 'project_manager'
             AND (ur.scope = 'company' OR $2 = ANY(ur.project_ids))
             AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = $2 AND p.manager_id IS NOT NULL)"#,
        company_id,
        project_id
    )
    .fetch_all(db)
    .await
}

pub async fn rules_of(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    projects: Option<Vec<Uuid>>,
) -> sqlx::Result<Vec<RuleRow>> {
    sqlx::query_as!(
        RuleRow,
        "SELECT id, company_id, project_id, category, device_id, name, kind, metric, op, threshold, codes,
                duration_secs, factor, severity, escalate_after_secs, enabled
         FROM alarm_rules WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id IS NULL OR project_id = ANY($2))
         ORDER BY created_at, id",
        company_id,
        projects.as_deref()
    )
    .fetch_all(db)
    .await
}

pub async fn get_rule(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<RuleRow>> {
    sqlx::query_as!(
        RuleRow,
        "SELECT id, company_id, project_id, category, device_id, name, kind, metric, op, threshold, codes,
                duration_secs, factor, severity, escalate_after_secs, enabled
         FROM alarm_rules WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn upsert_rule(db: impl PgExecutor<'_>, r: &RuleRow) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO alarm_rules (id, company_id, project_id, category, device_id, name, kind, metric, op, threshold, codes,
                                  duration_secs, factor, severity, escalate_after_secs, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (id) DO UPDATE SET name = $6, metric = $8, op = $9, threshold = $10, codes = $11, duration_secs = $12,
             factor = $13, severity = $14, escalate_after_secs = $15, enabled = $16, updated_at = now()",
        r.id,
        r.company_id,
        r.project_id,
        r.category,
        r.device_id,
        r.name,
        r.kind,
        r.metric,
        r.op,
        r.threshold,
        &r.codes,
        r.duration_secs,
        r.factor,
        r.severity,
        r.escalate_after_secs,
        r.enabled
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn has_rules(db: impl PgExecutor<'_>, company_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM alarm_rules WHERE company_id = $1) AS "e!""#, company_id)
        .fetch_one(db)
        .await
}

// ---- repair requests -----------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RepairRequest {
    pub id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub reason: String,
    pub source: String,
    pub source_id: Option<Uuid>,
    pub status: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

pub struct NewRepair<'a> {
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub reason: &'a str,
    pub source: &'a str,
    pub source_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// Records a repair request; the same source and reason twice is one request.
pub async fn insert_repair(db: impl PgExecutor<'_>, r: &NewRepair<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO repair_requests (id, company_id, project_id, device_id, reason, source, source_id, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (source, source_id, reason) WHERE source_id IS NOT NULL DO NOTHING",
        Uuid::now_v7(),
        r.company_id,
        r.project_id,
        r.device_id,
        r.reason,
        r.source,
        r.source_id,
        r.created_by,
        r.at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn repair_requests(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    projects: Option<Vec<Uuid>>,
    project_id: Option<Uuid>,
    device_id: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<RepairRequest>> {
    sqlx::query_as!(
        RepairRequest,
        "SELECT id, project_id, device_id, reason, source, source_id, status, created_by, created_at FROM repair_requests
         WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id = ANY($2)) AND ($3::uuid IS NULL OR project_id = $3)
           AND ($4::uuid IS NULL OR device_id = $4)
         ORDER BY created_at DESC, id DESC LIMIT $5",
        company_id,
        projects.as_deref(),
        project_id,
        device_id,
        limit
    )
    .fetch_all(db)
    .await
}

// ---- history -------------------------------------------------------------------------

pub struct TrendPoint {
    pub bucket: DateTime<Utc>,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub count: i64,
}

/// Aggregates of one metric per Shanghai hour or day.
pub async fn trend(
    db: impl PgExecutor<'_>,
    device: Uuid,
    metric: &str,
    unit: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<TrendPoint>> {
    sqlx::query_as!(
        TrendPoint,
        r#"SELECT date_trunc($3, ts AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' AS "bucket!",
                  avg(v) AS "avg!", min(v) AS "min!", max(v) AS "max!", count(*) AS "count!"
           FROM (SELECT ts, (data->>$2)::float8 AS v FROM telemetry
                 WHERE device_id = $1 AND ts >= $4 AND ts < $5 AND data ? $2) x
           GROUP BY 1 ORDER BY 1"#,
        device,
        metric,
        unit,
        from,
        to
    )
    .fetch_all(db)
    .await
}

pub struct MeterPeriod {
    pub device_id: Uuid,
    pub code: String,
    pub name: String,
    pub category: String,
    pub attributes: serde_json::Value,
    pub start_reading: Option<f64>,
    pub end_reading: Option<f64>,
}

/// Each meter's reading at the start and at the end of a period: the last reading before
/// the instant (the first within the period when none came before).
pub async fn meter_periods(
    db: impl PgExecutor<'_>,
    project: Uuid,
    category: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<MeterPeriod>> {
    sqlx::query_as!(
        MeterPeriod,
        r#"SELECT d.id AS device_id, d.code, d.name, d.category, d.attributes,
             coalesce(
               (SELECT (t.data->>'reading')::float8 FROM telemetry t
                WHERE t.device_id = d.id AND t.ts < $3 AND t.data ? 'reading' ORDER BY t.ts DESC LIMIT 1),
               (SELECT (t.data->>'reading')::float8 FROM telemetry t
                WHERE t.device_id = d.id AND t.ts >= $3 AND t.ts < $4 AND t.data ? 'reading' ORDER BY t.ts LIMIT 1)
             ) AS start_reading,
             (SELECT (t.data->>'reading')::float8 FROM telemetry t
              WHERE t.device_id = d.id AND t.ts < $4 AND t.data ? 'reading' ORDER BY t.ts DESC LIMIT 1) AS end_reading
           FROM devices d
           WHERE d.project_id = $1 AND d.category IN ('water_meter', 'electricity_meter', 'gas_meter')
             AND ($2::text IS NULL OR d.category = $2) AND d.status <> 'scrapped'
           ORDER BY d.code"#,
        project,
        category,
        from,
        to
    )
    .fetch_all(db)
    .await
}

/// Devices for the simulator: in use or standby, of the given projects (all when empty).
pub async fn sim_devices(
    db: impl PgExecutor<'_>,
    projects: &[String],
    limit: i64,
) -> sqlx::Result<Vec<super::sim::SimDevice>> {
    sqlx::query_as!(
        super::sim::SimDevice,
        "SELECT p.code AS project, d.code, d.category FROM devices d JOIN projects p ON p.id = d.project_id
         WHERE d.status IN ('in_use', 'standby') AND (cardinality($1::text[]) = 0 OR p.code = ANY($1))
         ORDER BY p.code, d.code LIMIT $2",
        projects,
        limit
    )
    .fetch_all(db)
    .await
}
