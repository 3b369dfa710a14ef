//! Trends, meter readings per period and elevator state.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::equipment::model::DeviceCategory;
use crate::iot::telemetry::model::LiveStatus;

crate::text_enum! {
    /// 趋势粒度 how a trend groups readings (Shanghai hours or days)
    pub enum TrendBucket { Hour = "hour", Day = "day" }
}

/// Aggregates of one metric over one hour or day.
#[derive(Debug, Clone)]
pub struct TrendPoint {
    /// start of the hour or day (Shanghai)
    pub bucket: DateTime<Utc>,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub count: i64,
}

/// A meter's readings at the start and at the end of a period, as stored.
#[derive(Debug, Clone)]
pub struct MeterPeriod {
    pub device_id: Uuid,
    pub code: String,
    pub name: String,
    pub category: DeviceCategory,
    pub attributes: serde_json::Value,
    pub start_reading: Option<f64>,
    pub end_reading: Option<f64>,
}

/// 抄表 a meter's usage over a period: (end − start) × multiplier, for usage-based fees.
#[derive(Debug, Clone)]
pub struct MeterUsage {
    pub device_id: Uuid,
    pub code: String,
    pub name: String,
    pub category: DeviceCategory,
    /// the house the meter measures (`attributes.houseId`)
    pub house_id: Option<Uuid>,
    pub start_reading: Option<Decimal>,
    pub end_reading: Option<Decimal>,
    pub multiplier: Decimal,
    /// empty without readings, or when the meter went backwards
    pub usage: Option<Decimal>,
}

/// 电梯运行状态 what an elevator is doing, from its last `mode` (0 stopped, 1 running,
/// 2 inspection, 3 fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElevatorRunning {
    Running,
    Stopped,
    Inspection,
    Fault,
    Unknown,
}

/// The parts of an elevator whose health telemetry tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElevatorComponent {
    /// from `motorTempC` (°C)
    Motor,
    /// from `carVibration` (mm/s)
    Car,
    /// from `ropeWearPct` (%)
    Ropes,
    /// from `doorFaults` (today)
    Doors,
    /// from `brakeWearPct` (%)
    Brakes,
}

/// How healthy a component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    Warning,
    Fault,
    /// no reading yet
    Unknown,
}

/// One component's health and the reading it was judged by.
#[derive(Debug, Clone)]
pub struct ComponentHealth {
    pub component: ElevatorComponent,
    pub health: Health,
    pub value: Option<f64>,
}

/// An elevator's state from its last telemetry.
#[derive(Debug, Clone)]
pub struct ElevatorState {
    pub running: ElevatorRunning,
    pub floor: Option<i32>,
    pub door_open: Option<bool>,
    /// 困人: a TRAPPED fault is open
    pub trapped: bool,
    pub components: Vec<ComponentHealth>,
    pub status: LiveStatus,
    pub last_seen: Option<DateTime<Utc>>,
}
