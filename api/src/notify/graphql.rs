//! Inbox, device registration, system notices and the live `notificationReceived`.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use uuid::Uuid;

use super::model::{self, Category, Channel, NewNotification, Priority};
use super::service::{self, DeviceInput, EVENT_NOTIFICATION};
use crate::error::{AppError, Msg};
use crate::graphql::{Conn, CtxExt, Page};
use crate::rbac::graphql::parse_ids;
use crate::rbac::model::Perm;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum NotificationCategory {
    Security,
    Alarm,
    WorkOrder,
    Bill,
    Attendance,
    Announcement,
    System,
}

impl NotificationCategory {
    fn model(self) -> Category {
        match self {
            NotificationCategory::Security => Category::Security,
            NotificationCategory::Alarm => Category::Alarm,
            NotificationCategory::WorkOrder => Category::WorkOrder,
            NotificationCategory::Bill => Category::Bill,
            NotificationCategory::Attendance => Category::Attendance,
            NotificationCategory::Announcement => Category::Announcement,
            NotificationCategory::System => Category::System,
        }
    }

    fn of(code: &str) -> Self {
        match Category::parse(code) {
            Some(Category::Security) => NotificationCategory::Security,
            Some(Category::Alarm) => NotificationCategory::Alarm,
            Some(Category::WorkOrder) => NotificationCategory::WorkOrder,
            Some(Category::Bill) => NotificationCategory::Bill,
            Some(Category::Attendance) => NotificationCategory::Attendance,
            Some(Category::Announcement) => NotificationCategory::Announcement,
            _ => NotificationCategory::System,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum NotificationPriority {
    Normal,
    High,
    Critical,
}

/// 通知 one message in the user's inbox.
#[derive(SimpleObject)]
pub struct Notification {
    pub id: ID,
    pub category: NotificationCategory,
    pub priority: NotificationPriority,
    pub title: String,
    pub body: String,
    /// deep link for the app
    pub data: async_graphql::Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

fn priority_of(p: &str) -> NotificationPriority {
    match Priority::parse(p) {
        Priority::Critical => NotificationPriority::Critical,
        Priority::High => NotificationPriority::High,
        Priority::Normal => NotificationPriority::Normal,
    }
}

impl From<model::Notification> for Notification {
    fn from(n: model::Notification) -> Self {
        Notification {
            id: ID(n.id.to_string()),
            category: NotificationCategory::of(&n.category),
            priority: priority_of(&n.priority),
            title: n.title,
            body: n.body,
            data: async_graphql::Json(n.data),
            created_at: n.created_at,
            read: n.read_at.is_some(),
        }
    }
}

#[derive(SimpleObject)]
pub struct PushDevice {
    pub id: ID,
    pub platform: String,
    pub provider: String,
    pub app: String,
}

impl From<model::PushDevice> for PushDevice {
    fn from(d: model::PushDevice) -> Self {
        PushDevice { id: ID(d.id.to_string()), platform: d.platform, provider: d.provider, app: d.app }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum NotificationChannel {
    InApp,
    Push,
    Sms,
}

impl NotificationChannel {
    fn model(self) -> Channel {
        match self {
            NotificationChannel::InApp => Channel::InApp,
            NotificationChannel::Push => Channel::Push,
            NotificationChannel::Sms => Channel::Sms,
        }
    }
    fn of(c: Channel) -> Self {
        match c {
            Channel::InApp => NotificationChannel::InApp,
            Channel::Push => NotificationChannel::Push,
            Channel::Sms => NotificationChannel::Sms,
        }
    }
}

#[derive(SimpleObject)]
pub struct NotificationPreference {
    pub category: NotificationCategory,
    pub channel: NotificationChannel,
    pub enabled: bool,
    /// security and alarm notifications cannot be muted
    pub can_mute: bool,
}

impl From<service::Preference> for NotificationPreference {
    fn from(p: service::Preference) -> Self {
        NotificationPreference {
            category: NotificationCategory::of(p.category.code()),
            channel: NotificationChannel::of(p.channel),
            enabled: p.enabled,
            can_mute: service::can_mute(p.category),
        }
    }
}

/// 免打扰: non-critical push is held back between start and end (Shanghai time).
#[derive(SimpleObject)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
}

fn quiet(h: Option<(i32, i32)>) -> Option<QuietHours> {
    h.map(|(s, e)| QuietHours {
        start: format!("{:02}:{:02}", s / 60, s % 60),
        end: format!("{:02}:{:02}", e / 60, e % 60),
    })
}

#[derive(Default)]
pub struct NotifyQuery;

#[Object]
impl NotifyQuery {
    /// The caller's inbox, newest first.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] unread_only: bool,
        category: Option<NotificationCategory>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Notification>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let rows =
            service::inbox(ctx.state(), &actor, unread_only, category.map(|c| c.model()), page.after, page.fetch())
                .await?;
        Ok(page.connection(rows, |n| n.id, Notification::from))
    }

    async fn unread_notification_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let actor = ctx.actor()?;
        Ok(service::unread_count(ctx.state(), &actor).await?)
    }

    async fn notification_preferences(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<NotificationPreference>> {
        let actor = ctx.actor()?;
        Ok(service::preferences(ctx.state(), &actor).await?.into_iter().map(Into::into).collect())
    }

    async fn quiet_hours(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<QuietHours>> {
        let actor = ctx.actor()?;
        Ok(quiet(service::quiet_hours(ctx.state(), &actor).await?))
    }

    /// The caller's registered phones.
    async fn push_devices(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PushDevice>> {
        let actor = ctx.actor()?;
        Ok(service::devices(ctx.state(), &actor).await?.into_iter().map(PushDevice::from).collect())
    }
}

#[derive(InputObject)]
pub struct MarkNotificationsReadInput {
    /// omitted: every notification of the caller
    pub ids: Option<Vec<ID>>,
}

#[derive(SimpleObject)]
pub struct MarkNotificationsReadPayload {
    pub marked: u64,
    pub unread: i64,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum DevicePlatform {
    Android,
    Ios,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum PushProvider {
    /// Firebase Cloud Messaging (HTTP v1)
    Fcm,
    /// 极光推送, for Android phones without Google services
    Jpush,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    Owner,
    Staff,
}

#[derive(InputObject)]
pub struct RegisterDeviceInput {
    pub token: String,
    pub platform: DevicePlatform,
    pub provider: PushProvider,
    pub app: AppKind,
}

#[derive(SimpleObject)]
pub struct RegisterDevicePayload {
    pub device: PushDevice,
}

#[derive(InputObject)]
pub struct UnregisterDeviceInput {
    pub token: String,
}

#[derive(SimpleObject)]
pub struct UnregisterDevicePayload {
    pub removed: bool,
}

#[derive(InputObject)]
pub struct SendNotificationInput {
    pub user_ids: Vec<ID>,
    pub title: String,
    pub body: String,
    #[graphql(default_with = "NotificationCategory::System")]
    pub category: NotificationCategory,
    /// default: in-app and push
    pub channels: Option<Vec<NotificationChannel>>,
}

#[derive(SimpleObject)]
pub struct SendNotificationPayload {
    pub queued: u64,
}

#[derive(InputObject)]
pub struct SetNotificationPreferenceInput {
    pub category: NotificationCategory,
    pub channel: NotificationChannel,
    pub enabled: bool,
}

#[derive(SimpleObject)]
pub struct SetNotificationPreferencePayload {
    pub preference: NotificationPreference,
}

#[derive(InputObject)]
pub struct SetQuietHoursInput {
    /// "22:00"; omit both start and end to turn quiet hours off
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(SimpleObject)]
pub struct SetQuietHoursPayload {
    pub quiet_hours: Option<QuietHours>,
}

#[derive(Default)]
pub struct NotifyMutation;

#[Object]
impl NotifyMutation {
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        input: MarkNotificationsReadInput,
    ) -> async_graphql::Result<MarkNotificationsReadPayload> {
        let actor = ctx.actor()?;
        let ids = input.ids.as_deref().map(|i| parse_ids("ids", i)).transpose()?;
        let marked = service::mark_read(ctx.state(), &actor, ids.as_deref()).await?;
        let unread = service::unread_count(ctx.state(), &actor).await?;
        Ok(MarkNotificationsReadPayload { marked, unread })
    }

    async fn set_notification_preference(
        &self,
        ctx: &Context<'_>,
        input: SetNotificationPreferenceInput,
    ) -> async_graphql::Result<SetNotificationPreferencePayload> {
        let actor = ctx.actor()?;
        let p =
            service::set_preference(ctx.state(), &actor, input.category.model(), input.channel.model(), input.enabled)
                .await?;
        Ok(SetNotificationPreferencePayload { preference: p.into() })
    }

    async fn set_quiet_hours(
        &self,
        ctx: &Context<'_>,
        input: SetQuietHoursInput,
    ) -> async_graphql::Result<SetQuietHoursPayload> {
        let actor = ctx.actor()?;
        let h = service::set_quiet_hours(ctx.state(), &actor, input.start.as_deref(), input.end.as_deref()).await?;
        Ok(SetQuietHoursPayload { quiet_hours: quiet(h) })
    }

    /// Registers this phone for push; a token registered to someone else moves to the caller.
    async fn register_device(
        &self,
        ctx: &Context<'_>,
        input: RegisterDeviceInput,
    ) -> async_graphql::Result<RegisterDevicePayload> {
        let actor = ctx.actor()?;
        let d = service::register_device(
            ctx.state(),
            &actor,
            DeviceInput {
                token: &input.token,
                platform: if input.platform == DevicePlatform::Ios { "ios" } else { "android" },
                provider: if input.provider == PushProvider::Jpush { "jpush" } else { "fcm" },
                app: if input.app == AppKind::Owner { "owner" } else { "staff" },
            },
        )
        .await?;
        Ok(RegisterDevicePayload { device: d.into() })
    }

    async fn unregister_device(
        &self,
        ctx: &Context<'_>,
        input: UnregisterDeviceInput,
    ) -> async_graphql::Result<UnregisterDevicePayload> {
        let actor = ctx.actor()?;
        Ok(UnregisterDevicePayload {
            removed: service::unregister_device(ctx.state(), actor.user_id, &input.token).await?,
        })
    }

    /// A notice from a manager to users of the company (in-app and push).
    #[graphql(guard = "Perm::NotificationSend")]
    async fn send_notification(
        &self,
        ctx: &Context<'_>,
        input: SendNotificationInput,
    ) -> async_graphql::Result<SendNotificationPayload> {
        let actor = ctx.actor()?;
        if input.category == NotificationCategory::Security {
            return Err(AppError::validation(
                "category",
                Msg::new("不能发送安全类通知", "Security notifications cannot be sent by hand"),
            )
            .into());
        }
        let users = parse_ids("userIds", &input.user_ids)?;
        let n = NewNotification {
            category: input.category.model(),
            priority: Priority::Normal,
            title: input.title,
            body: input.body,
            data: serde_json::json!({}),
            channels: Some(match &input.channels {
                Some(c) if !c.is_empty() => c.iter().map(|c| c.model()).collect(),
                _ => vec![Channel::InApp, Channel::Push],
            }),
        };
        let queued = service::send(ctx.state(), &actor, &users, n).await?;
        Ok(SendNotificationPayload { queued: queued as u64 })
    }
}

#[derive(Default)]
pub struct NotifySubscription;

#[Subscription]
impl NotifySubscription {
    /// New notifications of the signed-in user, on every connected device, whichever
    /// replica raised them.
    async fn notification_received(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = Notification> + use<>> {
        let actor = ctx.actor()?;
        let user = actor.user_id;
        let rx = ctx.state().events.subscribe();
        Ok(futures_util::stream::unfold(rx, move |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.user_id == Some(user) && ev.kind == EVENT_NOTIFICATION => {
                        if let Some(n) = live(&ev.payload) {
                            return Some((n, rx));
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }
}

fn live(p: &serde_json::Value) -> Option<Notification> {
    let id: Uuid = p.get("id")?.as_str()?.parse().ok()?;
    Some(Notification {
        id: ID(id.to_string()),
        category: NotificationCategory::of(p.get("category")?.as_str()?),
        priority: priority_of(p.get("priority")?.as_str()?),
        title: p.get("title")?.as_str()?.to_owned(),
        body: p.get("body")?.as_str()?.to_owned(),
        data: async_graphql::Json(p.get("data").cloned().unwrap_or_default()),
        created_at: serde_json::from_value(p.get("createdAt")?.clone()).ok()?,
        read: false,
    })
}
