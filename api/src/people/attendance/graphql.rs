//! 考勤 over GraphQL: shifts, rota and the calendar for managers; punches, one's own days,
//! corrections and leave for staff; results, the monthly report and who is on duty.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use uuid::Uuid;

use super::model;
use super::service::{self, Fix, PatternInput, PhonePunch, ShiftInput};
use crate::kit::error::{AppError, Msg};
use crate::kit::gql::{Conn, StateExt, parse_id, parse_ids, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 排班规则类别
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::RotaKind")]
pub enum RotaKind {
    /// Monday to Sunday (7 slots)
    Week,
    /// a cycle of 1-31 days counted from the assignment's first day (做二休一: 3 slots)
    Cycle,
}

/// What the calendar makes of a day
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::CalendarKind")]
pub enum CalendarKind {
    /// 法定节假日: off for office-hours patterns
    Holiday,
    /// 调休上班: a weekend day worked
    Workday,
    /// as its weekday says (a company's entry undoing the national one)
    Ordinary,
}

/// 考勤机类别
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::TerminalKind")]
pub enum TerminalKind {
    /// 指纹
    Fingerprint,
    /// 人脸
    Face,
}

/// Where a punch came from
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::PunchSource")]
pub enum PunchSource {
    /// 手机打卡
    Phone,
    /// 考勤机
    Terminal,
    /// 补签 (approved)
    Correction,
}

/// 上班 / 下班
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Direction")]
pub enum PunchDirection {
    /// 上班
    In,
    /// 下班
    Out,
}

/// What the rota made of a day
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::DayKind")]
pub enum DayKind {
    /// 工作日
    Workday,
    /// 休息日
    Rest,
    /// 法定节假日
    Holiday,
}

/// 考勤结果
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::DayStatus")]
pub enum AttendanceStatus {
    /// 正常
    Normal,
    /// 迟到
    Late,
    /// 早退
    EarlyLeave,
    /// 迟到且早退
    LateAndEarly,
    /// 缺卡
    MissingPunch,
    /// 旷工
    Absent,
    /// 请假
    Leave,
    /// 休息
    Rest,
    /// the day's punching window is still open
    InProgress,
}

/// 补签 or 请假
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::RequestKind")]
pub enum AttendanceRequestKind {
    /// 补签
    Correction,
    /// 请假
    Leave,
}

/// 假别
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::LeaveType")]
pub enum LeaveType {
    /// 年假
    Annual,
    /// 病假
    Sick,
    /// 事假
    Personal,
    /// 婚假
    Marriage,
    /// 产假
    Maternity,
    /// 陪产假
    Paternity,
    /// 丧假
    Bereavement,
    /// 调休假
    Compensatory,
    /// 其他
    Other,
}

/// A request's state
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::RequestStatus")]
pub enum AttendanceRequestStatus {
    /// waiting for the approver
    Pending,
    /// approved: the results changed
    Approved,
    /// rejected
    Rejected,
}

fn hhmm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

/// 班次
#[derive(SimpleObject)]
pub struct Shift {
    /// the shift's id
    pub id: ID,
    /// its project (none: offered to every project)
    pub project_id: Option<ID>,
    /// 名称
    pub name: String,
    /// 上班时间 HH:MM (Shanghai)
    pub starts_at: String,
    /// 下班时间 HH:MM; at or before the start: the next day
    pub ends_at: String,
    /// whether it ends the next day
    pub crosses_midnight: bool,
    /// 休息时长, not counted as worked
    pub break_minutes: i32,
    /// 迟到宽限
    pub late_grace_minutes: i32,
    /// 早退宽限
    pub early_grace_minutes: i32,
    /// late or early by more than this: absent (旷工)
    pub absent_after_minutes: i32,
    /// staying past the end by at least this counts as overtime
    pub overtime_after_minutes: i32,
}

impl From<model::Shift> for Shift {
    fn from(s: model::Shift) -> Self {
        Shift {
            id: to_id(s.id),
            project_id: s.project_id.map(to_id),
            crosses_midnight: s.crosses_midnight(),
            starts_at: hhmm(s.starts_at),
            ends_at: hhmm(s.ends_at),
            name: s.name,
            break_minutes: s.break_minutes,
            late_grace_minutes: s.late_grace_minutes,
            early_grace_minutes: s.early_grace_minutes,
            absent_after_minutes: s.absent_after_minutes,
            overtime_after_minutes: s.overtime_after_minutes,
        }
    }
}

/// 排班规则
#[derive(SimpleObject)]
pub struct RotaPattern {
    /// the pattern's id
    pub id: ID,
    /// its project
    pub project_id: ID,
    /// 名称
    pub name: String,
    /// week or cycle
    pub kind: RotaKind,
    /// a shift id per day (null: a day off)
    pub slots: Vec<Option<ID>>,
    /// public holidays off and make-up working days worked
    pub observe_holidays: bool,
}

impl From<model::RotaPattern> for RotaPattern {
    fn from(p: model::RotaPattern) -> Self {
        RotaPattern {
            id: to_id(p.id),
            project_id: to_id(p.project_id),
            name: p.name,
            kind: p.kind.into(),
            slots: p.slots.into_iter().map(|s| s.map(to_id)).collect(),
            observe_holidays: p.observe_holidays,
        }
    }
}

/// One employee's day on the rota.
#[derive(SimpleObject)]
pub struct RotaEntry {
    /// the employee
    pub user_id: ID,
    /// the business day
    pub day: NaiveDate,
    /// workday, rest day or public holiday
    pub kind: DayKind,
    /// the shift (none: a day off)
    pub shift: Option<Shift>,
    /// set by hand rather than by the pattern
    pub hand_set: bool,
}

/// A day the calendar treats specially.
#[derive(SimpleObject)]
pub struct CalendarDay {
    /// the day
    pub day: NaiveDate,
    /// holiday, make-up working day or ordinary
    pub kind: CalendarKind,
    /// 节日名称
    pub name: String,
    /// statutory days only until the State Council publishes the year's arrangement
    pub provisional: bool,
    /// the company's own entry (else the national calendar's)
    pub company_entry: bool,
}

impl From<model::CalendarDay> for CalendarDay {
    fn from(c: model::CalendarDay) -> Self {
        CalendarDay {
            day: c.day,
            kind: c.kind.into(),
            name: c.name,
            provisional: c.provisional,
            company_entry: c.company_id.is_some(),
        }
    }
}

/// 考勤机
#[derive(SimpleObject)]
pub struct AttendanceTerminal {
    /// the terminal's id (what it signs with its key)
    pub id: ID,
    /// its project
    pub project_id: ID,
    /// 名称
    pub name: String,
    /// fingerprint or face
    pub kind: TerminalKind,
    /// a disabled terminal's requests are refused
    pub enabled: bool,
    /// its last accepted request
    pub last_seen_at: Option<DateTime<Utc>>,
    /// when it was added
    pub created_at: DateTime<Utc>,
}

impl From<model::Terminal> for AttendanceTerminal {
    fn from(t: model::Terminal) -> Self {
        AttendanceTerminal {
            id: to_id(t.id),
            project_id: to_id(t.project_id),
            name: t.name,
            kind: t.kind.into(),
            enabled: t.enabled,
            last_seen_at: t.last_seen_at,
            created_at: t.created_at,
        }
    }
}

/// 打卡记录
#[derive(SimpleObject)]
pub struct Punch {
    /// the punch's id
    pub id: ID,
    /// whose
    pub user_id: ID,
    /// where
    pub project_id: ID,
    /// when the phone or terminal took it
    pub at: DateTime<Utc>,
    /// when the server received it (later for a punch queued offline)
    pub received_at: DateTime<Utc>,
    /// sent well after it was taken (queued offline): its time is the phone's or terminal's
    pub offline: bool,
    /// phone, terminal or correction
    pub source: PunchSource,
    /// in or out, when the source said
    pub direction: Option<PunchDirection>,
    /// metres from the project's geofence centre (phone punches)
    pub distance_m: Option<f64>,
    /// the phone's reported accuracy in metres
    pub accuracy_m: Option<f64>,
    /// the terminal (terminal punches)
    pub terminal_id: Option<ID>,
}

impl From<model::Punch> for Punch {
    fn from(p: model::Punch) -> Self {
        Punch {
            id: to_id(p.id),
            user_id: to_id(p.user_id),
            project_id: to_id(p.project_id),
            at: p.at,
            received_at: p.received_at,
            offline: p.received_at - p.at > chrono::TimeDelta::minutes(1) && p.source != model::PunchSource::Correction,
            source: p.source.into(),
            direction: p.direction.map(Into::into),
            distance_m: p.distance_m.map(|d| d.round()),
            accuracy_m: p.accuracy_m,
            terminal_id: p.terminal_id.map(to_id),
        }
    }
}

/// 考勤结果 one employee's day.
#[derive(SimpleObject)]
pub struct AttendanceDay {
    /// the employee
    pub user_id: ID,
    /// the business day (a night shift belongs to the day it starts)
    pub day: NaiveDate,
    /// the project the rota had them in
    pub project_id: Option<ID>,
    /// the shift (none: a day off)
    pub shift_id: Option<ID>,
    /// workday, rest day or public holiday
    pub kind: DayKind,
    /// the result
    pub status: AttendanceStatus,
    /// when they were due (later when leave covered the start)
    pub expected_start: Option<DateTime<Utc>>,
    /// when they could leave
    pub expected_end: Option<DateTime<Utc>>,
    /// the first punch of the day's window
    pub first_punch: Option<DateTime<Utc>>,
    /// the last, when there were two or more
    pub last_punch: Option<DateTime<Utc>>,
    /// 迟到分钟
    pub late_minutes: i32,
    /// 早退分钟
    pub early_minutes: i32,
    /// 缺卡次数 (0-2)
    pub missing_punches: i32,
    /// punches of the day sent well after they were taken (queued offline)
    pub offline_punches: i32,
    /// 请假分钟 within the shift
    pub leave_minutes: i32,
    /// 工作分钟 (breaks excluded)
    pub worked_minutes: i32,
    /// 加班分钟 (on a day off: everything worked)
    pub overtime_minutes: i32,
    /// the window has closed: final unless a correction or leave is approved
    pub settled: bool,
}

impl From<model::AttendanceDay> for AttendanceDay {
    fn from(d: model::AttendanceDay) -> Self {
        AttendanceDay {
            user_id: to_id(d.user_id),
            day: d.day,
            project_id: d.project_id.map(to_id),
            shift_id: d.shift_id.map(to_id),
            kind: d.kind.into(),
            status: d.status.into(),
            expected_start: d.expected_start,
            expected_end: d.expected_end,
            first_punch: d.first_punch,
            last_punch: d.last_punch,
            late_minutes: d.late_minutes,
            early_minutes: d.early_minutes,
            missing_punches: d.missing_punches,
            offline_punches: d.offline_punches,
            leave_minutes: d.leave_minutes,
            worked_minutes: d.worked_minutes,
            overtime_minutes: d.overtime_minutes,
            settled: d.settled,
        }
    }
}

/// One employee's month.
#[derive(SimpleObject)]
pub struct AttendanceReportRow {
    /// the employee
    pub user_id: ID,
    /// 姓名
    pub name: String,
    /// 工号
    pub employee_no: Option<String>,
    /// the project of their latest day
    pub project_id: Option<ID>,
    /// 应出勤天数
    pub scheduled_days: i64,
    /// 实出勤天数
    pub attended_days: i64,
    /// 迟到次数
    pub late_days: i64,
    /// 迟到分钟
    pub late_minutes: i64,
    /// 早退次数
    pub early_days: i64,
    /// 早退分钟
    pub early_minutes: i64,
    /// 旷工天数
    pub absent_days: i64,
    /// 缺卡次数
    pub missing_punches: i64,
    /// punches sent well after they were taken (queued offline)
    pub offline_punches: i64,
    /// 请假分钟
    pub leave_minutes: i64,
    /// 工作分钟
    pub worked_minutes: i64,
    /// 加班分钟 on working days (150%)
    pub overtime_minutes: i64,
    /// 休息日加班分钟 (200%)
    pub rest_day_minutes: i64,
    /// 节假日加班分钟 (300%)
    pub holiday_minutes: i64,
}

impl From<model::MonthRow> for AttendanceReportRow {
    fn from(r: model::MonthRow) -> Self {
        AttendanceReportRow {
            user_id: to_id(r.user_id),
            name: r.name,
            employee_no: r.employee_no,
            project_id: r.project_id.map(to_id),
            scheduled_days: r.scheduled_days,
            attended_days: r.attended_days,
            late_days: r.late_days,
            late_minutes: r.late_minutes,
            early_days: r.early_days,
            early_minutes: r.early_minutes,
            absent_days: r.absent_days,
            missing_punches: r.missing_punches,
            offline_punches: r.offline_punches,
            leave_minutes: r.leave_minutes,
            worked_minutes: r.worked_minutes,
            overtime_minutes: r.overtime_minutes,
            rest_day_minutes: r.rest_day_minutes,
            holiday_minutes: r.holiday_minutes,
        }
    }
}

/// 考勤月报
#[derive(SimpleObject)]
pub struct AttendanceReport {
    /// YYYY-MM
    pub month: String,
    /// one row per employee with a result in the month
    pub rows: Vec<AttendanceReportRow>,
    /// every row as CSV (UTF-8 with a BOM; formula-like cells neutralised)
    pub csv: String,
}

/// 在岗 someone on shift and clocked in now.
#[derive(SimpleObject)]
pub struct OnDutyEmployee {
    /// the employee
    pub user_id: ID,
    /// 姓名
    pub name: String,
    /// the shift they are on
    pub shift: Shift,
    /// when they clocked in
    pub since: DateTime<Utc>,
}

/// 补签 / 请假
#[derive(SimpleObject)]
pub struct AttendanceRequest {
    /// the request's id (the approval's subject)
    pub id: ID,
    /// its project
    pub project_id: ID,
    /// whose
    pub user_id: ID,
    /// correction or leave
    pub kind: AttendanceRequestKind,
    /// 假别 (leave)
    pub leave_type: Option<LeaveType>,
    /// the corrected punch's time, or the leave's start
    pub starts_at: DateTime<Utc>,
    /// the leave's end
    pub ends_at: Option<DateTime<Utc>>,
    /// in or out (correction)
    pub direction: Option<PunchDirection>,
    /// 理由
    pub reason: String,
    /// pending, approved, rejected
    pub status: AttendanceRequestStatus,
    /// when it was filed
    pub created_at: DateTime<Utc>,
    /// when it was decided
    pub decided_at: Option<DateTime<Utc>>,
}

impl From<model::AttendanceRequest> for AttendanceRequest {
    fn from(r: model::AttendanceRequest) -> Self {
        AttendanceRequest {
            id: to_id(r.id),
            project_id: to_id(r.project_id),
            user_id: to_id(r.user_id),
            kind: r.kind.into(),
            leave_type: r.leave_type.map(Into::into),
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            direction: r.direction.map(Into::into),
            reason: r.reason,
            status: r.status.into(),
            created_at: r.created_at,
            decided_at: r.decided_at,
        }
    }
}

async fn load_shift(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Shift> {
    let actor = ctx.actor()?;
    let s = service::shifts_by_id(ctx.state(), actor.company_id, &[id]).await?;
    Ok(s.into_iter().next().ok_or(AppError::not_found("shift"))?.into())
}

async fn load_pattern(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<RotaPattern> {
    let actor = ctx.actor()?;
    let all = service::pattern(ctx.state(), &actor, id).await?;
    Ok(all.into())
}

async fn load_punch(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Punch> {
    let actor = ctx.actor()?;
    Ok(service::get_punch(ctx.state(), &actor, id).await?.into())
}

async fn load_request(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<AttendanceRequest> {
    let actor = ctx.actor()?;
    Ok(service::request(ctx.state(), &actor, id).await?.into())
}

fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), AppError> {
    if to < from || (to - from).num_days() > 30 {
        return Err(AppError::validation("to", Msg::new("查询范围应在31天以内", "A range of up to 31 days")));
    }
    Ok(())
}

#[derive(Default)]
pub struct AttendanceQuery;

#[Object]
impl AttendanceQuery {
    /// 班次 of a project and the company-wide ones.
    async fn shifts(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<Vec<Shift>> {
        let actor = ctx.actor()?;
        let p = parse_id("projectId", &project_id)?;
        Ok(service::shifts(ctx.state(), &actor, p).await?.into_iter().map(Into::into).collect())
    }

    /// 排班规则 of a project (`attendance:read` or `attendance:write`).
    async fn rota_patterns(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<Vec<RotaPattern>> {
        let actor = ctx.actor()?;
        let p = parse_id("projectId", &project_id)?;
        Ok(service::patterns(ctx.state(), &actor, p).await?.into_iter().map(Into::into).collect())
    }

    /// 排班表: each rostered employee's days in the project over up to 31 days.
    async fn rota(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        from: NaiveDate,
        to: NaiveDate,
    ) -> async_graphql::Result<Vec<RotaEntry>> {
        let actor = ctx.actor()?;
        let p = parse_id("projectId", &project_id)?;
        Ok(service::rota(ctx.state(), &actor, p, from, to)
            .await?
            .into_iter()
            .map(|e| RotaEntry {
                user_id: to_id(e.user_id),
                day: e.day,
                kind: e.plan.kind.into(),
                shift: e.plan.shift.map(Into::into),
                hand_set: e.hand_set,
            })
            .collect())
    }

    /// 节假日与调休 in force for the company in a year (its entries over the national calendar).
    async fn attendance_calendar(&self, ctx: &Context<'_>, year: i32) -> async_graphql::Result<Vec<CalendarDay>> {
        let actor = ctx.actor()?;
        Ok(service::calendar(ctx.state(), &actor, year).await?.into_iter().map(Into::into).collect())
    }

    /// 考勤机 of a project.
    async fn attendance_terminals(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
    ) -> async_graphql::Result<Vec<AttendanceTerminal>> {
        let actor = ctx.actor()?;
        let p = parse_id("projectId", &project_id)?;
        Ok(service::terminals(ctx.state(), &actor, p).await?.into_iter().map(Into::into).collect())
    }

    /// 考勤结果 over up to 31 days, by day then employee: a project's (`attendance:read`),
    /// or one employee's (`attendance:read` over the project, or one's own).
    #[allow(clippy::too_many_arguments)]
    async fn attendance_days(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        user_id: Option<ID>,
        from: NaiveDate,
        to: NaiveDate,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<AttendanceDay>> {
        let actor = ctx.actor()?;
        let page = Page::<(NaiveDate, Uuid)>::new(ctx, first, after)?;
        let project = parse_opt_id("projectId", project_id.as_ref())?;
        let user = parse_opt_id("userId", user_id.as_ref())?;
        let rows = service::days(ctx.state(), &actor, project, user, from, to, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |d| (d.day, d.user_id), AttendanceDay::from))
    }

    /// 我的考勤 (`self:attendance`): one's days over up to 31 days.
    #[graphql(guard = "Perm::SelfAttendance")]
    async fn my_attendance(
        &self,
        ctx: &Context<'_>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> async_graphql::Result<Vec<AttendanceDay>> {
        let actor = ctx.actor()?;
        check_range(from, to)?;
        let rows = service::days(ctx.state(), &actor, None, Some(actor.user_id), from, to, None, 31).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// 打卡记录 of one employee over up to 31 days (one's own, or `attendance:read`).
    async fn punches(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        from: NaiveDate,
        to: NaiveDate,
    ) -> async_graphql::Result<Vec<Punch>> {
        let actor = ctx.actor()?;
        let u = parse_id("userId", &user_id)?;
        Ok(service::punches_of(ctx.state(), &actor, u, from, to).await?.into_iter().map(Into::into).collect())
    }

    /// 考勤月报 (`attendance:read`): per employee, with a CSV of them all.
    #[graphql(guard = "Perm::AttendanceRead")]
    async fn attendance_report(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "YYYY-MM")] month: String,
        #[graphql(desc = "only this project")] project_id: Option<ID>,
    ) -> async_graphql::Result<AttendanceReport> {
        let actor = ctx.actor()?;
        let state = ctx.state();
        let p = parse_opt_id("projectId", project_id.as_ref())?;
        let rows = service::month_report(state, &actor, &month, p).await?;
        let mut ids: Vec<Uuid> = rows.iter().filter_map(|r| r.project_id).collect();
        ids.sort();
        ids.dedup();
        let names = service::project_names(state, actor.company_id, &ids).await?;
        let csv = service::report_csv(&rows, &names);
        Ok(AttendanceReport { month: month.trim().to_owned(), rows: rows.into_iter().map(Into::into).collect(), csv })
    }

    /// 在岗人员: who of the project is on shift and clocked in now (`attendance:read`,
    /// `alarm:read` or `workorder:dispatch` over it).
    async fn on_duty(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<Vec<OnDutyEmployee>> {
        let actor = ctx.actor()?;
        let state = ctx.state();
        let p = parse_id("projectId", &project_id)?;
        let rows = service::on_duty(state, &actor, p).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        let names = crate::rbac::service::names_of(state, actor.company_id, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|(u, s, since)| OnDutyEmployee {
                user_id: to_id(u),
                name: names.get(&u).cloned().unwrap_or_default(),
                shift: s.into(),
                since,
            })
            .collect())
    }

    /// 补签与请假, newest first: one's own (`mine`), or those of the caller's
    /// `attendance:read` / `attendance:approve` projects.
    async fn attendance_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] mine: bool,
        status: Option<AttendanceRequestStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<AttendanceRequest>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let rows =
            service::requests(ctx.state(), &actor, mine, status.map(Into::into), page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| r.id, AttendanceRequest::from))
    }

    /// One request (one's own, or of the caller's projects).
    async fn attendance_request(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<AttendanceRequest> {
        load_request(ctx, parse_id("id", &id)?).await
    }
}

/// A shift to create or change.
#[derive(InputObject)]
pub struct SaveShiftInput {
    /// the shift to change; omitted: a new one
    pub id: Option<ID>,
    /// its project (new shifts; omitted: company-wide, which needs `attendance:write` over the company)
    pub project_id: Option<ID>,
    /// 名称 (unique in the company, up to 30 characters)
    pub name: String,
    /// 上班时间 HH:MM
    pub starts_at: String,
    /// 下班时间 HH:MM (at or before the start: the next day)
    pub ends_at: String,
    /// 休息分钟 (0-600, shorter than the shift)
    #[graphql(default)]
    pub break_minutes: i32,
    /// 迟到宽限 (0-120)
    #[graphql(default)]
    pub late_grace_minutes: i32,
    /// 早退宽限 (0-120)
    #[graphql(default)]
    pub early_grace_minutes: i32,
    /// late or early beyond this counts as absent (1-1440)
    #[graphql(default = 240)]
    pub absent_after_minutes: i32,
    /// staying at least this long past the end counts as overtime (0-600)
    #[graphql(default = 30)]
    pub overtime_after_minutes: i32,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A pattern to create or change.
#[derive(InputObject)]
pub struct SaveRotaPatternInput {
    /// the pattern to change; omitted: a new one
    pub id: Option<ID>,
    /// its project
    pub project_id: ID,
    /// 名称 (unique in the project)
    pub name: String,
    /// week or cycle
    pub kind: RotaKind,
    /// a shift id per day, null for a day off: 7 (Monday first) for a week, 1-31 for a cycle
    pub slots: Vec<Option<ID>>,
    /// public holidays off and make-up working days worked (office hours); false: the cycle runs on
    #[graphql(default = true)]
    pub observe_holidays: bool,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Employees to put on a pattern.
#[derive(InputObject)]
pub struct AssignRotaInput {
    /// the pattern (its project is where they work)
    pub pattern_id: ID,
    /// 1-500 staff accounts working in the project
    pub user_ids: Vec<ID>,
    /// the first day (a cycle counts from it); at most 62 days back
    pub from: NaiveDate,
    /// the last day; omitted: until changed
    pub to: Option<NaiveDate>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Days set by hand.
#[derive(InputObject)]
pub struct SetRotaDaysInput {
    /// the project
    pub project_id: ID,
    /// staff accounts working in the project
    pub user_ids: Vec<ID>,
    /// the days (at most 1,000 employee-days)
    pub days: Vec<NaiveDate>,
    /// the shift; omitted: a day off
    pub shift_id: Option<ID>,
    /// true: back to what the pattern says
    #[graphql(default)]
    pub reset: bool,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The company's entry for a day.
#[derive(InputObject)]
pub struct SetCalendarDayInput {
    /// the day
    pub day: NaiveDate,
    /// holiday, make-up working day or ordinary; omitted: remove the company's entry
    pub kind: Option<CalendarKind>,
    /// 名称 (e.g. 国庆节)
    #[graphql(default)]
    pub name: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 打卡
#[derive(InputObject)]
pub struct PunchInput {
    /// the project; omitted: the rota's, else the nearest of one's projects
    pub project_id: Option<ID>,
    /// latitude (the coordinate system the project's geofence uses)
    pub lat: f64,
    /// longitude
    pub lng: f64,
    /// the fix's accuracy in metres as the phone reports it
    pub accuracy_m: f64,
    /// when the phone took the punch (queued offline); omitted: now
    pub at: Option<DateTime<Utc>>,
    /// in or out; omitted: the day's first punch is the arrival, the last the departure
    pub direction: Option<PunchDirection>,
    /// makes a retry apply once (the app's queue sends it with every punch)
    pub client_mutation_id: Option<String>,
}

/// A terminal to add.
#[derive(InputObject)]
pub struct AddAttendanceTerminalInput {
    /// its project
    pub project_id: ID,
    /// 名称 (unique in the company)
    pub name: String,
    /// fingerprint or face
    pub kind: TerminalKind,
    /// makes a retry apply once (a retry does not show the key again)
    pub client_mutation_id: Option<String>,
}

/// A terminal's switch and key.
#[derive(InputObject)]
pub struct UpdateAttendanceTerminalInput {
    /// the terminal
    pub terminal_id: ID,
    /// false: its requests are refused
    pub enabled: bool,
    /// true: a new key (shown once) replaces the old one at once
    #[graphql(default)]
    pub rotate_key: bool,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 补签
#[derive(InputObject)]
pub struct AskAttendanceCorrectionInput {
    /// the project; omitted: the rota's for that day
    pub project_id: Option<ID>,
    /// the time of the punch that is missing
    pub at: DateTime<Utc>,
    /// in or out
    pub direction: PunchDirection,
    /// 理由 (2-500 characters)
    pub reason: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// 请假
#[derive(InputObject)]
pub struct AskLeaveInput {
    /// the project; omitted: the rota's for the first day
    pub project_id: Option<ID>,
    /// 假别
    pub leave_type: LeaveType,
    /// 开始
    pub from: DateTime<Utc>,
    /// 结束 (after the start, up to 180 days)
    pub to: DateTime<Utc>,
    /// 理由 (2-500 characters)
    pub reason: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

crate::object_payload!(
    /// The shift as it is now.
    ShiftPayload,
    shift: Shift,
    load_shift,
    "the shift"
);

crate::object_payload!(
    /// The pattern as it is now.
    RotaPatternPayload,
    pattern: RotaPattern,
    load_pattern,
    "the pattern"
);

crate::object_payload!(
    /// The request as it is now; the approver decides it with `decideApproval`.
    AttendanceRequestPayload,
    request: AttendanceRequest,
    load_request,
    "the request"
);

/// The punch taken (a retry or a double tap answers with the first), and the day it counts for.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PunchPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    #[graphql(skip)]
    pub id: Uuid,
}

#[async_graphql::ComplexObject]
impl PunchPayload {
    /// the punch
    async fn punch(&self, ctx: &Context<'_>) -> async_graphql::Result<Punch> {
        load_punch(ctx, self.id).await
    }

    /// the day's result as it stands after the punch
    async fn day(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<AttendanceDay>> {
        let actor = ctx.actor()?;
        let state = ctx.state();
        let p = service::get_punch(state, &actor, self.id).await?;
        let d = crate::kit::clock::business_date(p.at);
        let rows =
            service::days(state, &actor, None, Some(p.user_id), d - chrono::TimeDelta::days(1), d, None, 2).await?;
        Ok(rows.into_iter().rfind(|r| r.first_punch.is_some_and(|f| f <= p.at)).map(Into::into))
    }
}

/// A terminal, with its key when one was just made.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AttendanceTerminalPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// 密钥: shown this once (store it in the terminal); null on a retry and when not rotated
    pub key: Option<String>,
    #[graphql(skip)]
    pub id: Uuid,
}

#[async_graphql::ComplexObject]
impl AttendanceTerminalPayload {
    /// the terminal
    async fn terminal(&self, ctx: &Context<'_>) -> async_graphql::Result<AttendanceTerminal> {
        let actor = ctx.actor()?;
        Ok(service::terminal(ctx.state(), &actor, self.id).await?.into())
    }
}

/// What a rota change answers.
#[derive(SimpleObject)]
pub struct RotaChangedPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the project whose rota changed
    pub project_id: ID,
}

/// The day as the company's calendar has it now.
#[derive(SimpleObject)]
pub struct CalendarDayPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the entry in force (none: an ordinary day)
    pub entry: Option<CalendarDay>,
}

#[derive(Default)]
pub struct AttendanceMutation;

#[Object]
impl AttendanceMutation {
    /// 班次 (`attendance:write` over its project; company-wide over the company).
    #[graphql(guard = "Perm::AttendanceWrite")]
    async fn save_shift(&self, ctx: &Context<'_>, input: SaveShiftInput) -> async_graphql::Result<ShiftPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = ShiftInput {
            id: parse_opt_id("id", input.id.as_ref())?,
            project_id: parse_opt_id("projectId", input.project_id.as_ref())?,
            name: input.name,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            break_minutes: input.break_minutes,
            late_grace_minutes: input.late_grace_minutes,
            early_grace_minutes: input.early_grace_minutes,
            absent_after_minutes: input.absent_after_minutes,
            overtime_after_minutes: input.overtime_after_minutes,
        };
        let id = service::save_shift(ctx.state(), &actor, &retry, i).await?;
        Ok(ShiftPayload::new(input.client_mutation_id, id))
    }

    /// 排班规则 (`attendance:write` over the project).
    #[graphql(guard = "Perm::AttendanceWrite")]
    async fn save_rota_pattern(
        &self,
        ctx: &Context<'_>,
        input: SaveRotaPatternInput,
    ) -> async_graphql::Result<RotaPatternPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let mut slots = Vec::with_capacity(input.slots.len());
        for s in &input.slots {
            slots.push(parse_opt_id("slots", s.as_ref())?);
        }
        let i = PatternInput {
            id: parse_opt_id("id", input.id.as_ref())?,
            project_id: parse_id("projectId", &input.project_id)?,
            name: input.name,
            kind: input.kind.into(),
            slots,
            observe_holidays: input.observe_holidays,
        };
        let id = service::save_pattern(ctx.state(), &actor, &retry, i).await?;
        Ok(RotaPatternPayload::new(input.client_mutation_id, id))
    }

    /// 排班 (`attendance:write` over the pattern's project).
    #[graphql(guard = "Perm::AttendanceWrite")]
    async fn assign_rota(
        &self,
        ctx: &Context<'_>,
        input: AssignRotaInput,
    ) -> async_graphql::Result<RotaPatternPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let pattern = parse_id("patternId", &input.pattern_id)?;
        let users = parse_ids("userIds", &input.user_ids)?;
        let id = service::assign_rota(ctx.state(), &actor, &retry, pattern, &users, input.from, input.to).await?;
        Ok(RotaPatternPayload::new(input.client_mutation_id, id))
    }

    /// 调班 (`attendance:write` over the project): a shift, a day off, or back to the pattern.
    #[graphql(guard = "Perm::AttendanceWrite")]
    async fn set_rota_days(
        &self,
        ctx: &Context<'_>,
        input: SetRotaDaysInput,
    ) -> async_graphql::Result<RotaChangedPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project = parse_id("projectId", &input.project_id)?;
        let users = parse_ids("userIds", &input.user_ids)?;
        let shift = parse_opt_id("shiftId", input.shift_id.as_ref())?;
        let p = service::set_rota_days(ctx.state(), &actor, &retry, project, &users, &input.days, shift, input.reset)
            .await?;
        Ok(RotaChangedPayload { client_mutation_id: input.client_mutation_id, project_id: to_id(p) })
    }

    /// 节假日设置 (`attendance:write` over the company): the company's entry for a day.
    #[graphql(guard = "Perm::AttendanceWrite")]
    async fn set_calendar_day(
        &self,
        ctx: &Context<'_>,
        input: SetCalendarDayInput,
    ) -> async_graphql::Result<CalendarDayPayload> {
        let actor = ctx.actor()?;
        let state = ctx.state();
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let entry = input.kind.map(|k| (k.into(), input.name.clone()));
        let day = service::set_calendar_day(state, &actor, &retry, input.day, entry).await?;
        let year = chrono::Datelike::year(&day);
        let entry = service::calendar(state, &actor, year).await?.into_iter().find(|c| c.day == day).map(Into::into);
        Ok(CalendarDayPayload { client_mutation_id: input.client_mutation_id, entry })
    }

    /// 打卡 (`self:attendance`): inside the project's geofence; a punch queued offline keeps
    /// the time the phone took it.
    #[graphql(guard = "Perm::SelfAttendance")]
    async fn punch(&self, ctx: &Context<'_>, input: PunchInput) -> async_graphql::Result<PunchPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let p = PhonePunch {
            project_id: parse_opt_id("projectId", input.project_id.as_ref())?,
            fix: Fix { lat: input.lat, lng: input.lng, accuracy_m: input.accuracy_m },
            at: input.at,
            direction: input.direction.map(Into::into),
        };
        let id = service::punch(ctx.state(), &actor, &retry, p).await?;
        Ok(PunchPayload { client_mutation_id: input.client_mutation_id, id })
    }

    /// 添加考勤机 (`attendance:write` over the project): the key comes back once.
    #[graphql(guard = "Perm::AttendanceWrite")]
    async fn add_attendance_terminal(
        &self,
        ctx: &Context<'_>,
        input: AddAttendanceTerminalInput,
    ) -> async_graphql::Result<AttendanceTerminalPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project = parse_id("projectId", &input.project_id)?;
        let (id, key) =
            service::add_terminal(ctx.state(), &actor, &retry, project, &input.name, input.kind.into()).await?;
        Ok(AttendanceTerminalPayload { client_mutation_id: input.client_mutation_id, key, id })
    }

    /// 启用/停用、更换密钥 (`attendance:write`).
    #[graphql(guard = "Perm::AttendanceWrite")]
    async fn update_attendance_terminal(
        &self,
        ctx: &Context<'_>,
        input: UpdateAttendanceTerminalInput,
    ) -> async_graphql::Result<AttendanceTerminalPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("terminalId", &input.terminal_id)?;
        let (id, key) =
            service::update_terminal(ctx.state(), &actor, &retry, id, input.enabled, input.rotate_key).await?;
        Ok(AttendanceTerminalPayload { client_mutation_id: input.client_mutation_id, key, id })
    }

    /// 补签 (`self:attendance`): asks the project's approver (`attendance:approve`).
    #[graphql(guard = "Perm::SelfAttendance")]
    async fn ask_attendance_correction(
        &self,
        ctx: &Context<'_>,
        input: AskAttendanceCorrectionInput,
    ) -> async_graphql::Result<AttendanceRequestPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project = parse_opt_id("projectId", input.project_id.as_ref())?;
        let id = service::ask_correction(
            ctx.state(),
            &actor,
            &retry,
            project,
            input.at,
            input.direction.into(),
            &input.reason,
        )
        .await?;
        Ok(AttendanceRequestPayload::new(input.client_mutation_id, id))
    }

    /// 请假 (`self:attendance`): asks the project's approver (`attendance:approve`).
    #[graphql(guard = "Perm::SelfAttendance")]
    async fn ask_leave(
        &self,
        ctx: &Context<'_>,
        input: AskLeaveInput,
    ) -> async_graphql::Result<AttendanceRequestPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let project = parse_opt_id("projectId", input.project_id.as_ref())?;
        let id = service::ask_leave(
            ctx.state(),
            &actor,
            &retry,
            project,
            input.leave_type.into(),
            input.from,
            input.to,
            &input.reason,
        )
        .await?;
        Ok(AttendanceRequestPayload::new(input.client_mutation_id, id))
    }
}
