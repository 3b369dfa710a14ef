//! 保养计划 the domain's types: plans, the tasks the scheduler makes from them, and the
//! records that complete them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::equipment::model::{DeviceCategory, Importance};

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
    /// 触发方式 what makes a plan fall due
    pub enum PlanTrigger {
        /// 按周期 the calendar
        Calendar = "calendar",
        /// 按使用量 a counter the device reports
        Usage = "usage",
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
    /// a calendar plan's interval (`None` for a usage plan)
    pub interval_kind: Option<IntervalKind>,
    /// with `IntervalKind::Days` only
    pub interval_days: Option<i32>,
    /// what the next due date (calendar) or due counter (usage) counts from
    pub anchor: PlanAnchor,
    /// first due date (Shanghai calendar day); a usage plan reads counters from this day
    pub start_date: NaiveDate,
    /// calendar tasks appear this many days before they are due
    pub lead_days: i32,
    /// a usage plan's telemetry counter (`None` for a calendar plan)
    pub counter_metric: Option<String>,
    /// a usage plan falls due every this many counter units
    pub counter_every: Option<f64>,
    /// a usage task appears this many counter units before it is due
    pub counter_lead: f64,
    /// who is told of new tasks (else the device's responsible person)
    pub responsible_user_id: Option<Uuid>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl Plan {
    pub fn trigger(&self) -> PlanTrigger {
        if self.counter_metric.is_some() { PlanTrigger::Usage } else { PlanTrigger::Calendar }
    }

    /// The counter a usage plan follows.
    pub fn usage(&self) -> Option<Usage> {
        Some(Usage { metric: self.counter_metric.clone()?, every: self.counter_every?, lead: self.counter_lead })
    }
}

/// 按使用量 a plan that falls due on a cumulative counter the device reports (elevator
/// `trips` or `runHours`, pump `starts` or `runHours`, a meter's `reading`).
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// the telemetry metric
    pub metric: String,
    /// due every this many units
    pub every: f64,
    /// the task appears this many units before
    pub lead: f64,
}

/// Where a device stands on a usage plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    /// the value the current cycle counts from
    pub baseline: f64,
    /// the device's pace is measured from this reading (its time and value)
    pub baseline_at: DateTime<Utc>,
    pub pace_value: f64,
    /// the last value read
    pub last_value: f64,
    pub last_at: DateTime<Utc>,
    /// a reading lower than `last_value`, not yet known to be a reset or a glitch
    pub dropped_to: Option<f64>,
}

impl Counter {
    /// A device's first reading on a plan: the cycle counts from it.
    pub fn first(value: f64, at: DateTime<Utc>) -> Counter {
        Counter {
            baseline: value,
            baseline_at: at,
            pace_value: value,
            last_value: value,
            last_at: at,
            dropped_to: None,
        }
    }

    /// After a new reading (older readings change nothing). A lower reading is held until
    /// the next: if that one counts on from it, the counter was reset (a replaced
    /// controller) and keeps what it had used in this cycle; if it is back above, the low
    /// one was a glitch and is forgotten.
    pub fn read(&self, value: f64, at: DateTime<Utc>) -> Counter {
        if at <= self.last_at {
            return self.clone();
        }
        let mut c = self.clone();
        c.last_at = at;
        if value >= self.last_value {
            c.last_value = value;
            c.dropped_to = None;
            return c;
        }
        match self.dropped_to {
            Some(low) if value >= low => {
                c.baseline = low - (self.last_value - self.baseline).max(0.0);
                (c.pace_value, c.baseline_at) = (low, self.last_at);
                c.last_value = value;
                c.dropped_to = None;
            }
            _ => c.dropped_to = Some(value),
        }
        c
    }

    /// The value the current cycle is due at.
    pub fn due_at(&self, u: &Usage) -> f64 {
        self.baseline + u.every
    }

    /// The task should be out: the counter is within the lead of the due value.
    pub fn task_due(&self, u: &Usage) -> bool {
        self.last_value >= self.due_at(u) - u.lead
    }

    /// The Shanghai day the counter should reach its due value, from its pace since the
    /// baseline: today when it already has (or no pace is known yet), at most `max_days`
    /// ahead.
    pub fn due_day(&self, u: &Usage, today: NaiveDate, max_days: i64) -> NaiveDate {
        let left = self.due_at(u) - self.last_value;
        let secs = (self.last_at - self.baseline_at).num_seconds() as f64;
        let used = self.last_value - self.pace_value;
        if left <= 0.0 || secs <= 0.0 || used <= 0.0 {
            return today;
        }
        let days = (left / (used / secs) / 86_400.0).ceil().clamp(0.0, max_days as f64) as i64;
        today + chrono::Duration::days(days)
    }

    /// The baseline after a completion: the next multiple of `every` past the old one
    /// (schedule anchor, keeps 10k, 20k, 30k…) or the value at completion (completion anchor).
    pub fn next_baseline(&self, u: &Usage, anchor: PlanAnchor, at_completion: f64) -> f64 {
        match anchor {
            PlanAnchor::Completion => at_completion,
            PlanAnchor::Schedule => {
                let cycles = ((at_completion - self.baseline) / u.every).floor().max(1.0);
                self.baseline + cycles * u.every
            }
        }
    }

    /// The next cycle, after a completion with the counter at its last reading: the pace
    /// is measured afresh from that reading.
    pub fn next_cycle(&self, u: &Usage, anchor: PlanAnchor) -> Counter {
        Counter {
            baseline: self.next_baseline(u, anchor, self.last_value),
            baseline_at: self.last_at,
            pace_value: self.last_value,
            ..self.clone()
        }
    }
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
    /// a usage task is due when the counter reaches this value
    pub due_counter: Option<f64>,
    pub assignee_id: Option<Uuid>,
    pub state: TaskState,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// the plan's name and checklist, joined for the technician
    pub plan_name: String,
    pub checklist: Vec<String>,
    /// the device's importance, which orders the list
    pub importance: Importance,
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
    /// a maintenance task's record, or a completed work order's repair
    pub kind: RecordKind,
    /// the repair's work order
    pub work_order_id: Option<Uuid>,
}

crate::text_enum! {
    /// 档案类别 what put a record in a device's archive
    pub enum RecordKind {
        /// 保养 a maintenance task (or an unplanned check)
        Maintenance = "maintenance",
        /// 维修 a completed work order on the device
        Repair = "repair",
    }
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
    /// a calendar plan, or
    pub interval_kind: Option<IntervalKind>,
    pub interval_days: Option<i32>,
    /// a usage plan
    pub usage: Option<Usage>,
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

#[cfg(test)]
mod counter_tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap_or_default()
    }

    fn usage(every: f64, lead: f64) -> Usage {
        Usage { metric: "trips".into(), every, lead }
    }

    #[test]
    fn a_task_is_due_within_the_lead_and_its_day_follows_the_pace() {
        let u = usage(1000.0, 100.0);
        let c = Counter::first(5000.0, at(0));
        let today = NaiveDate::from_ymd_opt(2027, 1, 10).unwrap_or_default();
        assert!(!c.task_due(&u));
        assert_eq!(c.due_day(&u, today, 60), today, "no pace yet: today");
        // 450 trips in 24 hours: 550 left is a little over a day
        let c = c.read(5450.0, at(24));
        assert!(!c.task_due(&u));
        assert_eq!(c.due_day(&u, today, 60), today + chrono::Duration::days(2));
        let c = c.read(5900.0, at(48));
        assert!(c.task_due(&u));
        assert_eq!(c.due_day(&u, today, 60), today + chrono::Duration::days(1));
        // a slow device is capped at the horizon
        let slow = Counter::first(0.0, at(0)).read(1.0, at(24 * 30));
        assert_eq!(slow.due_day(&u, today, 60), today + chrono::Duration::days(60));
    }

    #[test]
    fn older_readings_change_nothing_and_a_reset_keeps_what_was_used() {
        let c = Counter::first(5000.0, at(0)).read(5600.0, at(10));
        assert_eq!(c.read(9999.0, at(9)), c, "an older reading");
        // one low reading is held, not believed
        let low = c.read(0.0, at(11));
        assert_eq!((low.baseline, low.last_value, low.dropped_to), (5000.0, 5600.0, Some(0.0)));
        // back above: it was a glitch
        let back = low.read(5610.0, at(12));
        assert_eq!((back.baseline, back.last_value, back.dropped_to), (5000.0, 5610.0, None));
        // counting on from the low one: the controller was replaced and counts from 20; the
        // 600 used stay used
        let r = c.read(20.0, at(11)).read(35.0, at(12));
        assert_eq!((r.baseline, r.last_value, r.dropped_to), (-580.0, 35.0, None));
        assert_eq!(r.due_at(&usage(1000.0, 0.0)), 420.0);
    }

    #[test]
    fn the_next_cycle_keeps_the_multiples_or_counts_from_the_completion() {
        let u = usage(1000.0, 100.0);
        let c = Counter::first(5000.0, at(0)).read(5920.0, at(10));
        assert_eq!(c.next_baseline(&u, PlanAnchor::Schedule, 5920.0), 6000.0, "done early");
        assert_eq!(c.next_baseline(&u, PlanAnchor::Schedule, 7300.0), 7000.0, "done late: one task, not two");
        assert_eq!(c.next_baseline(&u, PlanAnchor::Completion, 5920.0), 5920.0);
        // done early at 5,920: due at 7,000; 200 more in 24 hours is 880 left at 200 a day
        let next = c.next_cycle(&u, PlanAnchor::Schedule).read(6120.0, at(34));
        let today = NaiveDate::from_ymd_opt(2027, 1, 10).unwrap_or_default();
        assert_eq!(next.due_day(&u, today, 60), today + chrono::Duration::days(5));
    }
}
