//! Fee items: made and priced by finance (`fee:write`), read by those who bill or manage
//! the project (`fee:read`); every change audited in its transaction.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::formula;
use super::model::{Basis, Cycle, FeeItem, FeeKind, Line, Method, Payer, PayingResident, Price, Scope, Tier, amount};
use super::repo;
use crate::equipment::model::DeviceCategory;
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::org::estate::model::HouseUsage;
use crate::rbac::model::{Actor, Perm};

fn invalid(field: &'static str, zh: &'static str, en: &'static str) -> AppError {
    AppError::validation(field, Msg::new(zh, en))
}

/// A price as a client gives it.
#[derive(Debug, Clone, Default)]
pub struct PriceInput {
    pub effective_from: Option<NaiveDate>,
    pub unit_price: Option<Decimal>,
    pub tiers: Vec<Tier>,
    pub formula: Option<String>,
}

/// A new fee item with its first price.
#[derive(Debug, Clone)]
pub struct ItemInput {
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
    pub meter_category: Option<DeviceCategory>,
    pub effective_from: NaiveDate,
    pub effective_to: Option<NaiveDate>,
    pub price: PriceInput,
}

/// 单价: not negative, at most four decimals, within NUMERIC(12,4).
fn unit_price(field: &'static str, p: Decimal) -> AppResult<Decimal> {
    if p.is_sign_negative() && !p.is_zero() || p.normalize().scale() > 4 || p >= Decimal::from(100_000_000) {
        return Err(invalid(
            field,
            "单价应为0到1亿之间、最多四位小数",
            "A price within 0 to 1e8 with at most 4 decimals",
        ));
    }
    Ok(p.normalize())
}

/// A price checked against the item's method: tiers rise and end open; a formula parses.
fn checked_price(
    method: Method,
    item: Uuid,
    from: NaiveDate,
    i: &PriceInput,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<Price> {
    let unit = unit_price("unitPrice", i.unit_price.unwrap_or_default())?;
    match (method, i.unit_price) {
        (Method::Tiered, Some(_)) => {
            return Err(invalid(
                "unitPrice",
                "阶梯价按各档单价计费，不填单价",
                "A tiered item prices by its tiers only",
            ));
        }
        (Method::Tiered | Method::Formula, None) => {}
        (_, None) => return Err(invalid("unitPrice", "请填写单价", "Give the unit price")),
        _ => {}
    }
    let mut tiers = Vec::new();
    if method == Method::Tiered {
        if i.tiers.is_empty() || i.tiers.len() > 10 {
            return Err(invalid("tiers", "阶梯应为1到10档", "1 to 10 tiers"));
        }
        let mut floor = Decimal::ZERO;
        for (n, t) in i.tiers.iter().enumerate() {
            let last = n + 1 == i.tiers.len();
            match t.up_to {
                Some(u) if !last && u > floor && u.normalize().scale() <= 4 => floor = u,
                None if last => {}
                _ => {
                    return Err(invalid(
                        "tiers",
                        "阶梯上限应逐档递增，最后一档不设上限",
                        "Each tier's upTo rises; the last tier has none",
                    ));
                }
            }
            tiers.push(Tier { up_to: t.up_to.map(|u| u.normalize()), price: unit_price("tiers.price", t.price)? });
        }
    } else if !i.tiers.is_empty() {
        return Err(invalid("tiers", "只有阶梯价有阶梯", "Only a tiered item has tiers"));
    }
    let formula = match (method, i.formula.as_deref()) {
        (Method::Formula, Some(f)) => {
            let e = formula::parse(f)
                .map_err(|e| AppError::validation("formula", Msg::owned(e.to_string(), e.english())))?;
            if e.uses("price") && i.unit_price.is_none() {
                return Err(invalid(
                    "unitPrice",
                    "公式用到单价(price)，请填写单价",
                    "The formula uses price: give unitPrice",
                ));
            }
            Some(f.trim().to_owned())
        }
        (Method::Formula, None) => return Err(invalid("formula", "请填写计费公式", "Give the formula")),
        (_, Some(_)) => {
            return Err(invalid("formula", "只有自定义公式的项目有公式", "Only a formula item has a formula"));
        }
        (_, None) => None,
    };
    Ok(Price { fee_item_id: item, effective_from: from, unit_price: unit, tiers, formula, created_at: now })
}

/// 新建费用项目 (`fee:write` on the project) with its first price, from `effectiveFrom`.
pub async fn create_item(state: &AppState, actor: &Actor, retry: &Retry, i: ItemInput) -> AppResult<Uuid> {
    // every id is the caller's before anything else is said about the input (lists capped
    // and deduplicated first: one lookup per distinct id)
    crate::org::company::service::project(state, actor, Perm::FeeWrite, i.project_id).await?;
    let mut i = i;
    if i.building_ids.len() > 200 || i.house_ids.len() > 5000 {
        return Err(invalid("scope", "最多200个楼栋、5000户", "At most 200 buildings and 5000 houses"));
    }
    for list in [&mut i.building_ids, &mut i.house_ids] {
        list.sort();
        list.dedup();
    }
    for b in &i.building_ids {
        let building = crate::org::estate::service::building(state, actor, *b).await?;
        if building.project_id != i.project_id {
            return Err(invalid("buildingIds", "楼栋不属于该项目", "A building is not in this project"));
        }
    }
    for h in &i.house_ids {
        let house = crate::org::estate::service::house(state, actor, *h).await?;
        if house.project_id != i.project_id {
            return Err(invalid("houseIds", "房屋不属于该项目", "A house is not in this project"));
        }
    }
    let name = types::text("name", &i.name, 40)?;
    let ok_scope = match i.scope {
        Scope::All => i.building_ids.is_empty() && i.house_ids.is_empty() && i.house_usage.is_none(),
        Scope::Buildings => !i.building_ids.is_empty() && i.house_ids.is_empty() && i.house_usage.is_none(),
        Scope::Usage => i.house_usage.is_some() && i.building_ids.is_empty() && i.house_ids.is_empty(),
        Scope::Houses => !i.house_ids.is_empty() && i.building_ids.is_empty() && i.house_usage.is_none(),
    };
    if !ok_scope {
        return Err(invalid(
            "scope",
            "适用范围与所列楼栋、房屋或用途不符",
            "The scope does not match the buildings, houses or usage given",
        ));
    }
    if i.payer == Payer::ParkingSpace && i.scope != Scope::All {
        return Err(invalid("scope", "车位收费适用于项目全部车位", "A parking fee applies to all spaces"));
    }
    let metered = matches!(i.method, Method::Metered | Method::Tiered);
    match i.meter_category {
        Some(c) if metered && DeviceCategory::METERS.contains(&c) => {}
        None if !metered => {}
        _ => {
            return Err(invalid(
                "meterCategory",
                "按用量计费的项目须指定表计类别（水表、电表、燃气表），其他项目不指定",
                "A metered item names its meter category (water, electricity, gas meter); others none",
            ));
        }
    }
    if metered && i.cycle != Cycle::Monthly {
        return Err(invalid("cycle", "按用量计费的项目按月收费", "A metered item is billed monthly"));
    }
    if metered && i.payer == Payer::ParkingSpace {
        return Err(invalid("method", "车位不按表计收费", "Parking spaces are not metered"));
    }
    if matches!(i.method, Method::BuildingArea | Method::IndoorArea) && i.payer == Payer::ParkingSpace {
        return Err(invalid("method", "车位按固定金额或公式收费", "Parking spaces pay a fixed amount or a formula"));
    }
    if i.effective_to.is_some_and(|to| to < i.effective_from) {
        return Err(invalid("effectiveTo", "截止日期不能早于起始日期", "effectiveTo is before effectiveFrom"));
    }
    let now = state.clock.now();
    let id = Uuid::now_v7();
    let from = i.price.effective_from.unwrap_or(i.effective_from);
    if from != i.effective_from {
        return Err(invalid(
            "price.effectiveFrom",
            "首个收费标准自项目生效日起",
            "The first price starts with the item",
        ));
    }
    let price = checked_price(i.method, id, from, &i.price, now)?;
    let item = FeeItem {
        id,
        company_id: actor.company_id,
        project_id: i.project_id,
        name,
        kind: i.kind,
        payer: i.payer,
        paying_resident: i.paying_resident,
        method: i.method,
        cycle: i.cycle,
        prepaid: i.prepaid,
        scope: i.scope,
        building_ids: i.building_ids,
        house_usage: i.house_usage,
        house_ids: i.house_ids,
        meter_category: i.meter_category,
        effective_from: i.effective_from,
        effective_to: i.effective_to,
        active: true,
        created_at: now,
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    if repo::name_taken(&mut *tx, item.project_id, &item.name).await? {
        return Err(AppError::conflict(
            "name",
            Msg::new("该项目已有同名收费项目", "The project has an item of this name"),
        ));
    }
    repo::insert_item(&mut tx, &item).await?;
    repo::upsert_price(&mut tx, &price, Some(actor.user_id)).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "fee_item.create",
        "fee_item",
        Some(item.id),
        serde_json::json!({ "name": item.name, "method": item.method, "unitPrice": price.unit_price.to_string(),
            "tiers": price.tiers, "formula": price.formula, "from": from }),
    )
    .await?;
    tx.commit(&item.id).await?;
    Ok(item.id)
}

/// 调整收费标准 (`fee:write`): a price from a day on (replacing one of the same day);
/// bills already issued keep the price they were issued with.
pub async fn set_price(state: &AppState, actor: &Actor, retry: &Retry, item: Uuid, i: PriceInput) -> AppResult<Uuid> {
    let f = writable(state, actor, item).await?;
    let from =
        i.effective_from.ok_or_else(|| invalid("effectiveFrom", "请填写生效日期", "Give the day it takes effect"))?;
    if from < f.effective_from || f.effective_to.is_some_and(|to| from > to) {
        return Err(invalid("effectiveFrom", "生效日期应在项目有效期内", "The day is outside the item's dates"));
    }
    let now = state.clock.now();
    // past periods keep the prices they had: a change takes effect today at the earliest
    if from < now.with_timezone(&crate::kit::clock::BUSINESS_TZ).date_naive() {
        return Err(invalid(
            "effectiveFrom",
            "新价格最早自今日起生效",
            "A new price takes effect today at the earliest",
        ));
    }
    let price = checked_price(f.method, f.id, from, &i, now)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    // a price of the same day is replaced: the audit keeps what it was
    let replaced = repo::price_on(&mut *tx, f.id, from).await?.filter(|p| p.effective_from == from);
    repo::upsert_price(&mut tx, &price, Some(actor.user_id)).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "fee_item.price",
        "fee_item",
        Some(f.id),
        serde_json::json!({ "unitPrice": price.unit_price.to_string(), "tiers": price.tiers,
            "formula": price.formula, "from": from,
            "replaced": replaced.map(|p| serde_json::json!({ "unitPrice": p.unit_price.to_string(),
                "tiers": p.tiers, "formula": p.formula })) }),
    )
    .await?;
    tx.commit(&f.id).await?;
    Ok(f.id)
}

/// An item the caller may price: one it can see (else NOT_FOUND), with `fee:write` on its
/// project (else FORBIDDEN).
async fn writable(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<FeeItem> {
    let f = item(state, actor, id).await?;
    actor.require_project(Perm::FeeWrite, f.project_id)?;
    Ok(f)
}

/// One item (`fee:read` or `fee:write` on its project).
pub async fn item(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<FeeItem> {
    let f = repo::get_item(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("feeItem"))?;
    if !actor.reaches(&[Perm::FeeRead, Perm::FeeWrite], f.project_id) {
        return Err(AppError::not_found("feeItem"));
    }
    Ok(f)
}

/// A project's items in creation order.
pub async fn items(
    state: &AppState,
    actor: &Actor,
    project: Uuid,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<FeeItem>> {
    // the project is the caller's company's before anything is said of the caller's rights
    crate::org::company::service::project_of_company(state, actor.company_id, project).await?;
    if !actor.reaches(&[Perm::FeeRead, Perm::FeeWrite], project) {
        return Err(AppError::forbidden());
    }
    Ok(repo::items(&state.db, actor.company_id, project, after, limit as i64).await?)
}

/// The prices of items the caller has been shown, each item's oldest first.
pub async fn prices_of(state: &AppState, items: &[Uuid]) -> AppResult<Vec<Price>> {
    Ok(repo::prices_of(&state.db, items).await?)
}

/// 试算 what the item charges a house on a day, for the usage, months and days given: the
/// same computation a bill line makes (for finance to check a price or a formula).
/// What a quote is for besides the house: usage, and the months (1 when not given) and
/// days (30 when not given) billed.
#[derive(Debug, Clone, Default)]
pub struct QuoteBasis {
    pub usage: Option<Decimal>,
    pub months: Option<Decimal>,
    pub days: Option<Decimal>,
}

pub async fn quote(
    state: &AppState,
    actor: &Actor,
    item: Uuid,
    house: Uuid,
    on: NaiveDate,
    q: QuoteBasis,
) -> AppResult<(Price, Line)> {
    let basis = Basis {
        usage: q.usage,
        months: q.months.unwrap_or(Decimal::ONE),
        days: q.days.unwrap_or(Decimal::from(30)),
        ..Basis::default()
    };
    let f = self::item(state, actor, item).await?;
    let h = crate::org::estate::service::house(state, actor, house).await?;
    if h.project_id != f.project_id {
        return Err(invalid("houseId", "房屋不属于该收费项目的项目", "The house is not in the item's project"));
    }
    if f.payer != Payer::House {
        return Err(invalid(
            "feeItemId",
            "该项目按车位收费，不按房屋试算",
            "The item bills parking spaces, not houses",
        ));
    }
    let covered = match f.scope {
        Scope::All => true,
        Scope::Buildings => f.building_ids.contains(&h.building_id),
        Scope::Usage => f.house_usage == Some(h.usage),
        Scope::Houses => f.house_ids.contains(&h.id),
    };
    if !covered {
        return Err(invalid("houseId", "该收费项目不适用于这户", "The item does not apply to this house"));
    }
    if !f.active || on < f.effective_from || f.effective_to.is_some_and(|to| on > to) {
        return Err(invalid("on", "该日期收费项目未生效", "The item is not in force on that day"));
    }
    let bounded = |v: Decimal, max: i64| !v.is_sign_negative() && v <= Decimal::from(max) && v.normalize().scale() <= 4;
    if !bounded(basis.months, 120) {
        return Err(invalid("months", "月数应在0到120之间，最多四位小数", "months within 0 to 120, up to 4 decimals"));
    }
    if !bounded(basis.days, 3660) {
        return Err(invalid("days", "天数应在0到3660之间，最多四位小数", "days within 0 to 3660, up to 4 decimals"));
    }
    if basis.usage.is_some_and(|u| u.normalize().scale() > 4 || u.abs() > Decimal::from(1_000_000_000)) {
        return Err(invalid("usage", "用量最多四位小数、不超过10亿", "usage up to 1e9 with up to 4 decimals"));
    }
    let price = repo::price_on(&state.db, f.id, on)
        .await?
        .ok_or_else(|| invalid("on", "该日期没有生效的收费标准", "No price in force on that day"))?;
    let b = Basis { building_area: h.building_area, indoor_area: h.indoor_area, ..basis };
    let line = amount(f.method, &price, &b)
        .map_err(|e| AppError::validation(e.field(), Msg::owned(e.to_string(), e.english())))?;
    Ok((price, line))
}

/// A project's active items with all their prices (oldest first), for a bill run (no
/// caller check: the run checked the project).
pub async fn billable(state: &AppState, project: Uuid) -> AppResult<Vec<(FeeItem, Vec<Price>)>> {
    let items = repo::active_items(&state.db, project).await?;
    let ids: Vec<Uuid> = items.iter().map(|i| i.id).collect();
    let mut prices = {
        let mut m: std::collections::HashMap<Uuid, Vec<Price>> = std::collections::HashMap::new();
        for p in repo::prices_of(&state.db, &ids).await? {
            m.entry(p.fee_item_id).or_default().push(p);
        }
        m
    };
    Ok(items
        .into_iter()
        .map(|i| {
            let p = prices.remove(&i.id).unwrap_or_default();
            (i, p)
        })
        .collect())
}

/// A discount as finance sets it.
#[derive(Debug, Clone)]
pub struct DiscountInput {
    pub fee_item_id: Uuid,
    pub name: String,
    pub kind: super::model::DiscountKind,
    pub rate: Option<Decimal>,
    pub pay_months: Option<i32>,
    pub free_months: Option<i32>,
    pub house_ids: Vec<Uuid>,
    pub effective_from: NaiveDate,
    pub effective_to: Option<NaiveDate>,
}

/// 设置优惠 (`fee:write` on the item's project): a percentage off, or 交N送M, for every
/// house of the item or listed ones, from a month (until one); bill runs of those months
/// take it off as the item's discount line.
pub async fn add_discount(state: &AppState, actor: &Actor, retry: &Retry, i: DiscountInput) -> AppResult<Uuid> {
    use super::model::{Discount, DiscountKind};
    let f = item(state, actor, i.fee_item_id).await?;
    let mut houses = i.house_ids.clone();
    houses.sort();
    houses.dedup();
    if houses.len() > 5000 {
        return Err(AppError::validation("houseIds", Msg::new("最多5000户", "At most 5000 houses")));
    }
    for h in &houses {
        let house = crate::org::estate::service::house(state, actor, *h).await?;
        if house.project_id != f.project_id {
            return Err(AppError::validation(
                "houseIds",
                Msg::new("房屋不属于该收费项目的项目", "A house of another project"),
            ));
        }
    }
    actor.require_project(Perm::FeeWrite, f.project_id)?;
    let name = types::text("name", &i.name, 40)?;
    let (rate, pay, free) = match i.kind {
        DiscountKind::Percentage => match i.rate {
            Some(r) if r > Decimal::ZERO && r <= Decimal::ONE && r.normalize().scale() <= 4 => (Some(r), None, None),
            _ => {
                return Err(AppError::validation(
                    "rate",
                    Msg::new("优惠比例应在0到1之间、最多四位小数", "rate above 0, at most 1, up to 4 decimals"),
                ));
            }
        },
        DiscountKind::FreeMonths => match (i.pay_months, i.free_months) {
            (Some(n), Some(m)) if (1..=36).contains(&n) && (1..=12).contains(&m) => (None, Some(n), Some(m)),
            _ => {
                return Err(AppError::validation(
                    "payMonths",
                    Msg::new("交N送M：N为1到36，M为1到12", "payMonths 1 to 36 and freeMonths 1 to 12"),
                ));
            }
        },
    };
    if i.effective_from.day0() != 0 || i.effective_to.is_some_and(|t| t.day0() != 0 || t < i.effective_from) {
        return Err(AppError::validation(
            "effectiveFrom",
            Msg::new("起止月份以当月1日表示，结束不早于开始", "Months are first days; the end is not before the start"),
        ));
    }
    let now = state.clock.now();
    let d = Discount {
        id: Uuid::now_v7(),
        project_id: f.project_id,
        fee_item_id: f.id,
        name,
        kind: i.kind,
        rate,
        pay_months: pay,
        free_months: free,
        house_ids: houses,
        effective_from: i.effective_from,
        effective_to: i.effective_to,
        created_at: now,
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::insert_discount(&mut tx, actor.company_id, actor.user_id, &d).await?;
    audit::record(
        &mut tx,
        now,
        actor,
        "fee_discount.add",
        "fee_item",
        Some(f.id),
        serde_json::json!({ "discountId": d.id, "kind": d.kind, "rate": d.rate.map(|r| r.to_string()),
                            "payMonths": d.pay_months, "freeMonths": d.free_months, "houses": d.house_ids.len(),
                            "from": d.effective_from, "to": d.effective_to }),
    )
    .await?;
    tx.commit(&d.id).await?;
    Ok(d.id)
}

/// A project's discounts (`fee:read`).
pub async fn discounts(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Vec<super::model::Discount>> {
    crate::org::company::service::project_of_company(state, actor.company_id, project).await?;
    if !actor.reaches(&[Perm::FeeRead, Perm::FeeWrite], project) {
        return Err(AppError::forbidden());
    }
    Ok(repo::discounts(&state.db, project, None).await?)
}

/// The discounts of a month, for a bill run (no caller check: the run checked the project).
pub async fn discounts_of_month(
    state: &AppState,
    project: Uuid,
    month: NaiveDate,
) -> AppResult<Vec<super::model::Discount>> {
    Ok(repo::discounts(&state.db, project, Some(month)).await?)
}
