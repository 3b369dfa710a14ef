//! Alarm rules, alarms and repair requests.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::equipment::model::DeviceCategory;
use crate::iot::telemetry::model::DeviceRef;

/// Event-bus kind of a newly raised alarm (payload: `AlarmRaised`).
pub const EVENT_ALARM: &str = "ALARM_RAISED";

crate::text_enum! {
    /// 告警状态 where an alarm stands: open → acknowledged → resolved
    pub enum AlarmState { Open = "open", Acknowledged = "acknowledged", Resolved = "resolved" }
}

crate::text_enum! {
    /// 告警级别 how urgent an alarm is
    pub enum Severity { Critical = "critical", Major = "major", Minor = "minor" }
}

impl Severity {
    /// As alarm titles say it.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Critical => "紧急",
            Severity::Major => "重要",
            Severity::Minor => "一般",
        }
    }
}

crate::text_enum! {
    /// 规则类型 what a rule watches
    pub enum RuleKind {
        /// a metric above/below a threshold for at least `duration_secs`
        Threshold = "threshold",
        /// a fault event from the device (`codes`, or any code no other fault rule names)
        Fault = "fault",
        /// offline for at least `duration_secs`
        Offline = "offline",
        /// a meter reading's increase beyond `factor` × its trailing mean increase
        Jump = "jump",
        /// a meter reading going backwards
        ReverseFlow = "reverse_flow",
        /// a meter turning all night (00:00–05:00 Shanghai) for at least `duration_secs`: a leak
        NightFlow = "night_flow",
    }
}

impl RuleKind {
    /// Rules that read a meter's cumulative `reading`.
    pub fn meters_only(self) -> bool {
        matches!(self, RuleKind::Jump | RuleKind::ReverseFlow | RuleKind::NightFlow)
    }
}

crate::text_enum! {
    /// 比较方式 of a threshold rule (stored as '' for the other kinds)
    pub enum RuleOp { Above = "above", Below = "below" }
}

impl RuleOp {
    /// As alarm details say it.
    pub fn word(self) -> &'static str {
        match self {
            RuleOp::Above => "高于",
            RuleOp::Below => "低于",
        }
    }
}

crate::text_enum! {
    /// 报修来源 where a repair request came from
    pub enum RepairSource { Alarm = "alarm", Maintenance = "maintenance", Patrol = "patrol", Manual = "manual" }
}

crate::text_enum! {
    /// 报修状态 where a repair request stands (the work-order module moves it on)
    pub enum RepairStatus { Open = "open", InProgress = "in_progress", Closed = "closed" }
}

/// 告警规则 what raises an alarm: a company's devices, narrowed by project, category and device.
#[derive(Debug, Clone)]
pub struct AlarmRule {
    pub id: Uuid,
    pub company_id: Uuid,
    /// `None`: every project of the company
    pub project_id: Option<Uuid>,
    pub category: Option<DeviceCategory>,
    pub device_id: Option<Uuid>,
    pub name: String,
    pub kind: RuleKind,
    /// threshold rules: the metric watched (empty otherwise)
    pub metric: String,
    /// threshold rules: above or below (`None` otherwise)
    pub op: Option<RuleOp>,
    pub threshold: Option<f64>,
    /// fault rules: the codes it answers to (empty: any code no other fault rule names)
    pub codes: Vec<String>,
    pub duration_secs: i32,
    /// jump rules: how many times the trailing mean increase is a jump
    pub factor: Option<f64>,
    pub severity: Severity,
    /// not acknowledged within this → the project manager is told by SMS (0: at once)
    pub escalate_after_secs: i32,
    pub enabled: bool,
}

impl AlarmRule {
    /// Does the rule watch this device?
    pub fn applies(&self, d: &DeviceRef) -> bool {
        self.enabled
            && self.company_id == d.company_id
            && self.project_id.is_none_or(|p| p == d.project_id)
            && self.category.is_none_or(|c| c == d.category)
            && self.device_id.is_none_or(|x| x == d.id)
    }

    /// How long a condition must hold before it raises an alarm.
    pub fn duration(&self) -> TimeDelta {
        TimeDelta::seconds(self.duration_secs.max(0) as i64)
    }
}

/// What a person sets on a rule (creating it, or changing what may change).
pub struct RuleInput {
    pub project_id: Option<Uuid>,
    pub category: Option<DeviceCategory>,
    pub device_id: Option<Uuid>,
    pub name: String,
    pub kind: RuleKind,
    pub metric: Option<String>,
    pub op: Option<RuleOp>,
    pub threshold: Option<f64>,
    pub codes: Vec<String>,
    pub duration_secs: i32,
    pub factor: Option<f64>,
    pub severity: Severity,
    pub escalate_after_secs: i32,
    pub enabled: bool,
}

/// 设备告警 an alarm a rule raised on a device.
#[derive(Debug, Clone)]
pub struct Alarm {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub rule_id: Uuid,
    pub severity: Severity,
    pub kind: RuleKind,
    pub title: String,
    pub detail: String,
    pub value: Option<f64>,
    pub state: AlarmState,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<Uuid>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// `None` when it resolved itself
    pub resolved_by: Option<Uuid>,
    /// what was done (`auto` when it resolved itself)
    pub resolution: String,
    pub escalated_at: Option<DateTime<Utc>>,
    pub reminders: i32,
}

pub struct NewAlarm<'a> {
    pub id: Uuid,
    pub device: &'a DeviceRef,
    pub rule: &'a AlarmRule,
    pub title: &'a str,
    pub detail: &'a str,
    pub value: Option<f64>,
    pub at: DateTime<Utc>,
}

/// Filters of the alarm list.
#[derive(Default)]
pub struct AlarmFilter {
    pub project_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    /// `None`: every state
    pub states: Option<Vec<AlarmState>>,
}

/// A new alarm as the event bus carries it to subscribers on every replica.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmRaised {
    pub id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub severity: Severity,
    pub kind: RuleKind,
    pub title: String,
    pub detail: String,
    pub raised_at: DateTime<Utc>,
}

impl From<&Alarm> for AlarmRaised {
    fn from(a: &Alarm) -> Self {
        AlarmRaised {
            id: a.id,
            project_id: a.project_id,
            device_id: a.device_id,
            severity: a.severity,
            kind: a.kind,
            title: a.title.clone(),
            detail: a.detail.clone(),
            raised_at: a.raised_at,
        }
    }
}

/// 报修需求 a device needs repair; the work-order module turns requests into work orders.
#[derive(Debug, Clone)]
pub struct RepairRequest {
    pub id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub reason: String,
    pub source: RepairSource,
    /// the alarm, maintenance task or patrol it came from
    pub source_id: Option<Uuid>,
    pub status: RepairStatus,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// the work order it opened or joined
    pub work_order_id: Option<Uuid>,
}

/// A repair request to record (from an alarm here, or from maintenance and patrols).
pub struct NewRepairRequest<'a> {
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub reason: &'a str,
    pub source: RepairSource,
    pub source_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// The rules a new company starts with (managers tune them per project).
pub fn default_rules(company_id: Uuid) -> Vec<AlarmRule> {
    use DeviceCategory as C;
    let base = |name: &str, kind: RuleKind, category: Option<DeviceCategory>, severity: Severity| AlarmRule {
        id: Uuid::now_v7(),
        company_id,
        project_id: None,
        category,
        device_id: None,
        name: name.to_owned(),
        kind,
        metric: String::new(),
        op: None,
        threshold: None,
        codes: Vec::new(),
        duration_secs: 0,
        factor: None,
        severity,
        escalate_after_secs: 900,
        enabled: true,
    };
    vec![
        AlarmRule {
            codes: vec!["TRAPPED".into()],
            escalate_after_secs: 0,
            ..base("电梯困人", RuleKind::Fault, Some(C::Elevator), Severity::Critical)
        },
        base("设备故障", RuleKind::Fault, None, Severity::Major),
        AlarmRule {
            duration_secs: 600, ..base("设备离线超过10分钟", RuleKind::Offline, None, Severity::Major)
        },
        AlarmRule {
            metric: "pressureMpa".into(),
            op: Some(RuleOp::Below),
            threshold: Some(0.15),
            duration_secs: 60,
            ..base("水泵出水压力过低", RuleKind::Threshold, Some(C::WaterPump), Severity::Major)
        },
        AlarmRule {
            metric: "motorTempC".into(),
            op: Some(RuleOp::Above),
            threshold: Some(90.0),
            duration_secs: 60,
            ..base("电梯曳引机温度过高", RuleKind::Threshold, Some(C::Elevator), Severity::Major)
        },
        AlarmRule {
            metric: "pressureMpa".into(),
            op: Some(RuleOp::Below),
            threshold: Some(0.8),
            duration_secs: 300,
            ..base("消防管网压力不足", RuleKind::Threshold, Some(C::FireEquipment), Severity::Critical)
        },
        AlarmRule {
            factor: Some(5.0),
            ..base("水表读数异常跳变", RuleKind::Jump, Some(C::WaterMeter), Severity::Minor)
        },
        base("水表倒转", RuleKind::ReverseFlow, Some(C::WaterMeter), Severity::Minor),
        AlarmRule {
            duration_secs: 2 * 3600,
            ..base("夜间持续用水（疑似漏水）", RuleKind::NightFlow, Some(C::WaterMeter), Severity::Major)
        },
        AlarmRule {
            factor: Some(5.0),
            ..base("电表读数异常跳变", RuleKind::Jump, Some(C::ElectricityMeter), Severity::Minor)
        },
    ]
}
