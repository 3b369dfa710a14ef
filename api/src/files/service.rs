//! 私有文件 rules: who may upload what, attaching only one's own uploads, signed URLs.

use uuid::Uuid;

use super::model::{Purpose, StoredFile};
use super::repo;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::storage::sniff_image;
use crate::rbac::model::{Actor, Perm};

/// How long a signed URL of a private file works.
pub const URL_SECS: i64 = 300;

/// Where private files are served (signed URLs only).
pub const ROUTE: &str = "/private";

fn bad_file(zh: &'static str, en: &'static str) -> AppError {
    AppError::validation("file", Msg::new(zh, en))
}

/// Stores an uploaded photo (PNG or JPEG, recognised by its first bytes, within the upload
/// size limit) as a private file of the caller; returns its key. Staff may upload for any
/// purpose, owners for their repairs and feedback.
pub async fn upload(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    purpose: Purpose,
    bytes: Vec<u8>,
) -> AppResult<String> {
    if actor.must_change_password {
        return Err(crate::rbac::model::password_change_required());
    }
    if !purpose.is_photo() {
        return Err(bad_file("只能上传照片", "Only photos can be uploaded"));
    }
    let owner_may = matches!(purpose, Purpose::WorkOrder | Purpose::Feedback) && actor.has(Perm::SelfHouse);
    if !actor.is_staff() && !owner_may {
        return Err(AppError::forbidden());
    }
    let max = state.config.limits.max_upload_bytes;
    if bytes.is_empty() {
        return Err(bad_file("文件为空", "The file is empty"));
    }
    if bytes.len() > max {
        return Err(AppError::validation(
            "file",
            Msg::owned(format!("文件不能超过{}KB", max / 1024), format!("A file is at most {} KB", max / 1024)),
        ));
    }
    let Some((content_type, ext)) = sniff_image(&bytes) else {
        return Err(bad_file("只接受PNG或JPEG图片", "Only PNG or JPEG images are accepted"));
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let id = Uuid::now_v7();
    let key = format!("private/{}/{}/{}.{ext}", actor.company_id, purpose.as_str(), id.simple());
    let f = StoredFile {
        id,
        company_id: actor.company_id,
        uploaded_by: actor.user_id,
        purpose,
        key: key.clone(),
        content_type: content_type.to_owned(),
        size_bytes: bytes.len() as i64,
        created_at: state.clock.now(),
    };
    state.storage.put(&key, &bytes).await.map_err(AppError::internal)?;
    repo::insert(&mut *tx, &f).await?;
    tx.commit(&key).await?;
    Ok(key)
}

/// Stores a document — one the server generated (a printed bill, a receipt) or an upload
/// its domain has checked (a course's material) — as a private file under `key`
/// (`private/{company}/{purpose}/…`), made for `by`; the same key again stores nothing new.
/// Serve it with `signed_url`.
pub async fn store_generated(
    state: &AppState,
    company: Uuid,
    by: Uuid,
    purpose: Purpose,
    key: &str,
    content_type: &str,
    bytes: &[u8],
) -> AppResult<()> {
    state.storage.put(key, bytes).await.map_err(AppError::internal)?;
    let at = state.clock.now();
    record_stored(&state.db, at, company, by, purpose, key, content_type, bytes.len() as i64).await
}

/// Records an object written to storage already (a streamed upload) as the company's
/// file, in the caller's transaction when it passes one.
#[allow(clippy::too_many_arguments)]
pub async fn record_stored(
    db: impl sqlx::PgExecutor<'_>,
    at: chrono::DateTime<chrono::Utc>,
    company: Uuid,
    by: Uuid,
    purpose: Purpose,
    key: &str,
    content_type: &str,
    size_bytes: i64,
) -> AppResult<()> {
    let f = StoredFile {
        id: Uuid::now_v7(),
        company_id: company,
        uploaded_by: by,
        purpose,
        key: key.to_owned(),
        content_type: content_type.to_owned(),
        size_bytes,
        created_at: at,
    };
    repo::insert(db, &f).await?;
    Ok(())
}

/// Removes the earlier versions of a generated document (keys starting with `prefix`
/// other than `keep`), rows and objects.
pub async fn remove_versions(state: &AppState, prefix: &str, keep: &str) -> AppResult<()> {
    for key in repo::remove_versions(&state.db, prefix, keep).await? {
        if let Err(e) = state.storage.delete(&key).await {
            tracing::warn!(%key, error = %e, "an earlier version of a document was not removed");
        }
    }
    Ok(())
}

/// Whether a generated document is stored already.
pub async fn stored(state: &AppState, key: &str) -> AppResult<bool> {
    Ok(repo::exists(&state.db, key).await?)
}

/// Every key is a file the caller uploaded in their company (`field` names the input in
/// the VALIDATION error): an unguessable key alone gives nobody access to anyone's photo.
/// At most nine; returns them without repeats, in the order given (what a record stores).
pub async fn require_own(
    state: &AppState,
    actor: &Actor,
    field: &'static str,
    keys: &[String],
) -> AppResult<Vec<String>> {
    if keys.len() > 9 {
        return Err(AppError::validation(field, Msg::new("照片最多9张", "Up to 9 photos")));
    }
    let mut distinct: Vec<String> = Vec::with_capacity(keys.len());
    for k in keys {
        if !distinct.contains(k) {
            distinct.push(k.clone());
        }
    }
    if distinct.is_empty() {
        return Ok(distinct);
    }
    let n = repo::count_own(&state.db, actor.company_id, actor.user_id, &distinct).await?;
    if n as usize != distinct.len() {
        return Err(AppError::validation(
            field,
            Msg::new("照片须为本人上传的文件", "Each photo must be a file you uploaded"),
        ));
    }
    Ok(distinct)
}

/// A URL that serves the file for `URL_SECS` seconds. Hand it only to those who may read
/// the record the file is attached to.
pub fn signed_url(state: &AppState, key: &str) -> String {
    let expires = state.clock.now().timestamp() + URL_SECS;
    let sig = state.keys.file_signature(key, expires);
    // every private key starts with `private/`, which the route's path already says
    let path = key.strip_prefix("private/").unwrap_or(key);
    format!("{ROUTE}/{path}?exp={expires}&sig={sig}")
}

/// Why a private file is not served.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// unknown key, or a signature that does not match
    NotFound,
    /// a genuine URL past its expiry
    Expired,
}

/// The file behind a signed URL, to be read from storage (`Storage::open`) whole or by
/// range within its `size_bytes`.
pub async fn open_signed(
    state: &AppState,
    key: &str,
    expires: i64,
    sig: &str,
) -> AppResult<Result<StoredFile, Refusal>> {
    if !state.keys.verify_file_signature(key, expires, sig) {
        return Ok(Err(Refusal::NotFound));
    }
    if expires < state.clock.now().timestamp() {
        return Ok(Err(Refusal::Expired));
    }
    Ok(repo::get_by_key(&state.db, key).await?.ok_or(Refusal::NotFound))
}
