//! Maintenance plans, tasks, records and patrols over GraphQL.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::repo;
use super::service::{self, CheckpointInput, CompleteInput, ItemResult, Part, PlanInput, RouteInput, TaskFilter};
use crate::graphql::CtxExt;
use crate::rbac::graphql::parse_id;
use crate::rbac::model::Perm;

fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum IntervalKind {
    /// 月度保养
    Monthly,
    /// 季度保养
    Quarterly,
    /// 年度全面检查
    Yearly,
    /// every `intervalDays` days
    Days,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum PlanAnchor {
    /// due dates follow the calendar from the start date
    Schedule,
    /// the next due date counts from the last completion
    Completion,
}

/// 保养计划
#[derive(SimpleObject)]
pub struct MaintenancePlan {
    pub id: ID,
    pub project_id: ID,
    pub device_id: Option<ID>,
    pub category: Option<String>,
    pub name: String,
    pub checklist: Vec<String>,
    pub interval_kind: String,
    pub interval_days: Option<i32>,
    pub anchor: String,
    pub start_date: NaiveDate,
    /// tasks appear this many days before they are due
    pub lead_days: i32,
    pub responsible_user_id: Option<ID>,
    pub active: bool,
}

impl From<repo::Plan> for MaintenancePlan {
    fn from(p: repo::Plan) -> Self {
        MaintenancePlan {
            id: id(p.id),
            project_id: id(p.project_id),
            device_id: p.device_id.map(id),
            category: p.category,
            name: p.name,
            checklist: p.checklist,
            interval_kind: p.interval_kind,
            interval_days: p.interval_days,
            anchor: p.anchor,
            start_date: p.start_date,
            lead_days: p.lead_days,
            responsible_user_id: p.responsible_user_id.map(id),
            active: p.active,
        }
    }
}

/// 保养任务
#[derive(SimpleObject)]
pub struct MaintenanceTask {
    pub id: ID,
    pub project_id: ID,
    pub plan_id: ID,
    pub plan_name: String,
    pub device_id: ID,
    pub due_date: NaiveDate,
    pub assignee_id: Option<ID>,
    /// pending | done | cancelled
    pub state: String,
    /// pending past its due day
    pub overdue: bool,
    pub checklist: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

fn task(t: repo::Task, today: NaiveDate) -> MaintenanceTask {
    MaintenanceTask {
        id: id(t.id),
        project_id: id(t.project_id),
        plan_id: id(t.plan_id),
        plan_name: t.plan_name,
        device_id: id(t.device_id),
        due_date: t.due_date,
        assignee_id: t.assignee_id.map(id),
        overdue: t.state == "pending" && t.due_date < today,
        state: t.state,
        checklist: t.checklist,
        created_at: t.created_at,
        completed_at: t.completed_at,
    }
}

/// 保养记录: the device's maintenance archive.
#[derive(SimpleObject)]
pub struct MaintenanceRecord {
    pub id: ID,
    pub device_id: ID,
    pub task_id: Option<ID>,
    pub plan_id: Option<ID>,
    pub done_at: DateTime<Utc>,
    pub staff_id: ID,
    /// `[{item, passed, note}]`
    pub results: Json<serde_json::Value>,
    /// `[{name, quantity}]`
    pub parts: Json<serde_json::Value>,
    pub notes: String,
    pub photos: Vec<String>,
}

impl From<repo::Record> for MaintenanceRecord {
    fn from(r: repo::Record) -> Self {
        MaintenanceRecord {
            id: id(r.id),
            device_id: id(r.device_id),
            task_id: r.task_id.map(id),
            plan_id: r.plan_id.map(id),
            done_at: r.done_at,
            staff_id: id(r.staff_id),
            results: Json(r.results),
            parts: Json(r.parts),
            notes: r.notes,
            photos: r.photos,
        }
    }
}

#[derive(SimpleObject)]
pub struct PatrolCheckpoint {
    pub id: ID,
    pub seq: i32,
    pub name: String,
    /// the QR label's content
    pub code: String,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub radius_m: i32,
}

impl From<repo::Checkpoint> for PatrolCheckpoint {
    fn from(c: repo::Checkpoint) -> Self {
        PatrolCheckpoint {
            id: id(c.id),
            seq: c.seq,
            name: c.name,
            code: c.code,
            lat: c.lat,
            lng: c.lng,
            radius_m: c.radius_m,
        }
    }
}

/// 巡检路线
#[derive(SimpleObject)]
pub struct PatrolRoute {
    pub id: ID,
    pub project_id: ID,
    pub name: String,
    /// start times (HH:MM, Shanghai)
    pub times: Vec<String>,
    pub window_minutes: i32,
    pub active: bool,
    pub checkpoints: Vec<PatrolCheckpoint>,
}

fn route((r, points): (repo::Route, Vec<repo::Checkpoint>)) -> PatrolRoute {
    PatrolRoute {
        id: id(r.id),
        project_id: id(r.project_id),
        name: r.name,
        times: r.times,
        window_minutes: r.window_minutes,
        active: r.active,
        checkpoints: points.into_iter().map(PatrolCheckpoint::from).collect(),
    }
}

#[derive(SimpleObject)]
pub struct PatrolScan {
    pub checkpoint_id: ID,
    pub user_id: ID,
    pub scanned_at: DateTime<Utc>,
    pub lat: f64,
    pub lng: f64,
    pub distance_m: Option<f64>,
}

impl From<repo::Scan> for PatrolScan {
    fn from(s: repo::Scan) -> Self {
        PatrolScan {
            checkpoint_id: id(s.checkpoint_id),
            user_id: id(s.user_id),
            scanned_at: s.scanned_at,
            lat: s.lat,
            lng: s.lng,
            distance_m: s.distance_m,
        }
    }
}

/// 巡检任务
#[derive(SimpleObject)]
pub struct PatrolTask {
    pub id: ID,
    pub route_id: ID,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// pending | completed | missed
    pub state: String,
    /// names of the checkpoints not scanned in time
    pub missed: Vec<String>,
    pub scans: Vec<PatrolScan>,
}

#[derive(Default)]
pub struct MaintenanceQuery;

#[Object]
impl MaintenanceQuery {
    #[graphql(guard = "Perm::MaintenanceRead")]
    async fn maintenance_plans(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
    ) -> async_graphql::Result<Vec<MaintenancePlan>> {
        let actor = ctx.actor()?;
        let p = parse_id("projectId", &project_id)?;
        Ok(service::plans(ctx.state(), &actor, p).await?.into_iter().map(MaintenancePlan::from).collect())
    }

    /// Tasks by due date; `mine` for the technician's own list.
    #[graphql(guard = "Perm::MaintenanceRead")]
    #[allow(clippy::too_many_arguments)]
    async fn maintenance_tasks(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        device_id: Option<ID>,
        #[graphql(default)] mine: bool,
        state: Option<String>,
        due_before: Option<NaiveDate>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<MaintenanceTask>> {
        let actor = ctx.actor()?;
        let f = TaskFilter {
            project_id: project_id.as_ref().map(|p| parse_id("projectId", p)).transpose()?,
            device_id: device_id.as_ref().map(|p| parse_id("deviceId", p)).transpose()?,
            mine,
            state,
            due_before,
            first,
        };
        let today = service::today(ctx.state());
        Ok(service::tasks(ctx.state(), &actor, f).await?.into_iter().map(|t| task(t, today)).collect())
    }

    /// A device's maintenance archive, newest first.
    #[graphql(guard = "Perm::MaintenanceRead")]
    async fn maintenance_records(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<MaintenanceRecord>> {
        let actor = ctx.actor()?;
        let d = parse_id("deviceId", &device_id)?;
        Ok(service::records(ctx.state(), &actor, d, first).await?.into_iter().map(MaintenanceRecord::from).collect())
    }

    #[graphql(guard = "Perm::PatrolRead")]
    async fn patrol_routes(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<Vec<PatrolRoute>> {
        let actor = ctx.actor()?;
        let p = parse_id("projectId", &project_id)?;
        Ok(service::routes(ctx.state(), &actor, p).await?.into_iter().map(route).collect())
    }

    /// Patrols starting within `from`…`to` (up to 31 days), with their scans and missed points.
    #[graphql(guard = "Perm::PatrolRead")]
    async fn patrol_tasks(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> async_graphql::Result<Vec<PatrolTask>> {
        let actor = ctx.actor()?;
        let p = parse_id("projectId", &project_id)?;
        Ok(service::patrol_tasks(ctx.state(), &actor, p, from, to)
            .await?
            .into_iter()
            .map(|(t, scans)| PatrolTask {
                id: id(t.id),
                route_id: id(t.route_id),
                starts_at: t.starts_at,
                ends_at: t.ends_at,
                state: t.state,
                missed: t.missed,
                scans: scans.into_iter().map(PatrolScan::from).collect(),
            })
            .collect())
    }
}

#[derive(InputObject)]
pub struct MaintenancePlanInput {
    pub project_id: ID,
    /// one device, or
    pub device_id: Option<ID>,
    /// every device of a category in the project
    pub category: Option<String>,
    pub name: String,
    pub checklist: Vec<String>,
    pub interval_kind: IntervalKind,
    pub interval_days: Option<i32>,
    #[graphql(default_with = "PlanAnchor::Schedule")]
    pub anchor: PlanAnchor,
    pub start_date: NaiveDate,
    #[graphql(default = 3)]
    pub lead_days: i32,
    pub responsible_user_id: Option<ID>,
}

#[derive(InputObject)]
pub struct ChecklistResultInput {
    pub item: String,
    pub passed: bool,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct PartInput {
    pub name: String,
    pub quantity: i32,
}

#[derive(InputObject)]
pub struct CompleteMaintenanceTaskInput {
    pub task_id: ID,
    pub results: Vec<ChecklistResultInput>,
    #[graphql(default)]
    pub parts: Vec<PartInput>,
    pub notes: Option<String>,
    /// keys of uploaded photos
    #[graphql(default)]
    pub photos: Vec<String>,
}

#[derive(InputObject)]
pub struct CheckpointInputGql {
    pub name: String,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub radius_m: Option<i32>,
}

#[derive(InputObject)]
pub struct PatrolRouteInput {
    pub project_id: ID,
    pub name: String,
    /// start times HH:MM (Shanghai)
    pub times: Vec<String>,
    #[graphql(default = 60)]
    pub window_minutes: i32,
    /// in walking order
    pub checkpoints: Vec<CheckpointInputGql>,
}

#[derive(Default)]
pub struct MaintenanceMutation;

#[Object]
impl MaintenanceMutation {
    #[graphql(guard = "Perm::MaintenancePlan")]
    async fn create_maintenance_plan(
        &self,
        ctx: &Context<'_>,
        input: MaintenancePlanInput,
    ) -> async_graphql::Result<MaintenancePlan> {
        let actor = ctx.actor()?;
        let i = PlanInput {
            project_id: parse_id("projectId", &input.project_id)?,
            device_id: input.device_id.as_ref().map(|p| parse_id("deviceId", p)).transpose()?,
            category: input.category,
            name: input.name,
            checklist: input.checklist,
            interval_kind: match input.interval_kind {
                IntervalKind::Monthly => "monthly",
                IntervalKind::Quarterly => "quarterly",
                IntervalKind::Yearly => "yearly",
                IntervalKind::Days => "days",
            }
            .to_owned(),
            interval_days: input.interval_days,
            anchor: if input.anchor == PlanAnchor::Completion { "completion" } else { "schedule" }.to_owned(),
            start_date: input.start_date,
            lead_days: input.lead_days,
            responsible_user_id: input
                .responsible_user_id
                .as_ref()
                .map(|p| parse_id("responsibleUserId", p))
                .transpose()?,
        };
        Ok(service::create_plan(ctx.state(), &actor, i).await?.into())
    }

    #[graphql(guard = "Perm::MaintenancePlan")]
    async fn set_maintenance_plan_active(
        &self,
        ctx: &Context<'_>,
        id: ID,
        active: bool,
    ) -> async_graphql::Result<MaintenancePlan> {
        let actor = ctx.actor()?;
        Ok(service::set_plan_active(ctx.state(), &actor, parse_id("id", &id)?, active).await?.into())
    }

    /// 完成保养: each failed checklist item records a repair request on the device.
    #[graphql(guard = "Perm::MaintenanceDo")]
    async fn complete_maintenance_task(
        &self,
        ctx: &Context<'_>,
        input: CompleteMaintenanceTaskInput,
    ) -> async_graphql::Result<MaintenanceRecord> {
        let actor = ctx.actor()?;
        let i = CompleteInput {
            task_id: parse_id("taskId", &input.task_id)?,
            results: input
                .results
                .into_iter()
                .map(|r| ItemResult { item: r.item, passed: r.passed, note: r.note })
                .collect(),
            parts: input.parts.into_iter().map(|p| Part { name: p.name, quantity: p.quantity }).collect(),
            notes: input.notes,
            photos: input.photos,
        };
        Ok(service::complete_task(ctx.state(), &actor, i).await?.into())
    }

    #[graphql(guard = "Perm::PatrolWrite")]
    async fn create_patrol_route(
        &self,
        ctx: &Context<'_>,
        input: PatrolRouteInput,
    ) -> async_graphql::Result<PatrolRoute> {
        let actor = ctx.actor()?;
        let i = RouteInput {
            project_id: parse_id("projectId", &input.project_id)?,
            name: input.name,
            times: input.times,
            window_minutes: input.window_minutes,
            checkpoints: input
                .checkpoints
                .into_iter()
                .map(|c| CheckpointInput { name: c.name, lat: c.lat, lng: c.lng, radius_m: c.radius_m })
                .collect(),
        };
        Ok(route(service::create_route(ctx.state(), &actor, i).await?))
    }

    /// 巡检打卡: the scanned code and where the guard stands.
    #[graphql(guard = "Perm::PatrolDo")]
    async fn scan_checkpoint(
        &self,
        ctx: &Context<'_>,
        code: String,
        lat: f64,
        lng: f64,
    ) -> async_graphql::Result<PatrolScan> {
        let actor = ctx.actor()?;
        Ok(service::scan(ctx.state(), &actor, &code, lat, lng).await?.into())
    }
}
