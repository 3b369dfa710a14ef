//! Patrol routes, patrols and checkpoint scans over GraphQL.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{self, CheckpointInput, RouteInput};
use super::service;
use crate::kit::gql::{Conn, StateExt, group_by, load_one, parse_id, to_id};
use crate::kit::pagination::Page;
use crate::kit::state::AppState;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

// ---- enums -------------------------------------------------------------------------------

/// 巡检任务状态 where a scheduled patrol stands
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::PatrolState")]
pub enum PatrolTaskState {
    /// scheduled or under way: its window has not closed and not every point is scanned
    Pending,
    /// every checkpoint was scanned
    Completed,
    /// the window closed with points unscanned (`missed` names them)
    Missed,
}

// ---- loaders -----------------------------------------------------------------------------

/// Checkpoints per route, batched per request.
pub struct CheckpointsLoader(pub AppState);

impl From<AppState> for CheckpointsLoader {
    fn from(s: AppState) -> Self {
        CheckpointsLoader(s)
    }
}

impl Loader<Uuid> for CheckpointsLoader {
    type Value = Vec<model::Checkpoint>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::checkpoints_of_routes(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |c| c.route_id))
    }
}

/// Scans per patrol, batched per request.
pub struct ScansLoader(pub AppState);

impl From<AppState> for ScansLoader {
    fn from(s: AppState) -> Self {
        ScansLoader(s)
    }
}

impl Loader<Uuid> for ScansLoader {
    type Value = Vec<model::Scan>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::scans_of_tasks(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |s| s.task_id))
    }
}

// ---- objects -----------------------------------------------------------------------------

/// 巡检点 one QR label on a route.
#[derive(SimpleObject)]
pub struct PatrolCheckpoint {
    /// the checkpoint's id
    pub id: ID,
    /// walking order, from 1
    pub seq: i32,
    /// where it is, e.g. 东门
    pub name: String,
    /// the QR label's content, to print on the label; null unless the caller manages the
    /// project's routes (`patrol:write`): a guard who could read it could scan from anywhere
    pub code: Option<String>,
    /// latitude of the point (null: any position is accepted, or the caller does not
    /// manage the routes)
    pub lat: Option<f64>,
    /// longitude of the point (as `lat`)
    pub lng: Option<f64>,
    /// metres from the point a scan is accepted
    pub radius_m: i32,
}

impl PatrolCheckpoint {
    /// A checkpoint as the caller may see it: its code and position only for managers.
    fn shown(c: model::Checkpoint, manager: bool) -> Self {
        PatrolCheckpoint {
            id: to_id(c.id),
            seq: c.seq,
            name: c.name,
            code: manager.then_some(c.code),
            lat: c.lat.filter(|_| manager),
            lng: c.lng.filter(|_| manager),
            radius_m: c.radius_m,
        }
    }
}

/// 巡检路线 checkpoints walked in order, at fixed start times each day.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PatrolRoute {
    /// the route's id
    pub id: ID,
    /// the project the route is in
    pub project_id: ID,
    /// the route's name, e.g. 夜间巡逻
    pub name: String,
    /// start times `HH:MM`, Shanghai time
    pub times: Vec<String>,
    /// minutes a patrol may take from its start time
    pub window_minutes: i32,
    /// false: no patrols are scheduled
    pub active: bool,
    #[graphql(skip)]
    route_id: Uuid,
    #[graphql(skip)]
    project: Uuid,
}

impl From<model::Route> for PatrolRoute {
    fn from(r: model::Route) -> Self {
        PatrolRoute {
            id: to_id(r.id),
            project_id: to_id(r.project_id),
            name: r.name,
            times: r.times,
            window_minutes: r.window_minutes,
            active: r.active,
            route_id: r.id,
            project: r.project_id,
        }
    }
}

#[ComplexObject]
impl PatrolRoute {
    /// the checkpoints, in walking order
    async fn checkpoints(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PatrolCheckpoint>> {
        let manager = ctx.actor()?.require_project(Perm::PatrolWrite, self.project).is_ok();
        let rows = load_one::<CheckpointsLoader>(ctx, self.route_id).await?;
        Ok(rows.unwrap_or_default().into_iter().map(|c| PatrolCheckpoint::shown(c, manager)).collect())
    }
}

/// 巡检打卡 one checkpoint scanned during a patrol.
#[derive(SimpleObject)]
pub struct PatrolScan {
    /// the scan's id
    pub id: ID,
    /// the patrol it belongs to
    pub task_id: ID,
    /// the checkpoint scanned
    pub checkpoint_id: ID,
    /// who scanned it
    pub user_id: ID,
    /// when
    pub scanned_at: DateTime<Utc>,
    /// latitude where the guard stood
    pub lat: f64,
    /// longitude where the guard stood
    pub lng: f64,
    /// metres from the checkpoint (null when the point has no position)
    pub distance_m: Option<f64>,
    /// how precise the phone said its position was, metres
    pub accuracy_m: Option<f64>,
}

impl From<model::Scan> for PatrolScan {
    fn from(s: model::Scan) -> Self {
        PatrolScan {
            id: to_id(s.id),
            task_id: to_id(s.task_id),
            checkpoint_id: to_id(s.checkpoint_id),
            user_id: to_id(s.user_id),
            scanned_at: s.scanned_at,
            lat: s.lat,
            lng: s.lng,
            distance_m: s.distance_m,
            accuracy_m: s.accuracy_m,
        }
    }
}

/// 巡检任务 one scheduled walk of a route.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PatrolTask {
    /// the patrol's id
    pub id: ID,
    /// the route walked
    pub route_id: ID,
    /// when the patrol starts
    pub starts_at: DateTime<Utc>,
    /// when its window closes
    pub ends_at: DateTime<Utc>,
    /// where the patrol stands
    pub state: PatrolTaskState,
    /// names of the checkpoints not scanned in time
    pub missed: Vec<String>,
    #[graphql(skip)]
    task_id: Uuid,
}

impl From<model::PatrolTask> for PatrolTask {
    fn from(t: model::PatrolTask) -> Self {
        PatrolTask {
            id: to_id(t.id),
            route_id: to_id(t.route_id),
            starts_at: t.starts_at,
            ends_at: t.ends_at,
            state: t.state.into(),
            missed: t.missed,
            task_id: t.id,
        }
    }
}

#[ComplexObject]
impl PatrolTask {
    /// the checkpoints scanned so far, in the order they were scanned
    async fn scans(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PatrolScan>> {
        let rows = load_one::<ScansLoader>(ctx, self.task_id).await?;
        Ok(rows.unwrap_or_default().into_iter().map(PatrolScan::from).collect())
    }
}

pub async fn load_route(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<PatrolRoute> {
    let actor = ctx.actor()?;
    Ok(service::route(ctx.state(), &actor, id).await?.into())
}

pub async fn load_scan(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<PatrolScan> {
    let actor = ctx.actor()?;
    Ok(service::scan(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The route `createPatrolRoute` made.
    PatrolRoutePayload, route: PatrolRoute, load_route, "the route as it is now, with its checkpoints"
);
crate::object_payload!(
    /// The scan `scanCheckpoint` recorded (a retry shows the same scan).
    ScanCheckpointPayload, scan: PatrolScan, load_scan, "the scan"
);

// ---- queries -------------------------------------------------------------------------------

#[derive(Default)]
pub struct PatrolQuery;

#[Object]
impl PatrolQuery {
    /// A project's patrol routes in creation order (`patrol:read`).
    #[graphql(guard = "Perm::PatrolRead")]
    async fn patrol_routes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "the project")] project_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<PatrolRoute>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let p = parse_id("projectId", &project_id)?;
        let rows = service::routes(ctx.state(), &actor, p, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| r.id, PatrolRoute::from))
    }

    /// Patrols starting within `from`…`to` (up to 31 days) by start time, with their scans
    /// and missed points (`patrol:read`).
    #[graphql(guard = "Perm::PatrolRead")]
    async fn patrol_tasks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "the project")] project_id: ID,
        #[graphql(desc = "patrols starting at or after this instant")] from: DateTime<Utc>,
        #[graphql(desc = "patrols starting before this instant")] to: DateTime<Utc>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<PatrolTask>> {
        let actor = ctx.actor()?;
        let page = Page::<(DateTime<Utc>, Uuid)>::new(ctx, first, after)?;
        let p = parse_id("projectId", &project_id)?;
        let rows = service::patrol_tasks(ctx.state(), &actor, p, from, to, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| (r.starts_at, r.id), PatrolTask::from))
    }
}

// ---- mutations -----------------------------------------------------------------------------

/// A checkpoint of a new route.
#[derive(InputObject)]
pub struct PatrolCheckpointInput {
    /// where it is, up to 60 characters
    pub name: String,
    /// latitude (-90..90); give both coordinates or neither
    pub lat: Option<f64>,
    /// longitude (-180..180)
    pub lng: Option<f64>,
    /// metres from the point a scan is accepted (5-1000, default 50)
    pub radius_m: Option<i32>,
}

/// A new patrol route.
#[derive(InputObject)]
pub struct CreatePatrolRouteInput {
    /// the project the route is in
    pub project_id: ID,
    /// the route's name, up to 60 characters
    pub name: String,
    /// 1 to 24 start times `HH:MM`, Shanghai time
    pub times: Vec<String>,
    /// minutes a patrol may take from its start time (10-720)
    #[graphql(default = 60)]
    pub window_minutes: i32,
    /// 1 to 100 checkpoints, in walking order
    pub checkpoints: Vec<PatrolCheckpointInput>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 巡检打卡 a scanned QR code and where the guard stands.
#[derive(InputObject)]
pub struct ScanCheckpointInput {
    /// the QR label's content
    pub code: String,
    /// latitude where the guard stands
    pub lat: f64,
    /// longitude where the guard stands
    pub lng: f64,
    /// how precise the phone says that position is, metres (its reported horizontal
    /// accuracy); at most `patrol.max_accuracy_m` (50 m) is accepted
    pub accuracy_m: f64,
    /// makes a retry apply once: a resent scan answers with the scan it made
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct PatrolMutation;

#[Object]
impl PatrolMutation {
    /// A route with its checkpoints; each gets a QR code to print (`patrol:write`).
    #[graphql(guard = "Perm::PatrolWrite")]
    async fn create_patrol_route(
        &self,
        ctx: &Context<'_>,
        input: CreatePatrolRouteInput,
    ) -> async_graphql::Result<PatrolRoutePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
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
        let id = service::create_route(ctx.state(), &actor, &retry, i).await?;
        Ok(PatrolRoutePayload::new(input.client_mutation_id, id))
    }

    /// 巡检打卡 (`patrol:do`): the next point of a patrol under way, within its radius.
    #[graphql(guard = "Perm::PatrolDo")]
    async fn scan_checkpoint(
        &self,
        ctx: &Context<'_>,
        input: ScanCheckpointInput,
    ) -> async_graphql::Result<ScanCheckpointPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let at = service::GpsFix { lat: input.lat, lng: input.lng, accuracy_m: input.accuracy_m };
        let id = service::scan_checkpoint(ctx.state(), &actor, &retry, &input.code, at).await?;
        Ok(ScanCheckpointPayload::new(input.client_mutation_id, id))
    }
}
