//! When maintenance is due: pure date arithmetic, in Shanghai calendar days.

use chrono::{Months, NaiveDate, TimeDelta};

use super::model::{IntervalKind, PlanAnchor};

/// A plan's period, ready for arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Monthly,
    Quarterly,
    Yearly,
    Days(u32),
}

impl Interval {
    /// The period of a plan's interval kind and days; `None` when days are missing or out
    /// of 1..=3660 for `Days`.
    pub fn of(kind: IntervalKind, days: Option<i32>) -> Option<Interval> {
        match (kind, days) {
            (IntervalKind::Monthly, _) => Some(Interval::Monthly),
            (IntervalKind::Quarterly, _) => Some(Interval::Quarterly),
            (IntervalKind::Yearly, _) => Some(Interval::Yearly),
            (IntervalKind::Days, Some(d)) if (1..=3660).contains(&d) => Some(Interval::Days(d as u32)),
            (IntervalKind::Days, _) => None,
        }
    }

    /// `n` intervals after `start`. Months count from the start date, so a plan starting on
    /// the 31st falls on each month's last day and comes back to the 31st.
    pub fn after(self, start: NaiveDate, n: u32) -> Option<NaiveDate> {
        match self {
            Interval::Monthly => start.checked_add_months(Months::new(n)),
            Interval::Quarterly => start.checked_add_months(Months::new(n.checked_mul(3)?)),
            Interval::Yearly => start.checked_add_months(Months::new(n.checked_mul(12)?)),
            Interval::Days(d) => start.checked_add_signed(TimeDelta::days(d as i64 * n as i64)),
        }
    }
}

/// What is known of a plan on one device.
#[derive(Debug, Clone, Copy)]
pub struct History {
    /// latest due date a task was created for
    pub last_due: Option<NaiveDate>,
    /// whether that task is still open
    pub open: bool,
    /// day of the latest completion
    pub last_done: Option<NaiveDate>,
}

/// The due dates to create tasks for on `today`: each due date whose lead time has begun
/// (`due - lead_days <= today`), that has no task yet and is not before `not_before` (the
/// day the plan was made: a new plan does not invent a backlog). On the schedule anchor
/// periods missed while the scheduler was down are caught up (at most 24); on the
/// completion anchor there is one task at a time.
pub fn due_dates(
    start: NaiveDate,
    interval: Interval,
    anchor: PlanAnchor,
    lead_days: u32,
    h: History,
    today: NaiveDate,
    not_before: NaiveDate,
) -> Vec<NaiveDate> {
    let horizon = today + TimeDelta::days(lead_days as i64);
    let mut out = Vec::new();
    match anchor {
        PlanAnchor::Schedule => {
            for n in 0..2400u32 {
                let Some(d) = interval.after(start, n) else { break };
                if d > horizon || out.len() >= 2400 {
                    break;
                }
                if d >= not_before && h.last_due.is_none_or(|l| d > l) {
                    out.push(d);
                }
            }
            // after a long stop only the most recent periods are worth a task
            let skip = out.len().saturating_sub(24);
            out.drain(..skip);
        }
        PlanAnchor::Completion => {
            if h.open {
                return out;
            }
            let next = match (h.last_done, h.last_due) {
                (Some(done), _) => interval.after(done, 1).map(|d| d.max(start)),
                (None, None) => Some(start.max(not_before)),
                // created, cancelled, never done: wait for a completion
                (None, Some(_)) => None,
            };
            if let Some(d) = next
                && d <= horizon
                && h.last_due.is_none_or(|l| d > l)
            {
                out.push(d);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn intervals_of_kinds() {
        assert_eq!(Interval::of(IntervalKind::Quarterly, None), Some(Interval::Quarterly));
        assert_eq!(Interval::of(IntervalKind::Days, Some(45)), Some(Interval::Days(45)));
        assert_eq!(Interval::of(IntervalKind::Days, None), None);
        assert_eq!(Interval::of(IntervalKind::Days, Some(0)), None);
        assert_eq!(Interval::of(IntervalKind::Days, Some(3661)), None);
    }

    #[test]
    fn month_ends_clamp_and_come_back() {
        let s = d(2026, 1, 31);
        assert_eq!(Interval::Monthly.after(s, 1), Some(d(2026, 2, 28)));
        assert_eq!(Interval::Monthly.after(s, 2), Some(d(2026, 3, 31)));
        assert_eq!(Interval::Monthly.after(d(2027, 12, 31), 2), Some(d(2028, 2, 29)), "leap year");
        assert_eq!(Interval::Quarterly.after(d(2026, 11, 30), 1), Some(d(2027, 2, 28)));
        assert_eq!(Interval::Yearly.after(d(2028, 2, 29), 1), Some(d(2029, 2, 28)));
        assert_eq!(Interval::Days(45).after(d(2026, 12, 1), 1), Some(d(2027, 1, 15)));
    }

    #[test]
    fn schedule_creates_ahead_across_a_year_boundary() {
        let h = History { last_due: Some(d(2026, 12, 15)), open: true, last_done: None };
        // monthly from 15 Nov, 5 days' lead: on 9 Jan nothing, on 10 Jan the 15 Jan task
        assert!(
            due_dates(d(2026, 11, 15), Interval::Monthly, PlanAnchor::Schedule, 5, h, d(2027, 1, 9), d(2026, 11, 1))
                .is_empty()
        );
        assert_eq!(
            due_dates(d(2026, 11, 15), Interval::Monthly, PlanAnchor::Schedule, 5, h, d(2027, 1, 10), d(2026, 11, 1)),
            vec![d(2027, 1, 15)]
        );
        let first = History { last_due: None, open: false, last_done: None };
        assert_eq!(
            due_dates(
                d(2026, 12, 31),
                Interval::Monthly,
                PlanAnchor::Schedule,
                3,
                first,
                d(2026, 12, 28),
                d(2026, 12, 1)
            ),
            vec![d(2026, 12, 31)]
        );
    }

    #[test]
    fn a_new_plan_has_no_backlog() {
        let none = History { last_due: None, open: false, last_done: None };
        assert_eq!(
            due_dates(
                d(2026, 1, 5),
                Interval::Monthly,
                PlanAnchor::Schedule,
                5,
                none,
                d(2026, 11, 27),
                d(2026, 11, 27)
            ),
            vec![]
        );
        assert_eq!(
            due_dates(
                d(2026, 1, 5),
                Interval::Monthly,
                PlanAnchor::Schedule,
                10,
                none,
                d(2026, 11, 27),
                d(2026, 11, 27)
            ),
            vec![d(2026, 12, 5)]
        );
    }

    #[test]
    fn completion_waits_for_the_work() {
        let open = History { last_due: Some(d(2026, 11, 1)), open: true, last_done: None };
        assert!(
            due_dates(
                d(2026, 11, 1),
                Interval::Days(30),
                PlanAnchor::Completion,
                3,
                open,
                d(2027, 3, 1),
                d(2026, 10, 1)
            )
            .is_empty()
        );
        let done = History { last_due: Some(d(2026, 11, 1)), open: false, last_done: Some(d(2026, 11, 20)) };
        assert_eq!(
            due_dates(
                d(2026, 11, 1),
                Interval::Days(30),
                PlanAnchor::Completion,
                3,
                done,
                d(2026, 12, 17),
                d(2026, 10, 1)
            ),
            vec![d(2026, 12, 20)]
        );
    }
}
