//! SQL for telemetry: the history append (one statement per batch) and the device lookups
//! of ingest (read straight from the ledger's tables: one query per batch, not per message).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::model::DeviceRef;
use crate::equipment::model::{DeviceCategory, TopicPath};

/// Appends a batch of messages in one statement.
pub async fn append(
    db: impl PgExecutor<'_>,
    devices: &[Uuid],
    ts: &[DateTime<Utc>],
    data: &[String],
) -> sqlx::Result<()> {
    // the values' JSON text as the devices wrote it: jsonb keeps numbers as numeric, exact
    sqlx::query!(
        "INSERT INTO telemetry (device_id, ts, data)
         SELECT d, t, x::jsonb FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS u(d, t, x)",
        devices,
        ts,
        data
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The devices at the given topic paths (those that exist).
pub async fn devices_by_topic(
    db: impl PgExecutor<'_>,
    paths: &[TopicPath],
) -> sqlx::Result<Vec<(TopicPath, DeviceRef)>> {
    let companies: Vec<&str> = paths.iter().map(|p| p.company.as_str()).collect();
    let devices: Vec<&str> = paths.iter().map(|p| p.device.as_str()).collect();
    let rows = sqlx::query!(
        r#"SELECT c.code AS company_code, d.id, d.company_id, d.project_id,
                  d.category AS "category: DeviceCategory", d.code
           FROM unnest($1::text[], $2::text[]) AS t(c, d)
           JOIN companies c ON c.code = t.c
           JOIN devices d ON d.company_id = c.id AND d.code = t.d"#,
        &companies as &[&str],
        &devices as &[&str]
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                TopicPath { company: r.company_code, device: r.code.clone() },
                DeviceRef {
                    id: r.id,
                    company_id: r.company_id,
                    project_id: r.project_id,
                    category: r.category,
                    code: r.code,
                },
            )
        })
        .collect())
}

pub async fn devices_by_id(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<HashMap<Uuid, DeviceRef>> {
    let rows = sqlx::query!(
        r#"SELECT id, company_id, project_id, category AS "category: DeviceCategory", code FROM devices WHERE id = ANY($1)"#,
        ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.id,
                DeviceRef {
                    id: r.id,
                    company_id: r.company_id,
                    project_id: r.project_id,
                    category: r.category,
                    code: r.code,
                },
            )
        })
        .collect())
}
