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

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Command {
    pub id: Uuid,
    pub device_id: Uuid,
    pub kind: String,
    pub params: serde_json::Value,
    pub status: String,
    pub result: String,
    pub requested_by: Uuid,
    pub sent_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub struct NewCommand<'a> {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub kind: &'a str,
    pub params: &'a serde_json::Value,
    pub requested_by: Uuid,
    pub sent_at: DateTime<Utc>,
}

pub async fn insert_command(db: &mut sqlx::PgConnection, c: &NewCommand<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO device_commands (id, company_id, project_id, device_id, kind, params, status, requested_by, sent_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'sent', $7, $8)",
        c.id,
        c.company_id,
        c.project_id,
        c.device_id,
        c.kind,
        c.params,
        c.requested_by,
        c.sent_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_command(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Command>> {
    sqlx::query_as!(
        Command,
        "SELECT id, device_id, kind, params, status, result, requested_by, sent_at, finished_at
         FROM device_commands WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// Records a device's answer; only the addressed device can answer, and only once.
pub async fn finish_command(
    db: impl PgExecutor<'_>,
    id: Uuid,
    device_id: Uuid,
    ok: bool,
    result: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE device_commands SET status = CASE WHEN $3 THEN 'succeeded' ELSE 'failed' END, result = $4, finished_at = $5
         WHERE id = $1 AND device_id = $2 AND status = 'sent'",
        id,
        device_id,
        ok,
        result,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn time_out_commands(db: impl PgExecutor<'_>, cutoff: DateTime<Utc>, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE device_commands SET status = 'failed', result = 'timeout', finished_at = $2 WHERE status = 'sent' AND sent_at < $1",
        cutoff,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}
