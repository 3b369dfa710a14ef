//! 告警: storing what the rules decide, telling the on-duty staff, escalating to the
//! manager, reminding; and the people's side (acknowledge, resolve, rules, repair requests).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::model::{
    Alarm, AlarmFilter, AlarmRaised, AlarmRule, AlarmState, EVENT_ALARM, NewAlarm, NewRepairRequest, RepairRequest,
    RepairSource, RepairStatus, RuleInput, RuleKind, Severity, default_rules,
};
use super::repo;
use super::rules::Action;
use crate::iot::telemetry::model::DeviceRef;
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::events::Event;
use crate::kit::idempotency::{Retry, Tx};
use crate::kit::state::AppState;
use crate::kit::types;
use crate::notify::model::{Category, Channel, NewNotification, Priority};
use crate::rbac::model::{Actor, Perm, Scope};

// ---- raising, escalating, reminding ----------------------------------------------------------

fn notice(
    a: &Alarm,
    title: String,
    body: String,
    priority: Priority,
    channels: Option<Vec<Channel>>,
) -> NewNotification {
    NewNotification {
        category: Category::Alarm,
        priority,
        title,
        body,
        data: serde_json::json!({ "alarmId": a.id, "deviceId": a.device_id, "projectId": a.project_id }),
        channels,
    }
}

fn priority(severity: Severity) -> Priority {
    if severity == Severity::Minor { Priority::High } else { Priority::Critical }
}

/// 值班人员: who hears of a project's alarms first — those holding `alarm:duty` who are on
/// shift and clocked in now; when none of them is, every holder and the project's manager
/// (never no one).
async fn on_duty(state: &AppState, company_id: Uuid, project_id: Uuid) -> AppResult<Vec<Uuid>> {
    let mut conn = state.db.acquire().await?;
    let holders = crate::rbac::service::duty_holders_in(&mut conn, company_id, project_id, Perm::AlarmDuty).await?;
    let roster = state.part::<Arc<dyn crate::rbac::service::DutyRoster>>()?;
    let at_work = roster.on_duty(state, &mut conn, company_id, project_id).await?;
    drop(conn);
    let on_shift: Vec<Uuid> = holders.iter().copied().filter(|u| at_work.contains(u)).collect();
    if !on_shift.is_empty() {
        return Ok(on_shift);
    }
    let mut all = holders;
    all.extend(crate::rbac::service::project_managers(state, company_id, project_id).await?);
    all.sort();
    all.dedup();
    Ok(all)
}

/// Every company's enabled rules (ingest caches them in `IotCache`).
pub async fn enabled_rules(state: &AppState) -> AppResult<Vec<AlarmRule>> {
    Ok(repo::enabled_rules(&state.db).await?)
}

/// Stores a rule's decision. Raising: the alarm (once per device and rule), a repair
/// request, the on-duty staff's push through the outbox — and the manager's SMS at once
/// when the rule escalates immediately (trapped passengers) — all in one transaction.
pub async fn apply(
    state: &AppState,
    d: &DeviceRef,
    rule: &AlarmRule,
    action: &Action,
    now: DateTime<Utc>,
) -> AppResult<()> {
    match action {
        Action::Resolve { rule } => {
            auto_resolve(state, d.id, *rule, now).await?;
        }
        Action::Raise { value, detail, .. } => {
            let title = format!("【{}】{} {}", rule.severity.label(), d.code, rule.name);
            let id = Uuid::now_v7();
            let mut tx = state.db.begin().await?;
            let new = NewAlarm { id, device: d, rule, title: &title, detail, value: *value, at: now };
            if !repo::insert_alarm(&mut tx, &new).await? {
                return Ok(());
            }
            let reason = if detail.is_empty() { title.clone() } else { format!("{title}：{detail}") };
            let later = record_repair_request(
                state,
                &mut tx,
                Some(RuleHint { rule_id: rule.id, severity: rule.severity, alarm_id: id }),
                &NewRepairRequest {
                    company_id: d.company_id,
                    project_id: d.project_id,
                    device_id: d.id,
                    reason: &reason,
                    source: RepairSource::Alarm,
                    source_id: Some(id),
                    created_by: None,
                    at: now,
                },
            )
            .await?;
            let alarm = repo::get_alarm(&mut *tx, d.company_id, id).await?.ok_or(AppError::not_found("alarm"))?;
            let mut duty = on_duty(state, d.company_id, d.project_id).await?;
            if rule.escalate_after_secs == 0 {
                // the manager hears at once by the escalation: one message, not two
                let managers = crate::rbac::service::project_managers(state, d.company_id, d.project_id).await?;
                duty.retain(|u| !managers.contains(u));
            }
            let n = notice(&alarm, title.clone(), detail.clone(), priority(rule.severity), None);
            crate::notify::service::enqueue(state, &mut tx, d.company_id, &duty, &n).await?;
            if rule.escalate_after_secs == 0 {
                escalate(state, &mut tx, &alarm, now).await?;
            }
            tx.commit().await?;
            state.events.publish_after_commit(later).await;
            let payload = serde_json::to_value(AlarmRaised::from(&alarm)).map_err(AppError::internal)?;
            state.events.publish(&Event { user_id: None, kind: EVENT_ALARM.into(), payload }).await?;
        }
    }
    Ok(())
}

/// The condition cleared before anyone resolved it (or the device spoke meanwhile): the
/// alarm resolves itself, and the work-order desk hears of it in the same transaction.
pub async fn auto_resolve(state: &AppState, device: Uuid, rule: Uuid, at: DateTime<Utc>) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    if let Some((alarm, company)) = repo::auto_resolve(&mut *tx, device, rule, at).await? {
        desk(state)?.alarm_cleared(state, &mut tx, company, alarm, at).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// SMS (and in-app) to the project's manager, once per alarm.
async fn escalate(state: &AppState, tx: &mut sqlx::PgConnection, a: &Alarm, now: DateTime<Utc>) -> AppResult<()> {
    if repo::mark_escalated(&mut *tx, a.id, now).await? == 0 {
        return Ok(());
    }
    let managers = crate::rbac::service::project_managers(state, a.company_id, a.project_id).await?;
    let body = if a.detail.is_empty() {
        "请立即安排处理".to_owned()
    } else {
        format!("{}，请立即安排处理", a.detail)
    };
    let n = notice(
        a,
        format!("告警未及时确认 {}", a.title),
        body,
        Priority::Critical,
        Some(vec![Channel::Sms, Channel::InApp]),
    );
    crate::notify::service::enqueue(state, tx, a.company_id, &managers, &n).await?;
    Ok(())
}

/// The scheduler's job: escalate alarms nobody acknowledged in time; remind the on-duty
/// staff of open alarms every `remind_every_secs`. Returns (escalated, reminded).
pub async fn follow_up(state: &AppState) -> AppResult<(usize, usize)> {
    let now = state.clock.now();
    let mut escalated = 0;
    for a in repo::due_escalations(&state.db, now).await? {
        let mut tx = state.db.begin().await?;
        escalate(state, &mut tx, &a, now).await?;
        tx.commit().await?;
        escalated += 1;
    }
    let cutoff = now - TimeDelta::seconds(state.config.iot.remind_every_secs as i64);
    let mut reminded = 0;
    for a in repo::due_reminders(&state.db, cutoff).await? {
        let mut tx = state.db.begin().await?;
        if repo::mark_reminded(&mut *tx, a.id, cutoff, now).await? == 1 {
            let duty = on_duty(state, a.company_id, a.project_id).await?;
            let n = notice(&a, format!("告警仍未确认 {}", a.title), a.detail.clone(), priority(a.severity), None);
            crate::notify::service::enqueue(state, &mut tx, a.company_id, &duty, &n).await?;
            reminded += 1;
        }
        tx.commit().await?;
    }
    Ok((escalated, reminded))
}

// ---- people's side ---------------------------------------------------------------------

/// Alarms of the caller's `alarm:read` projects, newest first.
pub async fn alarms(
    state: &AppState,
    actor: &Actor,
    f: &AlarmFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> AppResult<Vec<Alarm>> {
    let projects = actor.projects(Perm::AlarmRead)?;
    if let Some(p) = f.project_id {
        actor.require_project(Perm::AlarmRead, p)?;
    }
    if let Some(d) = f.device_id {
        crate::equipment::service::device_within(state, actor, Perm::AlarmRead, d).await?;
    }
    let projects = projects.as_sql();
    Ok(repo::alarms(&state.db, actor.company_id, projects.as_deref(), f, after, limit as i64).await?)
}

/// An alarm of the company that `perm` reaches; another project's alarm does not exist
/// for this caller.
async fn alarm_in(db: &mut sqlx::PgConnection, actor: &Actor, perm: Perm, id: Uuid) -> AppResult<Alarm> {
    let a = repo::get_alarm(db, actor.company_id, id).await?.ok_or(AppError::not_found("alarm"))?;
    if actor.require_project(perm, a.project_id).is_err() {
        return Err(AppError::not_found("alarm"));
    }
    Ok(a)
}

/// An alarm of the caller's `alarm:read` projects.
pub async fn alarm(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Alarm> {
    let mut conn = state.db.acquire().await?;
    alarm_in(&mut conn, actor, Perm::AlarmRead, id).await
}

fn not_open(current: AlarmState) -> AppError {
    AppError::wrong_state("alarmId", current.as_str(), Msg::new("告警已被确认或已解除", "The alarm is no longer open"))
}

fn already_resolved() -> AppError {
    AppError::wrong_state(
        "alarmId",
        AlarmState::Resolved.as_str(),
        Msg::new("告警已解除", "The alarm is already resolved"),
    )
}

/// 确认告警: open → acknowledged; stops the escalation and the reminders.
pub async fn acknowledge(state: &AppState, actor: &Actor, retry: &Retry, id: Uuid) -> AppResult<Uuid> {
    actor.require(Perm::AlarmHandle)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let a = alarm_in(&mut tx, actor, Perm::AlarmHandle, id).await?;
    if a.state != AlarmState::Open {
        return Err(not_open(a.state));
    }
    let now = state.clock.now();
    if repo::acknowledge(&mut *tx, a.id, actor.user_id, now).await? == 0 {
        // someone else moved it on meanwhile
        let current = repo::get_alarm(&mut *tx, actor.company_id, id).await?.map_or(AlarmState::Resolved, |c| c.state);
        return Err(not_open(current));
    }
    audit::record(&mut tx, now, actor, "alarm.acknowledge", "alarm", Some(a.id), serde_json::json!({})).await?;
    tx.commit(&a.id).await?;
    Ok(a.id)
}

/// 解除告警 by a person, with what was done: the device's live state forgets the alarm,
/// so the rule can raise a new one if the condition comes back.
pub async fn resolve(state: &AppState, actor: &Actor, retry: &Retry, id: Uuid, resolution: &str) -> AppResult<Uuid> {
    actor.require(Perm::AlarmHandle)?;
    let resolution = types::text("resolution", resolution, 500)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let a = alarm_in(&mut tx, actor, Perm::AlarmHandle, id).await?;
    if a.state == AlarmState::Resolved {
        return Err(already_resolved());
    }
    let now = state.clock.now();
    if repo::resolve(&mut *tx, a.id, actor.user_id, &resolution, now).await? == 0 {
        return Err(already_resolved());
    }
    audit::record(
        &mut tx,
        now,
        actor,
        "alarm.resolve",
        "alarm",
        Some(a.id),
        serde_json::json!({ "resolution": resolution }),
    )
    .await?;
    tx.commit(&a.id).await?;
    crate::iot::telemetry::service::forget_alarm(state, a.device_id, a.rule_id, now).await?;
    Ok(a.id)
}

/// Subscribers to a project's alarms must be able to read them.
/// The project, resolved within the caller's company (another company's is NOT_FOUND),
/// must lie within the caller's scope.
pub async fn check_project(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<()> {
    crate::org::company::service::project(state, actor, Perm::AlarmRead, project).await?;
    Ok(())
}

// ---- repair requests ---------------------------------------------------------------------

/// What a repair request came from when an alarm raised it.
#[derive(Debug, Clone, Copy)]
pub struct RuleHint {
    pub rule_id: Uuid,
    pub severity: Severity,
    pub alarm_id: Uuid,
}

/// A repair request just recorded, as the work-order desk sees it.
#[derive(Debug, Clone)]
pub struct RepairOpened {
    pub request_id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub reason: String,
    pub source: RepairSource,
    pub source_id: Option<Uuid>,
    pub rule: Option<RuleHint>,
    pub created_by: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// 工单台: the work-order module above iot, which turns repair requests into work orders.
/// iot and maintenance record requests; the desk opens or joins an order in the same
/// transaction. Registered at startup as a state part (`Arc<dyn RepairDesk>`).
#[async_trait::async_trait]
pub trait RepairDesk: Send + Sync {
    /// A request was recorded: open a work order for it or join an unfinished one. Returns
    /// the events the caller publishes once its transaction has committed.
    async fn opened(
        &self,
        state: &AppState,
        tx: &mut sqlx::PgConnection,
        request: &RepairOpened,
    ) -> AppResult<Vec<Event>>;
    /// An alarm resolved itself before anyone resolved it.
    async fn alarm_cleared(
        &self,
        state: &AppState,
        tx: &mut sqlx::PgConnection,
        company_id: Uuid,
        alarm_id: Uuid,
        at: DateTime<Utc>,
    ) -> AppResult<()>;
}

fn desk(state: &AppState) -> AppResult<&std::sync::Arc<dyn RepairDesk>> {
    state.part::<std::sync::Arc<dyn RepairDesk>>()
}

/// Records a repair request in the caller's transaction and hands it to the work-order
/// desk; the same source and reason twice is one request. Returns the events to publish
/// once the caller's transaction has committed.
pub async fn record_repair_request(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    rule: Option<RuleHint>,
    r: &NewRepairRequest<'_>,
) -> AppResult<Vec<Event>> {
    let Some(id) = repo::insert_repair(&mut *tx, r).await? else { return Ok(Vec::new()) };
    let opened = RepairOpened {
        request_id: id,
        company_id: r.company_id,
        project_id: r.project_id,
        device_id: r.device_id,
        reason: r.reason.to_owned(),
        source: r.source,
        source_id: r.source_id,
        rule,
        created_by: r.created_by,
        at: r.at,
    };
    desk(state)?.opened(state, tx, &opened).await
}

/// The work order a request opened or joined (the desk calls it).
pub async fn link_repair(tx: &mut sqlx::PgConnection, request: Uuid, work_order: Uuid) -> AppResult<()> {
    repo::link_repair(tx, request, work_order).await?;
    Ok(())
}

/// Repair requests recorded before work orders existed, as the desk sees them: those whose
/// alarm has resolved meanwhile are closed here (nothing is left to repair), the others
/// returned for the desk to open orders for.
pub async fn unlinked_repairs(state: &AppState, limit: usize) -> AppResult<Vec<RepairOpened>> {
    let mut out = Vec::new();
    for u in repo::unlinked_repairs(&state.db, limit as i64).await? {
        if u.alarm_resolved {
            repo::close_repair(&state.db, u.request.id).await?;
            continue;
        }
        let r = u.request;
        let rule = match (u.rule_id, u.severity, r.source_id) {
            (Some(rule_id), Some(severity), Some(alarm_id)) => Some(RuleHint { rule_id, severity, alarm_id }),
            _ => None,
        };
        out.push(RepairOpened {
            request_id: r.id,
            company_id: u.company_id,
            project_id: r.project_id,
            device_id: r.device_id,
            reason: r.reason,
            source: r.source,
            source_id: r.source_id,
            rule,
            created_by: r.created_by,
            at: r.created_at,
        });
    }
    Ok(out)
}

/// The requests an alarm raised.
pub async fn repairs_of_alarm(tx: &mut sqlx::PgConnection, alarm: Uuid) -> AppResult<Vec<RepairRequest>> {
    Ok(repo::repairs_of_alarm(tx, alarm).await?)
}

/// The requests a work order carries.
pub async fn repairs_of_order(tx: &mut sqlx::PgConnection, work_order: Uuid) -> AppResult<Vec<RepairRequest>> {
    Ok(repo::repairs_of_order(tx, work_order).await?)
}

/// The work order's progress, on its requests.
pub async fn set_repairs_status(tx: &mut sqlx::PgConnection, work_order: Uuid, status: RepairStatus) -> AppResult<()> {
    repo::set_repairs_status(tx, work_order, status).await?;
    Ok(())
}

/// Resolves the alarms a completed work order answered, in its transaction; returns the
/// (device, rule) of each alarm resolved now, for `forget_resolved` after the commit.
pub async fn resolve_by_work_order(
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    alarms: &[Uuid],
    by: Uuid,
    resolution: &str,
    at: DateTime<Utc>,
) -> AppResult<Vec<(Uuid, Uuid)>> {
    let mut done = Vec::new();
    for id in alarms {
        let Some(a) = repo::get_alarm(&mut *tx, company_id, *id).await? else { continue };
        if a.state != AlarmState::Resolved && repo::resolve(&mut *tx, a.id, by, resolution, at).await? == 1 {
            done.push((a.device_id, a.rule_id));
        }
    }
    Ok(done)
}

/// The live state forgets alarms resolved by a work order (after its commit).
pub async fn forget_resolved(state: &AppState, resolved: &[(Uuid, Uuid)], at: DateTime<Utc>) -> AppResult<()> {
    for (device, rule) in resolved {
        crate::iot::telemetry::service::forget_alarm(state, *device, *rule, at).await?;
    }
    Ok(())
}

/// Repair requests of the caller's `repair:read` projects, newest first.
pub async fn repair_requests(
    state: &AppState,
    actor: &Actor,
    project_id: Option<Uuid>,
    device_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> AppResult<Vec<RepairRequest>> {
    let projects = actor.projects(Perm::RepairRead)?;
    if let Some(p) = project_id {
        actor.require_project(Perm::RepairRead, p)?;
    }
    if let Some(d) = device_id {
        crate::equipment::service::device_within(state, actor, Perm::RepairRead, d).await?;
    }
    let projects = projects.as_sql();
    Ok(repo::repair_requests(
        &state.db,
        actor.company_id,
        projects.as_deref(),
        project_id,
        device_id,
        after,
        limit as i64,
    )
    .await?)
}

// ---- rules -----------------------------------------------------------------------------

/// The company-wide rules and those of the caller's `alarm:read` projects, in id order.
pub async fn rules(state: &AppState, actor: &Actor, after: Option<Uuid>, limit: usize) -> AppResult<Vec<AlarmRule>> {
    let projects = actor.projects(Perm::AlarmRead)?.as_sql();
    Ok(repo::rules_of(&state.db, actor.company_id, projects.as_deref(), after, limit as i64).await?)
}

/// A rule the caller may read (company-wide, or of an `alarm:read` project).
pub async fn rule(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<AlarmRule> {
    let projects = actor.projects(Perm::AlarmRead)?;
    let r = repo::get_rule(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("alarmRule"))?;
    if r.project_id.is_some_and(|p| !projects.allows(p)) {
        return Err(AppError::not_found("alarmRule"));
    }
    Ok(r)
}

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// Checks a rule's fields for its kind; returns the rule to store.
fn validate(actor: &Actor, id: Uuid, i: RuleInput) -> AppResult<AlarmRule> {
    let name = types::text("name", &i.name, 60)?;
    if !(0..=86_400).contains(&i.escalate_after_secs) {
        return Err(invalid("escalateAfterSecs", "升级时间应在0到86400秒之间", "Escalation within 0 to 86400 seconds"));
    }
    if !(0..=7 * 86_400).contains(&i.duration_secs) {
        return Err(invalid("durationSecs", "持续时间应在0到7天之间", "Duration within 0 to 7 days"));
    }
    if i.kind.meters_only() && i.device_id.is_none() && !i.category.is_some_and(|c| c.is_meter()) {
        return Err(invalid(
            "category",
            "该规则仅适用于表计类设备",
            "This rule applies to meters: set a meter category",
        ));
    }
    let mut metric = String::new();
    let mut op = None;
    match i.kind {
        RuleKind::Threshold => {
            metric = i.metric.clone().unwrap_or_default();
            if !crate::iot::telemetry::model::metric_name_ok(&metric) {
                return Err(invalid(
                    "metric",
                    "指标名称应为字母、数字和下划线",
                    "Metric names are letters, digits and _",
                ));
            }
            op = Some(i.op.ok_or_else(|| invalid("op", "请选择比较方式（高于或低于）", "op is ABOVE or BELOW"))?);
            if !i.threshold.is_some_and(f64::is_finite) {
                return Err(invalid("threshold", "请填写阈值", "A threshold is required"));
            }
        }
        RuleKind::Fault
            if i.codes.len() > 50 || i.codes.iter().any(|c| !crate::iot::telemetry::model::event_code_ok(c)) =>
        {
            return Err(invalid("codes", "故障代码为1-32位字母数字", "Fault codes are 1-32 letters and digits"));
        }
        RuleKind::Offline if i.duration_secs < 60 => {
            return Err(invalid("durationSecs", "离线告警时间至少60秒", "Offline for at least 60 seconds"));
        }
        RuleKind::Jump if !i.factor.is_some_and(|k| k.is_finite() && k > 1.0 && k <= 1000.0) => {
            return Err(invalid("factor", "倍数应大于1", "The factor must be above 1"));
        }
        _ => {}
    }
    Ok(AlarmRule {
        id,
        company_id: actor.company_id,
        project_id: i.project_id,
        category: i.category,
        device_id: i.device_id,
        name,
        kind: i.kind,
        metric,
        op,
        threshold: if i.kind == RuleKind::Threshold { i.threshold } else { None },
        codes: if i.kind == RuleKind::Fault { i.codes } else { Vec::new() },
        duration_secs: i.duration_secs,
        factor: if i.kind == RuleKind::Jump { i.factor } else { None },
        severity: i.severity,
        escalate_after_secs: i.escalate_after_secs,
        enabled: i.enabled,
    })
}

/// Project rules need the project in scope; company-wide rules a company-wide grant.
fn check_rule_scope(actor: &Actor, project: Option<Uuid>) -> AppResult<()> {
    match project {
        Some(p) => actor.require_project(Perm::AlarmRuleWrite, p),
        None if actor.require(Perm::AlarmRuleWrite)? == &Scope::Company => Ok(()),
        None => Err(AppError::forbidden()),
    }
}

/// What a rule watches: its project (in scope) and its device (of that project).
async fn check_targets(state: &AppState, actor: &Actor, input: &RuleInput) -> AppResult<()> {
    check_rule_scope(actor, input.project_id)?;
    if let Some(p) = input.project_id {
        crate::org::company::service::project(state, actor, Perm::AlarmRuleWrite, p).await?;
    }
    if let Some(dev) = input.device_id {
        let d = crate::equipment::service::device_for_command(state, actor, dev).await?;
        if input.project_id != Some(d.project_id) {
            return Err(invalid("deviceId", "设备不属于该项目", "The device is not in this project"));
        }
    }
    Ok(())
}

/// Stores a rule in the mutation's transaction and makes ingest reload the rules.
async fn save_rule(state: &AppState, actor: &Actor, mut tx: Tx, row: &AlarmRule, action: &str) -> AppResult<()> {
    repo::upsert_rule(&mut *tx, row).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        action,
        "alarm_rule",
        Some(row.id),
        serde_json::json!({ "name": row.name, "enabled": row.enabled }),
    )
    .await?;
    tx.commit(&row.id).await?;
    state.part::<crate::iot::telemetry::service::IotCache>()?.forget_rules();
    Ok(())
}

/// A new rule (`alarm:rule:write` over its project, or company-wide for a rule of every project).
pub async fn create_rule(state: &AppState, actor: &Actor, retry: &Retry, input: RuleInput) -> AppResult<Uuid> {
    check_targets(state, actor, &input).await?;
    let row = validate(actor, Uuid::now_v7(), input)?;
    let tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    save_rule(state, actor, tx, &row, "alarm_rule.create").await?;
    Ok(row.id)
}

/// Thresholds, durations, severity, escalation and on/off of a rule; what it watches
/// (kind, project, category, device) is fixed: change that by a new rule.
pub async fn update_rule(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    input: RuleInput,
) -> AppResult<Uuid> {
    actor.require(Perm::AlarmRuleWrite)?;
    // what a rule watches never changes, so it is checked before the transaction (a waiting
    // retry holds no second connection)
    check_targets(state, actor, &input).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let e = repo::get_rule(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("alarmRule"))?;
    check_rule_scope(actor, e.project_id)?;
    if e.kind != input.kind
        || e.project_id != input.project_id
        || e.device_id != input.device_id
        || e.category != input.category
    {
        return Err(invalid("kind", "规则的类型和适用范围不可修改", "A rule's kind and scope cannot change"));
    }
    let row = validate(actor, id, input)?;
    save_rule(state, actor, tx, &row, "alarm_rule.update").await?;
    Ok(id)
}

/// The rules a new company starts with (onboarding, in its transaction); nothing when the
/// company has rules already.
pub async fn ensure_default_rules(tx: &mut sqlx::PgConnection, company_id: Uuid) -> AppResult<()> {
    if repo::has_rules(&mut *tx, company_id).await? {
        return Ok(());
    }
    for r in &default_rules(company_id) {
        repo::upsert_rule(&mut *tx, r).await?;
    }
    Ok(())
}
