//! SQL for the company profile, projects and their customer-service teams.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Company, Project, ProjectKind};

pub async fn insert_company(
    db: &mut PgConnection,
    id: Uuid,
    name: &str,
    code: &str,
    credit_code: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO companies (id, name, code, credit_code) VALUES ($1, $2, $3, $4)",
        id,
        name,
        code,
        credit_code
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn company_by_name(db: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Option<Company>> {
    sqlx::query_as!(
        Company,
        "SELECT id, name, code, address, phone, credit_code, logo_key, created_at FROM companies WHERE name = $1 ORDER BY id LIMIT 1",
        name
    )
    .fetch_optional(db)
    .await
}

pub async fn get_company(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Company>> {
    sqlx::query_as!(
        Company,
        "SELECT id, name, code, address, phone, credit_code, logo_key, created_at FROM companies WHERE id = $1",
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn update_company(db: &mut PgConnection, c: &Company) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE companies SET name = $2, address = $3, phone = $4, credit_code = $5, logo_key = $6, updated_at = now() WHERE id = $1",
        c.id,
        c.name,
        c.address,
        c.phone,
        c.credit_code,
        c.logo_key
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn insert_project(db: &mut PgConnection, p: &Project) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO projects (id, company_id, name, code, address, kind, building_area, households, manager_id,
                               geofence_lat, geofence_lng, geofence_radius_m)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        p.id,
        p.company_id,
        p.name,
        p.code,
        p.address,
        p.kind.as_str(),
        p.building_area,
        p.households,
        p.manager_id,
        p.geofence_lat,
        p.geofence_lng,
        p.geofence_radius_m
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn update_project(db: &mut PgConnection, p: &Project) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE projects SET name = $3, code = $4, address = $5, kind = $6, building_area = $7, households = $8,
                manager_id = $9, geofence_lat = $10, geofence_lng = $11, geofence_radius_m = $12, updated_at = now()
         WHERE company_id = $1 AND id = $2",
        p.company_id,
        p.id,
        p.name,
        p.code,
        p.address,
        p.kind.as_str(),
        p.building_area,
        p.households,
        p.manager_id,
        p.geofence_lat,
        p.geofence_lng,
        p.geofence_radius_m
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_project(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Project>> {
    sqlx::query_as!(
        Project,
        r#"SELECT id, company_id, name, code, address, kind AS "kind: ProjectKind", building_area, households,
                  manager_id, geofence_lat, geofence_lng, geofence_radius_m, created_at
           FROM projects WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// Projects in id order; `only` limits to listed ones, `search` is a `like_term`.
pub async fn list_projects(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    only: Option<&[Uuid]>,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Project>> {
    sqlx::query_as!(
        Project,
        r#"SELECT id, company_id, name, code, address, kind AS "kind: ProjectKind", building_area, households,
                  manager_id, geofence_lat, geofence_lng, geofence_radius_m, created_at
           FROM projects
           WHERE company_id = $1 AND ($2::uuid[] IS NULL OR id = ANY($2))
             AND ($3::text IS NULL OR name ILIKE '%' || $3 || '%' ESCAPE '\' OR code ILIKE '%' || $3 || '%' ESCAPE '\')
             AND ($4::uuid IS NULL OR id > $4)
           ORDER BY id LIMIT $5"#,
        company_id,
        only,
        search,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn set_service_staff(db: &mut PgConnection, project_id: Uuid, users: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM project_service_staff WHERE project_id = $1", project_id).execute(&mut *db).await?;
    sqlx::query!(
        "INSERT INTO project_service_staff (project_id, user_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
        project_id,
        users
    )
    .execute(db)
    .await?;
    Ok(())
}

/// (project, staff account) pairs of the projects' customer-service teams.
pub async fn service_staff(db: impl PgExecutor<'_>, project_ids: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query!(
        "SELECT project_id, user_id FROM project_service_staff WHERE project_id = ANY($1) ORDER BY user_id",
        project_ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.project_id, r.user_id)).collect())
}

/// The office cards of projects of the company: (id, name, address, service phone, publish).
pub async fn office_rows(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    ids: &[Uuid],
) -> sqlx::Result<Vec<(Uuid, String, String, String, bool)>> {
    let rows = sqlx::query!(
        "SELECT id, name, address, service_phone, publish_contacts FROM projects
         WHERE company_id = $1 AND id = ANY($2) ORDER BY name",
        company_id,
        ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.name, r.address, r.service_phone, r.publish_contacts)).collect())
}

/// The manager and the customer-service team of projects, active accounts only:
/// (project, role, name, phone).
pub async fn office_contacts(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> sqlx::Result<Vec<(Uuid, String, String, Option<String>)>> {
    let rows = sqlx::query!(
        r#"SELECT p.id AS "project!", 'manager' AS "role!", u.name AS "name!", u.phone
           FROM projects p JOIN users u ON u.id = p.manager_id
           WHERE p.id = ANY($1) AND u.status = 'active'
           UNION ALL
           SELECT s.project_id, 'service', u.name, u.phone
           FROM project_service_staff s JOIN users u ON u.id = s.user_id
           WHERE s.project_id = ANY($1) AND u.status = 'active'
           ORDER BY 1, 2, 3"#,
        ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.project, r.role, r.name, r.phone)).collect())
}

pub async fn set_office(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    id: Uuid,
    service_phone: &str,
    publish: bool,
    at: chrono::DateTime<chrono::Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE projects SET service_phone = $3, publish_contacts = $4, updated_at = $5 WHERE company_id = $1 AND id = $2",
        company_id,
        id,
        service_phone,
        publish,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}
