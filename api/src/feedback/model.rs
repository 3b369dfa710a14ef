//! 客服 the domain's types.

use chrono::{DateTime, Utc};
use uuid::Uuid;

crate::text_enum! {
    /// 类型 what the owner says
    pub enum Kind {
        /// 投诉
        Complaint = "complaint",
        /// 建议
        Suggestion = "suggestion",
        /// 表扬
        Praise = "praise",
        /// 咨询
        Enquiry = "enquiry",
    }
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Complaint => "投诉",
            Kind::Suggestion => "建议",
            Kind::Praise => "表扬",
            Kind::Enquiry => "咨询",
        }
    }

    /// How long customer service has for a first reply.
    pub fn respond_within_minutes(self) -> i64 {
        match self {
            Kind::Complaint => 120,
            Kind::Enquiry => 240,
            Kind::Suggestion | Kind::Praise => 1_440,
        }
    }
}

crate::text_enum! {
    /// 状态 where a feedback stands
    pub enum State {
        /// waiting for customer service
        Open = "open",
        /// answered; waiting for the owner
        Replied = "replied",
        /// done
        Closed = "closed",
    }
}

/// 投诉建议 one piece of owner feedback.
#[derive(Debug, Clone)]
pub struct Feedback {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub owner_id: Uuid,
    pub reporter_id: Uuid,
    pub house_id: Option<Uuid>,
    pub kind: Kind,
    pub content: String,
    pub photos: Vec<String>,
    pub state: State,
    pub work_order_id: Option<Uuid>,
    pub respond_due_at: DateTime<Utc>,
    pub first_reply_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub rating: Option<i16>,
    pub rating_comment: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One message of the conversation.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: Uuid,
    pub feedback_id: Uuid,
    pub author_id: Uuid,
    pub from_staff: bool,
    pub body: String,
    pub at: DateTime<Utc>,
}
