//! 线上支付 over GraphQL: the owner pays bills through WeChat Pay or Alipay and follows
//! the order; finance asks for refunds (approved through `decideApproval`).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::model;
use super::service::{self, PayInput, RefundInput};
use crate::kit::gql::{StateExt, parse_id, parse_ids, to_id};
use crate::kit::money::Money;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 支付渠道
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::PayProvider")]
pub enum PayProvider {
    /// 微信支付
    Wechat,
    /// 支付宝
    Alipay,
}

/// How the payer pays.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::PayChannel")]
pub enum PayChannel {
    /// the provider's SDK in the owner app
    App,
    /// inside WeChat (official account or mini program), with the payer's openid
    Jsapi,
}

/// 支付单状态
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::PayOrderStatus")]
pub enum PayOrderStatus {
    /// waiting for the payer
    Pending,
    /// paid: `paymentId` is its payment
    Paid,
    /// closed unpaid (expired, or replaced by a newer order of the same bills)
    Closed,
    /// the provider reported another amount: nothing booked, finance was told
    Disputed,
}

/// 退款状态
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::RefundStatus")]
pub enum RefundStatus {
    /// approved, being paid back by the provider
    Processing,
    /// paid back
    Succeeded,
    /// refused by the provider (finance was told)
    Failed,
}

/// 支付单 an order of bills at WeChat Pay or Alipay.
#[derive(SimpleObject)]
pub struct PayOrder {
    /// the order
    pub id: ID,
    /// WeChat Pay or Alipay
    pub provider: PayProvider,
    /// the app's SDK or inside WeChat
    pub channel: PayChannel,
    /// the number the provider knows it by
    pub out_trade_no: String,
    /// the bills it pays
    pub bill_ids: Vec<ID>,
    /// what the bills owed when it was created
    pub amount: Money,
    /// where it stands
    pub status: PayOrderStatus,
    /// the provider's transaction number, once paid
    pub transaction_id: Option<String>,
    /// the booked payment (its receipt), once paid
    pub payment_id: Option<ID>,
    /// an unpaid order closes then
    pub expires_at: DateTime<Utc>,
    /// when it was created
    pub created_at: DateTime<Utc>,
    /// when it was booked
    pub paid_at: Option<DateTime<Utc>>,
    /// while pending, to the payer only: the JSON the app hands to the provider's SDK
    /// (WeChat: appid, partnerid, prepayid, package, noncestr, timestamp, sign; JSAPI:
    /// appId, timeStamp, nonceStr, package, signType, paySign; Alipay: orderString)
    pub params: Option<String>,
}

impl PayOrder {
    fn new(o: model::PayOrder, params: serde_json::Value) -> Self {
        PayOrder {
            id: to_id(o.id),
            provider: o.provider.into(),
            channel: o.channel.into(),
            out_trade_no: o.out_trade_no,
            bill_ids: o.bill_ids.into_iter().map(to_id).collect(),
            amount: Money::round(o.amount),
            status: o.status.into(),
            transaction_id: o.transaction_id,
            payment_id: o.payment_id.map(to_id),
            expires_at: o.expires_at,
            created_at: o.created_at,
            paid_at: o.paid_at,
            params: (!params.is_null()).then(|| params.to_string()),
        }
    }
}

/// 退款 a refund of (part of) a payment.
#[derive(SimpleObject)]
pub struct Refund {
    /// the refund
    pub id: ID,
    /// the payment it pays back (part of)
    pub payment_id: ID,
    /// the approval it came from
    pub approval_id: ID,
    /// the number the provider knows it by
    pub out_refund_no: String,
    /// how much
    pub amount: Money,
    /// why (from the request)
    pub reason: String,
    /// where it stands
    pub status: RefundStatus,
    /// why the provider refused, or the last error while asking
    pub last_error: Option<String>,
    /// when it was approved
    pub created_at: DateTime<Utc>,
    /// when it was paid back or refused
    pub done_at: Option<DateTime<Utc>>,
}

impl From<model::Refund> for Refund {
    fn from(r: model::Refund) -> Self {
        Refund {
            id: to_id(r.id),
            payment_id: to_id(r.payment_id),
            approval_id: to_id(r.approval_id),
            out_refund_no: r.out_refund_no,
            amount: Money::round(r.amount),
            reason: r.reason,
            status: r.status.into(),
            last_error: r.last_error,
            created_at: r.created_at,
            done_at: r.done_at,
        }
    }
}

async fn load_order(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<PayOrder> {
    let actor = ctx.actor()?;
    let (o, params) = service::order(ctx.state(), &actor, id, false).await?;
    Ok(PayOrder::new(o, params))
}

crate::object_payload!(
    /// The order `payBills` created.
    PayBillsPayload, pay_order: PayOrder, load_order, "the order, with the parameters for the provider's SDK"
);

/// Bills to pay online.
#[derive(InputObject)]
pub struct PayBillsInput {
    /// your bills of one project (1 to 50): what they still owe is paid in full
    pub bill_ids: Vec<ID>,
    /// WeChat Pay or Alipay
    pub provider: PayProvider,
    /// APP (default) or, for WeChat, JSAPI
    #[graphql(default_with = "PayChannel::App")]
    pub channel: PayChannel,
    /// your openid in the official account or mini program (JSAPI)
    pub openid: Option<String>,
    /// makes a retry apply once (and give the same order)
    pub client_mutation_id: Option<String>,
}

/// A refund to ask for.
#[derive(InputObject)]
pub struct RequestRefundInput {
    /// the payment
    pub payment_id: ID,
    /// how much, in yuan (up to what it brought less what was refunded)
    pub amount: Decimal,
    /// why (2 to 500 characters)
    pub reason: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct PayQuery;

#[Object]
impl PayQuery {
    /// 支付单: the payer, or staff who read the project's bills. The payer's app asks with
    /// `refresh: true` when the cashier closes: a pending order is then looked up at the
    /// provider (the signed notification usually arrives first).
    async fn pay_order(&self, ctx: &Context<'_>, id: ID, refresh: Option<bool>) -> async_graphql::Result<PayOrder> {
        let actor = ctx.actor()?;
        let refresh = refresh.unwrap_or(false);
        let (o, params) = service::order(ctx.state(), &actor, parse_id("id", &id)?, refresh).await?;
        Ok(PayOrder::new(o, params))
    }

    /// A payment's refunds (whoever may see the payment).
    async fn refunds(&self, ctx: &Context<'_>, payment_id: ID) -> async_graphql::Result<Vec<Refund>> {
        let actor = ctx.actor()?;
        let list = service::refunds(ctx.state(), &actor, parse_id("paymentId", &payment_id)?).await?;
        Ok(list.into_iter().map(Refund::from).collect())
    }
}

#[derive(Default)]
pub struct PayMutation;

#[Object]
impl PayMutation {
    /// 在线缴费 (the owner who pays them): one order for what the bills still owe at
    /// WeChat Pay or Alipay; open the provider's cashier with `payOrder.params`, then
    /// follow `payOrder(id, refresh: true)` or your notifications. An earlier open order
    /// of the same bills is closed.
    #[graphql(guard = "Perm::SelfHouse")]
    async fn pay_bills(&self, ctx: &Context<'_>, input: PayBillsInput) -> async_graphql::Result<PayBillsPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = PayInput {
            bill_ids: parse_ids("billIds", &input.bill_ids)?,
            provider: input.provider.into(),
            channel: input.channel.into(),
            openid: input.openid,
        };
        let id = service::pay_bills(ctx.state(), &actor, &retry, i).await?;
        Ok(PayBillsPayload::new(input.client_mutation_id, id))
    }

    /// 退款申请 (`payment:refund`): someone else with `bill:approve` decides through
    /// `decideApproval`; an online payment is paid back through its provider, an offline
    /// one by hand.
    #[graphql(guard = "Perm::PaymentRefund")]
    async fn request_refund(
        &self,
        ctx: &Context<'_>,
        input: RequestRefundInput,
    ) -> async_graphql::Result<crate::rbac::graphql::ApprovalPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let i = RefundInput {
            payment_id: parse_id("paymentId", &input.payment_id)?,
            amount: Money::from_decimal("amount", input.amount, false)?.yuan(),
            reason: input.reason,
        };
        let id = service::request_refund(ctx.state(), &actor, &retry, i).await?;
        Ok(crate::rbac::graphql::ApprovalPayload::new(input.client_mutation_id, id))
    }
}
