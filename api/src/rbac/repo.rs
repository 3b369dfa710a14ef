//! SQL for users, roles and role assignments.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

pub use super::model::UserRow;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoleRow {
    pub id: Uuid,
    pub company_id: Uuid,
    pub code: String,
    pub name: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssignmentRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub role_id: Uuid,
    pub role_code: String,
    pub role_name: String,
    pub permissions: Vec<String>,
    pub scope: String,
    pub project_ids: Vec<Uuid>,
}

pub struct ActorRow {
    pub user: UserRow,
    pub owner_id: Option<Uuid>,
}

pub async fn actor_user(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Option<ActorRow>> {
    let row = sqlx::query!(
        r#"SELECT u.id, u.company_id, u.kind, u.username, u.phone, u.name, u.status,
                  u.must_change_password, u.created_at, u.last_sign_in_at, o.id AS "owner_id?"
           FROM users u LEFT JOIN owners o ON o.user_id = u.id
           WHERE u.id = $1"#,
        user_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| ActorRow {
        owner_id: r.owner_id,
        user: UserRow {
            id: r.id,
            company_id: r.company_id,
            kind: r.kind,
            username: r.username,
            phone: r.phone,
            name: r.name,
            status: r.status,
            must_change_password: r.must_change_password,
            created_at: r.created_at,
            last_sign_in_at: r.last_sign_in_at,
        },
    }))
}

pub async fn assignments_of(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Vec<AssignmentRow>> {
    sqlx::query_as!(
        AssignmentRow,
        r#"SELECT ur.id, ur.user_id, ur.role_id, r.code AS role_code, r.name AS role_name,
                  r.permissions, ur.scope, ur.project_ids
           FROM user_roles ur JOIN roles r ON r.id = ur.role_id
           WHERE ur.user_id = $1 ORDER BY r.code"#,
        user_id
    )
    .fetch_all(db)
    .await
}

pub async fn assignments_of_users(db: impl PgExecutor<'_>, user_ids: &[Uuid]) -> sqlx::Result<Vec<AssignmentRow>> {
    sqlx::query_as!(
        AssignmentRow,
        r#"SELECT ur.id, ur.user_id, ur.role_id, r.code AS role_code, r.name AS role_name,
                  r.permissions, ur.scope, ur.project_ids
           FROM user_roles ur JOIN roles r ON r.id = ur.role_id
           WHERE ur.user_id = ANY($1) ORDER BY r.code"#,
        user_ids
    )
    .fetch_all(db)
    .await
}

/// Projects a staff member serves as manager or customer service: their "own" scope.
pub async fn own_projects(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM projects WHERE manager_id = $1
           UNION SELECT project_id FROM project_service_staff WHERE user_id = $1"#,
        user_id
    )
    .fetch_all(db)
    .await
}

pub async fn list_roles(db: impl PgExecutor<'_>, company_id: Uuid) -> sqlx::Result<Vec<RoleRow>> {
    sqlx::query_as!(
        RoleRow,
        "SELECT id, company_id, code, name, builtin, permissions FROM roles WHERE company_id = $1 ORDER BY builtin DESC, code",
        company_id
    )
    .fetch_all(db)
    .await
}

pub async fn get_role(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<RoleRow>> {
    sqlx::query_as!(
        RoleRow,
        "SELECT id, company_id, code, name, builtin, permissions FROM roles WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn role_by_code(db: impl PgExecutor<'_>, company_id: Uuid, code: &str) -> sqlx::Result<Option<RoleRow>> {
    sqlx::query_as!(
        RoleRow,
        "SELECT id, company_id, code, name, builtin, permissions FROM roles WHERE company_id = $1 AND code = $2",
        company_id,
        code
    )
    .fetch_optional(db)
    .await
}

pub async fn insert_role(db: &mut PgConnection, r: &RoleRow) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO roles (id, company_id, code, name, builtin, permissions) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (company_id, code) DO NOTHING",
        r.id,
        r.company_id,
        r.code,
        r.name,
        r.builtin,
        &r.permissions
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn update_role(db: &mut PgConnection, r: &RoleRow) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE roles SET name = $3, permissions = $4, updated_at = now() WHERE company_id = $1 AND id = $2",
        r.company_id,
        r.id,
        r.name,
        &r.permissions
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn delete_role(db: &mut PgConnection, company_id: Uuid, id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM roles WHERE company_id = $1 AND id = $2 AND NOT builtin", company_id, id)
        .execute(db)
        .await?
        .rows_affected())
}

/// Users holding a role (to refresh their cached permissions).
pub async fn holders_of_role(db: impl PgExecutor<'_>, role_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!("SELECT user_id FROM user_roles WHERE role_id = $1", role_id).fetch_all(db).await
}

pub async fn upsert_assignment(
    db: &mut PgConnection,
    company_id: Uuid,
    user_id: Uuid,
    role_id: Uuid,
    scope: &str,
    project_ids: &[Uuid],
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "INSERT INTO user_roles (id, company_id, user_id, role_id, scope, project_ids) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id, role_id) DO UPDATE SET scope = EXCLUDED.scope, project_ids = EXCLUDED.project_ids
         RETURNING id",
        Uuid::now_v7(),
        company_id,
        user_id,
        role_id,
        scope,
        project_ids
    )
    .fetch_one(db)
    .await
}

pub async fn get_assignment(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<AssignmentRow>> {
    sqlx::query_as!(
        AssignmentRow,
        r#"SELECT ur.id, ur.user_id, ur.role_id, r.code AS role_code, r.name AS role_name,
                  r.permissions, ur.scope, ur.project_ids
           FROM user_roles ur JOIN roles r ON r.id = ur.role_id
           WHERE ur.company_id = $1 AND ur.id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn delete_assignment(db: &mut PgConnection, company_id: Uuid, id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM user_roles WHERE company_id = $1 AND id = $2", company_id, id)
        .execute(db)
        .await?
        .rows_affected())
}

pub struct NewUser<'a> {
    pub id: Uuid,
    pub company_id: Uuid,
    pub kind: &'a str,
    pub username: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub name: &'a str,
    pub password_hash: Option<&'a str>,
    pub must_change_password: bool,
    pub status: &'a str,
}

pub async fn insert_user(db: &mut PgConnection, u: &NewUser<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO users (id, company_id, kind, username, phone, name, password_hash, must_change_password, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        u.id,
        u.company_id,
        u.kind,
        u.username,
        u.phone,
        u.name,
        u.password_hash,
        u.must_change_password,
        u.status
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_user(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, company_id, kind, username, phone, name, status, must_change_password, created_at, last_sign_in_at
         FROM users WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// Staff users, newest id last; `projects` limits to users with a role in one of them.
pub async fn list_staff(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    projects: Option<&[Uuid]>,
    only_user: Option<Uuid>,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, company_id, kind, username, phone, name, status, must_change_password, created_at, last_sign_in_at
           FROM users u
           WHERE company_id = $1 AND kind = 'staff'
             AND ($2::uuid[] IS NULL OR EXISTS (
                   SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.project_ids && $2))
             AND ($3::uuid IS NULL OR id = $3)
             AND ($4::text IS NULL OR name ILIKE '%' || $4 || '%' OR username ILIKE '%' || $4 || '%' OR phone LIKE '%' || $4 || '%')
             AND ($5::uuid IS NULL OR id > $5)
           ORDER BY id LIMIT $6"#,
        company_id,
        projects,
        only_user,
        search,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn update_user(
    db: &mut PgConnection,
    company_id: Uuid,
    id: Uuid,
    name: &str,
    phone: Option<&str>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE users SET name = $3, phone = $4, updated_at = now() WHERE company_id = $1 AND id = $2",
        company_id,
        id,
        name,
        phone
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn set_status(db: &mut PgConnection, company_id: Uuid, id: Uuid, status: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE users SET status = $3, updated_at = now() WHERE company_id = $1 AND id = $2",
        company_id,
        id,
        status
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn insert_audit(
    db: &mut PgConnection,
    company_id: Uuid,
    actor_id: Option<Uuid>,
    action: &str,
    entity: &str,
    entity_id: Option<Uuid>,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO audit_log (id, company_id, actor_id, action, entity, entity_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Uuid::now_v7(),
        company_id,
        actor_id,
        action,
        entity,
        entity_id,
        detail
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn user_id_by_phone(db: impl PgExecutor<'_>, phone: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM users WHERE phone = $1", phone).fetch_optional(db).await
}

pub async fn count_users(db: impl PgExecutor<'_>, company_id: Uuid, ids: &[Uuid]) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM users WHERE company_id = $1 AND id = ANY($2)"#, company_id, ids)
        .fetch_one(db)
        .await
}

pub async fn set_builtin_permissions(db: impl PgExecutor<'_>, code: &str, perms: &[String]) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE roles SET permissions = $2, updated_at = now() WHERE builtin AND code = $1 AND permissions <> $2",
        code,
        perms
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Active staff whose grants reach a project (company-wide, listed, or serving it).
pub async fn staff_of_project(db: impl PgExecutor<'_>, company_id: Uuid, project_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id
           WHERE u.company_id = $1 AND u.kind = 'staff' AND u.status = 'active'
             AND (ur.scope = 'company' OR $2 = ANY(ur.project_ids)
                  OR (ur.scope = 'own' AND (EXISTS (SELECT 1 FROM projects p WHERE p.id = $2 AND p.manager_id = u.id)
                                         OR EXISTS (SELECT 1 FROM project_service_staff s WHERE s.project_id = $2 AND s.user_id = u.id))))"#,
        company_id,
        project_id
    )
    .fetch_all(db)
    .await
}
