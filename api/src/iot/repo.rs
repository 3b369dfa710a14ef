//! SQL for telemetry history.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// Appends readings in one multi-row statement.
pub async fn append(
    db: impl PgExecutor<'_>,
    device: Uuid,
    ts: DateTime<Utc>,
    values: &[(String, f64)],
) -> sqlx::Result<()> {
    let metrics: Vec<String> = values.iter().map(|v| v.0.clone()).collect();
    let nums: Vec<f64> = values.iter().map(|v| v.1).collect();
    sqlx::query!(
        "INSERT INTO telemetry (device_id, metric, ts, value) SELECT $1, m, $2, v FROM unnest($3::text[], $4::float8[]) AS t(m, v)",
        device,
        ts,
        &metrics,
        &nums
    )
    .execute(db)
    .await?;
    Ok(())
}
