//! Remote commands over GraphQL: send one, follow it.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model;
use super::service;
use crate::kit::gql::{StateExt, parse_id, to_id};
use crate::rbac::graphql::ActorExt;

/// 指令 what a command asks a device to do.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::CommandKind")]
pub enum DeviceCommandKind {
    /// 远程开门 (access doors; `device:command:door`)
    OpenDoor,
    /// 电梯回基站 (elevators; `device:command:elevator`)
    ElevatorToBase,
    /// 复位 (any device; `device:command:reset`)
    Reset,
}

/// 指令状态 where a command stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::CommandStatus")]
pub enum DeviceCommandStatus {
    /// published, waiting for the device's acknowledgement
    Sent,
    /// the device carried it out
    Succeeded,
    /// refused by the device, no answer within the timeout, or the broker was unreachable
    Failed,
}

/// A command sent to a device.
#[derive(SimpleObject)]
pub struct DeviceCommand {
    /// the command's id
    pub id: ID,
    /// the device it was sent to
    pub device_id: ID,
    /// what it asks
    pub kind: DeviceCommandKind,
    /// where it stands
    pub status: DeviceCommandStatus,
    /// the device's message, `timeout`, or `broker unavailable`
    pub result: String,
    /// when it was published
    pub sent_at: DateTime<Utc>,
    /// when the device answered or it failed
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<model::Command> for DeviceCommand {
    fn from(c: model::Command) -> Self {
        DeviceCommand {
            id: to_id(c.id),
            device_id: to_id(c.device_id),
            kind: c.kind.into(),
            status: c.status.into(),
            result: c.result,
            sent_at: c.sent_at,
            finished_at: c.finished_at,
        }
    }
}

pub async fn load_command(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<DeviceCommand> {
    let actor = ctx.actor()?;
    Ok(service::command(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The command `sendDeviceCommand` sent.
    SendDeviceCommandPayload, command: DeviceCommand, load_command, "the command as it stands now"
);

/// A command for a device.
#[derive(InputObject)]
pub struct SendDeviceCommandInput {
    /// the device to command
    pub device_id: ID,
    /// what to do; the device's category must take it
    pub kind: DeviceCommandKind,
    /// extra parameters for the device: a JSON object under 1 KB (default `{}`)
    pub params: Option<Json<serde_json::Value>>,
    /// makes a retry apply once (the command is published once)
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct CommandMutation;

#[Object]
impl CommandMutation {
    /// 远程控制: sends a command, permission-checked per kind (`device:command:*` over the
    /// device's project) and audited; follow it with `deviceCommand(id)`.
    async fn send_device_command(
        &self,
        ctx: &Context<'_>,
        input: SendDeviceCommandInput,
    ) -> async_graphql::Result<SendDeviceCommandPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let params = input.params.map(|p| p.0).unwrap_or_else(|| serde_json::json!({}));
        let id = service::send_command(
            ctx.state(),
            &actor,
            &retry,
            parse_id("deviceId", &input.device_id)?,
            input.kind.into(),
            params,
        )
        .await?;
        Ok(SendDeviceCommandPayload::new(input.client_mutation_id, id))
    }
}

#[derive(Default)]
pub struct CommandQuery;

#[Object]
impl CommandQuery {
    /// A command the caller sent, or one on a device they may read (`equipment:read`).
    async fn device_command(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<DeviceCommand> {
        load_command(ctx, parse_id("id", &id)?).await
    }
}
