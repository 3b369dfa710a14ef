//! SQL for alarm rules, alarms and repair requests. Where a partial index or a conflict
//! target names a state (`WHERE state = 'open'`), the state is written out in the SQL so
//! the planner can use the index; elsewhere states are bound as parameters.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{
    Alarm, AlarmFilter, AlarmRule, AlarmState, NewAlarm, NewRepairRequest, RepairRequest, RepairSource, RepairStatus,
    RuleKind, RuleOp, Severity,
};
use crate::equipment::model::DeviceCategory;

// ---- rules ---------------------------------------------------------------------------------

/// Every company's enabled rules (for ingest, cached).
pub async fn enabled_rules(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<AlarmRule>> {
    sqlx::query_as!(
        AlarmRule,
        r#"SELECT id, company_id, project_id, category AS "category: DeviceCategory", device_id, name,
                  kind AS "kind: RuleKind", metric, NULLIF(op, '') AS "op?: RuleOp", threshold, codes, duration_secs,
                  factor, severity AS "severity: Severity", escalate_after_secs, enabled
           FROM alarm_rules WHERE enabled ORDER BY created_at, id"#
    )
    .fetch_all(db)
    .await
}

/// A company's rules in id order: those of every project, and those of `projects`
/// (`None`: all).
pub async fn rules_of(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    projects: Option<&[Uuid]>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<AlarmRule>> {
    sqlx::query_as!(
        AlarmRule,
        r#"SELECT id, company_id, project_id, category AS "category: DeviceCategory", device_id, name,
                  kind AS "kind: RuleKind", metric, NULLIF(op, '') AS "op?: RuleOp", threshold, codes, duration_secs,
                  factor, severity AS "severity: Severity", escalate_after_secs, enabled
           FROM alarm_rules
           WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id IS NULL OR project_id = ANY($2))
             AND ($3::uuid IS NULL OR id > $3)
           ORDER BY id LIMIT $4"#,
        company_id,
        projects,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn get_rule(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<AlarmRule>> {
    sqlx::query_as!(
        AlarmRule,
        r#"SELECT id, company_id, project_id, category AS "category: DeviceCategory", device_id, name,
                  kind AS "kind: RuleKind", metric, NULLIF(op, '') AS "op?: RuleOp", threshold, codes, duration_secs,
                  factor, severity AS "severity: Severity", escalate_after_secs, enabled
           FROM alarm_rules WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// Inserts a rule, or changes what may change of an existing one (what it watches stays).
/// A rule without an op is stored with `op = ''`.
pub async fn upsert_rule(db: impl PgExecutor<'_>, r: &AlarmRule) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO alarm_rules (id, company_id, project_id, category, device_id, name, kind, metric, op, threshold, codes,
                                  duration_secs, factor, severity, escalate_after_secs, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (id) DO UPDATE SET name = $6, metric = $8, op = $9, threshold = $10, codes = $11, duration_secs = $12,
             factor = $13, severity = $14, escalate_after_secs = $15, enabled = $16, updated_at = now()",
        r.id,
        r.company_id,
        r.project_id,
        r.category.map(DeviceCategory::as_str),
        r.device_id,
        r.name,
        r.kind.as_str(),
        r.metric,
        r.op.map(RuleOp::as_str).unwrap_or(""),
        r.threshold,
        &r.codes,
        r.duration_secs,
        r.factor,
        r.severity.as_str(),
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

// ---- alarms --------------------------------------------------------------------------------

/// Inserts the alarm unless the device already has an unresolved one for the rule.
pub async fn insert_alarm(db: &mut PgConnection, a: &NewAlarm<'_>) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO alarms (id, company_id, project_id, device_id, rule_id, severity, kind, title, detail, value, state, raised_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (device_id, rule_id) WHERE state <> 'resolved' DO NOTHING",
        a.id,
        a.device.company_id,
        a.device.project_id,
        a.device.id,
        a.rule.id,
        a.rule.severity.as_str(),
        a.rule.kind.as_str(),
        a.title,
        a.detail,
        a.value,
        AlarmState::Open.as_str(),
        a.at
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// The condition cleared: the device's unresolved alarm of the rule resolves itself.
/// Resolves the device's unresolved alarm of the rule by itself; returns its id and company.
pub async fn auto_resolve(
    db: impl PgExecutor<'_>,
    device: Uuid,
    rule: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<(Uuid, Uuid)>> {
    Ok(sqlx::query!(
        "UPDATE alarms SET state = $4, resolved_at = $3, resolution = 'auto'
         WHERE device_id = $1 AND rule_id = $2 AND state <> 'resolved' RETURNING id, company_id",
        device,
        rule,
        at,
        AlarmState::Resolved.as_str()
    )
    .fetch_optional(db)
    .await?
    .map(|r| (r.id, r.company_id)))
}

pub async fn get_alarm(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Alarm>> {
    sqlx::query_as!(
        Alarm,
        r#"SELECT id, company_id, project_id, device_id, rule_id, severity AS "severity: Severity",
                  kind AS "kind: RuleKind", title, detail, value, state AS "state: AlarmState", raised_at,
                  acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution, escalated_at, reminders
           FROM alarms WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// Newest first, after the cursor (raised_at, id); `projects` `None`: all of the company.
pub async fn alarms(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    projects: Option<&[Uuid]>,
    f: &AlarmFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Alarm>> {
    let states: Option<Vec<String>> = f.states.as_ref().map(|s| s.iter().map(|x| x.as_str().to_owned()).collect());
    sqlx::query_as!(
        Alarm,
        r#"SELECT id, company_id, project_id, device_id, rule_id, severity AS "severity: Severity",
                  kind AS "kind: RuleKind", title, detail, value, state AS "state: AlarmState", raised_at,
                  acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution, escalated_at, reminders
           FROM alarms
           WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id = ANY($2)) AND ($3::uuid IS NULL OR project_id = $3)
             AND ($4::uuid IS NULL OR device_id = $4) AND ($5::text[] IS NULL OR state = ANY($5))
             AND ($6::timestamptz IS NULL OR (raised_at, id) < ($6, $7::uuid))
           ORDER BY raised_at DESC, id DESC LIMIT $8"#,
        company_id,
        projects,
        f.project_id,
        f.device_id,
        states.as_deref(),
        after.map(|k| k.0),
        after.map(|k| k.1),
        limit
    )
    .fetch_all(db)
    .await
}

/// open → acknowledged; 0 when it was not open.
pub async fn acknowledge(db: impl PgExecutor<'_>, id: Uuid, by: Uuid, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE alarms SET state = $4, acknowledged_at = $3, acknowledged_by = $2 WHERE id = $1 AND state = $5",
        id,
        by,
        at,
        AlarmState::Acknowledged.as_str(),
        AlarmState::Open.as_str()
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// open or acknowledged → resolved (acknowledged by the resolver if nobody had); 0 when
/// it was resolved already.
pub async fn resolve(
    db: impl PgExecutor<'_>,
    id: Uuid,
    by: Uuid,
    resolution: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE alarms SET state = $5, resolved_at = $4, resolved_by = $2, resolution = $3,
                acknowledged_at = coalesce(acknowledged_at, $4), acknowledged_by = coalesce(acknowledged_by, $2)
         WHERE id = $1 AND state <> $5",
        id,
        by,
        resolution,
        at,
        AlarmState::Resolved.as_str()
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// Open alarms whose rule's escalation time has passed and that were not escalated yet.
pub async fn due_escalations(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<Vec<Alarm>> {
    sqlx::query_as!(
        Alarm,
        r#"SELECT a.id, a.company_id, a.project_id, a.device_id, a.rule_id, a.severity AS "severity: Severity",
                  a.kind AS "kind: RuleKind", a.title, a.detail, a.value, a.state AS "state: AlarmState", a.raised_at,
                  a.acknowledged_at, a.acknowledged_by, a.resolved_at, a.resolved_by, a.resolution, a.escalated_at,
                  a.reminders
           FROM alarms a JOIN alarm_rules r ON r.id = a.rule_id
           WHERE a.state = 'open' AND a.escalated_at IS NULL
             AND a.raised_at + make_interval(secs => r.escalate_after_secs) <= $1
           ORDER BY a.raised_at LIMIT 500"#,
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
        r#"SELECT id, company_id, project_id, device_id, rule_id, severity AS "severity: Severity",
                  kind AS "kind: RuleKind", title, detail, value, state AS "state: AlarmState", raised_at,
                  acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution, escalated_at, reminders
           FROM alarms WHERE state = 'open' AND coalesce(reminded_at, raised_at) <= $1 ORDER BY raised_at LIMIT 500"#,
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

// ---- repair requests -----------------------------------------------------------------

/// Records a repair request; the same source and reason twice is one request (`None`).
pub async fn insert_repair(db: impl PgExecutor<'_>, r: &NewRepairRequest<'_>) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "INSERT INTO repair_requests (id, company_id, project_id, device_id, reason, source, source_id, status,
                                      created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (source, source_id, reason) WHERE source_id IS NOT NULL DO NOTHING RETURNING id",
        Uuid::now_v7(),
        r.company_id,
        r.project_id,
        r.device_id,
        r.reason,
        r.source.as_str(),
        r.source_id,
        RepairStatus::Open.as_str(),
        r.created_by,
        r.at
    )
    .fetch_optional(db)
    .await
}

/// The work order a repair request opened or joined.
pub async fn link_repair(db: impl PgExecutor<'_>, id: Uuid, work_order: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query!("UPDATE repair_requests SET work_order_id = $2 WHERE id = $1", id, work_order)
        .execute(db)
        .await?
        .rows_affected())
}

/// The requests a work order carries.
pub async fn repairs_of_order(db: impl PgExecutor<'_>, work_order: Uuid) -> sqlx::Result<Vec<RepairRequest>> {
    sqlx::query_as!(
        RepairRequest,
        r#"SELECT id, project_id, device_id, reason, source AS "source: RepairSource", source_id,
                  status AS "status: RepairStatus", created_by, created_at, work_order_id
           FROM repair_requests WHERE work_order_id = $1 ORDER BY created_at, id"#,
        work_order
    )
    .fetch_all(db)
    .await
}

/// The requests an alarm raised.
pub async fn repairs_of_alarm(db: impl PgExecutor<'_>, alarm: Uuid) -> sqlx::Result<Vec<RepairRequest>> {
    sqlx::query_as!(
        RepairRequest,
        r#"SELECT id, project_id, device_id, reason, source AS "source: RepairSource", source_id,
                  status AS "status: RepairStatus", created_by, created_at, work_order_id
           FROM repair_requests WHERE source = 'alarm' AND source_id = $1"#,
        alarm
    )
    .fetch_all(db)
    .await
}

/// A repair request no work order carries yet (recorded before work orders existed), with
/// its alarm's rule, severity and whether that alarm is resolved.
pub struct Unlinked {
    pub request: RepairRequest,
    pub company_id: Uuid,
    pub rule_id: Option<Uuid>,
    pub severity: Option<Severity>,
    pub alarm_resolved: bool,
}

pub async fn unlinked_repairs(db: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<Unlinked>> {
    let rows = sqlx::query!(
        r#"SELECT r.id, r.company_id, r.project_id, r.device_id, r.reason, r.source AS "source: RepairSource",
                  r.source_id, r.status AS "status: RepairStatus", r.created_by, r.created_at,
                  a.rule_id AS "rule_id?", a.severity AS "severity?: Severity",
                  coalesce(a.state = 'resolved', false) AS "alarm_resolved!"
           FROM repair_requests r
           LEFT JOIN alarms a ON r.source = 'alarm' AND a.id = r.source_id
           WHERE r.work_order_id IS NULL AND r.status <> 'closed'
           ORDER BY r.created_at, r.id LIMIT $1"#,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Unlinked {
            request: RepairRequest {
                id: r.id,
                project_id: r.project_id,
                device_id: r.device_id,
                reason: r.reason,
                source: r.source,
                source_id: r.source_id,
                status: r.status,
                created_by: r.created_by,
                created_at: r.created_at,
                work_order_id: None,
            },
            company_id: r.company_id,
            rule_id: r.rule_id,
            severity: r.severity,
            alarm_resolved: r.alarm_resolved,
        })
        .collect())
}

pub async fn close_repair(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query!("UPDATE repair_requests SET status = 'closed' WHERE id = $1", id)
        .execute(db)
        .await?
        .rows_affected())
}

/// Follows the work order's progress on its requests.
pub async fn set_repairs_status(db: impl PgExecutor<'_>, work_order: Uuid, status: RepairStatus) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE repair_requests SET status = $2 WHERE work_order_id = $1 AND status <> $2",
        work_order,
        status.as_str()
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// Newest first, after the cursor (created_at, id); `projects` `None`: all of the company.
pub async fn repair_requests(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    projects: Option<&[Uuid]>,
    project_id: Option<Uuid>,
    device_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<RepairRequest>> {
    sqlx::query_as!(
        RepairRequest,
        r#"SELECT id, project_id, device_id, reason, source AS "source: RepairSource", source_id,
                  status AS "status: RepairStatus", created_by, created_at, work_order_id
           FROM repair_requests
           WHERE company_id = $1 AND ($2::uuid[] IS NULL OR project_id = ANY($2)) AND ($3::uuid IS NULL OR project_id = $3)
             AND ($4::uuid IS NULL OR device_id = $4)
             AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6::uuid))
           ORDER BY created_at DESC, id DESC LIMIT $7"#,
        company_id,
        projects,
        project_id,
        device_id,
        after.map(|k| k.0),
        after.map(|k| k.1),
        limit
    )
    .fetch_all(db)
    .await
}
