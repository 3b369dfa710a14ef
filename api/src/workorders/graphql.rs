//! 工单 over GraphQL: the technician's orders and pool, the owner's repairs, dispatch,
//! every transition as a retry-safe mutation, and a live subscription.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model::{self, EVENT_CHANGED, Filter};
use super::service::{self, Completion, CreateInput, Move, Position, ReportInput, SettingsInput, SlaInput};
use crate::equipment::graphql::DeviceImportance;
use crate::kit::gql::{Conn, StateExt, group_by, load_one, parse_id, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::kit::state::AppState;
use crate::org::owners::graphql::Relation;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

// ---- enums -------------------------------------------------------------------------------

/// How a list of work orders is ordered.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkOrderOrder {
    /// newest first
    #[default]
    Newest,
    /// 派单队列 the dispatch queue when hands are short: the unfinished orders only, most
    /// urgent first (priority, then the device's importance: a critical elevator before a
    /// low-importance meter), then the longest waiting
    Urgency,
}

/// 工单来源 where a work order came from
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Source")]
pub enum WorkOrderSource {
    /// 业主报修 an owner reported it in the app
    Owner,
    /// 客服代报 customer service on an owner's behalf
    Service,
    /// 设备告警 a device alarm
    Alarm,
    /// 保养不合格 a failed maintenance checklist item
    Maintenance,
    /// 公区 staff, for a public area or a device
    Staff,
}

/// 工单类别 what kind of repair
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Category")]
pub enum WorkOrderCategory {
    /// 水暖
    Plumbing,
    /// 电路
    Electrical,
    /// 电梯
    Elevator,
    /// 门禁
    DoorAccess,
    /// 消防
    FireSafety,
    /// 空调暖通
    Hvac,
    /// 土建门窗
    Civil,
    /// 公共设施
    PublicFacility,
    /// 其他
    Other,
}

/// 优先级 how urgent a work order is
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Priority")]
pub enum WorkOrderPriority {
    /// 低
    Low,
    /// 普通
    Normal,
    /// 高 (elevators, major alarms)
    High,
    /// 紧急 (a trapped passenger, critical alarms): pushed as critical
    Urgent,
}

/// 工单状态 SUBMITTED → ASSIGNED → ACCEPTED → IN_PROGRESS (⇄ PAUSED) → COMPLETED →
/// CONFIRMED → CLOSED, or CANCELLED.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::State")]
pub enum WorkOrderState {
    /// 待派单 in the project's pool
    Submitted,
    /// 已派单 a dispatcher chose the technician, who has not accepted yet
    Assigned,
    /// 已接单 the technician took it on (a grab lands here)
    Accepted,
    /// 处理中 the technician arrived
    InProgress,
    /// 暂停 waiting for parts: the SLA clock stops
    Paused,
    /// 已完成 waiting for the confirmer
    Completed,
    /// 已确认 rated; waiting for the return visit
    Confirmed,
    /// 已关闭
    Closed,
    /// 已取消
    Cancelled,
}

/// 派单方式 how a project hands out work orders
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Dispatch")]
pub enum DispatchMode {
    /// 人工派单 a dispatcher assigns every order; no grabbing
    Manual,
    /// 抢单 technicians grab from the pool (dispatchers may still assign)
    Grab,
    /// 轮派 in turn among the on-duty technicians
    RoundRobin,
    /// 自动派单 the least-loaded on-duty technician with the category's skill
    Auto,
}

/// 工单操作 one transition in a work order's log
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Action")]
pub enum WorkOrderAction {
    /// reported or created
    Submit,
    /// a dispatcher (or the project's rule) assigned it
    Assign,
    /// 抢单 a technician took it from the pool
    Grab,
    /// the assignee accepted it
    Accept,
    /// 退单 back to the pool
    Return,
    /// 转单 to another technician
    Transfer,
    /// the technician arrived
    Start,
    /// waiting for parts
    Pause,
    /// work goes on
    Resume,
    /// the work is done
    Complete,
    /// the confirmer rated it (or the system, after the project's days)
    Confirm,
    /// the confirmer rejected the result: the order reopened
    Reject,
    /// 回访 the return visit closed it
    Visit,
    /// closed
    Close,
    /// cancelled
    Cancel,
    /// a dispatcher changed its priority
    Priority,
    /// another alarm or failed item joined it
    Join,
}

// ---- objects -----------------------------------------------------------------------------

/// A part used in a repair.
#[derive(SimpleObject)]
pub struct WorkOrderPart {
    /// the part's name
    pub name: String,
    /// how many (pieces)
    pub quantity: i32,
}

/// 工单 one repair job, from the report to the return visit.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct WorkOrder {
    /// the order's id
    pub id: ID,
    /// the number people read out on the phone, e.g. GD00000042
    pub number: String,
    /// the project
    pub project_id: ID,
    /// where it came from
    pub source: WorkOrderSource,
    /// what kind of repair
    pub category: WorkOrderCategory,
    /// how urgent
    pub priority: WorkOrderPriority,
    /// where it stands
    pub state: WorkOrderState,
    /// a short title
    pub title: String,
    /// what is wrong (empty when nothing was said)
    pub description: String,
    /// where, for a public-area job (empty otherwise)
    pub location: String,
    /// the house, for a repair in a home
    pub house_id: Option<ID>,
    /// the device, for a device repair
    pub device_id: Option<ID>,
    /// the owner the repair is for
    pub owner_id: Option<ID>,
    /// who reported it (empty when the system did)
    pub reporter_id: Option<ID>,
    /// storage keys of the reporter's photos
    pub photos: Vec<String>,
    /// when the owner would like the visit, from
    pub preferred_from: Option<DateTime<Utc>>,
    /// until
    pub preferred_to: Option<DateTime<Utc>>,
    /// the technician handling it
    pub assignee_id: Option<ID>,
    /// when it was reported
    pub created_at: DateTime<Utc>,
    /// when it last changed
    pub updated_at: DateTime<Utc>,
    /// when it was assigned (or grabbed)
    pub assigned_at: Option<DateTime<Utc>>,
    /// when the technician took it on
    pub accepted_at: Option<DateTime<Utc>>,
    /// when the technician arrived
    pub started_at: Option<DateTime<Utc>>,
    /// seconds spent paused, waiting for parts (the SLA clock stops meanwhile)
    pub paused_secs: i32,
    /// when the work was done
    pub completed_at: Option<DateTime<Utc>>,
    /// when it was confirmed
    pub confirmed_at: Option<DateTime<Utc>>,
    /// when it was closed
    pub closed_at: Option<DateTime<Utc>>,
    /// when it was cancelled
    pub cancelled_at: Option<DateTime<Utc>>,
    /// what the technician did (empty before completion)
    pub result: String,
    /// storage keys of the technician's photos
    pub result_photos: Vec<String>,
    /// parts used
    pub parts: Vec<WorkOrderPart>,
    /// minutes of labour
    pub labour_minutes: Option<i32>,
    /// what the owner is charged (yuan), for a chargeable repair
    pub charge: Option<Decimal>,
    /// the receipt number when the charge was paid in cash
    pub cash_receipt_no: Option<String>,
    /// the confirmer's rating, 1 to 5
    pub rating: Option<i32>,
    /// the confirmer's comment
    pub rating_comment: String,
    /// what the return visit found
    pub visit_note: String,
    /// why it was cancelled
    pub cancel_reason: String,
}

impl From<model::WorkOrder> for WorkOrder {
    fn from(w: model::WorkOrder) -> Self {
        WorkOrder {
            id: to_id(w.id),
            number: w.number(),
            project_id: to_id(w.project_id),
            source: w.source.into(),
            category: w.category.into(),
            priority: w.priority.into(),
            state: w.state.into(),
            title: w.title,
            description: w.description,
            location: w.location,
            house_id: w.house_id.map(to_id),
            device_id: w.device_id.map(to_id),
            owner_id: w.owner_id.map(to_id),
            reporter_id: w.reporter_id.map(to_id),
            photos: w.photos,
            preferred_from: w.preferred_from,
            preferred_to: w.preferred_to,
            assignee_id: w.assignee_id.map(to_id),
            created_at: w.created_at,
            updated_at: w.updated_at,
            assigned_at: w.assigned_at,
            accepted_at: w.accepted_at,
            started_at: w.started_at,
            paused_secs: w.paused_secs,
            completed_at: w.completed_at,
            confirmed_at: w.confirmed_at,
            closed_at: w.closed_at,
            cancelled_at: w.cancelled_at,
            result: w.result,
            result_photos: w.result_photos,
            parts: w.parts.0.into_iter().map(|p| WorkOrderPart { name: p.name, quantity: p.quantity }).collect(),
            labour_minutes: w.labour_minutes,
            charge: w.charge,
            cash_receipt_no: w.cash_receipt_no,
            rating: w.rating.map(i32::from),
            rating_comment: w.rating_comment,
            visit_note: w.visit_note,
            cancel_reason: w.cancel_reason,
        }
    }
}

#[ComplexObject]
impl WorkOrder {
    /// the reporter's photos, as URLs that work for five minutes
    async fn photo_urls(&self, ctx: &Context<'_>) -> Vec<String> {
        self.photos.iter().map(|k| crate::files::service::signed_url(ctx.state(), k)).collect()
    }

    /// 时限 the order's deadlines and escalation
    async fn sla(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<WorkOrderSlaState>> {
        let id = parse_id("id", &self.id)?;
        let Some(d) = load_one::<SlaLoader>(ctx, id).await? else { return Ok(None) };
        let now = ctx.state().clock.now();
        let paused = self.paused_secs as i64;
        let completion_due = d.complete_due_at.map(|c| c + chrono::TimeDelta::seconds(paused));
        let response_late = self.accepted_at.is_none()
            && matches!(self.state, WorkOrderState::Submitted | WorkOrderState::Assigned)
            && d.response_due_at.is_some_and(|r| r <= now);
        let completion_late = matches!(self.state, WorkOrderState::Accepted | WorkOrderState::InProgress)
            && completion_due.is_some_and(|c| c <= now);
        Ok(Some(WorkOrderSlaState {
            response_due_at: d.response_due_at,
            completion_due_at: completion_due,
            breached: response_late || completion_late || d.response_level > 0 || d.completion_level > 0,
            response_level: i32::from(d.response_level),
            completion_level: i32::from(d.completion_level),
        }))
    }

    /// the technician's photos, as URLs that work for five minutes
    async fn result_photo_urls(&self, ctx: &Context<'_>) -> Vec<String> {
        self.result_photos.iter().map(|k| crate::files::service::signed_url(ctx.state(), k)).collect()
    }

    /// its device's importance as it is now (NORMAL without a device): the dispatch queue
    /// puts critical first
    async fn importance(&self, ctx: &Context<'_>) -> async_graphql::Result<DeviceImportance> {
        let Some(d) = &self.device_id else {
            return Ok(DeviceImportance::Normal);
        };
        let got = load_one::<ImportanceLoader>(ctx, parse_id("deviceId", d)?).await?;
        Ok(got.unwrap_or(crate::equipment::model::Importance::Normal).into())
    }

    /// 工单日志 every transition, oldest first
    async fn log(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WorkOrderEvent>> {
        let id = parse_id("id", &self.id)?;
        let events = load_one::<LogLoader>(ctx, id).await?.unwrap_or_default();
        Ok(events.into_iter().map(WorkOrderEvent::from).collect())
    }
}

/// An order's deadlines and how far its escalation went.
#[derive(SimpleObject)]
pub struct WorkOrderSlaState {
    /// taken on by then (accepted or grabbed)
    pub response_due_at: Option<DateTime<Utc>>,
    /// done by then (moves later by the time spent paused)
    pub completion_due_at: Option<DateTime<Utc>>,
    /// a deadline has passed (now, or at some point of the order's life)
    pub breached: bool,
    /// the response ladder: 0 on time, 1 technicians pushed, 2 managers pushed, 3 managers texted
    pub response_level: i32,
    /// the completion ladder, likewise
    pub completion_level: i32,
}

/// The deadlines of the orders of one response, in one query.
pub struct SlaLoader(AppState);

impl From<AppState> for SlaLoader {
    fn from(s: AppState) -> Self {
        SlaLoader(s)
    }
}

impl Loader<Uuid> for SlaLoader {
    type Value = model::Deadlines;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::deadlines_of(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(rows.into_iter().map(|d| (d.id, d)).collect())
    }
}

/// The importance of the devices of one response's orders, in one query.
pub struct ImportanceLoader(AppState);

impl From<AppState> for ImportanceLoader {
    fn from(s: AppState) -> Self {
        ImportanceLoader(s)
    }
}

impl Loader<Uuid> for ImportanceLoader {
    type Value = crate::equipment::model::Importance;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::equipment::service::importance_of(&self.0, keys).await.map_err(|e| e.to_string())
    }
}

/// The logs of the orders of one response, in one query.
pub struct LogLoader(AppState);

impl From<AppState> for LogLoader {
    fn from(s: AppState) -> Self {
        LogLoader(s)
    }
}

impl Loader<Uuid> for LogLoader {
    type Value = Vec<model::Event>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::events_of(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |e| e.work_order_id))
    }
}

/// One transition of a work order.
#[derive(SimpleObject)]
pub struct WorkOrderEvent {
    /// what happened
    pub action: WorkOrderAction,
    /// the state before (null for the report)
    pub from_state: Option<WorkOrderState>,
    /// the state after
    pub to_state: WorkOrderState,
    /// who did it (null: the system)
    pub actor_id: Option<ID>,
    /// a reason or note (empty when none)
    pub note: String,
    /// where the technician stood, latitude
    pub lat: Option<f64>,
    /// longitude
    pub lng: Option<f64>,
    /// when
    pub at: DateTime<Utc>,
}

impl From<model::Event> for WorkOrderEvent {
    fn from(e: model::Event) -> Self {
        WorkOrderEvent {
            action: e.action.into(),
            from_state: e.from_state.map(Into::into),
            to_state: e.to_state.into(),
            actor_id: e.actor_id.map(to_id),
            note: e.note,
            lat: e.lat,
            lng: e.lng,
            at: e.at,
        }
    }
}

/// How many orders of a list are in one state.
#[derive(SimpleObject)]
pub struct WorkOrderStateCount {
    /// the state
    pub state: WorkOrderState,
    /// how many orders
    pub count: i64,
}

/// How many orders of a report are in one category.
#[derive(SimpleObject)]
pub struct WorkOrderCategoryCount {
    /// the category
    pub category: WorkOrderCategory,
    /// how many orders
    pub count: i64,
}

/// One technician's figures in a report.
#[derive(SimpleObject)]
pub struct TechnicianReport {
    /// the technician's account
    pub user_id: ID,
    /// their name
    pub name: String,
    /// orders they held
    pub assigned: i64,
    /// of those, completed
    pub completed: i64,
    /// report → completion, paused time left out (minutes)
    pub avg_completion_minutes: Option<f64>,
    /// the average rating of their rated orders
    pub avg_rating: Option<f64>,
    /// their orders that missed a deadline
    pub breached: i64,
}

/// 工单报表 figures over the orders reported in a date range.
#[derive(SimpleObject)]
pub struct WorkOrderReport {
    /// the first day (Shanghai)
    pub from: chrono::NaiveDate,
    /// the last day (Shanghai), included
    pub to: chrono::NaiveDate,
    /// orders reported in the range
    pub total: i64,
    /// by state (states with orders only)
    pub by_state: Vec<WorkOrderStateCount>,
    /// by category, most first
    pub by_category: Vec<WorkOrderCategoryCount>,
    /// report → taken on, over the orders taken on (minutes)
    pub avg_response_minutes: Option<f64>,
    /// report → completed, paused time left out, over the completed orders (minutes)
    pub avg_completion_minutes: Option<f64>,
    /// the share of orders that missed a deadline (0 to 1; null without orders)
    pub sla_breach_rate: Option<f64>,
    /// orders rated by their confirmer
    pub rated: i64,
    /// the average rating (1 to 5)
    pub avg_rating: Option<f64>,
    /// per technician, most completed first
    pub technicians: Vec<TechnicianReport>,
}

/// 派单设置 a project's rules for its work orders.
#[derive(SimpleObject)]
pub struct WorkOrderSettings {
    /// the project
    pub project_id: ID,
    /// how orders are handed out
    pub dispatch: DispatchMode,
    /// a completed order is confirmed by itself after this many days
    pub auto_confirm_days: i32,
    /// who in a house may report repairs
    pub reporter_relations: Vec<Relation>,
    /// categories whose orders close only after a return visit
    pub visit_categories: Vec<WorkOrderCategory>,
    /// an order whose alarms all cleared by themselves before anyone took it on is cancelled
    /// after this many seconds (a flapping device keeps one order)
    pub alarm_clear_grace_secs: i32,
}

impl From<model::Settings> for WorkOrderSettings {
    fn from(s: model::Settings) -> Self {
        WorkOrderSettings {
            project_id: to_id(s.project_id),
            dispatch: s.dispatch.into(),
            auto_confirm_days: s.auto_confirm_days,
            reporter_relations: s
                .reporter_relations
                .iter()
                .filter_map(|r| crate::org::owners::model::Relation::parse(r))
                .map(Into::into)
                .collect(),
            visit_categories: s
                .visit_categories
                .iter()
                .filter_map(|c| model::Category::parse(c))
                .map(Into::into)
                .collect(),
            alarm_clear_grace_secs: s.alarm_clear_grace_secs,
        }
    }
}

pub async fn load_order(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<WorkOrder> {
    let actor = ctx.actor()?;
    Ok(service::get(ctx.state(), &actor, id).await?.into())
}

pub async fn load_settings(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<WorkOrderSettings> {
    let actor = ctx.actor()?;
    Ok(service::project_settings(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The work order a mutation made or moved.
    WorkOrderPayload, work_order: WorkOrder, load_order, "the order as it is now"
);
crate::object_payload!(
    /// A project's work-order settings after the change.
    WorkOrderSettingsPayload, settings: WorkOrderSettings, load_settings, "the settings as they are now"
);

/// A user whose skills changed.
#[derive(SimpleObject)]
pub struct SetStaffSkillsPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the staff account
    pub user_id: ID,
}

// ---- queries -------------------------------------------------------------------------------

fn filter(
    project_id: Option<ID>,
    states: Option<Vec<WorkOrderState>>,
    category: Option<WorkOrderCategory>,
    mine: bool,
    pool: bool,
    device_id: Option<ID>,
) -> async_graphql::Result<Filter> {
    Ok(Filter {
        project_id: parse_opt_id("projectId", project_id.as_ref())?,
        states: states.unwrap_or_default().into_iter().map(Into::into).collect(),
        category: category.map(Into::into),
        mine,
        pool,
        device_id: parse_opt_id("deviceId", device_id.as_ref())?,
    })
}

#[derive(Default)]
pub struct WorkOrderQuery;

#[Object]
impl WorkOrderQuery {
    /// Work orders, newest first or as the dispatch queue (`orderBy: URGENCY`). Staff see their projects' orders (`mine`: the orders
    /// assigned to them; `pool`: the orders waiting to be taken); an owner sees their own
    /// repairs.
    #[allow(clippy::too_many_arguments)]
    async fn work_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only this project's orders")] project_id: Option<ID>,
        #[graphql(desc = "only orders in these states")] states: Option<Vec<WorkOrderState>>,
        #[graphql(desc = "only this category")] category: Option<WorkOrderCategory>,
        #[graphql(default, desc = "only orders assigned to the caller")] mine: bool,
        #[graphql(default, desc = "only orders waiting in the pool")] pool: bool,
        #[graphql(desc = "only this device's orders")] device_id: Option<ID>,
        #[graphql(default, desc = "newest first, or the dispatch queue's order")] order_by: WorkOrderOrder,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<WorkOrder>> {
        let actor = ctx.actor()?;
        let f = filter(project_id, states, category, mine, pool, device_id)?;
        if order_by == WorkOrderOrder::Urgency {
            let page = Page::<(i16, DateTime<Utc>, Uuid)>::new(ctx, first, after)?;
            let rows = service::queue(ctx.state(), &actor, &f, page.after, page.fetch()).await?;
            return Ok(page.connection(rows, |(w, u)| (*u, w.created_at, w.id), |(w, _)| WorkOrder::from(w)));
        }
        let page = Page::<(DateTime<Utc>, Uuid)>::new(ctx, first, after)?;
        let rows = service::list(ctx.state(), &actor, &f, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| (r.created_at, r.id), WorkOrder::from))
    }

    /// How many orders of the same list are in each state (every state, zeros included).
    async fn work_order_counts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only this project's orders")] project_id: Option<ID>,
        #[graphql(desc = "only this category")] category: Option<WorkOrderCategory>,
        #[graphql(default, desc = "only orders assigned to the caller")] mine: bool,
        #[graphql(desc = "only this device's orders")] device_id: Option<ID>,
    ) -> async_graphql::Result<Vec<WorkOrderStateCount>> {
        let actor = ctx.actor()?;
        let f = filter(project_id, None, category, mine, false, device_id)?;
        Ok(service::counts(ctx.state(), &actor, &f)
            .await?
            .into_iter()
            .map(|(s, n)| WorkOrderStateCount { state: s.into(), count: n })
            .collect())
    }

    /// One work order (its project's staff, its assignee, or the owner it is for).
    async fn work_order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<WorkOrder> {
        load_order(ctx, parse_id("id", &id)?).await
    }

    /// 工单报表 (`workorder:read`): counts by state and category, average response and
    /// completion times, the share that missed a deadline, satisfaction, and per
    /// technician; over the orders reported from `from` to `to` (Shanghai days, both
    /// included, at most 366), in one project or all the caller's.
    #[graphql(guard = "Perm::WorkorderRead")]
    async fn work_order_report(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "one project (else every project the caller reads)")] project_id: Option<ID>,
        #[graphql(desc = "the first day (Shanghai)")] from: chrono::NaiveDate,
        #[graphql(desc = "the last day (Shanghai), included")] to: chrono::NaiveDate,
    ) -> async_graphql::Result<WorkOrderReport> {
        let actor = ctx.actor()?;
        let project = parse_opt_id("projectId", project_id.as_ref())?;
        let r = service::figures(ctx.state(), &actor, project, from, to).await?;
        Ok(WorkOrderReport {
            from,
            to,
            total: r.total,
            by_state: r.by_state.into_iter().map(|(s, n)| WorkOrderStateCount { state: s.into(), count: n }).collect(),
            by_category: r
                .by_category
                .into_iter()
                .map(|(c, n)| WorkOrderCategoryCount { category: c.into(), count: n })
                .collect(),
            avg_response_minutes: r.avg_response_minutes,
            avg_completion_minutes: r.avg_completion_minutes,
            sla_breach_rate: if r.total > 0 { Some(r.breached as f64 / r.total as f64) } else { None },
            rated: r.rated,
            avg_rating: r.avg_rating,
            technicians: r
                .technicians
                .into_iter()
                .map(|t| TechnicianReport {
                    user_id: to_id(t.user_id),
                    name: t.name,
                    assigned: t.assigned,
                    completed: t.completed,
                    avg_completion_minutes: t.avg_completion_minutes,
                    avg_rating: t.avg_rating,
                    breached: t.breached,
                })
                .collect(),
        })
    }

    /// A project's work-order settings (`workorder:read`).
    #[graphql(guard = "Perm::WorkorderRead")]
    async fn work_order_settings(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<WorkOrderSettings> {
        load_settings(ctx, parse_id("projectId", &project_id)?).await
    }
}

// ---- mutations -----------------------------------------------------------------------------

/// 报修 a repair in one of the caller's houses.
#[derive(InputObject)]
pub struct ReportRepairInput {
    /// a house the caller lives in
    pub house_id: ID,
    /// what kind of repair
    pub category: WorkOrderCategory,
    /// what is wrong, 1 to 500 characters
    pub description: String,
    /// keys of photos the caller uploaded with `uploadFile` (up to 9)
    #[graphql(default)]
    pub photos: Vec<String>,
    /// when a visit suits, from
    pub preferred_from: Option<DateTime<Utc>>,
    /// until
    pub preferred_to: Option<DateTime<Utc>>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A work order staff open: for an owner's house (customer service), a device, or a
/// public area.
#[derive(InputObject)]
pub struct CreateWorkOrderInput {
    /// the project
    pub project_id: ID,
    /// what kind of repair
    pub category: WorkOrderCategory,
    /// how urgent (by default HIGH for elevators, NORMAL otherwise)
    pub priority: Option<WorkOrderPriority>,
    /// a short title, 1 to 60 characters
    pub title: String,
    /// what is wrong, up to 500 characters
    #[graphql(default)]
    pub description: String,
    /// where, for a public-area job (up to 100 characters)
    pub location: Option<String>,
    /// the house of the project
    pub house_id: Option<ID>,
    /// the owner the report is for (with their house)
    pub owner_id: Option<ID>,
    /// the device of the project
    pub device_id: Option<ID>,
    /// keys of photos the caller uploaded with `uploadFile` (up to 9)
    #[graphql(default)]
    pub photos: Vec<String>,
    /// when a visit suits, from
    pub preferred_from: Option<DateTime<Utc>>,
    /// until
    pub preferred_to: Option<DateTime<Utc>>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A transition that needs nothing but the order.
#[derive(InputObject)]
pub struct WorkOrderInput {
    /// the work order
    pub work_order_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A transition that needs a reason.
#[derive(InputObject)]
pub struct WorkOrderReasonInput {
    /// the work order
    pub work_order_id: ID,
    /// why, 1 to 200 characters
    pub reason: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 派单 an order to a technician.
#[derive(InputObject)]
pub struct AssignWorkOrderInput {
    /// the work order
    pub work_order_id: ID,
    /// a staff member holding `workorder:do` over the project
    pub assignee_id: ID,
    /// up to 200 characters
    pub note: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 转单 an order to another technician.
#[derive(InputObject)]
pub struct TransferWorkOrderInput {
    /// the work order
    pub work_order_id: ID,
    /// a staff member holding `workorder:do` over the project
    pub assignee_id: ID,
    /// why, 1 to 200 characters
    pub reason: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Where the phone says it is.
#[derive(InputObject)]
pub struct PositionInput {
    /// latitude
    pub lat: f64,
    /// longitude
    pub lng: f64,
    /// the phone's accuracy radius (metres)
    pub accuracy_m: Option<f64>,
}

/// 到场 the technician arrived.
#[derive(InputObject)]
pub struct StartWorkOrderInput {
    /// an accepted work order
    pub work_order_id: ID,
    /// where the technician stands; required when the project has a geofence
    pub position: Option<PositionInput>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A part used.
#[derive(InputObject)]
pub struct WorkOrderPartInput {
    /// the part's name, up to 60 characters
    pub name: String,
    /// how many (1-10000 pieces)
    pub quantity: i32,
}

/// 完工 what was done.
#[derive(InputObject)]
pub struct CompleteWorkOrderInput {
    /// a work order in progress
    pub work_order_id: ID,
    /// what was done, 1 to 1000 characters
    pub result: String,
    /// keys of photos the caller uploaded with `uploadFile` (up to 9)
    #[graphql(default)]
    pub photos: Vec<String>,
    /// parts used (up to 50)
    #[graphql(default)]
    pub parts: Vec<WorkOrderPartInput>,
    /// minutes of labour (0-10000)
    pub labour_minutes: Option<i32>,
    /// what the owner is charged (yuan, 0 to 100000, at most two decimals)
    pub charge: Option<Decimal>,
    /// the receipt number when the charge was paid in cash
    pub cash_receipt_no: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 确认 and rate the work.
#[derive(InputObject)]
pub struct ConfirmWorkOrderInput {
    /// a completed work order
    pub work_order_id: ID,
    /// 1 to 5
    pub rating: i32,
    /// up to 200 characters
    pub comment: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 回访 the return visit.
#[derive(InputObject)]
pub struct VisitWorkOrderInput {
    /// a confirmed work order
    pub work_order_id: ID,
    /// what the owner said, 1 to 500 characters
    pub note: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 取消 an order.
#[derive(InputObject)]
pub struct CancelWorkOrderInput {
    /// the work order
    pub work_order_id: ID,
    /// why (required from staff; up to 200 characters)
    pub reason: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A new priority.
#[derive(InputObject)]
pub struct SetWorkOrderPriorityInput {
    /// an unfinished work order
    pub work_order_id: ID,
    /// how urgent
    pub priority: WorkOrderPriority,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A project's work-order settings; fields left out stay as they are.
#[derive(InputObject)]
pub struct SetWorkOrderSettingsInput {
    /// the project
    pub project_id: ID,
    /// how orders are handed out
    pub dispatch: Option<DispatchMode>,
    /// days (1-30) after which a completed order is confirmed by itself
    pub auto_confirm_days: Option<i32>,
    /// who in a house may report repairs
    pub reporter_relations: Option<Vec<Relation>>,
    /// categories whose orders close only after a return visit
    pub visit_categories: Option<Vec<WorkOrderCategory>>,
    /// seconds (0-86400) an order whose alarms cleared waits before it is cancelled
    pub alarm_clear_grace_secs: Option<i32>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 时限 a project's limits for a category and priority.
#[derive(InputObject)]
pub struct SetWorkOrderSlaInput {
    /// the project
    pub project_id: ID,
    /// the category (null: every category without limits of its own)
    pub category: Option<WorkOrderCategory>,
    /// the priority
    pub priority: WorkOrderPriority,
    /// minutes (1-10080) to take an order on
    pub response_minutes: i32,
    /// minutes (1-129600, not fewer than responseMinutes) to complete it, paused time not counted
    pub completion_minutes: i32,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The project whose limits changed.
#[derive(SimpleObject)]
pub struct SetWorkOrderSlaPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the project
    pub project_id: ID,
}

/// A staff member's skills.
#[derive(InputObject)]
pub struct SetStaffSkillsInput {
    /// the staff account
    pub user_id: ID,
    /// the categories they can handle (dispatch prefers them)
    pub skills: Vec<WorkOrderCategory>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

async fn step(
    ctx: &Context<'_>,
    id: &ID,
    client_mutation_id: Option<String>,
    m: Move,
) -> async_graphql::Result<WorkOrderPayload> {
    let actor = ctx.actor()?;
    let retry = ctx.retry(client_mutation_id.as_deref())?;
    let id = service::transition(ctx.state(), &actor, &retry, parse_id("workOrderId", id)?, m).await?;
    Ok(WorkOrderPayload::new(client_mutation_id, id))
}

#[derive(Default)]
pub struct WorkOrderMutation;

#[Object]
impl WorkOrderMutation {
    /// 报修 an owner (or a member or tenant, as the project allows) reports a repair.
    #[graphql(guard = "Perm::SelfHouse")]
    async fn report_repair(
        &self,
        ctx: &Context<'_>,
        input: ReportRepairInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = ReportInput {
            house_id: parse_id("houseId", &input.house_id)?,
            category: input.category.into(),
            description: input.description,
            photos: input.photos,
            preferred_from: input.preferred_from,
            preferred_to: input.preferred_to,
        };
        let id = service::report(ctx.state(), &actor, &retry, i).await?;
        Ok(WorkOrderPayload::new(input.client_mutation_id, id))
    }

    /// Opens a work order for an owner, a device or a public area (`workorder:create`).
    #[graphql(guard = "Perm::WorkorderCreate")]
    async fn create_work_order(
        &self,
        ctx: &Context<'_>,
        input: CreateWorkOrderInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = CreateInput {
            project_id: parse_id("projectId", &input.project_id)?,
            category: input.category.into(),
            priority: input.priority.map(Into::into),
            title: input.title,
            description: input.description,
            location: input.location,
            house_id: parse_opt_id("houseId", input.house_id.as_ref())?,
            owner_id: parse_opt_id("ownerId", input.owner_id.as_ref())?,
            device_id: parse_opt_id("deviceId", input.device_id.as_ref())?,
            photos: input.photos,
            preferred_from: input.preferred_from,
            preferred_to: input.preferred_to,
        };
        let id = service::create(ctx.state(), &actor, &retry, i).await?;
        Ok(WorkOrderPayload::new(input.client_mutation_id, id))
    }

    /// 派单 (`workorder:dispatch`): a pooled or assigned order to a technician.
    #[graphql(guard = "Perm::WorkorderDispatch")]
    async fn assign_work_order(
        &self,
        ctx: &Context<'_>,
        input: AssignWorkOrderInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        let to = parse_id("assigneeId", &input.assignee_id)?;
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Assign { to, note: input.note }).await
    }

    /// 抢单 (`workorder:do`): takes an order from the pool; exactly one technician wins, the
    /// others get CONFLICT.
    #[graphql(guard = "Perm::WorkorderDo")]
    async fn grab_work_order(
        &self,
        ctx: &Context<'_>,
        input: WorkOrderInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Grab).await
    }

    /// 接单: the assignee accepts an order assigned to them.
    #[graphql(guard = "Perm::WorkorderDo")]
    async fn accept_work_order(
        &self,
        ctx: &Context<'_>,
        input: WorkOrderInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Accept).await
    }

    /// 退单: the assignee returns an order to the pool, saying why.
    #[graphql(guard = "Perm::WorkorderDo")]
    async fn return_work_order(
        &self,
        ctx: &Context<'_>,
        input: WorkOrderReasonInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Return { reason: input.reason }).await
    }

    /// 转单: the assignee or a dispatcher hands the order to another technician.
    async fn transfer_work_order(
        &self,
        ctx: &Context<'_>,
        input: TransferWorkOrderInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        let to = parse_id("assigneeId", &input.assignee_id)?;
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Transfer { to, reason: input.reason }).await
    }

    /// 到场: the assignee arrived (position checked against the project's geofence).
    #[graphql(guard = "Perm::WorkorderDo")]
    async fn start_work_order(
        &self,
        ctx: &Context<'_>,
        input: StartWorkOrderInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        let position = input.position.map(|p| Position { lat: p.lat, lng: p.lng, accuracy_m: p.accuracy_m });
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Start { position }).await
    }

    /// 暂停: waiting for parts (the SLA clock stops).
    #[graphql(guard = "Perm::WorkorderDo")]
    async fn pause_work_order(
        &self,
        ctx: &Context<'_>,
        input: WorkOrderReasonInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Pause { reason: input.reason }).await
    }

    /// Work goes on after a pause.
    #[graphql(guard = "Perm::WorkorderDo")]
    async fn resume_work_order(
        &self,
        ctx: &Context<'_>,
        input: WorkOrderInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Resume).await
    }

    /// 完工: result, photos, parts, labour and charge; closes the order's repair requests and
    /// resolves its alarms in the same transaction.
    #[graphql(guard = "Perm::WorkorderDo")]
    async fn complete_work_order(
        &self,
        ctx: &Context<'_>,
        input: CompleteWorkOrderInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        let c = Completion {
            result: input.result,
            photos: input.photos,
            parts: input.parts.into_iter().map(|p| model::PartUsed { name: p.name, quantity: p.quantity }).collect(),
            labour_minutes: input.labour_minutes,
            charge: input.charge,
            cash_receipt_no: input.cash_receipt_no,
        };
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Complete(c)).await
    }

    /// 确认: the confirmer (the owner; customer service or a manager for orders without
    /// one) rates the work; the order closes unless its category needs a return visit.
    async fn confirm_work_order(
        &self,
        ctx: &Context<'_>,
        input: ConfirmWorkOrderInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        let rating = i16::try_from(input.rating).unwrap_or(0);
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Confirm { rating, comment: input.comment })
            .await
    }

    /// 驳回: the confirmer rejects the result; the order goes back to its technician.
    async fn reject_work_order(
        &self,
        ctx: &Context<'_>,
        input: WorkOrderReasonInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Reject { reason: input.reason }).await
    }

    /// 回访 (`workorder:visit`): closes a confirmed order.
    #[graphql(guard = "Perm::WorkorderVisit")]
    async fn visit_work_order(
        &self,
        ctx: &Context<'_>,
        input: VisitWorkOrderInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Visit { note: input.note }).await
    }

    /// 取消: the owner before anyone took the order on; a dispatcher while it is unfinished.
    async fn cancel_work_order(
        &self,
        ctx: &Context<'_>,
        input: CancelWorkOrderInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::Cancel { reason: input.reason }).await
    }

    /// Changes an unfinished order's priority (`workorder:dispatch`).
    #[graphql(guard = "Perm::WorkorderDispatch")]
    async fn set_work_order_priority(
        &self,
        ctx: &Context<'_>,
        input: SetWorkOrderPriorityInput,
    ) -> async_graphql::Result<WorkOrderPayload> {
        let priority = input.priority.into();
        step(ctx, &input.work_order_id, input.client_mutation_id, Move::SetPriority { priority }).await
    }

    /// A project's dispatch mode, auto-confirmation, reporters and return visits
    /// (`workorder:dispatch`).
    #[graphql(guard = "Perm::WorkorderDispatch")]
    async fn set_work_order_settings(
        &self,
        ctx: &Context<'_>,
        input: SetWorkOrderSettingsInput,
    ) -> async_graphql::Result<WorkOrderSettingsPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = SettingsInput {
            project_id: parse_id("projectId", &input.project_id)?,
            dispatch: input.dispatch.map(Into::into),
            auto_confirm_days: input.auto_confirm_days,
            reporter_relations: input.reporter_relations.map(|v| v.into_iter().map(Into::into).collect()),
            visit_categories: input.visit_categories.map(|v| v.into_iter().map(Into::into).collect()),
            alarm_clear_grace_secs: input.alarm_clear_grace_secs,
        };
        let id = service::set_settings(ctx.state(), &actor, &retry, i).await?;
        Ok(WorkOrderSettingsPayload::new(input.client_mutation_id, id))
    }

    /// 时限 a project's response and completion limits for a category and priority
    /// (`workorder:dispatch`): orders reported from then on follow them. Without limits, a
    /// priority's defaults apply: urgent 15 min / 4 h, high 30 min / 24 h, normal 2 h / 3 d,
    /// low 8 h / 7 d.
    #[graphql(guard = "Perm::WorkorderDispatch")]
    async fn set_work_order_sla(
        &self,
        ctx: &Context<'_>,
        input: SetWorkOrderSlaInput,
    ) -> async_graphql::Result<SetWorkOrderSlaPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = SlaInput {
            project_id: parse_id("projectId", &input.project_id)?,
            category: input.category.map(Into::into),
            priority: input.priority.into(),
            sla: model::Sla { response_minutes: input.response_minutes, completion_minutes: input.completion_minutes },
        };
        let id = service::set_sla(ctx.state(), &actor, &retry, i).await?;
        Ok(SetWorkOrderSlaPayload { client_mutation_id: input.client_mutation_id, project_id: to_id(id) })
    }

    /// A staff member's skills (`user:write`).
    #[graphql(guard = "Perm::UserWrite")]
    async fn set_staff_skills(
        &self,
        ctx: &Context<'_>,
        input: SetStaffSkillsInput,
    ) -> async_graphql::Result<SetStaffSkillsPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let user = parse_id("userId", &input.user_id)?;
        let skills: Vec<model::Category> = input.skills.into_iter().map(Into::into).collect();
        let id = service::set_skills(ctx.state(), &actor, &retry, user, &skills).await?;
        Ok(SetStaffSkillsPayload { client_mutation_id: input.client_mutation_id, user_id: to_id(id) })
    }
}

// ---- subscriptions ---------------------------------------------------------------------------

#[derive(Default)]
pub struct WorkOrderSubscription;

#[Subscription]
impl WorkOrderSubscription {
    /// Changes to work orders, from whichever replica made them: with `projectId`, every
    /// order of the project (its staff); without, the caller's own (assigned to them,
    /// reported by them, or about them). Each change delivers the order as the caller may
    /// read it now.
    async fn work_order_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "a project whose orders the caller may read")] project_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = WorkOrder> + use<>> {
        let actor = ctx.actor()?;
        let project = parse_opt_id("projectId", project_id.as_ref())?;
        if let Some(p) = project {
            let f = Filter { project_id: Some(p), ..Filter::default() };
            service::list(ctx.state(), &actor, &f, None, 1).await?;
        }
        let state = ctx.state().clone();
        let rx = state.events.subscribe();
        let (user, company) = (actor.user_id, actor.company_id);
        Ok(futures_util::stream::unfold(rx, move |mut rx| {
            let state = state.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(ev) if ev.kind == EVENT_CHANGED => {
                            let Ok(c) = serde_json::from_value::<model::Changed>(ev.payload.clone()) else { continue };
                            let wanted = match project {
                                Some(p) => c.project_id == p,
                                None => c.users.contains(&user),
                            };
                            if !wanted {
                                continue;
                            }
                            // the caller as they are now: a revoked grant stops the stream
                            let Ok(actor) = crate::rbac::service::load_actor(&state, user, company, i64::MAX).await
                            else {
                                return None;
                            };
                            match service::get(&state, &actor, c.id).await {
                                Ok(w) => return Some((WorkOrder::from(w), rx)),
                                Err(_) if project.is_some() => return None,
                                Err(_) => continue,
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
