//! 预存 SQL.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Entry, EntryKind};
use crate::billing::bills::model::PaymentMethod;

pub async fn balance(db: impl PgExecutor<'_>, house: Uuid) -> sqlx::Result<Option<Decimal>> {
    sqlx::query_scalar!("SELECT balance FROM prepaid_accounts WHERE house_id = $1", house).fetch_optional(db).await
}

/// The account locked (made with a zero balance when the house has none).
pub async fn lock_account(
    db: &mut PgConnection,
    company: Uuid,
    project: Uuid,
    house: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<Decimal> {
    sqlx::query!(
        "INSERT INTO prepaid_accounts (house_id, company_id, project_id, balance, updated_at)
         VALUES ($1, $2, $3, 0, $4) ON CONFLICT (house_id) DO NOTHING",
        house,
        company,
        project,
        at
    )
    .execute(&mut *db)
    .await?;
    sqlx::query_scalar!("SELECT balance FROM prepaid_accounts WHERE house_id = $1 FOR UPDATE", house)
        .fetch_one(db)
        .await
}

/// The account's new balance and the entry that explains it.
pub async fn record(db: &mut PgConnection, company: Uuid, project: Uuid, e: &Entry) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE prepaid_accounts SET balance = $2, updated_at = $3 WHERE house_id = $1",
        e.house_id,
        e.balance_after,
        e.at
    )
    .execute(&mut *db)
    .await?;
    sqlx::query!(
        "INSERT INTO prepaid_entries (id, company_id, project_id, house_id, kind, amount, balance_after, method,
                                      reference, receipt_no, payment_id, by_user, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        e.id,
        company,
        project,
        e.house_id,
        e.kind.as_str(),
        e.amount,
        e.balance_after,
        e.method.map(|m| m.as_str()),
        e.reference,
        e.receipt_no,
        e.payment_id,
        e.by_user,
        e.at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A house's entries, the latest first, after a cursor.
pub async fn entries(
    db: impl PgExecutor<'_>,
    house: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<Entry>> {
    let (at, id) = after.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    sqlx::query_as!(
        Entry,
        r#"SELECT id, house_id, kind AS "kind: EntryKind", amount, balance_after,
                  method AS "method: PaymentMethod", reference, receipt_no, payment_id, by_user, at
           FROM prepaid_entries
           WHERE house_id = $1 AND ($2::timestamptz IS NULL OR (at, id) < ($2, $3))
           ORDER BY at DESC, id DESC LIMIT $4"#,
        house,
        at,
        id,
        limit
    )
    .fetch_all(db)
    .await
}

/// Houses with money in their account and an unpaid bill, a few at a time.
pub async fn houses_to_deduct(
    db: impl PgExecutor<'_>,
    project: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, Uuid, Uuid)>> {
    let rows = sqlx::query!(
        "SELECT a.house_id, a.company_id, a.project_id FROM prepaid_accounts a
         WHERE a.balance > 0 AND ($1::uuid IS NULL OR a.project_id = $1)
           AND EXISTS (SELECT 1 FROM bills b WHERE b.house_id = a.house_id AND b.status <> 'paid')
         ORDER BY a.updated_at LIMIT $2",
        project,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.house_id, r.company_id, r.project_id)).collect())
}
