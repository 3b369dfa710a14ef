//! Devices of the ledger.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

pub const CATEGORIES: &[&str] = &[
    "elevator",
    "access_door",
    "water_meter",
    "electricity_meter",
    "gas_meter",
    "fire_equipment",
    "water_pump",
    "camera",
    "other",
];
pub const STATUSES: &[&str] = &["in_use", "standby", "under_repair", "scrapped"];
pub const CONTROL_MODES: &[&str] = &["card", "face", "qr", "remote"];

/// 设备 one device, with its category attributes as validated JSON.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Device {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub code: String,
    pub name: String,
    pub category: String,
    pub model: String,
    pub specification: String,
    pub manufacturer: String,
    pub purchase_date: Option<NaiveDate>,
    pub install_date: Option<NaiveDate>,
    pub building_id: Option<Uuid>,
    pub unit_id: Option<Uuid>,
    pub location: String,
    pub warranty_expiry: Option<NaiveDate>,
    pub status: String,
    pub responsible_user_id: Option<Uuid>,
    pub attributes: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

pub fn is_meter(category: &str) -> bool {
    matches!(category, "water_meter" | "electricity_meter" | "gas_meter")
}
