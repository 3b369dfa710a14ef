//! The devices the simulator publishes for (read from the ledger's tables).

use sqlx::PgExecutor;

use super::model::SimDevice;
use crate::equipment::model::{DeviceCategory, DeviceStatus};

/// In-use and standby devices of the given project codes (all when empty), by project and code.
pub async fn sim_devices(db: impl PgExecutor<'_>, projects: &[String], limit: i64) -> sqlx::Result<Vec<SimDevice>> {
    sqlx::query_as!(
        SimDevice,
        r#"SELECT c.code AS company, d.code, d.category AS "category: DeviceCategory"
           FROM devices d JOIN projects p ON p.id = d.project_id JOIN companies c ON c.id = d.company_id
           WHERE d.status IN ($3, $4) AND (cardinality($1::text[]) = 0 OR p.code = ANY($1))
           ORDER BY c.code, d.code LIMIT $2"#,
        projects,
        limit,
        DeviceStatus::InUse.as_str(),
        DeviceStatus::Standby.as_str()
    )
    .fetch_all(db)
    .await
}
