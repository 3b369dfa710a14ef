//! Enqueueing (in the caller's transaction), system notices, the inbox, push-device
//! registration, and what recipients asked for (muted channels, quiet hours).

use std::collections::{HashMap, HashSet};

use chrono::TimeDelta;
use uuid::Uuid;

use super::model::{
    AppKind, Category, Channel, LiveNotification, MarkedRead, NewNotification, Notification, Platform, Preference,
    Priority, Provider, PushDevice, QuietHours,
};
use super::repo::{self, NewRow};
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::events::Event;
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::rbac::model::{Actor, Perm, Scope};

pub const EVENT_NOTIFICATION: &str = "NOTIFICATION";

/// Recipients of one system notice, at most.
const MAX_RECIPIENTS: usize = 10_000;

/// Enqueues one notification per recipient inside the caller's transaction: it is sent
/// if and only if the change that caused it commits. Returns the notification ids.
pub async fn enqueue(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    recipients: &[Uuid],
    n: &NewNotification,
) -> AppResult<Vec<Uuid>> {
    let title = types::text("title", &n.title, 100)?;
    let body = types::text("body", &n.body, 2000)?;
    let mut seen = HashSet::new();
    let users: Vec<Uuid> = recipients.iter().copied().filter(|u| seen.insert(*u)).collect();
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let channels: &[Channel] = match &n.channels {
        Some(c) if !c.is_empty() => c,
        _ => n.category.default_channels(),
    };
    let ids: Vec<Uuid> = users.iter().map(|_| Uuid::now_v7()).collect();
    let now = state.clock.now();
    let give_up = TimeDelta::seconds(state.config.notify.give_up_after_secs as i64);
    repo::insert_many(
        tx,
        &ids,
        &users,
        &NewRow {
            company_id,
            category: n.category,
            priority: n.priority,
            title: &title,
            body: &body,
            data: &n.data,
            channels,
            now,
            give_up_at: now + give_up,
        },
    )
    .await?;
    Ok(ids)
}

/// One notification per recipient, each its own (a bill run tells every payer their
/// amount), of one category and priority, in the caller's transaction.
pub struct Personal {
    pub user_id: Uuid,
    pub title: String,
    pub body: String,
    pub data: serde_json::Value,
    pub channels: Vec<Channel>,
}

pub async fn enqueue_each(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    category: Category,
    priority: Priority,
    items: &[Personal],
) -> AppResult<usize> {
    if items.is_empty() {
        return Ok(0);
    }
    let now = state.clock.now();
    let give_up = give_up_after(state, category);
    for chunk in items.chunks(10_000) {
        let ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
        let users: Vec<Uuid> = chunk.iter().map(|p| p.user_id).collect();
        let mut titles = Vec::with_capacity(chunk.len());
        let mut bodies = Vec::with_capacity(chunk.len());
        for p in chunk {
            titles.push(types::text("title", &p.title, 100)?);
            bodies.push(types::text("body", &p.body, 2000)?);
        }
        let data: Vec<serde_json::Value> = chunk.iter().map(|p| p.data.clone()).collect();
        let channels: Vec<String> = chunk
            .iter()
            .map(|p| {
                let c: &[Channel] = if p.channels.is_empty() { category.default_channels() } else { &p.channels };
                c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
            })
            .collect();
        repo::insert_each(
            tx,
            company_id,
            category,
            priority,
            &ids,
            &users,
            &titles,
            &bodies,
            &data,
            &channels,
            now,
            now + give_up,
        )
        .await?;
    }
    Ok(items.len())
}

/// Which of these users have a phone registered for push.
pub async fn with_push_devices(state: &AppState, users: &[Uuid]) -> AppResult<HashSet<Uuid>> {
    Ok(repo::with_push_devices(&state.db, users).await?.into_iter().collect())
}

/// How long the outbox keeps trying a bill run's notices: at least three days (over a
/// number's daily SMS allowance one waits for the next day rather than being dropped).
fn give_up_after(state: &AppState, category: Category) -> TimeDelta {
    let give_up = TimeDelta::seconds(state.config.notify.give_up_after_secs as i64);
    if category == Category::Bill { give_up.max(TimeDelta::days(3)) } else { give_up }
}

/// The in-app part of a delivery: every connected device of the user, on any replica.
pub async fn publish_live(state: &AppState, n: &Notification) -> AppResult<()> {
    let live = LiveNotification {
        id: n.id,
        category: n.category,
        priority: n.priority,
        title: n.title.clone(),
        body: n.body.clone(),
        data: n.data.clone(),
        created_at: n.created_at,
    };
    let ev = Event {
        user_id: Some(n.user_id),
        kind: EVENT_NOTIFICATION.into(),
        payload: serde_json::to_value(&live).map_err(AppError::internal)?,
    };
    state.events.publish(&ev).await?;
    Ok(())
}

/// A notification event from the bus, as the subscription shows it (`None`: not one).
pub fn live_notification(payload: &serde_json::Value) -> Option<LiveNotification> {
    serde_json::from_value(payload.clone()).ok()
}

/// A system notice from a manager (`notification:send` company-wide) to accounts of the
/// company. Returns how many recipients it was queued for.
pub async fn send(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    users: &[Uuid],
    n: NewNotification,
) -> AppResult<usize> {
    if actor.require(Perm::NotificationSend)? != &Scope::Company {
        return Err(AppError::forbidden());
    }
    if n.category == Category::Security {
        return Err(AppError::validation(
            "category",
            Msg::new("不能发送安全类通知", "Security notifications cannot be sent by hand"),
        ));
    }
    if users.is_empty() || users.len() > MAX_RECIPIENTS {
        return Err(AppError::validation(
            "userIds",
            Msg::new("收件人数量应在1到10000之间", "Between 1 and 10000 recipients"),
        ));
    }
    types::text("title", &n.title, 100)?;
    types::text("body", &n.body, 2000)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let mut seen = HashSet::new();
    let distinct: Vec<Uuid> = users.iter().copied().filter(|u| seen.insert(*u)).collect();
    let known = crate::rbac::service::count_accounts(&mut tx, actor.company_id, &distinct).await?;
    if known != distinct.len() as i64 {
        return Err(AppError::validation("userIds", Msg::new("收件人不存在", "Unknown recipient")));
    }
    let ids = enqueue(state, &mut tx, actor.company_id, &distinct, &n).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "notification.send",
        "notification",
        None,
        serde_json::json!({ "recipients": ids.len(), "title": n.title }),
    )
    .await?;
    tx.commit(&ids.len()).await?;
    Ok(ids.len())
}

// ---- inbox ---------------------------------------------------------------------------

/// A page of the caller's own inbox, newest first: rows after the cursor `after` (an id).
pub async fn inbox(
    state: &AppState,
    actor: &Actor,
    unread_only: bool,
    category: Option<Category>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Notification>> {
    Ok(repo::inbox(&state.db, actor.user_id, unread_only, category, after, limit as i64).await?)
}

pub async fn unread_count(state: &AppState, actor: &Actor) -> AppResult<i64> {
    Ok(repo::unread_count(&state.db, actor.user_id).await?)
}

/// Marks the caller's notifications read (`None`: all of them); ids of other people's
/// notifications change nothing. A retry answers with the count of the first call.
pub async fn mark_read(state: &AppState, actor: &Actor, retry: &Retry, ids: Option<&[Uuid]>) -> AppResult<MarkedRead> {
    // every id is one of the caller's own notifications: anyone else's does not exist
    if let Some(ids) = ids {
        let distinct: std::collections::HashSet<&Uuid> = ids.iter().collect();
        if repo::count_own(&state.db, actor.user_id, ids).await? < distinct.len() as i64 {
            return Err(AppError::not_found("notification"));
        }
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let marked = repo::mark_read(&mut *tx, actor.user_id, ids, state.clock.now()).await?;
    let outcome = MarkedRead { marked };
    tx.commit(&outcome).await?;
    Ok(outcome)
}

// ---- devices -------------------------------------------------------------------------

pub struct DeviceInput<'a> {
    pub token: &'a str,
    pub platform: Platform,
    pub provider: Provider,
    pub app: AppKind,
}

/// May this account register a phone for `app`? The owner app for accounts that are not
/// staff or are owners too; the staff app for staff accounts.
fn app_fits(actor: &Actor, app: AppKind) -> bool {
    match app {
        AppKind::Owner => !actor.is_staff() || actor.owner_id.is_some(),
        AppKind::Staff => actor.is_staff(),
    }
}

/// Registers the caller's phone for push; a token registered to someone else moves to the
/// caller. Returns the device's id.
pub async fn register_device(state: &AppState, actor: &Actor, retry: &Retry, d: DeviceInput<'_>) -> AppResult<Uuid> {
    let token = d.token.trim();
    if token.is_empty() || token.len() > 4096 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::validation("token", Msg::new("推送令牌无效", "Invalid push token")));
    }
    if !app_fits(actor, d.app) {
        return Err(AppError::validation(
            "app",
            Msg::new("应用与账号类型不符", "The app does not match the account kind"),
        ));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let id = repo::upsert_device(&mut *tx, actor.user_id, token, d.platform, d.provider, d.app).await?;
    tx.commit(&id).await?;
    Ok(id)
}

/// Forgets a push token of the user (sign-out, no retry key). True when one was removed.
pub async fn unregister_device(state: &AppState, user_id: Uuid, token: &str) -> AppResult<bool> {
    Ok(repo::remove_device(&state.db, user_id, token.trim()).await? > 0)
}

/// `unregisterDevice`: forgets one of the caller's push tokens. A retry answers like the
/// first call.
pub async fn unregister(state: &AppState, actor: &Actor, retry: &Retry, token: &str) -> AppResult<bool> {
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let removed = repo::remove_device(&mut *tx, actor.user_id, token.trim()).await? > 0;
    tx.commit(&removed).await?;
    Ok(removed)
}

/// One of the caller's active devices.
pub async fn device(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<PushDevice> {
    repo::active_device(&state.db, actor.user_id, id).await?.ok_or(AppError::not_found("device"))
}

/// The caller's registered phones (a handful: bounded by the phones a person uses).
pub async fn devices(state: &AppState, actor: &Actor) -> AppResult<Vec<PushDevice>> {
    Ok(repo::active_devices(&state.db, actor.user_id).await?)
}

// ---- preferences and quiet hours -----------------------------------------------------

/// The channels a preference can be set for, in the order they are listed.
const PREF_CHANNELS: [Channel; 3] = [Channel::InApp, Channel::Push, Channel::Sms];

fn effective(stored: &[Preference], category: Category, channel: Channel) -> Preference {
    let enabled = !category.can_mute()
        || stored.iter().find(|p| p.category == category && p.channel == channel).is_none_or(|p| p.enabled);
    Preference { category, channel, enabled }
}

/// Every category × channel of the caller (a fixed set), with what they chose.
pub async fn preferences(state: &AppState, actor: &Actor) -> AppResult<Vec<Preference>> {
    let stored = repo::prefs_of(&state.db, actor.user_id).await?;
    let mut out = Vec::with_capacity(Category::ALL.len() * PREF_CHANNELS.len());
    for c in Category::ALL {
        for ch in PREF_CHANNELS {
            out.push(effective(&stored, *c, ch));
        }
    }
    Ok(out)
}

/// One preference of the caller.
pub async fn preference(
    state: &AppState,
    actor: &Actor,
    category: Category,
    channel: Channel,
) -> AppResult<Preference> {
    let stored = repo::prefs_of(&state.db, actor.user_id).await?;
    Ok(effective(&stored, category, channel))
}

/// Turns a category on or off for a channel; security and alarm notifications cannot be
/// turned off. Returns the preference's key and the value set.
pub async fn set_preference(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    category: Category,
    channel: Channel,
    enabled: bool,
) -> AppResult<Preference> {
    if !enabled && !category.can_mute() {
        return Err(AppError::validation(
            "category",
            Msg::new("安全和告警类通知不能关闭", "Security and alarm notifications cannot be muted"),
        ));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::set_pref(&mut *tx, actor.user_id, category, channel, enabled).await?;
    let outcome = Preference { category, channel, enabled };
    tx.commit(&outcome).await?;
    Ok(outcome)
}

/// "22:30" → minutes after midnight.
fn minutes(field: &'static str, hhmm: &str) -> AppResult<i32> {
    let bad = || AppError::validation(field, Msg::new("时间格式应为HH:MM", "Time must be HH:MM"));
    let (h, m) = hhmm.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Sets the caller's quiet hours ("HH:MM" Shanghai time), or turns them off when both are
/// `None`. Returns whether quiet hours are on.
pub async fn set_quiet_hours(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    start: Option<&str>,
    end: Option<&str>,
) -> AppResult<bool> {
    let hours = match (start, end) {
        (Some(s), Some(e)) => {
            let (s, e) = (minutes("start", s)?, minutes("end", e)?);
            if s == e {
                return Err(AppError::validation(
                    "end",
                    Msg::new("结束时间不能等于开始时间", "End must differ from start"),
                ));
            }
            Some((s, e))
        }
        (None, None) => None,
        (None, Some(_)) => return Err(AppError::validation("start", Msg::new("不能为空", "Must not be empty"))),
        (Some(_), None) => return Err(AppError::validation("end", Msg::new("不能为空", "Must not be empty"))),
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::set_quiet_hours(&mut tx, actor.user_id, hours).await?;
    let on = hours.is_some();
    tx.commit(&on).await?;
    Ok(on)
}

/// The caller's quiet hours, if set.
pub async fn quiet_hours(state: &AppState, actor: &Actor) -> AppResult<Option<QuietHours>> {
    Ok(repo::quiet_hours_of(&state.db, actor.user_id)
        .await?
        .map(|(start_minute, end_minute)| QuietHours { start_minute, end_minute }))
}

/// Is `minute` (after Shanghai midnight) inside [start, end), which may wrap midnight?
pub fn in_quiet_hours(minute: i32, start: i32, end: i32) -> bool {
    if start < end { (start..end).contains(&minute) } else { minute >= start || minute < end }
}

/// What a batch's recipients asked for (muted channels per category, quiet hours),
/// loaded with one query each for the whole batch.
pub struct Rules {
    muted: HashMap<(Uuid, Category), Vec<Channel>>,
    quiet: HashMap<Uuid, (i32, i32)>,
}

pub async fn rules_for(state: &AppState, users: &[Uuid]) -> AppResult<Rules> {
    let mut muted: HashMap<(Uuid, Category), Vec<Channel>> = HashMap::new();
    for (u, category, channel) in repo::muted_for(&state.db, users).await? {
        muted.entry((u, category)).or_default().push(channel);
    }
    let quiet = repo::quiet_for(&state.db, users).await?.into_iter().map(|(u, s, e)| (u, (s, e))).collect();
    Ok(Rules { muted, quiet })
}

impl Rules {
    /// Channels of this notification the recipient does not want now, with the reason.
    pub fn skipped(&self, now: chrono::DateTime<chrono::Utc>, n: &Notification) -> Vec<(Channel, &'static str)> {
        if n.priority == Priority::Critical || !n.category.can_mute() {
            return Vec::new();
        }
        let mut skip: Vec<(Channel, &'static str)> = self
            .muted
            .get(&(n.user_id, n.category))
            .map(|chs| chs.iter().map(|c| (*c, "muted by the user")).collect())
            .unwrap_or_default();
        if let Some((start, end)) = self.quiet.get(&n.user_id) {
            use chrono::Timelike;
            let local = now.with_timezone(&crate::kit::clock::BUSINESS_TZ);
            let minute = (local.hour() * 60 + local.minute()) as i32;
            if in_quiet_hours(minute, *start, *end) {
                skip.push((Channel::Push, "quiet hours"));
            }
        }
        skip
    }
}

/// What was sent about one thing (`route` and id, as the sending domain put in `data`):
/// the caller has checked that its user may see it.
pub async fn about(state: &AppState, company: Uuid, route: &str, id: Uuid) -> AppResult<Vec<super::model::Notice>> {
    Ok(repo::about(&state.db, company, route, &id.to_string()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_wrap_midnight() {
        assert!(in_quiet_hours(23 * 60, 22 * 60, 7 * 60));
        assert!(in_quiet_hours(6 * 60 + 59, 22 * 60, 7 * 60));
        assert!(!in_quiet_hours(7 * 60, 22 * 60, 7 * 60));
        assert!(in_quiet_hours(13 * 60, 12 * 60, 14 * 60));
        assert!(!in_quiet_hours(11 * 60, 12 * 60, 14 * 60));
    }

    #[test]
    fn times() {
        assert_eq!(minutes("s", "22:30").unwrap(), 1350);
        assert!(minutes("s", "24:00").is_err());
        assert!(minutes("s", "7").is_err());
    }

    #[test]
    fn alarms_and_codes_cannot_be_muted() {
        assert!(!Category::Security.can_mute());
        assert!(!Category::Alarm.can_mute());
        assert!(Category::Bill.can_mute());
    }
}
