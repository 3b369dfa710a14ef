//! SQL for bill runs, bills, lines and payments. A run reads the estate (houses, their
//! paying residents, parking spaces) and pending charges straight from their tables, in
//! a few set-based queries, and writes in batches.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Bill, BillStatus, Line, LineKind, Payment, PaymentMethod, Run};
use crate::billing::fees::model::PayingResident;
use crate::org::estate::model::HouseUsage;

/// A house as a run bills it.
#[derive(Debug, Clone)]
pub struct HouseRow {
    pub id: Uuid,
    pub building_id: Uuid,
    pub building_area: Decimal,
    pub indoor_area: Option<Decimal>,
    pub usage: HouseUsage,
    pub charge_start: Option<NaiveDate>,
    pub owner_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
}

/// The houses of a project, narrowed to buildings, houses or owners when any are given.
pub async fn houses(
    db: impl PgExecutor<'_>,
    project: Uuid,
    buildings: &[Uuid],
    houses: &[Uuid],
    owners: &[Uuid],
) -> sqlx::Result<Vec<HouseRow>> {
    sqlx::query_as!(
        HouseRow,
        r#"SELECT h.id, h.building_id, h.building_area, h.indoor_area, h.usage AS "usage: HouseUsage", h.charge_start,
                  o.owner_id AS "owner_id?", t.owner_id AS "tenant_id?"
           FROM houses h
           LEFT JOIN LATERAL (SELECT r.owner_id FROM house_residents r WHERE r.house_id = h.id AND r.relation = 'owner'
                              ORDER BY r.created_at, r.owner_id LIMIT 1) o ON true
           LEFT JOIN LATERAL (SELECT r.owner_id FROM house_residents r WHERE r.house_id = h.id AND r.relation = 'tenant'
                              ORDER BY r.created_at, r.owner_id LIMIT 1) t ON true
           WHERE h.project_id = $1
             AND (cardinality($2::uuid[]) = 0 OR h.building_id = ANY($2))
             AND (cardinality($3::uuid[]) = 0 OR h.id = ANY($3))
             AND (cardinality($4::uuid[]) = 0 OR EXISTS (
                    SELECT 1 FROM house_residents r
                    WHERE r.house_id = h.id AND r.relation = 'owner' AND r.owner_id = ANY($4)))
           ORDER BY h.id"#,
        project,
        buildings,
        houses,
        owners
    )
    .fetch_all(db)
    .await
}

/// A project's parking spaces that have an owner (of the listed owners when any).
pub async fn spaces(db: impl PgExecutor<'_>, project: Uuid, owners: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query!(
        r#"SELECT id, owner_id AS "owner_id!" FROM parking_spaces
           WHERE project_id = $1 AND owner_id IS NOT NULL AND (cardinality($2::uuid[]) = 0 OR owner_id = ANY($2))
           ORDER BY id"#,
        project,
        owners
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.owner_id)).collect())
}

/// A work-order charge not billed yet.
#[derive(Debug, Clone)]
pub struct PendingCharge {
    pub id: Uuid,
    pub house_id: Uuid,
    pub description: String,
    pub amount: Decimal,
}

/// The pending charges on a project's houses made before `before`.
pub async fn pending_charges(
    db: impl PgExecutor<'_>,
    project: Uuid,
    before: DateTime<Utc>,
) -> sqlx::Result<Vec<PendingCharge>> {
    sqlx::query_as!(
        PendingCharge,
        r#"SELECT id, house_id AS "house_id!", description, amount FROM charges
           WHERE project_id = $1 AND status = 'pending' AND house_id IS NOT NULL AND created_at < $2
           ORDER BY created_at, id FOR UPDATE"#,
        project,
        before
    )
    .fetch_all(db)
    .await
}

/// The bills of a project's period, locked (the run rewrites some of them).
pub async fn bills_of_period(db: impl PgExecutor<'_>, project: Uuid, period: NaiveDate) -> sqlx::Result<Vec<Bill>> {
    sqlx::query_as!(
        Bill,
        r#"SELECT id, company_id, project_id, building_id, house_id, parking_space_id, period,
                  paying_resident AS "paying_resident: PayingResident", payer_id, run_id, total, late_fee, paid,
                  status AS "status: BillStatus", due_date, issued_at, paid_at, updated_at
           FROM bills WHERE project_id = $1 AND period = $2 ORDER BY id FOR UPDATE"#,
        project,
        period
    )
    .fetch_all(db)
    .await
}

/// The lines of a project's bills of a period.
pub async fn lines_of_period(db: impl PgExecutor<'_>, project: Uuid, period: NaiveDate) -> sqlx::Result<Vec<Line>> {
    sqlx::query_as!(
        Line,
        r#"SELECT l.id, l.bill_id, l.kind AS "kind: LineKind", l.fee_item_id, l.charge_id, l.name, l.quantity,
                  l.unit_price, l.months, l.previous_reading, l.current_reading, l.amount, l.position
           FROM bill_lines l JOIN bills b ON b.id = l.bill_id
           WHERE b.project_id = $1 AND b.period = $2 ORDER BY l.bill_id, l.position"#,
        project,
        period
    )
    .fetch_all(db)
    .await
}

pub async fn insert_run(db: &mut PgConnection, company: Uuid, r: &Run, scope: &serde_json::Value) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO bill_runs (id, company_id, project_id, period, due_date, scope, created, regenerated, unchanged,
                                skipped, total, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        r.id,
        company,
        r.project_id,
        r.period,
        r.due_date,
        scope,
        r.created,
        r.regenerated,
        r.unchanged,
        r.skipped,
        r.total,
        r.created_by,
        r.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// New bills, in one statement.
pub async fn insert_bills(db: &mut PgConnection, rows: &[Bill]) -> sqlx::Result<()> {
    let col = |f: fn(&Bill) -> Uuid| rows.iter().map(f).collect::<Vec<Uuid>>();
    let opt = |f: fn(&Bill) -> Option<Uuid>| rows.iter().map(f).collect::<Vec<Option<Uuid>>>();
    let resident: Vec<&str> = rows.iter().map(|b| b.paying_resident.as_str()).collect();
    let status: Vec<&str> = rows.iter().map(|b| b.status.as_str()).collect();
    let totals: Vec<Decimal> = rows.iter().map(|b| b.total).collect();
    let paid: Vec<Decimal> = rows.iter().map(|b| b.paid).collect();
    let periods: Vec<NaiveDate> = rows.iter().map(|b| b.period).collect();
    let due: Vec<NaiveDate> = rows.iter().map(|b| b.due_date).collect();
    let issued: Vec<DateTime<Utc>> = rows.iter().map(|b| b.issued_at).collect();
    let paid_at: Vec<Option<DateTime<Utc>>> = rows.iter().map(|b| b.paid_at).collect();
    sqlx::query!(
        "INSERT INTO bills (id, company_id, project_id, building_id, house_id, parking_space_id, period,
                            paying_resident, payer_id, run_id, total, late_fee, paid, status, due_date, issued_at,
                            paid_at, updated_at)
         SELECT u.id, u.company_id, u.project_id, u.building_id, u.house_id, u.space_id, u.period, u.resident,
                u.payer_id, u.run_id, u.total, 0, u.paid, u.status, u.due, u.issued, u.paid_at, u.issued
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::date[], $8::text[],
                     $9::uuid[], $10::uuid[], $11::numeric[], $12::numeric[], $13::text[], $14::date[],
                     $15::timestamptz[], $16::timestamptz[])
              AS u(id, company_id, project_id, building_id, house_id, space_id, period, resident, payer_id, run_id,
                   total, paid, status, due, issued, paid_at)",
        &col(|b| b.id),
        &col(|b| b.company_id),
        &col(|b| b.project_id),
        &opt(|b| b.building_id) as &[Option<Uuid>],
        &opt(|b| b.house_id) as &[Option<Uuid>],
        &opt(|b| b.parking_space_id) as &[Option<Uuid>],
        &periods,
        &resident as &[&str],
        &col(|b| b.payer_id),
        &opt(|b| b.run_id) as &[Option<Uuid>],
        &totals,
        &paid,
        &status as &[&str],
        &due,
        &issued,
        &paid_at as &[Option<DateTime<Utc>>]
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Regenerated bills: their new total, payer, due date and run.
pub async fn update_bills(db: &mut PgConnection, rows: &[Bill]) -> sqlx::Result<()> {
    let ids: Vec<Uuid> = rows.iter().map(|b| b.id).collect();
    let totals: Vec<Decimal> = rows.iter().map(|b| b.total).collect();
    let payers: Vec<Uuid> = rows.iter().map(|b| b.payer_id).collect();
    let runs: Vec<Option<Uuid>> = rows.iter().map(|b| b.run_id).collect();
    let due: Vec<NaiveDate> = rows.iter().map(|b| b.due_date).collect();
    let status: Vec<&str> = rows.iter().map(|b| b.status.as_str()).collect();
    let paid_at: Vec<Option<DateTime<Utc>>> = rows.iter().map(|b| b.paid_at).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|b| b.updated_at).collect();
    sqlx::query!(
        "UPDATE bills b SET total = u.total, payer_id = u.payer_id, run_id = u.run_id, due_date = u.due,
                            status = u.status, paid_at = u.paid_at, updated_at = u.at
         FROM unnest($1::uuid[], $2::numeric[], $3::uuid[], $4::uuid[], $5::date[], $6::text[], $7::timestamptz[],
                     $8::timestamptz[]) AS u(id, total, payer_id, run_id, due, status, paid_at, at)
         WHERE b.id = u.id",
        &ids,
        &totals,
        &payers,
        &runs as &[Option<Uuid>],
        &due,
        &status as &[&str],
        &paid_at as &[Option<DateTime<Utc>>],
        &at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Removes lines (a regenerated bill's old fee lines).
pub async fn delete_lines(db: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM bill_lines WHERE id = ANY($1)", ids).execute(db).await?;
    Ok(())
}

/// New lines, in one statement.
pub async fn insert_lines(db: &mut PgConnection, company: Uuid, rows: &[Line]) -> sqlx::Result<()> {
    let ids: Vec<Uuid> = rows.iter().map(|l| l.id).collect();
    let bills: Vec<Uuid> = rows.iter().map(|l| l.bill_id).collect();
    let kinds: Vec<&str> = rows.iter().map(|l| l.kind.as_str()).collect();
    let items: Vec<Option<Uuid>> = rows.iter().map(|l| l.fee_item_id).collect();
    let charges: Vec<Option<Uuid>> = rows.iter().map(|l| l.charge_id).collect();
    let names: Vec<&str> = rows.iter().map(|l| l.name.as_str()).collect();
    let qty: Vec<Decimal> = rows.iter().map(|l| l.quantity).collect();
    let price: Vec<Decimal> = rows.iter().map(|l| l.unit_price).collect();
    let months: Vec<Option<Decimal>> = rows.iter().map(|l| l.months).collect();
    let prev: Vec<Option<Decimal>> = rows.iter().map(|l| l.previous_reading).collect();
    let cur: Vec<Option<Decimal>> = rows.iter().map(|l| l.current_reading).collect();
    let amounts: Vec<Decimal> = rows.iter().map(|l| l.amount).collect();
    let pos: Vec<i32> = rows.iter().map(|l| l.position).collect();
    sqlx::query!(
        "INSERT INTO bill_lines (id, bill_id, company_id, kind, fee_item_id, charge_id, name, quantity, unit_price,
                                 months, previous_reading, current_reading, amount, position)
         SELECT u.id, u.bill_id, $14, u.kind, u.item, u.charge, u.name, u.qty, u.price, u.months, u.prev, u.cur,
                u.amount, u.pos
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::text[], $7::numeric[],
                     $8::numeric[], $9::numeric[], $10::numeric[], $11::numeric[], $12::numeric[], $13::int[])
              AS u(id, bill_id, kind, item, charge, name, qty, price, months, prev, cur, amount, pos)",
        &ids,
        &bills,
        &kinds as &[&str],
        &items as &[Option<Uuid>],
        &charges as &[Option<Uuid>],
        &names as &[&str],
        &qty,
        &price,
        &months as &[Option<Decimal>],
        &prev as &[Option<Decimal>],
        &cur as &[Option<Decimal>],
        &amounts,
        &pos,
        company
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Charges that became lines of bills.
pub async fn mark_charges_billed(db: &mut PgConnection, charges: &[Uuid], bills: &[Uuid]) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE charges c SET status = 'billed', bill_id = u.bill_id
         FROM unnest($1::uuid[], $2::uuid[]) AS u(id, bill_id) WHERE c.id = u.id AND c.status = 'pending'",
        charges,
        bills
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn bill(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Bill>> {
    sqlx::query_as!(
        Bill,
        r#"SELECT id, company_id, project_id, building_id, house_id, parking_space_id, period,
                  paying_resident AS "paying_resident: PayingResident", payer_id, run_id, total, late_fee, paid,
                  status AS "status: BillStatus", due_date, issued_at, paid_at, updated_at
           FROM bills WHERE company_id = $1 AND id = $2"#,
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// Bills locked for a payment, in period order.
pub async fn bills_for_update(db: &mut PgConnection, company: Uuid, ids: &[Uuid]) -> sqlx::Result<Vec<Bill>> {
    sqlx::query_as!(
        Bill,
        r#"SELECT id, company_id, project_id, building_id, house_id, parking_space_id, period,
                  paying_resident AS "paying_resident: PayingResident", payer_id, run_id, total, late_fee, paid,
                  status AS "status: BillStatus", due_date, issued_at, paid_at, updated_at
           FROM bills WHERE company_id = $1 AND id = ANY($2) ORDER BY period, id FOR UPDATE"#,
        company,
        ids
    )
    .fetch_all(db)
    .await
}

/// A payer's bills: unpaid and partly paid first, then the latest period first.
pub async fn bills_of_payer(
    db: impl PgExecutor<'_>,
    payer: Uuid,
    status: Option<BillStatus>,
    after: Option<(i16, NaiveDate, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<(i16, Bill)>> {
    let (r, p, i) = after.map_or((None, None, None), |(r, p, i)| (Some(r), Some(p), Some(i)));
    let rows = sqlx::query!(
        r#"SELECT (CASE WHEN status = 'paid' THEN 1 ELSE 0 END)::int2 AS "rank!", id, company_id, project_id,
                  building_id, house_id, parking_space_id, period,
                  paying_resident AS "paying_resident: PayingResident", payer_id, run_id, total, late_fee, paid,
                  status AS "status: BillStatus", due_date, issued_at, paid_at, updated_at
           FROM bills
           WHERE payer_id = $1 AND ($2::text IS NULL OR status = $2)
             AND ($3::int2 IS NULL
                  OR (CASE WHEN status = 'paid' THEN 1 ELSE 0 END) > $3
                  OR ((CASE WHEN status = 'paid' THEN 1 ELSE 0 END) = $3
                      AND (period < $4 OR (period = $4 AND id > $5))))
           ORDER BY (CASE WHEN status = 'paid' THEN 1 ELSE 0 END), period DESC, id
           LIMIT $6"#,
        payer,
        status.map(|s| s.as_str()),
        r,
        p,
        i,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.rank,
                Bill {
                    id: r.id,
                    company_id: r.company_id,
                    project_id: r.project_id,
                    building_id: r.building_id,
                    house_id: r.house_id,
                    parking_space_id: r.parking_space_id,
                    period: r.period,
                    paying_resident: r.paying_resident,
                    payer_id: r.payer_id,
                    run_id: r.run_id,
                    total: r.total,
                    late_fee: r.late_fee,
                    paid: r.paid,
                    status: r.status,
                    due_date: r.due_date,
                    issued_at: r.issued_at,
                    paid_at: r.paid_at,
                    updated_at: r.updated_at,
                },
            )
        })
        .collect())
}

/// A project's bills of a period (of a status, a building), in id order.
#[allow(clippy::too_many_arguments)]
pub async fn bills(
    db: impl PgExecutor<'_>,
    company: Uuid,
    project: Uuid,
    period: NaiveDate,
    status: Option<BillStatus>,
    building: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Bill>> {
    sqlx::query_as!(
        Bill,
        r#"SELECT id, company_id, project_id, building_id, house_id, parking_space_id, period,
                  paying_resident AS "paying_resident: PayingResident", payer_id, run_id, total, late_fee, paid,
                  status AS "status: BillStatus", due_date, issued_at, paid_at, updated_at
           FROM bills
           WHERE company_id = $1 AND project_id = $2 AND period = $3 AND ($4::text IS NULL OR status = $4)
             AND ($5::uuid IS NULL OR building_id = $5) AND ($6::uuid IS NULL OR id > $6)
           ORDER BY id LIMIT $7"#,
        company,
        project,
        period,
        status.map(|s| s.as_str()),
        building,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

/// The lines of some bills, each bill's in order.
pub async fn lines_of(db: impl PgExecutor<'_>, bills: &[Uuid]) -> sqlx::Result<Vec<Line>> {
    sqlx::query_as!(
        Line,
        r#"SELECT id, bill_id, kind AS "kind: LineKind", fee_item_id, charge_id, name, quantity, unit_price, months,
                  previous_reading, current_reading, amount, position
           FROM bill_lines WHERE bill_id = ANY($1) ORDER BY bill_id, position"#,
        bills
    )
    .fetch_all(db)
    .await
}

/// The next receipt number of a company's year.
pub async fn next_receipt(db: &mut PgConnection, company: Uuid, year: i32) -> sqlx::Result<i32> {
    sqlx::query_scalar!(
        "INSERT INTO receipt_counters (company_id, year, last_no) VALUES ($1, $2, 1)
         ON CONFLICT (company_id, year) DO UPDATE SET last_no = receipt_counters.last_no + 1
         RETURNING last_no",
        company,
        year
    )
    .fetch_one(db)
    .await
}

pub async fn insert_payment(db: &mut PgConnection, p: &Payment) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO payments (id, company_id, project_id, payer_id, method, reference, amount, receipt_no, note,
                               received_by, received_at, unapplied)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        p.id,
        p.company_id,
        p.project_id,
        p.payer_id,
        p.method.as_str(),
        p.reference,
        p.amount,
        p.receipt_no,
        p.note,
        p.received_by,
        p.received_at,
        p.unapplied
    )
    .execute(db)
    .await?;
    Ok(())
}

/// What a payment paid of each bill, and the bills' new amounts.
pub async fn allocate(
    db: &mut PgConnection,
    company: Uuid,
    payment: Uuid,
    bills: &[Bill],
    amounts: &[Decimal],
) -> sqlx::Result<()> {
    let ids: Vec<Uuid> = bills.iter().map(|b| b.id).collect();
    sqlx::query!(
        "INSERT INTO payment_allocations (payment_id, bill_id, company_id, amount)
         SELECT $1, u.bill, $2, u.amount FROM unnest($3::uuid[], $4::numeric[]) AS u(bill, amount)",
        payment,
        company,
        &ids,
        amounts
    )
    .execute(&mut *db)
    .await?;
    set_paid(db, bills).await
}

pub async fn payment(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as!(
        Payment,
        r#"SELECT id, company_id, project_id, payer_id, method AS "method: PaymentMethod", reference, amount,
                  receipt_no, note, received_by, received_at, unapplied, refunded
           FROM payments WHERE company_id = $1 AND id = $2"#,
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// The payments of some bills with the part of each that went to each bill.
pub async fn payments_of(db: impl PgExecutor<'_>, bills: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Decimal, Payment)>> {
    let rows = sqlx::query!(
        r#"SELECT a.bill_id, a.amount AS part, p.id, p.company_id, p.project_id, p.payer_id,
                  p.method AS "method: PaymentMethod", p.reference, p.amount, p.receipt_no, p.note, p.received_by,
                  p.received_at, p.unapplied, p.refunded
           FROM payment_allocations a JOIN payments p ON p.id = a.payment_id
           WHERE a.bill_id = ANY($1) ORDER BY a.bill_id, p.received_at, p.id"#,
        bills
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.bill_id,
                r.part,
                Payment {
                    id: r.id,
                    company_id: r.company_id,
                    project_id: r.project_id,
                    payer_id: r.payer_id,
                    method: r.method,
                    reference: r.reference,
                    amount: r.amount,
                    receipt_no: r.receipt_no,
                    note: r.note,
                    received_by: r.received_by,
                    received_at: r.received_at,
                    unapplied: r.unapplied,
                    refunded: r.refunded,
                },
            )
        })
        .collect())
}

/// A payment locked for a refund.
pub async fn payment_for_update(db: &mut PgConnection, company: Uuid, id: Uuid) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as!(
        Payment,
        r#"SELECT id, company_id, project_id, payer_id, method AS "method: PaymentMethod", reference, amount,
                  receipt_no, note, received_by, received_at, unapplied, refunded
           FROM payments WHERE company_id = $1 AND id = $2 FOR UPDATE"#,
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// A refund booked: the payment's unapplied and refunded amounts, what its allocations
/// still hold of each bill (zero: gone) and the bills' new amounts.
pub async fn unbook(
    db: &mut PgConnection,
    payment: &Payment,
    allocations: &[(Uuid, Decimal)],
    bills: &[Bill],
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE payments SET unapplied = $2, refunded = $3 WHERE id = $1",
        payment.id,
        payment.unapplied,
        payment.refunded
    )
    .execute(&mut *db)
    .await?;
    let ids: Vec<Uuid> = allocations.iter().map(|a| a.0).collect();
    let left: Vec<Decimal> = allocations.iter().map(|a| a.1).collect();
    sqlx::query!(
        "DELETE FROM payment_allocations a USING unnest($2::uuid[], $3::numeric[]) AS u(bill, amount)
         WHERE a.payment_id = $1 AND a.bill_id = u.bill AND u.amount = 0",
        payment.id,
        &ids,
        &left
    )
    .execute(&mut *db)
    .await?;
    sqlx::query!(
        "UPDATE payment_allocations a SET amount = u.amount
         FROM unnest($2::uuid[], $3::numeric[]) AS u(bill, amount)
         WHERE a.payment_id = $1 AND a.bill_id = u.bill AND u.amount > 0",
        payment.id,
        &ids,
        &left
    )
    .execute(&mut *db)
    .await?;
    set_paid(db, bills).await
}

/// The bills a payment paid, with the part of each.
pub async fn allocations_of(db: impl PgExecutor<'_>, payment: Uuid) -> sqlx::Result<Vec<(Uuid, Decimal)>> {
    let rows =
        sqlx::query!("SELECT bill_id, amount FROM payment_allocations WHERE payment_id = $1 ORDER BY bill_id", payment)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().map(|r| (r.bill_id, r.amount)).collect())
}

/// Runs of one project one at a time (until the transaction ends).
pub async fn lock_project_runs(db: &mut PgConnection, project: Uuid) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('bill_run:' || $1::uuid::text)::bigint)", project)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn run(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<Run>> {
    sqlx::query_as!(
        Run,
        "SELECT id, project_id, period, due_date, created, regenerated, unchanged, skipped, total, created_by, created_at
         FROM bill_runs WHERE company_id = $1 AND id = $2",
        company,
        id
    )
    .fetch_optional(db)
    .await
}

/// Sets (or clears) the day houses start to be charged.
pub async fn set_charge_start(db: &mut PgConnection, houses: &[Uuid], day: Option<NaiveDate>) -> sqlx::Result<u64> {
    Ok(sqlx::query!("UPDATE houses SET charge_start = $2, updated_at = now() WHERE id = ANY($1)", houses, day)
        .execute(db)
        .await?
        .rows_affected())
}

/// The accounts of paying owners: (owner, account, the account is active).
pub async fn payer_accounts(db: impl PgExecutor<'_>, owners: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Uuid, bool)>> {
    let rows = sqlx::query!(
        r#"SELECT o.id, u.id AS user_id, u.status = 'active' AS "active!"
           FROM owners o JOIN users u ON u.id = o.user_id WHERE o.id = ANY($1)"#,
        owners
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.user_id, r.active)).collect())
}

/// A project's late-fee policy: (daily rate, grace days, cap ratio).
pub async fn late_fee_policy(
    db: impl PgExecutor<'_>,
    project: Uuid,
) -> sqlx::Result<Option<(Decimal, i32, Decimal, DateTime<Utc>)>> {
    let r = sqlx::query!(
        "SELECT daily_rate, grace_days, cap_ratio, updated_at FROM late_fee_policies WHERE project_id = $1",
        project
    )
    .fetch_optional(db)
    .await?;
    Ok(r.map(|r| (r.daily_rate, r.grace_days, r.cap_ratio, r.updated_at)))
}

#[allow(clippy::too_many_arguments)]
pub async fn set_late_fee_policy(
    db: &mut PgConnection,
    company: Uuid,
    project: Uuid,
    rate: Decimal,
    grace: i32,
    cap: Decimal,
    by: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO late_fee_policies (project_id, company_id, daily_rate, grace_days, cap_ratio, updated_by, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (project_id) DO UPDATE SET daily_rate = $3, grace_days = $4, cap_ratio = $5, updated_by = $6,
                                                updated_at = $7",
        project,
        company,
        rate,
        grace,
        cap,
        by,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// 滞纳金 accrued up to `today` on every overdue bill of projects with a policy: for each
/// day past the due date and the grace days not yet accrued, the daily rate of the unpaid
/// principal, rounded to the fen, capped at the policy's share of the total. Returns
/// (company, bills, late fee added) per company.
pub async fn accrue_late_fees(
    db: &mut PgConnection,
    today: NaiveDate,
    at: DateTime<Utc>,
) -> sqlx::Result<Vec<(Uuid, i64, Decimal)>> {
    let rows = sqlx::query!(
        r#"WITH due AS (
               SELECT b.id, b.company_id, b.late_fee AS before,
                      LEAST(round(b.late_fee + greatest(b.total - b.paid, 0) * p.daily_rate
                                  * ($1::date - GREATEST(b.late_fee_through, b.due_date + p.grace_days)), 2),
                            round(b.total * p.cap_ratio, 2)) AS after
               FROM bills b JOIN late_fee_policies p ON p.project_id = b.project_id
               WHERE b.status <> 'paid' AND NOT b.late_fee_waived AND b.due_date + p.grace_days < $1
                 AND (b.late_fee_through IS NULL OR b.late_fee_through < $1)
               FOR UPDATE OF b),
           upd AS (
               UPDATE bills b SET late_fee = GREATEST(due.after, due.before), late_fee_through = $1,
                                  status = CASE WHEN b.paid > 0 THEN 'partial' ELSE b.status END, updated_at = $2
               FROM due WHERE b.id = due.id
               RETURNING due.company_id, GREATEST(due.after, due.before) - due.before AS added)
           SELECT company_id AS "company_id!", count(*) AS "bills!", coalesce(sum(added), 0) AS "added!"
           FROM upd GROUP BY company_id"#,
        today,
        at
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.company_id, r.bills, r.added)).collect())
}

/// Waives a bill's late fee: nothing more accrues; the status follows.
pub async fn waive_late_fee(db: &mut PgConnection, bill: Uuid, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE bills SET late_fee = 0, late_fee_waived = true, updated_at = $2,
                          status = CASE WHEN paid >= total THEN 'paid' WHEN paid > 0 THEN 'partial' ELSE 'unpaid' END,
                          paid_at = CASE WHEN paid >= total THEN coalesce(paid_at, $2) ELSE NULL END
         WHERE id = $1",
        bill,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// 欠费 per house (or space): overdue bills (due before `today`, not paid) with what they
/// still owe, the largest first.
pub async fn arrears(
    db: impl PgExecutor<'_>,
    project: Uuid,
    today: NaiveDate,
) -> sqlx::Result<Vec<super::model::Arrears>> {
    sqlx::query_as!(
        super::model::Arrears,
        r#"SELECT a.house_id, a.parking_space_id, a.building_id, a.payer_id, a.bills AS "bills!",
                  a.outstanding AS "outstanding!", a.oldest_due AS "oldest_due!", bu.name AS "building_name?",
                  coalesce(bu.name || un.name || h.room_no, ps.code, '') AS "place!", o.name AS payer_name
           FROM (SELECT house_id, parking_space_id, building_id, payer_id, count(*) AS bills,
                        sum(total + late_fee - paid) AS outstanding, min(due_date) AS oldest_due
                 FROM bills WHERE project_id = $1 AND status <> 'paid' AND due_date < $2
                 GROUP BY house_id, parking_space_id, building_id, payer_id) a
           LEFT JOIN houses h ON h.id = a.house_id
           LEFT JOIN units un ON un.id = h.unit_id
           LEFT JOIN buildings bu ON bu.id = a.building_id
           LEFT JOIN parking_spaces ps ON ps.id = a.parking_space_id
           JOIN owners o ON o.id = a.payer_id
           ORDER BY a.outstanding DESC, a.house_id, a.parking_space_id"#,
        project,
        today
    )
    .fetch_all(db)
    .await
}

/// 收缴率 per month: bills, what they billed (total), what was collected of it.
pub async fn collection(
    db: impl PgExecutor<'_>,
    project: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<super::model::Collection>> {
    sqlx::query_as!(
        super::model::Collection,
        r#"SELECT period, count(*) AS "bills!", count(*) FILTER (WHERE status = 'paid') AS "paid_bills!",
                  sum(total) AS "billed!", sum(LEAST(paid, total)) AS "collected!"
           FROM bills WHERE project_id = $1 AND period BETWEEN $2 AND $3
           GROUP BY period ORDER BY period"#,
        project,
        from,
        to
    )
    .fetch_all(db)
    .await
}

/// Fresh planner statistics after a large run (the owners' queries plan on them; the
/// autovacuum daemon would get there a minute or more later).
pub async fn analyze(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query!("ANALYZE bills, bill_lines, notifications").execute(db).await?;
    Ok(())
}

/// A project's reminder schedule (days after the due date).
pub async fn dunning_policy(db: impl PgExecutor<'_>, project: Uuid) -> sqlx::Result<Option<Vec<i32>>> {
    sqlx::query_scalar!("SELECT days_after_due FROM dunning_policies WHERE project_id = $1", project)
        .fetch_optional(db)
        .await
}

pub async fn set_dunning_policy(
    db: &mut PgConnection,
    company: Uuid,
    project: Uuid,
    days: &[i32],
    by: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO dunning_policies (project_id, company_id, days_after_due, updated_by, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (project_id) DO UPDATE SET days_after_due = $3, updated_by = $4, updated_at = $5",
        project,
        company,
        days,
        by,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Unpaid bills past a step of their project's schedule that has not been sent (only the
/// latest step due: a schedule set late does not send the earlier ones at once).
pub async fn overdue_for_reminders(
    db: impl PgExecutor<'_>,
    today: NaiveDate,
    limit: i64,
) -> sqlx::Result<Vec<super::model::Overdue>> {
    sqlx::query_as!(
        super::model::Overdue,
        r#"SELECT b.id AS bill_id, b.company_id, b.payer_id, b.period, b.due_date,
                  b.parking_space_id IS NOT NULL AS "space!", b.total + b.late_fee - b.paid AS "owed!",
                  s.step AS "step!"
           FROM dunning_policies p
           JOIN bills b ON b.project_id = p.project_id AND b.status <> 'paid' AND b.due_date < $1
           CROSS JOIN LATERAL (SELECT max(d) AS step FROM unnest(p.days_after_due) AS d
                               WHERE d <= $1 - b.due_date) s
           WHERE s.step IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM bill_reminders r WHERE r.bill_id = b.id AND r.step >= s.step)
           ORDER BY b.due_date, b.id LIMIT $2"#,
        today,
        limit
    )
    .fetch_all(db)
    .await
}

/// Reminders sent; a scheduled step already recorded (another replica), or a second
/// reminder by hand of the same day (two clerks at once), is left alone.
/// Returns the bills whose reminder this call recorded.
pub async fn insert_reminders(
    db: &mut PgConnection,
    company: &[Uuid],
    bills: &[Uuid],
    steps: &[i32],
    owed: &[Decimal],
    by: Option<Uuid>,
    at: DateTime<Utc>,
) -> sqlx::Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = bills.iter().map(|_| Uuid::now_v7()).collect();
    sqlx::query_scalar!(
        "INSERT INTO bill_reminders (id, bill_id, company_id, step, owed, sent_by, sent_at)
         SELECT u.id, u.bill, u.company, u.step, u.owed, $6, $7
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::numeric[]) AS u(id, bill, company, step, owed)
         ON CONFLICT DO NOTHING
         RETURNING bill_id",
        &ids,
        bills,
        company,
        steps,
        owed,
        by,
        at
    )
    .fetch_all(db)
    .await
}

pub async fn reminders_of(db: impl PgExecutor<'_>, bill: Uuid) -> sqlx::Result<Vec<super::model::Reminder>> {
    sqlx::query_as!(
        super::model::Reminder,
        "SELECT id, bill_id, step, owed, sent_by, sent_at FROM bill_reminders WHERE bill_id = $1 ORDER BY sent_at, id",
        bill
    )
    .fetch_all(db)
    .await
}

/// The bills of a project in an open online order.
pub async fn bills_being_paid(db: impl PgExecutor<'_>, project: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT unnest(bill_ids) AS "id!" FROM pay_orders WHERE project_id = $1 AND status = 'pending'"#,
        project
    )
    .fetch_all(db)
    .await
}

/// A house's unpaid and part-paid bills, locked, oldest first.
pub async fn unpaid_of_house_for_update(db: &mut PgConnection, company: Uuid, house: Uuid) -> sqlx::Result<Vec<Bill>> {
    sqlx::query_as!(
        Bill,
        r#"SELECT id, company_id, project_id, building_id, house_id, parking_space_id, period,
                  paying_resident AS "paying_resident: PayingResident", payer_id, run_id, total, late_fee, paid,
                  status AS "status: BillStatus", due_date, issued_at, paid_at, updated_at
           FROM bills WHERE company_id = $1 AND house_id = $2 AND status <> 'paid'
           ORDER BY period, id FOR UPDATE"#,
        company,
        house
    )
    .fetch_all(db)
    .await
}

/// Approved vacancy reliefs of a project's houses covering a month: house → share off.
pub async fn reliefs(db: impl PgExecutor<'_>, project: Uuid, period: NaiveDate) -> sqlx::Result<Vec<(Uuid, Decimal)>> {
    let rows = sqlx::query!(
        r#"SELECT DISTINCT ON (house_id) house_id, ratio FROM vacancy_reliefs
           WHERE project_id = $1 AND from_period <= $2 AND to_period >= $2
           ORDER BY house_id, created_at DESC"#,
        project,
        period
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.house_id, r.ratio)).collect())
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_relief(
    db: &mut PgConnection,
    a: &crate::kit::approval::Approval,
    project: Uuid,
    house: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    ratio: Decimal,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO vacancy_reliefs (id, company_id, project_id, house_id, from_period, to_period, ratio, approval_id,
                                      created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        Uuid::now_v7(),
        a.company_id,
        project,
        house,
        from,
        to,
        ratio,
        a.id,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The next position on a bill.
pub async fn next_position(db: impl PgExecutor<'_>, bill: Uuid) -> sqlx::Result<i32> {
    sqlx::query_scalar!(r#"SELECT coalesce(max(position), -1) + 1 AS "n!" FROM bill_lines WHERE bill_id = $1"#, bill)
        .fetch_one(db)
        .await
}

/// Bills' paid amounts, statuses and times as a payment or a refund left them.
async fn set_paid(db: &mut PgConnection, bills: &[Bill]) -> sqlx::Result<()> {
    let ids: Vec<Uuid> = bills.iter().map(|b| b.id).collect();
    let paid: Vec<Decimal> = bills.iter().map(|b| b.paid).collect();
    let status: Vec<&str> = bills.iter().map(|b| b.status.as_str()).collect();
    let paid_at: Vec<Option<DateTime<Utc>>> = bills.iter().map(|b| b.paid_at).collect();
    let at: Vec<DateTime<Utc>> = bills.iter().map(|b| b.updated_at).collect();
    sqlx::query!(
        "UPDATE bills b SET paid = u.paid, status = u.status, paid_at = u.paid_at, updated_at = u.at
         FROM unnest($1::uuid[], $2::numeric[], $3::text[], $4::timestamptz[], $5::timestamptz[])
              AS u(id, paid, status, paid_at, at)
         WHERE b.id = u.id",
        &ids,
        &paid,
        &status as &[&str],
        &paid_at as &[Option<DateTime<Utc>>],
        &at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A run whose notices are not queued yet, locked: (company, created at). None when another
/// worker holds it or its notices went out.
pub async fn claim_run_notices(db: &mut PgConnection, run: Uuid) -> sqlx::Result<Option<(Uuid, DateTime<Utc>)>> {
    let r = sqlx::query!(
        "SELECT company_id, created_at FROM bill_runs WHERE id = $1 AND notified_at IS NULL FOR UPDATE SKIP LOCKED",
        run
    )
    .fetch_optional(db)
    .await?;
    Ok(r.map(|r| (r.company_id, r.created_at)))
}

/// Runs whose notices were not queued, committed before `before` (oldest first).
pub async fn unnotified_runs(db: impl PgExecutor<'_>, before: DateTime<Utc>, limit: i64) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM bill_runs WHERE notified_at IS NULL AND created_at < $1 ORDER BY created_at LIMIT $2",
        before,
        limit
    )
    .fetch_all(db)
    .await
}

/// What a run's notices say: its bills (new or written again) that still owe something.
pub struct RunNotice {
    pub id: Uuid,
    pub payer_id: Uuid,
    pub period: NaiveDate,
    pub space: bool,
    pub owed: Decimal,
    pub due_date: NaiveDate,
    /// written again (the bill was issued before the run)
    pub changed: bool,
}

pub async fn run_notices(db: &mut PgConnection, run: Uuid, created_at: DateTime<Utc>) -> sqlx::Result<Vec<RunNotice>> {
    sqlx::query_as!(
        RunNotice,
        r#"SELECT id, payer_id, period, parking_space_id IS NOT NULL AS "space!", total + late_fee - paid AS "owed!",
                  due_date, issued_at < $2 AS "changed!"
           FROM bills WHERE run_id = $1 AND status <> 'paid' AND total + late_fee - paid > 0"#,
        run,
        created_at
    )
    .fetch_all(db)
    .await
}

pub async fn set_run_notified(db: &mut PgConnection, run: Uuid, notices: i32, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!("UPDATE bill_runs SET notices = $2, notified_at = $3 WHERE id = $1", run, notices, at)
        .execute(db)
        .await?;
    Ok(())
}
