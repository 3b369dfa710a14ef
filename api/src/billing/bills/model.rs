//! 账单 types, and the rules of which part of an item's cycle a month's bill carries.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::billing::fees::model::{Cycle, PayingResident};
use crate::kit::money::Money;

crate::text_enum! {
    /// 缴费状态
    pub enum BillStatus { Unpaid = "unpaid", Partial = "partial", Paid = "paid" }
}

crate::text_enum! {
    /// 明细类型
    pub enum LineKind {
        /// a fee item of the period
        Fee = "fee",
        /// a work-order charge
        Charge = "charge",
        /// a discount (negative)
        Discount = "discount",
        /// an approved adjustment
        Adjustment = "adjustment",
    }
}

crate::text_enum! {
    /// 收款方式
    pub enum PaymentMethod {
        Cash = "cash",
        BankTransfer = "bank_transfer",
        Pos = "pos",
        Wechat = "wechat",
        Alipay = "alipay",
        /// drawn from the house's prepaid balance
        Prepaid = "prepaid",
    }
}

impl LineKind {
    /// Lines a run computes (and recomputes): fee items and their discounts. Work-order
    /// charges and approved adjustments stay as they were written.
    pub fn computed(self) -> bool {
        matches!(self, LineKind::Fee | LineKind::Discount)
    }
}

/// 账单 what one payer owes for a house or a parking space for one month.
#[derive(Debug, Clone)]
pub struct Bill {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub building_id: Option<Uuid>,
    pub house_id: Option<Uuid>,
    pub parking_space_id: Option<Uuid>,
    pub period: NaiveDate,
    pub paying_resident: PayingResident,
    pub payer_id: Uuid,
    pub run_id: Option<Uuid>,
    pub total: Decimal,
    pub late_fee: Decimal,
    pub paid: Decimal,
    pub status: BillStatus,
    pub due_date: NaiveDate,
    pub issued_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Bill {
    /// What is still owed: total + late fee − paid.
    pub fn outstanding(&self) -> Decimal {
        self.total + self.late_fee - self.paid
    }
}

/// 账单明细 one line of a bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub id: Uuid,
    pub bill_id: Uuid,
    pub kind: LineKind,
    pub fee_item_id: Option<Uuid>,
    pub charge_id: Option<Uuid>,
    pub name: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub months: Option<Decimal>,
    pub previous_reading: Option<Decimal>,
    pub current_reading: Option<Decimal>,
    pub amount: Decimal,
    pub position: i32,
}

impl Line {
    /// The same charge as another line, whatever its id and bill.
    pub fn same_as(&self, o: &Line) -> bool {
        self.kind == o.kind
            && self.fee_item_id == o.fee_item_id
            && self.charge_id == o.charge_id
            && self.name == o.name
            && self.quantity == o.quantity
            && self.unit_price == o.unit_price
            && self.months == o.months
            && self.previous_reading == o.previous_reading
            && self.current_reading == o.current_reading
            && self.amount == o.amount
    }
}

/// 收款 money received and the receipt it was given.
#[derive(Debug, Clone)]
pub struct Payment {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub payer_id: Uuid,
    pub method: PaymentMethod,
    pub reference: Option<String>,
    pub amount: Decimal,
    pub receipt_no: String,
    pub note: Option<String>,
    pub received_by: Option<Uuid>,
    pub received_at: DateTime<Utc>,
    /// what no bill needed (bills settled another way meanwhile): to be refunded
    pub unapplied: Decimal,
    /// what was paid back
    pub refunded: Decimal,
}

/// 账单生成记录 a committed run.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: Uuid,
    pub project_id: Uuid,
    pub period: NaiveDate,
    pub due_date: NaiveDate,
    pub created: i32,
    pub regenerated: i32,
    pub unchanged: i32,
    pub skipped: i32,
    pub total: Decimal,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// 欠费 what a house (or a space) owes on overdue bills.
#[derive(Debug, Clone)]
pub struct Arrears {
    pub house_id: Option<Uuid>,
    pub parking_space_id: Option<Uuid>,
    pub building_id: Option<Uuid>,
    pub payer_id: Uuid,
    pub bills: i64,
    pub outstanding: Decimal,
    pub oldest_due: NaiveDate,
    pub building_name: Option<String>,
    /// 1栋1单元101, or the space's code
    pub place: String,
    pub payer_name: String,
}

/// A building's share of the arrears (none: parking spaces).
#[derive(Debug, Clone)]
pub struct ArrearsBuilding {
    pub building_id: Option<Uuid>,
    pub name: Option<String>,
    pub houses: usize,
    pub outstanding: Decimal,
}

/// 欠费统计 a project's arrears on a day: every line (the largest first), per building,
/// in all, and as CSV.
#[derive(Debug, Clone)]
pub struct ArrearsReport {
    pub as_of: NaiveDate,
    pub lines: Vec<Arrears>,
    pub by_building: Vec<ArrearsBuilding>,
    pub outstanding: Decimal,
    pub csv: String,
}

impl ArrearsReport {
    pub fn new(as_of: NaiveDate, lines: Vec<Arrears>) -> Self {
        let mut by_building: Vec<ArrearsBuilding> = Vec::new();
        for r in &lines {
            match by_building.iter_mut().find(|b| b.building_id == r.building_id) {
                Some(b) => {
                    b.houses += 1;
                    b.outstanding += r.outstanding;
                }
                None => by_building.push(ArrearsBuilding {
                    building_id: r.building_id,
                    name: r.building_name.clone(),
                    houses: 1,
                    outstanding: r.outstanding,
                }),
            }
        }
        let outstanding = lines.iter().map(|r| r.outstanding).sum();
        let csv = arrears_csv(&lines);
        ArrearsReport { as_of, lines, by_building, outstanding, csv }
    }
}

/// 收缴率 a month's bills and what was collected of them.
#[derive(Debug, Clone)]
pub struct Collection {
    pub period: NaiveDate,
    pub bills: i64,
    pub paid_bills: i64,
    pub billed: Decimal,
    pub collected: Decimal,
}

impl Collection {
    /// collected ÷ billed, to four decimals (1 when nothing was billed)
    pub fn rate(&self) -> Decimal {
        if self.billed.is_zero() {
            return Decimal::ONE;
        }
        (self.collected / self.billed).round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    }
}

/// The arrears as CSV (UTF-8 with a BOM, so spreadsheet programs read the Chinese header).
pub fn arrears_csv(rows: &[Arrears]) -> String {
    let mut out = String::from("\u{feff}楼栋,房屋/车位,缴费人,欠费账单数,欠费金额,最早截止日\n");
    for r in rows {
        let (building, place, payer) = (r.building_name.clone().unwrap_or_default(), &r.place, &r.payer_name);
        let field = |s: &str| {
            // a cell starting like a formula is quoted with a leading apostrophe (CSV injection)
            let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_owned() };
            format!("\"{}\"", s.replace('"', "\"\""))
        };
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            field(&building),
            field(place),
            field(payer),
            r.bills,
            r.outstanding.round_dp(2),
            r.oldest_due
        ));
    }
    out
}

/// Which part of an item's cycle a month's bill carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// the first day billed
    pub from: NaiveDate,
    /// months of the whole cycle (1, 3, 12; 1 for a one-off)
    pub months: u32,
    /// days billed, and days in the whole cycle (equal when the cycle is billed in full)
    pub days: i64,
    pub cycle_days: i64,
}

impl Span {
    pub fn full(&self) -> bool {
        self.days == self.cycle_days
    }
}

fn first_of_cycle(cycle: Cycle, period: NaiveDate) -> NaiveDate {
    let m = match cycle {
        Cycle::Quarterly => (period.month0() / 3) * 3 + 1,
        Cycle::Yearly => 1,
        Cycle::Monthly | Cycle::OneOff => period.month(),
    };
    NaiveDate::from_ymd_opt(period.year(), m, 1).unwrap_or(period)
}

/// The part of an item's cycle the bill of `period` (a month's first day) carries, or none.
/// Cycles follow the calendar (a quarter from January, April, July, October; a year from
/// January) and are billed in their first month; an item or a house whose charging starts
/// within a cycle is billed in the month it starts, for the days left of the cycle; an
/// item that ends within it, for the days up to its last. A one-off item is billed once,
/// in the month it starts.
pub fn span(
    cycle: Cycle,
    period: NaiveDate,
    item_from: NaiveDate,
    item_to: Option<NaiveDate>,
    charge_start: Option<NaiveDate>,
) -> Option<Span> {
    let start = charge_start.map_or(item_from, |c| c.max(item_from));
    let month_of_start = start.with_day(1)?;
    if cycle == Cycle::OneOff {
        return (period == month_of_start && item_to.is_none_or(|t| t >= start)).then_some(Span {
            from: start,
            months: 1,
            days: 1,
            cycle_days: 1,
        });
    }
    let months = match cycle {
        Cycle::Monthly | Cycle::OneOff => 1,
        Cycle::Quarterly => 3,
        Cycle::Yearly => 12,
    };
    let cs = first_of_cycle(cycle, period);
    let ce = cs.checked_add_months(Months::new(months))?;
    if period != cs.max(month_of_start) {
        return None;
    }
    let from = cs.max(start);
    let until = item_to.and_then(|t| t.succ_opt()).map_or(ce, |t| t.min(ce));
    if from >= until {
        return None;
    }
    Some(Span { from, months, days: (until - from).num_days(), cycle_days: (ce - cs).num_days() })
}

/// The months a span is worth (to four decimals, for the printed line).
pub fn months_of(s: &Span) -> Decimal {
    if s.full() {
        return Decimal::from(s.months);
    }
    (Decimal::from(s.months) * Decimal::from(s.days) / Decimal::from(s.cycle_days))
        .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// A bill's status from its amounts.
pub fn status_of(total: Money, late_fee: Money, paid: Money) -> BillStatus {
    let owed = total.yuan() + late_fee.yuan();
    if paid.yuan() >= owed {
        BillStatus::Paid
    } else if paid.yuan().is_zero() {
        BillStatus::Unpaid
    } else {
        BillStatus::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_monthly_item_is_billed_every_month_and_by_days_in_its_first() {
        let from = day("2026-01-01");
        let s = span(Cycle::Monthly, day("2026-11-01"), from, None, None).unwrap();
        assert_eq!((s.days, s.cycle_days, s.full()), (30, 30, true));
        // a house handed over on 14 November: 17 days of 30
        let s = span(Cycle::Monthly, day("2026-11-01"), from, None, Some(day("2026-11-14"))).unwrap();
        assert_eq!((s.from, s.days, s.cycle_days), (day("2026-11-14"), 17, 30));
        assert_eq!(months_of(&s), "0.5667".parse::<Decimal>().unwrap());
        // not before it is handed over
        assert!(span(Cycle::Monthly, day("2026-10-01"), from, None, Some(day("2026-11-14"))).is_none());
        // an item ending on 10 February: 10 of 28 days
        let s = span(Cycle::Monthly, day("2026-02-01"), from, Some(day("2026-02-10")), None).unwrap();
        assert_eq!((s.days, s.cycle_days), (10, 28));
        assert!(span(Cycle::Monthly, day("2026-03-01"), from, Some(day("2026-02-10")), None).is_none());
    }

    #[test]
    fn longer_cycles_are_billed_in_their_first_month_or_when_charging_starts() {
        let from = day("2026-01-01");
        for m in ["2026-01-01", "2026-04-01", "2026-07-01", "2026-10-01"] {
            let s = span(Cycle::Quarterly, day(m), from, None, None).unwrap();
            assert_eq!((s.months, s.full()), (3, true), "{m}");
        }
        assert!(span(Cycle::Quarterly, day("2026-05-01"), from, None, None).is_none());
        // a yearly item appears in January only
        assert!(span(Cycle::Yearly, day("2026-01-01"), from, None, None).unwrap().full());
        assert!(span(Cycle::Yearly, day("2026-02-01"), from, None, None).is_none());
        // handed over on 16 May: the rest of the quarter (16 May – 30 June: 46 of 91 days) in May
        let s = span(Cycle::Quarterly, day("2026-05-01"), from, None, Some(day("2026-05-16"))).unwrap();
        assert_eq!((s.days, s.cycle_days), (46, 91));
        assert!(span(Cycle::Quarterly, day("2026-04-01"), from, None, Some(day("2026-05-16"))).is_none());
        assert!(span(Cycle::Quarterly, day("2026-07-01"), from, None, Some(day("2026-05-16"))).unwrap().full());
        // an item starting in March (yearly): March to December in March
        let s = span(Cycle::Yearly, day("2026-03-01"), day("2026-03-01"), None, None).unwrap();
        assert_eq!((s.days, s.cycle_days), (306, 365));
    }

    #[test]
    fn a_one_off_item_is_billed_once() {
        let from = day("2026-11-05");
        assert!(span(Cycle::OneOff, day("2026-11-01"), from, None, None).is_some());
        assert!(span(Cycle::OneOff, day("2026-12-01"), from, None, None).is_none());
    }

    #[test]
    fn status_follows_the_amounts() {
        let m = |s: &str| Money::round(s.parse().unwrap());
        assert_eq!(status_of(m("100"), m("0"), m("0")), BillStatus::Unpaid);
        assert_eq!(status_of(m("100"), m("0"), m("40")), BillStatus::Partial);
        assert_eq!(status_of(m("100"), m("1.5"), m("100")), BillStatus::Partial);
        assert_eq!(status_of(m("100"), m("1.5"), m("101.5")), BillStatus::Paid);
        assert_eq!(status_of(m("0"), m("0"), m("0")), BillStatus::Paid);
    }
}

/// 催缴记录 one reminder of an overdue bill.
#[derive(Debug, Clone)]
pub struct Reminder {
    pub id: Uuid,
    pub bill_id: Uuid,
    /// the schedule's days after the due date (0: sent by hand)
    pub step: i32,
    /// what the bill still owed then
    pub owed: Decimal,
    pub sent_by: Option<Uuid>,
    pub sent_at: DateTime<Utc>,
}

/// An overdue bill due a reminder.
#[derive(Debug, Clone)]
pub struct Overdue {
    pub bill_id: Uuid,
    pub company_id: Uuid,
    pub payer_id: Uuid,
    pub period: NaiveDate,
    pub due_date: NaiveDate,
    pub space: bool,
    pub owed: Decimal,
    pub step: i32,
}
