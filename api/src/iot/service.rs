//! Ingest: one device message → history (PostgreSQL), live state (Redis), and a
//! `DEVICE_STATE` event when the device's status changes.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::model::Rejected;
use super::repo;
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::rbac::model::{Actor, Perm};

pub use super::ingest::{EVENT_DEVICE_STATE, live_state};
pub use super::rules::LiveState;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// the message is wrong: counted, logged at a limited rate, acknowledged and dropped
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// we could not store it: retried, not acknowledged until stored
    #[error("storage: {0}")]
    Storage(#[from] AppError),
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
    let ids: Vec<Uuid> = devices.iter().map(|d| d.id).collect();
    let states = super::ingest::live_states(state, &ids).await?;
    let mut by_status: std::collections::BTreeMap<String, usize> =
        LIVE_STATUSES.iter().map(|s| (s.to_string(), 0)).collect();
    let mut by_category: std::collections::BTreeMap<(String, String), usize> = std::collections::BTreeMap::new();
    for (d, raw) in devices.iter().zip(states) {
        // a device under repair is in maintenance whatever it reports; one never heard from is offline
        let live = raw.map(|l| l.status).unwrap_or_else(|| "offline".into());
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

// ---- history ---------------------------------------------------------------------------

/// Hourly or daily aggregates of a metric over at most 92 days (hourly: 31).
pub async fn trend(
    state: &AppState,
    actor: &Actor,
    device: Uuid,
    metric: &str,
    daily: bool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<Vec<repo::TrendPoint>> {
    crate::equipment::service::device(state, actor, device).await?;
    if !super::model::metric_name_ok(metric) {
        return Err(AppError::validation(
            "metric",
            crate::error::Msg::new("指标名称应为字母、数字和下划线", "Metric names are letters, digits and _"),
        ));
    }
    let max = if daily { TimeDelta::days(92) } else { TimeDelta::days(31) };
    if to <= from || to - from > max {
        return Err(AppError::validation(
            "to",
            crate::error::Msg::new("查询范围过大（按小时31天，按天92天）", "Range too long (31 days hourly, 92 daily)"),
        ));
    }
    Ok(repo::trend(&state.db, device, metric, if daily { "day" } else { "hour" }, from, to).await?)
}

/// A meter's usage over a period: (end − start) × multiplier, for usage-based fees.
pub struct MeterUsage {
    pub device_id: Uuid,
    pub code: String,
    pub name: String,
    pub category: String,
    pub house_id: Option<Uuid>,
    pub start_reading: Option<rust_decimal::Decimal>,
    pub end_reading: Option<rust_decimal::Decimal>,
    pub multiplier: rust_decimal::Decimal,
    pub usage: Option<rust_decimal::Decimal>,
}

fn dec(v: f64) -> Option<rust_decimal::Decimal> {
    rust_decimal::Decimal::from_f64_retain(v).map(|d| d.round_dp(3))
}

/// Readings per meter of a project for the Shanghai days `from..=to`.
pub async fn meter_readings(
    state: &AppState,
    actor: &Actor,
    project: Uuid,
    category: Option<&str>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> AppResult<Vec<MeterUsage>> {
    check_project(actor, project)?;
    if to < from || (to - from).num_days() > 366 {
        return Err(AppError::validation(
            "to",
            crate::error::Msg::new(
                "账期应在一年以内且结束不早于开始",
                "A period of up to a year, ending after it starts",
            ),
        ));
    }
    if let Some(c) = category
        && !crate::equipment::model::is_meter(c)
    {
        return Err(AppError::validation("category", crate::error::Msg::new("不是表计类别", "Not a meter category")));
    }
    let at = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(crate::clock::BUSINESS_TZ).earliest())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| AppError::validation("from", crate::error::Msg::new("日期无效", "Invalid date")))
    };
    let (start, end) = (at(from)?, at(to + TimeDelta::days(1))?);
    let rows = repo::meter_periods(&state.db, project, category, start, end).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let attr = |k: &str| r.attributes.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let multiplier = attr("multiplier").and_then(|m| m.parse().ok()).unwrap_or(rust_decimal::Decimal::ONE);
            let initial = attr("initialReading").and_then(|m| m.parse::<rust_decimal::Decimal>().ok());
            let start_reading = r.start_reading.and_then(dec).or(initial.filter(|_| r.end_reading.is_some()));
            let end_reading = r.end_reading.and_then(dec);
            let usage = match (start_reading, end_reading) {
                (Some(s), Some(e)) if e >= s => Some(((e - s) * multiplier).round_dp(3)),
                _ => None,
            };
            MeterUsage {
                device_id: r.device_id,
                code: r.code,
                name: r.name,
                category: r.category,
                house_id: attr("houseId").and_then(|h| h.parse().ok()),
                start_reading,
                end_reading,
                multiplier,
                usage,
            }
        })
        .collect())
}

/// 电梯运行状态 from the last telemetry: `mode` 0 stopped, 1 running, 2 inspection,
/// 3 fault; `floor`; `door` 0 closed, 1 open; component health from `motorTempC`,
/// `carVibration` (mm/s), `ropeWearPct`, `doorFaults` (today), `brakeWearPct`.
pub struct ElevatorState {
    pub running: &'static str,
    pub floor: Option<i32>,
    pub door_open: Option<bool>,
    pub trapped: bool,
    /// (component, ok | warning | fault, value)
    pub components: Vec<(&'static str, &'static str, Option<f64>)>,
    pub live: LiveState,
}

pub async fn elevator_state(state: &AppState, actor: &Actor, device: Uuid) -> AppResult<ElevatorState> {
    let d = crate::equipment::service::device(state, actor, device).await?;
    if d.category != "elevator" {
        return Err(AppError::validation("deviceId", crate::error::Msg::new("该设备不是电梯", "Not an elevator")));
    }
    let live = live_state(state, device)
        .await?
        .unwrap_or_else(|| LiveState { status: "offline".into(), ..LiveState::default() });
    let v = |k: &str| live.values.get(k).and_then(|x| x.as_f64());
    let running = match (live.status.as_str(), v("mode").map(|m| m.round() as i64)) {
        ("offline", _) => "unknown",
        (_, Some(3)) => "fault",
        (_, Some(2)) => "inspection",
        (_, Some(1)) => "running",
        (_, Some(0)) => "stopped",
        _ => {
            if live.faults.is_empty() {
                "unknown"
            } else {
                "fault"
            }
        }
    };
    let running = if live.faults.contains("TRAPPED") { "fault" } else { running };
    let grade = |val: Option<f64>, warn: f64, fault: f64| match val {
        None => "unknown",
        Some(x) if x >= fault => "fault",
        Some(x) if x >= warn => "warning",
        Some(_) => "ok",
    };
    let components = vec![
        ("motor", grade(v("motorTempC"), 75.0, 90.0), v("motorTempC")),
        ("car", grade(v("carVibration"), 15.0, 25.0), v("carVibration")),
        ("ropes", grade(v("ropeWearPct"), 60.0, 80.0), v("ropeWearPct")),
        ("doors", grade(v("doorFaults"), 3.0, 10.0), v("doorFaults")),
        ("brakes", grade(v("brakeWearPct"), 60.0, 80.0), v("brakeWearPct")),
    ];
    Ok(ElevatorState {
        running,
        floor: v("floor").map(|f| f.round() as i32),
        door_open: v("door").map(|x| x >= 0.5),
        trapped: live.faults.contains("TRAPPED"),
        components,
        live,
    })
}
