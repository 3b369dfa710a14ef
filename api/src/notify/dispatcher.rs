//! The dispatcher: drains the outbox on every replica. Rows are leased with
//! `FOR UPDATE SKIP LOCKED`, so replicas never work on the same row at once; a replica that
//! dies mid-send leaves a lease that runs out, and another replica retries the row. Each
//! channel (and each push device) that accepted a notification is recorded and never
//! sent that notification again.

use std::collections::HashSet;
use std::time::Duration;

use chrono::TimeDelta;
use futures_util::StreamExt;
use rand::Rng;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::model::{Category, Channel, DeliveryStatus, Notification, OutboxStatus, Priority, PushDevice};
use super::push::{PushError, PushMessage};
use super::repo::{self, Attempt, ChannelOutcome, Conclusion};
use super::sms::{SmsError, SmsKind, SmsMessage};
use crate::kit::error::AppResult;
use crate::kit::gql::group_by;
use crate::kit::state::AppState;

/// Runs until `shutdown`, finishing the batch in hand.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut listener = match PgListener::connect_with(&state.db).await {
        Ok(mut l) => match l.listen("wuye_outbox").await {
            Ok(()) => Some(l),
            Err(_) => None,
        },
        Err(_) => None,
    };
    let poll = Duration::from_millis(state.config.notify.poll_ms);
    loop {
        if *shutdown.borrow() {
            return;
        }
        match dispatch_once(&state).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => {
                e.log_if_internal();
                tracing::warn!(error = %e, "outbox dispatch failed");
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(poll) => {}
            n = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => if !n { listener = None; },
        }
    }
}

/// Leases one batch of due notifications and delivers it. Returns how many it took.
pub async fn dispatch_once(state: &AppState) -> AppResult<usize> {
    let cfg = &state.config.notify;
    let now = state.clock.now();
    let rows = repo::claim(&state.db, now, now + TimeDelta::seconds(cfg.lease_secs as i64), cfg.batch as i64).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    // what the batch needs about its recipients, in a few queries rather than per row
    let mut users: Vec<uuid::Uuid> = rows.iter().map(|r| r.user_id).collect();
    users.sort();
    users.dedup();
    let batch = Batch {
        rules: super::service::rules_for(state, &users).await?,
        devices: group_by(repo::devices_for(&state.db, &users).await?, |d| d.user_id),
        phones: repo::phones_of(&state.db, &users).await?.into_iter().collect(),
    };
    let n = rows.len();
    let batch = &batch;
    // each row is sent on its own; what happened is written for the whole batch at once
    let done: Vec<Conclusion> = futures_util::stream::iter(rows)
        .map(|row| async move {
            let id = row.id;
            match deliver(state, batch, row).await {
                Ok(c) => Some(c),
                Err(e) => {
                    e.log_if_internal();
                    tracing::warn!(notification = %id, error = %e, "delivery bookkeeping failed; the lease will expire and it is retried");
                    None
                }
            }
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .filter_map(|c| async move { c })
        .collect()
        .await;
    repo::conclude(&state.db, &done).await?;
    Ok(n)
}

struct Batch {
    rules: super::service::Rules,
    devices: std::collections::HashMap<uuid::Uuid, Vec<PushDevice>>,
    phones: std::collections::HashMap<uuid::Uuid, Option<String>>,
}

enum Outcome {
    /// the channel is finished: (status, detail) for its delivery row
    Done(DeliveryStatus, String),
    Retry(Option<Duration>),
}

fn attempt(target: &str, ok: bool, error: Option<String>, retry_after: Option<Duration>) -> Attempt {
    Attempt {
        target: target.to_owned(),
        ok,
        error,
        retry_after_secs: retry_after.map(|r| r.as_secs().min(i32::MAX as u64) as i32),
    }
}

async fn deliver(state: &AppState, batch: &Batch, n: Notification) -> AppResult<Conclusion> {
    // on the first pass nothing can have been delivered yet
    let done: HashSet<String> =
        if n.attempts > 1 { repo::done_targets(&state.db, n.id).await?.into_iter().collect() } else { HashSet::new() };
    let skipped = batch.rules.skipped(state.clock.now(), &n);
    let mut attempts = Vec::new();
    let mut outcomes: Vec<ChannelOutcome> = Vec::new();
    let mut retry: Option<Option<Duration>> = None;
    let mut unfinished: Vec<Channel> = Vec::new();
    for &channel in &n.channels {
        if done.contains(channel.as_str()) {
            continue;
        }
        if let Some((_, why)) = skipped.iter().find(|(c, _)| *c == channel) {
            outcomes.push(ChannelOutcome { channel, status: DeliveryStatus::Skipped, detail: (*why).to_owned() });
            continue;
        }
        let outcome = match channel {
            Channel::InApp => in_app(state, &n, &mut attempts).await,
            Channel::Push => push(state, &n, batch, &done, &mut attempts).await?,
            Channel::Sms => sms(state, &n, batch, &mut attempts).await?,
        };
        match outcome {
            Outcome::Done(status, detail) => outcomes.push(ChannelOutcome { channel, status, detail }),
            Outcome::Retry(after) => {
                unfinished.push(channel);
                retry = Some(match (retry.flatten(), after) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                });
            }
        }
    }
    let now = state.clock.now();
    let (status, next_attempt_at) = match retry {
        None => (OutboxStatus::Done, None),
        Some(_) if now >= n.give_up_at => {
            for &channel in &unfinished {
                outcomes.push(ChannelOutcome {
                    channel,
                    status: DeliveryStatus::Failed,
                    detail: "gave up after retries".into(),
                });
            }
            tracing::warn!(notification = %n.id, channels = ?unfinished, "notification given up");
            (OutboxStatus::Failed, None)
        }
        Some(after) => {
            let wait = backoff(state, n.attempts).max(after.unwrap_or_default());
            let at = (now + TimeDelta::from_std(wait).unwrap_or(TimeDelta::seconds(60))).min(n.give_up_at);
            (OutboxStatus::Pending, Some(at))
        }
    };
    Ok(Conclusion { id: n.id, attempts, outcomes, status, next_attempt_at, at: now })
}

/// Exponential backoff with jitter: base × 2^(attempt-1), capped, then 50–100% of it.
fn backoff(state: &AppState, attempts: i32) -> Duration {
    let cfg = &state.config.notify;
    let exp = cfg.backoff_base_ms.saturating_mul(1u64 << attempts.clamp(1, 20).saturating_sub(1));
    let capped = exp.min(cfg.backoff_max_secs * 1000);
    let jittered = rand::rng().random_range(capped / 2..=capped.max(1));
    Duration::from_millis(jittered)
}

async fn in_app(state: &AppState, n: &Notification, attempts: &mut Vec<Attempt>) -> Outcome {
    // the inbox row exists already; "delivered" means connected devices were told
    match super::service::publish_live(state, n).await {
        Ok(()) => Outcome::Done(DeliveryStatus::Sent, String::new()),
        Err(e) => {
            attempts.push(attempt(Channel::InApp.as_str(), false, Some(e.to_string()), None));
            Outcome::Retry(None)
        }
    }
}

async fn push(
    state: &AppState,
    n: &Notification,
    batch: &Batch,
    done: &HashSet<String>,
    attempts: &mut Vec<Attempt>,
) -> AppResult<Outcome> {
    let devices = batch.devices.get(&n.user_id).map(Vec::as_slice).unwrap_or_default();
    if devices.is_empty() {
        return Ok(Outcome::Done(DeliveryStatus::Skipped, "no registered device".into()));
    }
    let data = match &n.data {
        serde_json::Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    let (mut accepted, mut again, mut wait) = (0usize, false, None::<Duration>);
    for d in devices {
        let target = format!("push:{}", d.id);
        if done.contains(&target) {
            accepted += 1;
            continue;
        }
        let sender = state.part::<super::Senders>()?.push.get(d.provider);
        let msg = PushMessage {
            token: d.token.clone(),
            platform: d.platform,
            title: n.title.clone(),
            body: n.body.clone(),
            data: data.clone(),
            high_priority: n.priority != Priority::Normal,
            category: n.category,
        };
        match sender.send(&msg).await {
            Ok(()) => {
                attempts.push(attempt(&target, true, None, None));
                accepted += 1;
            }
            Err(e @ PushError::Unregistered(_)) => {
                attempts.push(attempt(&target, false, Some(e.to_string()), None));
                repo::deactivate_device(&state.db, d.id).await?;
            }
            Err(PushError::Retry { reason, retry_after }) => {
                attempts.push(attempt(&target, false, Some(reason), retry_after));
                again = true;
                wait = wait.max(retry_after);
            }
            Err(e @ PushError::Rejected(_)) => attempts.push(attempt(&target, false, Some(e.to_string()), None)),
        }
    }
    if again {
        return Ok(Outcome::Retry(wait));
    }
    if accepted > 0 {
        Ok(Outcome::Done(DeliveryStatus::Sent, format!("{accepted} device(s)")))
    } else {
        Ok(Outcome::Done(DeliveryStatus::Failed, "no device accepted".into()))
    }
}

async fn sms(state: &AppState, n: &Notification, batch: &Batch, attempts: &mut Vec<Attempt>) -> AppResult<Outcome> {
    let now = state.clock.now();
    let phone = batch.phones.get(&n.user_id).cloned().flatten();
    let Some(phone) = phone else {
        return Ok(Outcome::Done(DeliveryStatus::Skipped, "no phone number".into()));
    };
    if n.priority != Priority::Critical {
        let key = format!("{}sms:notice:{phone}:{}", state.config.redis_prefix, crate::kit::clock::business_day(now));
        let mut conn = state.redis.clone();
        let count = crate::kit::redis::count_in_window(&mut conn, &key, 86_400).await?;
        if count > u64::from(state.config.notify.sms_daily_per_phone) {
            // a bill notice or a reminder is never dropped: it waits for the next day's allowance
            if n.category == Category::Bill {
                let local = now.with_timezone(&crate::kit::clock::BUSINESS_TZ).date_naive();
                let tomorrow = local
                    .succ_opt()
                    .and_then(|d| d.and_hms_opt(8, 0, 0))
                    .and_then(|t| t.and_local_timezone(crate::kit::clock::BUSINESS_TZ).earliest());
                let wait = tomorrow
                    .map(|t| (t.with_timezone(&chrono::Utc) - now).to_std().unwrap_or(Duration::from_secs(3600)))
                    .unwrap_or(Duration::from_secs(3600));
                attempts.push(attempt(
                    Channel::Sms.as_str(),
                    false,
                    Some("daily SMS limit: sent tomorrow".into()),
                    Some(wait),
                ));
                return Ok(Outcome::Retry(Some(wait)));
            }
            return Ok(Outcome::Done(DeliveryStatus::Skipped, "daily SMS limit for this number".into()));
        }
    }
    let kind = match n.category {
        Category::Alarm => SmsKind::AlarmEscalation,
        Category::Bill => SmsKind::BillNotice,
        Category::WorkOrder => SmsKind::WorkOrderUpdate,
        _ => SmsKind::Notice,
    };
    let mut params = serde_json::Map::new();
    params.insert("title".into(), n.title.clone().into());
    params.insert("content".into(), n.body.clone().into());
    let msg = SmsMessage { phone, kind, params, text: format!("【物业】{}：{}", n.title, n.body) };
    match state.part::<super::Senders>()?.sms.send(&msg).await {
        Ok(()) => Ok(Outcome::Done(DeliveryStatus::Sent, String::new())),
        Err(SmsError::InvalidNumber) => Ok(Outcome::Done(DeliveryStatus::Failed, "invalid number".into())),
        // configuration problems: retrying the same message will not help; say so loudly
        Err(e @ (SmsError::Template(_) | SmsError::Auth(_))) => {
            tracing::error!(notification = %n.id, error = %e, "SMS gateway configuration problem");
            Ok(Outcome::Done(DeliveryStatus::Failed, e.to_string()))
        }
        Err(SmsError::RateLimited { retry_after_secs }) => {
            let wait = retry_after_secs.map(Duration::from_secs);
            attempts.push(attempt(Channel::Sms.as_str(), false, Some("rate limited".into()), wait));
            Ok(Outcome::Retry(wait))
        }
        Err(e @ SmsError::Transport(_)) => {
            attempts.push(attempt(Channel::Sms.as_str(), false, Some(e.to_string()), None));
            Ok(Outcome::Retry(None))
        }
    }
}
