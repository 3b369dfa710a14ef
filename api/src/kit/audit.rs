//! 审计日志: writes that change accounts, grants, money, attendance or work-order state
//! record who did what in the same transaction, stamped with the service clock.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::error::AppResult;

/// Who acts: a signed-in user, or the system on a company's behalf (a job, a device, a
/// payment provider's notification).
pub trait Auditor: Sync {
    fn audit_company(&self) -> Uuid;
    fn audit_user(&self) -> Option<Uuid>;
}

/// The system acting for a company.
pub struct System(pub Uuid);

impl Auditor for System {
    fn audit_company(&self) -> Uuid {
        self.0
    }
    fn audit_user(&self) -> Option<Uuid> {
        None
    }
}

/// One audit row in the caller's transaction.
pub async fn record(
    tx: &mut PgConnection,
    at: DateTime<Utc>,
    by: &dyn Auditor,
    action: &str,
    entity: &str,
    entity_id: Option<Uuid>,
    detail: serde_json::Value,
) -> AppResult<()> {
    sqlx::query!(
        "INSERT INTO audit_log (id, company_id, actor_id, action, entity, entity_id, detail, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        Uuid::now_v7(),
        by.audit_company(),
        by.audit_user(),
        action,
        entity,
        entity_id,
        detail,
        at
    )
    .execute(tx)
    .await?;
    Ok(())
}
