//! The MQTT side of the server: one command connection per replica, and the ingest slots.
//!
//! Ingest: the deployment has `iot.ingest_slots` slots, each one MQTT connection in the
//! shared subscription with a fixed client id (`{prefix}-ingest-{n}`) and a persistent
//! session. A replica consumes through the slots it leases — a PostgreSQL advisory lock held
//! on a connection of its own — and the replicas split the slots evenly. When a replica dies
//! its database session ends, the locks go with it, and a survivor takes the slots within
//! seconds: it resumes their broker sessions, so the messages the broker queued for them
//! (and those delivered but never acknowledged) reach the survivor instead of waiting for a
//! client id that never returns.
//!
//! Messages are QoS 1 with manual acknowledgements: a message is acknowledged only once its
//! batch is stored (or it is rejected as malformed), so a stalled database slows ingestion
//! instead of losing messages.
//!
//! slot connections ──(by device)──▶ bounded queue per worker ──▶ batch store ──▶ acks

use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rumqttc::{AsyncClient, Event, EventLoop, Packet, Publish, QoS};
use sqlx::Connection;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::iot::broker::dynsec::{Dynsec, RESPONSE_TOPIC};
use crate::iot::broker::model::BrokerConfigError;
use crate::iot::broker::service::mqtt_options;
use crate::kit::config::Config;
use crate::kit::state::AppState;

/// Advisory-lock namespaces (the first of the two int4 keys): replicas that ingest, and
/// the slots. `WY` + 1 / 2.
const NS_MEMBER: i32 = 0x5759_0001;
const NS_SLOT: i32 = 0x5759_0002;

/// How long a lease query may take before the lease counts as lost.
const LEASE_QUERY: Duration = Duration::from_secs(2);

/// The replica's command connection: a client id of its own (two replicas never knock
/// each other off the broker) and a clean session; it publishes commands and talks to the
/// broker's dynamic-security plugin.
pub fn connect(cfg: &Config) -> Result<(AsyncClient, EventLoop), BrokerConfigError> {
    let id = format!("{}-{}", cfg.mqtt_client_prefix, &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut opts = mqtt_options(cfg, id)?;
    opts.set_clean_session(true);
    opts.set_inflight(100);
    Ok(AsyncClient::new(opts, 1024))
}

/// The client id of ingest slot `n`: shared by every replica of the deployment, used by
/// one at a time.
pub fn slot_client_id(cfg: &Config, n: usize) -> String {
    format!("{}-ingest-{n}", cfg.mqtt_client_prefix)
}

struct Inbound {
    client: AsyncClient,
    publish: Publish,
    received_at: DateTime<Utc>,
}

/// Drives the command connection and, when this replica ingests, the slot leases and the
/// batch workers.
pub async fn run(state: AppState, commands: EventLoop, shutdown: watch::Receiver<bool>) {
    let mut tasks = vec![
        tokio::spawn(command_connection(state.clone(), commands, shutdown.clone())),
        tokio::spawn(upkeep(state.clone(), shutdown.clone())),
    ];
    if state.config.mqtt_ingest {
        let workers = state.config.iot.ingest_workers.max(1);
        let mut senders = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = mpsc::channel::<Inbound>(state.config.iot.batch_max.max(1) * 2);
            senders.push(tx);
            tasks.push(tokio::spawn(worker(state.clone(), rx, shutdown.clone())));
        }
        tasks.push(tokio::spawn(lease_slots(state.clone(), senders, shutdown.clone())));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Whether this replica's command connection to the broker is up (`/readyz`).
#[derive(Default)]
pub struct BrokerLink(pub AtomicBool);

impl BrokerLink {
    pub fn up(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

async fn command_connection(state: AppState, mut events: EventLoop, mut shutdown: watch::Receiver<bool>) {
    loop {
        let ev = tokio::select! {
            _ = shutdown.changed() => {
                let _ = state.mqtt.disconnect().await;
                return;
            }
            ev = events.poll() => ev,
        };
        if let Ok(link) = state.part::<BrokerLink>() {
            match &ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => link.0.store(true, Ordering::Relaxed),
                Err(_) => link.0.store(false, Ordering::Relaxed),
                Ok(_) => {}
            }
        }
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) if state.config.mqtt_dynsec => {
                if let Err(e) = state.mqtt.subscribe(RESPONSE_TOPIC, QoS::AtLeastOnce).await {
                    tracing::warn!(error = %e, "MQTT subscribe failed");
                }
                let s = state.clone();
                tokio::spawn(async move { crate::iot::broker::service::prepare_broker(&s).await });
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                // the only subscription of this connection is the dynsec response topic
                if let Ok(d) = state.part::<Dynsec>() {
                    d.set_ready(true);
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == RESPONSE_TOPIC => {
                if let Ok(d) = state.part::<Dynsec>() {
                    d.on_response(&p.payload);
                }
            }
            Ok(_) => {}
            Err(e) => {
                if let Ok(d) = state.part::<Dynsec>() {
                    d.set_ready(false);
                }
                tracing::warn!(error = %e, "MQTT command connection lost; reconnecting");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Command timeouts (every replica; idempotent) and the ingest heartbeat.
async fn upkeep(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = crate::iot::commands::service::time_out_commands(&state).await {
            e.log_if_internal();
        }
        if state.config.mqtt_ingest
            && n.is_multiple_of(3)
            && let Err(e) = super::service::ingest_heartbeat(&state).await
        {
            e.log_if_internal();
        }
        n += 1;
    }
}

// ---- slot leases ---------------------------------------------------------------------------

struct Slot {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Slot {
    /// Disconnects the slot's connection and waits until it is gone, so a replica that
    /// takes the slot next never meets it on the broker.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// How many of `slots` a replica should hold when `members` replicas ingest.
pub fn fair_share(slots: usize, members: usize) -> usize {
    slots.div_ceil(members.max(1))
}

/// The lease loop: every second, check the lock connection, count the replicas that ingest,
/// give back slots above the fair share and take free ones up to it.
async fn lease_slots(state: AppState, workers: Vec<mpsc::Sender<Inbound>>, mut shutdown: watch::Receiver<bool>) {
    let slots = state.config.iot.ingest_slots.max(1);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lock: Option<sqlx::PgConnection> = None;
    let mut held: BTreeMap<usize, Slot> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        if lock.is_none() {
            lock = join(&state).await;
        }
        let Some(conn) = lock.as_mut() else { continue };
        // a lease query that hangs (a half-open connection, a failover) counts as lost: the
        // database may already have released our locks to another replica
        let members = match tokio::time::timeout(LEASE_QUERY, count_members(conn)).await {
            Ok(Ok(m)) => m,
            failed => {
                // the locks died with the session: stop consuming before anyone else starts
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                tracing::warn!(%error, "ingest lease connection lost; giving up the slots");
                for (_, s) in std::mem::take(&mut held) {
                    s.stop().await;
                }
                lock = None;
                continue;
            }
        };
        let share = fair_share(slots, members);
        while held.len() > share {
            let Some((n, s)) = held.pop_last() else { break };
            s.stop().await;
            let _ =
                sqlx::query("SELECT pg_advisory_unlock($1, $2)").bind(NS_SLOT).bind(n as i32).execute(&mut *conn).await;
            tracing::info!(slot = n, "ingest slot handed over");
        }
        let mut lost = false;
        for n in 0..slots {
            if held.len() >= share {
                break;
            }
            if held.contains_key(&n) {
                continue;
            }
            let got = tokio::time::timeout(
                LEASE_QUERY,
                sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, $2)")
                    .bind(NS_SLOT)
                    .bind(n as i32)
                    .fetch_one(&mut *conn),
            )
            .await;
            let got = match got {
                Ok(Ok(g)) => g,
                _ => {
                    // the answer is unknown: a lock we might hold but not use would strand
                    // the slot, so the connection (and with it every lock) goes
                    lost = true;
                    break;
                }
            };
            if got {
                match start_slot(&state, n, workers.clone()) {
                    Ok(s) => {
                        tracing::info!(slot = n, "ingest slot taken");
                        held.insert(n, s);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot configure the broker connection");
                        let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                            .bind(NS_SLOT)
                            .bind(n as i32)
                            .execute(&mut *conn)
                            .await;
                    }
                }
            }
        }
        if lost {
            tracing::warn!("ingest lease query failed; giving up the slots");
            for (_, s) in std::mem::take(&mut held) {
                s.stop().await;
            }
            if let Some(c) = lock.take() {
                let _ = tokio::time::timeout(LEASE_QUERY, c.close()).await;
            }
        }
    }
    for (_, s) in held {
        s.stop().await;
    }
    if let Some(conn) = lock {
        let _ = conn.close().await;
    }
}

/// A connection of our own that holds this replica's membership lock.
async fn join(state: &AppState) -> Option<sqlx::PgConnection> {
    let mut conn = state.db.acquire().await.ok()?.detach();
    for _ in 0..5 {
        let me: i32 = rand::random::<i32>() & 0x7fff_ffff;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(NS_MEMBER)
            .bind(me)
            .fetch_one(&mut conn)
            .await
            .ok()?;
        if got {
            return Some(conn);
        }
    }
    None
}

/// Replicas that ingest now (their membership locks, in this database).
async fn count_members(conn: &mut sqlx::PgConnection) -> sqlx::Result<usize> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = ($1::bigint)::oid
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(i64::from(NS_MEMBER))
    .fetch_one(conn)
    .await?;
    Ok(n.max(1) as usize)
}

fn start_slot(state: &AppState, n: usize, workers: Vec<mpsc::Sender<Inbound>>) -> Result<Slot, BrokerConfigError> {
    let cfg = &state.config;
    let mut opts = mqtt_options(cfg, slot_client_id(cfg, n))?;
    opts.set_clean_session(cfg.mqtt_clean_session);
    opts.set_manual_acks(true);
    opts.set_inflight(1000);
    let (client, events) = AsyncClient::new(opts, 4096);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(slot_connection(state.clone(), client, events, workers, stopped));
    Ok(Slot { stop, task })
}

fn shard(topic: &str, n: usize) -> usize {
    // {root}/{company}/{device}/…: a device's messages always meet the same worker, in order
    let mut parts = topic.splitn(4, '/');
    let (_, c, d) = (parts.next(), parts.next(), parts.next());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (c, d).hash(&mut h);
    (h.finish() % n as u64) as usize
}

async fn slot_connection(
    state: AppState,
    client: AsyncClient,
    mut events: EventLoop,
    workers: Vec<mpsc::Sender<Inbound>>,
    mut stop: watch::Receiver<bool>,
) {
    let cfg = &state.config;
    let (group, root) = (&cfg.mqtt_share_group, &cfg.mqtt_topic_root);
    let filters: Vec<String> = ["+/+/telemetry", "+/+/status", "+/+/event", "+/+/command/ack"]
        .iter()
        .map(|leaf| format!("$share/{group}/{root}/{leaf}"))
        .collect();
    // Messages waiting for a full worker queue. The event loop must keep running meanwhile:
    // the workers' acknowledgements go out through it. Unacknowledged messages are capped
    // by the broker's in-flight window, so this buffer is bounded too.
    let mut pending: VecDeque<(usize, Publish, DateTime<Utc>)> = VecDeque::new();
    loop {
        while let Some((i, _, _)) = pending.front() {
            let Ok(permit) = workers[*i].try_reserve() else { break };
            if let Some((_, publish, received_at)) = pending.pop_front() {
                permit.send(Inbound { client: client.clone(), publish, received_at });
            }
        }
        let ev = tokio::select! {
            _ = stop.changed() => {
                let _ = client.disconnect().await;
                // drive the loop until the DISCONNECT is out, briefly
                let _ = tokio::time::timeout(Duration::from_millis(500), async {
                    while events.poll().await.is_ok() {}
                })
                .await;
                return;
            }
            ev = events.poll() => ev,
            _ = tokio::time::sleep(Duration::from_millis(2)), if !pending.is_empty() => continue,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                for f in &filters {
                    if let Err(e) = client.subscribe(f, QoS::AtLeastOnce).await {
                        tracing::warn!(error = %e, "MQTT subscribe failed");
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(s)))
                if s.return_codes.iter().any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) =>
            {
                tracing::error!("the broker refused the ingest subscription: check the server account's ACL");
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let received_at = state.clock.now();
                pending.push_back((shard(&p.topic, workers.len()), p, received_at));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "MQTT ingest connection lost; reconnecting");
                // unacknowledged messages come again from the broker
                pending.clear();
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn worker(state: AppState, mut rx: mpsc::Receiver<Inbound>, shutdown: watch::Receiver<bool>) {
    let max = state.config.iot.batch_max.max(1);
    let mut last_warn = Instant::now() - Duration::from_secs(60);
    let mut batch: Vec<Inbound> = Vec::with_capacity(max);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < max {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let msgs: Vec<super::service::DeviceMessage<'_>> = batch
            .iter()
            .map(|m| super::service::DeviceMessage {
                topic: m.publish.topic.as_str(),
                payload: &m.publish.payload[..],
                received_at: m.received_at,
            })
            .collect();
        let mut wait = Duration::from_millis(200);
        loop {
            match super::service::ingest_batch(&state, &msgs).await {
                Ok(out) => {
                    metrics::counter!("mqtt_messages_total", "result" => "stored").increment(out.stored as u64);
                    for (i, r) in &out.rejected {
                        metrics::counter!("mqtt_messages_total", "result" => r.label()).increment(1);
                        // at most one line a second however many bad messages arrive
                        if last_warn.elapsed() > Duration::from_secs(1) {
                            tracing::warn!(topic = %msgs[*i].topic, reason = %r, "device message rejected");
                            last_warn = Instant::now();
                        }
                    }
                    break;
                }
                Err(e) => {
                    e.log_if_internal();
                    metrics::counter!("mqtt_batch_retries_total").increment(1);
                    if *shutdown.borrow() {
                        // not acknowledged: the broker redelivers to the next consumer
                        return;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
        drop(msgs);
        for m in batch.drain(..) {
            if let Err(e) = m.client.ack(&m.publish).await {
                tracing::debug!(error = %e, "MQTT ack failed (the slot moved; the broker redelivers)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_split_evenly_and_all_held() {
        assert_eq!(fair_share(4, 1), 4);
        assert_eq!(fair_share(4, 2), 2);
        assert_eq!(fair_share(4, 3), 2);
        assert_eq!(fair_share(4, 8), 1);
        assert_eq!(fair_share(4, 0), 4);
        for slots in 1..10 {
            for members in 1..10 {
                assert!(fair_share(slots, members) * members >= slots, "every slot has a taker");
            }
        }
    }

    #[test]
    fn a_device_always_meets_the_same_worker() {
        let a = shard("wuye/JCWY/JC-ELV-11/telemetry", 4);
        assert_eq!(a, shard("wuye/JCWY/JC-ELV-11/event", 4));
        assert_eq!(a, shard("wuye/JCWY/JC-ELV-11/command/ack", 4));
    }
}
