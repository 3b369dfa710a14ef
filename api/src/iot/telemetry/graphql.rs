//! Live device state: one device, a project's dashboard, and status changes as they happen.

use async_graphql::{Context, Enum, ID, Json, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use uuid::Uuid;

use super::model::{self, EVENT_DEVICE_STATE};
use super::service;
use crate::equipment::graphql::DeviceCategory;
use crate::kit::gql::{StateExt, parse_id, to_id};
use crate::rbac::graphql::{ActorExt, LiveGrant};
use crate::rbac::model::Perm;

/// 实时状态 how a device is doing now.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::LiveStatus")]
pub enum DeviceLiveStatus {
    /// 正常 (green) reporting, no open fault
    Normal,
    /// 故障 (red) a fault code or an alarm is open
    Fault,
    /// 离线 (grey) silent longer than its category allows, said offline, or never heard from
    Offline,
    /// 维修中 under repair in the ledger, whatever it reports (dashboard only)
    Maintenance,
}

/// A device's live state.
#[derive(SimpleObject)]
pub struct DeviceLiveState {
    /// how the device is doing now
    pub status: DeviceLiveStatus,
    /// the last message from the device (any kind)
    pub last_seen: Option<DateTime<Utc>>,
    /// the last value of each metric, e.g. `{"pressureMpa": 0.42}`
    pub values: Json<serde_json::Value>,
    /// the last event the device reported: `{code, message, cleared, at}`
    pub last_event: Option<Json<serde_json::Value>>,
}

impl From<model::LiveState> for DeviceLiveState {
    fn from(s: model::LiveState) -> Self {
        DeviceLiveState {
            status: s.status.into(),
            last_seen: s.last_seen,
            values: Json(serde_json::Value::Object(s.values)),
            last_event: s.last_event.map(Json),
        }
    }
}

/// How many devices have a live status.
#[derive(SimpleObject)]
pub struct StatusCount {
    /// the live status
    pub status: DeviceLiveStatus,
    /// devices with it
    pub count: u64,
}

/// How many devices of a category have a live status.
#[derive(SimpleObject)]
pub struct CategoryStatusCount {
    /// the device category
    pub category: DeviceCategory,
    /// the live status
    pub status: DeviceLiveStatus,
    /// devices of the category with it
    pub count: u64,
}

/// 设备监控大屏 a project's devices by live status (scrapped devices left out).
#[derive(SimpleObject)]
pub struct DeviceDashboard {
    /// devices counted
    pub total: u64,
    /// every live status with its count (zeros included)
    pub by_status: Vec<StatusCount>,
    /// the (category, status) pairs that have devices
    pub by_category: Vec<CategoryStatusCount>,
}

#[derive(Default)]
pub struct TelemetryQuery;

#[Object]
impl TelemetryQuery {
    /// 设备监控大屏: counts of a project's devices by live status (`equipment:read`).
    #[graphql(guard = "Perm::EquipmentRead")]
    async fn device_dashboard(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<DeviceDashboard> {
        let actor = ctx.actor()?;
        let d = service::dashboard(ctx.state(), &actor, parse_id("projectId", &project_id)?).await?;
        Ok(DeviceDashboard {
            total: d.total as u64,
            by_status: d
                .by_status
                .into_iter()
                .map(|(status, n)| StatusCount { status: status.into(), count: n as u64 })
                .collect(),
            by_category: d
                .by_category
                .into_iter()
                .map(|(category, status, n)| CategoryStatusCount {
                    category: category.into(),
                    status: status.into(),
                    count: n as u64,
                })
                .collect(),
        })
    }

    /// A device's live state (`equipment:read` over its project).
    #[graphql(guard = "Perm::EquipmentRead")]
    async fn device_live_state(&self, ctx: &Context<'_>, device_id: ID) -> async_graphql::Result<DeviceLiveState> {
        let actor = ctx.actor()?;
        Ok(service::device_live_state(ctx.state(), &actor, parse_id("deviceId", &device_id)?).await?.into())
    }
}

/// A device's live status changed.
#[derive(SimpleObject, Clone)]
pub struct DeviceStateChange {
    /// the device
    pub device_id: ID,
    /// its new live status
    pub status: DeviceLiveStatus,
    /// when the server saw the change
    pub at: DateTime<Utc>,
}

fn change(p: &serde_json::Value) -> Option<DeviceStateChange> {
    Some(DeviceStateChange {
        device_id: to_id(p["deviceId"].as_str()?.parse::<Uuid>().ok()?),
        status: model::LiveStatus::parse(p["status"].as_str()?)?.into(),
        at: serde_json::from_value(p["at"].clone()).ok()?,
    })
}

#[derive(Default)]
pub struct TelemetrySubscription;

#[Subscription]
impl TelemetrySubscription {
    /// Live status changes of a project's devices, from whichever replica ingested them
    /// (`equipment:read` over the project).
    async fn device_state_changed(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = DeviceStateChange> + use<>> {
        let actor = ctx.actor()?;
        let project = parse_id("projectId", &project_id)?;
        service::check_project(ctx.state(), &actor, project).await?;
        let rx = ctx.state().events.subscribe();
        let grant = LiveGrant {
            state: ctx.state().clone(),
            user_id: actor.user_id,
            company_id: actor.company_id,
            perm: Perm::EquipmentRead,
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
                            if ev.kind == EVENT_DEVICE_STATE
                                && ev.payload["projectId"].as_str() == Some(project.as_str()) =>
                        {
                            if !grant.still_allowed().await {
                                return None;
                            }
                            if let Some(c) = change(&ev.payload) {
                                return Some((c, rx));
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
