//! 私有文件 the domain's types.

use chrono::{DateTime, Utc};
use uuid::Uuid;

crate::text_enum! {
    /// 用途 what a private file is for
    pub enum Purpose {
        /// 工单照片 a repair report or its result
        WorkOrder = "work_order",
        /// 投诉建议照片 owner feedback
        Feedback = "feedback",
        /// 保养照片 a maintenance record
        Maintenance = "maintenance",
        /// 员工照片与证书扫描件 (staff only)
        Staff = "staff",
        /// 账单 a printed bill or a run's bills (generated)
        Bill = "bill",
        /// 收据 a printed receipt (generated)
        Receipt = "receipt",
        /// 培训课件 a course's PDF or video (uploaded on its own route)
        Training = "training",
    }
}

impl Purpose {
    /// Photos people upload and attach to records; the others are documents the server
    /// generates.
    pub fn is_photo(self) -> bool {
        matches!(self, Purpose::WorkOrder | Purpose::Feedback | Purpose::Maintenance | Purpose::Staff)
    }
}

/// One stored file.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub id: Uuid,
    pub company_id: Uuid,
    pub uploaded_by: Uuid,
    pub purpose: Purpose,
    /// the storage key, e.g. `private/<company>/work_order/<uuid>.jpg`
    pub key: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
}
