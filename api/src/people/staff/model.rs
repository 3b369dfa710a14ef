//! 员工档案 types.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

crate::text_enum! {
    /// 性别
    pub enum Gender { Male = "male", Female = "female" }
}

crate::text_enum! {
    /// 在职状态
    pub enum EmployeeStatus {
        /// 在职
        Active = "active",
        /// 休假 (not offered work)
        OnLeave = "on_leave",
        /// 离职: the account is disabled and its sessions ended
        Left = "left",
    }
}

crate::text_enum! {
    /// 证书类别 licences for special posts
    pub enum CertificateKind {
        /// 电工证
        Electrician = "electrician",
        /// 保安员证
        SecurityGuard = "security_guard",
        /// 电梯安全管理员证
        ElevatorSafety = "elevator_safety",
        /// 消防设施操作员证
        FireControl = "fire_control",
        /// 焊工证
        Welder = "welder",
        /// 锅炉操作证
        Boiler = "boiler",
        /// 其他
        Other = "other",
    }
}

/// A staff account with its employee record (none yet: the record's fields are empty).
#[derive(Debug, Clone)]
pub struct Employee {
    pub user_id: Uuid,
    pub company_id: Uuid,
    /// from the account
    pub name: String,
    pub phone: Option<String>,
    pub skills: Vec<String>,
    /// whether a record was written
    pub recorded: bool,
    pub gender: Option<Gender>,
    pub id_card_enc: Option<Vec<u8>>,
    pub hire_date: Option<NaiveDate>,
    pub position: String,
    pub department: String,
    pub photo_key: Option<String>,
    pub status: EmployeeStatus,
    pub left_on: Option<NaiveDate>,
    pub emergency_name: String,
    pub emergency_phone: String,
    /// 工号: what attendance terminals know them by
    pub employee_no: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A licence.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub id: Uuid,
    pub company_id: Uuid,
    pub user_id: Uuid,
    pub kind: CertificateKind,
    pub number: String,
    pub issuer: String,
    pub issued_on: NaiveDate,
    /// none: it does not expire
    pub expires_on: Option<NaiveDate>,
    pub scan_key: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Certificate {
    /// Valid on a day (the day it expires included).
    pub fn valid_on(&self, day: NaiveDate) -> bool {
        self.issued_on <= day && self.expires_on.is_none_or(|e| day <= e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_valid_through_its_expiry_day() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let now = Utc::now();
        let c = Certificate {
            id: Uuid::nil(),
            company_id: Uuid::nil(),
            user_id: Uuid::nil(),
            kind: CertificateKind::Electrician,
            number: "1".into(),
            issuer: "x".into(),
            issued_on: d("2024-01-10"),
            expires_on: Some(d("2026-12-31")),
            scan_key: None,
            created_by: Uuid::nil(),
            created_at: now,
            updated_at: now,
        };
        assert!(!c.valid_on(d("2024-01-09")), "not before it was issued");
        assert!(c.valid_on(d("2026-12-31")));
        assert!(!c.valid_on(d("2027-01-01")));
        let forever = Certificate { expires_on: None, ..c };
        assert!(forever.valid_on(d("2099-01-01")));
    }
}
