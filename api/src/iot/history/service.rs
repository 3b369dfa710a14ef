//! Reading the telemetry history: trends, meter readings per billing period, elevator state.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model::{
    ComponentHealth, ElevatorComponent, ElevatorRunning, ElevatorState, Health, MeterUsage, TrendBucket, TrendPoint,
};
use super::repo;
use crate::equipment::model::DeviceCategory;
use crate::iot::telemetry::model::{LiveStatus, metric_name_ok};
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::state::AppState;
use crate::rbac::model::{Actor, Perm};

/// Hourly (at most 31 days) or daily (at most 92 days) aggregates of a metric of a device
/// the caller may read.
pub async fn trend(
    state: &AppState,
    actor: &Actor,
    device: Uuid,
    metric: &str,
    bucket: TrendBucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<Vec<TrendPoint>> {
    crate::equipment::service::device(state, actor, device).await?;
    if !metric_name_ok(metric) {
        return Err(AppError::validation(
            "metric",
            Msg::new("指标名称应为字母、数字和下划线", "Metric names are letters, digits and _"),
        ));
    }
    let max = match bucket {
        TrendBucket::Day => TimeDelta::days(92),
        TrendBucket::Hour => TimeDelta::days(31),
    };
    if to <= from || to - from > max {
        return Err(AppError::validation(
            "to",
            Msg::new("查询范围过大（按小时31天，按天92天）", "Range too long (31 days hourly, 92 daily)"),
        ));
    }
    Ok(repo::trend(state.reads(), device, metric, bucket, from, to).await?)
}

fn dec(v: f64) -> Option<Decimal> {
    Decimal::from_f64_retain(v).map(|d| d.round_dp(3))
}

/// Readings per meter of a project (`equipment:read`) for the Shanghai days `from..=to`,
/// in device id order after `after`; `category` one meter category, or all.
#[allow(clippy::too_many_arguments)]
pub async fn meter_readings(
    state: &AppState,
    actor: &Actor,
    project: Uuid,
    category: Option<DeviceCategory>,
    from: NaiveDate,
    to: NaiveDate,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<MeterUsage>> {
    actor.require_project(Perm::EquipmentRead, project)?;
    if to < from || (to - from).num_days() > 366 {
        return Err(AppError::validation(
            "to",
            Msg::new("账期应在一年以内且结束不早于开始", "A period of up to a year, ending after it starts"),
        ));
    }
    let categories: &[DeviceCategory] = match &category {
        Some(c) if c.is_meter() => std::slice::from_ref(c),
        Some(_) => return Err(AppError::validation("category", Msg::new("不是表计类别", "Not a meter category"))),
        None => DeviceCategory::METERS,
    };
    let at = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(crate::kit::clock::BUSINESS_TZ).earliest())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| AppError::validation("from", Msg::new("日期无效", "Invalid date")))
    };
    let (start, end) = (at(from)?, at(to + TimeDelta::days(1))?);
    let rows =
        repo::meter_periods(&state.db, actor.company_id, project, categories, start, end, after, limit as i64).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let attr = |k: &str| r.attributes.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let multiplier = attr("multiplier").and_then(|m| m.parse().ok()).unwrap_or(Decimal::ONE);
            let initial = attr("initialReading").and_then(|m| m.parse::<Decimal>().ok());
            let start_reading = r.start_reading.and_then(dec).or(initial.filter(|_| r.end_reading.is_some()));
            let end_reading = r.end_reading.and_then(dec);
            let usage = match (start_reading, end_reading) {
                (Some(s), Some(e)) if e >= s => Some(((e - s) * multiplier).round_dp(3)),
                _ => None,
            };
            MeterUsage {
                device_id: r.device_id,
                house_id: attr("houseId").and_then(|h| h.parse().ok()),
                code: r.code,
                name: r.name,
                category: r.category,
                start_reading,
                end_reading,
                multiplier,
                usage,
            }
        })
        .collect())
}

fn grade(val: Option<f64>, warn: f64, fault: f64) -> Health {
    match val {
        None => Health::Unknown,
        Some(x) if x >= fault => Health::Fault,
        Some(x) if x >= warn => Health::Warning,
        Some(_) => Health::Ok,
    }
}

/// 电梯运行状态 from the last telemetry: `mode` 0 stopped, 1 running, 2 inspection,
/// 3 fault; `floor`; `door` 0 closed, 1 open; component health from `motorTempC`,
/// `carVibration` (mm/s), `ropeWearPct`, `doorFaults` (today), `brakeWearPct`.
pub async fn elevator_state(state: &AppState, actor: &Actor, device: Uuid) -> AppResult<ElevatorState> {
    let d = crate::equipment::service::device(state, actor, device).await?;
    if d.category != DeviceCategory::Elevator {
        return Err(AppError::validation("deviceId", Msg::new("该设备不是电梯", "Not an elevator")));
    }
    let live = crate::iot::telemetry::service::live_state(state, device).await?.unwrap_or_default();
    let v = |k: &str| live.values.get(k).and_then(|x| x.as_f64());
    let trapped = live.faults.contains("TRAPPED");
    let running = match (live.status, v("mode").map(|m| m.round() as i64)) {
        (LiveStatus::Offline, _) => ElevatorRunning::Unknown,
        (_, Some(3)) => ElevatorRunning::Fault,
        (_, Some(2)) => ElevatorRunning::Inspection,
        (_, Some(1)) => ElevatorRunning::Running,
        (_, Some(0)) => ElevatorRunning::Stopped,
        _ if live.faults.is_empty() => ElevatorRunning::Unknown,
        _ => ElevatorRunning::Fault,
    };
    let running = if trapped { ElevatorRunning::Fault } else { running };
    let component = |component, key: &str, warn, fault| ComponentHealth {
        component,
        health: grade(v(key), warn, fault),
        value: v(key),
    };
    let components = vec![
        component(ElevatorComponent::Motor, "motorTempC", 75.0, 90.0),
        component(ElevatorComponent::Car, "carVibration", 15.0, 25.0),
        component(ElevatorComponent::Ropes, "ropeWearPct", 60.0, 80.0),
        component(ElevatorComponent::Doors, "doorFaults", 3.0, 10.0),
        component(ElevatorComponent::Brakes, "brakeWearPct", 60.0, 80.0),
    ];
    Ok(ElevatorState {
        running,
        floor: v("floor").map(|f| f.round() as i32),
        door_open: v("door").map(|x| x >= 0.5),
        trapped,
        components,
        status: live.status,
        last_seen: live.last_seen,
    })
}

/// How far back a counter's last value is looked for.
const COUNTER_WINDOW_DAYS: i64 = 30;
/// Among how many of a device's last messages (a device reports its counters with every
/// message; one that never does costs this many rows, not a month of history).
const COUNTER_WINDOW_MESSAGES: i64 = 100;

/// The last value of a cumulative counter (`trips`, `runHours`, `starts`, `reading`) each
/// device reported after the time given with it (within the last 30 days, never a time
/// still to come), for the maintenance scheduler (no caller: the devices come from the
/// plans). Devices without a newer one are left out.
pub async fn latest_counters(
    state: &AppState,
    db: impl sqlx::PgExecutor<'_>,
    devices: &[(Uuid, Option<DateTime<Utc>>)],
    metric: &str,
) -> AppResult<std::collections::HashMap<Uuid, (f64, DateTime<Utc>)>> {
    if devices.is_empty() || !metric_name_ok(metric) {
        return Ok(Default::default());
    }
    let now = state.clock.now();
    let floor = now - TimeDelta::days(COUNTER_WINDOW_DAYS);
    let ids: Vec<Uuid> = devices.iter().map(|d| d.0).collect();
    let since: Vec<DateTime<Utc>> = devices.iter().map(|d| d.1.map_or(floor, |t| t.max(floor))).collect();
    let rows = repo::latest(db, &ids, &since, metric, now, COUNTER_WINDOW_MESSAGES).await?;
    Ok(rows.into_iter().map(|(d, v, t)| (d, (v, t))).collect())
}

/// 抄表 from telemetry: each meter's last register before `before` (within the 62 days
/// before it), exactly as the meter wrote it, for billing (no caller: the meters come
/// from the billing service, which checked them).
pub async fn registers_before(
    state: &AppState,
    devices: &[Uuid],
    before: DateTime<Utc>,
) -> AppResult<std::collections::HashMap<Uuid, (Decimal, DateTime<Utc>)>> {
    if devices.is_empty() {
        return Ok(Default::default());
    }
    let since = before - TimeDelta::days(62);
    let rows = repo::registers_before(&state.db, devices, since, before).await?;
    Ok(rows.into_iter().map(|(d, v, t)| (d, (v, t))).collect())
}
