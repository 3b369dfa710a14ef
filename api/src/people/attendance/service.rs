//! 考勤 rules. Shifts, patterns and the rota are the project's (`attendance:write`); the
//! calendar's exceptions are the company's. A punch comes from a phone inside the project's
//! geofence or from a signed terminal, keeps the time it was taken (queued offline, sent
//! later), and applies once. Every change that moves a day — a punch, the rota, an approved
//! correction or leave — recomputes that day's result in the same transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use uuid::Uuid;

use super::compute::{self, Calendar, DayInput, Plan, PunchAt, Rota, Windows};
use super::model::{
    AttendanceDay, AttendanceRequest, CalendarDay, CalendarKind, Direction, LeaveType, MonthRow, Punch, PunchSource,
    RequestKind, RequestStatus, RotaDay, RotaKind, RotaPattern, Shift, Terminal, TerminalKind, local,
};
use super::repo::{self, PunchOrigin};
use crate::kit::approval::{self, Approval, ApprovalKind, NewApproval};
use crate::kit::audit;
use crate::kit::clock::business_date;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::notify::model::{Category, NewNotification, Priority};
use crate::rbac::model::{Actor, Perm, ProjectFilter};

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// An interval of time (approved leave).
type Span = (DateTime<Utc>, DateTime<Utc>);

/// Days back that a rota change or a calendar change recomputes.
const RECOMPUTE_DAYS: i64 = 62;

fn windows(state: &AppState) -> Windows {
    let c = &state.config.attendance;
    Windows { before: TimeDelta::minutes(c.window_before_minutes), after: TimeDelta::minutes(c.window_after_minutes) }
}

/// A project of the caller's company (another company's is NOT_FOUND, whatever the caller's scope).
async fn own_project(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Uuid> {
    Ok(crate::org::company::service::project_of_company(state, actor.company_id, id).await?.id)
}

/// A staff account of the caller's company.
async fn own_staff(state: &AppState, actor: &Actor, user: Uuid) -> AppResult<()> {
    if crate::people::staff::service::is_staff(state, actor.company_id, user).await? {
        Ok(())
    } else {
        Err(AppError::not_found("user"))
    }
}

/// The projects an employee works in (their grants); None: every project of the company.
async fn projects_of(state: &AppState, user: Uuid) -> AppResult<Option<Vec<Uuid>>> {
    crate::people::staff::service::projects_of(state, user).await
}

/// Nobody sets their own rota (a day off written over an absence is not a manager's to give
/// themself).
fn not_oneself(actor: &Actor, users: &[Uuid]) -> AppResult<()> {
    if users.contains(&actor.user_id) {
        return Err(AppError::Forbidden {
            reason: "CANNOT_MANAGE",
            msg: Msg::new("不能为自己排班", "Nobody sets their own rota"),
        });
    }
    Ok(())
}

/// A staff account of the caller's company whose grants reach `project`.
async fn works_in(state: &AppState, actor: &Actor, user: Uuid, project: Uuid) -> AppResult<()> {
    if !crate::people::staff::service::is_staff(state, actor.company_id, user).await? {
        return Err(AppError::not_found("user"));
    }
    match projects_of(state, user).await? {
        None => Ok(()),
        Some(p) if p.contains(&project) => Ok(()),
        Some(_) => Err(AppError::validation(
            "userIds",
            Msg::new("该员工不在此项目工作", "The employee does not work in this project"),
        )),
    }
}

// ---- shifts, patterns, rota, calendar -----------------------------------------------------

/// A shift as a manager writes it.
pub struct ShiftInput {
    pub id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub name: String,
    /// HH:MM
    pub starts_at: String,
    /// HH:MM
    pub ends_at: String,
    pub break_minutes: i32,
    pub late_grace_minutes: i32,
    pub early_grace_minutes: i32,
    pub absent_after_minutes: i32,
    pub overtime_after_minutes: i32,
}

fn in_range(field: &'static str, v: i32, lo: i32, hi: i32) -> AppResult<i32> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(AppError::validation(
            field,
            Msg::owned(format!("应在{lo}到{hi}分钟之间"), format!("Between {lo} and {hi} minutes")),
        ))
    }
}

/// 班次 (`attendance:write` over its project, or over the company for a company-wide one).
pub async fn save_shift(state: &AppState, actor: &Actor, retry: &Retry, i: ShiftInput) -> AppResult<Uuid> {
    // the ids first: another company's shift or project is not found, whatever else is wrong
    let project_id = match i.id {
        Some(id) => {
            let before = repo::shift(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("shift"))?;
            actor.require_over(Perm::AttendanceWrite, before.project_id)?;
            // a shift stays where it was made (the rota of that project refers to it)
            before.project_id
        }
        None => {
            if let Some(p) = i.project_id {
                own_project(state, actor, p).await?;
            }
            actor.require_over(Perm::AttendanceWrite, i.project_id)?;
            i.project_id
        }
    };
    let name = types::text("name", &i.name, 30)?;
    let now = state.clock.now();
    let s = Shift {
        id: i.id.unwrap_or_else(Uuid::now_v7),
        company_id: actor.company_id,
        project_id,
        name,
        starts_at: hhmm("startsAt", &i.starts_at)?,
        ends_at: hhmm("endsAt", &i.ends_at)?,
        break_minutes: in_range("breakMinutes", i.break_minutes, 0, 600)?,
        late_grace_minutes: in_range("lateGraceMinutes", i.late_grace_minutes, 0, 120)?,
        early_grace_minutes: in_range("earlyGraceMinutes", i.early_grace_minutes, 0, 120)?,
        absent_after_minutes: in_range("absentAfterMinutes", i.absent_after_minutes, 1, 1440)?,
        overtime_after_minutes: in_range("overtimeAfterMinutes", i.overtime_after_minutes, 0, 600)?,
        updated_at: now,
    };
    if TimeDelta::minutes(s.break_minutes as i64) >= s.length() {
        return Err(invalid("breakMinutes", "休息时间应短于班次时长", "The break is shorter than the shift"));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::upsert_shift(&mut *tx, &s).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "shift.save",
        "shift",
        Some(s.id),
        serde_json::json!({
            "name": s.name, "startsAt": s.starts_at, "endsAt": s.ends_at, "breakMinutes": s.break_minutes,
            "lateGraceMinutes": s.late_grace_minutes, "earlyGraceMinutes": s.early_grace_minutes,
        }),
    )
    .await?;
    if i.id.is_some() {
        // the results of the recent days on this shift follow the new times
        let today = business_date(now);
        let users =
            repo::rostered_in(&mut *tx, actor.company_id, s.project_id, today - TimeDelta::days(RECOMPUTE_DAYS), today)
                .await?;
        recompute(state, &mut tx, actor.company_id, &users, today - TimeDelta::days(RECOMPUTE_DAYS), today).await?;
    }
    tx.commit(&s.id).await?;
    Ok(s.id)
}

/// A wall-clock time written HH:MM.
fn hhmm(field: &'static str, v: &str) -> AppResult<NaiveTime> {
    NaiveTime::parse_from_str(v.trim(), "%H:%M")
        .map_err(|_| AppError::validation(field, Msg::new("时间格式应为HH:MM", "A time is HH:MM")))
}

/// A project's shifts and the company-wide ones (`attendance:read`/`write` or `self:attendance` there).
pub async fn shifts(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Vec<Shift>> {
    own_project(state, actor, project).await?;
    if !actor.reaches(&[Perm::AttendanceRead, Perm::AttendanceWrite, Perm::SelfAttendance], project) {
        return Err(AppError::forbidden());
    }
    Ok(repo::shifts(&state.db, actor.company_id, Some(project)).await?)
}

/// A shift of the caller's company (for a field of something already shown).
pub async fn shifts_by_id(state: &AppState, company: Uuid, ids: &[Uuid]) -> AppResult<Vec<Shift>> {
    let all = repo::shifts(&state.db, company, None).await?;
    Ok(all.into_iter().filter(|s| ids.contains(&s.id)).collect())
}

pub struct PatternInput {
    pub id: Option<Uuid>,
    pub project_id: Uuid,
    pub name: String,
    pub kind: RotaKind,
    pub slots: Vec<Option<Uuid>>,
    pub observe_holidays: bool,
}

/// 排班规则 (`attendance:write` over the project): a week of seven slots or a cycle of 1 to 31,
/// each a shift of the project (or company-wide) or a day off.
pub async fn save_pattern(state: &AppState, actor: &Actor, retry: &Retry, i: PatternInput) -> AppResult<Uuid> {
    let project = match i.id {
        Some(id) => {
            repo::pattern(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("pattern"))?.project_id
        }
        None => own_project(state, actor, i.project_id).await?,
    };
    actor.require_project(Perm::AttendanceWrite, project)?;
    let offered = repo::shifts(&state.db, actor.company_id, Some(project)).await?;
    if i.slots.iter().flatten().any(|s| !offered.iter().any(|o| o.id == *s)) {
        return Err(invalid("slots", "班次不存在或不属于该项目", "A shift is not one of the project's"));
    }
    let name = types::text("name", &i.name, 30)?;
    let ok = match i.kind {
        RotaKind::Week => i.slots.len() == 7,
        RotaKind::Cycle => (1..=31).contains(&i.slots.len()),
    };
    if !ok {
        return Err(invalid("slots", "按周排班需7天，循环排班需1到31天", "A week has 7 slots, a cycle 1 to 31"));
    }
    if i.slots.iter().all(Option::is_none) {
        return Err(invalid("slots", "至少需要一个工作日", "At least one working day"));
    }
    let now = state.clock.now();
    let p = RotaPattern {
        id: i.id.unwrap_or_else(Uuid::now_v7),
        company_id: actor.company_id,
        project_id: project,
        name,
        kind: i.kind,
        slots: i.slots,
        observe_holidays: i.observe_holidays,
        updated_at: now,
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::upsert_pattern(&mut *tx, &p).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "rota_pattern.save",
        "rota_pattern",
        Some(p.id),
        serde_json::json!({
            "name": p.name, "kind": p.kind, "slots": p.slots, "observeHolidays": p.observe_holidays,
        }),
    )
    .await?;
    if i.id.is_some() {
        let today = business_date(now);
        let from = today - TimeDelta::days(RECOMPUTE_DAYS);
        let users = repo::rostered_in(&mut *tx, actor.company_id, Some(project), from, today).await?;
        recompute(state, &mut tx, actor.company_id, &users, from, today).await?;
    }
    tx.commit(&p.id).await?;
    Ok(p.id)
}

pub async fn pattern(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<RotaPattern> {
    let p = repo::pattern(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("pattern"))?;
    if !actor.reaches(&[Perm::AttendanceRead, Perm::AttendanceWrite], p.project_id) {
        return Err(AppError::not_found("pattern"));
    }
    Ok(p)
}

pub async fn patterns(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Vec<RotaPattern>> {
    own_project(state, actor, project).await?;
    if !actor.reaches(&[Perm::AttendanceRead, Perm::AttendanceWrite], project) {
        return Err(AppError::forbidden());
    }
    Ok(repo::patterns(&state.db, actor.company_id, Some(project)).await?)
}

fn recompute_from(today: NaiveDate, from: NaiveDate) -> NaiveDate {
    from.max(today - TimeDelta::days(RECOMPUTE_DAYS))
}

/// 排班 (`attendance:write` over the project): employees follow a pattern from a day
/// (replacing what they followed from then on), until a day or for good.
#[allow(clippy::too_many_arguments)]
pub async fn assign_rota(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    pattern_id: Uuid,
    users: &[Uuid],
    from: NaiveDate,
    to: Option<NaiveDate>,
) -> AppResult<Uuid> {
    let p = repo::pattern(&state.db, actor.company_id, pattern_id).await?.ok_or(AppError::not_found("pattern"))?;
    actor.require_project(Perm::AttendanceWrite, p.project_id)?;
    if users.is_empty() || users.len() > 500 {
        return Err(invalid("userIds", "一次为1到500名员工排班", "1 to 500 employees at a time"));
    }
    for u in users {
        own_staff(state, actor, *u).await?;
    }
    not_oneself(actor, users)?;
    let today = business_date(state.clock.now());
    if from < today - TimeDelta::days(RECOMPUTE_DAYS) {
        return Err(invalid("from", "排班最早可追溯62天", "A rota goes back at most 62 days"));
    }
    if to.is_some_and(|t| t < from) {
        return Err(invalid("to", "结束日期应不早于开始日期", "The last day is not before the first"));
    }
    if let Some(t) = to {
        types::sane_date("to", t)?;
    }
    let mut users = users.to_vec();
    users.sort();
    users.dedup();
    for u in &users {
        works_in(state, actor, *u, p.project_id).await?;
    }
    let now = state.clock.now();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let elsewhere = repo::end_assignments(&mut tx, p.project_id, &users, from, to).await?;
    if !elsewhere.is_empty() {
        return Err(AppError::Conflict {
            field: "userIds".into(),
            msg: Msg::new("员工在该期间已按其他项目排班", "The employees follow another project's rota then"),
            details: Some(serde_json::json!({ "userIds": elsewhere })),
        });
    }
    repo::insert_assignments(&mut *tx, actor.company_id, p.project_id, p.id, &users, from, to, actor.user_id, now)
        .await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "rota.assign",
        "rota_pattern",
        Some(p.id),
        serde_json::json!({
            "users": users, "from": from, "to": to,
        }),
    )
    .await?;
    if from <= today {
        recompute(state, &mut tx, actor.company_id, &users, recompute_from(today, from), today).await?;
    }
    tx.commit(&p.id).await?;
    Ok(p.id)
}

/// 调班 (`attendance:write` over the project): days set by hand for employees — a shift,
/// a day off (`shift` None), or back to the pattern (`reset`).
#[allow(clippy::too_many_arguments)]
pub async fn set_rota_days(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project: Uuid,
    users: &[Uuid],
    days: &[NaiveDate],
    shift: Option<Uuid>,
    reset: bool,
) -> AppResult<Uuid> {
    own_project(state, actor, project).await?;
    actor.require_project(Perm::AttendanceWrite, project)?;
    if users.is_empty() || days.is_empty() || users.len() * days.len() > 1000 {
        return Err(invalid("days", "一次最多调整1000个人天", "Up to 1,000 employee-days at a time"));
    }
    for u in users {
        own_staff(state, actor, *u).await?;
    }
    not_oneself(actor, users)?;
    if let Some(s) = shift {
        let offered = repo::shifts(&state.db, actor.company_id, Some(project)).await?;
        if !offered.iter().any(|o| o.id == s) {
            return Err(invalid("shiftId", "班次不存在或不属于该项目", "The shift is not one of the project's"));
        }
    }
    if users.is_empty() || days.is_empty() || users.len() * days.len() > 1000 {
        return Err(invalid("days", "一次最多调整1000个人天", "Up to 1,000 employee-days at a time"));
    }
    let today = business_date(state.clock.now());
    if days.iter().any(|d| *d < today - TimeDelta::days(RECOMPUTE_DAYS) || *d > today + TimeDelta::days(366)) {
        return Err(invalid("days", "日期应在过去62天到未来一年之间", "Days from 62 days back to a year ahead"));
    }
    for u in users {
        works_in(state, actor, *u, project).await?;
    }
    let now = state.clock.now();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    for u in users {
        for d in days {
            if reset {
                repo::clear_rota_day(&mut *tx, project, *u, *d).await?;
            } else {
                let r = RotaDay { user_id: *u, day: *d, project_id: project, shift_id: shift };
                if !repo::set_rota_day(&mut *tx, actor.company_id, &r, actor.user_id, now).await? {
                    return Err(AppError::Conflict {
                        field: "days".into(),
                        msg: Msg::new("该日已由其他项目排班", "Another project set that day"),
                        details: Some(serde_json::json!({ "userId": u, "day": d })),
                    });
                }
            }
        }
    }
    audit::record(
        &mut tx,
        now,
        actor,
        "rota.days",
        "project",
        Some(project),
        serde_json::json!({
            "users": users, "days": days, "shiftId": shift, "reset": reset,
        }),
    )
    .await?;
    let (lo, hi) = (days.iter().min().copied(), days.iter().max().copied().map(|d| d.min(today)));
    if let (Some(lo), Some(hi)) = (lo, hi)
        && lo <= hi
    {
        recompute(state, &mut tx, actor.company_id, users, lo, hi).await?;
    }
    tx.commit(&project).await?;
    Ok(project)
}

/// One employee's day as the rota has it.
pub struct RotaEntry {
    pub user_id: Uuid,
    pub day: NaiveDate,
    pub plan: Plan,
    pub hand_set: bool,
}

/// 排班表 (`attendance:read`/`write` over the project): the employees on the project's rota
/// over up to 31 days.
pub async fn rota(
    state: &AppState,
    actor: &Actor,
    project: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<Vec<RotaEntry>> {
    own_project(state, actor, project).await?;
    if !actor.reaches(&[Perm::AttendanceRead, Perm::AttendanceWrite], project) {
        return Err(AppError::forbidden());
    }
    types::sane_date("from", from)?;
    types::sane_date("to", to)?;
    if to < from || (to - from).num_days() > 30 {
        return Err(invalid("to", "查询范围应在31天以内", "A range of up to 31 days"));
    }
    let mut conn = state.db.acquire().await?;
    let users = repo::rostered_in(&mut *conn, actor.company_id, Some(project), from, to).await?;
    let l = Loaded::load(&mut conn, actor.company_id, &users, from, to).await?;
    let mut out = Vec::new();
    for u in &users {
        let rota = l.rota(*u);
        let mut d = from;
        while d <= to {
            let plan = rota.plan(d);
            if plan.project_id == Some(project) {
                out.push(RotaEntry {
                    user_id: *u,
                    day: d,
                    hand_set: l.days.get(u).is_some_and(|m| m.contains_key(&d)),
                    plan,
                });
            }
            d += TimeDelta::days(1);
        }
    }
    Ok(out)
}

/// 节假日 in force for the caller's company in a year (any staff member).
pub async fn calendar(state: &AppState, actor: &Actor, year: i32) -> AppResult<Vec<CalendarDay>> {
    if !actor.is_staff() {
        return Err(AppError::forbidden());
    }
    let (Some(from), Some(to)) = (NaiveDate::from_ymd_opt(year, 1, 1), NaiveDate::from_ymd_opt(year, 12, 31)) else {
        return Err(invalid("year", "年份无效", "Invalid year"));
    };
    types::sane_date("year", from)?;
    Ok(repo::calendar(&state.db, actor.company_id, from, to).await?)
}

/// 节假日设置 (`attendance:write` over the company): the company's own entry for a day
/// (None: back to the national calendar).
pub async fn set_calendar_day(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    day: NaiveDate,
    entry: Option<(CalendarKind, String)>,
) -> AppResult<NaiveDate> {
    actor.require_over(Perm::AttendanceWrite, None)?;
    types::sane_date("day", day)?;
    let entry = match entry {
        Some((k, n)) => Some((k, types::text("name", &n, 20)?)),
        None => None,
    };
    let now = state.clock.now();
    let today = business_date(now);
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    match &entry {
        Some((kind, name)) => {
            let c = CalendarDay {
                company_id: Some(actor.company_id),
                day,
                kind: *kind,
                name: name.clone(),
                provisional: false,
            };
            repo::set_calendar_day(&mut *tx, actor.company_id, &c).await?;
        }
        None => {
            repo::clear_calendar_day(&mut *tx, actor.company_id, day).await?;
        }
    }
    audit::record(
        &mut tx,
        now,
        actor,
        "calendar.set",
        "company",
        Some(actor.company_id),
        serde_json::json!({
            "day": day, "kind": entry.as_ref().map(|e| e.0), "name": entry.as_ref().map(|e| &e.1),
        }),
    )
    .await?;
    if day <= today && day >= today - TimeDelta::days(RECOMPUTE_DAYS) {
        let users = repo::rostered_in(&mut *tx, actor.company_id, None, day, day).await?;
        recompute(state, &mut tx, actor.company_id, &users, day, day).await?;
    }
    tx.commit(&day).await?;
    Ok(day)
}

// ---- computing results ---------------------------------------------------------------------

/// What the arithmetic needs for some employees over some days, loaded in a few queries.
struct Loaded {
    shifts: HashMap<Uuid, Shift>,
    patterns: HashMap<Uuid, RotaPattern>,
    calendar: Calendar,
    assignments: HashMap<Uuid, Vec<super::model::RotaAssignment>>,
    days: HashMap<Uuid, HashMap<NaiveDate, RotaDay>>,
}

impl Loaded {
    /// Covers `from - 1 ..= to + 1` (a day's window depends on its neighbours).
    async fn load(
        db: &mut sqlx::PgConnection,
        company: Uuid,
        users: &[Uuid],
        from: NaiveDate,
        to: NaiveDate,
    ) -> AppResult<Loaded> {
        let (lo, hi) = (from - TimeDelta::days(1), to + TimeDelta::days(1));
        let shifts = repo::shifts(&mut *db, company, None).await?.into_iter().map(|s| (s.id, s)).collect();
        let patterns = repo::patterns(&mut *db, company, None).await?.into_iter().map(|p| (p.id, p)).collect();
        let calendar =
            Calendar(repo::calendar(&mut *db, company, lo, hi).await?.into_iter().map(|c| (c.day, c.kind)).collect());
        let mut assignments: HashMap<Uuid, Vec<_>> = HashMap::new();
        for a in repo::assignments(&mut *db, users, lo, hi).await? {
            assignments.entry(a.user_id).or_default().push(a);
        }
        let mut days: HashMap<Uuid, HashMap<NaiveDate, RotaDay>> = HashMap::new();
        for d in repo::rota_days(&mut *db, users, lo, hi).await? {
            days.entry(d.user_id).or_default().insert(d.day, d);
        }
        Ok(Loaded { shifts, patterns, calendar, assignments, days })
    }

    fn rota(&self, user: Uuid) -> Rota<'_> {
        static NO_DAYS: std::sync::LazyLock<HashMap<NaiveDate, RotaDay>> = std::sync::LazyLock::new(HashMap::new);
        Rota {
            shifts: &self.shifts,
            patterns: &self.patterns,
            calendar: &self.calendar,
            assignments: self.assignments.get(&user).map(Vec::as_slice).unwrap_or(&[]),
            days: self.days.get(&user).unwrap_or(&NO_DAYS),
        }
    }
}

/// Instants around `from..=to` wide enough for every window of those days.
fn span(from: NaiveDate, to: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    (local(from - TimeDelta::days(1), NaiveTime::MIN), local(to + TimeDelta::days(3), NaiveTime::MIN))
}

/// A punch as the arithmetic sees it: where it was taken, and whether it was sent well after
/// (queued offline; an approved correction is not).
fn punch_at(state: &AppState, p: &Punch) -> PunchAt {
    let late = p.received_at - p.at > TimeDelta::seconds(state.config.attendance.clock_skew_secs.max(60));
    PunchAt {
        at: p.at,
        direction: p.direction,
        project_id: Some(p.project_id),
        offline: late && p.source != PunchSource::Correction,
    }
}

/// Computes and stores the results of some employees over `from..=to` in the caller's
/// transaction, one transaction at a time per employee (an advisory lock); `skip` leaves
/// those days alone, `only_settled` writes only days whose window has closed.
#[allow(clippy::too_many_arguments)]
async fn recompute_skipping(
    state: &AppState,
    db: &mut sqlx::PgConnection,
    company: Uuid,
    users: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
    skip: &HashSet<(Uuid, NaiveDate)>,
    only_settled: bool,
) -> AppResult<usize> {
    if users.is_empty() || to < from {
        return Ok(0);
    }
    let mut sorted = users.to_vec();
    sorted.sort();
    sorted.dedup();
    repo::lock_users(&mut *db, &sorted).await?;
    let now = state.clock.now();
    let l = Loaded::load(db, company, users, from, to).await?;
    let (lo, hi) = span(from, to);
    let mut punches: HashMap<Uuid, Vec<PunchAt>> = HashMap::new();
    for p in repo::punches(&mut *db, users, lo, hi).await? {
        punches.entry(p.user_id).or_default().push(punch_at(state, &p));
    }
    let mut leave: HashMap<Uuid, Vec<Span>> = HashMap::new();
    for (u, a, b) in repo::approved_leave(&mut *db, users, lo, hi).await? {
        leave.entry(u).or_default().push((a, b));
    }
    let w = windows(state);
    let mut out = Vec::new();
    let mut cleared = Vec::new();
    for u in users {
        let rota = l.rota(*u);
        let mut prev = rota.plan(from - TimeDelta::days(1));
        let mut cur = rota.plan(from);
        let mut d = from;
        while d <= to {
            let next = rota.plan(d + TimeDelta::days(1));
            if !skip.contains(&(*u, d)) {
                let input = DayInput {
                    user_id: *u,
                    company_id: company,
                    day: d,
                    plan: &cur,
                    window: w.of(d, &prev, &cur, &next),
                    punches: punches.get(u).map(Vec::as_slice).unwrap_or(&[]),
                    leave: leave.get(u).map(Vec::as_slice).unwrap_or(&[]),
                    now,
                };
                match compute::evaluate(&input) {
                    Some(day) if only_settled && !day.settled => {}
                    Some(day) => out.push(day),
                    None if only_settled => {}
                    None => cleared.push((*u, d)),
                }
            }
            prev = std::mem::replace(&mut cur, next);
            d += TimeDelta::days(1);
        }
    }
    let n = out.len();
    repo::save_days(db, &out, &cleared).await?;
    Ok(n)
}

async fn recompute(
    state: &AppState,
    db: &mut sqlx::PgConnection,
    company: Uuid,
    users: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<usize> {
    recompute_skipping(state, db, company, users, from, to, &HashSet::new(), false).await
}

/// The scheduler's job: the days of the last three whose punching window has closed, for
/// everyone on a rota, so a day nobody punched settles as absent (a 24-hour shift's window
/// ends two days after it starts). Settled days are left alone (whatever moves one
/// recomputes it); days still open are written by the punches. In batches of 500
/// employees, a transaction each. Returns the days written.
pub async fn settle(state: &AppState) -> AppResult<usize> {
    let today = business_date(state.clock.now());
    let from = today - TimeDelta::days(2);
    let mut n = 0;
    for company in repo::rostered_companies(&state.db, from, today).await? {
        let users = repo::rostered_in(&state.db, company, None, from, today).await?;
        for batch in users.chunks(500) {
            let mut tx = state.db.begin().await?;
            let skip: HashSet<(Uuid, NaiveDate)> =
                repo::settled_days(&mut *tx, batch, from, today).await?.into_iter().collect();
            if skip.len() < batch.len() * 3 {
                n += recompute_skipping(state, &mut tx, company, batch, from, today, &skip, true).await?;
            }
            tx.commit().await?;
        }
    }
    Ok(n)
}

// ---- punches -------------------------------------------------------------------------------

/// Where the phone says it is.
pub struct Fix {
    pub lat: f64,
    pub lng: f64,
    pub accuracy_m: f64,
}

/// What the phone sends.
pub struct PhonePunch {
    pub project_id: Option<Uuid>,
    pub fix: Fix,
    /// when the phone took it (queued offline); None: now
    pub at: Option<DateTime<Utc>>,
    pub direction: Option<Direction>,
}

fn check_time(state: &AppState, at: DateTime<Utc>, max_hours: i64) -> AppResult<()> {
    let now = state.clock.now();
    let c = &state.config.attendance;
    if at > now + TimeDelta::seconds(c.clock_skew_secs) {
        return Err(invalid(
            "at",
            "打卡时间晚于当前时间，请校准手机时间",
            "The punch is in the future: check the phone's clock",
        ));
    }
    if at < now - TimeDelta::hours(max_hours) {
        return Err(AppError::validation(
            "at",
            Msg::owned(
                format!("离线打卡超过{max_hours}小时，请提交补签申请"),
                format!("Taken more than {max_hours} hours ago: ask for a correction instead"),
            ),
        ));
    }
    Ok(())
}

/// The project a punch is for: the one asked for, else the one the rota has the employee
/// in around that time, else the nearest of theirs with a geofence. With its distance.
async fn punch_project(
    state: &AppState,
    actor: &Actor,
    wanted: Option<Uuid>,
    at: DateTime<Utc>,
    fix: &Fix,
) -> AppResult<(Uuid, f64)> {
    let mine = projects_of(state, actor.user_id).await?;
    if let Some(p) = wanted
        && mine.as_ref().is_some_and(|m| !m.contains(&p))
    {
        return Err(AppError::not_found("project"));
    }
    let day = business_date(at);
    let on_rota = {
        let mut conn = state.db.acquire().await?;
        let l = Loaded::load(&mut conn, actor.company_id, &[actor.user_id], day - TimeDelta::days(1), day).await?;
        let rota = l.rota(actor.user_id);
        let (y, t) = (rota.plan(day - TimeDelta::days(1)), rota.plan(day));
        let night = y.shift.as_ref().is_some_and(|s| s.bounds(day - TimeDelta::days(1)).1 + TimeDelta::hours(2) > at);
        if night { y.project_id } else { t.project_id.or(y.project_id) }
    };
    // the rota says where one works: a punch elsewhere would not count for the shift
    let rostered = match (wanted, on_rota) {
        (Some(w), Some(r)) if w != r => {
            return Err(AppError::Validation {
                field: "projectId".into(),
                msg: Msg::new("今天的排班在其他项目", "Today's rota has you at another project"),
                details: Some(serde_json::json!({ "rosteredProjectId": r })),
            });
        }
        (Some(w), _) => Some(w),
        (None, r) => r,
    };
    let candidates = match rostered {
        Some(p) => vec![crate::org::company::service::project_of_company(state, actor.company_id, p).await?],
        None => crate::org::company::service::projects_of_company(state, actor.company_id, mine.as_deref()).await?,
    };
    let mut nearest: Option<(Uuid, f64, i32)> = None;
    for p in &candidates {
        let (Some(lat), Some(lng), Some(r)) = (p.geofence_lat, p.geofence_lng, p.geofence_radius_m) else { continue };
        let d = types::distance_m(lat, lng, fix.lat, fix.lng);
        if nearest.is_none_or(|(_, best, _)| d < best) {
            nearest = Some((p.id, d, r));
        }
    }
    let Some((project, distance, radius)) = nearest else {
        return Err(invalid(
            "projectId",
            "项目未设置考勤范围，请联系管理员",
            "The project has no attendance geofence: ask an administrator",
        ));
    };
    if distance > radius as f64 {
        return Err(AppError::Validation {
            field: "lat".into(),
            msg: Msg::owned(
                format!("不在考勤范围内：距项目约{}米，范围{}米", distance.round() as i64, radius),
                format!(
                    "Outside the attendance area: about {} m from the project, {} m allowed",
                    distance.round() as i64,
                    radius
                ),
            ),
            details: Some(
                serde_json::json!({ "projectId": project, "distanceM": distance.round(), "radiusM": radius }),
            ),
        });
    }
    Ok((project, distance))
}

/// 手机打卡 (`self:attendance`): inside the project's geofence with a precise enough fix,
/// at the time the phone took it (up to `offline_max_hours` back). A retry with the same
/// `clientMutationId`, or a second tap within `double_tap_secs`, is the same punch.
pub async fn punch(state: &AppState, actor: &Actor, retry: &Retry, p: PhonePunch) -> AppResult<Uuid> {
    actor.require(Perm::SelfAttendance)?;
    // a retry answers as the first send did, however long the phone held it
    if let Some(done) = retry.applied::<Uuid>(state).await? {
        return Ok(done);
    }
    let Fix { lat, lng, accuracy_m } = p.fix;
    if !(lat.is_finite() && lng.is_finite() && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng)) {
        return Err(invalid("lat", "坐标无效", "Invalid coordinates"));
    }
    let max = state.config.attendance.max_accuracy_m;
    if !(accuracy_m.is_finite() && accuracy_m > 0.0 && accuracy_m <= max) {
        return Err(AppError::validation(
            "accuracyM",
            Msg::owned(
                format!("定位精度不足（需在{max}米以内），请到开阔处重新定位"),
                format!("The position is not precise enough (within {max} m needed); try again in the open"),
            ),
        ));
    }
    let now = state.clock.now();
    // a punch sent as it is taken counts at the server's time; only one queued offline
    // keeps the phone's (and shows as offline to managers)
    let skew = TimeDelta::seconds(state.config.attendance.clock_skew_secs);
    let at = match p.at {
        Some(t) if (now - t).abs() > skew => t,
        _ => now,
    };
    check_time(state, at, state.config.attendance.offline_max_hours)?;
    let (project, distance) = punch_project(state, actor, p.project_id, at, &p.fix).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::lock_users(&mut *tx, &[actor.user_id]).await?;
    let tap = TimeDelta::seconds(state.config.attendance.double_tap_secs);
    if let Some(same) = repo::punch_near(&mut *tx, actor.user_id, at - tap, at + tap).await? {
        tx.commit(&same).await?;
        return Ok(same);
    }
    let punch = Punch {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: project,
        user_id: actor.user_id,
        at,
        received_at: now,
        source: PunchSource::Phone,
        direction: p.direction,
        lat: Some(lat),
        lng: Some(lng),
        accuracy_m: Some(accuracy_m),
        distance_m: Some(distance),
        terminal_id: None,
    };
    repo::insert_punch(&mut *tx, &punch, PunchOrigin { terminal_record: None, request_id: None }).await?;
    let (lo, hi) = punch_days(at, now);
    recompute(state, &mut tx, actor.company_id, &[actor.user_id], lo, hi).await?;
    tx.commit(&punch.id).await?;
    Ok(punch.id)
}

/// The days a punch at `at` may belong to: the day before (a night shift), its own, and the
/// next (a shift starting early that morning), not past today.
fn punch_days(at: DateTime<Utc>, now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let day = business_date(at);
    (day - TimeDelta::days(1), (day + TimeDelta::days(1)).min(business_date(now)))
}

/// One punch: one's own (`self:attendance`), or within `attendance:read` of its project.
pub async fn get_punch(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Punch> {
    let p = repo::punch(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("punch"))?;
    if p.user_id != actor.user_id && !actor.reaches(&[Perm::AttendanceRead], p.project_id) {
        return Err(AppError::not_found("punch"));
    }
    Ok(p)
}

/// Punches of one employee over a day range (their own, or `attendance:read` reaching them).
pub async fn punches_of(
    state: &AppState,
    actor: &Actor,
    user: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<Vec<Punch>> {
    own_staff(state, actor, user).await?;
    types::sane_date("from", from)?;
    types::sane_date("to", to)?;
    if to < from || (to - from).num_days() > 30 {
        return Err(invalid("to", "查询范围应在31天以内", "A range of up to 31 days"));
    }
    let (lo, hi) = (local(from, NaiveTime::MIN), local(to + TimeDelta::days(1), NaiveTime::MIN));
    let all = repo::punches(&state.db, &[user], lo, hi).await?;
    Ok(all
        .into_iter()
        .filter(|p| p.company_id == actor.company_id)
        .filter(|p| {
            (p.user_id == actor.user_id && actor.has(Perm::SelfAttendance))
                || actor.reaches(&[Perm::AttendanceRead], p.project_id)
        })
        .collect())
}

// ---- terminals -----------------------------------------------------------------------------

fn new_key() -> String {
    crate::kit::crypto::random_token()
}

/// 添加考勤机 (`attendance:write` over the project). Returns its id and key: the key is shown
/// this once (a retry answers without it; rotate to get a new one).
pub async fn add_terminal(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project: Uuid,
    name: &str,
    kind: TerminalKind,
) -> AppResult<(Uuid, Option<String>)> {
    actor.require_project(Perm::AttendanceWrite, project)?;
    crate::org::company::service::project(state, actor, Perm::AttendanceWrite, project).await?;
    let name = types::text("name", name, 30)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok((done, None)),
    };
    let now = state.clock.now();
    let key = new_key();
    let t = Terminal {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: project,
        name,
        kind,
        enabled: true,
        last_seen_at: None,
        created_at: now,
    };
    repo::insert_terminal(&mut *tx, &t, &state.keys.encrypt_pii(&key)).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "terminal.add",
        "terminal",
        Some(t.id),
        serde_json::json!({ "name": t.name, "kind": t.kind }),
    )
    .await?;
    tx.commit(&t.id).await?;
    Ok((t.id, Some(key)))
}

/// A terminal of the caller's `attendance:write` projects.
async fn writable_terminal(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Terminal> {
    let (t, _) = repo::terminal(&state.db, id).await?.ok_or(AppError::not_found("terminal"))?;
    if t.company_id != actor.company_id || !actor.reaches(&[Perm::AttendanceWrite], t.project_id) {
        return Err(AppError::not_found("terminal"));
    }
    Ok(t)
}

/// 启用/停用 and 更换密钥 (`attendance:write`): a new key (returned once) ends the old one.
pub async fn update_terminal(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    enabled: bool,
    rotate: bool,
) -> AppResult<(Uuid, Option<String>)> {
    writable_terminal(state, actor, id).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok((done, None)),
    };
    let key = rotate.then(new_key);
    let enc = key.as_deref().map(|k| state.keys.encrypt_pii(k));
    repo::update_terminal(&mut *tx, id, enabled, enc.as_deref()).await?;
    let now = state.clock.now();
    audit::record(
        &mut tx,
        now,
        actor,
        "terminal.update",
        "terminal",
        Some(id),
        serde_json::json!({ "enabled": enabled, "keyRotated": rotate }),
    )
    .await?;
    tx.commit(&id).await?;
    Ok((id, key))
}

pub async fn terminals(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Vec<Terminal>> {
    own_project(state, actor, project).await?;
    if !actor.reaches(&[Perm::AttendanceRead, Perm::AttendanceWrite], project) {
        return Err(AppError::forbidden());
    }
    Ok(repo::terminals(&state.db, actor.company_id, project).await?)
}

pub async fn terminal(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Terminal> {
    let (t, _) = repo::terminal(&state.db, id).await?.ok_or(AppError::not_found("terminal"))?;
    if t.company_id != actor.company_id || !actor.reaches(&[Perm::AttendanceRead, Perm::AttendanceWrite], t.project_id)
    {
        return Err(AppError::not_found("terminal"));
    }
    Ok(t)
}

/// Why a terminal's request was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("unknown or disabled terminal")]
    Unknown,
    #[error("bad signature")]
    BadSignature,
    #[error("timestamp outside the allowed skew")]
    Stale,
    #[error("replayed nonce")]
    Replayed,
    #[error("invalid body: {0}")]
    Invalid(String),
    #[error(transparent)]
    App(#[from] AppError),
}

/// The signed headers of a terminal's request.
pub struct Signed<'a> {
    pub timestamp: &'a str,
    pub nonce: &'a str,
    /// lowercase hex HMAC-SHA256 of `{terminalId}\n{timestamp}\n{nonce}\n{body}`
    pub signature: &'a str,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TerminalBody {
    punches: Vec<TerminalPunch>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TerminalPunch {
    /// the terminal's own id of the record (what makes a resend apply once)
    record_id: String,
    employee_no: String,
    at: DateTime<Utc>,
    #[serde(default)]
    direction: Option<Direction>,
}

/// What became of a terminal's punches.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TerminalReceipt {
    pub accepted: usize,
    /// sent before (the same record id): applied once
    pub duplicates: usize,
    pub rejected: Vec<RejectedPunch>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedPunch {
    pub record_id: String,
    /// UNKNOWN_EMPLOYEE, NOT_OF_PROJECT, TOO_OLD, IN_FUTURE, INVALID
    pub code: &'static str,
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// 考勤机上传: verified (the terminal's key over its id, the timestamp, a nonce never seen
/// before on any replica, and the body), then each punch applied once by its record id.
pub async fn terminal_punches(
    state: &AppState,
    terminal_id: Uuid,
    signed: Signed<'_>,
    body: &[u8],
) -> Result<TerminalReceipt, TerminalError> {
    let c = &state.config.attendance;
    let (t, key_enc) =
        repo::terminal(&state.db, terminal_id).await.map_err(AppError::from)?.ok_or(TerminalError::Unknown)?;
    if !t.enabled {
        return Err(TerminalError::Unknown);
    }
    let now = state.clock.now();
    let ts: i64 = signed.timestamp.parse().map_err(|_| TerminalError::Stale)?;
    if now.timestamp().abs_diff(ts) > c.terminal_max_skew_secs.unsigned_abs() {
        return Err(TerminalError::Stale);
    }
    let nonce_ok = (8..=64).contains(&signed.nonce.len())
        && signed.nonce.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if !nonce_ok {
        return Err(TerminalError::BadSignature);
    }
    let key = state.keys.decrypt_pii(&key_enc).map_err(AppError::internal)?;
    let mut signed_data = format!("{terminal_id}\n{}\n{}\n", signed.timestamp, signed.nonce).into_bytes();
    signed_data.extend_from_slice(body);
    let sig = hex_decode(signed.signature).ok_or(TerminalError::BadSignature)?;
    if !crate::kit::crypto::verify_hmac_sha256(key.as_bytes(), &signed_data, &sig) {
        return Err(TerminalError::BadSignature);
    }
    // a nonce is good once, on every replica and after a restart, for as long as its
    // timestamp is: past that the timestamp check refuses it
    let seen = state.redis_key(&["terminal", "nonce", &terminal_id.to_string(), signed.nonce]);
    let mut r = state.redis.clone();
    let fresh: Option<String> = redis::cmd("SET")
        .arg(&seen)
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg((c.terminal_max_skew_secs * 2 + 60) as u64)
        .query_async(&mut r)
        .await
        .map_err(AppError::from)?;
    if fresh.is_none() {
        return Err(TerminalError::Replayed);
    }
    let outcome = apply_terminal_batch(state, &t, body, now).await;
    if let Err(TerminalError::App(_)) = &outcome {
        // our failure, not the terminal's: the same signed request may be sent again
        let _: Result<(), _> = redis::cmd("DEL").arg(&seen).query_async(&mut r).await;
    }
    outcome
}

/// A verified terminal request's punches, each applied once (by its record id, and a second
/// press within `double_tap_secs` is the same punch).
async fn apply_terminal_batch(
    state: &AppState,
    t: &Terminal,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<TerminalReceipt, TerminalError> {
    let c = &state.config.attendance;
    let body: TerminalBody = serde_json::from_slice(body).map_err(|e| TerminalError::Invalid(e.to_string()))?;
    if body.punches.is_empty() || body.punches.len() > c.terminal_batch_max {
        return Err(TerminalError::Invalid(format!("1 to {} punches", c.terminal_batch_max)));
    }
    let mut receipt = TerminalReceipt::default();
    let mut tx = state.db.begin().await.map_err(AppError::from)?;
    let nos: Vec<String> = body.punches.iter().map(|p| p.employee_no.trim().to_owned()).collect();
    let by_no: HashMap<String, Uuid> =
        crate::people::staff::service::by_employee_no(&mut tx, t.company_id, &nos).await?.into_iter().collect();
    let mut users: Vec<Uuid> = by_no.values().copied().collect();
    users.sort();
    users.dedup();
    repo::lock_users(&mut *tx, &users).await.map_err(AppError::from)?;
    let tap = TimeDelta::seconds(c.double_tap_secs);
    let mut reach: HashMap<Uuid, bool> = HashMap::new();
    let mut touched: Vec<Uuid> = Vec::new();
    let mut span_days: Option<(NaiveDate, NaiveDate)> = None;
    for p in body.punches {
        let reject = |code| RejectedPunch { record_id: p.record_id.chars().take(64).collect(), code };
        if p.record_id.is_empty() || p.record_id.len() > 64 {
            receipt.rejected.push(reject("INVALID"));
            continue;
        }
        let Some(user) = by_no.get(p.employee_no.trim()).copied() else {
            receipt.rejected.push(reject("UNKNOWN_EMPLOYEE"));
            continue;
        };
        let ok = match reach.get(&user) {
            Some(ok) => *ok,
            None => {
                let ok = projects_of(state, user).await?.is_none_or(|ps| ps.contains(&t.project_id));
                reach.insert(user, ok);
                ok
            }
        };
        if !ok {
            receipt.rejected.push(reject("NOT_OF_PROJECT"));
            continue;
        }
        if p.at > now + TimeDelta::seconds(c.clock_skew_secs) {
            receipt.rejected.push(reject("IN_FUTURE"));
            continue;
        }
        if p.at < now - TimeDelta::hours(c.terminal_offline_max_hours) {
            receipt.rejected.push(reject("TOO_OLD"));
            continue;
        }
        if repo::punch_near(&mut *tx, user, p.at - tap, p.at + tap).await.map_err(AppError::from)?.is_some() {
            receipt.duplicates += 1;
            continue;
        }
        let punch = Punch {
            id: Uuid::now_v7(),
            company_id: t.company_id,
            project_id: t.project_id,
            user_id: user,
            at: p.at,
            received_at: now,
            source: PunchSource::Terminal,
            direction: p.direction,
            lat: None,
            lng: None,
            accuracy_m: None,
            distance_m: None,
            terminal_id: Some(t.id),
        };
        if repo::insert_punch(&mut *tx, &punch, PunchOrigin { terminal_record: Some(&p.record_id), request_id: None })
            .await
            .map_err(AppError::from)?
        {
            receipt.accepted += 1;
            touched.push(user);
            let (lo, hi) = punch_days(p.at, now);
            span_days = Some(match span_days {
                Some((a, b)) => (a.min(lo), b.max(hi)),
                None => (lo, hi),
            });
        } else {
            receipt.duplicates += 1;
        }
    }
    if let Some((lo, hi)) = span_days {
        touched.sort();
        touched.dedup();
        recompute(state, &mut tx, t.company_id, &touched, lo, hi).await?;
    }
    repo::terminal_seen(&mut *tx, t.id, now).await.map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::from)?;
    Ok(receipt)
}

// ---- on duty -------------------------------------------------------------------------------

/// 在岗人员: staff of a project on shift and clocked in at `now`, with the shift they are on
/// and when they arrived.
pub async fn on_duty_in(
    state: &AppState,
    db: &mut sqlx::PgConnection,
    company: Uuid,
    project: Uuid,
) -> AppResult<Vec<(Uuid, Shift, DateTime<Utc>)>> {
    let now = state.clock.now();
    let today = business_date(now);
    let yesterday = today - TimeDelta::days(1);
    let users = repo::rostered_in(&mut *db, company, Some(project), yesterday, today).await?;
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let l = Loaded::load(db, company, &users, yesterday, today).await?;
    let (lo, _) = span(yesterday, today);
    let mut punches: HashMap<Uuid, Vec<PunchAt>> = HashMap::new();
    for p in repo::punches(&mut *db, &users, lo, now + TimeDelta::seconds(1)).await? {
        punches.entry(p.user_id).or_default().push(punch_at(state, &p));
    }
    let w = windows(state);
    let mut out = Vec::new();
    for u in &users {
        let rota = l.rota(*u);
        let mine = punches.get(u).map(Vec::as_slice).unwrap_or(&[]);
        for d in [yesterday, today] {
            let (prev, cur, next) =
                (rota.plan(d - TimeDelta::days(1)), rota.plan(d), rota.plan(d + TimeDelta::days(1)));
            if cur.project_id != Some(project) {
                continue;
            }
            let window = w.of(d, &prev, &cur, &next);
            if compute::on_duty(&cur, d, window, mine, now)
                && let Some(s) = cur.shift.clone()
            {
                let since = mine.iter().find(|p| p.at >= window.0).map(|p| p.at).unwrap_or(now);
                out.push((*u, s, since));
                break;
            }
        }
    }
    Ok(out)
}

/// 在岗人员 (`attendance:read` or `alarm:read` over the project).
pub async fn on_duty(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Vec<(Uuid, Shift, DateTime<Utc>)>> {
    own_project(state, actor, project).await?;
    if !actor.reaches(&[Perm::AttendanceRead, Perm::AlarmRead, Perm::WorkorderDispatch], project) {
        return Err(AppError::forbidden());
    }
    let mut conn = state.db.acquire().await?;
    on_duty_in(state, &mut conn, actor.company_id, project).await
}

/// The roster alarms and dispatch ask (registered as `Arc<dyn DutyRoster>`).
pub struct Roster;

#[async_trait::async_trait]
impl crate::rbac::service::DutyRoster for Roster {
    async fn on_duty(
        &self,
        state: &AppState,
        db: &mut sqlx::PgConnection,
        company_id: Uuid,
        project_id: Uuid,
    ) -> AppResult<Vec<Uuid>> {
        Ok(on_duty_in(state, db, company_id, project_id).await?.into_iter().map(|(u, _, _)| u).collect())
    }
}

// ---- results and reports -------------------------------------------------------------------

/// Results over up to 31 days: one employee's (their own, or `attendance:read` reaching
/// them) or a project's (`attendance:read` over it), by day then employee.
#[allow(clippy::too_many_arguments)]
pub async fn days(
    state: &AppState,
    actor: &Actor,
    project: Option<Uuid>,
    user: Option<Uuid>,
    from: NaiveDate,
    to: NaiveDate,
    after: Option<(NaiveDate, Uuid)>,
    limit: usize,
) -> AppResult<Vec<AttendanceDay>> {
    if let Some(p) = project {
        own_project(state, actor, p).await?;
    }
    if let Some(u) = user {
        own_staff(state, actor, u).await?;
    }
    types::sane_date("from", from)?;
    types::sane_date("to", to)?;
    if to < from || (to - from).num_days() > 30 {
        return Err(invalid("to", "查询范围应在31天以内", "A range of up to 31 days"));
    }
    let own = user == Some(actor.user_id) && project.is_none() && actor.has(Perm::SelfAttendance);
    let projects: Option<Vec<Uuid>> = if own {
        None
    } else {
        match (project, actor.projects(Perm::AttendanceRead)?) {
            (Some(p), f) if f.allows(p) => Some(vec![p]),
            (Some(_), _) => return Err(AppError::forbidden()),
            (None, ProjectFilter::All) => None,
            (None, ProjectFilter::Only(ids)) => Some(ids),
        }
    };
    let users = user.map(|u| vec![u]);
    Ok(repo::days(&state.db, actor.company_id, users.as_deref(), projects.as_deref(), from, to, after, limit as i64)
        .await?)
}

/// A month `YYYY-MM` as its first and last day.
pub fn month_bounds(month: &str) -> AppResult<(NaiveDate, NaiveDate)> {
    let bad = || invalid("month", "月份格式应为YYYY-MM", "A month is YYYY-MM");
    let first = NaiveDate::parse_from_str(&format!("{}-01", month.trim()), "%Y-%m-%d").map_err(|_| bad())?;
    types::sane_date("month", first)?;
    let next = first.checked_add_months(chrono::Months::new(1)).ok_or_else(bad)?;
    Ok((first, next - TimeDelta::days(1)))
}

/// 考勤月报 (`attendance:read`): per employee of the caller's projects (or one project).
pub async fn month_report(
    state: &AppState,
    actor: &Actor,
    month: &str,
    project: Option<Uuid>,
) -> AppResult<Vec<MonthRow>> {
    if let Some(p) = project {
        own_project(state, actor, p).await?;
    }
    let (from, to) = month_bounds(month)?;
    let projects: Option<Vec<Uuid>> = match (project, actor.projects(Perm::AttendanceRead)?) {
        (Some(p), f) if f.allows(p) => Some(vec![p]),
        (Some(_), _) => return Err(AppError::forbidden()),
        (None, ProjectFilter::All) => None,
        (None, ProjectFilter::Only(ids)) => Some(ids),
    };
    Ok(repo::month(state.reads(), actor.company_id, projects.as_deref(), from, to).await?)
}

fn hours(minutes: i64) -> String {
    format!("{:.1}", minutes as f64 / 60.0)
}

/// The report as CSV (UTF-8 with a BOM for spreadsheet programs; formula-like cells neutralised).
pub fn report_csv(rows: &[MonthRow], project_names: &HashMap<Uuid, String>) -> String {
    let cell = |s: &str| {
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
        if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
    };
    let mut out = String::from(
        "\u{feff}工号,姓名,项目,应出勤天数,实出勤天数,迟到次数,迟到分钟,早退次数,早退分钟,旷工天数,缺卡次数,离线补传打卡,请假小时,工作小时,加班小时(工作日),加班小时(休息日),加班小时(节假日)\n",
    );
    for r in rows {
        let project = r.project_id.and_then(|p| project_names.get(&p)).map(String::as_str).unwrap_or("");
        let line = [
            cell(r.employee_no.as_deref().unwrap_or("")),
            cell(&r.name),
            cell(project),
            r.scheduled_days.to_string(),
            r.attended_days.to_string(),
            r.late_days.to_string(),
            r.late_minutes.to_string(),
            r.early_days.to_string(),
            r.early_minutes.to_string(),
            r.absent_days.to_string(),
            r.missing_punches.to_string(),
            r.offline_punches.to_string(),
            hours(r.leave_minutes),
            hours(r.worked_minutes),
            hours(r.overtime_minutes),
            hours(r.rest_day_minutes),
            hours(r.holiday_minutes),
        ];
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// Names of projects for the report (the caller saw the rows).
pub async fn project_names(state: &AppState, company: Uuid, ids: &[Uuid]) -> AppResult<HashMap<Uuid, String>> {
    Ok(crate::org::company::service::projects_of_company(state, company, Some(ids))
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect())
}

// ---- corrections and leave -----------------------------------------------------------------

const APPROVER: &str = "attendance:approve";

/// The project a request of one's own belongs to: the one given (one of theirs), else the
/// rota's for that day, else their only project.
async fn request_project(state: &AppState, actor: &Actor, wanted: Option<Uuid>, at: DateTime<Utc>) -> AppResult<Uuid> {
    let mine = projects_of(state, actor.user_id).await?;
    if let Some(p) = wanted {
        crate::org::company::service::project_of_company(state, actor.company_id, p).await?;
        if mine.as_ref().is_some_and(|m| !m.contains(&p)) {
            return Err(AppError::not_found("project"));
        }
        return Ok(p);
    }
    let day = business_date(at);
    let mut conn = state.db.acquire().await?;
    let l = Loaded::load(&mut conn, actor.company_id, &[actor.user_id], day, day).await?;
    if let Some(p) = l.rota(actor.user_id).plan(day).project_id {
        return Ok(p);
    }
    match mine.as_deref() {
        Some([only]) => Ok(*only),
        _ => Err(invalid("projectId", "请选择项目", "Say which project")),
    }
}

async fn file_request(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    r: AttendanceRequest,
    payload: serde_json::Value,
) -> AppResult<Uuid> {
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::insert_request(&mut *tx, &r).await?;
    approval::request(
        &mut tx,
        r.created_at,
        actor,
        NewApproval {
            company_id: r.company_id,
            project_id: Some(r.project_id),
            kind: ApprovalKind::Attendance,
            subject_id: r.id,
            payload,
            reason: r.reason.clone(),
            approver_perm: APPROVER,
        },
    )
    .await?;
    tx.commit(&r.id).await?;
    Ok(r.id)
}

/// 补签 (`self:attendance`): a punch one forgot, up to `correction_max_days` back, for the
/// project's approver to decide. Returns the request's id.
pub async fn ask_correction(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project: Option<Uuid>,
    at: DateTime<Utc>,
    direction: Direction,
    reason: &str,
) -> AppResult<Uuid> {
    actor.require(Perm::SelfAttendance)?;
    let now = state.clock.now();
    let max = state.config.attendance.correction_max_days;
    if at > now {
        return Err(invalid("at", "补签时间不能晚于现在", "A correction is for a time past"));
    }
    if at < now - TimeDelta::days(max) {
        return Err(AppError::validation(
            "at",
            Msg::owned(format!("只能补签{max}天内的打卡"), format!("Corrections go back at most {max} days")),
        ));
    }
    let project = request_project(state, actor, project, at).await?;
    let reason = types::text("reason", reason, 500)?;
    let r = AttendanceRequest {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: project,
        user_id: actor.user_id,
        kind: RequestKind::Correction,
        leave_type: None,
        starts_at: at,
        ends_at: None,
        direction: Some(direction),
        reason,
        status: RequestStatus::Pending,
        created_at: now,
        decided_at: None,
    };
    let payload =
        serde_json::json!({ "kind": "correction", "at": at, "direction": direction, "userId": actor.user_id });
    file_request(state, actor, retry, r, payload).await
}

/// 请假 (`self:attendance`): a type, a span of up to 180 days starting at most
/// `correction_max_days` back, and a reason, for the project's approver.
#[allow(clippy::too_many_arguments)]
pub async fn ask_leave(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    project: Option<Uuid>,
    leave_type: LeaveType,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    reason: &str,
) -> AppResult<Uuid> {
    actor.require(Perm::SelfAttendance)?;
    let now = state.clock.now();
    if to <= from {
        return Err(invalid("to", "结束时间应晚于开始时间", "The end is after the start"));
    }
    if to - from > TimeDelta::days(180) {
        return Err(invalid("to", "一次请假不超过180天", "Leave of up to 180 days at a time"));
    }
    if from < now - TimeDelta::days(state.config.attendance.correction_max_days) {
        return Err(invalid("from", "请假开始时间过早", "The leave starts too far back"));
    }
    let project = request_project(state, actor, project, from).await?;
    let reason = types::text("reason", reason, 500)?;
    let r = AttendanceRequest {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: project,
        user_id: actor.user_id,
        kind: RequestKind::Leave,
        leave_type: Some(leave_type),
        starts_at: from,
        ends_at: Some(to),
        direction: None,
        reason,
        status: RequestStatus::Pending,
        created_at: now,
        decided_at: None,
    };
    let payload = serde_json::json!({ "kind": "leave", "leaveType": leave_type, "from": from, "to": to, "userId": actor.user_id });
    file_request(state, actor, retry, r, payload).await
}

/// One request: one's own, or within `attendance:read`/`approve` of its project.
pub async fn request(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<AttendanceRequest> {
    let r = repo::request(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("request"))?;
    if r.user_id != actor.user_id && !actor.reaches(&[Perm::AttendanceRead, Perm::AttendanceApprove], r.project_id) {
        return Err(AppError::not_found("request"));
    }
    Ok(r)
}

/// Requests, newest first: one's own (`mine`), or those of the caller's
/// `attendance:read`/`approve` projects.
pub async fn requests(
    state: &AppState,
    actor: &Actor,
    mine: bool,
    status: Option<RequestStatus>,
    before: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<AttendanceRequest>> {
    if mine {
        actor.require(Perm::SelfAttendance)?;
        return Ok(repo::requests(
            &state.db,
            actor.company_id,
            Some(actor.user_id),
            None,
            status,
            before,
            limit as i64,
        )
        .await?);
    }
    let read = actor.projects(Perm::AttendanceRead).ok();
    let approve = actor.projects(Perm::AttendanceApprove).ok();
    let projects = match (read, approve) {
        (Some(ProjectFilter::All), _) | (_, Some(ProjectFilter::All)) => None,
        (None, None) => return Err(AppError::forbidden()),
        (a, b) => {
            let mut ids = Vec::new();
            for f in [a, b].into_iter().flatten() {
                if let ProjectFilter::Only(v) = f {
                    ids.extend(v);
                }
            }
            Some(ids)
        }
    };
    Ok(repo::requests(&state.db, actor.company_id, None, projects.as_deref(), status, before, limit as i64).await?)
}

async fn tell(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    r: &AttendanceRequest,
    approved: bool,
    note: Option<&str>,
) -> AppResult<()> {
    let what = match r.kind {
        RequestKind::Correction => "补签申请",
        RequestKind::Leave => "请假申请",
    };
    let title = format!("{what}{}", if approved { "已通过" } else { "未通过" });
    let body = match note {
        Some(n) if !n.is_empty() => format!("审批意见：{n}"),
        _ => title.clone(),
    };
    let n = NewNotification {
        category: Category::Attendance,
        priority: Priority::Normal,
        title,
        body,
        data: serde_json::json!({ "route": "attendanceRequest", "id": r.id }),
        channels: None,
    };
    crate::notify::service::enqueue(state, tx, r.company_id, &[r.user_id], &n).await?;
    Ok(())
}

/// Applies an approved correction or leave (registered for approvals of kind `attendance`):
/// the correction's punch is written, the days it touches recomputed, the employee told.
pub struct DecideAttendance;

#[async_trait::async_trait]
impl approval::Applier for DecideAttendance {
    async fn apply(&self, state: &AppState, tx: &mut sqlx::PgConnection, a: &Approval) -> AppResult<()> {
        let r = repo::request(&mut *tx, a.company_id, a.subject_id).await?.ok_or(AppError::not_found("request"))?;
        let now = state.clock.now();
        if !repo::decide_request(&mut *tx, r.id, RequestStatus::Approved, now).await? {
            return Err(AppError::conflict("id", Msg::new("该申请已处理", "The request was decided already")));
        }
        if r.kind == RequestKind::Correction {
            let p = Punch {
                id: Uuid::now_v7(),
                company_id: r.company_id,
                project_id: r.project_id,
                user_id: r.user_id,
                at: r.starts_at,
                received_at: now,
                source: PunchSource::Correction,
                direction: r.direction,
                lat: None,
                lng: None,
                accuracy_m: None,
                distance_m: None,
                terminal_id: None,
            };
            repo::insert_punch(&mut *tx, &p, PunchOrigin { terminal_record: None, request_id: Some(r.id) }).await?;
        }
        let from = business_date(r.starts_at) - TimeDelta::days(1);
        let to = business_date(r.ends_at.unwrap_or(r.starts_at)).min(business_date(now));
        if from <= to {
            recompute(state, tx, r.company_id, &[r.user_id], from, to).await?;
        }
        tell(state, tx, &r, true, a.decision_note.as_deref()).await
    }

    async fn rejected(&self, state: &AppState, tx: &mut sqlx::PgConnection, a: &Approval) -> AppResult<()> {
        let r = repo::request(&mut *tx, a.company_id, a.subject_id).await?.ok_or(AppError::not_found("request"))?;
        repo::decide_request(&mut *tx, r.id, RequestStatus::Rejected, state.clock.now()).await?;
        tell(state, tx, &r, false, a.decision_note.as_deref()).await
    }
}
