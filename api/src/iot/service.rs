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
