//! 培训 types.

use chrono::{DateTime, Utc};
use uuid::Uuid;

crate::text_enum! {
    /// 资料类别
    pub enum MaterialKind { Pdf = "pdf", Video = "video" }
}

/// 课程
#[derive(Debug, Clone)]
pub struct Course {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Option<Uuid>,
    pub title: String,
    pub content: String,
    pub audience: String,
    pub updated_at: DateTime<Utc>,
}

/// 课件
#[derive(Debug, Clone)]
pub struct Material {
    pub id: Uuid,
    pub course_id: Uuid,
    pub file_key: String,
    pub kind: MaterialKind,
    pub name: String,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
}

/// 培训场次
#[derive(Debug, Clone)]
pub struct Session {
    pub id: Uuid,
    pub company_id: Uuid,
    pub course_id: Uuid,
    pub project_id: Option<Uuid>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub place: String,
    pub trainer_id: Uuid,
}

/// 参训人员
#[derive(Debug, Clone)]
pub struct Attendee {
    pub session_id: Uuid,
    pub user_id: Uuid,
    /// None: not marked yet
    pub attended: Option<bool>,
    pub marked_at: Option<DateTime<Utc>>,
}

/// What a file's first bytes say it is: a PDF, or an MP4 / QuickTime video.
pub fn sniff(bytes: &[u8]) -> Option<(MaterialKind, &'static str, &'static str)> {
    if bytes.starts_with(b"%PDF-") {
        return Some((MaterialKind::Pdf, "application/pdf", "pdf"));
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return Some((MaterialKind::Video, "video/mp4", "mp4"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_known_by_their_first_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n").map(|s| s.0), Some(MaterialKind::Pdf));
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42\0\0\0\0").map(|s| s.0), Some(MaterialKind::Video));
        assert_eq!(sniff(b"<html>"), None);
        assert_eq!(sniff(b"\0\0\0\x18ftyp"), None);
    }
}
