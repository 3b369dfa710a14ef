//! 保养计划 the domain's types: plans, the tasks the scheduler makes from them, and the
//! records that complete them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::equipment::model::DeviceCategory;

crate::text_enum! {
    /// 保养周期 how often a plan falls due
    pub enum IntervalKind {
        /// 月度 every month, counted from the start date
        Monthly = "monthly",
        /// 季度 every three months
        Quarterly = "quarterly",
        /// 年度 every year
        Yearly = "yearly",
        /// every `interval_days` days
        Days = "days",
    }
}

crate::text_enum! {
    /// 起算方式 what the next due date counts from
    pub enum PlanAnchor {
        /// due dates follow the calendar from the start date, whenever the work was done
        Schedule = "schedule",
        /// the next due date counts from the last completion
        Completion = "completion",
    }
}

crate::text_enum! {
    /// 保养任务状态 where a maintenance task stands
    pub enum TaskState {
        /// waiting to be done
        Pending = "pending",
        /// completed with a record
        Done = "done",
        /// will not be done
        Cancelled = "cancelled",
    }
}

crate::text_enum! {
    /// 检查结果 the outcome of one checklist item
    pub enum CheckResult {
        /// 合格
        Pass = "pass",
        /// 不合格: records a repair request on the device
        Fail = "fail",
    }
}

/// 保养计划 what maintenance one device, or every device of a category in a project, needs
/// and how often.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    /// the one device the plan covers, or
    pub device_id: Option<Uuid>,
    /// every device of this category in the project
    pub category: Option<DeviceCategory>,
    pub name: String,
    pub checklist: Vec<String>,
    pub interval_kind: IntervalKind,
    /// with `IntervalKind::Days` only
    pub interval_days: Option<i32>,
    pub anchor: PlanAnchor,
    /// first due date (Shanghai calendar day)
    pub start_date: NaiveDate,
    /// tasks appear this many days before they are due
    pub lead_days: i32,
    /// who is told of new tasks (else the device's responsible person)
    pub responsible_user_id: Option<Uuid>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// 保养任务 one due date of a plan on one device.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub plan_id: Uuid,
    pub device_id: Uuid,
    /// Shanghai calendar day
    pub due_date: NaiveDate,
    pub assignee_id: Option<Uuid>,
    pub state: TaskState,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// the plan's name and checklist, joined for the technician
    pub plan_name: String,
    pub checklist: Vec<String>,
}

impl Task {
    /// Pending past its due day.
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        self.state == TaskState::Pending && self.due_date < today
    }
}

/// One answered checklist item of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredResult", into = "StoredResult")]
pub struct ChecklistResult {
    pub item: String,
    pub result: CheckResult,
    /// empty when nothing was noted
    pub note: String,
}

/// How a checklist result is kept in `maintenance_records.results` (the shape of
/// migration 0009, unchanged, so records written before the enum read the same).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredResult {
    pub item: String,
    pub passed: bool,
    #[serde(default)]
    pub note: String,
}

impl From<StoredResult> for ChecklistResult {
    fn from(s: StoredResult) -> Self {
        ChecklistResult {
            item: s.item,
            result: if s.passed { CheckResult::Pass } else { CheckResult::Fail },
            note: s.note,
        }
    }
}

impl From<ChecklistResult> for StoredResult {
    fn from(r: ChecklistResult) -> Self {
        StoredResult { item: r.item, passed: r.result == CheckResult::Pass, note: r.note }
    }
}

/// A part replaced during maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartUsed {
    pub name: String,
    pub quantity: i32,
}

/// 保养记录 the device's maintenance archive: what was checked, replaced and noted.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub task_id: Option<Uuid>,
    pub plan_id: Option<Uuid>,
    pub done_at: DateTime<Utc>,
    pub staff_id: Uuid,
    pub results: Vec<ChecklistResult>,
    pub parts: Vec<PartUsed>,
    pub notes: String,
    /// storage keys of uploaded photos
    pub photos: Vec<String>,
}

// ---- inputs ------------------------------------------------------------------------------

/// A new plan, as the API and the demo seed give it.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub project_id: Uuid,
    /// one device, or
    pub device_id: Option<Uuid>,
    /// every device of a category in the project
    pub category: Option<DeviceCategory>,
    pub name: String,
    pub checklist: Vec<String>,
    pub interval_kind: IntervalKind,
    pub interval_days: Option<i32>,
    pub anchor: PlanAnchor,
    pub start_date: NaiveDate,
    pub lead_days: i32,
    pub responsible_user_id: Option<Uuid>,
}

/// Which tasks a list shows.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub project_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    /// only the caller's own tasks
    pub mine: bool,
    pub state: Option<TaskState>,
    /// due on or before this day
    pub due_before: Option<NaiveDate>,
}

/// One answer of a completion.
#[derive(Debug, Clone)]
pub struct ItemResult {
    pub item: String,
    pub result: CheckResult,
    pub note: Option<String>,
}

/// 完成保养: the answers, parts, notes and photos of a task.
#[derive(Debug, Clone)]
pub struct CompleteInput {
    pub task_id: Uuid,
    pub results: Vec<ItemResult>,
    pub parts: Vec<PartUsed>,
    pub notes: Option<String>,
    pub photos: Vec<String>,
}
