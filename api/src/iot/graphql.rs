//! Live device state and its subscription.

use async_graphql::{Context, ID, Json, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use uuid::Uuid;

use super::service::{self, EVENT_DEVICE_STATE};
use crate::graphql::CtxExt;
use crate::rbac::graphql::parse_id;
use crate::rbac::model::Perm;

/// 实时状态: normal (green), fault (red), offline (grey), maintenance.
#[derive(SimpleObject)]
pub struct DeviceLiveState {
    pub status: String,
    pub last_seen: Option<DateTime<Utc>>,
    /// last value of each metric
    pub values: Json<serde_json::Value>,
    pub last_event: Option<Json<serde_json::Value>>,
}

#[derive(SimpleObject)]
pub struct StatusCount {
    pub status: String,
    pub count: u64,
}

#[derive(SimpleObject)]
pub struct CategoryStatusCount {
    pub category: String,
    pub status: String,
    pub count: u64,
}

/// 设备监控大屏: green normal, red fault, grey offline, maintenance.
#[derive(SimpleObject)]
pub struct DeviceDashboard {
    pub total: u64,
    pub by_status: Vec<StatusCount>,
    pub by_category: Vec<CategoryStatusCount>,
}

#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCommandKind {
    /// 远程开门 (access doors; `device:command:door`)
    OpenDoor,
    /// 电梯回基站 (elevators; `device:command:elevator`)
    ElevatorToBase,
    /// 复位 (any device; `device:command:reset`)
    Reset,
}

#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCommandStatus {
    /// published, waiting for the device's acknowledgement
    Sent,
    Succeeded,
    /// refused by the device, or no answer within the timeout
    Failed,
}

#[derive(SimpleObject)]
pub struct DeviceCommand {
    pub id: ID,
    pub device_id: ID,
    pub kind: String,
    pub status: DeviceCommandStatus,
    /// the device's message, or `timeout`
    pub result: String,
    pub sent_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<super::repo::Command> for DeviceCommand {
    fn from(c: super::repo::Command) -> Self {
        DeviceCommand {
            id: ID(c.id.to_string()),
            device_id: ID(c.device_id.to_string()),
            kind: c.kind,
            status: match c.status.as_str() {
                "succeeded" => DeviceCommandStatus::Succeeded,
                "failed" => DeviceCommandStatus::Failed,
                _ => DeviceCommandStatus::Sent,
            },
            result: c.result,
            sent_at: c.sent_at,
            finished_at: c.finished_at,
        }
    }
}

#[derive(async_graphql::InputObject)]
pub struct SendDeviceCommandInput {
    pub device_id: ID,
    pub kind: DeviceCommandKind,
    pub params: Option<Json<serde_json::Value>>,
}

#[derive(SimpleObject)]
pub struct SendDeviceCommandPayload {
    pub command: DeviceCommand,
}

#[derive(Default)]
pub struct IotMutation;

#[Object]
impl IotMutation {
    /// 远程控制: permission-checked per command kind and audited; poll `deviceCommand(id)`.
    async fn send_device_command(
        &self,
        ctx: &Context<'_>,
        input: SendDeviceCommandInput,
    ) -> async_graphql::Result<SendDeviceCommandPayload> {
        let actor = ctx.actor()?;
        let kind = match input.kind {
            DeviceCommandKind::OpenDoor => "open_door",
            DeviceCommandKind::ElevatorToBase => "elevator_to_base",
            DeviceCommandKind::Reset => "reset",
        };
        let params = input.params.map(|p| p.0).unwrap_or_else(|| serde_json::json!({}));
        let c =
            service::send_command(ctx.state(), &actor, parse_id("deviceId", &input.device_id)?, kind, params).await?;
        Ok(SendDeviceCommandPayload { command: c.into() })
    }
}

#[derive(Default)]
pub struct IotQuery;

#[Object]
impl IotQuery {
    /// A command the caller sent, or one on a device they may read.
    async fn device_command(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<DeviceCommand> {
        let actor = ctx.actor()?;
        Ok(service::command(ctx.state(), &actor, parse_id("id", &id)?).await?.into())
    }

    #[graphql(guard = "Perm::EquipmentRead")]
    async fn device_dashboard(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<DeviceDashboard> {
        let actor = ctx.actor()?;
        let d = service::dashboard(ctx.state(), &actor, parse_id("projectId", &project_id)?).await?;
        Ok(DeviceDashboard {
            total: d.total as u64,
            by_status: d.by_status.into_iter().map(|(status, n)| StatusCount { status, count: n as u64 }).collect(),
            by_category: d
                .by_category
                .into_iter()
                .map(|(category, status, n)| CategoryStatusCount { category, status, count: n as u64 })
                .collect(),
        })
    }

    #[graphql(guard = "Perm::EquipmentRead")]
    async fn device_live_state(&self, ctx: &Context<'_>, device_id: ID) -> async_graphql::Result<DeviceLiveState> {
        let actor = ctx.actor()?;
        let s = service::device_live_state(ctx.state(), &actor, parse_id("deviceId", &device_id)?).await?;
        Ok(DeviceLiveState {
            status: s.status,
            last_seen: s.last_seen,
            values: Json(serde_json::Value::Object(s.values)),
            last_event: s.last_event.map(Json),
        })
    }
}

#[derive(SimpleObject, Clone)]
pub struct DeviceStateChange {
    pub device_id: ID,
    pub status: String,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
pub struct IotSubscription;

#[Subscription]
impl IotSubscription {
    /// Status changes of a project's devices, from whichever replica ingested them.
    async fn device_state_changed(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = DeviceStateChange> + use<>> {
        let actor = ctx.actor()?;
        let project = parse_id("projectId", &project_id)?;
        service::check_project(&actor, project)?;
        let rx = ctx.state().events.subscribe();
        Ok(futures_util::stream::unfold(rx, move |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev)
                        if ev.kind == EVENT_DEVICE_STATE
                            && ev.payload["projectId"].as_str() == Some(project.to_string().as_str()) =>
                    {
                        let p = &ev.payload;
                        let change = (|| {
                            Some(DeviceStateChange {
                                device_id: ID(p["deviceId"].as_str()?.parse::<Uuid>().ok()?.to_string()),
                                status: p["status"].as_str()?.to_owned(),
                                at: serde_json::from_value(p["at"].clone()).ok()?,
                            })
                        })();
                        if let Some(c) = change {
                            return Some((c, rx));
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }
}
