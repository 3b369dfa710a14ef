//! 告警: storing what the rules decide, telling the on-duty staff, escalating to the
//! manager, and the people's side (acknowledge, resolve, rules, repair requests).

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::repo::{self, Alarm, NewAlarm, NewRepair};
use super::rules::{Action, DeviceRef, Rule, RuleKind, RuleRow};
use crate::app::AppState;
use crate::error::{AppError, AppResult, Msg};
use crate::events::Event;
use crate::notify::model::{Category, Channel, NewNotification, Priority};
use crate::rbac::model::{Actor, Perm, Scope};
use crate::types;

pub const EVENT_ALARM: &str = "ALARM_RAISED";

fn severity_zh(s: &str) -> &'static str {
    match s {
        "critical" => "紧急",
        "major" => "重要",
        _ => "一般",
    }
}

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

fn priority(severity: &str) -> Priority {
    if severity == "minor" { Priority::High } else { Priority::Critical }
}

/// Stores a rule's decision. Raising: the alarm (once per device and rule), a repair
/// request, the on-duty staff's push through the outbox — and the manager's SMS at once
/// when the rule escalates immediately (trapped passengers) — all in one transaction.
pub async fn apply(state: &AppState, d: &DeviceRef, rule: &Rule, action: &Action, now: DateTime<Utc>) -> AppResult<()> {
    match action {
        Action::Resolve { rule } => {
            repo::auto_resolve(&state.db, d.id, *rule, now).await?;
        }
        Action::Raise { value, detail, .. } => {
            let title = format!("【{}】{} {}", severity_zh(&rule.row.severity), d.code, rule.row.name);
            let id = Uuid::now_v7();
            let mut tx = state.db.begin().await?;
            let new = NewAlarm { id, device: d, rule: &rule.row, title: &title, detail, value: *value, at: now };
            if !repo::insert_alarm(&mut tx, &new).await? {
                return Ok(());
            }
            let reason = if detail.is_empty() { title.clone() } else { format!("{title}：{detail}") };
            repo::insert_repair(
                &mut *tx,
                &NewRepair {
                    company_id: d.company_id,
                    project_id: d.project_id,
                    device_id: d.id,
                    reason: &reason,
                    source: "alarm",
                    source_id: Some(id),
                    created_by: None,
                    at: now,
                },
            )
            .await?;
            let alarm = repo::get_alarm(&mut *tx, d.company_id, id).await?.ok_or(AppError::not_found("alarm"))?;
            let duty = repo::on_duty(&mut *tx, d.company_id, d.project_id).await?;
            let n = notice(&alarm, title.clone(), detail.clone(), priority(&rule.row.severity), None);
            crate::notify::service::enqueue(state, &mut tx, d.company_id, &duty, &n).await?;
            if rule.row.escalate_after_secs == 0 {
                escalate(state, &mut tx, &alarm, now).await?;
            }
            tx.commit().await?;
            let ev = Event { user_id: None, kind: EVENT_ALARM.into(), payload: payload(&alarm) };
            state.events.publish(&ev).await?;
        }
    }
    Ok(())
}

fn payload(a: &Alarm) -> serde_json::Value {
    serde_json::json!({
        "id": a.id, "projectId": a.project_id, "deviceId": a.device_id, "severity": a.severity,
        "kind": a.kind, "title": a.title, "detail": a.detail, "raisedAt": a.raised_at,
    })
}

/// SMS (and in-app) to the project's manager.
async fn escalate(state: &AppState, tx: &mut sqlx::PgConnection, a: &Alarm, now: DateTime<Utc>) -> AppResult<()> {
    if repo::mark_escalated(&mut *tx, a.id, now).await? == 0 {
        return Ok(());
    }
    let managers = repo::managers(&mut *tx, a.company_id, a.project_id).await?;
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
/// staff of open alarms every `remind_every_secs`.
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
            let duty = repo::on_duty(&mut *tx, a.company_id, a.project_id).await?;
            let n = notice(&a, format!("告警仍未确认 {}", a.title), a.detail.clone(), priority(&a.severity), None);
            crate::notify::service::enqueue(state, &mut tx, a.company_id, &duty, &n).await?;
            reminded += 1;
        }
        tx.commit().await?;
    }
    Ok((escalated, reminded))
}

// ---- people's side ---------------------------------------------------------------------

pub struct AlarmFilter {
    pub project_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub states: Option<Vec<String>>,
    pub before: Option<DateTime<Utc>>,
    pub first: Option<i32>,
}

pub async fn alarms(state: &AppState, actor: &Actor, f: AlarmFilter) -> AppResult<Vec<Alarm>> {
    let projects = actor.projects(Perm::AlarmRead)?.as_sql();
    if let (Some(p), Some(ps)) = (f.project_id, &projects)
        && !ps.contains(&p)
    {
        return Err(AppError::forbidden());
    }
    let q = repo::AlarmQuery {
        company_id: actor.company_id,
        projects,
        project_id: f.project_id,
        device_id: f.device_id,
        states: f.states,
        before: f.before,
        limit: types::page_size(f.first, 50, 200)? as i64,
    };
    Ok(repo::alarms(&state.db, &q).await?)
}

async fn alarm_for(state: &AppState, actor: &Actor, perm: Perm, id: Uuid) -> AppResult<Alarm> {
    let a = repo::get_alarm(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("alarm"))?;
    if actor.require_project(perm, a.project_id).is_err() {
        // another project's alarm does not exist for this caller
        return Err(AppError::not_found("alarm"));
    }
    Ok(a)
}

pub async fn alarm(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Alarm> {
    alarm_for(state, actor, Perm::AlarmRead, id).await
}

fn not_open() -> AppError {
    AppError::Conflict {
        field: "id".into(), msg: Msg::new("告警已被确认或已解除", "The alarm is no longer open")
    }
}

pub async fn acknowledge(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Alarm> {
    let a = alarm_for(state, actor, Perm::AlarmHandle, id).await?;
    let mut tx = state.db.begin().await?;
    if repo::acknowledge(&mut *tx, a.id, actor.user_id, state.clock.now()).await? == 0 {
        return Err(not_open());
    }
    crate::rbac::service::audit(&mut tx, actor, "alarm.acknowledge", "alarm", Some(a.id), serde_json::json!({}))
        .await?;
    tx.commit().await?;
    alarm(state, actor, id).await
}

/// Resolved by a person: the device's live state forgets the alarm, so the rule can raise
/// a new one if the condition comes back.
pub async fn resolve(state: &AppState, actor: &Actor, id: Uuid, resolution: &str) -> AppResult<Alarm> {
    let resolution = types::text("resolution", resolution, 500)?;
    let a = alarm_for(state, actor, Perm::AlarmHandle, id).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if repo::resolve(&mut *tx, a.id, actor.user_id, &resolution, now).await? == 0 {
        return Err(AppError::Conflict {
            field: "id".into(),
            msg: Msg::new("告警已解除", "The alarm is already resolved"),
        });
    }
    crate::rbac::service::audit(
        &mut tx,
        actor,
        "alarm.resolve",
        "alarm",
        Some(a.id),
        serde_json::json!({ "resolution": resolution }),
    )
    .await?;
    tx.commit().await?;
    for _ in 0..5 {
        let Some(old) = super::ingest::live_state(state, a.device_id).await? else { break };
        let mut live = old.clone();
        live.alarms.remove(&a.rule_id);
        live.breach_since.remove(&a.rule_id);
        live.derive_status();
        if live == old {
            break;
        }
        if super::ingest::swap_state(state, a.device_id, Some(&old), &live).await? {
            if live.status != old.status
                && let Some(d) = super::repo::devices_by_id(&state.db, &[a.device_id]).await?.get(&a.device_id)
            {
                super::ingest::publish_state(state, d, &live.status, now).await?;
            }
            break;
        }
    }
    alarm(state, actor, id).await
}

/// Subscribers to a project's alarms must be able to read them.
pub fn check_project(actor: &Actor, project: Uuid) -> AppResult<()> {
    actor.require_project(Perm::AlarmRead, project)
}

pub async fn repair_requests(
    state: &AppState,
    actor: &Actor,
    project_id: Option<Uuid>,
    device_id: Option<Uuid>,
    first: Option<i32>,
) -> AppResult<Vec<repo::RepairRequest>> {
    let projects = actor.projects(Perm::RepairRead)?.as_sql();
    if let (Some(p), Some(ps)) = (project_id, &projects)
        && !ps.contains(&p)
    {
        return Err(AppError::forbidden());
    }
    let limit = types::page_size(first, 50, 200)? as i64;
    Ok(repo::repair_requests(&state.db, actor.company_id, projects, project_id, device_id, limit).await?)
}

// ---- rules -----------------------------------------------------------------------------

pub async fn rules(state: &AppState, actor: &Actor) -> AppResult<Vec<RuleRow>> {
    let projects = actor.projects(Perm::AlarmRead)?.as_sql();
    Ok(repo::rules_of(&state.db, actor.company_id, projects).await?)
}

pub struct RuleInput {
    pub project_id: Option<Uuid>,
    pub category: Option<String>,
    pub device_id: Option<Uuid>,
    pub name: String,
    pub kind: RuleKind,
    pub metric: Option<String>,
    pub op: Option<String>,
    pub threshold: Option<f64>,
    pub codes: Vec<String>,
    pub duration_secs: i32,
    pub factor: Option<f64>,
    pub severity: String,
    pub escalate_after_secs: i32,
    pub enabled: bool,
}

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// Checks a rule's fields for its kind; returns the row to store.
fn validate(actor: &Actor, id: Uuid, i: RuleInput) -> AppResult<RuleRow> {
    let name = types::text("name", &i.name, 60)?;
    if !["critical", "major", "minor"].contains(&i.severity.as_str()) {
        return Err(invalid("severity", "级别应为 critical、major 或 minor", "Severity is critical, major or minor"));
    }
    if !(0..=86_400).contains(&i.escalate_after_secs) {
        return Err(invalid("escalateAfterSecs", "升级时间应在0到86400秒之间", "Escalation within 0 to 86400 seconds"));
    }
    if !(0..=7 * 86_400).contains(&i.duration_secs) {
        return Err(invalid("durationSecs", "持续时间应在0到7天之间", "Duration within 0 to 7 days"));
    }
    if let Some(c) = &i.category
        && !crate::equipment::model::CATEGORIES.contains(&c.as_str())
    {
        return Err(invalid("category", "设备类别不存在", "Unknown device category"));
    }
    let meters_only = matches!(i.kind, RuleKind::Jump | RuleKind::ReverseFlow | RuleKind::NightFlow);
    if meters_only && i.device_id.is_none() && !i.category.as_deref().is_some_and(crate::equipment::model::is_meter) {
        return Err(invalid(
            "category",
            "该规则仅适用于表计类设备",
            "This rule applies to meters: set a meter category",
        ));
    }
    let mut metric = String::new();
    let mut op = String::new();
    match i.kind {
        RuleKind::Threshold => {
            metric = i.metric.clone().unwrap_or_default();
            if !super::model::metric_name_ok(&metric) {
                return Err(invalid(
                    "metric",
                    "指标名称应为字母、数字和下划线",
                    "Metric names are letters, digits and _",
                ));
            }
            op = i.op.clone().unwrap_or_default();
            if op != "above" && op != "below" {
                return Err(invalid("op", "比较方式应为 above 或 below", "op is above or below"));
            }
            if !i.threshold.is_some_and(f64::is_finite) {
                return Err(invalid("threshold", "请填写阈值", "A threshold is required"));
            }
        }
        RuleKind::Fault if i.codes.len() > 50 || i.codes.iter().any(|c| !super::model::event_code_ok(c)) => {
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
    Ok(RuleRow {
        id,
        company_id: actor.company_id,
        project_id: i.project_id,
        category: i.category,
        device_id: i.device_id,
        name,
        kind: i.kind.code().to_owned(),
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

pub async fn save_rule(state: &AppState, actor: &Actor, id: Option<Uuid>, input: RuleInput) -> AppResult<RuleRow> {
    let existing = match id {
        Some(id) => {
            Some(repo::get_rule(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("alarmRule"))?)
        }
        None => None,
    };
    if let Some(e) = &existing {
        check_rule_scope(actor, e.project_id)?;
        // what a rule watches is fixed; change it by a new rule
        if e.kind != input.kind.code()
            || e.project_id != input.project_id
            || e.device_id != input.device_id
            || e.category != input.category
        {
            return Err(invalid("kind", "规则的类型和适用范围不可修改", "A rule's kind and scope cannot change"));
        }
    }
    check_rule_scope(actor, input.project_id)?;
    if let Some(p) = input.project_id {
        crate::org::service::project(state, actor, Perm::AlarmRuleWrite, p).await?;
    }
    if let Some(dev) = input.device_id {
        let d = crate::equipment::service::device_for_command(state, actor, dev).await?;
        if input.project_id != Some(d.project_id) {
            return Err(invalid("deviceId", "设备不属于该项目", "The device is not in this project"));
        }
    }
    let row = validate(actor, id.unwrap_or_else(Uuid::now_v7), input)?;
    let mut tx = state.db.begin().await?;
    repo::upsert_rule(&mut *tx, &row).await?;
    let action = if existing.is_some() { "alarm_rule.update" } else { "alarm_rule.create" };
    crate::rbac::service::audit(
        &mut tx,
        actor,
        action,
        "alarm_rule",
        Some(row.id),
        serde_json::json!({ "name": row.name, "enabled": row.enabled }),
    )
    .await?;
    tx.commit().await?;
    state.iot.forget_rules();
    Ok(row)
}

/// The rules a new company starts with (managers tune them per project).
pub async fn ensure_default_rules(db: &mut sqlx::PgConnection, company_id: Uuid) -> AppResult<()> {
    if repo::has_rules(&mut *db, company_id).await? {
        return Ok(());
    }
    let base = |name: &str, kind: RuleKind, category: Option<&str>, severity: &str| RuleRow {
        id: Uuid::now_v7(),
        company_id,
        project_id: None,
        category: category.map(str::to_owned),
        device_id: None,
        name: name.to_owned(),
        kind: kind.code().to_owned(),
        metric: String::new(),
        op: String::new(),
        threshold: None,
        codes: Vec::new(),
        duration_secs: 0,
        factor: None,
        severity: severity.to_owned(),
        escalate_after_secs: 900,
        enabled: true,
    };
    let rules = [
        RuleRow {
            codes: vec!["TRAPPED".into()],
            escalate_after_secs: 0,
            ..base("电梯困人", RuleKind::Fault, Some("elevator"), "critical")
        },
        base("设备故障", RuleKind::Fault, None, "major"),
        RuleRow { duration_secs: 600, ..base("设备离线超过10分钟", RuleKind::Offline, None, "major") },
        RuleRow {
            metric: "pressureMpa".into(),
            op: "below".into(),
            threshold: Some(0.15),
            duration_secs: 60,
            ..base("水泵出水压力过低", RuleKind::Threshold, Some("water_pump"), "major")
        },
        RuleRow {
            metric: "motorTempC".into(),
            op: "above".into(),
            threshold: Some(90.0),
            duration_secs: 60,
            ..base("电梯曳引机温度过高", RuleKind::Threshold, Some("elevator"), "major")
        },
        RuleRow {
            metric: "pressureMpa".into(),
            op: "below".into(),
            threshold: Some(0.8),
            duration_secs: 300,
            ..base("消防管网压力不足", RuleKind::Threshold, Some("fire_equipment"), "critical")
        },
        RuleRow { factor: Some(5.0), ..base("水表读数异常跳变", RuleKind::Jump, Some("water_meter"), "minor") },
        base("水表倒转", RuleKind::ReverseFlow, Some("water_meter"), "minor"),
        RuleRow {
            duration_secs: 2 * 3600,
            ..base("夜间持续用水（疑似漏水）", RuleKind::NightFlow, Some("water_meter"), "major")
        },
        RuleRow {
            factor: Some(5.0), ..base("电表读数异常跳变", RuleKind::Jump, Some("electricity_meter"), "minor")
        },
    ];
    for r in &rules {
        repo::upsert_rule(&mut *db, r).await?;
    }
    Ok(())
}
