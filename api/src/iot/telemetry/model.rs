//! What devices say and what we keep of it: topics and payloads, parsed strictly (anything
//! else is rejected and counted), and a device's live state as kept in Redis.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::equipment::model::{DeviceCategory, TopicPath};
use crate::iot::alarms::model::RuleKind;
use crate::kit::error::AppError;

/// Event-bus kind of a device's live status change.
pub const EVENT_DEVICE_STATE: &str = "DEVICE_STATE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Telemetry,
    Status,
    Event,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub path: TopicPath,
    pub kind: Kind,
}

/// `{root}/{companyCode}/{deviceCode}/{telemetry|status|event}`
pub fn parse_topic(root: &str, topic: &str) -> Option<Topic> {
    let rest = topic.strip_prefix(root)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (company, device, kind) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || company.is_empty() || device.is_empty() {
        return None;
    }
    let kind = match kind {
        "telemetry" => Kind::Telemetry,
        "status" => Kind::Status,
        "event" => Kind::Event,
        _ => return None,
    };
    let path = TopicPath { company: company.to_owned(), device: device.to_owned() };
    Some(Topic { path, kind })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejected {
    #[error("topic is not {{root}}/{{company}}/{{device}}/{{telemetry|status|event}}")]
    Topic,
    #[error("no such device")]
    UnknownDevice,
    #[error("payload larger than the limit")]
    TooLarge,
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
}

impl Rejected {
    pub fn label(&self) -> &'static str {
        match self {
            Rejected::Topic => "bad_topic",
            Rejected::UnknownDevice => "unknown_device",
            Rejected::TooLarge => "too_large",
            Rejected::Malformed(_) => "malformed",
        }
    }
}

/// Why a device message was not stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// the message is wrong: counted, logged at a limited rate, acknowledged and dropped
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// we could not store it: retried, not acknowledged until stored
    #[error("storage: {0}")]
    Storage(#[from] AppError),
}

#[derive(Deserialize)]
struct RawTelemetry<'a> {
    ts: Option<DateTime<Utc>>,
    #[serde(borrow)]
    values: BTreeMap<String, &'a serde_json::value::RawValue>,
}

/// `{"ts": "2026-11-26T08:00:00Z", "values": {"pressureMpa": 0.42, "running": 1}}`
pub struct Telemetry {
    pub ts: Option<DateTime<Utc>>,
    pub values: Vec<(String, f64)>,
    /// the values as a JSON object with each number exactly as the device wrote it (a
    /// meter's register `12345.678` stays that, never a float's nearest neighbour)
    pub stored: String,
}

pub fn metric_name_ok(k: &str) -> bool {
    (1..=32).contains(&k.len())
        && k.starts_with(|c: char| c.is_ascii_alphabetic())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn parse_telemetry(payload: &[u8]) -> Result<Telemetry, Rejected> {
    let raw: RawTelemetry<'_> =
        serde_json::from_slice(payload).map_err(|_| Rejected::Malformed("not telemetry JSON"))?;
    if raw.values.is_empty() || raw.values.len() > 64 {
        return Err(Rejected::Malformed("1 to 64 values"));
    }
    let mut values = Vec::with_capacity(raw.values.len());
    let mut stored = String::with_capacity(payload.len());
    stored.push('{');
    for (k, v) in raw.values {
        if !metric_name_ok(&k) {
            return Err(Rejected::Malformed("metric names are letters, digits and _"));
        }
        // a JSON number (the serde_json parser checked its grammar), finite as a float
        let text = v.get().trim();
        let number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
        let n = text
            .parse::<f64>()
            .ok()
            .filter(|n| number && n.is_finite() && text.len() <= 40)
            .ok_or(Rejected::Malformed("values are numbers"))?;
        if !values.is_empty() {
            stored.push(',');
        }
        // names are letters, digits and _: nothing to escape
        stored.push('"');
        stored.push_str(&k);
        stored.push_str("\":");
        stored.push_str(text);
        values.push((k, n));
    }
    stored.push('}');
    Ok(Telemetry { ts: raw.ts, values, stored })
}

#[derive(Deserialize)]
struct RawStatus {
    status: String,
}

/// `{"status": "online"}` or `{"status": "offline"}` (the broker's last will)
pub fn parse_status(payload: &[u8]) -> Result<bool, Rejected> {
    let raw: RawStatus = serde_json::from_slice(payload).map_err(|_| Rejected::Malformed("not status JSON"))?;
    match raw.status.as_str() {
        "online" => Ok(true),
        "offline" => Ok(false),
        _ => Err(Rejected::Malformed("status is online or offline")),
    }
}

#[derive(Deserialize)]
struct RawEvent {
    code: String,
    #[serde(default)]
    message: String,
    ts: Option<DateTime<Utc>>,
    #[serde(default)]
    cleared: bool,
}

/// `{"code": "E21", "message": "门锁故障"}`: a fault reported by the device;
/// `{"code": "E21", "cleared": true}` when it is gone. `TRAPPED` (困人) on an elevator is
/// the most urgent of all.
pub struct DeviceEvent {
    pub code: String,
    pub message: String,
    pub ts: Option<DateTime<Utc>>,
    pub cleared: bool,
}

pub fn event_code_ok(code: &str) -> bool {
    (1..=32).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub fn parse_event(payload: &[u8]) -> Result<DeviceEvent, Rejected> {
    let raw: RawEvent = serde_json::from_slice(payload).map_err(|_| Rejected::Malformed("not event JSON"))?;
    if !event_code_ok(&raw.code) || raw.message.chars().count() > 200 {
        return Err(Rejected::Malformed("event code 1-32 characters, message up to 200"));
    }
    Ok(DeviceEvent { code: raw.code, message: raw.message, ts: raw.ts, cleared: raw.cleared })
}

// ---- live state ---------------------------------------------------------------------------

crate::text_enum! {
    /// 实时状态 how a device is doing now: green, red, grey, or in maintenance
    pub enum LiveStatus {
        Normal = "normal",
        Fault = "fault",
        Offline = "offline",
        /// under repair in the ledger, whatever it reports (dashboard only)
        Maintenance = "maintenance",
    }
}

/// What ingest knows of a device (cached by topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRef {
    pub id: Uuid,
    pub company_id: Uuid,
    pub project_id: Uuid,
    pub category: DeviceCategory,
    pub code: String,
}

/// A meter's recent behaviour, for anomaly rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MeterTrack {
    pub last: f64,
    /// exponentially weighted mean of the increases between readings
    pub mean_delta: f64,
    pub samples: u32,
}

/// A device's live state as kept in Redis (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LiveState {
    pub status: LiveStatus,
    pub last_seen: Option<DateTime<Utc>>,
    pub values: serde_json::Map<String, serde_json::Value>,
    pub last_event: Option<serde_json::Value>,
    #[serde(default)]
    pub offline_since: Option<DateTime<Utc>>,
    /// fault codes the device reported and has not cleared
    #[serde(default)]
    pub faults: BTreeSet<String>,
    /// rule → since when its condition holds (rules with a duration)
    #[serde(default)]
    pub breach_since: BTreeMap<Uuid, DateTime<Utc>>,
    /// rule → kind, for each unresolved alarm of the device
    #[serde(default)]
    pub alarms: BTreeMap<Uuid, RuleKind>,
    #[serde(default)]
    pub meter: Option<MeterTrack>,
}

impl LiveState {
    /// offline, or fault while a fault code or an alarm (other than offline) is open.
    pub fn derive_status(&mut self) {
        self.status = if self.offline_since.is_some() {
            LiveStatus::Offline
        } else if !self.faults.is_empty() || self.alarms.values().any(|k| *k != RuleKind::Offline) {
            LiveStatus::Fault
        } else {
            LiveStatus::Normal
        };
    }
}

/// The state of a device never heard from: offline, nothing known.
impl Default for LiveState {
    fn default() -> Self {
        LiveState {
            status: LiveStatus::Offline,
            last_seen: None,
            values: serde_json::Map::new(),
            last_event: None,
            offline_since: None,
            faults: BTreeSet::new(),
            breach_since: BTreeMap::new(),
            alarms: BTreeMap::new(),
            meter: None,
        }
    }
}

/// 设备监控大屏 counts for a project: per live status, and per category and status.
pub struct Dashboard {
    pub total: usize,
    pub by_status: Vec<(LiveStatus, usize)>,
    pub by_category: Vec<(DeviceCategory, LiveStatus, usize)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        let t = parse_topic("wuye", "wuye/JCWY/JC-PUMP-01/telemetry").unwrap();
        assert_eq!((t.path.company.as_str(), t.path.device.as_str(), t.kind), ("JCWY", "JC-PUMP-01", Kind::Telemetry));
        assert_eq!(t.path.topic("wuye", "command"), "wuye/JCWY/JC-PUMP-01/command");
        assert_eq!(t.path.username(), "JCWY/JC-PUMP-01");
        assert!(parse_topic("wuye", "wuye/JCWY/JC-PUMP-01/telemetry/x").is_none());
        assert!(parse_topic("wuye", "wuye/JC-PUMP-01/telemetry").is_none());
        assert!(parse_topic("wuye", "wuye//X/status").is_none());
        assert!(parse_topic("wuye", "other/JCWY/X/status").is_none());
        assert!(parse_topic("wuye", "wuye/JCWY/X/command").is_none());
    }

    #[test]
    fn live_state_keeps_its_json_shape() {
        let mut l = LiveState::default();
        l.derive_status();
        assert_eq!(serde_json::to_value(&l).unwrap()["status"], "normal");
        // a state written by an earlier release
        let old = serde_json::json!({"status": "fault", "last_seen": null, "values": {}, "last_event": null});
        assert_eq!(serde_json::from_value::<LiveState>(old).unwrap().status, LiveStatus::Fault);
    }

    #[test]
    fn payloads() {
        assert_eq!(
            parse_telemetry(br#"{"values":{"pressureMpa":0.4}}"#).unwrap().values,
            vec![("pressureMpa".into(), 0.4)]
        );
        // a register is kept exactly as written, beyond a float's 17 digits
        let t = parse_telemetry(br#"{"values":{"reading":1234567890.12345678901,"b":-2e3}}"#).unwrap();
        assert_eq!(t.stored, r#"{"b":-2e3,"reading":1234567890.12345678901}"#);
        assert!(parse_telemetry(br#"{"values":{"x":1e999}}"#).is_err(), "infinite");
        assert!(parse_telemetry(br#"{"values":{"x":true}}"#).is_err());
        assert!(parse_telemetry(br#"{"values":{"x":null}}"#).is_err());
        assert!(parse_telemetry(br#"{"values":{"x":[1]}}"#).is_err());
        assert!(parse_telemetry(br#"{"values":{}}"#).is_err());
        assert!(parse_telemetry(br#"{"values":{"a b":1}}"#).is_err());
        assert!(parse_telemetry(br#"{"values":{"x":"1"}}"#).is_err());
        assert!(parse_telemetry(b"\xff\xfe").is_err());
        assert_eq!(parse_status(br#"{"status":"offline"}"#), Ok(false));
        assert!(parse_status(br#"{"status":"sleepy"}"#).is_err());
        assert!(parse_event(r#"{"code":"E21","message":"门锁故障"}"#.as_bytes()).is_ok());
        assert!(parse_event(br#"{"code":""}"#).is_err());
    }
}
