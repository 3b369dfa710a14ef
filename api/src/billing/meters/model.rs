//! 抄表 types and the rules of a period's usage.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::equipment::model::DeviceCategory;

crate::text_enum! {
    /// 来源 where a reading came from
    pub enum ReadingSource { Iot = "iot", Staff = "staff", Import = "import" }
}

crate::text_enum! {
    /// 状态 whether a reading may be billed
    pub enum ReadingStatus {
        Normal = "normal",
        /// abnormal usage (or a register gone backwards): held out of billing until reviewed
        Flagged = "flagged",
        /// flagged, then accepted by a reviewer
        Accepted = "accepted",
    }
}

/// A meter as reading needs it.
#[derive(Debug, Clone)]
pub struct Meter {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub house_id: Option<Uuid>,
    pub category: DeviceCategory,
    pub code: String,
    /// 倍率 (from the ledger's attributes; 1 when not set)
    pub multiplier: Decimal,
    /// the register when the meter was installed
    pub initial: Option<Decimal>,
}

/// 抄表记录 a meter's register at the close of a billing month.
#[derive(Debug, Clone)]
pub struct Reading {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub house_id: Option<Uuid>,
    /// the month's first day
    pub period: NaiveDate,
    pub reading: Decimal,
    /// the register the usage counts from
    pub previous: Option<Decimal>,
    /// (reading − previous, across replacements) × multiplier; none without a previous
    pub usage: Option<Decimal>,
    pub read_at: DateTime<Utc>,
    pub source: ReadingSource,
    pub status: ReadingStatus,
    pub flag_reason: Option<String>,
    pub recorded_by: Option<Uuid>,
    pub reviewed_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// 换表 the old register's last reading and the new one's first.
#[derive(Debug, Clone)]
pub struct Replacement {
    pub id: Uuid,
    pub device_id: Uuid,
    pub replaced_at: DateTime<Utc>,
    pub old_final: Decimal,
    pub new_initial: Decimal,
}

/// Usage per house and meter category of a period, for billing: a house's meters of a
/// category summed, with how many of them lack a billable reading (none, no usage yet,
/// or flagged) and the previous and current registers of a house with one meter.
#[derive(Debug, Clone)]
pub struct HouseUsage {
    pub house_id: Uuid,
    pub category: DeviceCategory,
    pub meters: i64,
    pub missing: i64,
    pub flagged: i64,
    pub usage: Decimal,
    pub previous: Option<Decimal>,
    pub current: Option<Decimal>,
}

/// Why a register gives no usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Backwards {
    /// it went down with no replacement to explain it
    #[error("读数低于上次读数 {previous}")]
    Below { previous: Decimal },
    /// the usage (times the multiplier) is beyond what a reading column holds
    #[error("用量超出范围")]
    TooLarge,
}

/// The usage between two registers: each stretch of the meter (up to a replacement's
/// final reading, then from its new initial one) counted, times the multiplier, to
/// four decimals. A stretch that goes down is refused.
pub fn usage(
    previous: Decimal,
    current: Decimal,
    replacements: &[(Decimal, Decimal)],
    multiplier: Decimal,
) -> Result<Decimal, Backwards> {
    let mut from = previous;
    let mut total = Decimal::ZERO;
    for (old_final, new_initial) in replacements {
        if *old_final < from {
            return Err(Backwards::Below { previous: from });
        }
        total += *old_final - from;
        from = *new_initial;
    }
    if current < from {
        return Err(Backwards::Below { previous: from });
    }
    total += current - from;
    let usage = total.checked_mul(multiplier).ok_or(Backwards::TooLarge)?;
    // NUMERIC(16,4) holds twelve digits before the point
    if usage >= Decimal::from(1_000_000_000_000i64) {
        return Err(Backwards::TooLarge);
    }
    Ok(usage.round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero))
}

/// How many times the trailing average a month's usage may reach before it is held.
pub const ABNORMAL_FACTOR: i64 = 3;
/// How many earlier months make the trailing average.
pub const TRAILING_MONTHS: usize = 3;

/// 异常用量: usage above `ABNORMAL_FACTOR` × the average of the earlier months given
/// (the last `TRAILING_MONTHS`, at least one, with some usage). Zero is never abnormal.
pub fn abnormal(usage: Decimal, earlier: &[Decimal]) -> Option<(String, String)> {
    let recent: Vec<Decimal> = earlier.iter().take(TRAILING_MONTHS).copied().collect();
    if recent.is_empty() || usage.is_zero() {
        return None;
    }
    let avg = recent.iter().sum::<Decimal>() / Decimal::from(recent.len() as i64);
    if avg.is_zero() || usage <= avg * Decimal::from(ABNORMAL_FACTOR) {
        return None;
    }
    let avg = avg.round_dp(2);
    Some((
        format!("用量 {usage} 超过前{}个月平均 {avg} 的{ABNORMAL_FACTOR}倍", recent.len()),
        format!("Usage {usage} is over {ABNORMAL_FACTOR}× the average {avg} of the last {} months", recent.len()),
    ))
}

/// The first day of the month a day is in.
pub fn month_of(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// The first day of the next month.
pub fn next_month(period: NaiveDate) -> NaiveDate {
    period.checked_add_months(chrono::Months::new(1)).unwrap_or(period)
}

/// The first day of the previous month.
pub fn previous_month(period: NaiveDate) -> NaiveDate {
    period.checked_sub_months(chrono::Months::new(1)).unwrap_or(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_exactly() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        // 100 over three equal houses: 33.3334 + 33.3333 + 33.3333
        let s = split(d("100"), &[(a, d("1")), (b, d("1")), (c, d("1"))]).unwrap();
        assert_eq!(s, vec![(a, d("33.3334")), (b, d("33.3333")), (c, d("33.3333"))]);
        // by area 89.5 and 120.25: the larger remainder gets the unit
        let s = split(d("10"), &[(a, d("89.5")), (b, d("120.25"))]).unwrap();
        assert_eq!(s.iter().map(|x| x.1).sum::<Decimal>(), d("10"));
        assert_eq!(s, vec![(a, d("4.2670")), (b, d("5.7330"))]);
        assert!(split(d("10"), &[(a, Decimal::ZERO)]).is_none());
        assert!(split(d("10"), &[]).is_none());
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn usage_counts_each_stretch_of_the_meter() {
        assert_eq!(usage(d("100.5"), d("112.25"), &[], d("1")), Ok(d("11.75")));
        // a current transformer's multiplier
        assert_eq!(usage(d("100"), d("101.5"), &[], d("40")), Ok(d("60")));
        // replaced at 130 by a new meter starting at 2: 30 + 8
        assert_eq!(usage(d("100"), d("10"), &[(d("130"), d("2"))], d("1")), Ok(d("38")));
        // a register that went down with nothing to explain it
        assert_eq!(usage(d("100"), d("99.9"), &[], d("1")), Err(Backwards::Below { previous: d("100") }));
        // a register times a large multiplier beyond the column
        assert_eq!(usage(d("0"), d("999999999999"), &[], d("100000")), Err(Backwards::TooLarge));
        // an old final below the previous reading is an error too
        assert!(usage(d("100"), d("10"), &[(d("90"), d("0"))], d("1")).is_err());
        // exact, beyond a float's digits
        assert_eq!(usage(d("123456789012.0001"), d("123456789012.0003"), &[], d("1")), Ok(d("0.0002")));
    }

    #[test]
    fn abnormal_is_over_three_times_the_recent_average() {
        let hist = [d("10"), d("12"), d("8")];
        assert!(abnormal(d("30"), &hist).is_none(), "exactly 3× is not abnormal");
        assert!(abnormal(d("30.01"), &hist).is_some());
        assert!(abnormal(d("500"), &[]).is_none(), "nothing to compare with");
        assert!(abnormal(d("5"), &[d("0"), d("0")]).is_none(), "no usage before");
        // only the last three months count
        assert!(abnormal(d("40"), &[d("10"), d("10"), d("10"), d("1000")]).is_some());
    }

    #[test]
    fn months() {
        let p = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        assert_eq!(month_of(p), NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        assert_eq!(next_month(month_of(p)), NaiveDate::from_ymd_opt(2026, 2, 1).unwrap());
        assert_eq!(previous_month(month_of(p)), NaiveDate::from_ymd_opt(2025, 12, 1).unwrap());
    }
}

crate::text_enum! {
    /// 公摊方式 how a shared meter's usage is split over its houses
    pub enum ShareMethod {
        /// by building area
        Area = "area",
        /// the same for each house
        Equal = "equal",
        /// by each house's own usage of the same kind of meter that month
        Usage = "usage",
    }
}

/// 公摊表 a meter of common parts and the houses that share it.
#[derive(Debug, Clone)]
pub struct SharedMeter {
    pub device_id: Uuid,
    pub project_id: Uuid,
    pub method: ShareMethod,
    pub house_ids: Vec<Uuid>,
    pub updated_at: DateTime<Utc>,
}

/// Splits `total` by the weights to 4 decimals so the shares add up to it exactly: each
/// share rounded down, the units left given to the largest remainders (the first listed
/// first on a tie). None when the weights add up to nothing.
pub fn split(total: Decimal, weights: &[(Uuid, Decimal)]) -> Option<Vec<(Uuid, Decimal)>> {
    let sum: Decimal = weights.iter().map(|w| w.1).sum();
    if sum <= Decimal::ZERO || weights.iter().any(|w| w.1.is_sign_negative()) {
        return None;
    }
    let unit = Decimal::new(1, 4);
    let mut shares: Vec<(Uuid, Decimal, Decimal)> = weights
        .iter()
        .map(|(h, w)| {
            let raw = total * *w / sum;
            let down = raw.round_dp_with_strategy(4, rust_decimal::RoundingStrategy::ToZero);
            (*h, down, raw - down)
        })
        .collect();
    let given: Decimal = shares.iter().map(|s| s.1).sum();
    let mut left = rust_decimal::prelude::ToPrimitive::to_i64(&((total - given) / unit).round()).unwrap_or(0).max(0);
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|a, b| shares[*b].2.cmp(&shares[*a].2).then(a.cmp(b)));
    for i in order {
        if left == 0 {
            break;
        }
        shares[i].1 += unit;
        left -= 1;
    }
    Some(shares.into_iter().map(|(h, s, _)| (h, s)).collect())
}
