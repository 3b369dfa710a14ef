//! The arithmetic of attendance, without I/O: what the rota makes of a day (patterns, days
//! set by hand, public holidays and make-up working days), which punches belong to it (a
//! night shift's punches after midnight are the day it started), and the day's result.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use uuid::Uuid;

use super::model::{
    AttendanceDay, CalendarKind, DayKind, DayStatus, Direction, RotaAssignment, RotaDay, RotaKind, RotaPattern, Shift,
    local,
};

/// The calendar's exceptions in force for one company: its own rows over the national ones.
#[derive(Debug, Default, Clone)]
pub struct Calendar(pub HashMap<NaiveDate, CalendarKind>);

impl Calendar {
    pub fn kind(&self, day: NaiveDate) -> CalendarKind {
        self.0.get(&day).copied().unwrap_or(CalendarKind::Ordinary)
    }

    /// What a day is for someone on office hours.
    pub fn day_kind(&self, day: NaiveDate) -> DayKind {
        match self.kind(day) {
            CalendarKind::Holiday => DayKind::Holiday,
            CalendarKind::Workday => DayKind::Workday,
            CalendarKind::Ordinary if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) => DayKind::Rest,
            CalendarKind::Ordinary => DayKind::Workday,
        }
    }
}

/// What the rota says of one employee's day.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub kind: DayKind,
    pub project_id: Option<Uuid>,
    pub shift: Option<Shift>,
    /// whether a pattern or a day set by hand covers it (no rota: nothing is expected)
    pub rostered: bool,
}

/// One employee's rota as loaded: their assignments and hand-set days, with the company's
/// shifts, patterns and calendar.
pub struct Rota<'a> {
    pub shifts: &'a HashMap<Uuid, Shift>,
    pub patterns: &'a HashMap<Uuid, RotaPattern>,
    pub calendar: &'a Calendar,
    pub assignments: &'a [RotaAssignment],
    pub days: &'a HashMap<NaiveDate, RotaDay>,
}

impl Rota<'_> {
    pub fn plan(&self, day: NaiveDate) -> Plan {
        let holiday = self.calendar.kind(day) == CalendarKind::Holiday;
        if let Some(d) = self.days.get(&day) {
            let shift = d.shift_id.and_then(|s| self.shifts.get(&s)).cloned();
            let kind = if holiday {
                DayKind::Holiday
            } else if shift.is_some() {
                DayKind::Workday
            } else {
                DayKind::Rest
            };
            return Plan { kind, project_id: Some(d.project_id), shift, rostered: true };
        }
        let found =
            self.assignments.iter().find(|a| a.covers(day)).and_then(|a| Some((a, self.patterns.get(&a.pattern_id)?)));
        let Some((a, p)) = found else {
            return Plan { kind: self.calendar.day_kind(day), project_id: None, shift: None, rostered: false };
        };
        let n = p.slots.len().max(1) as i64;
        let index = match p.kind {
            RotaKind::Week => day.weekday().num_days_from_monday() as i64,
            RotaKind::Cycle => (day - a.from_day).num_days().rem_euclid(n),
        };
        let mut slot = p.slots.get(index as usize).copied().flatten();
        if p.observe_holidays {
            match self.calendar.kind(day) {
                CalendarKind::Holiday => slot = None,
                // 调休: a weekend day worked like the pattern's working days
                CalendarKind::Workday => slot = slot.or_else(|| p.slots.iter().flatten().next().copied()),
                CalendarKind::Ordinary => {}
            }
        }
        let shift = slot.and_then(|s| self.shifts.get(&s)).cloned();
        let kind = if holiday {
            DayKind::Holiday
        } else if shift.is_some() {
            DayKind::Workday
        } else {
            DayKind::Rest
        };
        Plan { kind, project_id: Some(a.project_id), shift, rostered: true }
    }
}

/// How far before a shift punches count as its arrival and after it as its departure.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub before: TimeDelta,
    pub after: TimeDelta,
}

impl Default for Windows {
    fn default() -> Self {
        Windows { before: TimeDelta::hours(4), after: TimeDelta::hours(6) }
    }
}

impl Windows {
    /// Where the punches of `day` start and end: around its shift (split halfway where a
    /// neighbouring day's shift comes closer), or the calendar day less its neighbours'.
    pub fn of(&self, day: NaiveDate, prev: &Plan, cur: &Plan, next: &Plan) -> (DateTime<Utc>, DateTime<Utc>) {
        let bounds = |p: &Plan, d: NaiveDate| p.shift.as_ref().map(|s| s.bounds(d));
        let prev_b = day.pred_opt().and_then(|d| bounds(prev, d));
        let next_b = day.succ_opt().and_then(|d| bounds(next, d));
        let split = |end: DateTime<Utc>, start: DateTime<Utc>| end + (start - end) / 2;
        match bounds(cur, day) {
            Some((s, e)) => {
                let mut lo = s - self.before;
                let mut hi = e + self.after;
                if let Some((_, pe)) = prev_b
                    && pe + self.after > lo
                {
                    lo = split(pe, s);
                }
                if let Some((ns, _)) = next_b
                    && ns - self.before < hi
                {
                    hi = split(e, ns);
                }
                (lo, hi)
            }
            None => {
                let midnight = local(day, NaiveTime::MIN);
                let mut lo = midnight;
                let mut hi = midnight + TimeDelta::days(1);
                if let Some((_, pe)) = prev_b {
                    lo = lo.max(pe + self.after);
                }
                if let Some((ns, _)) = next_b {
                    hi = hi.min(ns - self.before);
                }
                (lo.min(hi), hi)
            }
        }
    }
}

/// A punch as the arithmetic needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PunchAt {
    pub at: DateTime<Utc>,
    pub direction: Option<Direction>,
    /// where it was taken (None: anywhere counts)
    pub project_id: Option<Uuid>,
    /// sent well after it was taken (queued offline): shown to managers
    pub offline: bool,
}

impl PunchAt {
    pub fn at(at: DateTime<Utc>) -> PunchAt {
        PunchAt { at, direction: None, project_id: None, offline: false }
    }
}

/// Everything a day's result depends on.
pub struct DayInput<'a> {
    pub user_id: Uuid,
    pub company_id: Uuid,
    pub day: NaiveDate,
    pub plan: &'a Plan,
    pub window: (DateTime<Utc>, DateTime<Utc>),
    /// the employee's punches around the day, in time order
    pub punches: &'a [PunchAt],
    /// approved leave, as instants
    pub leave: &'a [(DateTime<Utc>, DateTime<Utc>)],
    pub now: DateTime<Utc>,
}

fn minutes(d: TimeDelta) -> i32 {
    i32::try_from(d.num_seconds().max(0) / 60).unwrap_or(i32::MAX)
}

/// Approved leave within [s, e): merged, as (minutes, the start it moves, the end it moves).
fn leave_within(
    leave: &[(DateTime<Utc>, DateTime<Utc>)],
    s: DateTime<Utc>,
    e: DateTime<Utc>,
) -> (i32, DateTime<Utc>, DateTime<Utc>) {
    let mut parts: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        leave.iter().map(|(a, b)| ((*a).max(s), (*b).min(e))).filter(|(a, b)| a < b).collect();
    parts.sort();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for (a, b) in parts {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let total = merged.iter().map(|(a, b)| minutes(*b - *a)).sum();
    let start = match merged.first() {
        Some((a, b)) if *a <= s => *b,
        _ => s,
    };
    let end = match merged.last() {
        Some((a, b)) if *b >= e => *a,
        _ => e,
    };
    (total, start, end)
}

/// The day's result; None for a day nobody rostered and nobody punched.
pub fn evaluate(i: &DayInput<'_>) -> Option<AttendanceDay> {
    let (lo, hi) = i.window;
    // a rostered day counts the punches taken at its project only
    let here = |p: &PunchAt| i.plan.project_id.is_none() || p.project_id.is_none() || p.project_id == i.plan.project_id;
    let punches: Vec<PunchAt> = i.punches.iter().filter(|p| p.at >= lo && p.at < hi && here(p)).copied().collect();
    let settled = i.now >= hi;
    let mut d = AttendanceDay {
        user_id: i.user_id,
        day: i.day,
        company_id: i.company_id,
        project_id: i.plan.project_id,
        shift_id: i.plan.shift.as_ref().map(|s| s.id),
        kind: i.plan.kind,
        status: DayStatus::Rest,
        expected_start: None,
        expected_end: None,
        first_punch: punches.first().map(|p| p.at),
        last_punch: if punches.len() > 1 { punches.last().map(|p| p.at) } else { None },
        late_minutes: 0,
        early_minutes: 0,
        missing_punches: 0,
        offline_punches: punches.iter().filter(|p| p.offline).count() as i32,
        leave_minutes: 0,
        worked_minutes: 0,
        overtime_minutes: 0,
        settled,
        computed_at: i.now,
    };
    let Some(shift) = &i.plan.shift else {
        if !i.plan.rostered && punches.is_empty() {
            return None;
        }
        if let (Some(f), Some(l)) = (d.first_punch, d.last_punch) {
            d.worked_minutes = minutes(l - f);
            // on a rostered day off everything worked is extra
            if i.plan.rostered {
                d.overtime_minutes = d.worked_minutes;
            }
        }
        d.status = if i.plan.rostered { DayStatus::Rest } else { DayStatus::Normal };
        return Some(d);
    };
    let (s, e) = shift.bounds(i.day);
    let (leave_minutes, start, end) = leave_within(i.leave, s, e);
    d.leave_minutes = leave_minutes;
    d.expected_start = Some(start);
    d.expected_end = Some(end);
    if start >= end {
        d.status = DayStatus::Leave;
        return Some(d);
    }
    let half = start + (end - start) / 2;
    let (arrived, left) = match punches.as_slice() {
        [] => (None, None),
        [only] if only.at < half => (Some(only.at), None),
        [only] => (None, Some(only.at)),
        [first, .., last] => (Some(first.at), Some(last.at)),
    };
    if let Some(a) = arrived {
        let late = minutes(a - start);
        d.late_minutes = if late > shift.late_grace_minutes { late } else { 0 };
    }
    if let Some(l) = left {
        let early = minutes(end - l);
        d.early_minutes = if early > shift.early_grace_minutes { early } else { 0 };
        let stayed = minutes(l - e);
        if stayed > 0 && stayed >= shift.overtime_after_minutes {
            d.overtime_minutes = stayed;
        }
    }
    if let (Some(a), Some(l)) = (arrived, left) {
        d.worked_minutes = (minutes(l.min(e) - a.max(s)) - shift.break_minutes).max(0);
    }
    d.missing_punches = i32::from(arrived.is_none()) + i32::from(left.is_none());
    d.status = if !settled {
        DayStatus::InProgress
    } else if d.missing_punches == 2
        || d.late_minutes > shift.absent_after_minutes
        || d.early_minutes > shift.absent_after_minutes
    {
        DayStatus::Absent
    } else if d.missing_punches > 0 {
        DayStatus::MissingPunch
    } else {
        match (d.late_minutes > 0, d.early_minutes > 0) {
            (true, true) => DayStatus::LateAndEarly,
            (true, false) => DayStatus::Late,
            (false, true) => DayStatus::EarlyLeave,
            (false, false) => DayStatus::Normal,
        }
    };
    Some(d)
}

/// Whether the punches of a window, in order, leave the employee clocked in: an explicit
/// direction says so; a terminal's undirected punches alternate, arrival first.
pub fn clocked_in(punches: &[PunchAt]) -> bool {
    punches.iter().fold(false, |inside, p| match p.direction {
        Some(Direction::In) => true,
        Some(Direction::Out) => false,
        None => !inside,
    })
}

/// 在岗: on a shift of this window now, and clocked in.
pub fn on_duty(
    plan: &Plan,
    day: NaiveDate,
    window: (DateTime<Utc>, DateTime<Utc>),
    punches: &[PunchAt],
    now: DateTime<Utc>,
) -> bool {
    let Some(shift) = &plan.shift else { return false };
    let (_, e) = shift.bounds(day);
    let (lo, _) = window;
    if now < lo || now > e {
        return false;
    }
    let here = |p: &PunchAt| plan.project_id.is_none() || p.project_id.is_none() || p.project_id == plan.project_id;
    let seen: Vec<PunchAt> = punches.iter().filter(|p| p.at >= lo && p.at <= now && here(p)).copied().collect();
    clocked_in(&seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn shift(start: (u32, u32), end: (u32, u32)) -> Shift {
        Shift {
            id: Uuid::now_v7(),
            company_id: Uuid::nil(),
            project_id: None,
            name: "s".into(),
            starts_at: NaiveTime::from_hms_opt(start.0, start.1, 0).unwrap(),
            ends_at: NaiveTime::from_hms_opt(end.0, end.1, 0).unwrap(),
            break_minutes: 60,
            late_grace_minutes: 5,
            early_grace_minutes: 0,
            absent_after_minutes: 240,
            overtime_after_minutes: 30,
            updated_at: Utc::now(),
        }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Shanghai wall-clock time.
    fn sh(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        crate::kit::clock::BUSINESS_TZ.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().with_timezone(&Utc)
    }

    fn plan(s: Option<&Shift>) -> Plan {
        Plan { kind: DayKind::Workday, project_id: None, shift: s.cloned(), rostered: true }
    }

    fn run(
        p: &Plan,
        day: NaiveDate,
        punches: &[DateTime<Utc>],
        leave: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> AttendanceDay {
        let w = Windows::default().of(day, p, p, p);
        let punches: Vec<PunchAt> = punches.iter().map(|&at| PunchAt::at(at)).collect();
        evaluate(&DayInput {
            user_id: Uuid::nil(),
            company_id: Uuid::nil(),
            day,
            plan: p,
            window: w,
            punches: &punches,
            leave,
            now: sh(2030, 1, 1, 0, 0),
        })
        .unwrap()
    }

    #[test]
    fn a_day_shift_normal_late_early_and_overtime() {
        let s = shift((8, 30), (17, 30));
        let p = plan(Some(&s));
        let day = date(2026, 11, 27);
        let d = run(&p, day, &[sh(2026, 11, 27, 8, 20), sh(2026, 11, 27, 17, 35)], &[]);
        assert_eq!(
            (d.status, d.late_minutes, d.early_minutes, d.worked_minutes, d.overtime_minutes),
            (DayStatus::Normal, 0, 0, 480, 0)
        );
        // within the grace: not late; beyond: late by the whole delay
        assert_eq!(run(&p, day, &[sh(2026, 11, 27, 8, 35), sh(2026, 11, 27, 17, 30)], &[]).status, DayStatus::Normal);
        let d = run(&p, day, &[sh(2026, 11, 27, 8, 36), sh(2026, 11, 27, 17, 0)], &[]);
        assert_eq!((d.status, d.late_minutes, d.early_minutes), (DayStatus::LateAndEarly, 6, 30));
        let d = run(&p, day, &[sh(2026, 11, 27, 8, 0), sh(2026, 11, 27, 19, 30)], &[]);
        assert_eq!((d.status, d.overtime_minutes), (DayStatus::Normal, 120));
        // one punch in the morning: the departure is missing; none: absent
        let d = run(&p, day, &[sh(2026, 11, 27, 8, 0)], &[]);
        assert_eq!((d.status, d.missing_punches), (DayStatus::MissingPunch, 1));
        assert_eq!(run(&p, day, &[], &[]).status, DayStatus::Absent);
        // five hours late counts as absent
        assert_eq!(run(&p, day, &[sh(2026, 11, 27, 13, 31), sh(2026, 11, 27, 17, 30)], &[]).status, DayStatus::Absent);
    }

    #[test]
    fn a_night_shift_across_midnight_belongs_to_the_day_it_started() {
        let night = shift((22, 0), (6, 0));
        let p = plan(Some(&night));
        let day = date(2026, 11, 27);
        let d = run(&p, day, &[sh(2026, 11, 27, 21, 50), sh(2026, 11, 28, 6, 5)], &[]);
        assert_eq!((d.status, d.worked_minutes), (DayStatus::Normal, 420));
        assert_eq!(d.expected_end, Some(sh(2026, 11, 28, 6, 0)));
        // the next night's window does not take this morning's departure
        let next = run(&p, date(2026, 11, 28), &[sh(2026, 11, 28, 6, 5)], &[]);
        assert_eq!(next.status, DayStatus::Absent);
    }

    #[test]
    fn punches_at_another_project_do_not_count_for_the_shift() {
        let s = shift((8, 0), (17, 0));
        let (here, there) = (Uuid::now_v7(), Uuid::now_v7());
        let p = Plan { project_id: Some(here), ..plan(Some(&s)) };
        let day = date(2026, 11, 27);
        let w = Windows::default().of(day, &p, &p, &p);
        let punch = |h, project| PunchAt { project_id: Some(project), ..PunchAt::at(sh(2026, 11, 27, h, 0)) };
        let punches = [punch(8, there), punch(17, there)];
        let input = DayInput {
            user_id: Uuid::nil(),
            company_id: Uuid::nil(),
            day,
            plan: &p,
            window: w,
            punches: &punches,
            leave: &[],
            now: sh(2030, 1, 1, 0, 0),
        };
        assert_eq!(evaluate(&input).unwrap().status, DayStatus::Absent);
        let punches = [punch(8, here), PunchAt { offline: true, ..punch(17, here) }];
        let d = evaluate(&DayInput { punches: &punches, ..input }).unwrap();
        assert_eq!((d.status, d.offline_punches), (DayStatus::Normal, 1));
    }

    #[test]
    fn the_shanghai_day_boundary_not_utc() {
        // 07:50 Shanghai is 23:50 UTC the day before: it is the arrival of the Shanghai day
        let s = shift((8, 0), (17, 0));
        let p = plan(Some(&s));
        let d = run(&p, date(2026, 11, 27), &[sh(2026, 11, 27, 7, 50), sh(2026, 11, 27, 17, 0)], &[]);
        assert_eq!(d.first_punch, Some(Utc.with_ymd_and_hms(2026, 11, 26, 23, 50, 0).unwrap()));
        assert_eq!(d.status, DayStatus::Normal);
    }

    #[test]
    fn holidays_and_make_up_days_follow_the_calendar() {
        let s = shift((9, 0), (18, 0));
        let shifts: HashMap<Uuid, Shift> = [(s.id, s.clone())].into();
        let week = RotaPattern {
            id: Uuid::now_v7(),
            company_id: Uuid::nil(),
            project_id: Uuid::nil(),
            name: "office".into(),
            kind: RotaKind::Week,
            slots: vec![Some(s.id), Some(s.id), Some(s.id), Some(s.id), Some(s.id), None, None],
            observe_holidays: true,
            updated_at: Utc::now(),
        };
        let patterns: HashMap<Uuid, RotaPattern> = [(week.id, week.clone())].into();
        let calendar =
            Calendar([(date(2026, 10, 1), CalendarKind::Holiday), (date(2026, 10, 10), CalendarKind::Workday)].into());
        let a = RotaAssignment {
            id: Uuid::now_v7(),
            project_id: Uuid::nil(),
            user_id: Uuid::nil(),
            pattern_id: week.id,
            from_day: date(2026, 1, 1),
            to_day: None,
        };
        let days = HashMap::new();
        let assignments = [a];
        let rota =
            Rota { shifts: &shifts, patterns: &patterns, calendar: &calendar, assignments: &assignments, days: &days };
        // a Thursday that is National Day: off
        let p = rota.plan(date(2026, 10, 1));
        assert_eq!((p.kind, p.shift.is_some()), (DayKind::Holiday, false));
        // a Saturday worked in exchange
        let p = rota.plan(date(2026, 10, 10));
        assert_eq!((p.kind, p.shift.as_ref().map(|s| s.id)), (DayKind::Workday, Some(s.id)));
        // an ordinary Saturday
        assert_eq!(rota.plan(date(2026, 10, 17)).kind, DayKind::Rest);
        // working on the holiday counts every minute as holiday work
        let p = rota.plan(date(2026, 10, 1));
        let d = run(&p, date(2026, 10, 1), &[sh(2026, 10, 1, 9, 0), sh(2026, 10, 1, 13, 0)], &[]);
        assert_eq!((d.status, d.kind, d.overtime_minutes), (DayStatus::Rest, DayKind::Holiday, 240));

        // 做二休一 runs through holidays
        let cycle = RotaPattern {
            kind: RotaKind::Cycle,
            slots: vec![Some(s.id), Some(s.id), None],
            observe_holidays: false,
            ..week
        };
        let patterns: HashMap<Uuid, RotaPattern> = [(cycle.id, cycle)].into();
        let rota =
            Rota { shifts: &shifts, patterns: &patterns, calendar: &calendar, assignments: &assignments, days: &days };
        let from = date(2026, 1, 1);
        for (offset, works) in [(0, true), (1, true), (2, false), (3, true), (273, true)] {
            let day = from + TimeDelta::days(offset);
            assert_eq!(rota.plan(day).shift.is_some(), works, "day {day}");
        }
        assert_eq!(rota.plan(date(2026, 10, 1)).kind, DayKind::Holiday);
    }

    #[test]
    fn approved_leave_moves_the_expected_times() {
        let s = shift((8, 30), (17, 30));
        let p = plan(Some(&s));
        let day = date(2026, 11, 27);
        // a morning off: arriving at 12:30 is on time
        let morning = [(sh(2026, 11, 27, 8, 30), sh(2026, 11, 27, 12, 30))];
        let d = run(&p, day, &[sh(2026, 11, 27, 12, 30), sh(2026, 11, 27, 17, 30)], &morning);
        assert_eq!((d.status, d.late_minutes, d.leave_minutes), (DayStatus::Normal, 0, 240));
        // the whole day
        let all = [(sh(2026, 11, 26, 0, 0), sh(2026, 11, 28, 0, 0))];
        assert_eq!(run(&p, day, &[], &all).status, DayStatus::Leave);
    }

    #[test]
    fn direction_and_on_duty() {
        let s = shift((8, 0), (17, 0));
        let p = plan(Some(&s));
        let day = date(2026, 11, 27);
        let w = Windows::default().of(day, &p, &p, &p);
        let at = |h, m| PunchAt::at(sh(2026, 11, 27, h, m));
        assert!(on_duty(&p, day, w, &[at(7, 55)], sh(2026, 11, 27, 10, 0)));
        assert!(!on_duty(&p, day, w, &[at(7, 55), at(12, 0)], sh(2026, 11, 27, 12, 30)));
        let out = PunchAt { direction: Some(Direction::Out), ..at(9, 0) };
        assert!(!on_duty(&p, day, w, &[at(7, 55), out], sh(2026, 11, 27, 10, 0)));
        assert!(!on_duty(&p, day, w, &[at(7, 55)], sh(2026, 11, 27, 17, 1)));
        assert!(!on_duty(&plan(None), day, w, &[at(7, 55)], sh(2026, 11, 27, 10, 0)));
    }
}
