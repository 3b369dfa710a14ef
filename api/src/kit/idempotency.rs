//! Retry-safe mutations. A phone on a weak signal resends a mutation it never heard back
//! from, with the same `clientMutationId`. The first call records its outcome (the ids
//! its payload shows) in `client_mutations`, in the same transaction as the change; a
//! repeat gets that outcome back and applies nothing. A repeat that arrives while the first
//! is still running waits for it: its insert of the same key blocks on the unique index
//! until the first commits (then it reads the outcome) or rolls back (then it runs).
//! The same id with another mutation or other input is a CONFLICT.

use std::ops::{Deref, DerefMut};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::error::{AppError, AppResult, Msg};
use super::state::AppState;

/// Who sent which mutation with what input, under the client's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutationKey {
    pub user_id: Uuid,
    pub client_id: String,
    pub operation: String,
    /// SHA-256 of the canonical input (without the `clientMutationId`)
    pub input_hash: Vec<u8>,
}

/// The retry key of one mutation call; empty when the client sent no `clientMutationId`
/// (or nobody is signed in: sign-in and code requests have no user to key them by).
#[derive(Debug, Clone, Default)]
pub struct Retry(Option<MutationKey>);

impl Retry {
    pub fn none() -> Self {
        Retry(None)
    }

    pub fn keyed(key: MutationKey) -> Self {
        Retry(Some(key))
    }

    pub fn key(&self) -> Option<&MutationKey> {
        self.0.as_ref()
    }

    /// The outcome of this mutation if it was applied already (a retry), without opening a
    /// transaction: for mutations whose checks depend on time passing (a punch queued
    /// offline, retried after its window), so the retry still gets its first answer.
    pub async fn applied<T: DeserializeOwned>(&self, state: &AppState) -> AppResult<Option<T>> {
        let Some(k) = &self.0 else { return Ok(None) };
        let done = sqlx::query!(
            "SELECT operation, input_hash, outcome FROM client_mutations WHERE user_id = $1 AND client_id = $2",
            k.user_id,
            k.client_id
        )
        .fetch_optional(&state.db)
        .await?;
        match done {
            Some(d) if d.operation == k.operation && d.input_hash == k.input_hash => match d.outcome {
                Some(o) => Ok(Some(serde_json::from_value(o).map_err(AppError::internal)?)),
                None => Ok(None),
            },
            Some(_) => Err(reused()),
            None => Ok(None),
        }
    }

    /// Opens the mutation's transaction and claims its key there. `Err(outcome)`: the
    /// mutation was already applied; the caller returns that outcome and changes nothing.
    pub async fn begin<T: DeserializeOwned>(&self, state: &AppState) -> AppResult<Result<Tx, T>> {
        let mut inner = state.db.begin().await?;
        if let Some(k) = &self.0 {
            let claimed = sqlx::query!(
                "INSERT INTO client_mutations (user_id, client_id, operation, input_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, client_id) DO NOTHING",
                k.user_id,
                k.client_id,
                k.operation,
                k.input_hash,
                state.clock.now()
            )
            .execute(&mut *inner)
            .await?
            .rows_affected();
            if claimed == 0 {
                let done = sqlx::query!(
                    "SELECT operation, input_hash, outcome FROM client_mutations WHERE user_id = $1 AND client_id = $2",
                    k.user_id,
                    k.client_id
                )
                .fetch_optional(&mut *inner)
                .await?;
                inner.rollback().await?;
                return match done {
                    Some(d) if d.operation == k.operation && d.input_hash == k.input_hash => match d.outcome {
                        Some(o) => Ok(Err(serde_json::from_value(o).map_err(AppError::internal)?)),
                        None => Err(reused()),
                    },
                    _ => Err(reused()),
                };
            }
        }
        Ok(Ok(Tx { inner, key: self.0.clone() }))
    }
}

fn reused() -> AppError {
    AppError::Conflict {
        field: "clientMutationId".into(),
        msg: Msg::new(
            "该clientMutationId已用于另一个操作或不同的输入",
            "This clientMutationId was already used for another mutation or other input",
        ),
        details: None,
    }
}

/// The write transaction of a mutation; `commit` records the outcome under the key.
pub struct Tx {
    inner: Transaction<'static, Postgres>,
    key: Option<MutationKey>,
}

impl Tx {
    /// A transaction for work no client retries (jobs, ingest, the CLI).
    pub async fn plain(state: &AppState) -> AppResult<Tx> {
        Ok(Tx { inner: state.db.begin().await?, key: None })
    }

    pub async fn commit<T: Serialize>(mut self, outcome: &T) -> AppResult<()> {
        if let Some(k) = &self.key {
            let o = serde_json::to_value(outcome).map_err(AppError::internal)?;
            sqlx::query!(
                "UPDATE client_mutations SET outcome = $3 WHERE user_id = $1 AND client_id = $2",
                k.user_id,
                k.client_id,
                o
            )
            .execute(&mut *self.inner)
            .await?;
        }
        self.inner.commit().await?;
        Ok(())
    }
}

impl Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.inner
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.inner
    }
}

/// Forgets keys older than the retention (the scheduler calls it); returns how many.
pub async fn expire(state: &AppState) -> AppResult<u64> {
    let cutoff = state.clock.now() - chrono::TimeDelta::days(state.config.limits.client_mutation_retention_days as i64);
    Ok(sqlx::query!("DELETE FROM client_mutations WHERE created_at < $1", cutoff)
        .execute(&state.db)
        .await?
        .rows_affected())
}

/// A client's id for a mutation: 1 to 64 visible ASCII characters.
pub fn client_id(input: &str) -> AppResult<String> {
    let ok = (1..=64).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(input.to_owned())
    } else {
        Err(AppError::validation(
            "clientMutationId",
            Msg::new(
                "clientMutationId应为1到64个可见ASCII字符",
                "clientMutationId has 1 to 64 visible ASCII characters",
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_ids() {
        assert!(super::client_id("a1-B2_c3").is_ok());
        assert!(super::client_id("").is_err());
        assert!(super::client_id("has space").is_err());
        assert!(super::client_id(&"x".repeat(65)).is_err());
    }
}
