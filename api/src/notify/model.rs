//! Notifications: what is being told, to whom, through which channels; push devices and
//! the recipients' own rules (muted channels, quiet hours).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

crate::text_enum! {
    /// 通知类别 why a person is told something. Security codes and alarms cannot be muted.
    pub enum Category {
        /// sign-in and verification codes
        Security = "security",
        /// device alarms
        Alarm = "alarm",
        /// work orders and maintenance tasks
        WorkOrder = "work_order",
        /// replies to owner feedback
        Feedback = "feedback",
        /// bills and payments
        Bill = "bill",
        /// clocking in and out
        Attendance = "attendance",
        /// employee records and certificates
        Staff = "staff",
        /// training sessions, exams and their results
        Training = "training",
        /// announcements of the property office
        Announcement = "announcement",
        /// notices a manager sends by hand
        System = "system",
    }
}

impl Category {
    /// The channels a category uses unless the sender says otherwise.
    pub fn default_channels(self) -> &'static [Channel] {
        match self {
            Category::Security => &[Channel::Sms],
            Category::System => &[Channel::InApp],
            _ => &[Channel::InApp, Channel::Push],
        }
    }

    /// Security codes and alarms reach people whatever they chose.
    pub fn can_mute(self) -> bool {
        !matches!(self, Category::Security | Category::Alarm)
    }
}

crate::text_enum! {
    /// 优先级 how urgent a notification is.
    pub enum Priority {
        Normal = "normal",
        /// wakes the phone
        High = "high",
        /// device alarms for on-duty staff, security codes: never muted, sent first
        Critical = "critical",
    }
}

crate::text_enum! {
    /// 通道 a way to reach a person.
    pub enum Channel {
        /// a push notification to the person's registered phones
        Push = "push",
        /// a text message to the account's phone number
        Sms = "sms",
        /// the in-app inbox and the live subscription
        InApp = "inapp",
    }
}

crate::text_enum! {
    /// Where a notification stands in the outbox.
    pub enum OutboxStatus {
        /// still to be sent (or retried)
        Pending = "pending",
        /// every channel finished
        Done = "done",
        /// given up after retries
        Failed = "failed",
    }
}

crate::text_enum! {
    /// How one channel of a notification ended.
    pub enum DeliveryStatus {
        Sent = "sent",
        Failed = "failed",
        /// not tried: muted, quiet hours, no device, no phone, daily limit
        Skipped = "skipped",
    }
}

crate::text_enum! {
    /// A phone's operating system.
    pub enum Platform { Android = "android", Ios = "ios" }
}

crate::text_enum! {
    /// The push service a device token belongs to.
    pub enum Provider {
        /// Firebase Cloud Messaging (HTTP v1)
        Fcm = "fcm",
        /// 极光推送, for Android phones without Google services
        Jpush = "jpush",
    }
}

crate::text_enum! {
    /// Which of the two apps registered a device.
    pub enum AppKind {
        /// the owner app
        Owner = "owner",
        /// the staff app
        Staff = "staff",
    }
}

/// What domain code hands to `enqueue`: one message, any number of recipients.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub category: Category,
    pub priority: Priority,
    /// Chinese, as users see it
    pub title: String,
    pub body: String,
    /// deep link for the app, e.g. `{"route": "workOrder", "id": "…"}`
    pub data: serde_json::Value,
    /// `None`: the category's default channels
    pub channels: Option<Vec<Channel>>,
}

/// One recipient's notification: inbox entry and outbox row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Notification {
    pub id: Uuid,
    pub company_id: Uuid,
    pub user_id: Uuid,
    pub category: Category,
    pub priority: Priority,
    pub title: String,
    pub body: String,
    pub data: serde_json::Value,
    pub channels: Vec<Channel>,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub give_up_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// 推送设备 a phone's push token, registered to one user at a time.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PushDevice {
    pub id: Uuid,
    pub user_id: Uuid,
    pub token: String,
    pub platform: Platform,
    pub provider: Provider,
    pub app: AppKind,
}

/// Whether a user receives a category through a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preference {
    pub category: Category,
    pub channel: Channel,
    pub enabled: bool,
}

/// 免打扰 non-critical push held back between two minutes after Shanghai midnight
/// (`start` may be after `end`: the span wraps midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start_minute: i32,
    pub end_minute: i32,
}

/// What the live subscription carries on the event bus (`EVENT_NOTIFICATION`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveNotification {
    pub id: Uuid,
    pub category: Category,
    pub priority: Priority,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// What `markNotificationsRead` changed: a retry answers with the same count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkedRead {
    pub marked: u64,
}

/// What was sent about one thing (a bill, an order) and how each channel ended.
#[derive(Debug, Clone)]
pub struct Notice {
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub body: String,
    pub channels: Vec<Channel>,
    pub status: OutboxStatus,
    pub created_at: DateTime<Utc>,
    pub deliveries: Vec<Delivery>,
}

/// How one channel of a notification ended.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub channel: Channel,
    pub status: DeliveryStatus,
    pub detail: String,
    pub at: DateTime<Utc>,
}
