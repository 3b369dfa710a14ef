//! 预存 types.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::billing::bills::model::PaymentMethod;

crate::text_enum! {
    /// 预存流水类型
    pub enum EntryKind {
        /// 充值 money paid in at the counter
        TopUp = "top_up",
        /// 抵扣 drawn for the house's bills
        Deduction = "deduction",
    }
}

/// 预存流水 one change of a house's balance.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: Uuid,
    pub house_id: Uuid,
    pub kind: EntryKind,
    pub amount: Decimal,
    pub balance_after: Decimal,
    pub method: Option<PaymentMethod>,
    pub reference: Option<String>,
    pub receipt_no: Option<String>,
    pub payment_id: Option<Uuid>,
    pub by_user: Option<Uuid>,
    pub at: DateTime<Utc>,
}
