//! SQL for the outbox, the inbox, deliveries, push devices and preferences.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::model::{
    AppKind, Category, Channel, DeliveryStatus, Notification, OutboxStatus, Platform, Preference, Priority, Provider,
    PushDevice,
};

pub struct NewRow<'a> {
    pub company_id: Uuid,
    pub category: Category,
    pub priority: Priority,
    pub title: &'a str,
    pub body: &'a str,
    pub data: &'a serde_json::Value,
    pub channels: &'a [Channel],
    pub now: DateTime<Utc>,
    pub give_up_at: DateTime<Utc>,
}

/// One row per recipient in a single statement; wakes the dispatchers on commit.
pub async fn insert_many(db: &mut PgConnection, ids: &[Uuid], users: &[Uuid], n: &NewRow<'_>) -> sqlx::Result<()> {
    let channels: Vec<String> = n.channels.iter().map(|c| c.as_str().to_owned()).collect();
    sqlx::query!(
        "INSERT INTO notifications (id, company_id, user_id, category, priority, title, body, data, channels,
                                    next_attempt_at, give_up_at, created_at)
         SELECT id, $3, user_id, $4, $5, $6, $7, $8, $9, $10, $11, $10
         FROM unnest($1::uuid[], $2::uuid[]) AS t(id, user_id)",
        ids,
        users,
        n.company_id,
        n.category.as_str(),
        n.priority.as_str(),
        n.title,
        n.body,
        n.data,
        &channels,
        n.now,
        n.give_up_at
    )
    .execute(&mut *db)
    .await?;
    sqlx::query!("SELECT pg_notify('wuye_outbox', '')").execute(db).await?;
    Ok(())
}

/// One row per recipient, each with its own title, body, data and channels (a bill run's
/// notices), in a single statement; wakes the dispatchers on commit.
#[allow(clippy::too_many_arguments)]
pub async fn insert_each(
    db: &mut PgConnection,
    company_id: Uuid,
    category: Category,
    priority: Priority,
    ids: &[Uuid],
    users: &[Uuid],
    titles: &[String],
    bodies: &[String],
    data: &[serde_json::Value],
    channels: &[String],
    now: DateTime<Utc>,
    give_up_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO notifications (id, company_id, user_id, category, priority, title, body, data, channels,
                                    next_attempt_at, give_up_at, created_at)
         SELECT t.id, $7, t.user_id, $8, $9, t.title, t.body, t.data, string_to_array(t.channels, ','), $10, $11, $10
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::text[])
              AS t(id, user_id, title, body, data, channels)",
        ids,
        users,
        titles,
        bodies,
        data,
        channels,
        company_id,
        category.as_str(),
        priority.as_str(),
        now,
        give_up_at
    )
    .execute(&mut *db)
    .await?;
    sqlx::query!("SELECT pg_notify('wuye_outbox', '')").execute(db).await?;
    Ok(())
}

/// The users of a list with an active push device.
pub async fn with_push_devices(db: impl PgExecutor<'_>, users: &[Uuid]) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!("SELECT DISTINCT user_id FROM push_devices WHERE user_id = ANY($1) AND active", users)
        .fetch_all(db)
        .await
}

/// Leases up to `limit` due rows to this dispatcher. Rows another dispatcher holds are
/// skipped; a lease that runs out (a replica died mid-send) makes the row due again.
pub async fn claim(
    db: impl PgExecutor<'_>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<Notification>> {
    sqlx::query_as!(
        Notification,
        // the batch is picked once (a CTE), never re-run per row by a plan made on an empty
        // table: after a bill run put 50,000 rows in at once, that took minutes per batch
        // critical ones first, then the rest in due order, each through its partial index
        // (sorting every pending row per batch cost tens of milliseconds after a bill run)
        r#"WITH critical AS MATERIALIZED (
             SELECT id FROM notifications
             WHERE status = 'pending' AND priority = 'critical' AND next_attempt_at <= $1
               AND (locked_until IS NULL OR locked_until < $1)
             ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED),
         rest AS MATERIALIZED (
             SELECT id FROM notifications
             WHERE status = 'pending' AND next_attempt_at <= $1 AND priority <> 'critical'
               AND (locked_until IS NULL OR locked_until < $1)
             ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED),
         due AS MATERIALIZED (
             SELECT id FROM critical UNION ALL (SELECT id FROM rest LIMIT $3 - (SELECT count(*) FROM critical)))
         UPDATE notifications n SET locked_until = $2, attempts = n.attempts + 1
         FROM due
         WHERE n.id = due.id
         RETURNING n.id, n.company_id, n.user_id, n.category AS "category: Category",
                   n.priority AS "priority: Priority", n.title, n.body, n.data,
                   n.channels AS "channels: Vec<Channel>", n.status AS "status: OutboxStatus", n.attempts,
                   n.give_up_at, n.created_at, n.read_at"#,
        now,
        lease_until,
        limit
    )
    .fetch_all(db)
    .await
}

/// Channels (and push devices, as `push:<device id>`) that already took this notification.
pub async fn done_targets(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT channel FROM notification_deliveries WHERE notification_id = $1
         UNION SELECT channel FROM notification_attempts WHERE notification_id = $1 AND ok",
        id
    )
    .fetch_all(db)
    .await
    .map(|v| v.into_iter().flatten().collect())
}

/// One try of one target (`inapp`, `sms`, `push:<device id>`).
pub struct Attempt {
    pub target: String,
    pub ok: bool,
    pub error: Option<String>,
    pub retry_after_secs: Option<i32>,
}

/// How one channel of a notification ended, with a detail for people reading the table.
pub struct ChannelOutcome {
    pub channel: Channel,
    pub status: DeliveryStatus,
    pub detail: String,
}

/// How one notification's pass ended: the attempts made, the channels finished, and
/// whether it is done, failed or waits for `next_attempt_at`.
pub struct Conclusion {
    pub id: Uuid,
    pub attempts: Vec<Attempt>,
    pub outcomes: Vec<ChannelOutcome>,
    pub status: OutboxStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// when the pass ended
    pub at: DateTime<Utc>,
}

/// Writes a batch's conclusions in one statement: attempts, deliveries (a channel already
/// recorded stays as it was), each row's status and lease released.
pub async fn conclude(db: impl PgExecutor<'_>, done: &[Conclusion]) -> sqlx::Result<()> {
    if done.is_empty() {
        return Ok(());
    }
    let mut a_at = Vec::new();
    let mut d_at = Vec::new();
    let mut a_ids = Vec::new();
    let mut a_notes = Vec::new();
    let mut targets = Vec::new();
    let mut oks = Vec::new();
    let mut errors = Vec::new();
    let mut waits = Vec::new();
    let mut d_notes = Vec::new();
    let mut channels = Vec::new();
    let mut statuses = Vec::new();
    let mut details = Vec::new();
    for c in done {
        for a in &c.attempts {
            a_ids.push(Uuid::now_v7());
            a_at.push(c.at);
            a_notes.push(c.id);
            targets.push(a.target.clone());
            oks.push(a.ok);
            errors.push(a.error.clone().unwrap_or_default());
            waits.push(a.retry_after_secs.unwrap_or(-1));
        }
        for o in &c.outcomes {
            d_notes.push(c.id);
            d_at.push(c.at);
            channels.push(o.channel.as_str().to_owned());
            statuses.push(o.status.as_str().to_owned());
            details.push(o.detail.clone());
        }
    }
    let ids: Vec<Uuid> = done.iter().map(|c| c.id).collect();
    let row_status: Vec<String> = done.iter().map(|c| c.status.as_str().to_owned()).collect();
    let next: Vec<Option<DateTime<Utc>>> = done.iter().map(|c| c.next_attempt_at).collect();
    sqlx::query!(
        "WITH a AS (
            INSERT INTO notification_attempts (id, notification_id, channel, ok, error, retry_after_secs, at)
            SELECT i, n, t, o, NULLIF(e, ''), NULLIF(w, -1), at
            FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::bool[], $6::text[], $7::int[], $1::timestamptz[])
                 AS x(i, n, t, o, e, w, at)),
         d AS (
            INSERT INTO notification_deliveries (notification_id, channel, status, detail, at)
            SELECT n, c, s, d, at FROM unnest($8::uuid[], $9::text[], $10::text[], $11::text[], $15::timestamptz[])
                 AS t(n, c, s, d, at)
            ON CONFLICT (notification_id, channel) DO NOTHING)
         UPDATE notifications SET status = u.s, next_attempt_at = COALESCE(u.next, notifications.next_attempt_at),
                locked_until = NULL
         FROM unnest($12::uuid[], $13::text[], $14::timestamptz[]) AS u(id, s, next)
         WHERE notifications.id = u.id",
        &a_at,
        &a_ids,
        &a_notes,
        &targets,
        &oks,
        &errors,
        &waits,
        &d_notes,
        &channels,
        &statuses,
        &details,
        &ids,
        &row_status,
        &next as &[Option<DateTime<Utc>>],
        &d_at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The phone of each account (SMS), for a whole batch.
pub async fn phones_of(db: impl PgExecutor<'_>, users: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Option<String>)>> {
    let rows = sqlx::query!("SELECT id, phone FROM users WHERE id = ANY($1)", users).fetch_all(db).await?;
    Ok(rows.into_iter().map(|r| (r.id, r.phone)).collect())
}

/// Channels each user muted, per category (for a whole batch).
pub async fn muted_for(db: impl PgExecutor<'_>, users: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Category, Channel)>> {
    let rows = sqlx::query!(
        r#"SELECT user_id, category AS "category: Category", channel AS "channel: Channel"
           FROM notification_prefs WHERE user_id = ANY($1) AND NOT enabled"#,
        users
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r.category, r.channel)).collect())
}

pub async fn quiet_for(db: impl PgExecutor<'_>, users: &[Uuid]) -> sqlx::Result<Vec<(Uuid, i32, i32)>> {
    let rows = sqlx::query!("SELECT user_id, start_minute, end_minute FROM quiet_hours WHERE user_id = ANY($1)", users)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r.start_minute, r.end_minute)).collect())
}

pub async fn devices_for(db: impl PgExecutor<'_>, users: &[Uuid]) -> sqlx::Result<Vec<PushDevice>> {
    sqlx::query_as!(
        PushDevice,
        r#"SELECT id, user_id, token, platform AS "platform: Platform", provider AS "provider: Provider",
                  app AS "app: AppKind"
           FROM push_devices WHERE user_id = ANY($1) AND active ORDER BY id"#,
        users
    )
    .fetch_all(db)
    .await
}

// ---- inbox ---------------------------------------------------------------------------

/// A page of a user's inbox, newest first (ids are UUID v7): rows below `after`.
pub async fn inbox(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    unread_only: bool,
    category: Option<Category>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Notification>> {
    sqlx::query_as!(
        Notification,
        r#"SELECT id, company_id, user_id, category AS "category: Category", priority AS "priority: Priority",
                  title, body, data, channels AS "channels: Vec<Channel>", status AS "status: OutboxStatus",
                  attempts, give_up_at, created_at, read_at
           FROM notifications
           WHERE user_id = $1 AND (NOT $2 OR read_at IS NULL) AND ($3::text IS NULL OR category = $3)
             AND ($4::uuid IS NULL OR id < $4)
           ORDER BY id DESC LIMIT $5"#,
        user_id,
        unread_only,
        category.map(Category::as_str),
        after,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn unread_count(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM notifications WHERE user_id = $1 AND read_at IS NULL"#, user_id)
        .fetch_one(db)
        .await
}

/// Marks the user's own notifications read (`None`: all of them). Returns how many changed.
pub async fn mark_read(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    ids: Option<&[Uuid]>,
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE notifications SET read_at = $3
         WHERE user_id = $1 AND read_at IS NULL AND ($2::uuid[] IS NULL OR id = ANY($2))",
        user_id,
        ids,
        at
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// How many of `ids` are the user's notifications.
pub async fn count_own(db: impl PgExecutor<'_>, user_id: Uuid, ids: &[Uuid]) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM notifications WHERE user_id = $1 AND id = ANY($2)"#,
        user_id,
        ids
    )
    .fetch_one(db)
    .await
}

// ---- devices -------------------------------------------------------------------------

/// Registers a token for a user; a token already registered (to anyone) moves to them.
pub async fn upsert_device(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    token: &str,
    platform: Platform,
    provider: Provider,
    app: AppKind,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "INSERT INTO push_devices (id, user_id, token, platform, provider, app) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (provider, token) DO UPDATE
           SET user_id = EXCLUDED.user_id, platform = EXCLUDED.platform, app = EXCLUDED.app, active = true, updated_at = now()
         RETURNING id",
        Uuid::now_v7(),
        user_id,
        token,
        platform.as_str(),
        provider.as_str(),
        app.as_str()
    )
    .fetch_one(db)
    .await
}

pub async fn remove_device(db: impl PgExecutor<'_>, user_id: Uuid, token: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM push_devices WHERE user_id = $1 AND token = $2", user_id, token)
        .execute(db)
        .await?
        .rows_affected())
}

pub async fn deactivate_device(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("UPDATE push_devices SET active = false, updated_at = now() WHERE id = $1", id).execute(db).await?;
    Ok(())
}

pub async fn active_devices(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Vec<PushDevice>> {
    sqlx::query_as!(
        PushDevice,
        r#"SELECT id, user_id, token, platform AS "platform: Platform", provider AS "provider: Provider",
                  app AS "app: AppKind"
           FROM push_devices WHERE user_id = $1 AND active ORDER BY id"#,
        user_id
    )
    .fetch_all(db)
    .await
}

/// One active device of a user, by id.
pub async fn active_device(db: impl PgExecutor<'_>, user_id: Uuid, id: Uuid) -> sqlx::Result<Option<PushDevice>> {
    sqlx::query_as!(
        PushDevice,
        r#"SELECT id, user_id, token, platform AS "platform: Platform", provider AS "provider: Provider",
                  app AS "app: AppKind"
           FROM push_devices WHERE user_id = $1 AND id = $2 AND active"#,
        user_id,
        id
    )
    .fetch_optional(db)
    .await
}

// ---- preferences ---------------------------------------------------------------------

/// The preferences a user stored (categories and channels never stored are enabled).
pub async fn prefs_of(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Vec<Preference>> {
    sqlx::query_as!(
        Preference,
        r#"SELECT category AS "category: Category", channel AS "channel: Channel", enabled
           FROM notification_prefs WHERE user_id = $1"#,
        user_id
    )
    .fetch_all(db)
    .await
}

pub async fn set_pref(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    category: Category,
    channel: Channel,
    enabled: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO notification_prefs (user_id, category, channel, enabled) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, category, channel) DO UPDATE SET enabled = EXCLUDED.enabled",
        user_id,
        category.as_str(),
        channel.as_str(),
        enabled
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn quiet_hours_of(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<Option<(i32, i32)>> {
    let row = sqlx::query!("SELECT start_minute, end_minute FROM quiet_hours WHERE user_id = $1", user_id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| (r.start_minute, r.end_minute)))
}

pub async fn set_quiet_hours(db: &mut PgConnection, user_id: Uuid, hours: Option<(i32, i32)>) -> sqlx::Result<()> {
    match hours {
        Some((start, end)) => {
            sqlx::query!(
                "INSERT INTO quiet_hours (user_id, start_minute, end_minute) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO UPDATE SET start_minute = EXCLUDED.start_minute, end_minute = EXCLUDED.end_minute",
                user_id,
                start,
                end
            )
            .execute(db)
            .await?;
        }
        None => {
            sqlx::query!("DELETE FROM quiet_hours WHERE user_id = $1", user_id).execute(db).await?;
        }
    }
    Ok(())
}

/// The notifications of a company about one thing (`data.route` and `data.id`), oldest
/// first, with how each channel ended.
pub async fn about(
    db: impl PgExecutor<'_> + Copy,
    company: Uuid,
    route: &str,
    id: &str,
) -> sqlx::Result<Vec<super::model::Notice>> {
    use super::model::{Delivery, DeliveryStatus, Notice, OutboxStatus};
    let rows = sqlx::query!(
        r#"SELECT id, user_id, title, body, channels AS "channels: Vec<Channel>", status AS "status: OutboxStatus",
                  created_at
           FROM notifications
           WHERE (data ->> 'id') = $3 AND data ? 'route' AND data ->> 'route' = $2 AND company_id = $1
           ORDER BY created_at, id LIMIT 100"#,
        company,
        route,
        id
    )
    .fetch_all(db)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let ds = sqlx::query!(
        r#"SELECT notification_id, channel AS "channel: Channel", status AS "status: DeliveryStatus", detail, at
           FROM notification_deliveries WHERE notification_id = ANY($1) ORDER BY at"#,
        &ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Notice {
            id: r.id,
            user_id: r.user_id,
            title: r.title,
            body: r.body,
            channels: r.channels,
            status: r.status,
            created_at: r.created_at,
            deliveries: ds
                .iter()
                .filter(|d| d.notification_id == r.id)
                .map(|d| Delivery { channel: d.channel, status: d.status, detail: d.detail.clone(), at: d.at })
                .collect(),
        })
        .collect())
}
