//! The company and its projects (estates, office towers, commercial complexes).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

/// 企业 a property-management company: every other row belongs to one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    /// short code unique on the server (device topics and broker usernames start with it)
    pub code: String,
    pub address: String,
    /// landline or mobile, as the company writes it
    pub phone: String,
    /// 统一社会信用代码 (GB 32100)
    pub credit_code: Option<String>,
    /// storage key of the logo image
    pub logo_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

crate::text_enum! {
    /// 项目类型 what kind of property a project is
    pub enum ProjectKind {
        /// 住宅小区
        Residential = "residential",
        /// 写字楼
        Office = "office",
        /// 商业综合体
        Commercial = "commercial",
        Other = "other",
    }
}

/// 项目 a managed property: residential estate, office building, commercial complex.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Project {
    pub id: Uuid,
    pub company_id: Uuid,
    pub name: String,
    /// short code, unique in the company, upper case
    pub code: String,
    pub address: String,
    pub kind: ProjectKind,
    /// m²
    pub building_area: Option<Decimal>,
    pub households: Option<i32>,
    /// 项目经理, a staff account
    pub manager_id: Option<Uuid>,
    /// attendance geofence: all three or none
    pub geofence_lat: Option<f64>,
    pub geofence_lng: Option<f64>,
    pub geofence_radius_m: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// 物业服务中心 what an owner sees of the office serving one of their estates.
#[derive(Debug, Clone)]
pub struct Office {
    pub project_id: Uuid,
    pub project_name: String,
    pub project_address: String,
    /// the estate's service phone (empty when not set)
    pub service_phone: String,
    /// the manager and customer-service team, when the company publishes them
    pub contacts: Vec<Contact>,
}

/// A published contact of a property office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// `manager` or `service`
    pub role: String,
    pub name: String,
    pub phone: Option<String>,
}
