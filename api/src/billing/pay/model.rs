//! 线上支付 types: orders sent to a provider, and refunds.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

crate::text_enum! {
    /// 支付渠道
    pub enum PayProvider { Wechat = "wechat", Alipay = "alipay" }
}

crate::text_enum! {
    /// how the payer pays: the app's SDK, or (WeChat) inside WeChat with the payer's openid
    pub enum PayChannel { App = "app", Jsapi = "jsapi" }
}

crate::text_enum! {
    /// 支付单状态
    pub enum PayOrderStatus {
        /// waiting for the payer
        Pending = "pending",
        /// paid: its payment is booked
        Paid = "paid",
        /// closed unpaid (expired, or replaced by a newer order of the same bills)
        Closed = "closed",
        /// the provider reported another amount: nothing booked, finance was told
        Disputed = "disputed",
    }
}

crate::text_enum! {
    /// 退款状态
    pub enum RefundStatus { Processing = "processing", Succeeded = "succeeded", Failed = "failed" }
}

/// 支付单 an order of one payer's bills at a provider.
#[derive(Debug, Clone)]
pub struct PayOrder {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub payer_id: Uuid,
    pub created_by: Uuid,
    pub provider: PayProvider,
    pub channel: PayChannel,
    pub out_trade_no: String,
    pub bill_ids: Vec<Uuid>,
    pub amount: Decimal,
    pub status: PayOrderStatus,
    pub transaction_id: Option<String>,
    pub payment_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    pub checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// 退款 a refund of (part of) a payment.
#[derive(Debug, Clone)]
pub struct Refund {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub payment_id: Uuid,
    pub approval_id: Uuid,
    pub out_refund_no: String,
    pub amount: Decimal,
    pub reason: String,
    pub status: RefundStatus,
    pub provider_refund_id: Option<String>,
    /// when the provider first answered the request
    pub submitted_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}
