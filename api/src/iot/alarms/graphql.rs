//! Alarms, alarm rules and repair requests over GraphQL, and new alarms as they are raised.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use uuid::Uuid;

use super::model::{self, AlarmFilter, EVENT_ALARM, RuleInput};
use super::service;
use crate::equipment::graphql::DeviceCategory;
use crate::kit::gql::{Conn, StateExt, parse_id, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::rbac::graphql::{ActorExt, LiveGrant};
use crate::rbac::model::Perm;

/// 告警状态 where an alarm stands: OPEN → ACKNOWLEDGED → RESOLVED.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::AlarmState")]
pub enum AlarmState {
    /// 待确认 raised, nobody has acknowledged it (reminders and escalation run)
    Open,
    /// 已确认 someone is handling it
    Acknowledged,
    /// 已解除 by a person, or by itself when the condition cleared
    Resolved,
}

/// 告警级别 how urgent an alarm is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Severity")]
pub enum AlarmSeverity {
    /// 紧急 pushed as critical (never muted)
    Critical,
    /// 重要 pushed as critical (never muted)
    Major,
    /// 一般 pushed as high priority
    Minor,
}

/// 规则类型 what a rule watches.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::RuleKind")]
pub enum AlarmRuleKind {
    /// a metric above/below a threshold for `durationSecs`
    Threshold,
    /// fault event codes (`codes`; empty: any code no other rule names)
    Fault,
    /// offline for `durationSecs`
    Offline,
    /// a meter reading's increase beyond `factor` × its trailing mean increase
    Jump,
    /// a meter reading going backwards
    ReverseFlow,
    /// a meter turning all night (00:00–05:00 Shanghai) for `durationSecs`: a leak
    NightFlow,
}

/// 比较方式 of a threshold rule.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::RuleOp")]
pub enum AlarmRuleOp {
    /// the metric is above the threshold
    Above,
    /// the metric is below the threshold
    Below,
}

/// 报修来源 where a repair request came from.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::RepairSource")]
pub enum RepairSource {
    /// a device alarm
    Alarm,
    /// a failed maintenance checklist item
    Maintenance,
    /// a patrol
    Patrol,
    /// reported by a person
    Manual,
}

/// 报修状态 where a repair request stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::RepairStatus")]
pub enum RepairStatus {
    /// waiting for a work order
    Open,
    /// a work order is on it
    InProgress,
    /// done
    Closed,
}

/// 设备告警 an alarm a rule raised on a device.
#[derive(SimpleObject)]
pub struct Alarm {
    /// the alarm's id
    pub id: ID,
    /// the device's project
    pub project_id: ID,
    /// the device
    pub device_id: ID,
    /// the rule that raised it
    pub rule_id: ID,
    /// how urgent it is
    pub severity: AlarmSeverity,
    /// what the rule watches
    pub kind: AlarmRuleKind,
    /// 【级别】device code and rule name
    pub title: String,
    /// what was seen, e.g. `pressureMpa = 0.1 低于 0.15`
    pub detail: String,
    /// the value that broke the rule (threshold: the metric; meters: the increase)
    pub value: Option<f64>,
    /// where it stands
    pub state: AlarmState,
    /// when it was raised
    pub raised_at: DateTime<Utc>,
    /// when someone acknowledged it
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// who acknowledged it (the resolver, when resolved without acknowledging)
    pub acknowledged_by: Option<ID>,
    /// when it was resolved
    pub resolved_at: Option<DateTime<Utc>>,
    /// who resolved it; empty when it resolved itself
    pub resolved_by: Option<ID>,
    /// what was done; `auto` when it resolved itself
    pub resolution: String,
    /// when the manager was told by SMS
    pub escalated_at: Option<DateTime<Utc>>,
    /// how many reminders the on-duty staff got
    pub reminders: i32,
}

impl From<model::Alarm> for Alarm {
    fn from(a: model::Alarm) -> Self {
        Alarm {
            id: to_id(a.id),
            project_id: to_id(a.project_id),
            device_id: to_id(a.device_id),
            rule_id: to_id(a.rule_id),
            severity: a.severity.into(),
            kind: a.kind.into(),
            title: a.title,
            detail: a.detail,
            value: a.value,
            state: a.state.into(),
            raised_at: a.raised_at,
            acknowledged_at: a.acknowledged_at,
            acknowledged_by: a.acknowledged_by.map(to_id),
            resolved_at: a.resolved_at,
            resolved_by: a.resolved_by.map(to_id),
            resolution: a.resolution,
            escalated_at: a.escalated_at,
            reminders: a.reminders,
        }
    }
}

/// 告警规则 what raises an alarm.
#[derive(SimpleObject)]
pub struct AlarmRule {
    /// the rule's id
    pub id: ID,
    /// the project it watches; empty: every project of the company
    pub project_id: Option<ID>,
    /// only devices of this category; empty: all
    pub category: Option<DeviceCategory>,
    /// only this device; empty: all that match
    pub device_id: Option<ID>,
    /// the name alarms carry
    pub name: String,
    /// what it watches
    pub kind: AlarmRuleKind,
    /// THRESHOLD: the metric watched (empty otherwise)
    pub metric: String,
    /// THRESHOLD: above or below (empty otherwise)
    pub op: Option<AlarmRuleOp>,
    /// THRESHOLD: the threshold, in the metric's unit
    pub threshold: Option<f64>,
    /// FAULT: the codes it answers to (empty: any code no other fault rule names)
    pub codes: Vec<String>,
    /// seconds the condition must hold before an alarm (OFFLINE: seconds offline)
    pub duration_secs: i32,
    /// JUMP: how many times the trailing mean increase counts as a jump
    pub factor: Option<f64>,
    /// the severity of its alarms
    pub severity: AlarmSeverity,
    /// seconds without acknowledgement before the project manager gets an SMS (0: at once)
    pub escalate_after_secs: i32,
    /// switched on
    pub enabled: bool,
}

impl From<model::AlarmRule> for AlarmRule {
    fn from(r: model::AlarmRule) -> Self {
        AlarmRule {
            id: to_id(r.id),
            project_id: r.project_id.map(to_id),
            category: r.category.map(Into::into),
            device_id: r.device_id.map(to_id),
            name: r.name,
            kind: r.kind.into(),
            metric: r.metric,
            op: r.op.map(Into::into),
            threshold: r.threshold,
            codes: r.codes,
            duration_secs: r.duration_secs,
            factor: r.factor,
            severity: r.severity.into(),
            escalate_after_secs: r.escalate_after_secs,
            enabled: r.enabled,
        }
    }
}

/// 报修需求 a device needs repair; the work-order module turns requests into work orders.
#[derive(SimpleObject)]
pub struct RepairRequest {
    /// the request's id
    pub id: ID,
    /// the device's project
    pub project_id: ID,
    /// the device to repair
    pub device_id: ID,
    /// why (an alarm's title and detail, a failed checklist item …)
    pub reason: String,
    /// where it came from
    pub source: RepairSource,
    /// the alarm, maintenance task or patrol it came from
    pub source_id: Option<ID>,
    /// where it stands
    pub status: RepairStatus,
    /// who reported it; empty when the system did
    pub created_by: Option<ID>,
    /// when it was recorded
    pub created_at: DateTime<Utc>,
    /// the work order it opened or joined
    pub work_order_id: Option<ID>,
}

impl From<model::RepairRequest> for RepairRequest {
    fn from(r: model::RepairRequest) -> Self {
        RepairRequest {
            id: to_id(r.id),
            project_id: to_id(r.project_id),
            device_id: to_id(r.device_id),
            reason: r.reason,
            source: r.source.into(),
            source_id: r.source_id.map(to_id),
            status: r.status.into(),
            created_by: r.created_by.map(to_id),
            created_at: r.created_at,
            work_order_id: r.work_order_id.map(to_id),
        }
    }
}

pub async fn load_alarm(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Alarm> {
    let actor = ctx.actor()?;
    Ok(service::alarm(ctx.state(), &actor, id).await?.into())
}

pub async fn load_alarm_rule(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<AlarmRule> {
    let actor = ctx.actor()?;
    Ok(service::rule(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The alarm a mutation changed.
    AlarmPayload, alarm: Alarm, load_alarm, "the alarm as it is now"
);
crate::object_payload!(
    /// The rule a mutation created or changed.
    AlarmRulePayload, rule: AlarmRule, load_alarm_rule, "the rule as it is now"
);

#[derive(Default)]
pub struct AlarmQuery;

#[Object]
impl AlarmQuery {
    /// Alarms of the caller's projects (`alarm:read`), newest first.
    #[graphql(guard = "Perm::AlarmRead")]
    async fn alarms(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only this project")] project_id: Option<ID>,
        #[graphql(desc = "only this device")] device_id: Option<ID>,
        #[graphql(desc = "only these states")] states: Option<Vec<AlarmState>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Alarm>> {
        let actor = ctx.actor()?;
        let page = Page::<(DateTime<Utc>, Uuid)>::new(ctx, first, after)?;
        let f = AlarmFilter {
            project_id: parse_opt_id("projectId", project_id.as_ref())?,
            device_id: parse_opt_id("deviceId", device_id.as_ref())?,
            states: states.map(|s| s.into_iter().map(Into::into).collect()),
        };
        let rows = service::alarms(ctx.state(), &actor, &f, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |a| (a.raised_at, a.id), Alarm::from))
    }

    /// An alarm of the caller's projects (`alarm:read`).
    #[graphql(guard = "Perm::AlarmRead")]
    async fn alarm(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Alarm> {
        load_alarm(ctx, parse_id("id", &id)?).await
    }

    /// The company-wide rules and those of the caller's projects (`alarm:read`), in id order.
    #[graphql(guard = "Perm::AlarmRead")]
    async fn alarm_rules(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<AlarmRule>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let rows = service::rules(ctx.state(), &actor, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| r.id, AlarmRule::from))
    }

    /// A rule: company-wide, or of one of the caller's projects (`alarm:read`).
    #[graphql(guard = "Perm::AlarmRead")]
    async fn alarm_rule(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<AlarmRule> {
        load_alarm_rule(ctx, parse_id("id", &id)?).await
    }

    /// 报修需求 of the caller's projects (`repair:read`), newest first.
    #[graphql(guard = "Perm::RepairRead")]
    async fn repair_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only this project")] project_id: Option<ID>,
        #[graphql(desc = "only this device")] device_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<RepairRequest>> {
        let actor = ctx.actor()?;
        let page = Page::<(DateTime<Utc>, Uuid)>::new(ctx, first, after)?;
        let p = parse_opt_id("projectId", project_id.as_ref())?;
        let d = parse_opt_id("deviceId", device_id.as_ref())?;
        let rows = service::repair_requests(ctx.state(), &actor, p, d, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| (r.created_at, r.id), RepairRequest::from))
    }
}

/// The alarm someone takes on.
#[derive(InputObject)]
pub struct AcknowledgeAlarmInput {
    /// an OPEN alarm of the caller's projects
    pub alarm_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The alarm someone resolved, and how.
#[derive(InputObject)]
pub struct ResolveAlarmInput {
    /// an alarm not yet resolved, of the caller's projects
    pub alarm_id: ID,
    /// what was done (up to 500 characters)
    pub resolution: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What a rule watches and when it raises an alarm.
#[derive(InputObject)]
pub struct AlarmRuleInput {
    /// the project it watches; empty: every project (needs a company-wide grant)
    pub project_id: Option<ID>,
    /// only devices of this category (JUMP, REVERSE_FLOW, NIGHT_FLOW: a meter category)
    pub category: Option<DeviceCategory>,
    /// only this device (of the project)
    pub device_id: Option<ID>,
    /// the name alarms carry (up to 60 characters)
    pub name: String,
    /// what it watches
    pub kind: AlarmRuleKind,
    /// THRESHOLD: the metric (letters, digits and `_`, as devices send it)
    pub metric: Option<String>,
    /// THRESHOLD: above or below the threshold
    pub op: Option<AlarmRuleOp>,
    /// THRESHOLD: the threshold, in the metric's unit
    pub threshold: Option<f64>,
    /// FAULT: the codes it answers to (up to 50; empty: any code no other fault rule names)
    #[graphql(default)]
    pub codes: Vec<String>,
    /// seconds the condition must hold (0 to 7 days; OFFLINE: at least 60)
    #[graphql(default)]
    pub duration_secs: i32,
    /// JUMP: how many times the trailing mean increase counts as a jump (above 1, up to 1000)
    pub factor: Option<f64>,
    /// the severity of its alarms
    pub severity: AlarmSeverity,
    /// seconds without acknowledgement before the project manager gets an SMS (0 to 86400; 0: at once)
    #[graphql(default = 900)]
    pub escalate_after_secs: i32,
    /// switched on
    #[graphql(default = true)]
    pub enabled: bool,
}

impl AlarmRuleInput {
    fn into_input(self) -> async_graphql::Result<RuleInput> {
        Ok(RuleInput {
            project_id: parse_opt_id("projectId", self.project_id.as_ref())?,
            category: self.category.map(Into::into),
            device_id: parse_opt_id("deviceId", self.device_id.as_ref())?,
            name: self.name,
            kind: self.kind.into(),
            metric: self.metric,
            op: self.op.map(Into::into),
            threshold: self.threshold,
            codes: self.codes,
            duration_secs: self.duration_secs,
            factor: self.factor,
            severity: self.severity.into(),
            escalate_after_secs: self.escalate_after_secs,
            enabled: self.enabled,
        })
    }
}

/// A new alarm rule.
#[derive(InputObject)]
pub struct CreateAlarmRuleInput {
    /// the new rule
    pub rule: AlarmRuleInput,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// New settings of an alarm rule.
#[derive(InputObject)]
pub struct UpdateAlarmRuleInput {
    /// the rule to change
    pub alarm_rule_id: ID,
    /// the rule's new settings; kind, project, category and device must stay as they are
    pub rule: AlarmRuleInput,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct AlarmMutation;

#[Object]
impl AlarmMutation {
    /// 确认告警: stops the escalation and the reminders (`alarm:handle`).
    #[graphql(guard = "Perm::AlarmHandle")]
    async fn acknowledge_alarm(
        &self,
        ctx: &Context<'_>,
        input: AcknowledgeAlarmInput,
    ) -> async_graphql::Result<AlarmPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::acknowledge(ctx.state(), &actor, &retry, parse_id("alarmId", &input.alarm_id)?).await?;
        Ok(AlarmPayload::new(input.client_mutation_id, id))
    }

    /// 解除告警 with what was done (`alarm:handle`); the rule may raise a new alarm afterwards.
    #[graphql(guard = "Perm::AlarmHandle")]
    async fn resolve_alarm(&self, ctx: &Context<'_>, input: ResolveAlarmInput) -> async_graphql::Result<AlarmPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("alarmId", &input.alarm_id)?;
        let id = service::resolve(ctx.state(), &actor, &retry, id, &input.resolution).await?;
        Ok(AlarmPayload::new(input.client_mutation_id, id))
    }

    /// A new alarm rule (`alarm:rule:write` over its project; company-wide for every project).
    #[graphql(guard = "Perm::AlarmRuleWrite")]
    async fn create_alarm_rule(
        &self,
        ctx: &Context<'_>,
        input: CreateAlarmRuleInput,
    ) -> async_graphql::Result<AlarmRulePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::create_rule(ctx.state(), &actor, &retry, input.rule.into_input()?).await?;
        Ok(AlarmRulePayload::new(input.client_mutation_id, id))
    }

    /// Thresholds, durations, severity, escalation and on/off of a rule
    /// (`alarm:rule:write`); what the rule watches stays.
    #[graphql(guard = "Perm::AlarmRuleWrite")]
    async fn update_alarm_rule(
        &self,
        ctx: &Context<'_>,
        input: UpdateAlarmRuleInput,
    ) -> async_graphql::Result<AlarmRulePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("alarmRuleId", &input.alarm_rule_id)?;
        let id = service::update_rule(ctx.state(), &actor, &retry, id, input.rule.into_input()?).await?;
        Ok(AlarmRulePayload::new(input.client_mutation_id, id))
    }
}

/// A new alarm, as pushed to subscribers.
#[derive(SimpleObject, Clone)]
pub struct AlarmRaised {
    /// the alarm's id
    pub id: ID,
    /// the device's project
    pub project_id: ID,
    /// the device
    pub device_id: ID,
    /// how urgent it is
    pub severity: AlarmSeverity,
    /// what the rule watches
    pub kind: AlarmRuleKind,
    /// 【级别】device code and rule name
    pub title: String,
    /// what was seen
    pub detail: String,
    /// when it was raised
    pub raised_at: DateTime<Utc>,
}

impl From<model::AlarmRaised> for AlarmRaised {
    fn from(a: model::AlarmRaised) -> Self {
        AlarmRaised {
            id: to_id(a.id),
            project_id: to_id(a.project_id),
            device_id: to_id(a.device_id),
            severity: a.severity.into(),
            kind: a.kind.into(),
            title: a.title,
            detail: a.detail,
            raised_at: a.raised_at,
        }
    }
}

#[derive(Default)]
pub struct AlarmSubscription;

#[Subscription]
impl AlarmSubscription {
    /// New alarms of a project, from whichever replica raised them (`alarm:read` over the project).
    async fn alarm_raised(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = AlarmRaised> + use<>> {
        let actor = ctx.actor()?;
        let project = parse_id("projectId", &project_id)?;
        service::check_project(ctx.state(), &actor, project).await?;
        let rx = ctx.state().events.subscribe();
        let grant = LiveGrant {
            state: ctx.state().clone(),
            user_id: actor.user_id,
            company_id: actor.company_id,
            perm: Perm::AlarmRead,
            project_id: project,
        };
        let project = project.to_string();
        Ok(futures_util::stream::unfold(rx, move |mut rx| {
            let project = project.clone();
            let grant = grant.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(ev)
                            if ev.kind == EVENT_ALARM && ev.payload["projectId"].as_str() == Some(project.as_str()) =>
                        {
                            if !grant.still_allowed().await {
                                return None;
                            }
                            if let Ok(a) = serde_json::from_value::<model::AlarmRaised>(ev.payload.clone()) {
                                return Some((AlarmRaised::from(a), rx));
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
