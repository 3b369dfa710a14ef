//! Enqueueing (in the caller's transaction), the inbox and push-device registration.

use std::collections::{HashMap, HashSet};

use chrono::TimeDelta;
use uuid::Uuid;

use super::model::{Category, Channel, NewNotification, Notification, PushDevice};
use super::repo::{self, NewRow};
use crate::app::AppState;
use crate::error::{AppError, AppResult, Msg};
use crate::events::Event;
use crate::rbac::model::{Actor, Perm, Scope, UserKind};
use crate::types;

pub const EVENT_NOTIFICATION: &str = "NOTIFICATION";

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
    let channels: Vec<String> = match &n.channels {
        Some(c) if !c.is_empty() => c.iter().map(|c| c.code().to_owned()).collect(),
        _ => n.category.default_channels().iter().map(|c| c.code().to_owned()).collect(),
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
            category: n.category.code(),
            priority: n.priority.code(),
            title: &title,
            body: &body,
            data: &n.data,
            channels: &channels,
            now,
            give_up_at: now + give_up,
        },
    )
    .await?;
    Ok(ids)
}

/// The in-app part of a delivery: every connected device of the user, on any replica.
pub async fn publish_live(state: &AppState, n: &Notification) -> AppResult<()> {
    let ev = Event {
        user_id: Some(n.user_id),
        kind: EVENT_NOTIFICATION.into(),
        payload: serde_json::json!({
            "id": n.id, "category": n.category, "priority": n.priority, "title": n.title,
            "body": n.body, "data": n.data, "createdAt": n.created_at,
        }),
    };
    state.events.publish(&ev).await?;
    Ok(())
}

/// A system notice from a manager to users of the company.
pub async fn send(state: &AppState, actor: &Actor, users: &[Uuid], n: NewNotification) -> AppResult<usize> {
    if actor.require(Perm::NotificationSend)? != &Scope::Company {
        return Err(AppError::forbidden());
    }
    if users.is_empty() || users.len() > 10_000 {
        return Err(AppError::validation(
            "userIds",
            Msg::new("收件人数量应在1到10000之间", "Between 1 and 10000 recipients"),
        ));
    }
    let mut tx = state.db.begin().await?;
    let known = crate::rbac::service::count_users(&mut tx, actor.company_id, users).await?;
    let distinct: HashSet<&Uuid> = users.iter().collect();
    if known != distinct.len() as i64 {
        return Err(AppError::validation("userIds", Msg::new("收件人不存在", "Unknown recipient")));
    }
    let ids = enqueue(state, &mut tx, actor.company_id, users, &n).await?;
    crate::rbac::service::audit(
        &mut tx,
        actor,
        "notification.send",
        "notification",
        None,
        serde_json::json!({ "recipients": ids.len(), "title": n.title }),
    )
    .await?;
    tx.commit().await?;
    Ok(ids.len())
}

// ---- inbox ---------------------------------------------------------------------------

pub async fn inbox(
    state: &AppState,
    actor: &Actor,
    unread_only: bool,
    category: Option<Category>,
    before: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Notification>> {
    Ok(repo::inbox(&state.db, actor.user_id, unread_only, category.map(Category::code), before, limit as i64).await?)
}

pub async fn unread_count(state: &AppState, actor: &Actor) -> AppResult<i64> {
    Ok(repo::unread_count(&state.db, actor.user_id).await?)
}

/// Marks the caller's notifications read; ids of other people's notifications change nothing.
pub async fn mark_read(state: &AppState, actor: &Actor, ids: Option<&[Uuid]>) -> AppResult<u64> {
    Ok(repo::mark_read(&state.db, actor.user_id, ids, state.clock.now()).await?)
}

// ---- devices -------------------------------------------------------------------------

pub struct DeviceInput<'a> {
    pub token: &'a str,
    pub platform: &'a str,
    pub provider: &'a str,
    pub app: &'a str,
}

pub async fn register_device(state: &AppState, actor: &Actor, d: DeviceInput<'_>) -> AppResult<PushDevice> {
    let token = d.token.trim();
    if token.is_empty() || token.len() > 4096 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::validation("token", Msg::new("推送令牌无效", "Invalid push token")));
    }
    let platform = types::one_of("platform", d.platform, &["android", "ios"])?;
    let provider = types::one_of("provider", d.provider, &["fcm", "jpush"])?;
    let app = types::one_of("app", d.app, &["owner", "staff"])?;
    let expected = if actor.kind == UserKind::Owner { "owner" } else { "staff" };
    if app != expected {
        return Err(AppError::validation(
            "app",
            Msg::new("应用与账号类型不符", "The app does not match the account kind"),
        ));
    }
    let id = repo::upsert_device(&state.db, actor.user_id, token, &platform, &provider, &app).await?;
    Ok(PushDevice { id, user_id: actor.user_id, token: token.to_owned(), platform, provider, app })
}

pub async fn unregister_device(state: &AppState, user_id: Uuid, token: &str) -> AppResult<bool> {
    Ok(repo::remove_device(&state.db, user_id, token.trim()).await? > 0)
}

pub async fn devices(state: &AppState, actor: &Actor) -> AppResult<Vec<PushDevice>> {
    Ok(repo::active_devices(&state.db, actor.user_id).await?)
}

// ---- preferences and quiet hours -----------------------------------------------------

/// Security codes and alarms reach people whatever they chose.
pub fn can_mute(category: Category) -> bool {
    !matches!(category, Category::Security | Category::Alarm)
}

pub struct Preference {
    pub category: Category,
    pub channel: Channel,
    pub enabled: bool,
}

pub async fn preferences(state: &AppState, actor: &Actor) -> AppResult<Vec<Preference>> {
    let stored = repo::prefs_of(&state.db, actor.user_id).await?;
    let mut out = Vec::new();
    for c in Category::ALL {
        for ch in [Channel::InApp, Channel::Push, Channel::Sms] {
            let enabled = !can_mute(*c)
                || stored.iter().find(|p| p.category == c.code() && p.channel == ch.code()).is_none_or(|p| p.enabled);
            out.push(Preference { category: *c, channel: ch, enabled });
        }
    }
    Ok(out)
}

pub async fn set_preference(
    state: &AppState,
    actor: &Actor,
    category: Category,
    channel: Channel,
    enabled: bool,
) -> AppResult<Preference> {
    if !enabled && !can_mute(category) {
        return Err(AppError::validation(
            "category",
            Msg::new("安全和告警类通知不能关闭", "Security and alarm notifications cannot be muted"),
        ));
    }
    repo::set_pref(&state.db, actor.user_id, category.code(), channel.code(), enabled).await?;
    Ok(Preference { category, channel, enabled })
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

pub async fn set_quiet_hours(
    state: &AppState,
    actor: &Actor,
    start: Option<&str>,
    end: Option<&str>,
) -> AppResult<Option<(i32, i32)>> {
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
    let mut conn = state.db.acquire().await?;
    repo::set_quiet_hours(&mut conn, actor.user_id, hours).await?;
    Ok(hours)
}

pub async fn quiet_hours(state: &AppState, actor: &Actor) -> AppResult<Option<(i32, i32)>> {
    Ok(repo::quiet_hours_of(&state.db, actor.user_id).await?)
}

/// Is `minute` (after Shanghai midnight) inside [start, end), which may wrap midnight?
pub fn in_quiet_hours(minute: i32, start: i32, end: i32) -> bool {
    if start < end { (start..end).contains(&minute) } else { minute >= start || minute < end }
}

/// What a batch's recipients asked for (muted channels per category, quiet hours),
/// loaded with one query each for the whole batch.
pub struct Rules {
    muted: HashMap<(Uuid, String), Vec<String>>,
    quiet: HashMap<Uuid, (i32, i32)>,
}

pub async fn rules_for(state: &AppState, users: &[Uuid]) -> AppResult<Rules> {
    let mut muted: HashMap<(Uuid, String), Vec<String>> = HashMap::new();
    for (u, category, channel) in repo::muted_for(&state.db, users).await? {
        muted.entry((u, category)).or_default().push(channel);
    }
    let quiet = repo::quiet_for(&state.db, users).await?.into_iter().map(|(u, s, e)| (u, (s, e))).collect();
    Ok(Rules { muted, quiet })
}

impl Rules {
    /// Channels of this notification the recipient does not want now, with the reason.
    pub fn skipped(&self, now: chrono::DateTime<chrono::Utc>, n: &Notification) -> Vec<(String, &'static str)> {
        let category = Category::parse(&n.category);
        if n.priority == "critical" || category.is_none_or(|c| !can_mute(c)) {
            return Vec::new();
        }
        let mut skip: Vec<(String, &'static str)> = self
            .muted
            .get(&(n.user_id, n.category.clone()))
            .map(|chs| chs.iter().map(|c| (c.clone(), "muted by the user")).collect())
            .unwrap_or_default();
        if let Some((start, end)) = self.quiet.get(&n.user_id) {
            use chrono::Timelike;
            let local = now.with_timezone(&crate::clock::BUSINESS_TZ);
            let minute = (local.hour() * 60 + local.minute()) as i32;
            if in_quiet_hours(minute, *start, *end) {
                skip.push(("push".into(), "quiet hours"));
            }
        }
        skip
    }
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
}
