//! SQL over the telemetry history.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::model::{MeterPeriod, TrendBucket, TrendPoint};
use crate::equipment::model::{DeviceCategory, DeviceStatus};

/// Aggregates of one metric per Shanghai hour or day.
pub async fn trend(
    db: impl PgExecutor<'_>,
    device: Uuid,
    metric: &str,
    bucket: TrendBucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<TrendPoint>> {
    sqlx::query_as!(
        TrendPoint,
        r#"SELECT date_trunc($3, ts AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' AS "bucket!",
                  avg(v) AS "avg!", min(v) AS "min!", max(v) AS "max!", count(*) AS "count!"
           FROM (SELECT ts, (data->>$2)::float8 AS v FROM telemetry
                 WHERE device_id = $1 AND ts >= $4 AND ts < $5 AND data ? $2) x
           GROUP BY 1 ORDER BY 1"#,
        device,
        metric,
        bucket.as_str(),
        from,
        to
    )
    .fetch_all(db)
    .await
}

/// Each meter of `categories` in a project of the company, in id order after `after`,
/// with its reading at the start and at the end of a period: the last reading before the
/// instant (the first within the period when none came before). Scrapped meters are left out.
#[allow(clippy::too_many_arguments)]
pub async fn meter_periods(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project: Uuid,
    categories: &[DeviceCategory],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<MeterPeriod>> {
    let categories: Vec<String> = categories.iter().map(|c| c.as_str().to_owned()).collect();
    sqlx::query_as!(
        MeterPeriod,
        r#"SELECT d.id AS device_id, d.code, d.name, d.category AS "category: DeviceCategory", d.attributes,
             coalesce(
               (SELECT (t.data->>'reading')::float8 FROM telemetry t
                WHERE t.device_id = d.id AND t.ts < $4 AND t.data ? 'reading' ORDER BY t.ts DESC LIMIT 1),
               (SELECT (t.data->>'reading')::float8 FROM telemetry t
                WHERE t.device_id = d.id AND t.ts >= $4 AND t.ts < $5 AND t.data ? 'reading' ORDER BY t.ts LIMIT 1)
             ) AS start_reading,
             (SELECT (t.data->>'reading')::float8 FROM telemetry t
              WHERE t.device_id = d.id AND t.ts < $5 AND t.data ? 'reading' ORDER BY t.ts DESC LIMIT 1) AS end_reading
           FROM devices d
           WHERE d.company_id = $1 AND d.project_id = $2 AND d.category = ANY($3) AND d.status <> $6
             AND ($7::uuid IS NULL OR d.id > $7)
           ORDER BY d.id LIMIT $8"#,
        company_id,
        project,
        &categories,
        from,
        to,
        DeviceStatus::Scrapped.as_str(),
        after,
        limit
    )
    .fetch_all(db)
    .await
}

/// The last value of `metric` each device reported after its `since` and not after `now`,
/// looked for among its last `window` messages (devices without one are left out).
pub async fn latest(
    db: impl PgExecutor<'_>,
    devices: &[Uuid],
    since: &[DateTime<Utc>],
    metric: &str,
    now: DateTime<Utc>,
    window: i64,
) -> sqlx::Result<Vec<(Uuid, f64, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        r#"SELECT d.id AS "device_id!", x.v AS "value!", x.ts AS "ts!"
           FROM unnest($1::uuid[], $2::timestamptz[]) AS d(id, since)
           CROSS JOIN LATERAL (
               SELECT (r.data->>$3)::float8 AS v, r.ts
               FROM (SELECT t.data, t.ts FROM telemetry t
                     WHERE t.device_id = d.id AND t.ts > d.since AND t.ts <= $4
                     ORDER BY t.ts DESC LIMIT $5) r
               WHERE r.data ? $3 ORDER BY r.ts DESC LIMIT 1) x"#,
        devices,
        since,
        metric,
        now,
        window
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.device_id, r.value, r.ts)).collect())
}

/// Each device's last `reading` register before `before` (and not before `since`), as the
/// exact number the device wrote (history stored before ingest kept the text may carry a
/// float's digits).
pub async fn registers_before(
    db: impl PgExecutor<'_>,
    devices: &[Uuid],
    since: DateTime<Utc>,
    before: DateTime<Utc>,
) -> sqlx::Result<Vec<(Uuid, rust_decimal::Decimal, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        r#"SELECT d.id AS "device_id!", x.v AS "value!", x.ts AS "ts!"
           FROM unnest($1::uuid[]) AS d(id)
           CROSS JOIN LATERAL (
               SELECT (t.data->>'reading')::numeric AS v, t.ts FROM telemetry t
               WHERE t.device_id = d.id AND t.ts >= $2 AND t.ts < $3 AND t.data ? 'reading'
                 AND jsonb_typeof(t.data->'reading') = 'number'
               ORDER BY t.ts DESC LIMIT 1) x"#,
        devices,
        since,
        before
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.device_id, r.value, r.ts)).collect())
}
