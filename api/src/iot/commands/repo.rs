//! SQL for remote commands.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Command, CommandKind, CommandStatus, NewCommand};

pub async fn insert_command(db: &mut PgConnection, c: &NewCommand<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO device_commands (id, company_id, project_id, device_id, kind, params, status, requested_by, sent_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        c.id,
        c.company_id,
        c.project_id,
        c.device_id,
        c.kind.as_str(),
        c.params,
        CommandStatus::Sent.as_str(),
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
        r#"SELECT id, device_id, kind AS "kind: CommandKind", params, status AS "status: CommandStatus", result,
                  requested_by, sent_at, finished_at
           FROM device_commands WHERE company_id = $1 AND id = $2"#,
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
    status: CommandStatus,
    result: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE device_commands SET status = $3, result = $4, finished_at = $5
         WHERE id = $1 AND device_id = $2 AND status = $6",
        id,
        device_id,
        status.as_str(),
        result,
        at,
        CommandStatus::Sent.as_str()
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// Commands still waiting since before `cutoff` have failed with `timeout`. The state is
/// written out so the partial index on waiting commands serves it (every second, every replica).
pub async fn time_out_commands(db: impl PgExecutor<'_>, cutoff: DateTime<Utc>, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE device_commands SET status = $3, result = 'timeout', finished_at = $2 WHERE status = 'sent' AND sent_at < $1",
        cutoff,
        at,
        CommandStatus::Failed.as_str()
    )
    .execute(db)
    .await?
    .rows_affected())
}
