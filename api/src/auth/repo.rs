//! SQL for credentials (the password columns of `users`) and refresh tokens.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{Credentials, RefreshRow};
use crate::kit::gql::ClientApp;
use crate::rbac::model::AccountStatus;

/// Accounts a sign-in name may mean: a username (unique on the server) or a phone (one
/// account per company), optionally within one company.
pub async fn credentials_by_login(
    db: impl PgExecutor<'_>,
    login: &str,
    company_id: Option<Uuid>,
) -> sqlx::Result<Vec<Credentials>> {
    sqlx::query_as!(
        Credentials,
        r#"SELECT u.id, u.company_id, c.name AS company_name, u.status AS "status: AccountStatus", u.password_hash,
                  u.must_change_password, u.tokens_valid_after, u.sessions_valid_after,
                  (u.username IS NOT NULL OR EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                          WHERE ur.user_id = u.id AND r.code <> 'owner')) AS "is_staff!",
                  EXISTS (SELECT 1 FROM owners o WHERE o.user_id = u.id) AS "is_owner!"
           FROM users u JOIN companies c ON c.id = u.company_id
           WHERE (u.username = lower($1) OR u.phone = $1) AND ($2::uuid IS NULL OR u.company_id = $2)
           ORDER BY u.id LIMIT 10"#,
        login,
        company_id
    )
    .fetch_all(db)
    .await
}

pub async fn credentials_by_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as!(
        Credentials,
        r#"SELECT u.id, u.company_id, c.name AS company_name, u.status AS "status: AccountStatus", u.password_hash,
                  u.must_change_password, u.tokens_valid_after, u.sessions_valid_after,
                  (u.username IS NOT NULL OR EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                          WHERE ur.user_id = u.id AND r.code <> 'owner')) AS "is_staff!",
                  EXISTS (SELECT 1 FROM owners o WHERE o.user_id = u.id) AS "is_owner!"
           FROM users u JOIN companies c ON c.id = u.company_id WHERE u.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// The account behind a refresh, its row share-locked: a password change or sign-out of
/// the same user waits for the refresh to commit (and its new token is then revoked), or
/// the refresh waits for them and sees the sessions ended.
pub async fn credentials_for_refresh(db: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as!(
        Credentials,
        r#"SELECT u.id, u.company_id, c.name AS company_name, u.status AS "status: AccountStatus", u.password_hash,
                  u.must_change_password, u.tokens_valid_after, u.sessions_valid_after,
                  (u.username IS NOT NULL OR EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                          WHERE ur.user_id = u.id AND r.code <> 'owner')) AS "is_staff!",
                  EXISTS (SELECT 1 FROM owners o WHERE o.user_id = u.id) AS "is_owner!"
           FROM users u JOIN companies c ON c.id = u.company_id WHERE u.id = $1 FOR SHARE OF u"#,
        id
    )
    .fetch_optional(db)
    .await
}

pub async fn set_password(db: &mut PgConnection, id: Uuid, hash: &str, must_change: bool) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2, must_change_password = $3, updated_at = now() WHERE id = $1",
        id,
        hash,
        must_change
    )
    .execute(db)
    .await?;
    Ok(())
}

/// An owner account registered by the property office becomes usable.
pub async fn activate(db: &mut PgConnection, id: Uuid, hash: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE users SET password_hash = $2, must_change_password = false, status = 'active', updated_at = now()
         WHERE id = $1 AND status = 'pending'",
        id,
        hash
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn touch_sign_in(db: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!("UPDATE users SET last_sign_in_at = $2 WHERE id = $1", id, at).execute(db).await?;
    Ok(())
}

pub async fn insert_refresh(
    db: &mut PgConnection,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: &[u8],
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    app: ClientApp,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at, app)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Uuid::now_v7(),
        user_id,
        family_id,
        token_hash,
        created_at,
        expires_at,
        app.as_str()
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Looks a token up and locks it, so two concurrent refreshes cannot both rotate it.
pub async fn refresh_for_update(db: &mut PgConnection, token_hash: &[u8]) -> sqlx::Result<Option<RefreshRow>> {
    sqlx::query_as!(
        RefreshRow,
        r#"SELECT user_id, family_id, expires_at, created_at, used_at IS NOT NULL AS "used!",
                  revoked_at IS NOT NULL AS "revoked!", app AS "app: ClientApp"
           FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE"#,
        token_hash
    )
    .fetch_optional(db)
    .await
}

pub async fn mark_used(db: &mut PgConnection, token_hash: &[u8], at: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query!("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", token_hash, at).execute(db).await?;
    Ok(())
}

pub async fn revoke_family(db: &mut PgConnection, family_id: Uuid, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

pub async fn revoke_user(db: &mut PgConnection, user_id: Uuid, at: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL", user_id, at)
        .execute(db)
        .await?
        .rows_affected())
}
