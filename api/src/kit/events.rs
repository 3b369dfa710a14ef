//! The event bus behind subscriptions: an event published on any replica goes through
//! Redis pub/sub and reaches the subscribers connected to every replica (on a Redis
//! Cluster a message published to any node reaches every node's subscribers).

use std::sync::Arc;
use std::time::Duration;

use super::redis::{Redis, Subscriber};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    /// the user this event is for (`None`: broadcast)
    pub user_id: Option<Uuid>,
    pub kind: String,
    #[serde(default)]
    pub payload: serde_json::Value,
}

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    redis: Redis,
    channel: String,
    /// this replica's own channel, where its heartbeat comes back while its subscription
    /// really receives (a node cut off by the network keeps the socket open, silent)
    heartbeat: String,
    /// how often the heartbeat is published
    beat: Duration,
    /// true while the Redis subscription is live
    listening: Arc<watch::Sender<bool>>,
}

/// Heartbeats missed in a row before the subscription is given up and made again.
const MISSED_BEATS: u32 = 6;

impl EventBus {
    pub fn new(redis: Redis, prefix: &str, heartbeat_secs: u64) -> Self {
        let (tx, _) = broadcast::channel(4096);
        EventBus {
            tx,
            redis,
            channel: format!("{prefix}events"),
            heartbeat: format!("{prefix}events:beat:{}", Uuid::new_v4().simple()),
            beat: Duration::from_secs(heartbeat_secs.max(1)),
            listening: Arc::new(watch::channel(false).0),
        }
    }

    /// Resolves once this replica receives events published anywhere (its Redis
    /// subscription is live).
    pub async fn ready(&self) {
        let mut rx = self.listening.subscribe();
        let _ = rx.wait_for(|live| *live).await;
    }

    /// Whether this replica's Redis subscription is live now.
    pub fn is_live(&self) -> bool {
        *self.listening.borrow()
    }

    /// Changes of `is_live`: a cache kept honest by events must forget what it holds when
    /// the subscription drops (events may be missed until it is back).
    pub fn liveness(&self) -> watch::Receiver<bool> {
        self.listening.subscribe()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub async fn publish(&self, event: &Event) -> redis::RedisResult<()> {
        let body = serde_json::to_string(event).unwrap_or_default();
        let mut conn = self.redis.clone();
        redis::cmd("PUBLISH").arg(&self.channel).arg(body).query_async::<()>(&mut conn).await
    }

    /// Publishes events a transaction prepared, after its commit: the change is made, so a
    /// failure here is logged, not returned (subscribers read the state again on the next).
    pub async fn publish_after_commit(&self, events: Vec<Event>) {
        for e in events {
            if let Err(err) = self.publish(&e).await {
                tracing::warn!(error = %err, kind = %e.kind, "event not published");
            }
        }
    }

    /// Listens on the Redis channel until shutdown, reconnecting with backoff.
    pub async fn run(self, nodes: Subscriber, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(200);
        let mut turn = 0;
        loop {
            match nodes.connect(turn).await {
                Ok(mut pubsub) => {
                    let subscribed = async {
                        pubsub.subscribe(&self.channel).await?;
                        pubsub.subscribe(&self.heartbeat).await
                    };
                    if let Err(e) = subscribed.await {
                        tracing::warn!(error = %e, "event bus subscribe failed");
                    } else {
                        self.listening.send_replace(true);
                        let mut stream = pubsub.on_message();
                        let mut beat = tokio::time::interval(self.beat);
                        let mut heard = tokio::time::Instant::now();
                        loop {
                            tokio::select! {
                                _ = shutdown.changed() => return,
                                _ = beat.tick() => {
                                    if heard.elapsed() > self.beat * MISSED_BEATS {
                                        tracing::warn!(silent_secs = heard.elapsed().as_secs(), "event bus: no heartbeat, subscribing again");
                                        break;
                                    }
                                    // published on the command connection, without holding up the loop
                                    let (mut conn, channel) = (self.redis.clone(), self.heartbeat.clone());
                                    tokio::spawn(async move {
                                        let _ = redis::cmd("PUBLISH").arg(channel).arg("1").query_async::<()>(&mut conn).await;
                                    });
                                }
                                msg = stream.next() => match msg {
                                    Some(m) => {
                                        heard = tokio::time::Instant::now();
                                        // the subscription works (a heartbeat came back at
                                        // least): a drop now starts the backoff afresh, where
                                        // one that drops at once keeps backing off
                                        backoff = Duration::from_millis(200);
                                        if m.get_channel_name() != self.channel {
                                            continue;
                                        }
                                        let payload: String = m.get_payload().unwrap_or_default();
                                        match serde_json::from_str::<Event>(&payload) {
                                            Ok(ev) => { let _ = self.tx.send(Arc::new(ev)); }
                                            Err(e) => tracing::warn!(error = %e, "bad event on bus"),
                                        }
                                    }
                                    None => break,
                                }
                            }
                        }
                        self.listening.send_replace(false);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "event bus: Redis unreachable"),
            }
            // the next attempt starts at the next node (a cluster's node may be the one down)
            turn += 1;
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}
