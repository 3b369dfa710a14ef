//! Notifications: what is being told, to whom, through which channels.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Why a person is told something. Security and critical alarms cannot be muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Security,
    Alarm,
    WorkOrder,
    Bill,
    Attendance,
    Announcement,
    System,
}

impl Category {
    pub const ALL: &'static [Category] = &[
        Category::Security,
        Category::Alarm,
        Category::WorkOrder,
        Category::Bill,
        Category::Attendance,
        Category::Announcement,
        Category::System,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Category::Security => "security",
            Category::Alarm => "alarm",
            Category::WorkOrder => "work_order",
            Category::Bill => "bill",
            Category::Attendance => "attendance",
            Category::Announcement => "announcement",
            Category::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.iter().copied().find(|c| c.code() == s)
    }

    /// The channels a category uses unless the sender says otherwise.
    pub fn default_channels(self) -> &'static [Channel] {
        match self {
            Category::Security => &[Channel::Sms],
            Category::System => &[Channel::InApp],
            _ => &[Channel::InApp, Channel::Push],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    Normal,
    High,
    /// device alarms for on-duty staff, security codes: never muted, sent first
    Critical,
}

impl Priority {
    pub fn code(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Priority {
        match s {
            "critical" => Priority::Critical,
            "high" => Priority::High,
            _ => Priority::Normal,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Push,
    Sms,
    InApp,
}

impl Channel {
    pub fn code(self) -> &'static str {
        match self {
            Channel::Push => "push",
            Channel::Sms => "sms",
            Channel::InApp => "inapp",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "push" => Some(Channel::Push),
            "sms" => Some(Channel::Sms),
            "inapp" => Some(Channel::InApp),
            _ => None,
        }
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
    pub category: String,
    pub priority: String,
    pub title: String,
    pub body: String,
    pub data: serde_json::Value,
    pub channels: Vec<String>,
    pub status: String,
    pub attempts: i32,
    pub give_up_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PushDevice {
    pub id: Uuid,
    pub user_id: Uuid,
    pub token: String,
    pub platform: String,
    pub provider: String,
    pub app: String,
}
