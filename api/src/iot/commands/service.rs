//! Remote commands: recorded and audited first, then published to
//! `{root}/{project}/{device}/command` as `{"id", "kind", "params"}`; the device answers on
//! `.../command/ack` with `{"id", "ok", "message"}`, or the command fails after the timeout.

use chrono::TimeDelta;
use uuid::Uuid;

use super::model::{Command, CommandKind, CommandStatus, NewCommand, parse_ack, parse_ack_topic};
use super::repo;
use crate::iot::telemetry::model::{IngestError, Rejected};
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::rbac::model::Actor;

/// Sends a command to a device: the kind's own permission over the device's project, a
/// kind the device's category takes, params a JSON object under 1 KB. Returns its id; the
/// device's answer arrives later (poll `command`).
pub async fn send_command(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    device_id: Uuid,
    kind: CommandKind,
    params: serde_json::Value,
) -> AppResult<Uuid> {
    let (_, perm) = kind.rule();
    if !params.is_object() || params.to_string().len() > 1024 {
        return Err(AppError::validation(
            "params",
            Msg::new("参数应为不超过1KB的JSON对象", "Params must be a JSON object under 1 KB"),
        ));
    }
    // the device and project do not change with the command: read them before the
    // transaction, so a waiting retry never holds a second connection
    let device = crate::equipment::service::device_for_command(state, actor, device_id).await?;
    actor.require_project(perm, device.project_id)?;
    if !kind.fits(device.category) {
        return Err(AppError::validation(
            "kind",
            Msg::new("该设备不支持此指令", "This device does not take this command"),
        ));
    }
    let project = crate::org::company::service::project(state, actor, perm, device.project_id).await?;
    let path = crate::equipment::service::topic_path(state, actor, device_id).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let id = Uuid::now_v7();
    let now = state.clock.now();
    repo::insert_command(
        &mut tx,
        &NewCommand {
            id,
            company_id: actor.company_id,
            project_id: project.id,
            device_id,
            kind,
            params: &params,
            requested_by: actor.user_id,
            sent_at: now,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "device.command",
        "device",
        Some(device_id),
        serde_json::json!({ "command": id, "kind": kind }),
    )
    .await?;
    tx.commit(&id).await?;
    let topic = path.topic(&state.config.mqtt_topic_root, "command");
    let body = serde_json::json!({ "id": id, "kind": kind, "params": params }).to_string();
    if let Err(e) = state.mqtt.publish(topic, rumqttc::QoS::AtLeastOnce, false, body).await {
        tracing::warn!(error = %e, "command not handed to the broker");
        repo::finish_command(&state.db, id, device_id, CommandStatus::Failed, "broker unavailable", now).await?;
    }
    Ok(id)
}

/// A command the caller sent, or one on a device they may read.
pub async fn command(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Command> {
    let c = repo::get_command(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("command"))?;
    // whoever sent it may follow it (a guard opening a door need not read the ledger)
    if c.requested_by != actor.user_id {
        crate::equipment::service::device(state, actor, c.device_id).await?;
    }
    Ok(c)
}

/// A device's answer on `{root}/{company}/{project}/{device}/command/ack` (from ingest).
pub async fn command_ack(state: &AppState, topic: &str, payload: &[u8]) -> Result<(), IngestError> {
    let path = parse_ack_topic(&state.config.mqtt_topic_root, topic)?;
    let ack = parse_ack(payload)?;
    let (device_id, _, _) = crate::equipment::service::for_topic(state, &path).await?.ok_or(Rejected::UnknownDevice)?;
    let message: String = ack.message.chars().take(200).collect();
    let status = if ack.ok { CommandStatus::Succeeded } else { CommandStatus::Failed };
    repo::finish_command(&state.db, ack.id, device_id, status, &message, state.clock.now())
        .await
        .map_err(AppError::from)?;
    Ok(())
}

/// Commands without an answer within `command_timeout_secs` have failed (every replica
/// runs it each second from the MQTT upkeep; it is idempotent).
pub async fn time_out_commands(state: &AppState) -> AppResult<()> {
    let now = state.clock.now();
    let cutoff = now - TimeDelta::seconds(state.config.command_timeout_secs as i64);
    repo::time_out_commands(&state.db, cutoff, now).await?;
    Ok(())
}
