//! Ingest: one device message → history (PostgreSQL), live state (Redis), and a
//! `DEVICE_STATE` event when the device's status changes.

use chrono::{DateTime, TimeDelta, Utc};
use redis::AsyncCommands;
use uuid::Uuid;

use super::model::{self, Kind, Rejected};
use super::repo;
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::rbac::model::{Actor, Perm};

pub const EVENT_DEVICE_STATE: &str = "DEVICE_STATE";

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// the message is wrong: counted, logged at a limited rate, acknowledged and dropped
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// we could not store it: retried, not acknowledged until stored
    #[error("storage: {0}")]
    Storage(#[from] AppError),
}

/// A device's live state as kept in Redis.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LiveState {
    /// normal | fault | offline | maintenance
    pub status: String,
    pub last_seen: Option<DateTime<Utc>>,
    pub values: serde_json::Map<String, serde_json::Value>,
    pub last_event: Option<serde_json::Value>,
}

fn key(state: &AppState, device: Uuid) -> String {
    format!("{}iot:state:{device}", state.config.redis_prefix)
}

pub async fn live_state(state: &AppState, device: Uuid) -> AppResult<Option<LiveState>> {
    let mut conn = state.redis.clone();
    let raw: Option<String> = conn.get(key(state, device)).await?;
    Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
}

/// A reading's time: the device's own if plausible, else now.
fn reading_time(now: DateTime<Utc>, ts: Option<DateTime<Utc>>) -> DateTime<Utc> {
    match ts {
        Some(t) if (now - t).abs() < TimeDelta::days(1) => t,
        _ => now,
    }
}

pub async fn ingest(state: &AppState, topic: &str, payload: &[u8]) -> Result<(), IngestError> {
    if topic.ends_with("/command/ack") {
        return command_ack(state, topic, payload).await;
    }
    let t = model::parse_topic(&state.config.mqtt_topic_root, topic).ok_or(Rejected::Topic)?;
    // parse before any lookup: a malformed message costs no query
    enum Parsed {
        Telemetry(model::Telemetry),
        Status(bool),
        Event(model::DeviceEvent),
    }
    let parsed = match t.kind {
        Kind::Telemetry => Parsed::Telemetry(model::parse_telemetry(payload)?),
        Kind::Status => Parsed::Status(model::parse_status(payload)?),
        Kind::Event => Parsed::Event(model::parse_event(payload)?),
    };
    let (device, project, _category) =
        crate::equipment::service::for_topic(state, &t.project, &t.device).await?.ok_or(Rejected::UnknownDevice)?;
    let now = state.clock.now();
    let mut live = live_state(state, device).await?.unwrap_or_default();
    let before = live.status.clone();
    match parsed {
        Parsed::Telemetry(tel) => {
            let ts = reading_time(now, tel.ts);
            repo::append(&state.db, device, ts, &tel.values).await.map_err(AppError::from)?;
            for (k, v) in tel.values {
                live.values.insert(k, serde_json::json!(v));
            }
            if live.status.is_empty() || live.status == "offline" {
                live.status = "normal".into();
            }
        }
        Parsed::Status(true) if live.status.is_empty() || live.status == "offline" => live.status = "normal".into(),
        Parsed::Status(true) => {}
        Parsed::Status(false) => live.status = "offline".into(),
        Parsed::Event(ev) => {
            live.status = "fault".into();
            live.last_event =
                Some(serde_json::json!({ "code": ev.code, "message": ev.message, "at": reading_time(now, ev.ts) }));
        }
    }
    live.last_seen = Some(now);
    let mut conn = state.redis.clone();
    let body = serde_json::to_string(&live).unwrap_or_default();
    let _: () = conn.set(key(state, device), body).await.map_err(AppError::from)?;
    if live.status != before {
        let ev = Event {
            user_id: None,
            kind: EVENT_DEVICE_STATE.into(),
            payload: serde_json::json!({ "deviceId": device, "projectId": project, "status": live.status, "at": now }),
        };
        state.events.publish(&ev).await.map_err(AppError::from)?;
    }
    Ok(())
}

/// A device's live state, for callers who may read the device.
pub async fn device_live_state(state: &AppState, actor: &Actor, device: Uuid) -> AppResult<LiveState> {
    crate::equipment::service::device(state, actor, device).await?;
    Ok(live_state(state, device)
        .await?
        .unwrap_or_else(|| LiveState { status: "offline".into(), ..LiveState::default() }))
}

/// Subscribers to a project's device states must be able to read its equipment.
pub fn check_project(actor: &Actor, project: Uuid) -> AppResult<()> {
    actor.require_project(Perm::EquipmentRead, project)
}

/// Counts for a project's dashboard: per live status, and per category and status.
pub struct Dashboard {
    pub total: usize,
    /// (status, count)
    pub by_status: Vec<(String, usize)>,
    /// (category, status, count)
    pub by_category: Vec<(String, String, usize)>,
}

const LIVE_STATUSES: &[&str] = &["normal", "fault", "offline", "maintenance"];

pub async fn dashboard(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Dashboard> {
    check_project(actor, project)?;
    let q = crate::equipment::service::DeviceQuery {
        project_id: Some(project),
        category: None,
        status: None,
        search: None,
    };
    let devices = crate::equipment::service::devices(state, actor, q, None, 100_000).await?;
    let devices: Vec<_> = devices.into_iter().filter(|d| d.status != "scrapped").collect();
    let keys: Vec<String> = devices.iter().map(|d| key(state, d.id)).collect();
    let states: Vec<Option<String>> = if keys.is_empty() {
        Vec::new()
    } else {
        let mut conn = state.redis.clone();
        redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?
    };
    let mut by_status: std::collections::BTreeMap<String, usize> =
        LIVE_STATUSES.iter().map(|s| (s.to_string(), 0)).collect();
    let mut by_category: std::collections::BTreeMap<(String, String), usize> = std::collections::BTreeMap::new();
    for (d, raw) in devices.iter().zip(states) {
        // a device under repair is in maintenance whatever it reports; one never heard from is offline
        let live = raw
            .and_then(|r| serde_json::from_str::<LiveState>(&r).ok())
            .map(|l| l.status)
            .unwrap_or_else(|| "offline".into());
        let status = if d.status == "under_repair" { "maintenance".to_owned() } else { live };
        *by_status.entry(status.clone()).or_default() += 1;
        *by_category.entry((d.category.clone(), status)).or_default() += 1;
    }
    Ok(Dashboard {
        total: devices.len(),
        by_status: by_status.into_iter().collect(),
        by_category: by_category.into_iter().map(|((c, s), n)| (c, s, n)).collect(),
    })
}

// ---- remote control ------------------------------------------------------------------

/// A command kind, the device categories it applies to and the permission it needs.
fn command_rule(kind: &str) -> Option<(&'static [&'static str], Perm)> {
    match kind {
        "open_door" => Some((&["access_door"], Perm::CommandDoor)),
        "elevator_to_base" => Some((&["elevator"], Perm::CommandElevator)),
        "reset" => Some((&[], Perm::CommandReset)),
        _ => None,
    }
}

/// Sends a command: recorded and audited first, then published to
/// `{root}/{project}/{device}/command` as `{"id", "kind", "params"}`; the device answers on
/// `.../command/ack` with `{"id", "ok", "message"}`, or the command fails after the timeout.
pub async fn send_command(
    state: &AppState,
    actor: &Actor,
    device_id: Uuid,
    kind: &str,
    params: serde_json::Value,
) -> AppResult<repo::Command> {
    let (categories, perm) = command_rule(kind).ok_or_else(|| {
        AppError::validation(
            "kind",
            crate::error::Msg::new("不支持的指令", "Unknown command (open_door, elevator_to_base, reset)"),
        )
    })?;
    if !params.is_object() || params.to_string().len() > 1024 {
        return Err(AppError::validation(
            "params",
            crate::error::Msg::new("参数应为不超过1KB的JSON对象", "Params must be a JSON object under 1 KB"),
        ));
    }
    let device = crate::equipment::service::device_for_command(state, actor, device_id).await?;
    actor.require_project(perm, device.project_id)?;
    if !categories.is_empty() && !categories.contains(&device.category.as_str()) {
        return Err(AppError::validation(
            "kind",
            crate::error::Msg::new("该设备不支持此指令", "This device does not take this command"),
        ));
    }
    let project = crate::org::service::project(state, actor, perm, device.project_id).await?;
    let id = Uuid::now_v7();
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    repo::insert_command(
        &mut tx,
        &repo::NewCommand {
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
    crate::rbac::service::audit(
        &mut tx,
        actor,
        "device.command",
        "device",
        Some(device_id),
        serde_json::json!({ "command": id, "kind": kind }),
    )
    .await?;
    tx.commit().await?;
    let topic = format!("{}/{}/{}/command", state.config.mqtt_topic_root, project.code, device.code);
    let body = serde_json::json!({ "id": id, "kind": kind, "params": params }).to_string();
    if let Err(e) = state.mqtt.publish(topic, rumqttc::QoS::AtLeastOnce, false, body).await {
        tracing::warn!(error = %e, "command not handed to the broker");
        repo::finish_command(&state.db, id, device_id, false, "broker unavailable", now).await?;
    }
    repo::get_command(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("command"))
}

pub async fn command(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<repo::Command> {
    let c = repo::get_command(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("command"))?;
    // whoever sent it may follow it (a guard opening a door need not read the ledger)
    if c.requested_by != actor.user_id {
        crate::equipment::service::device(state, actor, c.device_id).await?;
    }
    Ok(c)
}

/// `{root}/{project}/{device}/command/ack` with `{"id": "…", "ok": true, "message": "…"}`
pub async fn command_ack(state: &AppState, topic: &str, payload: &[u8]) -> Result<(), IngestError> {
    let rest =
        topic.strip_prefix(&state.config.mqtt_topic_root).and_then(|r| r.strip_prefix('/')).ok_or(Rejected::Topic)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [project, device, "command", "ack"] = parts.as_slice() else { return Err(Rejected::Topic.into()) };
    #[derive(serde::Deserialize)]
    struct Ack {
        id: Uuid,
        ok: bool,
        #[serde(default)]
        message: String,
    }
    let ack: Ack = serde_json::from_slice(payload).map_err(|_| Rejected::Malformed("not a command ack"))?;
    let (device_id, _, _) =
        crate::equipment::service::for_topic(state, project, device).await?.ok_or(Rejected::UnknownDevice)?;
    let message: String = ack.message.chars().take(200).collect();
    repo::finish_command(&state.db, ack.id, device_id, ack.ok, &message, state.clock.now())
        .await
        .map_err(AppError::from)?;
    Ok(())
}

/// Commands without an answer within the timeout have failed.
pub async fn time_out_commands(state: &AppState) -> AppResult<()> {
    let now = state.clock.now();
    let cutoff = now - TimeDelta::seconds(state.config.command_timeout_secs as i64);
    repo::time_out_commands(&state.db, cutoff, now).await?;
    Ok(())
}
