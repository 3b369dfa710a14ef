//! The MQTT consumer: QoS 1, persistent sessions, a shared subscription so replicas (and
//! several connections of one replica) split the load, and manual acknowledgements — a
//! message is acknowledged only once its batch is stored (or it is rejected as malformed),
//! so a stalled database slows ingestion instead of losing messages.
//!
//! connections ──(by device)──▶ bounded queue per worker ──▶ batch store ──▶ acks

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use tokio::sync::{mpsc, watch};

use crate::kit::config::Config;
use crate::kit::state::AppState;

fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.split('/').next().unwrap_or(rest);
    match rest.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().unwrap_or(1883)),
        None => (rest.to_owned(), 1883),
    }
}

fn client_id(cfg: &Config, n: usize) -> String {
    let base = cfg
        .mqtt_client_id
        .clone()
        .unwrap_or_else(|| format!("wuye-api-{}", std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into())));
    if n == 0 { base } else { format!("{base}-{n}") }
}

fn options(cfg: &Config, n: usize) -> MqttOptions {
    let (host, port) = host_port(&cfg.mqtt_url);
    let mut opts = MqttOptions::new(client_id(cfg, n), host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_clean_session(cfg.mqtt_clean_session);
    opts.set_manual_acks(true);
    opts.set_inflight(1000);
    opts
}

/// The first connection: its client publishes commands (held in `AppState`); its event
/// loop is driven by `run`.
pub fn connect(cfg: &Config) -> (AsyncClient, EventLoop) {
    AsyncClient::new(options(cfg, 0), 4096)
}

struct Inbound {
    conn: usize,
    publish: Publish,
}

/// Drives the first connection (always: commands go out through it) and, when this replica
/// ingests, the extra connections and the batch workers.
pub async fn run(state: AppState, first: EventLoop, shutdown: watch::Receiver<bool>) {
    let cfg = state.config.clone();
    let ingest = cfg.mqtt_ingest;
    let mut clients = vec![state.mqtt.clone()];
    let mut loops = vec![first];
    if ingest {
        for n in 1..cfg.iot.ingest_connections.max(1) {
            let (c, l) = AsyncClient::new(options(&cfg, n), 4096);
            clients.push(c);
            loops.push(l);
        }
    }
    let workers = cfg.iot.ingest_workers.max(1);
    let mut senders = Vec::with_capacity(workers);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (tx, rx) = mpsc::channel::<Inbound>(cfg.iot.batch_max.max(1) * 2);
        senders.push(tx);
        tasks.push(tokio::spawn(worker(state.clone(), clients.clone(), rx, shutdown.clone())));
    }
    tasks.push(tokio::spawn(upkeep(state.clone(), shutdown.clone())));
    for (n, events) in loops.into_iter().enumerate() {
        tasks.push(tokio::spawn(connection(
            clients[n].clone(),
            n,
            events,
            ingest.then(|| senders.clone()),
            state.config.clone(),
            shutdown.clone(),
        )));
    }
    drop(senders);
    for t in tasks {
        let _ = t.await;
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

fn shard(topic: &str, n: usize) -> usize {
    // {root}/{project}/{device}/…: a device's messages always meet the same worker, in order
    let mut parts = topic.splitn(4, '/');
    let (_, p, d) = (parts.next(), parts.next(), parts.next());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (p, d).hash(&mut h);
    (h.finish() % n as u64) as usize
}

async fn connection(
    client: AsyncClient,
    n: usize,
    mut events: EventLoop,
    workers: Option<Vec<mpsc::Sender<Inbound>>>,
    cfg: std::sync::Arc<Config>,
    mut shutdown: watch::Receiver<bool>,
) {
    let filters = [
        format!("$share/{}/{}/+/+/+", cfg.mqtt_share_group, cfg.mqtt_topic_root),
        format!("$share/{}/{}/+/+/command/ack", cfg.mqtt_share_group, cfg.mqtt_topic_root),
    ];
    // Messages waiting for a full worker queue. The event loop must keep running meanwhile:
    // the workers' acknowledgements go out through it. Unacknowledged messages are capped
    // by the broker's in-flight window, so this buffer is bounded too.
    let mut pending: VecDeque<(usize, Publish)> = VecDeque::new();
    loop {
        if let Some(w) = &workers {
            while let Some((i, _)) = pending.front() {
                let Ok(permit) = w[*i].try_reserve() else { break };
                if let Some((_, publish)) = pending.pop_front() {
                    permit.send(Inbound { conn: n, publish });
                }
            }
        }
        let ev = tokio::select! {
            _ = shutdown.changed() => {
                let _ = client.disconnect().await;
                return;
            }
            ev = events.poll() => ev,
            _ = tokio::time::sleep(Duration::from_millis(2)), if !pending.is_empty() => continue,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) if workers.is_some() => {
                for f in &filters {
                    if let Err(e) = client.subscribe(f, QoS::AtLeastOnce).await {
                        tracing::warn!(error = %e, "MQTT subscribe failed");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Some(w) = &workers {
                    pending.push_back((shard(&p.topic, w.len()), p));
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, connection = n, "MQTT connection lost; reconnecting");
                // unacknowledged messages come again from the broker
                pending.clear();
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn worker(
    state: AppState,
    clients: Vec<AsyncClient>,
    mut rx: mpsc::Receiver<Inbound>,
    shutdown: watch::Receiver<bool>,
) {
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
        let msgs: Vec<(&str, &[u8])> =
            batch.iter().map(|m| (m.publish.topic.as_str(), &m.publish.payload[..])).collect();
        let mut wait = Duration::from_millis(200);
        loop {
            match super::service::ingest_batch(&state, &msgs).await {
                Ok(out) => {
                    metrics::counter!("mqtt_messages_total", "result" => "stored").increment(out.stored as u64);
                    for (i, r) in &out.rejected {
                        metrics::counter!("mqtt_messages_total", "result" => r.label()).increment(1);
                        // at most one line a second however many bad messages arrive
                        if last_warn.elapsed() > Duration::from_secs(1) {
                            tracing::warn!(topic = %msgs[*i].0, reason = %r, "device message rejected");
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
            if let Err(e) = clients[m.conn].ack(&m.publish).await {
                tracing::warn!(error = %e, "MQTT ack failed");
            }
        }
    }
}
