//! SQL for the equipment ledger.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Device, DeviceCategory, DeviceStatus, Importance, TopicPath};

pub async fn insert(db: &mut PgConnection, d: &Device) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO devices (id, company_id, project_id, code, name, category, model, specification, manufacturer,
                              purchase_date, install_date, building_id, unit_id, location, warranty_expiry, status,
                              responsible_user_id, attributes, created_at, importance)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        d.id,
        d.company_id,
        d.project_id,
        d.code,
        d.name,
        d.category.as_str(),
        d.model,
        d.specification,
        d.manufacturer,
        d.purchase_date,
        d.install_date,
        d.building_id,
        d.unit_id,
        d.location,
        d.warranty_expiry,
        d.status.as_str(),
        d.responsible_user_id,
        d.attributes,
        d.created_at,
        d.importance.as_str()
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn update(db: &mut PgConnection, d: &Device) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE devices SET name = $3, model = $4, specification = $5, manufacturer = $6, purchase_date = $7,
                install_date = $8, building_id = $9, unit_id = $10, location = $11, warranty_expiry = $12, status = $13,
                responsible_user_id = $14, attributes = $15, importance = $16, updated_at = now()
         WHERE company_id = $1 AND id = $2",
        d.company_id,
        d.id,
        d.name,
        d.model,
        d.specification,
        d.manufacturer,
        d.purchase_date,
        d.install_date,
        d.building_id,
        d.unit_id,
        d.location,
        d.warranty_expiry,
        d.status.as_str(),
        d.responsible_user_id,
        d.attributes,
        d.importance.as_str()
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Device>> {
    sqlx::query_as!(
        Device,
        r#"SELECT id, company_id, project_id, code, name, category AS "category: DeviceCategory", model, specification,
                  manufacturer, purchase_date, install_date, building_id, unit_id, location, warranty_expiry,
                  status AS "status: DeviceStatus", responsible_user_id, attributes, created_at,
                  broker_username, broker_provisioned_at, importance AS "importance: Importance", house_id
           FROM devices WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn by_code(db: impl PgExecutor<'_>, company_id: Uuid, code: &str) -> sqlx::Result<Option<Device>> {
    sqlx::query_as!(
        Device,
        r#"SELECT id, company_id, project_id, code, name, category AS "category: DeviceCategory", model, specification,
                  manufacturer, purchase_date, install_date, building_id, unit_id, location, warranty_expiry,
                  status AS "status: DeviceStatus", responsible_user_id, attributes, created_at,
                  broker_username, broker_provisioned_at, importance AS "importance: Importance", house_id
           FROM devices WHERE company_id = $1 AND code = $2"#,
        company_id,
        code
    )
    .fetch_optional(db)
    .await
}

/// Codes among `codes` already used in the company (for imports).
pub async fn existing_codes(db: impl PgExecutor<'_>, company_id: Uuid, codes: &[String]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!("SELECT code FROM devices WHERE company_id = $1 AND code = ANY($2)", company_id, codes)
        .fetch_all(db)
        .await
}

pub struct DeviceFilter {
    /// `None`: every project of the company
    pub projects: Option<Vec<Uuid>>,
    pub project_id: Option<Uuid>,
    pub category: Option<DeviceCategory>,
    pub status: Option<DeviceStatus>,
    /// a `LIKE` term (`types::like_term`)
    pub search: Option<String>,
}

/// A keyset page in id order; only the filters given are in the SQL, so the
/// (project_id, category, status, id) index serves the common lists.
pub async fn list(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    f: &DeviceFilter,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Device>> {
    let mut q = sqlx::QueryBuilder::new(
        "SELECT id, company_id, project_id, code, name, category, model, specification, manufacturer, purchase_date,
                install_date, building_id, unit_id, location, warranty_expiry, status, responsible_user_id, attributes, created_at,
                broker_username, broker_provisioned_at, importance, house_id
         FROM devices WHERE company_id = ",
    );
    q.push_bind(company_id);
    if let Some(p) = f.project_id {
        q.push(" AND project_id = ").push_bind(p);
    } else if let Some(ps) = &f.projects {
        q.push(" AND project_id = ANY(").push_bind(ps.clone()).push(")");
    }
    if let Some(c) = f.category {
        q.push(" AND category = ").push_bind(c.as_str());
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(text) = &f.search {
        q.push(" AND (code ILIKE '%' || ")
            .push_bind(text.clone())
            .push(" || '%' ESCAPE '\\' OR name ILIKE '%' || ")
            .push_bind(text.clone());
        q.push(" || '%' ESCAPE '\\' OR location ILIKE '%' || ").push_bind(text.clone()).push(" || '%' ESCAPE '\\')");
    }
    if let Some(a) = after {
        q.push(" AND id > ").push_bind(a);
    }
    q.push(" ORDER BY id LIMIT ").push_bind(limit);
    q.build_query_as::<Device>().fetch_all(db).await
}

/// The device an MQTT topic names, (id, project, category), by (project code, device
/// code). Codes are unique per company; if two companies share both codes the topic is
/// ambiguous and nothing matches.
pub async fn for_topic(
    db: impl PgExecutor<'_>,
    path: &TopicPath,
) -> sqlx::Result<Option<(Uuid, Uuid, DeviceCategory)>> {
    let row = sqlx::query!(
        r#"SELECT d.id, d.project_id, d.category AS "category: DeviceCategory"
           FROM devices d JOIN companies c ON c.id = d.company_id
           WHERE c.code = $1 AND d.code = $2"#,
        path.company,
        path.device
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.id, r.project_id, r.category)))
}

/// A device's place on the broker (company, project and device codes).
pub async fn topic_path(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<TopicPath>> {
    let row = sqlx::query!(
        r#"SELECT c.code AS company, d.code AS device
           FROM devices d JOIN companies c ON c.id = d.company_id
           WHERE d.company_id = $1 AND d.id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| TopicPath { company: r.company, device: r.device }))
}

/// Records (or clears) a device's broker account.
pub async fn set_broker_account(
    db: &mut PgConnection,
    company_id: Uuid,
    id: Uuid,
    username: Option<&str>,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE devices SET broker_username = $3, broker_provisioned_at = $4, updated_at = now()
         WHERE company_id = $1 AND id = $2",
        company_id,
        id,
        username,
        at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The importance of each of `ids` (any company: the callers hold ids they were shown).
pub async fn importance_of(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Importance)>> {
    let rows =
        sqlx::query!(r#"SELECT id, importance AS "importance: Importance" FROM devices WHERE id = ANY($1)"#, ids)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.importance)).collect())
}
