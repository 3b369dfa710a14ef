//! 预存 over GraphQL: top-ups at the counter and a house's balance with its entries.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model;
use super::service::{self, TopUpInput};
use crate::billing::bills::graphql::PaymentMethod;
use crate::kit::gql::{Conn, StateExt, parse_id, to_id};
use crate::kit::money::Money;
use crate::kit::pagination::Page;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 预存流水类型
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::EntryKind")]
pub enum PrepaidEntryKind {
    /// 充值 money paid in
    TopUp,
    /// 抵扣 drawn for the house's bills
    Deduction,
}

/// 预存流水 one change of a house's balance.
#[derive(SimpleObject)]
pub struct PrepaidEntry {
    /// the entry
    pub id: ID,
    /// top-up or deduction
    pub kind: PrepaidEntryKind,
    /// how much
    pub amount: Money,
    /// the balance after it
    pub balance_after: Money,
    /// a top-up: how it was paid
    pub method: Option<PaymentMethod>,
    /// a top-up: the transfer's or POS slip's reference
    pub reference: Option<String>,
    /// a top-up: its receipt number
    pub receipt_no: Option<String>,
    /// a deduction: the payment it made (see `payment`)
    pub payment_id: Option<ID>,
    /// when
    pub at: DateTime<Utc>,
}

impl From<model::Entry> for PrepaidEntry {
    fn from(e: model::Entry) -> Self {
        PrepaidEntry {
            id: to_id(e.id),
            kind: e.kind.into(),
            amount: Money::round(e.amount),
            balance_after: Money::round(e.balance_after),
            method: e.method.map(Into::into),
            reference: e.reference,
            receipt_no: e.receipt_no,
            payment_id: e.payment_id.map(to_id),
            at: e.at,
        }
    }
}

/// Money paid in for a house.
#[derive(InputObject)]
pub struct TopUpPrepaidInput {
    /// the house
    pub house_id: ID,
    /// in yuan (at most 2 decimals, up to 1,000,000)
    pub amount: Decimal,
    /// CASH, BANK_TRANSFER or POS
    pub method: PaymentMethod,
    /// the transfer's or POS slip's reference (needed for those)
    pub reference: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What `topUpPrepaid` did.
#[derive(SimpleObject)]
pub struct TopUpPrepaidPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the house
    pub house_id: ID,
    /// its balance now (after paying its unpaid bills)
    pub balance: Money,
    /// its latest entries: the top-up and what it paid
    pub entries: Vec<PrepaidEntry>,
}

#[derive(Default)]
pub struct PrepaidQuery;

#[Object]
impl PrepaidQuery {
    /// 预存余额 a house's balance: staff who read its project's bills, or the people of the house.
    async fn prepaid_balance(&self, ctx: &Context<'_>, house_id: ID) -> async_graphql::Result<Money> {
        let actor = ctx.actor()?;
        let (balance, _) = service::account(ctx.state(), &actor, parse_id("houseId", &house_id)?, None, 0).await?;
        Ok(Money::round(balance))
    }

    /// 预存流水 a house's entries, the latest first.
    async fn prepaid_entries(
        &self,
        ctx: &Context<'_>,
        house_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<PrepaidEntry>> {
        let actor = ctx.actor()?;
        let page: Page<(DateTime<Utc>, Uuid)> = Page::new(ctx, first, after)?;
        let (_, rows) =
            service::account(ctx.state(), &actor, parse_id("houseId", &house_id)?, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |e| (e.at, e.id), PrepaidEntry::from))
    }
}

#[derive(Default)]
pub struct PrepaidMutation;

#[Object]
impl PrepaidMutation {
    /// 预存充值 (`payment:write`): money paid in at the counter for a house, with a
    /// receipt; the house's unpaid bills are paid from the balance at once, oldest first,
    /// and every later bill as it is issued.
    #[graphql(guard = "Perm::PaymentWrite")]
    async fn top_up_prepaid(
        &self,
        ctx: &Context<'_>,
        input: TopUpPrepaidInput,
    ) -> async_graphql::Result<TopUpPrepaidPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = TopUpInput {
            house_id: parse_id("houseId", &input.house_id)?,
            amount: Money::from_decimal("amount", input.amount, false)?,
            method: input.method.into(),
            reference: input.reference,
        };
        let house = service::top_up(ctx.state(), &actor, &retry, i).await?;
        let (balance, entries) = service::account(ctx.state(), &actor, house, None, 10).await?;
        Ok(TopUpPrepaidPayload {
            client_mutation_id: input.client_mutation_id,
            house_id: to_id(house),
            balance: Money::round(balance),
            entries: entries.into_iter().map(Into::into).collect(),
        })
    }
}
