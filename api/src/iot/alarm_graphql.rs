//! Alarms, rules, repair requests, history and elevator state over GraphQL.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::Stream;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::alarm::{self, EVENT_ALARM};
use super::repo;
use super::rules::{RuleKind, RuleRow};
use crate::graphql::CtxExt;
use crate::rbac::graphql::parse_id;
use crate::rbac::model::Perm;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    /// 待确认
    Open,
    /// 已确认，处理中
    Acknowledged,
    /// 已解除 (by a person, or automatically when the condition cleared)
    Resolved,
}

impl AlarmState {
    fn code(self) -> &'static str {
        match self {
            AlarmState::Open => "open",
            AlarmState::Acknowledged => "acknowledged",
            AlarmState::Resolved => "resolved",
        }
    }
    fn parse(s: &str) -> AlarmState {
        match s {
            "acknowledged" => AlarmState::Acknowledged,
            "resolved" => AlarmState::Resolved,
            _ => AlarmState::Open,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AlarmSeverity {
    Critical,
    Major,
    Minor,
}

impl AlarmSeverity {
    fn code(self) -> &'static str {
        match self {
            AlarmSeverity::Critical => "critical",
            AlarmSeverity::Major => "major",
            AlarmSeverity::Minor => "minor",
        }
    }
    fn parse(s: &str) -> AlarmSeverity {
        match s {
            "critical" => AlarmSeverity::Critical,
            "minor" => AlarmSeverity::Minor,
            _ => AlarmSeverity::Major,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AlarmRuleKind {
    /// metric above/below a threshold for `durationSecs`
    Threshold,
    /// fault event codes (`codes`; empty: any code no other rule names)
    Fault,
    /// offline for `durationSecs`
    Offline,
    /// meter reading increase beyond `factor` × its trailing mean
    Jump,
    /// meter reading going backwards
    ReverseFlow,
    /// meter turning all night (00:00–05:00) for `durationSecs`: a leak
    NightFlow,
}

impl AlarmRuleKind {
    fn to_kind(self) -> RuleKind {
        match self {
            AlarmRuleKind::Threshold => RuleKind::Threshold,
            AlarmRuleKind::Fault => RuleKind::Fault,
            AlarmRuleKind::Offline => RuleKind::Offline,
            AlarmRuleKind::Jump => RuleKind::Jump,
            AlarmRuleKind::ReverseFlow => RuleKind::ReverseFlow,
            AlarmRuleKind::NightFlow => RuleKind::NightFlow,
        }
    }
    fn from_code(s: &str) -> AlarmRuleKind {
        match RuleKind::parse(s) {
            Some(RuleKind::Fault) => AlarmRuleKind::Fault,
            Some(RuleKind::Offline) => AlarmRuleKind::Offline,
            Some(RuleKind::Jump) => AlarmRuleKind::Jump,
            Some(RuleKind::ReverseFlow) => AlarmRuleKind::ReverseFlow,
            Some(RuleKind::NightFlow) => AlarmRuleKind::NightFlow,
            _ => AlarmRuleKind::Threshold,
        }
    }
}

/// 设备告警
#[derive(SimpleObject, Clone)]
pub struct Alarm {
    pub id: ID,
    pub project_id: ID,
    pub device_id: ID,
    pub rule_id: ID,
    pub severity: AlarmSeverity,
    pub kind: AlarmRuleKind,
    pub title: String,
    pub detail: String,
    pub value: Option<f64>,
    pub state: AlarmState,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<ID>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// empty when resolved automatically
    pub resolved_by: Option<ID>,
    pub resolution: String,
    /// when the manager was told by SMS
    pub escalated_at: Option<DateTime<Utc>>,
    pub reminders: i32,
}

fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

impl From<repo::Alarm> for Alarm {
    fn from(a: repo::Alarm) -> Self {
        Alarm {
            id: id(a.id),
            project_id: id(a.project_id),
            device_id: id(a.device_id),
            rule_id: id(a.rule_id),
            severity: AlarmSeverity::parse(&a.severity),
            kind: AlarmRuleKind::from_code(&a.kind),
            title: a.title,
            detail: a.detail,
            value: a.value,
            state: AlarmState::parse(&a.state),
            raised_at: a.raised_at,
            acknowledged_at: a.acknowledged_at,
            acknowledged_by: a.acknowledged_by.map(id),
            resolved_at: a.resolved_at,
            resolved_by: a.resolved_by.map(id),
            resolution: a.resolution,
            escalated_at: a.escalated_at,
            reminders: a.reminders,
        }
    }
}

/// 告警规则
#[derive(SimpleObject)]
pub struct AlarmRule {
    pub id: ID,
    /// empty: every project of the company
    pub project_id: Option<ID>,
    pub category: Option<String>,
    pub device_id: Option<ID>,
    pub name: String,
    pub kind: AlarmRuleKind,
    pub metric: String,
    /// `above` or `below`
    pub op: String,
    pub threshold: Option<f64>,
    pub codes: Vec<String>,
    pub duration_secs: i32,
    pub factor: Option<f64>,
    pub severity: AlarmSeverity,
    /// not acknowledged within this → SMS to the project manager (0: at once)
    pub escalate_after_secs: i32,
    pub enabled: bool,
}

impl From<RuleRow> for AlarmRule {
    fn from(r: RuleRow) -> Self {
        AlarmRule {
            id: id(r.id),
            project_id: r.project_id.map(id),
            category: r.category,
            device_id: r.device_id.map(id),
            name: r.name,
            kind: AlarmRuleKind::from_code(&r.kind),
            metric: r.metric,
            op: r.op,
            threshold: r.threshold,
            codes: r.codes,
            duration_secs: r.duration_secs,
            factor: r.factor,
            severity: AlarmSeverity::parse(&r.severity),
            escalate_after_secs: r.escalate_after_secs,
            enabled: r.enabled,
        }
    }
}

/// 报修需求: what the work-order module turns into work orders.
#[derive(SimpleObject)]
pub struct RepairRequest {
    pub id: ID,
    pub project_id: ID,
    pub device_id: ID,
    pub reason: String,
    /// alarm | maintenance | patrol | manual
    pub source: String,
    pub source_id: Option<ID>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct TrendPoint {
    /// start of the hour or day (Shanghai)
    pub bucket: DateTime<Utc>,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub count: i64,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TrendBucket {
    Hour,
    Day,
}

/// 抄表: a meter's readings over a billing period.
#[derive(SimpleObject)]
pub struct MeterReading {
    pub device_id: ID,
    pub code: String,
    pub name: String,
    pub category: String,
    pub house_id: Option<ID>,
    pub start_reading: Option<Decimal>,
    pub end_reading: Option<Decimal>,
    pub multiplier: Decimal,
    /// (end − start) × multiplier; empty without readings or when the meter went backwards
    pub usage: Option<Decimal>,
}

#[derive(SimpleObject)]
pub struct ComponentHealth {
    /// motor | car | ropes | doors | brakes
    pub component: String,
    /// ok | warning | fault | unknown
    pub health: String,
    pub value: Option<f64>,
}

/// 电梯运行状态
#[derive(SimpleObject)]
pub struct ElevatorState {
    /// running | stopped | inspection | fault | unknown
    pub running_state: String,
    pub floor: Option<i32>,
    pub door_open: Option<bool>,
    /// 困人: the most urgent alarm there is
    pub trapped: bool,
    pub status: String,
    pub last_seen: Option<DateTime<Utc>>,
    pub components: Vec<ComponentHealth>,
}

#[derive(Default)]
pub struct AlarmQuery;

#[Object]
impl AlarmQuery {
    /// Newest first; `before` pages back by `raisedAt`.
    #[graphql(guard = "Perm::AlarmRead")]
    #[allow(clippy::too_many_arguments)]
    async fn alarms(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        device_id: Option<ID>,
        states: Option<Vec<AlarmState>>,
        before: Option<DateTime<Utc>>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<Alarm>> {
        let actor = ctx.actor()?;
        let f = alarm::AlarmFilter {
            project_id: project_id.as_ref().map(|p| parse_id("projectId", p)).transpose()?,
            device_id: device_id.as_ref().map(|p| parse_id("deviceId", p)).transpose()?,
            states: states.map(|s| s.into_iter().map(|x| x.code().to_owned()).collect()),
            before,
            first,
        };
        Ok(alarm::alarms(ctx.state(), &actor, f).await?.into_iter().map(Alarm::from).collect())
    }

    #[graphql(guard = "Perm::AlarmRead")]
    async fn alarm(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Alarm> {
        let actor = ctx.actor()?;
        Ok(alarm::alarm(ctx.state(), &actor, parse_id("id", &id)?).await?.into())
    }

    /// The company's rules and those of the caller's projects.
    #[graphql(guard = "Perm::AlarmRead")]
    async fn alarm_rules(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AlarmRule>> {
        let actor = ctx.actor()?;
        Ok(alarm::rules(ctx.state(), &actor).await?.into_iter().map(AlarmRule::from).collect())
    }

    #[graphql(guard = "Perm::RepairRead")]
    async fn repair_requests(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        device_id: Option<ID>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<RepairRequest>> {
        let actor = ctx.actor()?;
        let p = project_id.as_ref().map(|p| parse_id("projectId", p)).transpose()?;
        let d = device_id.as_ref().map(|p| parse_id("deviceId", p)).transpose()?;
        Ok(alarm::repair_requests(ctx.state(), &actor, p, d, first)
            .await?
            .into_iter()
            .map(|r| RepairRequest {
                id: id(r.id),
                project_id: id(r.project_id),
                device_id: id(r.device_id),
                reason: r.reason,
                source: r.source,
                source_id: r.source_id.map(id),
                status: r.status,
                created_at: r.created_at,
            })
            .collect())
    }

    /// 趋势: hourly (≤ 31 days) or daily (≤ 92 days) aggregates of one metric.
    #[graphql(guard = "Perm::EquipmentRead")]
    async fn device_trend(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        metric: String,
        bucket: TrendBucket,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> async_graphql::Result<Vec<TrendPoint>> {
        let actor = ctx.actor()?;
        let d = parse_id("deviceId", &device_id)?;
        let rows = super::service::trend(ctx.state(), &actor, d, &metric, bucket == TrendBucket::Day, from, to).await?;
        Ok(rows
            .into_iter()
            .map(|p| TrendPoint { bucket: p.bucket, avg: p.avg, min: p.min, max: p.max, count: p.count })
            .collect())
    }

    /// 抄表: each meter of a project over the Shanghai days `from`…`to` (inclusive).
    #[graphql(guard = "Perm::EquipmentRead")]
    async fn meter_readings(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        category: Option<String>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> async_graphql::Result<Vec<MeterReading>> {
        let actor = ctx.actor()?;
        let p = parse_id("projectId", &project_id)?;
        let rows = super::service::meter_readings(ctx.state(), &actor, p, category.as_deref(), from, to).await?;
        Ok(rows
            .into_iter()
            .map(|m| MeterReading {
                device_id: id(m.device_id),
                code: m.code,
                name: m.name,
                category: m.category,
                house_id: m.house_id.map(id),
                start_reading: m.start_reading,
                end_reading: m.end_reading,
                multiplier: m.multiplier,
                usage: m.usage,
            })
            .collect())
    }

    #[graphql(guard = "Perm::EquipmentRead")]
    async fn elevator_state(&self, ctx: &Context<'_>, device_id: ID) -> async_graphql::Result<ElevatorState> {
        let actor = ctx.actor()?;
        let e = super::service::elevator_state(ctx.state(), &actor, parse_id("deviceId", &device_id)?).await?;
        Ok(ElevatorState {
            running_state: e.running.to_owned(),
            floor: e.floor,
            door_open: e.door_open,
            trapped: e.trapped,
            status: e.live.status,
            last_seen: e.live.last_seen,
            components: e
                .components
                .into_iter()
                .map(|(c, h, v)| ComponentHealth { component: c.into(), health: h.into(), value: v })
                .collect(),
        })
    }
}

#[derive(InputObject)]
pub struct AlarmRuleInput {
    /// empty: every project (needs a company-wide grant)
    pub project_id: Option<ID>,
    pub category: Option<String>,
    pub device_id: Option<ID>,
    pub name: String,
    pub kind: AlarmRuleKind,
    pub metric: Option<String>,
    /// `above` or `below`
    pub op: Option<String>,
    pub threshold: Option<f64>,
    #[graphql(default)]
    pub codes: Vec<String>,
    #[graphql(default)]
    pub duration_secs: i32,
    pub factor: Option<f64>,
    pub severity: AlarmSeverity,
    #[graphql(default = 900)]
    pub escalate_after_secs: i32,
    #[graphql(default = true)]
    pub enabled: bool,
}

impl AlarmRuleInput {
    fn into_input(self) -> async_graphql::Result<alarm::RuleInput> {
        Ok(alarm::RuleInput {
            project_id: self.project_id.as_ref().map(|p| parse_id("projectId", p)).transpose()?,
            category: self.category,
            device_id: self.device_id.as_ref().map(|p| parse_id("deviceId", p)).transpose()?,
            name: self.name,
            kind: self.kind.to_kind(),
            metric: self.metric,
            op: self.op,
            threshold: self.threshold,
            codes: self.codes,
            duration_secs: self.duration_secs,
            factor: self.factor,
            severity: self.severity.code().to_owned(),
            escalate_after_secs: self.escalate_after_secs,
            enabled: self.enabled,
        })
    }
}

#[derive(Default)]
pub struct AlarmMutation;

#[Object]
impl AlarmMutation {
    /// 确认告警: stops the escalation and the reminders.
    #[graphql(guard = "Perm::AlarmHandle")]
    async fn acknowledge_alarm(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Alarm> {
        let actor = ctx.actor()?;
        Ok(alarm::acknowledge(ctx.state(), &actor, parse_id("id", &id)?).await?.into())
    }

    /// 解除告警 with what was done.
    #[graphql(guard = "Perm::AlarmHandle")]
    async fn resolve_alarm(&self, ctx: &Context<'_>, id: ID, resolution: String) -> async_graphql::Result<Alarm> {
        let actor = ctx.actor()?;
        Ok(alarm::resolve(ctx.state(), &actor, parse_id("id", &id)?, &resolution).await?.into())
    }

    #[graphql(guard = "Perm::AlarmRuleWrite")]
    async fn create_alarm_rule(&self, ctx: &Context<'_>, input: AlarmRuleInput) -> async_graphql::Result<AlarmRule> {
        let actor = ctx.actor()?;
        Ok(alarm::save_rule(ctx.state(), &actor, None, input.into_input()?).await?.into())
    }

    /// Thresholds, durations, severity, escalation and on/off; what the rule watches stays.
    #[graphql(guard = "Perm::AlarmRuleWrite")]
    async fn update_alarm_rule(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: AlarmRuleInput,
    ) -> async_graphql::Result<AlarmRule> {
        let actor = ctx.actor()?;
        Ok(alarm::save_rule(ctx.state(), &actor, Some(parse_id("id", &id)?), input.into_input()?).await?.into())
    }
}

/// A new alarm, as pushed to subscribers.
#[derive(SimpleObject, Clone)]
pub struct AlarmRaised {
    pub id: ID,
    pub project_id: ID,
    pub device_id: ID,
    pub severity: AlarmSeverity,
    pub kind: AlarmRuleKind,
    pub title: String,
    pub detail: String,
    pub raised_at: DateTime<Utc>,
}

fn raised(p: &serde_json::Value) -> Option<AlarmRaised> {
    let uuid = |k: &str| p[k].as_str().and_then(|s| s.parse::<Uuid>().ok()).map(id);
    Some(AlarmRaised {
        id: uuid("id")?,
        project_id: uuid("projectId")?,
        device_id: uuid("deviceId")?,
        severity: AlarmSeverity::parse(p["severity"].as_str()?),
        kind: AlarmRuleKind::from_code(p["kind"].as_str()?),
        title: p["title"].as_str()?.to_owned(),
        detail: p["detail"].as_str()?.to_owned(),
        raised_at: serde_json::from_value(p["raisedAt"].clone()).ok()?,
    })
}

#[derive(Default)]
pub struct AlarmSubscription;

#[Subscription]
impl AlarmSubscription {
    /// New alarms of a project, from whichever replica raised them.
    async fn alarm_raised(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = AlarmRaised> + use<>> {
        let actor = ctx.actor()?;
        let project = parse_id("projectId", &project_id)?;
        alarm::check_project(&actor, project)?;
        let rx = ctx.state().events.subscribe();
        let project = project.to_string();
        Ok(futures_util::stream::unfold(rx, move |mut rx| {
            let project = project.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(ev)
                            if ev.kind == EVENT_ALARM && ev.payload["projectId"].as_str() == Some(project.as_str()) =>
                        {
                            if let Some(a) = raised(&ev.payload) {
                                return Some((a, rx));
                            }
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        }))
    }
}
