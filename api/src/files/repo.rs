//! SQL for private files.

use sqlx::PgExecutor;
use uuid::Uuid;

use super::model::{Purpose, StoredFile};

/// A stored file's row. Upload keys are new ids; a generated document's key names what it
/// shows, so the same document made twice is kept once.
pub async fn insert(db: impl PgExecutor<'_>, f: &StoredFile) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO files (id, company_id, uploaded_by, purpose, key, content_type, size_bytes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING",
        f.id,
        f.company_id,
        f.uploaded_by,
        f.purpose.as_str(),
        f.key,
        f.content_type,
        f.size_bytes,
        f.created_at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Removes the rows of a document's earlier versions (keys starting with `prefix`, other
/// than `keep`); returns their keys.
pub async fn remove_versions(db: impl PgExecutor<'_>, prefix: &str, keep: &str) -> sqlx::Result<Vec<String>> {
    let like = format!("{}%", prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    sqlx::query_scalar!("DELETE FROM files WHERE key LIKE $1 AND key <> $2 RETURNING key", like, keep)
        .fetch_all(db)
        .await
}

/// Whether a file is stored under this key.
pub async fn exists(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM files WHERE key = $1) AS "e!""#, key).fetch_one(db).await
}

/// How many of `keys` (photos) the user uploaded in the company.
pub async fn count_own(db: impl PgExecutor<'_>, company_id: Uuid, user: Uuid, keys: &[String]) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM files
           WHERE company_id = $1 AND uploaded_by = $2 AND key = ANY($3)
             AND purpose IN ('work_order', 'feedback', 'maintenance', 'staff')"#,
        company_id,
        user,
        keys
    )
    .fetch_one(db)
    .await
}

pub async fn get_by_key(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<Option<StoredFile>> {
    sqlx::query_as!(
        StoredFile,
        r#"SELECT id, company_id, uploaded_by, purpose AS "purpose: Purpose", key, content_type, size_bytes, created_at
           FROM files WHERE key = $1"#,
        key
    )
    .fetch_optional(db)
    .await
}
