//! 工单 the domain's types: work orders, their transitions and log, and a project's
//! dispatch settings.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::equipment::model::{DeviceCategory, Importance};

crate::text_enum! {
    /// 工单来源 where a work order came from
    pub enum Source {
        /// 业主报修 an owner reported it in the app
        Owner = "owner",
        /// 客服代报 customer service on an owner's behalf
        Service = "service",
        /// 设备告警 a device alarm
        Alarm = "alarm",
        /// 保养不合格 a failed maintenance checklist item
        Maintenance = "maintenance",
        /// 公区 staff for a public area
        Staff = "staff",
    }
}

crate::text_enum! {
    /// 工单类别 what kind of repair
    pub enum Category {
        /// 水暖
        Plumbing = "plumbing",
        /// 电路
        Electrical = "electrical",
        /// 电梯
        Elevator = "elevator",
        /// 门禁
        DoorAccess = "door_access",
        /// 消防
        FireSafety = "fire_safety",
        /// 空调暖通
        Hvac = "hvac",
        /// 土建门窗
        Civil = "civil",
        /// 公共设施
        PublicFacility = "public_facility",
        /// 其他
        Other = "other",
    }
}

impl Category {
    /// The category of work a device's repair is.
    pub fn of_device(c: DeviceCategory) -> Category {
        match c {
            DeviceCategory::Elevator => Category::Elevator,
            DeviceCategory::AccessDoor => Category::DoorAccess,
            DeviceCategory::FireEquipment => Category::FireSafety,
            DeviceCategory::WaterMeter | DeviceCategory::WaterPump | DeviceCategory::GasMeter => Category::Plumbing,
            DeviceCategory::ElectricityMeter => Category::Electrical,
            DeviceCategory::Camera | DeviceCategory::Other => Category::PublicFacility,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Category::Plumbing => "水暖",
            Category::Electrical => "电路",
            Category::Elevator => "电梯",
            Category::DoorAccess => "门禁",
            Category::FireSafety => "消防",
            Category::Hvac => "空调暖通",
            Category::Civil => "土建门窗",
            Category::PublicFacility => "公共设施",
            Category::Other => "其他",
        }
    }
}

crate::text_enum! {
    /// 优先级 how urgent
    pub enum Priority {
        /// 低
        Low = "low",
        /// 普通
        Normal = "normal",
        /// 高
        High = "high",
        /// 紧急 (a trapped passenger)
        Urgent = "urgent",
    }
}

crate::text_enum! {
    /// 工单状态 where a work order stands
    pub enum State {
        /// 待派单 in the pool
        Submitted = "submitted",
        /// 已派单 a dispatcher chose the technician
        Assigned = "assigned",
        /// 已接单 the technician took it (a grab lands here)
        Accepted = "accepted",
        /// 处理中 the technician arrived
        InProgress = "in_progress",
        /// 暂停 waiting for parts: the SLA clock stops
        Paused = "paused",
        /// 已完成 waiting for the confirmer
        Completed = "completed",
        /// 已确认 rated; waiting for the return visit
        Confirmed = "confirmed",
        /// 已关闭
        Closed = "closed",
        /// 已取消
        Cancelled = "cancelled",
    }
}

impl State {
    /// Not yet completed nor cancelled: alarms of its device and rule join it.
    pub fn unfinished(self) -> bool {
        matches!(self, State::Submitted | State::Assigned | State::Accepted | State::InProgress | State::Paused)
    }

    /// Nobody has taken it on yet: an owner may still cancel it, a cleared alarm cancels it.
    pub fn before_acceptance(self) -> bool {
        matches!(self, State::Submitted | State::Assigned)
    }

    pub const UNFINISHED: &'static [State] =
        &[State::Submitted, State::Assigned, State::Accepted, State::InProgress, State::Paused];
}

crate::text_enum! {
    /// 派单方式 how a project hands out work orders
    pub enum Dispatch {
        /// 人工派单 a dispatcher assigns every order
        Manual = "manual",
        /// 抢单 technicians grab orders from the pool (dispatchers may still assign)
        Grab = "grab",
        /// 轮派 in turn among the on-duty technicians
        RoundRobin = "round_robin",
        /// 自动派单 the least-loaded on-duty technician with the skill
        Auto = "auto",
    }
}

crate::text_enum! {
    /// 工单操作 one transition in a work order's log
    pub enum Action {
        Submit = "submit",
        Assign = "assign",
        Grab = "grab",
        Accept = "accept",
        /// 退单 back to the pool
        Return = "return",
        /// 转单 to another technician
        Transfer = "transfer",
        Start = "start",
        Pause = "pause",
        Resume = "resume",
        Complete = "complete",
        Confirm = "confirm",
        /// the confirmer rejected the result: the order reopens
        Reject = "reject",
        /// 回访 the return visit closes the order
        Visit = "visit",
        Close = "close",
        Cancel = "cancel",
        Priority = "priority",
        /// another alarm or failed item joined the order
        Join = "join",
    }
}

/// A part used in a repair: the same kind of entry as a maintenance record's, so the
/// device's archive lists both alike.
pub use crate::maintenance::plans::model::PartUsed;

/// 工单 one repair job, from the report to the return visit.
#[derive(Debug, Clone)]
pub struct WorkOrder {
    pub id: Uuid,
    pub no: i64,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub source: Source,
    pub category: Category,
    pub priority: Priority,
    pub state: State,
    pub paused_from: Option<State>,
    pub title: String,
    pub description: String,
    pub location: String,
    pub house_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub rule_id: Option<Uuid>,
    /// the first alarm, or the maintenance record whose failed items it carries
    pub origin_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub reporter_id: Option<Uuid>,
    pub photos: Vec<String>,
    pub preferred_from: Option<DateTime<Utc>>,
    pub preferred_to: Option<DateTime<Utc>>,
    pub assignee_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub paused_secs: i32,
    pub completed_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub result: String,
    pub result_photos: Vec<String>,
    pub parts: sqlx::types::Json<Vec<PartUsed>>,
    pub labour_minutes: Option<i32>,
    pub charge: Option<Decimal>,
    pub cash_receipt_no: Option<String>,
    pub rating: Option<i16>,
    pub rating_comment: String,
    pub visit_note: String,
    pub cancel_reason: String,
    pub alarm_cleared_at: Option<DateTime<Utc>>,
}

impl WorkOrder {
    /// The number people read out: GD and eight digits.
    pub fn number(&self) -> String {
        format!("GD{:08}", self.no)
    }
}

/// How urgent an order is in the dispatch queue (higher first): its priority (urgent 3 …
/// low 0), then its device's importance (critical 2, normal 1, low 0; no device counts as
/// normal); the same number as SQL's `work_order_urgency`.
pub fn urgency(p: Priority, i: Importance) -> i16 {
    let p = match p {
        Priority::Urgent => 3,
        Priority::High => 2,
        Priority::Normal => 1,
        Priority::Low => 0,
    };
    p * 3 + i.rank()
}

/// One line of a work order's log.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Uuid,
    pub work_order_id: Uuid,
    pub action: Action,
    pub from_state: Option<State>,
    pub to_state: State,
    pub actor_id: Option<Uuid>,
    pub note: String,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub at: DateTime<Utc>,
}

/// 派单设置 a project's rules for its work orders.
#[derive(Debug, Clone)]
pub struct Settings {
    pub project_id: Uuid,
    pub dispatch: Dispatch,
    /// a completed order is confirmed by itself after this many days
    pub auto_confirm_days: i32,
    /// who in a house may report repairs: owner, member, tenant
    pub reporter_relations: Vec<String>,
    /// categories whose orders close only after a return visit
    pub visit_categories: Vec<String>,
    /// an order whose alarms all cleared by themselves is cancelled after this long
    /// (a flapping device keeps one order)
    pub alarm_clear_grace_secs: i32,
    pub last_assignee_id: Option<Uuid>,
}

impl Settings {
    pub fn defaults(project_id: Uuid) -> Settings {
        Settings {
            project_id,
            dispatch: Dispatch::Grab,
            auto_confirm_days: 3,
            reporter_relations: vec!["owner".into(), "member".into(), "tenant".into()],
            visit_categories: Vec::new(),
            alarm_clear_grace_secs: 300,
            last_assignee_id: None,
        }
    }

    pub fn needs_visit(&self, c: Category) -> bool {
        self.visit_categories.iter().any(|v| v == c.as_str())
    }
}

/// Which orders a list shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub project_id: Option<Uuid>,
    pub states: Vec<State>,
    pub category: Option<Category>,
    /// assigned to the caller
    pub mine: bool,
    /// in the pool (SUBMITTED, nobody assigned)
    pub pool: bool,
    pub device_id: Option<Uuid>,
}

pub const EVENT_CHANGED: &str = "workorder.changed";

/// What a change event carries (subscribers read the order again through the service).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Changed {
    pub id: Uuid,
    pub project_id: Uuid,
    pub state: State,
    pub action: Action,
    /// the users the change concerns: reporter, owner's account, assignee
    pub users: Vec<Uuid>,
}

/// 时限 how long an order has to be taken on (response) and done (completion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sla {
    pub response_minutes: i32,
    pub completion_minutes: i32,
}

impl Sla {
    /// What a project starts with, by priority.
    pub fn default_for(p: Priority) -> Sla {
        let (response_minutes, completion_minutes) = match p {
            Priority::Urgent => (15, 240),
            Priority::High => (30, 1_440),
            Priority::Normal => (120, 4_320),
            Priority::Low => (480, 10_080),
        };
        Sla { response_minutes, completion_minutes }
    }
}

/// An order's deadlines and how far up the escalation ladder it has gone.
#[derive(Debug, Clone)]
pub struct Deadlines {
    pub id: Uuid,
    pub response_due_at: Option<DateTime<Utc>>,
    /// before the time spent paused is added
    pub complete_due_at: Option<DateTime<Utc>>,
    pub response_level: i16,
    pub completion_level: i16,
}

/// An unfinished order past a deadline, for the escalation job.
#[derive(Debug, Clone)]
pub struct Overdue {
    pub id: Uuid,
    pub no: i64,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    pub priority: Priority,
    pub assignee_id: Option<Uuid>,
    pub category: Category,
    pub accepted: bool,
    pub created_at: DateTime<Utc>,
    pub response_due_at: Option<DateTime<Utc>>,
    pub complete_due_at: Option<DateTime<Utc>>,
    pub paused_secs: i32,
    pub response_level: i16,
    pub completion_level: i16,
}

/// 工单报表 figures over the orders reported in a date range.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub total: i64,
    pub by_state: Vec<(State, i64)>,
    pub by_category: Vec<(Category, i64)>,
    /// report → taken on, over the orders taken on
    pub avg_response_minutes: Option<f64>,
    /// report → completed, paused time left out, over the orders completed
    pub avg_completion_minutes: Option<f64>,
    /// orders that missed a deadline, over all
    pub breached: i64,
    pub rated: i64,
    pub avg_rating: Option<f64>,
    pub technicians: Vec<TechnicianFigures>,
}

/// One technician's figures in a report.
#[derive(Debug, Clone)]
pub struct TechnicianFigures {
    pub user_id: Uuid,
    pub name: String,
    pub assigned: i64,
    pub completed: i64,
    pub avg_completion_minutes: Option<f64>,
    pub avg_rating: Option<f64>,
    pub breached: i64,
}
