//! SQL for meter readings and replacements. The meters themselves are read from the
//! ledger's `devices` table (their house, multiplier and initial register).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{HouseUsage, Meter, Reading, ReadingSource, ReadingStatus, Replacement};
use crate::equipment::model::DeviceCategory;

struct MeterRow {
    id: Uuid,
    company_id: Uuid,
    project_id: Uuid,
    house_id: Option<Uuid>,
    category: DeviceCategory,
    code: String,
    multiplier: Option<String>,
    initial: Option<String>,
}

impl From<MeterRow> for Meter {
    fn from(r: MeterRow) -> Self {
        // the ledger validated both as decimals when it stored them
        Meter {
            id: r.id,
            company_id: r.company_id,
            project_id: r.project_id,
            house_id: r.house_id,
            category: r.category,
            code: r.code,
            multiplier: r.multiplier.and_then(|m| m.parse().ok()).unwrap_or(Decimal::ONE),
            initial: r.initial.and_then(|m| m.parse().ok()),
        }
    }
}

/// A meter (water, electricity or gas) of the company.
pub async fn meter(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Meter>> {
    let row = sqlx::query_as!(
        MeterRow,
        r#"SELECT id, company_id, project_id, house_id, category AS "category: DeviceCategory", code,
                  attributes->>'multiplier' AS multiplier, attributes->>'initialReading' AS initial
           FROM devices
           WHERE company_id = $1 AND id = $2
             AND category IN ('water_meter', 'electricity_meter', 'gas_meter')"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Meter::from))
}

/// A project's meters in use (not scrapped), of one category or all.
pub async fn meters_of_project(
    db: impl PgExecutor<'_>,
    project_id: Uuid,
    category: Option<DeviceCategory>,
) -> sqlx::Result<Vec<Meter>> {
    let rows = sqlx::query_as!(
        MeterRow,
        r#"SELECT id, company_id, project_id, house_id, category AS "category: DeviceCategory", code,
                  attributes->>'multiplier' AS multiplier, attributes->>'initialReading' AS initial
           FROM devices
           WHERE project_id = $1 AND status <> 'scrapped'
             AND category IN ('water_meter', 'electricity_meter', 'gas_meter')
             AND ($2::text IS NULL OR category = $2)
           ORDER BY id"#,
        project_id,
        category.map(|c| c.as_str())
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Meter::from).collect())
}

pub async fn reading(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Reading>> {
    sqlx::query_as!(
        Reading,
        r#"SELECT id, company_id, project_id, device_id, house_id, period, reading, previous, usage, read_at,
                  source AS "source: ReadingSource", status AS "status: ReadingStatus", flag_reason,
                  recorded_by, reviewed_by, created_at, updated_at
           FROM meter_readings WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// The reading of a meter's period, locked for the change that follows.
pub async fn reading_of_period(
    db: &mut PgConnection,
    device: Uuid,
    period: NaiveDate,
) -> sqlx::Result<Option<Reading>> {
    sqlx::query_as!(
        Reading,
        r#"SELECT id, company_id, project_id, device_id, house_id, period, reading, previous, usage, read_at,
                  source AS "source: ReadingSource", status AS "status: ReadingStatus", flag_reason,
                  recorded_by, reviewed_by, created_at, updated_at
           FROM meter_readings WHERE device_id = $1 AND period = $2 FOR UPDATE"#,
        device,
        period
    )
    .fetch_optional(db)
    .await
}

/// A meter's readings before a period, the latest first.
pub async fn earlier(
    db: impl PgExecutor<'_>,
    device: Uuid,
    period: NaiveDate,
    limit: i64,
) -> sqlx::Result<Vec<Reading>> {
    sqlx::query_as!(
        Reading,
        r#"SELECT id, company_id, project_id, device_id, house_id, period, reading, previous, usage, read_at,
                  source AS "source: ReadingSource", status AS "status: ReadingStatus", flag_reason,
                  recorded_by, reviewed_by, created_at, updated_at
           FROM meter_readings WHERE device_id = $1 AND period < $2 ORDER BY period DESC LIMIT $3"#,
        device,
        period,
        limit
    )
    .fetch_all(db)
    .await
}

/// A meter's first reading after a period, locked (its usage counts from the one before).
pub async fn next_after(db: &mut PgConnection, device: Uuid, period: NaiveDate) -> sqlx::Result<Option<Reading>> {
    sqlx::query_as!(
        Reading,
        r#"SELECT id, company_id, project_id, device_id, house_id, period, reading, previous, usage, read_at,
                  source AS "source: ReadingSource", status AS "status: ReadingStatus", flag_reason,
                  recorded_by, reviewed_by, created_at, updated_at
           FROM meter_readings WHERE device_id = $1 AND period > $2 ORDER BY period LIMIT 1 FOR UPDATE"#,
        device,
        period
    )
    .fetch_optional(db)
    .await
}

/// A project's readings of a period (optionally of one status), in id order after `after`.
pub async fn readings(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    period: NaiveDate,
    status: Option<ReadingStatus>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Reading>> {
    sqlx::query_as!(
        Reading,
        r#"SELECT id, company_id, project_id, device_id, house_id, period, reading, previous, usage, read_at,
                  source AS "source: ReadingSource", status AS "status: ReadingStatus", flag_reason,
                  recorded_by, reviewed_by, created_at, updated_at
           FROM meter_readings WHERE company_id = $1 AND project_id = $2 AND period = $3 AND ($4::text IS NULL OR status = $4)
               AND ($5::uuid IS NULL OR id > $5) ORDER BY id LIMIT $6"#,
        company_id,
        project_id,
        period,
        status.map(|s| s.as_str()),
        after,
        limit
    )
    .fetch_all(db)
    .await
}

/// Inserts readings or replaces the one of the same meter and period.
pub async fn upsert(db: &mut PgConnection, rows: &[Reading]) -> sqlx::Result<()> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let companies: Vec<Uuid> = rows.iter().map(|r| r.company_id).collect();
    let projects: Vec<Uuid> = rows.iter().map(|r| r.project_id).collect();
    let devices: Vec<Uuid> = rows.iter().map(|r| r.device_id).collect();
    let houses: Vec<Option<Uuid>> = rows.iter().map(|r| r.house_id).collect();
    let periods: Vec<NaiveDate> = rows.iter().map(|r| r.period).collect();
    let values: Vec<Decimal> = rows.iter().map(|r| r.reading).collect();
    let previous: Vec<Option<Decimal>> = rows.iter().map(|r| r.previous).collect();
    let usage: Vec<Option<Decimal>> = rows.iter().map(|r| r.usage).collect();
    let read_at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.read_at).collect();
    let source: Vec<&str> = rows.iter().map(|r| r.source.as_str()).collect();
    let status: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    let reason: Vec<Option<String>> = rows.iter().map(|r| r.flag_reason.clone()).collect();
    let recorded: Vec<Option<Uuid>> = rows.iter().map(|r| r.recorded_by).collect();
    let reviewed: Vec<Option<Uuid>> = rows.iter().map(|r| r.reviewed_by).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.updated_at).collect();
    sqlx::query!(
        "INSERT INTO meter_readings (id, company_id, project_id, device_id, house_id, period, reading, previous, usage,
                                     read_at, source, status, flag_reason, recorded_by, reviewed_by, created_at,
                                     updated_at)
         SELECT u.*, u.at FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::date[],
                                      $7::numeric[], $8::numeric[], $9::numeric[], $10::timestamptz[], $11::text[],
                                      $12::text[], $13::text[], $14::uuid[], $15::uuid[], $16::timestamptz[])
              AS u(id, company_id, project_id, device_id, house_id, period, reading, previous, usage, read_at, source,
                   status, flag_reason, recorded_by, reviewed_by, at)
         ON CONFLICT (device_id, period) DO UPDATE
         SET reading = EXCLUDED.reading, previous = EXCLUDED.previous, usage = EXCLUDED.usage,
             read_at = EXCLUDED.read_at, source = EXCLUDED.source, status = EXCLUDED.status,
             flag_reason = EXCLUDED.flag_reason, recorded_by = EXCLUDED.recorded_by,
             reviewed_by = EXCLUDED.reviewed_by, updated_at = EXCLUDED.updated_at",
        &ids,
        &companies,
        &projects,
        &devices,
        &houses as &[Option<Uuid>],
        &periods,
        &values,
        &previous as &[Option<Decimal>],
        &usage as &[Option<Decimal>],
        &read_at,
        &source as &[&str],
        &status as &[&str],
        &reason as &[Option<String>],
        &recorded as &[Option<Uuid>],
        &reviewed as &[Option<Uuid>],
        &at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Inserts readings where the meter has none of the period yet (collection never
/// overwrites an entry).
pub async fn insert_missing(db: &mut PgConnection, rows: &[Reading]) -> sqlx::Result<()> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let companies: Vec<Uuid> = rows.iter().map(|r| r.company_id).collect();
    let projects: Vec<Uuid> = rows.iter().map(|r| r.project_id).collect();
    let devices: Vec<Uuid> = rows.iter().map(|r| r.device_id).collect();
    let houses: Vec<Option<Uuid>> = rows.iter().map(|r| r.house_id).collect();
    let periods: Vec<NaiveDate> = rows.iter().map(|r| r.period).collect();
    let values: Vec<Decimal> = rows.iter().map(|r| r.reading).collect();
    let previous: Vec<Option<Decimal>> = rows.iter().map(|r| r.previous).collect();
    let usage: Vec<Option<Decimal>> = rows.iter().map(|r| r.usage).collect();
    let read_at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.read_at).collect();
    let status: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    let reason: Vec<Option<String>> = rows.iter().map(|r| r.flag_reason.clone()).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.updated_at).collect();
    sqlx::query!(
        "INSERT INTO meter_readings (id, company_id, project_id, device_id, house_id, period, reading, previous, usage,
                                     read_at, source, status, flag_reason, created_at, updated_at)
         SELECT u.id, u.company_id, u.project_id, u.device_id, u.house_id, u.period, u.reading, u.previous, u.usage,
                u.read_at, 'iot', u.status, u.flag_reason, u.at, u.at
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::date[], $7::numeric[],
                     $8::numeric[], $9::numeric[], $10::timestamptz[], $11::text[], $12::text[], $13::timestamptz[])
              AS u(id, company_id, project_id, device_id, house_id, period, reading, previous, usage, read_at, status,
                   flag_reason, at)
         ON CONFLICT (device_id, period) DO NOTHING",
        &ids,
        &companies,
        &projects,
        &devices,
        &houses as &[Option<Uuid>],
        &periods,
        &values,
        &previous as &[Option<Decimal>],
        &usage as &[Option<Decimal>],
        &read_at,
        &status as &[&str],
        &reason as &[Option<String>],
        &at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The meters of a list read for a month after `period`.
pub async fn read_after(db: impl PgExecutor<'_>, devices: &[Uuid], period: NaiveDate) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT device_id AS "device_id!" FROM meter_readings WHERE device_id = ANY($1) AND period > $2"#,
        devices,
        period
    )
    .fetch_all(db)
    .await
}

pub async fn insert_replacement(
    db: &mut PgConnection,
    company: Uuid,
    project: Uuid,
    r: &Replacement,
    by: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO meter_replacements (id, company_id, project_id, device_id, replaced_at, old_final, new_initial,
                                         recorded_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        r.id,
        company,
        project,
        r.device_id,
        r.replaced_at,
        r.old_final,
        r.new_initial,
        by,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Each meter's replacements after `after` (all when none) up to `until`, in order.
pub async fn replacements(
    db: impl PgExecutor<'_>,
    devices: &[Uuid],
    until: DateTime<Utc>,
) -> sqlx::Result<Vec<Replacement>> {
    sqlx::query_as!(
        Replacement,
        "SELECT id, device_id, replaced_at, old_final, new_initial FROM meter_replacements
         WHERE device_id = ANY($1) AND replaced_at <= $2 ORDER BY device_id, replaced_at",
        devices,
        until
    )
    .fetch_all(db)
    .await
}

/// Each meter's latest readings before a period (up to `per` of them), the latest first.
pub async fn earlier_of(
    db: impl PgExecutor<'_>,
    devices: &[Uuid],
    period: NaiveDate,
    per: i64,
) -> sqlx::Result<HashMap<Uuid, Vec<Reading>>> {
    let rows = sqlx::query_as!(
        Reading,
        r#"SELECT r.id AS "id!", r.company_id AS "company_id!", r.project_id AS "project_id!",
                  r.device_id AS "device_id!", r.house_id, r.period AS "period!", r.reading AS "reading!", r.previous,
                  r.usage, r.read_at AS "read_at!", r.source AS "source!: ReadingSource",
                  r.status AS "status!: ReadingStatus", r.flag_reason, r.recorded_by, r.reviewed_by,
                  r.created_at AS "created_at!", r.updated_at AS "updated_at!"
           FROM unnest($1::uuid[]) AS d(id)
           CROSS JOIN LATERAL (SELECT * FROM meter_readings m WHERE m.device_id = d.id AND m.period < $2
                               ORDER BY m.period DESC LIMIT $3) r"#,
        devices,
        period,
        per
    )
    .fetch_all(db)
    .await?;
    let mut out: HashMap<Uuid, Vec<Reading>> = HashMap::new();
    for r in rows {
        out.entry(r.device_id).or_default().push(r);
    }
    Ok(out)
}

/// The meters of a list that have a reading of the period.
pub async fn read_in_period(db: impl PgExecutor<'_>, devices: &[Uuid], period: NaiveDate) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT device_id FROM meter_readings WHERE device_id = ANY($1) AND period = $2",
        devices,
        period
    )
    .fetch_all(db)
    .await
}

/// Usage per house and meter category of a period, for billing.
pub async fn house_usage(db: impl PgExecutor<'_>, project: Uuid, period: NaiveDate) -> sqlx::Result<Vec<HouseUsage>> {
    sqlx::query_as!(
        HouseUsage,
        r#"SELECT d.house_id AS "house_id!", d.category AS "category!: DeviceCategory",
                  count(*) AS "meters!",
                  count(*) FILTER (WHERE r.id IS NULL OR r.usage IS NULL) AS "missing!",
                  count(*) FILTER (WHERE r.status = 'flagged') AS "flagged!",
                  coalesce(sum(r.usage) FILTER (WHERE r.status <> 'flagged'), 0) AS "usage!",
                  CASE WHEN count(*) = 1 THEN min(r.previous) END AS previous,
                  CASE WHEN count(*) = 1 THEN min(r.reading) END AS current
           FROM devices d
           LEFT JOIN meter_readings r ON r.device_id = d.id AND r.period = $2
           WHERE d.project_id = $1 AND d.house_id IS NOT NULL AND d.status <> 'scrapped'
             AND d.category IN ('water_meter', 'electricity_meter', 'gas_meter')
           GROUP BY d.house_id, d.category"#,
        project,
        period
    )
    .fetch_all(db)
    .await
}

/// A project's meters by their codes (within the company).
pub async fn meters_by_codes(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    codes: &[String],
) -> sqlx::Result<Vec<Meter>> {
    let rows = sqlx::query_as!(
        MeterRow,
        r#"SELECT id, company_id, project_id, house_id, category AS "category: DeviceCategory", code,
                  attributes->>'multiplier' AS multiplier, attributes->>'initialReading' AS initial
           FROM devices
           WHERE company_id = $1 AND project_id = $2 AND code = ANY($3)
             AND category IN ('water_meter', 'electricity_meter', 'gas_meter')"#,
        company_id,
        project_id,
        codes
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Meter::from).collect())
}

pub async fn set_shared(
    db: &mut PgConnection,
    company: Uuid,
    s: &super::model::SharedMeter,
    by: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO shared_meters (device_id, company_id, project_id, method, house_ids, updated_by, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (device_id) DO UPDATE SET method = $4, house_ids = $5, updated_by = $6, updated_at = $7",
        s.device_id,
        company,
        s.project_id,
        s.method.as_str(),
        &s.house_ids,
        by,
        s.updated_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn shared_meters(db: impl PgExecutor<'_>, project: Uuid) -> sqlx::Result<Vec<super::model::SharedMeter>> {
    sqlx::query_as!(
        super::model::SharedMeter,
        r#"SELECT device_id, project_id, method AS "method: super::model::ShareMethod", house_ids, updated_at
           FROM shared_meters WHERE project_id = $1 ORDER BY device_id"#,
        project
    )
    .fetch_all(db)
    .await
}

/// A project's shared meters in use with their month's reading: (meter, category, usage,
/// whether the reading is held).
pub async fn shared_readings(
    db: impl PgExecutor<'_>,
    project: Uuid,
    period: NaiveDate,
) -> sqlx::Result<Vec<(super::model::SharedMeter, DeviceCategory, Option<Decimal>, bool)>> {
    let rows = sqlx::query!(
        r#"SELECT s.device_id, s.project_id, s.method AS "method: super::model::ShareMethod", s.house_ids, s.updated_at,
                  d.category AS "category: DeviceCategory", r.usage AS "usage?", (r.status = 'flagged') AS "flagged?"
           FROM shared_meters s
           JOIN devices d ON d.id = s.device_id AND d.status <> 'scrapped' AND d.house_id IS NULL
           LEFT JOIN meter_readings r ON r.device_id = s.device_id AND r.period = $2
           WHERE s.project_id = $1 ORDER BY s.device_id"#,
        project,
        period
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                super::model::SharedMeter {
                    device_id: r.device_id,
                    project_id: r.project_id,
                    method: r.method,
                    house_ids: r.house_ids,
                    updated_at: r.updated_at,
                },
                r.category,
                r.usage,
                r.flagged.unwrap_or(false),
            )
        })
        .collect())
}

pub async fn house_areas(db: impl PgExecutor<'_>, houses: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Decimal)>> {
    let rows = sqlx::query!("SELECT id, building_area FROM houses WHERE id = ANY($1)", houses).fetch_all(db).await?;
    Ok(rows.into_iter().map(|r| (r.id, r.building_area)).collect())
}
