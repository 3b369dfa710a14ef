//! The offline action queue: what a person did while the phone had no signal (a punch, a
//! work-order step, a meter reading, a patrol scan, an alarm acknowledged, a notice read),
//! kept in SQLite so it survives the app being killed, and replayed in order once the
//! server answers. Each action carries its `clientMutationId`, fixed when it was queued,
//! so a resend after a lost answer applies once; and the time the person acted.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::operations::Operation;

/// Where a queued action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ActionState {
    /// waiting to be sent (or sent without an answer: it is sent again, applying once)
    Pending,
    /// the server applied it; `result` holds its answer
    Applied,
    /// the server refused it (a conflict or an invalid input): it will not be sent again;
    /// `error_code` says why
    Rejected,
}

impl ActionState {
    fn code(self) -> &'static str {
        match self {
            ActionState::Pending => "pending",
            ActionState::Applied => "applied",
            ActionState::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> ActionState {
        match s {
            "applied" => ActionState::Applied,
            "rejected" => ActionState::Rejected,
            _ => ActionState::Pending,
        }
    }
}

/// One action of the queue.
#[derive(Debug, Clone, uniffi::Record)]
pub struct QueuedAction {
    /// order of the queue
    pub seq: i64,
    pub operation: String,
    /// the variables as sent (JSON), clientMutationId included
    pub variables: String,
    pub client_mutation_id: String,
    /// when the person acted (RFC 3339, the phone's clock)
    pub queued_at: String,
    pub state: ActionState,
    pub attempts: u32,
    /// the server's answer (JSON `data`) once applied
    pub result: Option<String>,
    /// the error code (CONFLICT, VALIDATION, FORBIDDEN, NOT_FOUND) once rejected
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("queue storage is unusable (a thread panicked while holding it)")]
    Poisoned,
}

pub struct Queue {
    db: Mutex<Connection>,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS actions (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            TEXT NOT NULL,
    operation          TEXT NOT NULL,
    variables          TEXT NOT NULL,
    client_mutation_id TEXT NOT NULL UNIQUE,
    queued_at          TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'rejected')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    result             TEXT,
    error_code         TEXT,
    error_message      TEXT,
    finished_at        TEXT
);
CREATE INDEX IF NOT EXISTS actions_pending ON actions (user_id, state, seq);
";

const COLUMNS: &str =
    "seq, operation, variables, client_mutation_id, queued_at, state, attempts, result, error_code, error_message";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueuedAction> {
    Ok(QueuedAction {
        seq: r.get(0)?,
        operation: r.get(1)?,
        variables: r.get(2)?,
        client_mutation_id: r.get(3)?,
        queued_at: r.get(4)?,
        state: ActionState::parse(&r.get::<_, String>(5)?),
        attempts: r.get(6)?,
        result: r.get(7)?,
        error_code: r.get(8)?,
        error_message: r.get(9)?,
    })
}

impl Queue {
    /// Opens (or creates) the queue at `path`; `:memory:` for a throw-away one.
    pub fn open(path: &str) -> Result<Queue, QueueError> {
        let conn = if path == ":memory:" { Connection::open_in_memory()? } else { Connection::open(Path::new(path))? };
        conn.execute_batch(SCHEMA)?;
        Ok(Queue { db: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, QueueError> {
        let conn = self.db.lock().map_err(|_| QueueError::Poisoned)?;
        Ok(f(&conn)?)
    }

    /// Queues an action of `user_id` (it is only ever sent with that user's session).
    pub fn push(
        &self,
        user_id: &str,
        op: Operation,
        variables: &str,
        client_mutation_id: &str,
        queued_at: &str,
    ) -> Result<QueuedAction, QueueError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO actions (user_id, operation, variables, client_mutation_id, queued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![user_id, op.name(), variables, client_mutation_id, queued_at],
            )?;
            c.query_row(&format!("SELECT {COLUMNS} FROM actions WHERE seq = last_insert_rowid()"), [], row)
        })
    }

    /// The next action of `user_id` to send, oldest first.
    pub fn next_pending(&self, user_id: &str) -> Result<Option<QueuedAction>, QueueError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM actions WHERE user_id = ?1 AND state = 'pending' ORDER BY seq LIMIT 1"),
                [user_id],
                row,
            )
            .optional()
        })
    }

    pub fn attempted(&self, seq: i64) -> Result<(), QueueError> {
        self.with(|c| c.execute("UPDATE actions SET attempts = attempts + 1 WHERE seq = ?1", [seq]).map(|_| ()))
    }

    /// Records the server's answer; the action is not sent again.
    pub fn finish(
        &self,
        seq: i64,
        state: ActionState,
        result: Option<&str>,
        error: Option<(&str, &str)>,
        at: &str,
    ) -> Result<QueuedAction, QueueError> {
        self.with(|c| {
            c.execute(
                "UPDATE actions SET state = ?2, result = ?3, error_code = ?4, error_message = ?5, finished_at = ?6
                 WHERE seq = ?1",
                params![seq, state.code(), result, error.map(|e| e.0), error.map(|e| e.1), at],
            )?;
            c.query_row(&format!("SELECT {COLUMNS} FROM actions WHERE seq = ?1"), [seq], row)
        })
    }

    /// Actions of `user_id` in `state` (all when `None`), in queue order.
    pub fn list(&self, user_id: &str, state: Option<ActionState>) -> Result<Vec<QueuedAction>, QueueError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM actions WHERE user_id = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY seq"
            ))?;
            let rows = stmt.query_map(params![user_id, state.map(ActionState::code)], row)?;
            rows.collect()
        })
    }

    /// Forgets finished actions older than `before`: the app keeps the queue small. Times
    /// are stored in UTC (`…Z`), so `before` is compared in UTC whatever its offset.
    pub fn prune(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64, QueueError> {
        let before = before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.with(|c| {
            c.execute("DELETE FROM actions WHERE state <> 'pending' AND finished_at < ?1", [before]).map(|n| n as u64)
        })
    }

    /// Sends a finished action again (tests: an answer that was lost on the way).
    pub fn reopen(&self, seq: i64) -> Result<(), QueueError> {
        self.with(|c| {
            c.execute("UPDATE actions SET state = 'pending', finished_at = NULL WHERE seq = ?1", [seq]).map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopening_and_keeps_order() {
        let dir = std::env::temp_dir().join(format!("wuye-queue-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("queue.db");
        let path = path.to_str().unwrap();
        {
            let q = Queue::open(path).unwrap();
            q.push("u1", Operation::Punch, "{}", "a", "2026-11-28T08:00:00Z").unwrap();
            q.push("u1", Operation::AcknowledgeAlarm, "{}", "b", "2026-11-28T08:01:00Z").unwrap();
            // another person on the same phone: their own queue
            q.push("u2", Operation::Punch, "{}", "c", "2026-11-28T08:01:30Z").unwrap();
            // one clientMutationId, one action
            assert!(q.push("u1", Operation::Punch, "{}", "a", "2026-11-28T08:02:00Z").is_err());
        }
        let q = Queue::open(path).unwrap();
        let first = q.next_pending("u1").unwrap().unwrap();
        assert_eq!((first.operation.as_str(), first.client_mutation_id.as_str()), ("Punch", "a"));
        q.finish(first.seq, ActionState::Applied, Some("{}"), None, "2026-11-28T09:00:00.000Z").unwrap();
        assert_eq!(q.next_pending("u1").unwrap().unwrap().client_mutation_id, "b");
        assert_eq!(q.next_pending("u2").unwrap().unwrap().client_mutation_id, "c");
        assert_eq!(q.list("u1", Some(ActionState::Applied)).unwrap().len(), 1);
        // compared in UTC: 16:30 in Shanghai is 08:30Z, before the action finished; 17:30 is after
        let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc();
        assert_eq!(q.prune(at("2026-11-28T16:30:00+08:00")).unwrap(), 0);
        assert_eq!(q.prune(at("2026-11-28T17:30:00+08:00")).unwrap(), 1);
        assert_eq!(q.list("u1", None).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
