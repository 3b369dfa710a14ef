//! SQL for accounts, roles and grants. Scopes name projects: the "own" scope and the
//! validation of granted project ids read the project tables (written by `org`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Account, AccountStatus, GrantScope, Role, RoleGrant};

pub struct ActorRow {
    pub account: Account,
    pub owner_id: Option<Uuid>,
    pub tokens_valid_after: Option<DateTime<Utc>>,
}

pub async fn actor_account(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Option<ActorRow>> {
    let row = sqlx::query!(
        r#"SELECT u.id, u.company_id, u.username, u.phone, u.name, u.status AS "status: AccountStatus",
                  u.must_change_password, u.created_at, u.last_sign_in_at, u.tokens_valid_after,
                  o.id AS "owner_id?",
                  (u.username IS NOT NULL OR EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                          WHERE ur.user_id = u.id AND r.code <> 'owner')) AS "is_staff!"
           FROM users u LEFT JOIN owners o ON o.user_id = u.id
           WHERE u.id = $1"#,
        user_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| ActorRow {
        owner_id: r.owner_id,
        tokens_valid_after: r.tokens_valid_after,
        account: Account {
            id: r.id,
            company_id: r.company_id,
            username: r.username,
            phone: r.phone,
            name: r.name,
            status: r.status,
            must_change_password: r.must_change_password,
            created_at: r.created_at,
            last_sign_in_at: r.last_sign_in_at,
            is_staff: r.is_staff,
        },
    }))
}

pub async fn get_account(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Account>> {
    sqlx::query_as!(
        Account,
        r#"SELECT id, company_id, username, phone, name, status AS "status: AccountStatus", must_change_password,
                  created_at, last_sign_in_at,
                  (u.username IS NOT NULL OR EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                          WHERE ur.user_id = u.id AND r.code <> 'owner')) AS "is_staff!"
           FROM users u WHERE company_id = $1 AND id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// Staff accounts (with a username, or holding a role other than the owner role) in id
/// order; `projects` limits to accounts with a grant listing one of them.
pub async fn list_staff(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    projects: Option<&[Uuid]>,
    only_user: Option<Uuid>,
    search: &super::service::PersonSearch,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Account>> {
    sqlx::query_as!(
        Account,
        r#"SELECT id, company_id, username, phone, name, status AS "status: AccountStatus", must_change_password,
                  created_at, last_sign_in_at, true AS "is_staff!"
           FROM users u
           WHERE company_id = $1
             AND (($2::uuid[] IS NULL AND username IS NOT NULL)
                  OR EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                             WHERE ur.user_id = u.id AND r.code <> 'owner'
                               AND ($2::uuid[] IS NULL OR ur.project_ids && $2)))
             AND ($3::uuid IS NULL OR id = $3)
             AND ($4::text IS NULL OR name ILIKE '%' || $4 || '%' ESCAPE '\' OR username ILIKE '%' || $4 || '%' ESCAPE '\'
                  OR ($7 AND phone LIKE '%' || $4 || '%' ESCAPE '\'))
             AND ($8::text IS NULL OR phone = $8)
             AND ($5::uuid IS NULL OR id > $5)
           ORDER BY id LIMIT $6"#,
        company_id,
        projects,
        only_user,
        search.like.as_deref(),
        after,
        limit,
        search.phone_partial,
        search.phone_exact.as_deref()
    )
    .fetch_all(db)
    .await
}

pub async fn grants_of(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Vec<RoleGrant>> {
    sqlx::query_as!(
        RoleGrant,
        r#"SELECT ur.id, ur.user_id, ur.role_id, r.code AS role_code, r.name AS role_name,
                  r.permissions, ur.scope AS "scope: GrantScope", ur.project_ids
           FROM user_roles ur JOIN roles r ON r.id = ur.role_id
           WHERE ur.user_id = $1 ORDER BY r.code"#,
        user_id
    )
    .fetch_all(db)
    .await
}

pub async fn grants_of_users(db: impl PgExecutor<'_>, user_ids: &[Uuid]) -> sqlx::Result<Vec<RoleGrant>> {
    sqlx::query_as!(
        RoleGrant,
        r#"SELECT ur.id, ur.user_id, ur.role_id, r.code AS role_code, r.name AS role_name,
                  r.permissions, ur.scope AS "scope: GrantScope", ur.project_ids
           FROM user_roles ur JOIN roles r ON r.id = ur.role_id
           WHERE ur.user_id = ANY($1) ORDER BY r.code"#,
        user_ids
    )
    .fetch_all(db)
    .await
}

pub async fn get_grant(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<RoleGrant>> {
    sqlx::query_as!(
        RoleGrant,
        r#"SELECT ur.id, ur.user_id, ur.role_id, r.code AS role_code, r.name AS role_name,
                  r.permissions, ur.scope AS "scope: GrantScope", ur.project_ids
           FROM user_roles ur JOIN roles r ON r.id = ur.role_id
           WHERE ur.company_id = $1 AND ur.id = $2"#,
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

/// The grant of one role to one account, if any.
pub async fn grant_of(db: impl PgExecutor<'_>, user_id: Uuid, role_id: Uuid) -> sqlx::Result<Option<RoleGrant>> {
    sqlx::query_as!(
        RoleGrant,
        r#"SELECT ur.id, ur.user_id, ur.role_id, r.code AS role_code, r.name AS role_name,
                  r.permissions, ur.scope AS "scope: GrantScope", ur.project_ids
           FROM user_roles ur JOIN roles r ON r.id = ur.role_id
           WHERE ur.user_id = $1 AND ur.role_id = $2"#,
        user_id,
        role_id
    )
    .fetch_optional(db)
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

/// Every project id of a company.
pub async fn company_projects(db: impl PgExecutor<'_>, company_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM projects WHERE company_id = $1", company_id).fetch_all(db).await
}

/// How many of `ids` are projects of the company.
pub async fn count_projects(db: impl PgExecutor<'_>, company_id: Uuid, ids: &[Uuid]) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM projects WHERE company_id = $1 AND id = ANY($2)"#,
        company_id,
        ids
    )
    .fetch_one(db)
    .await
}

pub async fn list_roles(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Role>> {
    sqlx::query_as!(
        Role,
        "SELECT id, company_id, code, name, builtin, permissions FROM roles
         WHERE company_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        company_id,
        after,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn get_role(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid) -> sqlx::Result<Option<Role>> {
    sqlx::query_as!(
        Role,
        "SELECT id, company_id, code, name, builtin, permissions FROM roles WHERE company_id = $1 AND id = $2",
        company_id,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn role_by_code(db: impl PgExecutor<'_>, company_id: Uuid, code: &str) -> sqlx::Result<Option<Role>> {
    sqlx::query_as!(
        Role,
        "SELECT id, company_id, code, name, builtin, permissions FROM roles WHERE company_id = $1 AND code = $2",
        company_id,
        code
    )
    .fetch_optional(db)
    .await
}

pub async fn insert_role(db: &mut PgConnection, r: &Role) -> sqlx::Result<()> {
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

pub async fn update_role(db: &mut PgConnection, r: &Role) -> sqlx::Result<()> {
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

/// Accounts holding a role (to refresh their cached permissions).
pub async fn holders_of_role(db: impl PgExecutor<'_>, role_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!("SELECT user_id FROM user_roles WHERE role_id = $1", role_id).fetch_all(db).await
}

pub async fn upsert_grant(
    db: &mut PgConnection,
    company_id: Uuid,
    user_id: Uuid,
    role_id: Uuid,
    scope: GrantScope,
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
        scope.as_str(),
        project_ids
    )
    .fetch_one(db)
    .await
}

pub async fn delete_grant(db: &mut PgConnection, company_id: Uuid, id: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM user_roles WHERE company_id = $1 AND id = $2", company_id, id)
        .execute(db)
        .await?
        .rows_affected())
}

pub struct NewAccount<'a> {
    pub id: Uuid,
    pub company_id: Uuid,
    pub username: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub name: &'a str,
    pub password_hash: Option<&'a str>,
    pub must_change_password: bool,
    pub status: AccountStatus,
}

pub async fn insert_account(db: &mut PgConnection, u: &NewAccount<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO users (id, company_id, username, phone, name, password_hash, must_change_password, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        u.id,
        u.company_id,
        u.username,
        u.phone,
        u.name,
        u.password_hash,
        u.must_change_password,
        u.status.as_str()
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn account_by_phone(db: impl PgExecutor<'_>, company_id: Uuid, phone: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM users WHERE company_id = $1 AND phone = $2", company_id, phone)
        .fetch_optional(db)
        .await
}

pub async fn update_account(
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

/// A status change; leaving `active` ends every session at `at`.
pub async fn set_status(
    db: &mut PgConnection,
    company_id: Uuid,
    id: Uuid,
    status: AccountStatus,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE users SET status = $3, updated_at = now(),
                tokens_valid_after = CASE WHEN $3 = 'active' THEN tokens_valid_after ELSE $4 END,
                sessions_valid_after = CASE WHEN $3 = 'active' THEN sessions_valid_after ELSE $4 END
         WHERE company_id = $1 AND id = $2",
        company_id,
        id,
        status.as_str(),
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// The instant the user's tokens are valid after, locked for the revocation that follows.
pub async fn lock_tokens_valid_after(db: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar!("SELECT tokens_valid_after FROM users WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(db)
        .await?
        .flatten())
}

/// Ends access tokens issued before `tokens` and, with `sessions`, refresh tokens created
/// before `sessions_at`.
pub async fn end_sessions(
    db: &mut PgConnection,
    id: Uuid,
    tokens: DateTime<Utc>,
    sessions_at: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET tokens_valid_after = $2, sessions_valid_after = COALESCE($3, sessions_valid_after)
         WHERE id = $1",
        id,
        tokens,
        sessions_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn count_accounts(db: impl PgExecutor<'_>, company_id: Uuid, ids: &[Uuid]) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM users WHERE company_id = $1 AND id = ANY($2)"#, company_id, ids)
        .fetch_one(db)
        .await
}

/// How many of `ids` are staff accounts of the company.
pub async fn count_staff(db: impl PgExecutor<'_>, company_id: Uuid, ids: &[Uuid]) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM users u WHERE company_id = $1 AND id = ANY($2)
             AND (username IS NOT NULL OR EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                                                  WHERE ur.user_id = u.id AND r.code <> 'owner'))"#,
        company_id,
        ids
    )
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
        r#"SELECT DISTINCT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
           WHERE u.company_id = $1 AND u.status = 'active' AND r.code <> 'owner'
             AND (ur.scope = 'company' OR $2 = ANY(ur.project_ids)
                  OR (ur.scope = 'own' AND (EXISTS (SELECT 1 FROM projects p WHERE p.id = $2 AND p.manager_id = u.id)
                                         OR EXISTS (SELECT 1 FROM project_service_staff s WHERE s.project_id = $2 AND s.user_id = u.id))))"#,
        company_id,
        project_id
    )
    .fetch_all(db)
    .await
}

/// Active staff holding `perm` over a project, administrators excepted (they hold every
/// permission, not a duty): e.g. who is on duty for alarms (`alarm:duty`).
pub async fn duty_holders(
    db: impl PgExecutor<'_>,
    company_id: Uuid,
    project_id: Uuid,
    perm: &str,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
           WHERE u.company_id = $1 AND u.status = 'active' AND r.code <> 'admin' AND $3 = ANY(r.permissions)
             AND (ur.scope = 'company' OR $2 = ANY(ur.project_ids)
                  OR (ur.scope = 'own' AND (EXISTS (SELECT 1 FROM projects p WHERE p.id = $2 AND p.manager_id = u.id)
                                         OR EXISTS (SELECT 1 FROM project_service_staff s WHERE s.project_id = $2 AND s.user_id = u.id))))"#,
        company_id,
        project_id,
        perm
    )
    .fetch_all(db)
    .await
}

/// The project's manager, else the active holders of the project-manager role over it.
pub async fn project_managers(db: impl PgExecutor<'_>, company_id: Uuid, project_id: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"SELECT p.manager_id AS "id!" FROM projects p WHERE p.id = $2 AND p.company_id = $1 AND p.manager_id IS NOT NULL
           UNION
           SELECT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
           WHERE u.company_id = $1 AND u.status = 'active' AND r.code = 'project_manager'
             AND (ur.scope = 'company' OR $2 = ANY(ur.project_ids))
             AND NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = $2 AND p.manager_id IS NOT NULL)"#,
        company_id,
        project_id
    )
    .fetch_all(db)
    .await
}

pub async fn set_skills(db: impl PgExecutor<'_>, company_id: Uuid, id: Uuid, skills: &[String]) -> sqlx::Result<u64> {
    Ok(sqlx::query!("UPDATE users SET skills = $3 WHERE company_id = $1 AND id = $2", company_id, id, skills)
        .execute(db)
        .await?
        .rows_affected())
}

pub async fn skills_of(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Vec<String>)>> {
    let rows = sqlx::query!("SELECT id, skills FROM users WHERE id = ANY($1)", ids).fetch_all(db).await?;
    Ok(rows.into_iter().map(|r| (r.id, r.skills)).collect())
}

/// An account's name.
pub async fn names_of(db: impl PgExecutor<'_>, company: Uuid, ids: &[Uuid]) -> sqlx::Result<Vec<(Uuid, String)>> {
    let rows = sqlx::query!("SELECT id, name FROM users WHERE company_id = $1 AND id = ANY($2)", company, ids)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.name)).collect())
}

pub async fn name_of(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT name FROM users WHERE id = $1", id).fetch_optional(db).await
}
