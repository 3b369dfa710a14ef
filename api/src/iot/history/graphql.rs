//! Trends, meter readings per period and elevator state over GraphQL.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model;
use super::service;
use crate::equipment::graphql::DeviceCategory;
use crate::iot::telemetry::graphql::DeviceLiveStatus;
use crate::kit::gql::{Conn, StateExt, parse_id, to_id};
use crate::kit::pagination::Page;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 趋势粒度 how a trend groups readings.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::TrendBucket")]
pub enum TrendBucket {
    /// per Shanghai hour (ranges up to 31 days)
    Hour,
    /// per Shanghai day (ranges up to 92 days)
    Day,
}

/// Aggregates of one metric over one hour or day.
#[derive(SimpleObject)]
pub struct TrendPoint {
    /// start of the hour or day (Shanghai)
    pub bucket: DateTime<Utc>,
    /// mean of the readings, in the metric's unit
    pub avg: f64,
    /// lowest reading
    pub min: f64,
    /// highest reading
    pub max: f64,
    /// how many readings there were
    pub count: i64,
}

impl From<model::TrendPoint> for TrendPoint {
    fn from(p: model::TrendPoint) -> Self {
        TrendPoint { bucket: p.bucket, avg: p.avg, min: p.min, max: p.max, count: p.count }
    }
}

/// 抄表: a meter's readings over a billing period.
#[derive(SimpleObject)]
pub struct MeterReading {
    /// the meter
    pub device_id: ID,
    /// its device code
    pub code: String,
    /// its name
    pub name: String,
    /// water, electricity or gas
    pub category: DeviceCategory,
    /// the house it measures
    pub house_id: Option<ID>,
    /// the reading when the period began (m³ or kWh, 3 decimals)
    pub start_reading: Option<Decimal>,
    /// the reading when the period ended (m³ or kWh, 3 decimals)
    pub end_reading: Option<Decimal>,
    /// the meter's multiplier (倍率)
    pub multiplier: Decimal,
    /// (end − start) × multiplier; empty without readings or when the meter went backwards
    pub usage: Option<Decimal>,
}

impl From<model::MeterUsage> for MeterReading {
    fn from(m: model::MeterUsage) -> Self {
        MeterReading {
            device_id: to_id(m.device_id),
            code: m.code,
            name: m.name,
            category: m.category.into(),
            house_id: m.house_id.map(to_id),
            start_reading: m.start_reading,
            end_reading: m.end_reading,
            multiplier: m.multiplier,
            usage: m.usage,
        }
    }
}

/// 电梯运行状态 what an elevator is doing.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::ElevatorRunning")]
pub enum ElevatorRunningState {
    /// moving or in service
    Running,
    /// standing
    Stopped,
    /// 检修 in inspection mode
    Inspection,
    /// out of order (or passengers trapped)
    Fault,
    /// offline, or it has not said
    Unknown,
}

/// A part of an elevator whose health telemetry tells.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::ElevatorComponent")]
pub enum ElevatorComponent {
    /// 曳引机 traction motor (`motorTempC`, °C: warning from 75, fault from 90)
    Motor,
    /// 轿厢 car (`carVibration`, mm/s: warning from 15, fault from 25)
    Car,
    /// 钢丝绳 ropes (`ropeWearPct`, %: warning from 60, fault from 80)
    Ropes,
    /// 门机 doors (`doorFaults` today: warning from 3, fault from 10)
    Doors,
    /// 制动器 brakes (`brakeWearPct`, %: warning from 60, fault from 80)
    Brakes,
}

/// How healthy a component is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Health")]
pub enum ComponentHealthGrade {
    /// within limits
    Ok,
    /// past the warning limit
    Warning,
    /// past the fault limit
    Fault,
    /// no reading yet
    Unknown,
}

/// One component's health and the reading it was judged by.
#[derive(SimpleObject)]
pub struct ComponentHealth {
    /// the part
    pub component: ElevatorComponent,
    /// how healthy it is
    pub health: ComponentHealthGrade,
    /// the last reading, in the unit of its metric
    pub value: Option<f64>,
}

/// 电梯运行状态 an elevator's state from its last telemetry.
#[derive(SimpleObject)]
pub struct ElevatorState {
    /// what it is doing
    pub running_state: ElevatorRunningState,
    /// the floor it is at
    pub floor: Option<i32>,
    /// whether its door is open
    pub door_open: Option<bool>,
    /// 困人: the most urgent alarm there is
    pub trapped: bool,
    /// its live status
    pub status: DeviceLiveStatus,
    /// its last message
    pub last_seen: Option<DateTime<Utc>>,
    /// health of motor, car, ropes, doors and brakes, in that order
    pub components: Vec<ComponentHealth>,
}

impl From<model::ElevatorState> for ElevatorState {
    fn from(e: model::ElevatorState) -> Self {
        ElevatorState {
            running_state: e.running.into(),
            floor: e.floor,
            door_open: e.door_open,
            trapped: e.trapped,
            status: e.status.into(),
            last_seen: e.last_seen,
            components: e
                .components
                .into_iter()
                .map(|c| ComponentHealth { component: c.component.into(), health: c.health.into(), value: c.value })
                .collect(),
        }
    }
}

#[derive(Default)]
pub struct HistoryQuery;

#[Object]
impl HistoryQuery {
    /// 趋势: hourly (≤ 31 days) or daily (≤ 92 days) aggregates of one metric of a device
    /// (`equipment:read`); a bounded range, so a plain list.
    #[graphql(guard = "Perm::EquipmentRead")]
    async fn device_trend(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        #[graphql(desc = "the metric, as the device sends it (e.g. pressureMpa)")] metric: String,
        bucket: TrendBucket,
        #[graphql(desc = "from this instant (inclusive)")] from: DateTime<Utc>,
        #[graphql(desc = "to this instant (exclusive)")] to: DateTime<Utc>,
    ) -> async_graphql::Result<Vec<TrendPoint>> {
        let actor = ctx.actor()?;
        let d = parse_id("deviceId", &device_id)?;
        let rows = service::trend(ctx.state(), &actor, d, &metric, bucket.into(), from, to).await?;
        Ok(rows.into_iter().map(TrendPoint::from).collect())
    }

    /// 抄表: each meter of a project over the Shanghai days `from`…`to` (inclusive), in
    /// device order (`equipment:read`).
    #[graphql(guard = "Perm::EquipmentRead")]
    #[allow(clippy::too_many_arguments)]
    async fn meter_readings(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        #[graphql(desc = "one meter category; empty: water, electricity and gas")] category: Option<DeviceCategory>,
        #[graphql(desc = "the period's first day (Shanghai)")] from: NaiveDate,
        #[graphql(desc = "the period's last day (Shanghai), at most a year on")] to: NaiveDate,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<MeterReading>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let p = parse_id("projectId", &project_id)?;
        let category = category.map(Into::into);
        let rows =
            service::meter_readings(ctx.state(), &actor, p, category, from, to, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |m| m.device_id, MeterReading::from))
    }

    /// 电梯运行状态: running state, floor, door and component health (`equipment:read`).
    #[graphql(guard = "Perm::EquipmentRead")]
    async fn elevator_state(&self, ctx: &Context<'_>, device_id: ID) -> async_graphql::Result<ElevatorState> {
        let actor = ctx.actor()?;
        Ok(service::elevator_state(ctx.state(), &actor, parse_id("deviceId", &device_id)?).await?.into())
    }
}
