//! Remote commands and what became of them.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::equipment::model::{DeviceCategory, TopicPath};
use crate::iot::telemetry::model::Rejected;
use crate::rbac::model::Perm;

crate::text_enum! {
    /// 指令 what a command asks a device to do
    pub enum CommandKind {
        /// 远程开门 access doors
        OpenDoor = "open_door",
        /// 电梯回基站 elevators
        ElevatorToBase = "elevator_to_base",
        /// 复位 any device
        Reset = "reset",
    }
}

impl CommandKind {
    /// The device categories that take the command (empty: all) and the permission it needs.
    pub fn rule(self) -> (&'static [DeviceCategory], Perm) {
        match self {
            CommandKind::OpenDoor => (&[DeviceCategory::AccessDoor], Perm::CommandDoor),
            CommandKind::ElevatorToBase => (&[DeviceCategory::Elevator], Perm::CommandElevator),
            CommandKind::Reset => (&[], Perm::CommandReset),
        }
    }

    /// Does a device of `category` take this command?
    pub fn fits(self, category: DeviceCategory) -> bool {
        let (categories, _) = self.rule();
        categories.is_empty() || categories.contains(&category)
    }
}

crate::text_enum! {
    /// 指令状态 where a command stands
    pub enum CommandStatus {
        /// published, waiting for the device's acknowledgement
        Sent = "sent",
        Succeeded = "succeeded",
        /// refused by the device, no answer within the timeout, or the broker was unreachable
        Failed = "failed",
    }
}

/// A command sent to a device.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Command {
    pub id: Uuid,
    pub device_id: Uuid,
    pub kind: CommandKind,
    pub params: serde_json::Value,
    pub status: CommandStatus,
    /// the device's message, `timeout`, or `broker unavailable`
    pub result: String,
    pub requested_by: Uuid,
    pub sent_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub struct NewCommand<'a> {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub device_id: Uuid,
    pub kind: CommandKind,
    pub params: &'a serde_json::Value,
    pub requested_by: Uuid,
    pub sent_at: DateTime<Utc>,
}

/// A device's answer: `{"id": "…", "ok": true, "message": "…"}`.
#[derive(Debug, Deserialize)]
pub struct Ack {
    pub id: Uuid,
    pub ok: bool,
    #[serde(default)]
    pub message: String,
}

/// `{root}/{project}/{device}/command/ack` → (project code, device code).
/// `{root}/{company}/{device}/command/ack`
pub fn parse_ack_topic(root: &str, topic: &str) -> Result<TopicPath, Rejected> {
    let rest = topic.strip_prefix(root).and_then(|r| r.strip_prefix('/')).ok_or(Rejected::Topic)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [company, device, "command", "ack"] if !company.is_empty() && !device.is_empty() => {
            Ok(TopicPath { company: (*company).to_owned(), device: (*device).to_owned() })
        }
        _ => Err(Rejected::Topic),
    }
}

pub fn parse_ack(payload: &[u8]) -> Result<Ack, Rejected> {
    serde_json::from_slice(payload).map_err(|_| Rejected::Malformed("not a command ack"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks() {
        let p = parse_ack_topic("wuye", "wuye/JCWY/TF-DOOR-01/command/ack").unwrap();
        assert_eq!(p.username(), "JCWY/TF-DOOR-01");
        assert!(parse_ack_topic("wuye", "wuye/JCWY/TF-DOOR-01/command").is_err());
        assert!(parse_ack_topic("wuye", "wuye/TF-DOOR-01/command/ack").is_err());
        assert!(parse_ack(br#"{"id":"0190a0a0-0000-7000-8000-000000000000","ok":true}"#).is_ok());
        assert!(parse_ack(b"{}").is_err());
        assert!(CommandKind::Reset.fits(DeviceCategory::Camera));
        assert!(!CommandKind::OpenDoor.fits(DeviceCategory::Elevator));
    }
}
