//! The company, its projects (estates, towers, complexes) and their structure:
//! buildings → units → houses, parking spaces, and the people living there.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub phone: String,
    pub credit_code: Option<String>,
    pub logo_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// 项目 a managed property: residential estate, office building, commercial complex.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Project {
    pub id: Uuid,
    pub company_id: Uuid,
    pub name: String,
    pub code: String,
    pub address: String,
    pub kind: String,
    pub building_area: Option<Decimal>,
    pub households: Option<i32>,
    pub manager_id: Option<Uuid>,
    pub geofence_lat: Option<f64>,
    pub geofence_lng: Option<f64>,
    pub geofence_radius_m: Option<i32>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Building {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub floors: Option<i32>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Unit {
    pub id: Uuid,
    pub project_id: Uuid,
    pub building_id: Uuid,
    pub name: String,
}

/// 房屋 a house (flat, shop, office) with its building and unit names.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct House {
    pub id: Uuid,
    pub project_id: Uuid,
    pub building_id: Uuid,
    pub building_name: String,
    pub unit_id: Uuid,
    pub unit_name: String,
    pub room_no: String,
    pub floor: i32,
    pub building_area: Decimal,
    pub indoor_area: Option<Decimal>,
    pub usage: String,
    pub status: String,
}

/// 业主/住户 a person registered by the property office.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Owner {
    pub id: Uuid,
    pub company_id: Uuid,
    pub user_id: Option<Uuid>,
    pub name: String,
    pub phone: String,
    pub id_card_enc: Option<Vec<u8>>,
    pub activated: bool,
    pub created_at: DateTime<Utc>,
}

/// A person's link to a house: owner (产权人), household member (家庭成员) or tenant (租户).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Resident {
    pub house_id: Uuid,
    pub owner_id: Uuid,
    pub relation: String,
    pub name: String,
    pub phone: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ParkingSpace {
    pub id: Uuid,
    pub project_id: Uuid,
    pub code: String,
    pub area: Option<Decimal>,
    pub status: String,
    pub owner_id: Option<Uuid>,
}

pub const PROJECT_KINDS: &[&str] = &["residential", "office", "commercial", "other"];
pub const HOUSE_USAGES: &[&str] = &["residence", "shop", "office", "garage", "other"];
pub const HOUSE_STATUSES: &[&str] = &["occupied", "vacant"];
pub const RELATIONS: &[&str] = &["owner", "member", "tenant"];
