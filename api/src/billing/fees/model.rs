//! 费用项目 the billing domain's types: fee items, their prices, and the amount of one
//! bill line.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::formula::{self, FormulaError};
use crate::equipment::model::DeviceCategory;
use crate::kit::money::Money;
use crate::org::estate::model::HouseUsage;

crate::text_enum! {
    /// 费用类型 what a fee is for
    pub enum FeeKind {
        /// 物业费
        Property = "property",
        /// 水费
        Water = "water",
        /// 电费
        Electricity = "electricity",
        /// 燃气费
        Gas = "gas",
        /// 停车费
        Parking = "parking",
        /// 垃圾清运费
        Garbage = "garbage",
        /// 公摊 shared utilities
        Shared = "shared",
        /// 其他
        Other = "other",
    }
}

crate::text_enum! {
    /// 计费对象 what is billed
    pub enum Payer { House = "house", ParkingSpace = "parking_space" }
}

crate::text_enum! {
    /// 缴费人 which resident of a house pays
    pub enum PayingResident { Owner = "owner", Tenant = "tenant" }
}

crate::text_enum! {
    /// 计费方式 how a line's amount is computed
    pub enum Method {
        /// 建筑面积 × 单价 × 月数
        BuildingArea = "building_area",
        /// 套内面积 × 单价 × 月数
        IndoorArea = "indoor_area",
        /// 固定金额 × 月数
        Fixed = "fixed",
        /// 用量 × 单价
        Metered = "metered",
        /// 阶梯价 usage split over tiers
        Tiered = "tiered",
        /// 自定义公式
        Formula = "formula",
    }
}

crate::text_enum! {
    /// 收费周期 how often it is billed
    pub enum Cycle { Monthly = "monthly", Quarterly = "quarterly", Yearly = "yearly", OneOff = "one_off" }
}

crate::text_enum! {
    /// 适用范围 which houses it applies to
    pub enum Scope {
        /// every house (or space) of the project
        All = "all",
        /// the houses of some buildings
        Buildings = "buildings",
        /// the houses of one usage (shops, offices …)
        Usage = "usage",
        /// listed houses
        Houses = "houses",
    }
}

/// 费用项目 one thing a project charges for.
#[derive(Debug, Clone)]
pub struct FeeItem {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub kind: FeeKind,
    pub payer: Payer,
    pub paying_resident: PayingResident,
    pub method: Method,
    pub cycle: Cycle,
    pub prepaid: bool,
    pub scope: Scope,
    pub building_ids: Vec<Uuid>,
    pub house_usage: Option<HouseUsage>,
    pub house_ids: Vec<Uuid>,
    /// the meters a metered or tiered item reads
    pub meter_category: Option<DeviceCategory>,
    pub effective_from: NaiveDate,
    pub effective_to: Option<NaiveDate>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// One step of a tiered price: usage up to `up_to` (the last tier has none) at `price`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    pub up_to: Option<Decimal>,
    pub price: Decimal,
}

/// 收费标准 a fee item's price from a day on.
#[derive(Debug, Clone)]
pub struct Price {
    pub fee_item_id: Uuid,
    pub effective_from: NaiveDate,
    /// per m² per month, per month, or per unit used (4 decimals)
    pub unit_price: Decimal,
    pub tiers: Vec<Tier>,
    pub formula: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a line is computed from.
#[derive(Debug, Clone, Default)]
pub struct Basis {
    pub building_area: Decimal,
    pub indoor_area: Option<Decimal>,
    /// metered usage in the period
    pub usage: Option<Decimal>,
    /// months billed (a quarterly item in one bill: 3; part of a month: days ÷ days in it)
    pub months: Decimal,
    pub days: Decimal,
    /// part of a cycle (days covered, days in the cycle): a time-based amount (area,
    /// fixed) is multiplied by the first and divided by the second last, so the fraction
    /// is exact before the one rounding
    pub prorate: Option<(Decimal, Decimal)>,
}

/// One computed line: how many of what at which price, and the amount rounded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub amount: Money,
}

/// Why a line cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("房屋没有套内面积")]
    NoIndoorArea,
    #[error("没有用量")]
    NoUsage,
    #[error("用量不能为负")]
    NegativeUsage,
    #[error("公式：{0}")]
    Formula(#[from] FormulaError),
    #[error("金额超出范围")]
    OutOfRange,
    #[error("计算结果为负数")]
    Negative,
}

impl AmountError {
    pub fn english(&self) -> String {
        match self {
            AmountError::NoIndoorArea => "The house has no indoor area".into(),
            AmountError::NoUsage => "No usage given".into(),
            AmountError::NegativeUsage => "Usage cannot be negative".into(),
            AmountError::Formula(e) => format!("Formula: {}", e.english()),
            AmountError::OutOfRange => "The amount is out of range".into(),
            AmountError::Negative => "The amount comes out negative".into(),
        }
    }

    /// The input a caller should change.
    pub fn field(&self) -> &'static str {
        match self {
            AmountError::NoUsage | AmountError::NegativeUsage | AmountError::OutOfRange => "usage",
            AmountError::NoIndoorArea | AmountError::Formula(FormulaError::Missing(_)) => "houseId",
            AmountError::Formula(_) | AmountError::Negative => "formula",
        }
    }
}

fn mul(a: Decimal, b: Decimal) -> Result<Decimal, AmountError> {
    a.checked_mul(b).ok_or(AmountError::OutOfRange)
}

/// The usage split over the tiers: Σ (the part of the usage within each tier × its price).
pub fn tiered(usage: Decimal, tiers: &[Tier]) -> Result<Decimal, AmountError> {
    let mut total = Decimal::ZERO;
    let mut floor = Decimal::ZERO;
    for t in tiers {
        let top = t.up_to.map_or(usage, |u| u.min(usage));
        if top > floor {
            total = total.checked_add(mul(top - floor, t.price)?).ok_or(AmountError::OutOfRange)?;
        }
        match t.up_to {
            Some(u) if u < usage => floor = u,
            _ => break,
        }
    }
    Ok(total)
}

/// The amount of one line by the item's method and price, rounded half-up to the fen once.
pub fn amount(method: Method, price: &Price, b: &Basis) -> Result<Line, AmountError> {
    let usage = || match b.usage {
        None => Err(AmountError::NoUsage),
        Some(u) if u.is_sign_negative() && !u.is_zero() => Err(AmountError::NegativeUsage),
        Some(u) => Ok(u),
    };
    let (quantity, raw) = match method {
        Method::BuildingArea => (b.building_area, mul(mul(b.building_area, price.unit_price)?, b.months)?),
        Method::IndoorArea => {
            let a = b.indoor_area.ok_or(AmountError::NoIndoorArea)?;
            (a, mul(mul(a, price.unit_price)?, b.months)?)
        }
        Method::Fixed => (b.months, mul(price.unit_price, b.months)?),
        Method::Metered => {
            let u = usage()?;
            (u, mul(u, price.unit_price)?)
        }
        Method::Tiered => {
            let u = usage()?;
            (u, tiered(u, &price.tiers)?)
        }
        Method::Formula => {
            let f = formula::parse(price.formula.as_deref().unwrap_or_default())?;
            let vars: &[(&str, Option<Decimal>)] = &[
                ("area", Some(b.building_area)),
                ("indoorArea", b.indoor_area),
                ("usage", b.usage),
                ("months", Some(b.months)),
                ("days", Some(b.days)),
                ("price", Some(price.unit_price)),
            ];
            let v = f.eval(&vars).map_err(|e| match e {
                FormulaError::Missing(m) if m == "usage" => AmountError::NoUsage,
                FormulaError::Missing(m) if m == "indoorArea" => AmountError::NoIndoorArea,
                e => AmountError::Formula(e),
            })?;
            (Decimal::ONE, v)
        }
    };
    let raw = match (method, b.prorate) {
        (Method::BuildingArea | Method::IndoorArea | Method::Fixed, Some((part, whole))) if !whole.is_zero() => {
            mul(raw, part)?.checked_div(whole).ok_or(AmountError::OutOfRange)?
        }
        _ => raw,
    };
    if raw.is_sign_negative() && !raw.is_zero() {
        return Err(AmountError::Negative);
    }
    let amount = Money::round(raw);
    if amount.yuan().abs() >= Decimal::from(1_000_000_000_000i64) {
        return Err(AmountError::OutOfRange);
    }
    let unit_price = match method {
        // the average price per unit, for the printed line
        Method::Tiered if !quantity.is_zero() => {
            (raw / quantity).round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        }
        Method::Tiered => Decimal::ZERO,
        Method::Formula => amount.yuan(),
        _ => price.unit_price,
    };
    Ok(Line { quantity, unit_price, amount })
}

#[cfg(test)]
mod tests {

    #[test]
    fn discounts_take_their_share() {
        let d = |kind, rate, n, m, houses: Vec<Uuid>| Discount {
            id: Uuid::nil(),
            project_id: Uuid::nil(),
            fee_item_id: Uuid::nil(),
            name: String::new(),
            kind,
            rate,
            pay_months: n,
            free_months: m,
            house_ids: houses,
            effective_from: NaiveDate::default(),
            effective_to: None,
            created_at: DateTime::default(),
        };
        let dec = |s: &str| s.parse::<Decimal>().unwrap();
        let pct = d(DiscountKind::Percentage, Some(dec("0.05")), None, None, vec![]);
        assert_eq!(pct.off(None, dec("200"), Some(Decimal::ONE)), Some(dec("10")));
        // 交10送2 on a year of 1200: two months free (200); not on a month
        let free = d(DiscountKind::FreeMonths, None, Some(10), Some(2), vec![]);
        assert_eq!(free.off(None, dec("1200"), Some(dec("12"))), Some(dec("200")));
        assert_eq!(free.off(None, dec("100"), Some(Decimal::ONE)), None);
        assert_eq!(free.off(None, dec("1200"), None), None);
        let only = d(DiscountKind::Percentage, Some(dec("0.5")), None, None, vec![Uuid::from_u128(7)]);
        assert_eq!(only.off(Some(Uuid::from_u128(8)), dec("10"), None), None);
        assert_eq!(only.off(Some(Uuid::from_u128(7)), dec("10"), None), Some(dec("5")));
    }

    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn price(unit: &str, tiers: Vec<Tier>, formula: Option<&str>) -> Price {
        Price {
            fee_item_id: Uuid::nil(),
            effective_from: NaiveDate::default(),
            unit_price: d(unit),
            tiers,
            formula: formula.map(str::to_owned),
            created_at: DateTime::default(),
        }
    }

    fn water() -> Vec<Tier> {
        // 成都居民阶梯水价 style: 0-15 at 2.93, 15-25 at 3.87, above at 6.68 (monthly)
        vec![
            Tier { up_to: Some(d("15")), price: d("2.93") },
            Tier { up_to: Some(d("25")), price: d("3.87") },
            Tier { up_to: None, price: d("6.68") },
        ]
    }

    #[test]
    fn lines_are_computed_exactly_and_rounded_half_up_once() {
        let b = Basis { building_area: d("89.37"), months: d("1"), ..Basis::default() };
        // 89.37 × 2.35 = 210.0195 → 210.02
        let l = amount(Method::BuildingArea, &price("2.35", vec![], None), &b).unwrap();
        assert_eq!((l.quantity, l.unit_price, l.amount.yuan()), (d("89.37"), d("2.35"), d("210.02")));
        // a quarter: 89.37 × 2.35 × 3 = 630.0585 → 630.06 (not 3 × 210.02 = 630.06 by luck only)
        let q = Basis { months: d("3"), ..b.clone() };
        assert_eq!(amount(Method::BuildingArea, &price("2.35", vec![], None), &q).unwrap().amount.yuan(), d("630.06"));
        // half a fen rounds away from zero: 10 × 0.1245 = 1.245 → 1.25
        let h = Basis { building_area: d("10"), months: d("1"), ..Basis::default() };
        assert_eq!(amount(Method::BuildingArea, &price("0.1245", vec![], None), &h).unwrap().amount.yuan(), d("1.25"));
        assert_eq!(amount(Method::IndoorArea, &price("2", vec![], None), &b), Err(AmountError::NoIndoorArea));
        assert_eq!(amount(Method::Fixed, &price("10", vec![], None), &q).unwrap().amount.yuan(), d("30"));
        assert_eq!(amount(Method::Metered, &price("0.52", vec![], None), &b), Err(AmountError::NoUsage));
    }

    #[test]
    fn part_of_a_cycle_is_charged_by_its_days_with_one_rounding() {
        // 17 of November's 30 days of 89.37 m² at 2.35: 210.0195 × 17 / 30 = 119.01105 → 119.01
        let b =
            Basis { building_area: d("89.37"), months: d("1"), prorate: Some((d("17"), d("30"))), ..Basis::default() };
        assert_eq!(amount(Method::BuildingArea, &price("2.35", vec![], None), &b).unwrap().amount.yuan(), d("119.01"));
        // 10 × 0.3 × 1 / 3 = 1 exactly, never 0.99999…
        let third =
            Basis { building_area: d("10"), months: d("1"), prorate: Some((d("1"), d("3"))), ..Basis::default() };
        assert_eq!(amount(Method::BuildingArea, &price("0.3", vec![], None), &third).unwrap().amount.yuan(), d("1"));
        // a fixed monthly fee for 15 of 31 days: 150 × 15 / 31 = 72.580… → 72.58
        let f = Basis { months: d("1"), prorate: Some((d("15"), d("31"))), ..Basis::default() };
        assert_eq!(amount(Method::Fixed, &price("150", vec![], None), &f).unwrap().amount.yuan(), d("72.58"));
        // usage is not prorated
        let u = Basis { usage: Some(d("10")), prorate: Some((d("15"), d("31"))), ..Basis::default() };
        assert_eq!(amount(Method::Metered, &price("2", vec![], None), &u).unwrap().amount.yuan(), d("20"));
    }

    #[test]
    fn tiers_charge_each_part_of_the_usage_at_its_price() {
        let p = price("0", water(), None);
        let line = |u: &str| amount(Method::Tiered, &p, &Basis { usage: Some(d(u)), ..Basis::default() }).unwrap();
        // 12 m³: all in the first tier
        assert_eq!(line("12").amount.yuan(), d("35.16"));
        // 15 exactly: the first tier full
        assert_eq!(line("15").amount.yuan(), d("43.95"));
        // 31.5: 15 × 2.93 + 10 × 3.87 + 6.5 × 6.68 = 43.95 + 38.70 + 43.42 = 126.07
        let l = line("31.5");
        assert_eq!(l.amount.yuan(), d("126.07"));
        assert_eq!(l.unit_price, d("4.0022"), "the average price per unit");
        assert_eq!(line("0").amount.yuan(), d("0"));
        let neg = amount(Method::Tiered, &p, &Basis { usage: Some(d("-1")), ..Basis::default() });
        assert_eq!(neg, Err(AmountError::NegativeUsage));
    }

    #[test]
    fn a_formula_names_the_line_s_variables() {
        let p = price("2.35", vec![], Some("area * price + ceil(days / 30) * 5"));
        let b = Basis { building_area: d("89.37"), days: d("45"), months: d("1.5"), ..Basis::default() };
        // 210.0195 + 2 × 5 = 220.0195 → 220.02
        assert_eq!(amount(Method::Formula, &p, &b).unwrap().amount.yuan(), d("220.02"));
        let bad = price("1", vec![], Some("area / (days - days)"));
        assert_eq!(amount(Method::Formula, &bad, &b), Err(AmountError::Formula(FormulaError::DivisionByZero)));
        // a formula naming a value the line lacks is refused, never computed as zero
        let by_use = price("1", vec![], Some("usage * price"));
        assert_eq!(amount(Method::Formula, &by_use, &b), Err(AmountError::NoUsage));
        let indoor = price("1", vec![], Some("indoorArea * price"));
        assert_eq!(amount(Method::Formula, &indoor, &b), Err(AmountError::NoIndoorArea));
        let credit = price("1", vec![], Some("area - 1000"));
        assert_eq!(amount(Method::Formula, &credit, &b), Err(AmountError::Negative));
    }
}

crate::text_enum! {
    /// 优惠方式
    pub enum DiscountKind {
        /// a share off every line of the item
        Percentage = "percentage",
        /// 交N送M: on a line carrying at least N + M months, M of them free
        FreeMonths = "free_months",
    }
}

/// 优惠 a discount of a fee item.
#[derive(Debug, Clone)]
pub struct Discount {
    pub id: Uuid,
    pub project_id: Uuid,
    pub fee_item_id: Uuid,
    pub name: String,
    pub kind: DiscountKind,
    pub rate: Option<Decimal>,
    pub pay_months: Option<i32>,
    pub free_months: Option<i32>,
    /// only these houses (empty: every house of the item)
    pub house_ids: Vec<Uuid>,
    pub effective_from: NaiveDate,
    pub effective_to: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
}

impl Discount {
    /// What it takes off a line of `amount` carrying `months` months, for `house`, before
    /// rounding; none when it does not apply.
    pub fn off(&self, house: Option<Uuid>, amount: Decimal, months: Option<Decimal>) -> Option<Decimal> {
        if !self.house_ids.is_empty() && !house.is_some_and(|h| self.house_ids.contains(&h)) {
            return None;
        }
        match self.kind {
            DiscountKind::Percentage => self.rate.map(|r| amount * r),
            DiscountKind::FreeMonths => {
                let (n, m) = (Decimal::from(self.pay_months?), Decimal::from(self.free_months?));
                (months? >= n + m).then(|| amount * m / (n + m))
            }
        }
    }
}
