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
