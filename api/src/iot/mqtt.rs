//! The MQTT consumer: QoS 1, a persistent session, a shared subscription so replicas
//! split the load, and manual acknowledgements — a message is acknowledged only once it
//! is stored (or rejected as malformed), so a stalled database slows ingestion instead of
//! losing messages.

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::watch;

use super::service::{IngestError, ingest};
use crate::app::AppState;
use crate::config::Config;

fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.split('/').next().unwrap_or(rest);
    match rest.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().unwrap_or(1883)),
        None => (rest.to_owned(), 1883),
    }
}

/// The client (publishing commands; held in `AppState`) and its event loop (run by `run`).
pub fn connect(cfg: &Config) -> (AsyncClient, EventLoop) {
    let (host, port) = host_port(&cfg.mqtt_url);
    let client_id = cfg
        .mqtt_client_id
        .clone()
        .unwrap_or_else(|| format!("wuye-api-{}", std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into())));
    let mut opts = MqttOptions::new(client_id, host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_clean_session(cfg.mqtt_clean_session);
    opts.set_manual_acks(true);
    AsyncClient::new(opts, 256)
}

pub async fn run(state: AppState, mut events: EventLoop, mut shutdown: watch::Receiver<bool>) {
    let cfg = &state.config;
    let client = state.mqtt.clone();
    let filters = [
        format!("$share/{}/{}/+/+/+", cfg.mqtt_share_group, cfg.mqtt_topic_root),
        format!("$share/{}/{}/+/+/command/ack", cfg.mqtt_share_group, cfg.mqtt_topic_root),
    ];
    let mut last_warn = Instant::now() - Duration::from_secs(60);
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        let ev = tokio::select! {
            _ = shutdown.changed() => {
                let _ = client.disconnect().await;
                return;
            }
            _ = sweep.tick() => {
                if let Err(e) = super::service::time_out_commands(&state).await {
                    e.log_if_internal();
                }
                continue;
            }
            ev = events.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                for f in &filters {
                    if let Err(e) = client.subscribe(f, QoS::AtLeastOnce).await {
                        tracing::warn!(error = %e, "MQTT subscribe failed");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let mut wait = Duration::from_millis(200);
                loop {
                    match ingest(&state, &p.topic, &p.payload).await {
                        Ok(()) => {
                            metrics::counter!("mqtt_messages_total", "result" => "stored").increment(1);
                            break;
                        }
                        Err(IngestError::Rejected(r)) => {
                            metrics::counter!("mqtt_messages_total", "result" => r.label()).increment(1);
                            // at most one line a second however many bad messages arrive
                            if last_warn.elapsed() > Duration::from_secs(1) {
                                tracing::warn!(topic = %p.topic, reason = %r, "device message rejected");
                                last_warn = Instant::now();
                            }
                            break;
                        }
                        Err(IngestError::Storage(e)) => {
                            e.log_if_internal();
                            if *shutdown.borrow() {
                                return;
                            }
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(5));
                        }
                    }
                }
                if let Err(e) = client.ack(&p).await {
                    tracing::warn!(error = %e, "MQTT ack failed");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
