//! 考勤 types: shifts, rota, the calendar's exceptions, punches, daily results, requests.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use uuid::Uuid;

use crate::kit::clock::BUSINESS_TZ;

crate::text_enum! {
    /// 排班规则类别
    pub enum RotaKind {
        /// Monday to Sunday
        Week = "week",
        /// a cycle of days from the assignment's first day (做二休一)
        Cycle = "cycle",
    }
}

crate::text_enum! {
    /// what the calendar makes of a day
    pub enum CalendarKind {
        /// 法定节假日 (and the days bridged to it)
        Holiday = "holiday",
        /// 调休上班 a weekend day worked
        Workday = "workday",
        /// as its weekday says (a company's row undoing the national one)
        Ordinary = "ordinary",
    }
}

crate::text_enum! {
    /// 考勤机类别
    pub enum TerminalKind { Fingerprint = "fingerprint", Face = "face" }
}

crate::text_enum! {
    /// where a punch came from
    pub enum PunchSource {
        /// 手机打卡 inside the project's geofence
        Phone = "phone",
        /// 考勤机 (signed)
        Terminal = "terminal",
        /// 补签 an approved correction
        Correction = "correction",
    }
}

crate::text_enum! {
    /// 上班 / 下班
    pub enum Direction { In = "in", Out = "out" }
}

crate::text_enum! {
    /// what the rota made of a day
    pub enum DayKind {
        /// 工作日
        Workday = "workday",
        /// 休息日
        Rest = "rest",
        /// 法定节假日
        Holiday = "holiday",
    }
}

crate::text_enum! {
    /// 考勤结果
    pub enum DayStatus {
        /// 正常
        Normal = "normal",
        /// 迟到
        Late = "late",
        /// 早退
        EarlyLeave = "early_leave",
        /// 迟到且早退
        LateAndEarly = "late_and_early",
        /// 缺卡
        MissingPunch = "missing_punch",
        /// 旷工
        Absent = "absent",
        /// 请假
        Leave = "leave",
        /// 休息
        Rest = "rest",
        /// 进行中: the day's punching window is still open
        InProgress = "in_progress",
    }
}

crate::text_enum! {
    /// 补签 or 请假
    pub enum RequestKind { Correction = "correction", Leave = "leave" }
}

crate::text_enum! {
    /// 假别
    pub enum LeaveType {
        /// 年假
        Annual = "annual",
        /// 病假
        Sick = "sick",
        /// 事假
        Personal = "personal",
        /// 婚假
        Marriage = "marriage",
        /// 产假
        Maternity = "maternity",
        /// 陪产假
        Paternity = "paternity",
        /// 丧假
        Bereavement = "bereavement",
        /// 调休假 time off for overtime worked
        Compensatory = "compensatory",
        /// 其他
        Other = "other",
    }
}

crate::text_enum! {
    /// a request's state
    pub enum RequestStatus { Pending = "pending", Approved = "approved", Rejected = "rejected" }
}

/// 班次 a shift.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    pub id: Uuid,
    pub company_id: Uuid,
    /// None: any project's
    pub project_id: Option<Uuid>,
    pub name: String,
    pub starts_at: NaiveTime,
    pub ends_at: NaiveTime,
    pub break_minutes: i32,
    pub late_grace_minutes: i32,
    pub early_grace_minutes: i32,
    pub absent_after_minutes: i32,
    pub overtime_after_minutes: i32,
    pub updated_at: DateTime<Utc>,
}

impl Shift {
    /// Whether it ends on the next day.
    pub fn crosses_midnight(&self) -> bool {
        self.ends_at <= self.starts_at
    }

    /// Its length (an end at the start: 24 hours).
    pub fn length(&self) -> TimeDelta {
        let d = self.ends_at - self.starts_at;
        if d <= TimeDelta::zero() { d + TimeDelta::days(1) } else { d }
    }

    /// Where it starts and ends on a business day (Shanghai).
    pub fn bounds(&self, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = local(day, self.starts_at);
        (start, start + self.length())
    }
}

/// A Shanghai wall-clock time on a day, as an instant (Shanghai has no daylight saving).
pub fn local(day: NaiveDate, t: NaiveTime) -> DateTime<Utc> {
    BUSINESS_TZ
        .from_local_datetime(&day.and_time(t))
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|| day.and_time(t).and_utc() - TimeDelta::hours(8))
}

/// 排班规则 a week or a cycle of shifts (None: a day off).
#[derive(Debug, Clone)]
pub struct RotaPattern {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub kind: RotaKind,
    pub slots: Vec<Option<Uuid>>,
    pub observe_holidays: bool,
    pub updated_at: DateTime<Utc>,
}

/// Who follows a pattern over which days.
#[derive(Debug, Clone)]
pub struct RotaAssignment {
    pub id: Uuid,
    pub project_id: Uuid,
    pub user_id: Uuid,
    pub pattern_id: Uuid,
    pub from_day: NaiveDate,
    pub to_day: Option<NaiveDate>,
}

impl RotaAssignment {
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.from_day <= day && self.to_day.is_none_or(|t| day <= t)
    }
}

/// A day set by hand.
#[derive(Debug, Clone)]
pub struct RotaDay {
    pub user_id: Uuid,
    pub day: NaiveDate,
    pub project_id: Uuid,
    pub shift_id: Option<Uuid>,
}

/// One of the calendar's exceptions (a company's, or the national one when `company_id` is None).
#[derive(Debug, Clone)]
pub struct CalendarDay {
    pub company_id: Option<Uuid>,
    pub day: NaiveDate,
    pub kind: CalendarKind,
    pub name: String,
    pub provisional: bool,
}

/// 考勤机
#[derive(Debug, Clone)]
pub struct Terminal {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub kind: TerminalKind,
    pub enabled: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// 打卡
#[derive(Debug, Clone)]
pub struct Punch {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub user_id: Uuid,
    /// when the phone or terminal recorded it
    pub at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub source: PunchSource,
    pub direction: Option<Direction>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub accuracy_m: Option<f64>,
    pub distance_m: Option<f64>,
    pub terminal_id: Option<Uuid>,
}

/// 考勤结果 one employee's day.
#[derive(Debug, Clone, PartialEq)]
pub struct AttendanceDay {
    pub user_id: Uuid,
    pub day: NaiveDate,
    pub company_id: Uuid,
    pub project_id: Option<Uuid>,
    pub shift_id: Option<Uuid>,
    pub kind: DayKind,
    pub status: DayStatus,
    pub expected_start: Option<DateTime<Utc>>,
    pub expected_end: Option<DateTime<Utc>>,
    pub first_punch: Option<DateTime<Utc>>,
    pub last_punch: Option<DateTime<Utc>>,
    pub late_minutes: i32,
    pub early_minutes: i32,
    pub missing_punches: i32,
    /// punches sent well after they were taken (queued offline)
    pub offline_punches: i32,
    pub leave_minutes: i32,
    pub worked_minutes: i32,
    pub overtime_minutes: i32,
    pub settled: bool,
    pub computed_at: DateTime<Utc>,
}

/// 补签 / 请假
#[derive(Debug, Clone)]
pub struct AttendanceRequest {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub user_id: Uuid,
    pub kind: RequestKind,
    pub leave_type: Option<LeaveType>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub direction: Option<Direction>,
    pub reason: String,
    pub status: RequestStatus,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// 考勤月报 one employee's month.
#[derive(Debug, Clone, Default)]
pub struct MonthRow {
    pub user_id: Uuid,
    pub name: String,
    pub employee_no: Option<String>,
    pub project_id: Option<Uuid>,
    /// days with a shift
    pub scheduled_days: i64,
    /// scheduled days with a punch
    pub attended_days: i64,
    pub late_days: i64,
    pub late_minutes: i64,
    pub early_days: i64,
    pub early_minutes: i64,
    pub absent_days: i64,
    pub missing_punches: i64,
    /// punches sent well after they were taken
    pub offline_punches: i64,
    pub leave_minutes: i64,
    pub worked_minutes: i64,
    /// beyond the shift on working days (150%)
    pub overtime_minutes: i64,
    /// on rest days (200%)
    pub rest_day_minutes: i64,
    /// on public holidays (300%)
    pub holiday_minutes: i64,
}
