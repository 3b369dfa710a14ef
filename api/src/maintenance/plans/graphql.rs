//! Maintenance plans, tasks and records over GraphQL.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::model::{self, CompleteInput, ItemResult, PartUsed, PlanInput, TaskFilter, Usage};
use super::service;
use crate::equipment::graphql::{DeviceCategory, DeviceImportance};
use crate::kit::gql::{Conn, StateExt, parse_id, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

// ---- enums -------------------------------------------------------------------------------

/// 保养周期 how often a plan falls due
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::IntervalKind")]
pub enum IntervalKind {
    /// 月度保养: every month on the start date's day (the month's last day when it is shorter)
    Monthly,
    /// 季度保养: every three months
    Quarterly,
    /// 年度全面检查: every year
    Yearly,
    /// every `intervalDays` days
    Days,
}

/// 起算方式 what the next due date counts from
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::PlanAnchor")]
pub enum PlanAnchor {
    /// due dates follow the calendar from the start date, whenever the work was done
    Schedule,
    /// the next due date counts from the last completion
    Completion,
}

/// 档案类别 what put a record in a device's archive
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::RecordKind")]
pub enum MaintenanceRecordKind {
    /// 保养 a maintenance task (its checklist answered)
    Maintenance,
    /// 维修 a completed work order on the device (its result, parts and photos)
    Repair,
}

/// 保养任务状态 where a maintenance task stands
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::TaskState")]
pub enum MaintenanceTaskState {
    /// waiting to be done
    Pending,
    /// completed: its record is in the device's archive
    Done,
    /// will not be done
    Cancelled,
}

/// 检查结果 the outcome of one checklist item
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::CheckResult")]
pub enum CheckResult {
    /// 合格 the item is in order
    Pass,
    /// 不合格 the item failed: a repair request is recorded on the device
    Fail,
}

// ---- objects -----------------------------------------------------------------------------

/// 保养计划 what maintenance one device, or every device of a category in a project, needs
/// and how often.
#[derive(SimpleObject)]
pub struct MaintenancePlan {
    /// the plan's id
    pub id: ID,
    /// the project whose devices the plan covers
    pub project_id: ID,
    /// the one device the plan covers (null when it covers a category)
    pub device_id: Option<ID>,
    /// every device of this category in the project (null when it covers one device)
    pub category: Option<DeviceCategory>,
    /// the plan's name, e.g. 电梯月度例行保养
    pub name: String,
    /// the items a technician answers pass or fail, in order
    pub checklist: Vec<String>,
    /// how often a calendar plan falls due (null for a usage plan)
    pub interval_kind: Option<IntervalKind>,
    /// days between due dates when `intervalKind` is DAYS (null otherwise)
    pub interval_days: Option<i32>,
    /// the counter a usage plan follows (null for a calendar plan)
    pub usage: Option<UsageTrigger>,
    /// what the next due date (or due counter value) counts from
    pub anchor: PlanAnchor,
    /// the first due date (Shanghai calendar day); a usage plan reads counters from this day
    pub start_date: NaiveDate,
    /// calendar tasks appear this many days before they are due
    pub lead_days: i32,
    /// who is told of new tasks (else each device's responsible person)
    pub responsible_user_id: Option<ID>,
    /// false: paused, no new tasks are made
    pub active: bool,
    /// when the plan was made
    pub created_at: DateTime<Utc>,
}

/// 按使用量 a plan that falls due on a cumulative counter the devices report in their
/// telemetry (elevator `trips` or `runHours`, pump `starts` or `runHours`, a meter's
/// `reading`), whichever day that is.
#[derive(SimpleObject)]
pub struct UsageTrigger {
    /// the telemetry metric counted
    pub metric: String,
    /// the plan falls due every this many units (e.g. 20000 trips)
    pub every: f64,
    /// a task appears this many units before (e.g. 2000 trips)
    pub lead: f64,
}

/// A usage trigger for a new plan.
#[derive(InputObject)]
pub struct UsageTriggerInput {
    /// the telemetry metric counted (letters, digits and _, e.g. trips, runHours, starts)
    pub metric: String,
    /// every this many units, more than 0
    pub every: f64,
    /// a task appears this many units before it is due (0 up to less than `every`)
    #[graphql(default)]
    pub lead: f64,
}

impl From<model::Plan> for MaintenancePlan {
    fn from(p: model::Plan) -> Self {
        let usage = p.usage().map(|u| UsageTrigger { metric: u.metric, every: u.every, lead: u.lead });
        MaintenancePlan {
            usage,
            id: to_id(p.id),
            project_id: to_id(p.project_id),
            device_id: p.device_id.map(to_id),
            category: p.category.map(Into::into),
            name: p.name,
            checklist: p.checklist,
            interval_kind: p.interval_kind.map(Into::into),
            interval_days: p.interval_days,
            anchor: p.anchor.into(),
            start_date: p.start_date,
            lead_days: p.lead_days,
            responsible_user_id: p.responsible_user_id.map(to_id),
            active: p.active,
            created_at: p.created_at,
        }
    }
}

/// 保养任务 one due date of a plan on one device.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct MaintenanceTask {
    /// the task's id
    pub id: ID,
    /// the device's project
    pub project_id: ID,
    /// the plan the task comes from
    pub plan_id: ID,
    /// the plan's name
    pub plan_name: String,
    /// the device to maintain
    pub device_id: ID,
    /// the day it is due (Shanghai calendar day); for a usage task, the day its counter
    /// should get there at the pace it had
    pub due_date: NaiveDate,
    /// a usage task is due when the device's counter reaches this value
    pub due_counter: Option<f64>,
    /// the device's importance (lists show critical devices first)
    pub importance: DeviceImportance,
    /// who is to do it
    pub assignee_id: Option<ID>,
    /// where the task stands
    pub state: MaintenanceTaskState,
    /// the plan's checklist: `completeMaintenanceTask` answers each item once
    pub checklist: Vec<String>,
    /// when the scheduler made the task
    pub created_at: DateTime<Utc>,
    /// when it was completed
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<model::Task> for MaintenanceTask {
    fn from(t: model::Task) -> Self {
        MaintenanceTask {
            id: to_id(t.id),
            project_id: to_id(t.project_id),
            plan_id: to_id(t.plan_id),
            plan_name: t.plan_name,
            device_id: to_id(t.device_id),
            due_date: t.due_date,
            due_counter: t.due_counter,
            importance: t.importance.into(),
            assignee_id: t.assignee_id.map(to_id),
            state: t.state.into(),
            checklist: t.checklist,
            created_at: t.created_at,
            completed_at: t.completed_at,
        }
    }
}

#[ComplexObject]
impl MaintenanceTask {
    /// pending past its due day (by today's Shanghai date)
    async fn overdue(&self, ctx: &Context<'_>) -> bool {
        self.state == MaintenanceTaskState::Pending && self.due_date < service::today(ctx.state())
    }
}

/// One answered checklist item of a record.
#[derive(SimpleObject)]
pub struct ChecklistItemResult {
    /// the checklist item, as the plan words it
    pub item: String,
    /// pass or fail
    pub result: CheckResult,
    /// what the technician noted (empty when nothing)
    pub note: String,
}

impl From<model::ChecklistResult> for ChecklistItemResult {
    fn from(r: model::ChecklistResult) -> Self {
        ChecklistItemResult { item: r.item, result: r.result.into(), note: r.note }
    }
}

/// A part replaced during maintenance.
#[derive(SimpleObject)]
pub struct ReplacedPart {
    /// the part's name
    pub name: String,
    /// how many (pieces)
    pub quantity: i32,
}

impl From<PartUsed> for ReplacedPart {
    fn from(p: PartUsed) -> Self {
        ReplacedPart { name: p.name, quantity: p.quantity }
    }
}

/// 维修保养档案 one entry of a device's archive: a maintenance record, or the repair of a
/// completed work order on the device.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct MaintenanceRecord {
    /// the record's id
    pub id: ID,
    /// maintenance or repair
    pub kind: MaintenanceRecordKind,
    /// the repair's work order (with REPAIR)
    pub work_order_id: Option<ID>,
    /// the device's project
    pub project_id: ID,
    /// the device maintained
    pub device_id: ID,
    /// the task it completed
    pub task_id: Option<ID>,
    /// the plan of that task
    pub plan_id: Option<ID>,
    /// when the work was done
    pub done_at: DateTime<Utc>,
    /// who did it
    pub staff_id: ID,
    /// every checklist item, answered (empty for a repair)
    pub results: Vec<ChecklistItemResult>,
    /// parts replaced
    pub parts: Vec<ReplacedPart>,
    /// the technician's notes, or the repair's result (empty when none)
    pub notes: String,
    /// storage keys of the photos (files the technician uploaded)
    pub photos: Vec<String>,
}

impl From<model::Record> for MaintenanceRecord {
    fn from(r: model::Record) -> Self {
        MaintenanceRecord {
            id: to_id(r.id),
            kind: r.kind.into(),
            work_order_id: r.work_order_id.map(to_id),
            project_id: to_id(r.project_id),
            device_id: to_id(r.device_id),
            task_id: r.task_id.map(to_id),
            plan_id: r.plan_id.map(to_id),
            done_at: r.done_at,
            staff_id: to_id(r.staff_id),
            results: r.results.into_iter().map(ChecklistItemResult::from).collect(),
            parts: r.parts.into_iter().map(ReplacedPart::from).collect(),
            notes: r.notes,
            photos: r.photos,
        }
    }
}

#[ComplexObject]
impl MaintenanceRecord {
    /// the photos, as URLs that work for five minutes
    async fn photo_urls(&self, ctx: &Context<'_>) -> Vec<String> {
        self.photos.iter().map(|k| crate::files::service::signed_url(ctx.state(), k)).collect()
    }
}

pub async fn load_plan(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<MaintenancePlan> {
    let actor = ctx.actor()?;
    Ok(service::plan(ctx.state(), &actor, id).await?.into())
}

pub async fn load_task(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<MaintenanceTask> {
    let actor = ctx.actor()?;
    Ok(service::task(ctx.state(), &actor, id).await?.into())
}

pub async fn load_record(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<MaintenanceRecord> {
    let actor = ctx.actor()?;
    Ok(service::record(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The plan a plan mutation made or changed.
    MaintenancePlanPayload, plan: MaintenancePlan, load_plan, "the plan as it is now"
);
crate::object_payload!(
    /// The record `completeMaintenanceTask` wrote (its task is DONE now).
    CompleteMaintenanceTaskPayload, record: MaintenanceRecord, load_record, "the record as it is now"
);

// ---- queries -------------------------------------------------------------------------------

#[derive(Default)]
pub struct MaintenanceQuery;

#[Object]
impl MaintenanceQuery {
    /// A project's maintenance plans in creation order (`maintenance:read`).
    #[graphql(guard = "Perm::MaintenanceRead")]
    async fn maintenance_plans(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "the project")] project_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<MaintenancePlan>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let p = parse_id("projectId", &project_id)?;
        let rows = service::plans(ctx.state(), &actor, p, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| r.id, MaintenancePlan::from))
    }

    /// Tasks of the most important devices first (critical, normal, low), then by due date
    /// (`maintenance:read`); `mine` for the technician's own list.
    #[graphql(guard = "Perm::MaintenanceRead")]
    #[allow(clippy::too_many_arguments)]
    async fn maintenance_tasks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only this project's tasks")] project_id: Option<ID>,
        #[graphql(desc = "only this device's tasks")] device_id: Option<ID>,
        #[graphql(default, desc = "only tasks assigned to the caller")] mine: bool,
        #[graphql(desc = "only tasks in this state")] state: Option<MaintenanceTaskState>,
        #[graphql(desc = "only tasks due on or before this day (Shanghai)")] due_before: Option<NaiveDate>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<MaintenanceTask>> {
        let actor = ctx.actor()?;
        let page = Page::<(i16, NaiveDate, Uuid)>::new(ctx, first, after)?;
        let f = TaskFilter {
            project_id: parse_opt_id("projectId", project_id.as_ref())?,
            device_id: parse_opt_id("deviceId", device_id.as_ref())?,
            mine,
            state: state.map(Into::into),
            due_before,
        };
        let rows = service::tasks(ctx.state(), &actor, &f, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| (r.importance.rank(), r.due_date, r.id), MaintenanceTask::from))
    }

    /// One maintenance task (`maintenance:read` or `maintenance:do` on its project).
    async fn maintenance_task(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<MaintenanceTask> {
        load_task(ctx, parse_id("id", &id)?).await
    }

    /// A device's archive, newest first: maintenance records and the repairs of its
    /// completed work orders, with their parts (`maintenance:read`).
    #[graphql(guard = "Perm::MaintenanceRead")]
    async fn maintenance_records(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "the device")] device_id: ID,
        #[graphql(desc = "only maintenance, or only repairs")] kind: Option<MaintenanceRecordKind>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<MaintenanceRecord>> {
        let actor = ctx.actor()?;
        let page = Page::<(DateTime<Utc>, Uuid)>::new(ctx, first, after)?;
        let d = parse_id("deviceId", &device_id)?;
        let rows = service::records(ctx.state(), &actor, d, kind.map(Into::into), page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| (r.done_at, r.id), MaintenanceRecord::from))
    }
}

// ---- mutations -----------------------------------------------------------------------------

/// A new maintenance plan: one device or a category, a checklist, an interval.
#[derive(InputObject)]
pub struct CreateMaintenancePlanInput {
    /// the project whose devices the plan covers
    pub project_id: ID,
    /// one device of the project, or
    pub device_id: Option<ID>,
    /// every device of a category in the project
    pub category: Option<DeviceCategory>,
    /// the plan's name, up to 60 characters
    pub name: String,
    /// 1 to 50 distinct items, each up to 100 characters
    pub checklist: Vec<String>,
    /// how often the plan falls due (a calendar plan), or
    pub interval_kind: Option<IntervalKind>,
    /// days between due dates (1-3660), with DAYS only
    pub interval_days: Option<i32>,
    /// the counter it falls due on (a usage plan)
    pub usage: Option<UsageTriggerInput>,
    /// what the next due date counts from
    #[graphql(default_with = "PlanAnchor::Schedule")]
    pub anchor: PlanAnchor,
    /// the first due date (Shanghai calendar day)
    pub start_date: NaiveDate,
    /// tasks appear this many days (0-60) before they are due
    #[graphql(default = 3)]
    pub lead_days: i32,
    /// a staff member told of new tasks (else each device's responsible person)
    pub responsible_user_id: Option<ID>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Pause or resume a plan.
#[derive(InputObject)]
pub struct SetMaintenancePlanActiveInput {
    /// the plan to pause or resume
    pub plan_id: ID,
    /// false pauses the plan: it makes no new tasks
    pub active: bool,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The answer to one checklist item.
#[derive(InputObject)]
pub struct ChecklistResultInput {
    /// the checklist item, as the task lists it
    pub item: String,
    /// pass or fail; a failed item records a repair request on the device
    pub result: CheckResult,
    /// up to 200 characters
    pub note: Option<String>,
}

/// A part replaced.
#[derive(InputObject)]
pub struct ReplacedPartInput {
    /// the part's name, up to 60 characters
    pub name: String,
    /// how many (1-10000 pieces)
    pub quantity: i32,
}

/// 完成保养 the answers, parts, notes and photos of a task.
#[derive(InputObject)]
pub struct CompleteMaintenanceTaskInput {
    /// a pending task
    pub task_id: ID,
    /// every checklist item of the task, answered once
    pub results: Vec<ChecklistResultInput>,
    /// parts replaced (up to 50)
    #[graphql(default)]
    pub parts: Vec<ReplacedPartInput>,
    /// up to 1000 characters
    pub notes: Option<String>,
    /// keys of photos the caller uploaded with `uploadFile` (up to 9)
    #[graphql(default)]
    pub photos: Vec<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct MaintenanceMutation;

#[Object]
impl MaintenanceMutation {
    /// A plan for one device or a category of devices (`maintenance:plan`).
    #[graphql(guard = "Perm::MaintenancePlan")]
    async fn create_maintenance_plan(
        &self,
        ctx: &Context<'_>,
        input: CreateMaintenancePlanInput,
    ) -> async_graphql::Result<MaintenancePlanPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = PlanInput {
            project_id: parse_id("projectId", &input.project_id)?,
            device_id: parse_opt_id("deviceId", input.device_id.as_ref())?,
            category: input.category.map(Into::into),
            name: input.name,
            checklist: input.checklist,
            interval_kind: input.interval_kind.map(Into::into),
            interval_days: input.interval_days,
            usage: input.usage.map(|u| Usage { metric: u.metric, every: u.every, lead: u.lead }),
            anchor: input.anchor.into(),
            start_date: input.start_date,
            lead_days: input.lead_days,
            responsible_user_id: parse_opt_id("responsibleUserId", input.responsible_user_id.as_ref())?,
        };
        let id = service::create_plan(ctx.state(), &actor, &retry, i).await?;
        Ok(MaintenancePlanPayload::new(input.client_mutation_id, id))
    }

    /// Pauses or resumes a plan (`maintenance:plan`).
    #[graphql(guard = "Perm::MaintenancePlan")]
    async fn set_maintenance_plan_active(
        &self,
        ctx: &Context<'_>,
        input: SetMaintenancePlanActiveInput,
    ) -> async_graphql::Result<MaintenancePlanPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("planId", &input.plan_id)?;
        let id = service::set_plan_active(ctx.state(), &actor, &retry, id, input.active).await?;
        Ok(MaintenancePlanPayload::new(input.client_mutation_id, id))
    }

    /// 完成保养 (`maintenance:do`): each failed checklist item records a repair request on the device.
    #[graphql(guard = "Perm::MaintenanceDo")]
    async fn complete_maintenance_task(
        &self,
        ctx: &Context<'_>,
        input: CompleteMaintenanceTaskInput,
    ) -> async_graphql::Result<CompleteMaintenanceTaskPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = CompleteInput {
            task_id: parse_id("taskId", &input.task_id)?,
            results: input
                .results
                .into_iter()
                .map(|r| ItemResult { item: r.item, result: r.result.into(), note: r.note })
                .collect(),
            parts: input.parts.into_iter().map(|p| PartUsed { name: p.name, quantity: p.quantity }).collect(),
            notes: input.notes,
            photos: input.photos,
        };
        let id = service::complete_task(ctx.state(), &actor, &retry, i).await?;
        Ok(CompleteMaintenanceTaskPayload::new(input.client_mutation_id, id))
    }
}
