//! SQL for fee items and their prices.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Cycle, FeeItem, FeeKind, Method, Payer, PayingResident, Price, Scope, Tier};
use crate::equipment::model::DeviceCategory;
use crate::org::estate::model::HouseUsage;

pub async fn insert_item(db: &mut PgConnection, f: &FeeItem) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO fee_items (id, company_id, project_id, name, kind, payer, paying_resident, method, cycle, prepaid,
                                scope, building_ids, house_usage, house_ids, meter_category, effective_from,
                                effective_to, active, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)",
        f.id,
        f.company_id,
        f.project_id,
        f.name,
        f.kind.as_str(),
        f.payer.as_str(),
        f.paying_resident.as_str(),
        f.method.as_str(),
        f.cycle.as_str(),
        f.prepaid,
        f.scope.as_str(),
        &f.building_ids,
        f.house_usage.map(|u| u.as_str()),
        &f.house_ids,
        f.meter_category.map(|c| c.as_str()),
        f.effective_from,
        f.effective_to,
        f.active,
        f.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A name already used by another item of the project.
pub async fn name_taken(db: impl PgExecutor<'_>, project_id: Uuid, name: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM fee_items WHERE project_id = $1 AND name = $2) AS "x!""#,
        project_id,
        name
    )
    .fetch_one(db)
    .await
}

pub async fn get_item(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<FeeItem>> {
    sqlx::query_as!(
        FeeItem,
        r#"SELECT id, company_id, project_id, name, kind AS "kind: FeeKind", payer AS "payer: Payer",
                  paying_resident AS "paying_resident: PayingResident", method AS "method: Method",
                  cycle AS "cycle: Cycle", prepaid, scope AS "scope: Scope", building_ids,
                  house_usage AS "house_usage: HouseUsage", house_ids,
                  meter_category AS "meter_category: DeviceCategory", effective_from, effective_to, active, created_at
           FROM fee_items WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// A project's items in creation order after `after`.
pub async fn items(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<FeeItem>> {
    sqlx::query_as!(
        FeeItem,
        r#"SELECT id, company_id, project_id, name, kind AS "kind: FeeKind", payer AS "payer: Payer",
                  paying_resident AS "paying_resident: PayingResident", method AS "method: Method",
                  cycle AS "cycle: Cycle", prepaid, scope AS "scope: Scope", building_ids,
                  house_usage AS "house_usage: HouseUsage", house_ids,
                  meter_category AS "meter_category: DeviceCategory", effective_from, effective_to, active, created_at
           FROM fee_items WHERE company_id = $1 AND project_id = $2 AND ($3::uuid IS NULL OR id > $3)
           ORDER BY id LIMIT $4"#,
        company_id,
        project_id,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

/// Adds a price from its day, or replaces the one of the same day.
pub async fn upsert_price(db: &mut PgConnection, p: &Price, by: Option<Uuid>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO fee_item_prices (fee_item_id, effective_from, unit_price, tiers, formula, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (fee_item_id, effective_from) DO UPDATE
         SET unit_price = EXCLUDED.unit_price, tiers = EXCLUDED.tiers, formula = EXCLUDED.formula,
             created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at",
        p.fee_item_id,
        p.effective_from,
        p.unit_price,
        Json(&p.tiers) as _,
        p.formula,
        by,
        p.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

struct PriceRow {
    fee_item_id: Uuid,
    effective_from: NaiveDate,
    unit_price: rust_decimal::Decimal,
    tiers: Json<Vec<Tier>>,
    formula: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<PriceRow> for Price {
    fn from(r: PriceRow) -> Self {
        Price {
            fee_item_id: r.fee_item_id,
            effective_from: r.effective_from,
            unit_price: r.unit_price,
            tiers: r.tiers.0,
            formula: r.formula,
            created_at: r.created_at,
        }
    }
}

/// The prices of some items, each item's oldest first.
pub async fn prices_of(db: impl PgExecutor<'_>, items: &[Uuid]) -> sqlx::Result<Vec<Price>> {
    let rows = sqlx::query_as!(
        PriceRow,
        r#"SELECT fee_item_id, effective_from, unit_price, tiers AS "tiers: Json<Vec<Tier>>", formula, created_at
           FROM fee_item_prices WHERE fee_item_id = ANY($1) ORDER BY fee_item_id, effective_from"#,
        items
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Price::from).collect())
}

/// The price in force on `day`: the latest from that day or before.
pub async fn price_on(db: impl PgExecutor<'_>, item: Uuid, day: NaiveDate) -> sqlx::Result<Option<Price>> {
    let row = sqlx::query_as!(
        PriceRow,
        r#"SELECT fee_item_id, effective_from, unit_price, tiers AS "tiers: Json<Vec<Tier>>", formula, created_at
           FROM fee_item_prices WHERE fee_item_id = $1 AND effective_from <= $2
           ORDER BY effective_from DESC LIMIT 1"#,
        item,
        day
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Price::from))
}

/// A project's active items, for a bill run.
pub async fn active_items(db: impl PgExecutor<'_>, project_id: Uuid) -> sqlx::Result<Vec<FeeItem>> {
    sqlx::query_as!(
        FeeItem,
        r#"SELECT id, company_id, project_id, name, kind AS "kind: FeeKind", payer AS "payer: Payer",
                  paying_resident AS "paying_resident: PayingResident", method AS "method: Method",
                  cycle AS "cycle: Cycle", prepaid, scope AS "scope: Scope", building_ids,
                  house_usage AS "house_usage: HouseUsage", house_ids,
                  meter_category AS "meter_category: DeviceCategory", effective_from, effective_to, active, created_at
           FROM fee_items WHERE project_id = $1 AND active ORDER BY created_at, id"#,
        project_id
    )
    .fetch_all(db)
    .await
}

pub async fn insert_discount(
    db: &mut PgConnection,
    company: Uuid,
    by: Uuid,
    d: &super::model::Discount,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO fee_discounts (id, company_id, project_id, fee_item_id, name, kind, rate, pay_months, free_months,
                                    house_ids, effective_from, effective_to, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        d.id,
        company,
        d.project_id,
        d.fee_item_id,
        d.name,
        d.kind.as_str(),
        d.rate,
        d.pay_months,
        d.free_months,
        &d.house_ids,
        d.effective_from,
        d.effective_to,
        by,
        d.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A project's discounts, or those of one month (effective in it).
pub async fn discounts(
    db: impl PgExecutor<'_>,
    project: Uuid,
    month: Option<NaiveDate>,
) -> sqlx::Result<Vec<super::model::Discount>> {
    sqlx::query_as!(
        super::model::Discount,
        r#"SELECT id, project_id, fee_item_id, name, kind AS "kind: super::model::DiscountKind", rate, pay_months,
                  free_months, house_ids, effective_from, effective_to, created_at
           FROM fee_discounts
           WHERE project_id = $1
             AND ($2::date IS NULL OR (effective_from <= $2 AND (effective_to IS NULL OR effective_to >= $2)))
           ORDER BY created_at, id"#,
        project,
        month
    )
    .fetch_all(db)
    .await
}
