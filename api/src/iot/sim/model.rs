//! What the device simulator simulates and how.

use std::time::Duration;

use crate::equipment::model::{DeviceCategory, TopicPath};

/// A device of the ledger as the simulator sees it: where it publishes and what.
#[derive(Debug, Clone)]
pub struct SimDevice {
    /// the company's code: the first level of the device's topics
    pub company: String,
    pub code: String,
    pub category: DeviceCategory,
}

impl SimDevice {
    pub fn path(&self) -> TopicPath {
        TopicPath { company: self.company.clone(), device: self.code.clone() }
    }
}

/// A simulation run.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// the broker, `mqtt://[user:password@]host:port` or `mqtts://…`
    pub mqtt_url: String,
    /// `mqtts://`: the CA that signed the broker's certificate
    pub ca_file: Option<std::path::PathBuf>,
    /// each device's own broker account (username → password, as
    /// `provisionDeviceCredentials` gave them): when set, every device connects on its own
    /// with its account (and `connections` is ignored); else devices share `connections`
    /// connections with the URL's account
    pub credentials: std::collections::HashMap<String, String>,
    /// the topic root devices publish under
    pub root: String,
    pub devices: Vec<SimDevice>,
    /// messages per second over all devices; 0: as fast as the broker takes them
    pub rate: f64,
    /// stop after this many messages (all connections together)
    pub count: u64,
    /// share of messages that are fault events instead of telemetry (0…1)
    pub fault_rate: f64,
    /// this many devices announce `offline` first and then stay silent
    pub offline: usize,
    /// publishing connections
    pub connections: usize,
}

/// What a run sent.
#[derive(Debug, Clone, Copy)]
pub struct SimReport {
    pub sent: u64,
    pub faults: u64,
    pub elapsed: Duration,
}
