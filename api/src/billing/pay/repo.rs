//! 线上支付 SQL: orders and refunds.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{PayChannel, PayOrder, PayOrderStatus, PayProvider, Refund, RefundStatus};

pub async fn company_by_code(db: impl PgExecutor<'_>, code: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM companies WHERE code = $1", code).fetch_optional(db).await
}

pub async fn company_code(db: impl PgExecutor<'_>, company: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT code FROM companies WHERE id = $1", company).fetch_optional(db).await
}

pub async fn insert_order(db: &mut PgConnection, o: &PayOrder, prepay: &serde_json::Value) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO pay_orders (id, company_id, project_id, payer_id, created_by, provider, channel, out_trade_no,
                                 bill_ids, amount, status, prepay, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        o.id,
        o.company_id,
        o.project_id,
        o.payer_id,
        o.created_by,
        o.provider.as_str(),
        o.channel.as_str(),
        o.out_trade_no,
        &o.bill_ids,
        o.amount,
        o.status.as_str(),
        prepay,
        o.expires_at,
        o.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn order(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<PayOrder>> {
    sqlx::query_as!(
        PayOrder,
        r#"SELECT id, company_id, project_id, payer_id, created_by, provider AS "provider: PayProvider",
                  channel AS "channel: PayChannel", out_trade_no, bill_ids, amount,
                  status AS "status: PayOrderStatus", transaction_id, payment_id, expires_at, checked_at,
                  created_at, paid_at
           FROM pay_orders WHERE company_id = $1 AND id = $2"#,
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// The order and what the app hands to the provider's SDK.
pub async fn prepay_of(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<serde_json::Value>> {
    sqlx::query_scalar!("SELECT prepay FROM pay_orders WHERE id = $1", id).fetch_optional(db).await
}

pub async fn order_by_no_for_update(
    db: &mut PgConnection,
    company: Uuid,
    out_trade_no: &str,
) -> sqlx::Result<Option<PayOrder>> {
    sqlx::query_as!(
        PayOrder,
        r#"SELECT id, company_id, project_id, payer_id, created_by, provider AS "provider: PayProvider",
                  channel AS "channel: PayChannel", out_trade_no, bill_ids, amount,
                  status AS "status: PayOrderStatus", transaction_id, payment_id, expires_at, checked_at,
                  created_at, paid_at
           FROM pay_orders WHERE company_id = $1 AND out_trade_no = $2 FOR UPDATE"#,
        company,
        out_trade_no
    )
    .fetch_optional(db)
    .await
}

/// Pending orders that share a bill with these.
pub async fn pending_of_bills(db: impl PgExecutor<'_>, company: Uuid, bills: &[Uuid]) -> sqlx::Result<Vec<PayOrder>> {
    sqlx::query_as!(
        PayOrder,
        r#"SELECT id, company_id, project_id, payer_id, created_by, provider AS "provider: PayProvider",
                  channel AS "channel: PayChannel", out_trade_no, bill_ids, amount,
                  status AS "status: PayOrderStatus", transaction_id, payment_id, expires_at, checked_at,
                  created_at, paid_at
           FROM pay_orders WHERE company_id = $1 AND status = 'pending' AND bill_ids && $2"#,
        company,
        bills
    )
    .fetch_all(db)
    .await
}

/// Pending orders not asked about since `before`, the oldest first.
pub async fn due_for_check(db: impl PgExecutor<'_>, before: DateTime<Utc>, limit: i64) -> sqlx::Result<Vec<PayOrder>> {
    sqlx::query_as!(
        PayOrder,
        r#"SELECT id, company_id, project_id, payer_id, created_by, provider AS "provider: PayProvider",
                  channel AS "channel: PayChannel", out_trade_no, bill_ids, amount,
                  status AS "status: PayOrderStatus", transaction_id, payment_id, expires_at, checked_at,
                  created_at, paid_at
           FROM pay_orders
           WHERE status = 'pending' AND created_at <= $1 AND (checked_at IS NULL OR checked_at <= $1)
           ORDER BY coalesce(checked_at, created_at) LIMIT $2"#,
        before,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn set_status(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from: PayOrderStatus,
    to: PayOrderStatus,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE pay_orders SET status = $3, checked_at = $4 WHERE id = $1 AND status = $2",
        id,
        from.as_str(),
        to.as_str(),
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn touch(db: impl PgExecutor<'_>, id: Uuid, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!("UPDATE pay_orders SET checked_at = $2 WHERE id = $1", id, at).execute(db).await?;
    Ok(())
}

pub async fn mark_paid(
    db: &mut PgConnection,
    id: Uuid,
    transaction_id: &str,
    payment: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE pay_orders SET status = 'paid', transaction_id = $2, payment_id = $3, paid_at = $4, checked_at = $4
         WHERE id = $1",
        id,
        transaction_id,
        payment,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The paid order behind a payment.
pub async fn order_of_payment(db: impl PgExecutor<'_>, payment: Uuid) -> sqlx::Result<Option<PayOrder>> {
    sqlx::query_as!(
        PayOrder,
        r#"SELECT id, company_id, project_id, payer_id, created_by, provider AS "provider: PayProvider",
                  channel AS "channel: PayChannel", out_trade_no, bill_ids, amount,
                  status AS "status: PayOrderStatus", transaction_id, payment_id, expires_at, checked_at,
                  created_at, paid_at
           FROM pay_orders WHERE payment_id = $1"#,
        payment
    )
    .fetch_optional(db)
    .await
}

pub async fn insert_refund(db: &mut PgConnection, r: &Refund) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO refunds (id, company_id, project_id, payment_id, approval_id, out_refund_no, amount, reason,
                              status, created_at, done_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        r.id,
        r.company_id,
        r.project_id,
        r.payment_id,
        r.approval_id,
        r.out_refund_no,
        r.amount,
        r.reason,
        r.status.as_str(),
        r.created_at,
        r.done_at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// What refunds still being paid back hold of a payment.
pub async fn refunds_in_flight(db: impl PgExecutor<'_>, payment: Uuid) -> sqlx::Result<rust_decimal::Decimal> {
    sqlx::query_scalar!(
        r#"SELECT coalesce(sum(amount), 0) AS "sum!" FROM refunds WHERE payment_id = $1 AND status = 'processing'"#,
        payment
    )
    .fetch_one(db)
    .await
}

pub async fn refunds_of(db: impl PgExecutor<'_>, payment: Uuid) -> sqlx::Result<Vec<Refund>> {
    sqlx::query_as!(
        Refund,
        r#"SELECT id, company_id, project_id, payment_id, approval_id, out_refund_no, amount, reason,
                  status AS "status: RefundStatus", provider_refund_id, submitted_at, attempts, last_error, created_at, done_at
           FROM refunds WHERE payment_id = $1 ORDER BY created_at, id"#,
        payment
    )
    .fetch_all(db)
    .await
}

/// Refunds still being paid back, the least tried first.
pub async fn processing(db: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<Refund>> {
    sqlx::query_as!(
        Refund,
        r#"SELECT id, company_id, project_id, payment_id, approval_id, out_refund_no, amount, reason,
                  status AS "status: RefundStatus", provider_refund_id, submitted_at, attempts, last_error, created_at, done_at
           FROM refunds WHERE status = 'processing' ORDER BY attempts, created_at LIMIT $1"#,
        limit
    )
    .fetch_all(db)
    .await
}

/// Locks a refund still being paid back; false when it is not any more.
pub async fn lock_processing(db: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    Ok(sqlx::query_scalar!("SELECT id FROM refunds WHERE id = $1 AND status = 'processing' FOR UPDATE", id)
        .fetch_optional(db)
        .await?
        .is_some())
}

pub async fn mark_submitted(db: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!("UPDATE refunds SET submitted_at = coalesce(submitted_at, $2) WHERE id = $1", id, at)
        .execute(db)
        .await?;
    Ok(())
}

/// The provider reported another amount: the order is disputed, with the payment that
/// holds the money (all of it unapplied) when there was any.
pub async fn mark_disputed(
    db: &mut PgConnection,
    id: Uuid,
    transaction_id: &str,
    payment: Option<Uuid>,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE pay_orders SET status = 'disputed', transaction_id = $2, payment_id = $3, checked_at = $4 WHERE id = $1",
        id,
        transaction_id,
        payment,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn finish_refund(
    db: &mut PgConnection,
    id: Uuid,
    status: RefundStatus,
    provider_refund_id: Option<&str>,
    error: Option<&str>,
    at: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE refunds SET status = $2, provider_refund_id = coalesce($3, provider_refund_id), last_error = $4,
                            done_at = $5, attempts = attempts + 1
         WHERE id = $1",
        id,
        status.as_str(),
        provider_refund_id,
        error,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}
