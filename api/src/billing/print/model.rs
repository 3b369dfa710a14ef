//! 打印 types.

use chrono::{DateTime, Utc};
use uuid::Uuid;

crate::text_enum! {
    /// 打印任务状态
    pub enum PrintStatus {
        /// waiting for a renderer
        Queued = "queued",
        /// pages being rendered
        Rendering = "rendering",
        /// the PDF is ready
        Done = "done",
        /// rendering failed
        Failed = "failed",
    }
}

/// A run's bills printed as one PDF.
#[derive(Debug, Clone)]
pub struct Print {
    pub id: Uuid,
    pub company_id: Uuid,
    pub run_id: Uuid,
    /// only these buildings' bills (none: all of the run's)
    pub building_ids: Vec<Uuid>,
    pub status: PrintStatus,
    /// pages to render (known once rendering starts)
    pub pages: i32,
    /// pages rendered so far
    pub rendered: i32,
    pub file_key: Option<String>,
    pub error: Option<String>,
    /// renderers that took it so far: the current one's token (its writes name it)
    pub attempts: i32,
    pub requested_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}
