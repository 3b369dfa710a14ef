//! Inbox, preferences, quiet hours, device registration, system notices and the live
//! `notificationReceived`.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use uuid::Uuid;

use super::model::{self, Channel, NewNotification, Priority};
use super::service::{self, DeviceInput, EVENT_NOTIFICATION};
use crate::kit::gql::{Conn, StateExt, parse_ids, to_id};
use crate::kit::pagination::Page;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

// ---- enums -----------------------------------------------------------------------------

/// 通知类别 why a person is told something. SECURITY and ALARM cannot be muted.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Category")]
pub enum NotificationCategory {
    /// 安全 sign-in and verification codes (never sent by hand)
    Security,
    /// 告警 device alarms
    Alarm,
    /// 工单 work orders and maintenance tasks
    WorkOrder,
    /// 投诉建议 replies to owner feedback
    Feedback,
    /// 账单 bills and payments
    Bill,
    /// 考勤 clocking in and out
    Attendance,
    /// 人事 employee records and certificates
    Staff,
    /// 培训考核 exams and their results
    Training,
    /// 公告 announcements of the property office
    Announcement,
    /// 系统 notices a manager sends by hand
    System,
}

/// 优先级 how urgent a notification is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Priority")]
pub enum NotificationPriority {
    /// an ordinary message
    Normal,
    /// wakes the phone
    High,
    /// device alarms for on-duty staff, security codes: never muted, sent first
    Critical,
}

/// 通道 a way to reach a person.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Channel")]
pub enum NotificationChannel {
    /// the in-app inbox and the live `notificationReceived` subscription
    InApp,
    /// a push notification to the person's registered phones
    Push,
    /// a text message to the account's phone number
    Sms,
}

/// A phone's operating system.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Platform")]
pub enum DevicePlatform {
    /// Android
    Android,
    /// iOS
    Ios,
}

/// The push service a device token belongs to.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Provider")]
pub enum PushProvider {
    /// Firebase Cloud Messaging (HTTP v1)
    Fcm,
    /// 极光推送, for Android phones without Google services
    Jpush,
}

/// Which of the two apps a phone registered with.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::AppKind")]
pub enum AppKind {
    /// the owner app (accounts linked to an owner record, or that are not staff)
    Owner,
    /// the staff app (staff accounts)
    Staff,
}

// ---- types ------------------------------------------------------------------------------

/// 通知 one message in the caller's inbox.
#[derive(SimpleObject)]
pub struct Notification {
    /// the notification's id
    pub id: ID,
    /// why the caller is told
    pub category: NotificationCategory,
    /// how urgent it is
    pub priority: NotificationPriority,
    /// the headline (Chinese, as sent)
    pub title: String,
    /// the text
    pub body: String,
    /// deep link for the app, e.g. `{"route": "announcement", "id": "…"}`
    pub data: async_graphql::Json<serde_json::Value>,
    /// when it was queued
    pub created_at: DateTime<Utc>,
    /// whether the caller has marked it read
    pub read: bool,
}

impl From<model::Notification> for Notification {
    fn from(n: model::Notification) -> Self {
        Notification {
            id: to_id(n.id),
            category: n.category.into(),
            priority: n.priority.into(),
            title: n.title,
            body: n.body,
            data: async_graphql::Json(n.data),
            created_at: n.created_at,
            read: n.read_at.is_some(),
        }
    }
}

impl From<model::LiveNotification> for Notification {
    fn from(n: model::LiveNotification) -> Self {
        Notification {
            id: to_id(n.id),
            category: n.category.into(),
            priority: n.priority.into(),
            title: n.title,
            body: n.body,
            data: async_graphql::Json(n.data),
            created_at: n.created_at,
            read: false,
        }
    }
}

/// 推送设备 one of the caller's phones registered for push.
#[derive(SimpleObject)]
pub struct PushDevice {
    /// the device's id
    pub id: ID,
    /// the phone's operating system
    pub platform: DevicePlatform,
    /// the push service its token belongs to
    pub provider: PushProvider,
    /// the app that registered it
    pub app: AppKind,
}

impl From<model::PushDevice> for PushDevice {
    fn from(d: model::PushDevice) -> Self {
        PushDevice { id: to_id(d.id), platform: d.platform.into(), provider: d.provider.into(), app: d.app.into() }
    }
}

/// Whether the caller receives a category through a channel.
#[derive(SimpleObject)]
pub struct NotificationPreference {
    /// the category
    pub category: NotificationCategory,
    /// the channel
    pub channel: NotificationChannel,
    /// false: the caller muted this category on this channel
    pub enabled: bool,
    /// security and alarm notifications cannot be muted
    pub can_mute: bool,
}

impl From<model::Preference> for NotificationPreference {
    fn from(p: model::Preference) -> Self {
        NotificationPreference {
            category: p.category.into(),
            channel: p.channel.into(),
            enabled: p.enabled,
            can_mute: p.category.can_mute(),
        }
    }
}

/// 免打扰 non-critical push is held back between start and end (Shanghai time); the
/// inbox still receives everything.
#[derive(SimpleObject)]
pub struct QuietHours {
    /// "HH:MM", Shanghai time
    pub start: String,
    /// "HH:MM", Shanghai time; before `start` when the span wraps midnight
    pub end: String,
}

impl From<model::QuietHours> for QuietHours {
    fn from(h: model::QuietHours) -> Self {
        let hhmm = |m: i32| format!("{:02}:{:02}", m / 60, m % 60);
        QuietHours { start: hhmm(h.start_minute), end: hhmm(h.end_minute) }
    }
}

async fn my_quiet_hours(ctx: &Context<'_>) -> async_graphql::Result<Option<QuietHours>> {
    let actor = ctx.actor()?;
    Ok(service::quiet_hours(ctx.state(), &actor).await?.map(QuietHours::from))
}

async fn my_devices(ctx: &Context<'_>) -> async_graphql::Result<Vec<PushDevice>> {
    let actor = ctx.actor()?;
    Ok(service::devices(ctx.state(), &actor).await?.into_iter().map(PushDevice::from).collect())
}

/// One of the caller's active devices, read again.
pub async fn load_device(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<PushDevice> {
    let actor = ctx.actor()?;
    Ok(service::device(ctx.state(), &actor, id).await?.into())
}

// ---- queries ------------------------------------------------------------------------------

#[derive(Default)]
pub struct NotifyQuery;

#[Object]
impl NotifyQuery {
    /// The caller's inbox, newest first (signed in; one's own only).
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default, desc = "only notifications not yet read")] unread_only: bool,
        #[graphql(desc = "only this category")] category: Option<NotificationCategory>,
        #[graphql(desc = "page size (default and maximum in `serviceConfig`)")] first: Option<i32>,
        #[graphql(desc = "the `cursor` of the last edge seen")] after: Option<String>,
    ) -> async_graphql::Result<Conn<Notification>> {
        let actor = ctx.actor()?;
        let page = Page::<Uuid>::new(ctx, first, after)?;
        let rows = service::inbox(ctx.state(), &actor, unread_only, category.map(Into::into), page.after, page.fetch())
            .await?;
        Ok(page.connection(rows, |n| n.id, Notification::from))
    }

    /// How many of the caller's notifications are unread (signed in).
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let actor = ctx.actor()?;
        Ok(service::unread_count(ctx.state(), &actor).await?)
    }

    /// Every category × channel with whether the caller receives it (signed in).
    async fn notification_preferences(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<NotificationPreference>> {
        let actor = ctx.actor()?;
        Ok(service::preferences(ctx.state(), &actor).await?.into_iter().map(Into::into).collect())
    }

    /// The caller's quiet hours; null when off (signed in).
    async fn quiet_hours(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<QuietHours>> {
        my_quiet_hours(ctx).await
    }

    /// The caller's registered phones (signed in).
    async fn push_devices(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PushDevice>> {
        my_devices(ctx).await
    }
}

// ---- mutations ----------------------------------------------------------------------------

/// Which of the caller's notifications to mark read.
#[derive(InputObject)]
pub struct MarkNotificationsReadInput {
    /// omitted: every notification of the caller; ids of other people's notifications change nothing
    pub ids: Option<Vec<ID>>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What `markNotificationsRead` changed.
#[derive(SimpleObject)]
pub struct MarkNotificationsReadPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// how many notifications this call marked read (a retry reports the first call's count)
    pub marked: u64,
    /// how many of the caller's notifications are still unread
    pub unread: i64,
}

/// A phone to register for push.
#[derive(InputObject)]
pub struct RegisterDeviceInput {
    /// the push token the provider's SDK gave the app (visible ASCII, at most 4096 characters)
    pub token: String,
    /// the phone's operating system
    pub platform: DevicePlatform,
    /// the push service the token belongs to
    pub provider: PushProvider,
    /// the app registering: OWNER for accounts that are not staff or are owners too, STAFF for staff accounts
    pub app: AppKind,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

crate::object_payload!(
    /// The phone `registerDevice` registered.
    RegisterDevicePayload, device: PushDevice, load_device, "the device as it is now"
);

/// A phone to stop pushing to.
#[derive(InputObject)]
pub struct UnregisterDeviceInput {
    /// the push token to forget
    pub token: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What `unregisterDevice` removed.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct UnregisterDevicePayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// whether the caller had registered the token
    pub removed: bool,
}

#[ComplexObject]
impl UnregisterDevicePayload {
    /// the caller's registered phones as they are now
    async fn push_devices(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PushDevice>> {
        my_devices(ctx).await
    }
}

/// A system notice to accounts of the company.
#[derive(InputObject)]
pub struct SendNotificationInput {
    /// 1 to 10000 accounts of the company
    pub user_ids: Vec<ID>,
    /// the headline, at most 100 characters
    pub title: String,
    /// the text, at most 2000 characters
    pub body: String,
    /// any category but SECURITY; default SYSTEM
    #[graphql(default_with = "NotificationCategory::System")]
    pub category: NotificationCategory,
    /// default: in-app and push
    pub channels: Option<Vec<NotificationChannel>>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// What `sendNotification` queued.
#[derive(SimpleObject)]
pub struct SendNotificationPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// how many recipients the notice was queued for (one notification each)
    pub queued: u64,
}

/// Turns a category on or off for a channel.
#[derive(InputObject)]
pub struct SetNotificationPreferenceInput {
    /// the category; SECURITY and ALARM cannot be turned off
    pub category: NotificationCategory,
    /// the channel
    pub channel: NotificationChannel,
    /// false mutes the category on the channel
    pub enabled: bool,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The preference `setNotificationPreference` changed.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SetNotificationPreferencePayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    #[graphql(skip)]
    pub category: model::Category,
    #[graphql(skip)]
    pub channel: Channel,
}

#[ComplexObject]
impl SetNotificationPreferencePayload {
    /// the preference as it is now
    async fn preference(&self, ctx: &Context<'_>) -> async_graphql::Result<NotificationPreference> {
        let actor = ctx.actor()?;
        Ok(service::preference(ctx.state(), &actor, self.category, self.channel).await?.into())
    }
}

/// The caller's quiet hours.
#[derive(InputObject)]
pub struct SetQuietHoursInput {
    /// "22:00" (Shanghai time); omit both start and end to turn quiet hours off
    pub start: Option<String>,
    /// "07:00" (Shanghai time); may be before start (the span wraps midnight)
    pub end: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The quiet hours `setQuietHours` set.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SetQuietHoursPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
}

#[ComplexObject]
impl SetQuietHoursPayload {
    /// the caller's quiet hours as they are now; null when off
    async fn quiet_hours(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<QuietHours>> {
        my_quiet_hours(ctx).await
    }
}

#[derive(Default)]
pub struct NotifyMutation;

#[Object]
impl NotifyMutation {
    /// Marks the caller's notifications read (signed in); answers how many changed.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        input: MarkNotificationsReadInput,
    ) -> async_graphql::Result<MarkNotificationsReadPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let ids = input.ids.as_deref().map(|i| parse_ids("ids", i)).transpose()?;
        let done = service::mark_read(ctx.state(), &actor, &retry, ids.as_deref()).await?;
        let unread = service::unread_count(ctx.state(), &actor).await?;
        Ok(MarkNotificationsReadPayload { client_mutation_id: input.client_mutation_id, marked: done.marked, unread })
    }

    /// Turns a category on or off for one channel (signed in).
    async fn set_notification_preference(
        &self,
        ctx: &Context<'_>,
        input: SetNotificationPreferenceInput,
    ) -> async_graphql::Result<SetNotificationPreferencePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let p = service::set_preference(
            ctx.state(),
            &actor,
            &retry,
            input.category.into(),
            input.channel.into(),
            input.enabled,
        )
        .await?;
        Ok(SetNotificationPreferencePayload {
            client_mutation_id: input.client_mutation_id,
            category: p.category,
            channel: p.channel,
        })
    }

    /// Sets or clears the caller's quiet hours (signed in).
    async fn set_quiet_hours(
        &self,
        ctx: &Context<'_>,
        input: SetQuietHoursInput,
    ) -> async_graphql::Result<SetQuietHoursPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        service::set_quiet_hours(ctx.state(), &actor, &retry, input.start.as_deref(), input.end.as_deref()).await?;
        Ok(SetQuietHoursPayload { client_mutation_id: input.client_mutation_id })
    }

    /// Registers this phone for push (signed in); a token registered to someone else moves to the caller.
    async fn register_device(
        &self,
        ctx: &Context<'_>,
        input: RegisterDeviceInput,
    ) -> async_graphql::Result<RegisterDevicePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::register_device(
            ctx.state(),
            &actor,
            &retry,
            DeviceInput {
                token: &input.token,
                platform: input.platform.into(),
                provider: input.provider.into(),
                app: input.app.into(),
            },
        )
        .await?;
        Ok(RegisterDevicePayload::new(input.client_mutation_id, id))
    }

    /// Stops pushing to one of the caller's phones (signed in).
    async fn unregister_device(
        &self,
        ctx: &Context<'_>,
        input: UnregisterDeviceInput,
    ) -> async_graphql::Result<UnregisterDevicePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let removed = service::unregister(ctx.state(), &actor, &retry, &input.token).await?;
        Ok(UnregisterDevicePayload { client_mutation_id: input.client_mutation_id, removed })
    }

    /// A notice from a manager to accounts of the company (`notification:send` company-wide).
    #[graphql(guard = "Perm::NotificationSend")]
    async fn send_notification(
        &self,
        ctx: &Context<'_>,
        input: SendNotificationInput,
    ) -> async_graphql::Result<SendNotificationPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let users = parse_ids("userIds", &input.user_ids)?;
        let n = NewNotification {
            category: input.category.into(),
            priority: Priority::Normal,
            title: input.title,
            body: input.body,
            data: serde_json::json!({}),
            channels: Some(match &input.channels {
                Some(c) if !c.is_empty() => c.iter().map(|c| Channel::from(*c)).collect(),
                _ => vec![Channel::InApp, Channel::Push],
            }),
        };
        let queued = service::send(ctx.state(), &actor, &retry, &users, n).await?;
        Ok(SendNotificationPayload { client_mutation_id: input.client_mutation_id, queued: queued as u64 })
    }
}

// ---- subscription -------------------------------------------------------------------------

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
                        if let Some(n) = service::live_notification(&ev.payload) {
                            return Some((Notification::from(n), rx));
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }
}

/// How one channel of a notification ended.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::DeliveryStatus")]
pub enum DeliveryStatus {
    /// handed to the gateway or the phone
    Sent,
    /// failed for good
    Failed,
    /// not tried: muted, quiet hours, no device, no phone, daily limit
    Skipped,
}

/// 发送状态 of a notification as a whole.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::OutboxStatus")]
pub enum NoticeStatus {
    /// some channel is still to be tried (or retried)
    Pending,
    /// every channel finished
    Done,
    /// given up after retries
    Failed,
}

/// One channel's outcome.
#[derive(SimpleObject)]
pub struct NotificationDelivery {
    /// the channel
    pub channel: NotificationChannel,
    /// how it ended
    pub status: DeliveryStatus,
    /// the gateway's or the dispatcher's word on it
    pub detail: String,
    /// when
    pub at: DateTime<Utc>,
}

/// 发送记录 a notification sent about something, for the staff who follow it up.
#[derive(SimpleObject)]
pub struct SentNotice {
    /// the notification
    pub id: ID,
    /// to whom (a user)
    pub user_id: ID,
    /// its title
    pub title: String,
    /// its text
    pub body: String,
    /// the channels it was to go through
    pub channels: Vec<NotificationChannel>,
    /// PENDING while some channel is still to be tried
    pub status: NoticeStatus,
    /// when it was queued
    pub created_at: DateTime<Utc>,
    /// each channel's outcome so far
    pub deliveries: Vec<NotificationDelivery>,
}

impl From<model::Notice> for SentNotice {
    fn from(n: model::Notice) -> Self {
        SentNotice {
            id: to_id(n.id),
            user_id: to_id(n.user_id),
            title: n.title,
            body: n.body,
            channels: n.channels.into_iter().map(Into::into).collect(),
            status: n.status.into(),
            created_at: n.created_at,
            deliveries: n
                .deliveries
                .into_iter()
                .map(|d| NotificationDelivery {
                    channel: d.channel.into(),
                    status: d.status.into(),
                    detail: d.detail,
                    at: d.at,
                })
                .collect(),
        }
    }
}
