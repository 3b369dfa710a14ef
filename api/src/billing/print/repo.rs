//! SQL for printed bills, receipts and run prints.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Print, PrintStatus};
use super::render::{Receipt, Sheet, SheetLine};
use crate::billing::bills::model::{BillStatus, LineKind, PaymentMethod};

/// The printed bills of these bills of a company, in the order given by `bills`.
pub async fn sheets(db: &mut PgConnection, company: Uuid, bills: &[Uuid]) -> sqlx::Result<Vec<Sheet>> {
    let heads = sqlx::query!(
        r#"SELECT b.id, b.period, b.total, b.late_fee, b.paid, b.status AS "status: BillStatus", b.due_date,
                  (b.issued_at AT TIME ZONE 'Asia/Shanghai')::date AS "issued!",
                  c.name AS company, c.phone AS company_phone, p.name AS project, o.name AS payer,
                  CASE WHEN b.house_id IS NOT NULL THEN bl.name || ' ' || un.name || ' ' || h.room_no
                       ELSE '车位 ' || ps.code END AS "place!"
           FROM unnest($2::uuid[]) WITH ORDINALITY AS want(id, n)
           JOIN bills b ON b.id = want.id AND b.company_id = $1
           JOIN companies c ON c.id = b.company_id
           JOIN projects p ON p.id = b.project_id
           JOIN owners o ON o.id = b.payer_id
           LEFT JOIN houses h ON h.id = b.house_id
           LEFT JOIN buildings bl ON bl.id = h.building_id
           LEFT JOIN units un ON un.id = h.unit_id
           LEFT JOIN parking_spaces ps ON ps.id = b.parking_space_id
           ORDER BY want.n"#,
        company,
        bills
    )
    .fetch_all(&mut *db)
    .await?;
    let ids: Vec<Uuid> = heads.iter().map(|h| h.id).collect();
    let lines = sqlx::query!(
        r#"SELECT bill_id, kind AS "kind: LineKind", name, quantity, unit_price, previous_reading, current_reading, amount
           FROM bill_lines WHERE bill_id = ANY($1) ORDER BY bill_id, position"#,
        &ids
    )
    .fetch_all(&mut *db)
    .await?;
    let mut by_bill: std::collections::HashMap<Uuid, Vec<SheetLine>> = std::collections::HashMap::new();
    for l in lines {
        by_bill.entry(l.bill_id).or_default().push(SheetLine {
            kind: l.kind,
            name: l.name,
            quantity: l.quantity,
            unit_price: l.unit_price,
            previous: l.previous_reading,
            current: l.current_reading,
            amount: l.amount,
        });
    }
    Ok(heads
        .into_iter()
        .map(|h| Sheet {
            lines: by_bill.remove(&h.id).unwrap_or_default(),
            company: h.company,
            company_phone: h.company_phone,
            project: h.project,
            place: h.place,
            payer: h.payer,
            bill_id: h.id,
            period: h.period,
            issued: h.issued,
            due: h.due_date,
            status: h.status,
            total: h.total,
            late_fee: h.late_fee,
            paid: h.paid,
        })
        .collect())
}

/// The bills a run wrote, in print order (building, unit, room; parking spaces last),
/// optionally of some buildings only.
pub async fn run_bills(db: impl PgExecutor<'_>, run: Uuid, buildings: &[Uuid]) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT b.id FROM bills b
         LEFT JOIN houses h ON h.id = b.house_id
         LEFT JOIN buildings bl ON bl.id = h.building_id
         LEFT JOIN units un ON un.id = h.unit_id
         LEFT JOIN parking_spaces ps ON ps.id = b.parking_space_id
         WHERE b.run_id = $1 AND (cardinality($2::uuid[]) = 0 OR b.building_id = ANY($2))
         ORDER BY b.house_id IS NULL, bl.name, un.name, h.floor, h.room_no, ps.code, b.paying_resident, b.id",
        run,
        buildings
    )
    .fetch_all(db)
    .await
}

/// A receipt's contents: the payment, who paid, and what of which bills it paid.
pub async fn receipt(db: &mut PgConnection, company: Uuid, payment: Uuid) -> sqlx::Result<Option<Receipt>> {
    let Some(p) = sqlx::query!(
        r#"SELECT pm.receipt_no, pm.method AS "method: PaymentMethod", pm.reference, pm.amount, pm.unapplied, pm.refunded,
                  to_char(pm.received_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') AS "received_at!",
                  c.name AS company, pr.name AS project, o.name AS payer, u.name AS "received_by?"
           FROM payments pm
           JOIN companies c ON c.id = pm.company_id
           JOIN projects pr ON pr.id = pm.project_id
           JOIN owners o ON o.id = pm.payer_id
           LEFT JOIN users u ON u.id = pm.received_by
           WHERE pm.company_id = $1 AND pm.id = $2"#,
        company,
        payment
    )
    .fetch_optional(&mut *db)
    .await?
    else {
        return Ok(None);
    };
    let items = sqlx::query!(
        r#"SELECT CASE WHEN b.house_id IS NOT NULL THEN bl.name || ' ' || un.name || ' ' || h.room_no
                       ELSE '车位 ' || ps.code END
                  || ' ' || extract(year FROM b.period)::int || '年' || extract(month FROM b.period)::int || '月账单'
                  AS "what!", a.amount
           FROM payment_allocations a
           JOIN bills b ON b.id = a.bill_id
           LEFT JOIN houses h ON h.id = b.house_id
           LEFT JOIN buildings bl ON bl.id = h.building_id
           LEFT JOIN units un ON un.id = h.unit_id
           LEFT JOIN parking_spaces ps ON ps.id = b.parking_space_id
           WHERE a.payment_id = $1 ORDER BY b.period, b.id"#,
        payment
    )
    .fetch_all(&mut *db)
    .await?;
    Ok(Some(Receipt {
        company: p.company,
        project: p.project,
        receipt_no: p.receipt_no,
        payer: p.payer,
        method: p.method,
        reference: p.reference,
        amount: p.amount,
        received_at: p.received_at,
        received_by: p.received_by,
        items: items.into_iter().map(|i| (i.what, i.amount)).collect(),
        unapplied: p.unapplied,
        refunded: p.refunded,
    }))
}

/// A queued or rendering print of the same run and buildings, and how many the company
/// has on their way (the company's prints locked: two requests count one after the other).
pub async fn active(
    db: &mut PgConnection,
    company: Uuid,
    run: Uuid,
    buildings: &[Uuid],
) -> sqlx::Result<(Option<Uuid>, i64)> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended('bill_prints:' || $1::text, 0))", company.to_string())
        .execute(&mut *db)
        .await?;
    let r = sqlx::query!(
        r#"SELECT (SELECT id FROM bill_prints WHERE company_id = $1 AND run_id = $2 AND building_ids = $3
                     AND status IN ('queued', 'rendering') ORDER BY created_at LIMIT 1) AS same,
                  (SELECT count(*) FROM bill_prints WHERE company_id = $1 AND status IN ('queued', 'rendering'))
                     AS "active!""#,
        company,
        run,
        buildings
    )
    .fetch_one(db)
    .await?;
    Ok((r.same, r.active))
}

pub async fn insert(db: impl PgExecutor<'_>, p: &Print) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO bill_prints (id, company_id, run_id, building_ids, status, requested_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        p.id,
        p.company_id,
        p.run_id,
        &p.building_ids,
        p.status.as_str(),
        p.requested_by,
        p.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get(db: impl PgExecutor<'_>, company: Uuid, id: Uuid) -> sqlx::Result<Option<(Print, Uuid)>> {
    let r = sqlx::query!(
        r#"SELECT pr.id, pr.company_id, pr.run_id, pr.building_ids, pr.status AS "status: PrintStatus", pr.pages,
                  pr.rendered, pr.file_key, pr.error, pr.attempts, pr.requested_by, pr.created_at, pr.finished_at,
                  r.project_id
           FROM bill_prints pr JOIN bill_runs r ON r.id = pr.run_id
           WHERE pr.company_id = $1 AND pr.id = $2"#,
        company,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(r.map(|r| {
        (
            Print {
                id: r.id,
                company_id: r.company_id,
                run_id: r.run_id,
                building_ids: r.building_ids,
                status: r.status,
                pages: r.pages,
                rendered: r.rendered,
                file_key: r.file_key,
                error: r.error,
                attempts: r.attempts,
                requested_by: r.requested_by,
                created_at: r.created_at,
                finished_at: r.finished_at,
            },
            r.project_id,
        )
    }))
}

/// Takes the oldest print waiting (or one whose renderer stopped: its lease ran out) for
/// this renderer until `lease_until`.
pub async fn claim(
    db: impl PgExecutor<'_>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    max_attempts: i32,
) -> sqlx::Result<Option<Print>> {
    sqlx::query_as!(
        Print,
        r#"UPDATE bill_prints SET status = 'rendering', lease_until = $2, attempts = attempts + 1, rendered = 0
           WHERE id = (SELECT id FROM bill_prints
                       WHERE (status = 'queued' OR (status = 'rendering' AND lease_until < $1)) AND attempts < $3
                       ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING id, company_id, run_id, building_ids, status AS "status: PrintStatus", pages, rendered, file_key,
                     error, attempts, requested_by, created_at, finished_at"#,
        now,
        lease_until,
        max_attempts
    )
    .fetch_optional(db)
    .await
}

/// Progress, and the lease renewed; false when the print is no longer this renderer's
/// (its lease ran out and another took it: `attempt` is the token `claim` gave).
pub async fn progress(
    db: impl PgExecutor<'_>,
    id: Uuid,
    attempt: i32,
    pages: i32,
    rendered: i32,
    lease_until: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let n = sqlx::query!(
        "UPDATE bill_prints SET pages = $3, rendered = $4, lease_until = $5
         WHERE id = $1 AND attempts = $2 AND status = 'rendering'",
        id,
        attempt,
        pages,
        rendered,
        lease_until
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The print done (with its file) or failed, by the renderer holding it.
pub async fn finish(
    db: impl PgExecutor<'_>,
    id: Uuid,
    attempt: i32,
    file_key: Option<&str>,
    error: Option<&str>,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let status = if file_key.is_some() { PrintStatus::Done } else { PrintStatus::Failed };
    sqlx::query!(
        "UPDATE bill_prints SET status = $2, file_key = $3, error = $4, finished_at = $5, lease_until = NULL,
                rendered = CASE WHEN $3::text IS NULL THEN rendered ELSE pages END
         WHERE id = $1 AND attempts = $6 AND status = 'rendering'",
        id,
        status.as_str(),
        file_key,
        error,
        at,
        attempt
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Prints that gave up after their attempts (a renderer crashed on them each time).
pub async fn fail_exhausted(db: impl PgExecutor<'_>, now: DateTime<Utc>, max_attempts: i32) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE bill_prints SET status = 'failed', error = 'renderer stopped', finished_at = $1, lease_until = NULL
         WHERE status = 'rendering' AND lease_until < $1 AND attempts >= $2",
        now,
        max_attempts
    )
    .execute(db)
    .await?
    .rows_affected())
}
