//! 费用项目设置 over GraphQL: fee items, their prices, and a quote for one house.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model::{self, Tier};
use super::service::{self, ItemInput, PriceInput, QuoteBasis};
use crate::equipment::graphql::DeviceCategory;
use crate::kit::gql::{Conn, StateExt, group_by, load_one, parse_id, to_id};
use crate::kit::pagination::Page;
use crate::kit::state::AppState;
use crate::org::estate::graphql::HouseUsage;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 费用类型 what a fee is for
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::FeeKind")]
pub enum FeeKind {
    /// 物业费
    Property,
    /// 水费
    Water,
    /// 电费
    Electricity,
    /// 燃气费
    Gas,
    /// 停车费
    Parking,
    /// 垃圾清运费
    Garbage,
    /// 公摊 shared utilities
    Shared,
    /// 其他
    Other,
}

/// 计费对象 what is billed
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Payer")]
pub enum FeePayer {
    /// a house
    House,
    /// a parking space
    ParkingSpace,
}

/// 缴费人 which resident of a house pays
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::PayingResident")]
pub enum PayingResident {
    /// the owner (default)
    Owner,
    /// the tenant, where there is one (else the owner)
    Tenant,
}

/// 计费方式 how a line's amount is computed (rounded half-up to the fen once per line)
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Method")]
pub enum FeeMethod {
    /// building area × unit price (per m² per month) × months
    BuildingArea,
    /// indoor area × unit price × months
    IndoorArea,
    /// unit price (per month) × months
    Fixed,
    /// meter usage × unit price
    Metered,
    /// 阶梯价: each part of the usage at its tier's price
    Tiered,
    /// a formula over area, indoorArea, usage, months, days and price
    Formula,
}

/// 收费周期 how often it is billed
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Cycle")]
pub enum FeeCycle {
    /// every month
    Monthly,
    /// every quarter
    Quarterly,
    /// every year (in the bill of the year's first month)
    Yearly,
    /// once
    OneOff,
}

/// 适用范围 which houses an item applies to
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Scope")]
pub enum FeeScope {
    /// every house (or space) of the project
    All,
    /// the houses of `buildingIds`
    Buildings,
    /// the houses of `houseUsage`
    Usage,
    /// the houses of `houseIds`
    Houses,
}

/// One step of a tiered price.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "FeeTierInput")]
pub struct FeeTier {
    /// usage up to this (null on the last, open tier)
    pub up_to: Option<Decimal>,
    /// the price per unit within the tier
    pub price: Decimal,
}

/// 收费标准 a fee item's price from a day on.
#[derive(SimpleObject)]
pub struct FeePrice {
    /// in force from this day (Shanghai) until the next price's
    pub effective_from: NaiveDate,
    /// per m² per month, per month, or per unit (4 decimals)
    pub unit_price: Decimal,
    /// the tiers of a tiered item
    pub tiers: Vec<FeeTier>,
    /// the formula of a formula item
    pub formula: Option<String>,
    /// when it was set
    pub created_at: DateTime<Utc>,
}

impl From<model::Price> for FeePrice {
    fn from(p: model::Price) -> Self {
        FeePrice {
            effective_from: p.effective_from,
            unit_price: p.unit_price,
            tiers: p.tiers.into_iter().map(|t| FeeTier { up_to: t.up_to, price: t.price }).collect(),
            formula: p.formula,
            created_at: p.created_at,
        }
    }
}

/// 费用项目 one thing a project charges for.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct FeeItem {
    /// the item's id
    pub id: ID,
    /// its project
    pub project_id: ID,
    /// unique in the project, e.g. 物业费
    pub name: String,
    /// what it is for
    pub kind: FeeKind,
    /// a house or a parking space is billed
    pub payer: FeePayer,
    /// which resident of a house pays
    pub paying_resident: PayingResident,
    /// how a line's amount is computed
    pub method: FeeMethod,
    /// how often it is billed
    pub cycle: FeeCycle,
    /// paid ahead (预收) rather than after
    pub prepaid: bool,
    /// which houses it applies to
    pub scope: FeeScope,
    /// with BUILDINGS
    pub building_ids: Vec<ID>,
    /// with USAGE
    pub house_usage: Option<HouseUsage>,
    /// with HOUSES
    pub house_ids: Vec<ID>,
    /// the meters a metered or tiered item reads
    pub meter_category: Option<DeviceCategory>,
    /// billed from this day
    pub effective_from: NaiveDate,
    /// until this day (open when null)
    pub effective_to: Option<NaiveDate>,
    /// false: no longer billed
    pub active: bool,
    /// when it was made
    pub created_at: DateTime<Utc>,
}

impl From<model::FeeItem> for FeeItem {
    fn from(f: model::FeeItem) -> Self {
        FeeItem {
            id: to_id(f.id),
            project_id: to_id(f.project_id),
            name: f.name,
            kind: f.kind.into(),
            payer: f.payer.into(),
            paying_resident: f.paying_resident.into(),
            method: f.method.into(),
            cycle: f.cycle.into(),
            prepaid: f.prepaid,
            scope: f.scope.into(),
            building_ids: f.building_ids.into_iter().map(to_id).collect(),
            house_usage: f.house_usage.map(Into::into),
            house_ids: f.house_ids.into_iter().map(to_id).collect(),
            meter_category: f.meter_category.map(Into::into),
            effective_from: f.effective_from,
            effective_to: f.effective_to,
            active: f.active,
            created_at: f.created_at,
        }
    }
}

/// The prices of the items of one response, in one query.
pub struct PriceLoader(AppState);

impl From<AppState> for PriceLoader {
    fn from(s: AppState) -> Self {
        PriceLoader(s)
    }
}

impl Loader<Uuid> for PriceLoader {
    type Value = Vec<model::Price>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::prices_of(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |p| p.fee_item_id))
    }
}

#[ComplexObject]
impl FeeItem {
    /// 收费标准 every price, oldest first
    async fn prices(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FeePrice>> {
        let id = parse_id("id", &self.id)?;
        Ok(load_one::<PriceLoader>(ctx, id).await?.unwrap_or_default().into_iter().map(FeePrice::from).collect())
    }
}

/// What `feeQuote` computed.
#[derive(SimpleObject)]
pub struct FeeQuote {
    /// the price in force on the day
    pub price: FeePrice,
    /// m², months or units
    pub quantity: Decimal,
    /// the price per unit (for a tiered item the average; for a formula the amount)
    pub unit_price: Decimal,
    /// the line's amount, rounded half-up to the fen
    pub amount: Decimal,
}

async fn load_item(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<FeeItem> {
    let actor = ctx.actor()?;
    Ok(service::item(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The fee item a mutation made or priced.
    FeeItemPayload, fee_item: FeeItem, load_item, "the item as it is now"
);

#[derive(Default)]
pub struct FeeQuery;

#[Object]
impl FeeQuery {
    /// A project's fee items in creation order (`fee:read`).
    async fn fee_items(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "the project")] project_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<FeeItem>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let p = parse_id("projectId", &project_id)?;
        let rows = service::items(ctx.state(), &actor, p, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| r.id, FeeItem::from))
    }

    /// One fee item (`fee:read` on its project).
    async fn fee_item(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<FeeItem> {
        load_item(ctx, parse_id("id", &id)?).await
    }

    /// 试算: what the item charges a house, by the price in force on `on`, for the usage,
    /// months and days given — the computation a bill line makes (`fee:read`).
    #[allow(clippy::too_many_arguments)]
    async fn fee_quote(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "the fee item")] fee_item_id: ID,
        #[graphql(desc = "a house of its project")] house_id: ID,
        #[graphql(desc = "the day whose price applies")] on: NaiveDate,
        #[graphql(desc = "metered usage (metered, tiered, or a formula naming usage)")] usage: Option<Decimal>,
        #[graphql(desc = "months billed (0-120; 1 when not given)")] months: Option<Decimal>,
        #[graphql(desc = "days billed (30 when not given)")] days: Option<Decimal>,
    ) -> async_graphql::Result<FeeQuote> {
        let actor = ctx.actor()?;
        let basis = QuoteBasis { usage, months, days };
        let (price, line) = service::quote(
            ctx.state(),
            &actor,
            parse_id("feeItemId", &fee_item_id)?,
            parse_id("houseId", &house_id)?,
            on,
            basis,
        )
        .await?;
        Ok(FeeQuote {
            price: price.into(),
            quantity: line.quantity,
            unit_price: line.unit_price,
            amount: line.amount.yuan(),
        })
    }
}

/// Which houses a new item applies to.
#[derive(InputObject)]
pub struct FeeScopeInput {
    /// ALL by default
    #[graphql(default_with = "FeeScope::All")]
    pub scope: FeeScope,
    /// with BUILDINGS: buildings of the project
    #[graphql(default)]
    pub building_ids: Vec<ID>,
    /// with USAGE
    pub house_usage: Option<HouseUsage>,
    /// with HOUSES: houses of the project (up to 5000)
    #[graphql(default)]
    pub house_ids: Vec<ID>,
}

/// A price: `unitPrice` (not for a tiered item), `tiers` (tiered), `formula` (formula).
#[derive(InputObject)]
pub struct FeePriceInput {
    /// per m² per month, per month, or per unit; 0 to 1e8 with at most 4 decimals
    pub unit_price: Option<Decimal>,
    /// 1 to 10 tiers, each `upTo` higher than the last, the last one open
    #[graphql(default)]
    pub tiers: Vec<FeeTier>,
    /// up to 200 characters over area, indoorArea, usage, months, days, price with
    /// + - * / ( ) min max ceil floor
    pub formula: Option<String>,
}

/// A new fee item with its first price (in force from `effectiveFrom`).
#[derive(InputObject)]
pub struct CreateFeeItemInput {
    /// the project
    pub project_id: ID,
    /// unique in the project, up to 40 characters
    pub name: String,
    /// what it is for
    pub kind: FeeKind,
    /// HOUSE by default
    #[graphql(default_with = "FeePayer::House")]
    pub payer: FeePayer,
    /// OWNER by default
    #[graphql(default_with = "PayingResident::Owner")]
    pub paying_resident: PayingResident,
    /// how the amount is computed
    pub method: FeeMethod,
    /// how often it is billed
    pub cycle: FeeCycle,
    /// paid ahead (预收)
    #[graphql(default)]
    pub prepaid: bool,
    /// which houses (all by default)
    pub applies_to: Option<FeeScopeInput>,
    /// the meters a METERED or TIERED item reads (WATER_METER, ELECTRICITY_METER, GAS_METER)
    pub meter_category: Option<DeviceCategory>,
    /// billed from this day
    pub effective_from: NaiveDate,
    /// until this day
    pub effective_to: Option<NaiveDate>,
    /// the first price
    pub price: FeePriceInput,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A new price of an item from a day on.
#[derive(InputObject)]
pub struct SetFeePriceInput {
    /// the item
    pub fee_item_id: ID,
    /// in force from this day (within the item's dates); a price of the same day is replaced
    pub effective_from: NaiveDate,
    /// the price
    pub price: FeePriceInput,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

fn price_input(p: FeePriceInput, from: Option<NaiveDate>) -> PriceInput {
    PriceInput {
        effective_from: from,
        unit_price: p.unit_price,
        tiers: p.tiers.into_iter().map(|t| Tier { up_to: t.up_to, price: t.price }).collect(),
        formula: p.formula,
    }
}

fn ids(field: &'static str, v: &[ID]) -> async_graphql::Result<Vec<Uuid>> {
    v.iter().map(|i| parse_id(field, i).map_err(Into::into)).collect()
}

#[derive(Default)]
pub struct FeeMutation;

#[Object]
impl FeeMutation {
    /// 新建费用项目 (`fee:write` on the project).
    #[graphql(guard = "Perm::FeeWrite")]
    async fn create_fee_item(
        &self,
        ctx: &Context<'_>,
        input: CreateFeeItemInput,
    ) -> async_graphql::Result<FeeItemPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let scope = input.applies_to.unwrap_or(FeeScopeInput {
            scope: FeeScope::All,
            building_ids: Vec::new(),
            house_usage: None,
            house_ids: Vec::new(),
        });
        let i = ItemInput {
            project_id: parse_id("projectId", &input.project_id)?,
            name: input.name,
            kind: input.kind.into(),
            payer: input.payer.into(),
            paying_resident: input.paying_resident.into(),
            method: input.method.into(),
            cycle: input.cycle.into(),
            prepaid: input.prepaid,
            scope: scope.scope.into(),
            building_ids: ids("buildingIds", &scope.building_ids)?,
            house_usage: scope.house_usage.map(Into::into),
            house_ids: ids("houseIds", &scope.house_ids)?,
            meter_category: input.meter_category.map(Into::into),
            effective_from: input.effective_from,
            effective_to: input.effective_to,
            price: price_input(input.price, None),
        };
        let id = service::create_item(ctx.state(), &actor, &retry, i).await?;
        Ok(FeeItemPayload::new(input.client_mutation_id, id))
    }

    /// 调整收费标准 (`fee:write`): a new price from a day on; bills already issued keep
    /// the price they were issued with.
    #[graphql(guard = "Perm::FeeWrite")]
    async fn set_fee_price(&self, ctx: &Context<'_>, input: SetFeePriceInput) -> async_graphql::Result<FeeItemPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let item = parse_id("feeItemId", &input.fee_item_id)?;
        let id =
            service::set_price(ctx.state(), &actor, &retry, item, price_input(input.price, Some(input.effective_from)))
                .await?;
        Ok(FeeItemPayload::new(input.client_mutation_id, id))
    }
}

/// 优惠方式
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::DiscountKind")]
pub enum DiscountKind {
    /// a share off every line of the item
    Percentage,
    /// 交N送M: on a line carrying at least N + M months (quarterly, yearly items), M free
    FreeMonths,
}

/// 优惠 a discount of a fee item.
#[derive(SimpleObject)]
pub struct FeeDiscount {
    /// the discount
    pub id: ID,
    /// its fee item
    pub fee_item_id: ID,
    /// its name on bills
    pub name: String,
    /// percentage or free months
    pub kind: DiscountKind,
    /// the share off (PERCENTAGE)
    pub rate: Option<Decimal>,
    /// N of 交N送M
    pub pay_months: Option<i32>,
    /// M of 交N送M
    pub free_months: Option<i32>,
    /// only these houses (empty: every house of the item)
    pub house_ids: Vec<ID>,
    /// the first month
    pub effective_from: NaiveDate,
    /// the last month (none: open)
    pub effective_to: Option<NaiveDate>,
}

impl From<model::Discount> for FeeDiscount {
    fn from(d: model::Discount) -> Self {
        FeeDiscount {
            id: to_id(d.id),
            fee_item_id: to_id(d.fee_item_id),
            name: d.name,
            kind: d.kind.into(),
            rate: d.rate,
            pay_months: d.pay_months,
            free_months: d.free_months,
            house_ids: d.house_ids.into_iter().map(to_id).collect(),
            effective_from: d.effective_from,
            effective_to: d.effective_to,
        }
    }
}

/// A discount to set.
#[derive(InputObject)]
pub struct AddFeeDiscountInput {
    /// the fee item
    pub fee_item_id: ID,
    /// its name on bills (up to 40 characters), e.g. 年缴优惠
    pub name: String,
    /// PERCENTAGE (give rate) or FREE_MONTHS (give payMonths and freeMonths)
    pub kind: DiscountKind,
    /// the share off, above 0 and at most 1 (0.05 = 5% off)
    pub rate: Option<Decimal>,
    /// N of 交N送M (1 to 36)
    pub pay_months: Option<i32>,
    /// M of 交N送M (1 to 12)
    pub free_months: Option<i32>,
    /// only these houses of the item's project (none: every house of the item)
    #[graphql(default)]
    pub house_ids: Vec<ID>,
    /// the first month (its first day)
    pub effective_from: NaiveDate,
    /// the last month (its first day; none: open)
    pub effective_to: Option<NaiveDate>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What `addFeeDiscount` set.
#[derive(SimpleObject)]
pub struct AddFeeDiscountPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the discount
    pub discount_id: ID,
}

#[derive(Default)]
pub struct DiscountQuery;

#[Object]
impl DiscountQuery {
    /// 优惠 a project's discounts, oldest first (`fee:read`).
    async fn fee_discounts(&self, ctx: &Context<'_>, project_id: ID) -> async_graphql::Result<Vec<FeeDiscount>> {
        let actor = ctx.actor()?;
        let list = service::discounts(ctx.state(), &actor, parse_id("projectId", &project_id)?).await?;
        Ok(list.into_iter().map(FeeDiscount::from).collect())
    }
}

#[derive(Default)]
pub struct DiscountMutation;

#[Object]
impl DiscountMutation {
    /// 设置优惠 (`fee:write`): a percentage off a fee item, or 交N送M on lines carrying at
    /// least N + M months, for every house of the item or listed ones, from a month on;
    /// bill runs of those months take it off as the item's discount line.
    #[graphql(guard = "Perm::FeeWrite")]
    async fn add_fee_discount(
        &self,
        ctx: &Context<'_>,
        input: AddFeeDiscountInput,
    ) -> async_graphql::Result<AddFeeDiscountPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = service::DiscountInput {
            fee_item_id: parse_id("feeItemId", &input.fee_item_id)?,
            name: input.name,
            kind: input.kind.into(),
            rate: input.rate,
            pay_months: input.pay_months,
            free_months: input.free_months,
            house_ids: crate::kit::gql::parse_ids("houseIds", &input.house_ids)?,
            effective_from: input.effective_from,
            effective_to: input.effective_to,
        };
        let id = service::add_discount(ctx.state(), &actor, &retry, i).await?;
        Ok(AddFeeDiscountPayload { client_mutation_id: input.client_mutation_id, discount_id: to_id(id) })
    }
}
