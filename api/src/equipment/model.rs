//! Devices of the ledger: their categories, statuses and the attributes each category keeps.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

crate::text_enum! {
    /// 设备类别 what kind of device it is; decides its attributes, commands and rules
    pub enum DeviceCategory {
        Elevator = "elevator",
        AccessDoor = "access_door",
        WaterMeter = "water_meter",
        ElectricityMeter = "electricity_meter",
        GasMeter = "gas_meter",
        FireEquipment = "fire_equipment",
        WaterPump = "water_pump",
        Camera = "camera",
        Other = "other",
    }
}

impl DeviceCategory {
    /// The meter categories: they report a cumulative `reading`.
    pub const METERS: &'static [DeviceCategory] =
        &[DeviceCategory::WaterMeter, DeviceCategory::ElectricityMeter, DeviceCategory::GasMeter];

    /// 表计: a meter counting up (water, electricity, gas).
    pub fn is_meter(self) -> bool {
        Self::METERS.contains(&self)
    }

    /// The name users know, for imports written in Chinese.
    pub fn label(self) -> &'static str {
        match self {
            DeviceCategory::Elevator => "电梯",
            DeviceCategory::AccessDoor => "门禁",
            DeviceCategory::WaterMeter => "水表",
            DeviceCategory::ElectricityMeter => "电表",
            DeviceCategory::GasMeter => "燃气表",
            DeviceCategory::FireEquipment => "消防设备",
            DeviceCategory::WaterPump => "水泵",
            DeviceCategory::Camera => "摄像头",
            DeviceCategory::Other => "其他",
        }
    }

    /// A code (`water_pump`, `WATER_PUMP`) or the Chinese name (`水泵`).
    pub fn from_text(s: &str) -> Option<Self> {
        let t = s.trim();
        Self::parse(&t.to_ascii_lowercase()).or_else(|| Self::ALL.iter().copied().find(|c| c.label() == t))
    }
}

crate::text_enum! {
    /// 设备状态 where a device stands in its life
    pub enum DeviceStatus {
        InUse = "in_use",
        Standby = "standby",
        UnderRepair = "under_repair",
        Scrapped = "scrapped",
    }
}

impl DeviceStatus {
    /// The name users know, for imports written in Chinese.
    pub fn label(self) -> &'static str {
        match self {
            DeviceStatus::InUse => "在用",
            DeviceStatus::Standby => "备用",
            DeviceStatus::UnderRepair => "维修中",
            DeviceStatus::Scrapped => "报废",
        }
    }

    /// A code (`in_use`, `IN_USE`) or the Chinese name (`在用`).
    pub fn from_text(s: &str) -> Option<Self> {
        let t = s.trim();
        Self::parse(&t.to_ascii_lowercase()).or_else(|| Self::ALL.iter().copied().find(|c| c.label() == t))
    }
}

crate::text_enum! {
    /// 门禁开门方式 how an access door opens (kept in the device's `attributes.controlMode`)
    pub enum ControlMode { Card = "card", Face = "face", Qr = "qr", Remote = "remote" }
}

crate::text_enum! {
    /// 重要程度 how much the estate depends on a device: orders the technician's task list
    /// and the dispatch queue when hands are short
    pub enum Importance {
        /// 关键 a failure stops people (elevators, fire pumps)
        Critical = "critical",
        /// 一般
        Normal = "normal",
        /// 次要
        Low = "low",
    }
}

impl Importance {
    /// The name users know, for imports written in Chinese.
    pub fn label(self) -> &'static str {
        match self {
            Importance::Critical => "关键",
            Importance::Normal => "一般",
            Importance::Low => "次要",
        }
    }

    /// A code (`critical`, `CRITICAL`) or the Chinese name (`关键`).
    pub fn from_text(s: &str) -> Option<Self> {
        let t = s.trim();
        Self::parse(&t.to_ascii_lowercase()).or_else(|| Self::ALL.iter().copied().find(|c| c.label() == t))
    }

    /// Higher comes first in a queue.
    pub fn rank(self) -> i16 {
        match self {
            Importance::Critical => 2,
            Importance::Normal => 1,
            Importance::Low => 0,
        }
    }
}

/// 设备 one device, with its category attributes as validated JSON.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Device {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub code: String,
    pub name: String,
    pub category: DeviceCategory,
    pub model: String,
    pub specification: String,
    pub manufacturer: String,
    pub purchase_date: Option<NaiveDate>,
    pub install_date: Option<NaiveDate>,
    pub building_id: Option<Uuid>,
    pub unit_id: Option<Uuid>,
    pub location: String,
    pub warranty_expiry: Option<NaiveDate>,
    pub status: DeviceStatus,
    pub importance: Importance,
    pub responsible_user_id: Option<Uuid>,
    pub attributes: serde_json::Value,
    /// the house a meter measures (kept by the database from `attributes.houseId`)
    pub house_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// its own broker account (`{company}/{project}/{device}`), once provisioned
    pub broker_username: Option<String>,
    pub broker_provisioned_at: Option<DateTime<Utc>>,
}

impl Device {
    /// The text of the device's QR label.
    pub fn qr_payload(&self) -> String {
        format!("{QR_PREFIX}{}", self.code)
    }
}

/// What the technician app's QR labels start with.
pub const QR_PREFIX: &str = "wuye://device/";

/// Published on the event bus when devices are added: device lookups cached elsewhere
/// (MQTT ingest, on every replica) are stale.
pub const EVENT_LEDGER_CHANGED: &str = "LEDGER_CHANGED";

/// What an import wrote (the outcome a retry answers with).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ImportOutcome {
    pub devices_created: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_from_codes_and_names() {
        assert_eq!(DeviceCategory::from_text("water_pump"), Some(DeviceCategory::WaterPump));
        assert_eq!(DeviceCategory::from_text("WATER_PUMP"), Some(DeviceCategory::WaterPump));
        assert_eq!(DeviceCategory::from_text(" 水泵 "), Some(DeviceCategory::WaterPump));
        assert_eq!(DeviceCategory::from_text("spaceship"), None);
        assert!(DeviceCategory::GasMeter.is_meter() && !DeviceCategory::Elevator.is_meter());
        assert_eq!(DeviceStatus::from_text("维修中"), Some(DeviceStatus::UnderRepair));
    }
}

/// Where a device lives on the broker: `{root}/{company}/{device}/…` by the codes of its
/// company (unique on the server) and of the device (unique in the company). Neither code
/// ever changes, so a device keeps its topics when it moves between projects; the pair is
/// also its broker username.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPath {
    pub company: String,
    pub device: String,
}

impl TopicPath {
    /// `{root}/{company}/{device}/{leaf}`
    pub fn topic(&self, root: &str, leaf: &str) -> String {
        format!("{root}/{}/{}/{leaf}", self.company, self.device)
    }

    /// The device's broker username: `{company}/{device}`.
    pub fn username(&self) -> String {
        format!("{}/{}", self.company, self.device)
    }
}
