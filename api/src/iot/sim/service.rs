//! `wuye simulate-devices`: realistic device traffic for the demo, the tests and the
//! ingest benchmark. Each simulated device publishes what its category would (elevator
//! floors and motor temperatures, pump pressure, meters that count up…), at a steady
//! total rate, with injected faults and devices that drop offline.

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, Packet, QoS};

use super::model::{SimDevice, SimOptions, SimReport};
use super::repo;
use crate::equipment::model::DeviceCategory;
use crate::kit::error::AppResult;

/// In-use and standby devices of the given project codes (all projects when empty), at
/// most `limit`: what `wuye simulate-devices` simulates.
pub async fn devices(db: &sqlx::PgPool, projects: &[String], limit: i64) -> AppResult<Vec<SimDevice>> {
    Ok(repo::sim_devices(db, projects, limit).await?)
}

/// A tiny deterministic generator (xorshift): no dependency, repeatable runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

fn round(v: f64, dp: i32) -> f64 {
    let f = 10f64.powi(dp);
    (v * f).round() / f
}

/// A device's cumulative counters between messages: a meter's register, an elevator's
/// trips, a pump's starts, hours run. Maintenance plans by use count on them.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    reading: f64,
    trips: f64,
    starts: f64,
    run_hours: f64,
}

impl Counters {
    fn start(rng: &mut Rng) -> Self {
        Counters {
            reading: rng.range(100.0, 5000.0),
            trips: rng.range(10_000.0, 200_000.0).floor(),
            starts: rng.range(1_000.0, 20_000.0).floor(),
            run_hours: rng.range(1_000.0, 30_000.0),
        }
    }
}

/// One telemetry payload for a device of `category`; `c` carries its counters on.
fn telemetry(category: DeviceCategory, rng: &mut Rng, c: &mut Counters) -> serde_json::Value {
    let values = match category {
        DeviceCategory::Elevator => {
            let running = rng.unit() < 0.6;
            if running {
                c.trips += (rng.range(1.0, 4.0)).floor();
                c.run_hours += 0.01;
            }
            serde_json::json!({
                "trips": c.trips, "runHours": round(c.run_hours, 2),
                "mode": if running { 1 } else { 0 }, "floor": (rng.range(1.0, 27.0)) as i64,
                "door": if !running && rng.unit() < 0.5 { 1 } else { 0 },
                "speed": if running { round(rng.range(1.0, 2.5), 2) } else { 0.0 },
                "motorTempC": round(rng.range(45.0, 70.0), 1), "carVibration": round(rng.range(4.0, 12.0), 1),
                "ropeWearPct": round(rng.range(20.0, 35.0), 1), "brakeWearPct": round(rng.range(15.0, 30.0), 1),
                "doorFaults": (rng.range(0.0, 2.0)) as i64,
            })
        }
        DeviceCategory::WaterPump => {
            if rng.unit() < 0.05 {
                c.starts += 1.0;
            }
            c.run_hours += 0.02;
            serde_json::json!({
            "starts": c.starts, "runHours": round(c.run_hours, 2),
            "running": 1, "pressureMpa": round(rng.range(0.35, 0.5), 3), "currentA": round(rng.range(10.0, 15.0), 2),
            "flowM3h": round(rng.range(8.0, 20.0), 2),
            })
        }
        DeviceCategory::FireEquipment => serde_json::json!({ "pressureMpa": round(rng.range(1.0, 1.4), 3) }),
        DeviceCategory::WaterMeter | DeviceCategory::GasMeter => {
            c.reading += round(rng.range(0.001, 0.02), 3);
            serde_json::json!({ "reading": round(c.reading, 3), "flowLph": round(rng.range(0.0, 12.0), 2) })
        }
        DeviceCategory::ElectricityMeter => {
            c.reading += round(rng.range(0.01, 0.2), 3);
            serde_json::json!({ "reading": round(c.reading, 3), "powerKw": round(rng.range(0.1, 6.0), 2) })
        }
        DeviceCategory::AccessDoor => {
            serde_json::json!({ "doorOpen": if rng.unit() < 0.1 { 1 } else { 0 }, "passes": (rng.range(0.0, 5.0)) as i64 })
        }
        DeviceCategory::Camera => {
            serde_json::json!({ "bitrateKbps": round(rng.range(1800.0, 4200.0), 0), "recording": 1 })
        }
        _ => serde_json::json!({ "value": round(rng.range(0.0, 100.0), 2) }),
    };
    serde_json::json!({ "values": values })
}

fn fault(category: DeviceCategory, rng: &mut Rng) -> serde_json::Value {
    let (code, message) = match category {
        DeviceCategory::Elevator if rng.unit() < 0.1 => ("TRAPPED", "轿厢困人"),
        DeviceCategory::Elevator => ("E35", "门锁回路断开"),
        DeviceCategory::WaterPump => ("E-OVERHEAT", "电机过热"),
        DeviceCategory::AccessDoor => ("E-LOCK", "门锁故障"),
        _ => ("E-GENERIC", "设备故障"),
    };
    serde_json::json!({ "code": code, "message": message })
}

/// One publishing connection and the devices it speaks for.
struct Share<'a> {
    id: String,
    account: Option<(String, String)>,
    devices: Vec<&'a SimDevice>,
    quota: u64,
    offline: usize,
}

/// Publishes until `count` messages are out; returns once the broker acknowledged them all.
pub async fn simulate(opts: SimOptions) -> Result<SimReport, SimError> {
    let started = Instant::now();
    let me = std::process::id();
    let shares: Vec<Share<'_>> = if opts.credentials.is_empty() {
        let conns = opts.connections.max(1);
        (0..conns)
            .map(|c| Share {
                id: format!("wuye-sim-{me}-{c}"),
                account: None,
                devices: opts.devices.iter().skip(c).step_by(conns).collect(),
                quota: opts.count / conns as u64 + u64::from((c as u64) < opts.count % conns as u64),
                offline: opts.offline.div_ceil(conns),
            })
            .collect()
    } else {
        let n = opts.devices.len().max(1);
        opts.devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let user = d.path().username();
                let account = opts.credentials.get(&user).map(|p| (user.clone(), p.clone()));
                Share {
                    // a device account connects with its username as client id
                    id: user,
                    account,
                    devices: vec![d],
                    quota: opts.count / n as u64 + u64::from((i as u64) < opts.count % n as u64),
                    offline: usize::from(i < opts.offline),
                }
            })
            .collect()
    };
    if let Some(s) = shares.iter().find(|s| s.account.is_none() && !opts.credentials.is_empty()) {
        return Err(SimError::NoCredentials(s.devices.first().map(|d| d.path().username()).unwrap_or_default()));
    }
    let results = futures_util::future::join_all(shares.into_iter().map(|s| publish_share(&opts, s))).await;
    let mut sent = 0;
    let mut faults = 0;
    for r in results {
        let (s, f) = r?;
        sent += s;
        faults += f;
    }
    Ok(SimReport { sent, faults, elapsed: started.elapsed() })
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Broker(#[from] crate::iot::broker::model::BrokerConfigError),
    #[error(transparent)]
    Client(#[from] rumqttc::ClientError),
    #[error("no broker credentials for device {0}")]
    NoCredentials(String),
}

async fn publish_share(opts: &SimOptions, share: Share<'_>) -> Result<(u64, u64), SimError> {
    let mut mo =
        crate::iot::broker::service::device_options(&opts.mqtt_url, share.id.clone(), opts.ca_file.as_deref())?;
    if let Some((u, p)) = &share.account {
        mo.set_credentials(u.clone(), p.clone());
    }
    mo.set_keep_alive(Duration::from_secs(30));
    mo.set_inflight(500);
    let (client, mut events) = AsyncClient::new(mo, 1024);
    let mine = &share.devices;
    let quota = share.quota;
    let (acks_tx, acks_rx) = tokio::sync::watch::channel(0u64);
    let poller = tokio::spawn(async move {
        let mut acked = 0u64;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acked += 1;
                    let _ = acks_tx.send(acked);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "simulator connection lost");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (share.id.len() as u64 + mine.len() as u64));
    let mut counters: Vec<Counters> = mine.iter().map(|_| Counters::start(&mut rng)).collect();
    let offline = share.offline.min(mine.len());
    let live = mine.len() - offline;
    let mut sent = 0u64;
    let mut faults = 0u64;
    for d in mine.iter().take(offline) {
        if sent >= quota {
            break;
        }
        let topic = d.path().topic(&opts.root, "status");
        client.publish(topic, QoS::AtLeastOnce, false, r#"{"status":"offline"}"#).await?;
        sent += 1;
    }
    let conns = if opts.credentials.is_empty() { opts.connections.max(1) } else { opts.devices.len().max(1) };
    let per_conn_rate = if opts.rate > 0.0 { opts.rate / conns as f64 } else { 0.0 };
    let start = Instant::now();
    let mut i = 0usize;
    while sent < quota && live > 0 {
        let k = offline + i % live;
        let d = mine[k];
        let (kind, body) = if opts.fault_rate > 0.0 && rng.unit() < opts.fault_rate {
            faults += 1;
            ("event", fault(d.category, &mut rng))
        } else {
            ("telemetry", telemetry(d.category, &mut rng, &mut counters[k]))
        };
        client.publish(d.path().topic(&opts.root, kind), QoS::AtLeastOnce, false, body.to_string()).await?;
        sent += 1;
        i += 1;
        if per_conn_rate > 0.0 {
            let due = start + Duration::from_secs_f64(sent as f64 / per_conn_rate);
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
    }
    // every message acknowledged by the broker before we say we are done
    let mut acks_rx = acks_rx;
    while *acks_rx.borrow() < sent {
        if tokio::time::timeout(Duration::from_secs(30), acks_rx.changed()).await.is_err() {
            break;
        }
    }
    let _ = client.disconnect().await;
    poller.abort();
    Ok((sent, faults))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iot::telemetry::model::{parse_event, parse_telemetry};

    #[test]
    fn payloads_are_what_ingest_accepts() {
        let mut rng = Rng(7);
        let mut counters = Counters::start(&mut rng);
        for c in DeviceCategory::ALL.iter().copied() {
            let body = telemetry(c, &mut rng, &mut counters).to_string();
            assert!(parse_telemetry(body.as_bytes()).is_ok(), "{c}: {body}");
            let ev = fault(c, &mut rng).to_string();
            assert!(parse_event(ev.as_bytes()).is_ok(), "{c}: {ev}");
        }
        let before = counters;
        let _ = telemetry(DeviceCategory::WaterMeter, &mut rng, &mut counters);
        assert!(counters.reading > before.reading, "meters count up");
        for _ in 0..200 {
            let lift = telemetry(DeviceCategory::Elevator, &mut rng, &mut counters);
            let _ = telemetry(DeviceCategory::WaterPump, &mut rng, &mut counters);
            assert!(lift["values"]["trips"].as_f64().is_some(), "elevators report trips");
        }
        assert!(counters.trips > before.trips, "elevators count trips");
        assert!(counters.run_hours > before.run_hours, "hours run add up");
        assert!(counters.starts > before.starts, "pumps count starts");
    }
}
