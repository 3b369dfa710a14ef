//! Ingest in batches: many device messages → one multi-row history insert, one Redis
//! round trip for live states, rule evaluation in memory, and a stored alarm only when a
//! rule changes its mind. Device lookups and rules are cached in memory (`IotCache`).
//! Also: the offline sweep, and what people read of live states (one device, a dashboard).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::model::{
    self, Dashboard, DeviceRef, EVENT_DEVICE_STATE, IngestError, Kind, LiveState, LiveStatus, Rejected,
};
use super::repo;
use crate::equipment::model::{DeviceCategory, DeviceStatus, EVENT_LEDGER_CHANGED, TopicPath};
use crate::equipment::service::DeviceQuery;
use crate::iot::alarms::model::AlarmRule;
use crate::iot::alarms::rules::{self, Action, Observation};
use crate::kit::error::{AppError, AppResult};
use crate::kit::events::Event;
use crate::kit::redis::slot_key;
use crate::kit::state::AppState;
use crate::rbac::model::{Actor, Perm};

const DEVICE_TTL: Duration = Duration::from_secs(60);
const RULES_TTL: Duration = Duration::from_secs(15);

type DeviceEntry = (Option<DeviceRef>, Instant);

/// Device lookups by topic and the enabled alarm rules, shared by the ingest workers and
/// the jobs. A state part (`state.part::<IotCache>()`).
#[derive(Default)]
pub struct IotCache {
    by_topic: RwLock<HashMap<TopicPath, DeviceEntry>>,
    rules: RwLock<Option<(Arc<Vec<AlarmRule>>, Instant)>>,
}

impl IotCache {
    /// After a rule changes: the next batch reloads them (other replicas within 15 s).
    pub fn forget_rules(&self) {
        if let Ok(mut r) = self.rules.write() {
            *r = None;
        }
    }

    /// After the ledger changes: unknown codes may be known now.
    pub fn forget_devices(&self) {
        if let Ok(mut m) = self.by_topic.write() {
            m.clear();
        }
    }

    /// The enabled rules of every company, at most 15 s old.
    pub async fn rules(&self, state: &AppState) -> AppResult<Arc<Vec<AlarmRule>>> {
        if let Ok(r) = self.rules.read()
            && let Some((rules, at)) = r.as_ref()
            && at.elapsed() < RULES_TTL
        {
            return Ok(rules.clone());
        }
        let rules = Arc::new(crate::iot::alarms::service::enabled_rules(state).await?);
        if let Ok(mut r) = self.rules.write() {
            *r = Some((rules.clone(), Instant::now()));
        }
        Ok(rules)
    }

    async fn resolve(&self, state: &AppState, keys: &[TopicPath]) -> AppResult<HashMap<TopicPath, DeviceRef>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        if let Ok(m) = self.by_topic.read() {
            for k in keys {
                match m.get(k) {
                    Some((d, at)) if at.elapsed() < DEVICE_TTL => {
                        if let Some(d) = d {
                            found.insert(k.clone(), d.clone());
                        }
                    }
                    _ => missing.push(k.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let mut hits: HashMap<TopicPath, DeviceRef> =
            repo::devices_by_topic(&state.db, &missing).await?.into_iter().collect();
        let now = Instant::now();
        if let Ok(mut m) = self.by_topic.write() {
            if m.len() > 200_000 {
                m.clear();
            }
            for k in missing {
                let d = hits.remove(&k);
                if let Some(d) = &d {
                    found.insert(k.clone(), d.clone());
                }
                m.insert(k, (d, now));
            }
        }
        Ok(found)
    }
}

/// Forgets cached device lookups whenever the ledger changes, on whichever replica.
pub async fn follow_ledger(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut rx = state.events.subscribe();
    loop {
        let forget = tokio::select! {
            _ = shutdown.changed() => return,
            ev = rx.recv() => match ev {
                Ok(ev) => ev.kind == EVENT_LEDGER_CHANGED,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        };
        if forget && let Ok(c) = state.part::<IotCache>() {
            c.forget_devices();
        }
    }
}

// ---- live state in Redis ------------------------------------------------------------------

fn state_key(state: &AppState, device: Uuid) -> String {
    format!("{}iot:state:{device}", state.config.redis_prefix)
}

/// sorted set: device → last message (ms); the offline sweep reads it
fn seen_key(state: &AppState) -> String {
    format!("{}iot:seen", state.config.redis_prefix)
}

/// A device's stored live state (`None`: never heard from).
pub async fn live_state(state: &AppState, device: Uuid) -> AppResult<Option<LiveState>> {
    Ok(live_states(state, &[device]).await?.pop().flatten())
}

pub async fn live_states(state: &AppState, devices: &[Uuid]) -> AppResult<Vec<Option<LiveState>>> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = devices.iter().map(|d| state_key(state, *d)).collect();
    let raw = crate::kit::redis::mget(&state.redis, &keys).await?;
    Ok(raw.into_iter().map(|r| r.and_then(|r| serde_json::from_str(&r).ok())).collect())
}

/// Writes a live state only if nobody changed it since `old` was read (`None`: absent).
pub async fn swap_state(state: &AppState, device: Uuid, old: Option<&LiveState>, new: &LiveState) -> AppResult<bool> {
    const CAS: &str = r"local cur = redis.call('GET', KEYS[1])
if (cur == false and ARGV[1] == '') or cur == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0";
    let old = old.map(|o| serde_json::to_string(o).unwrap_or_default()).unwrap_or_default();
    let mut conn = state.redis.clone();
    let n: i32 = redis::Script::new(CAS)
        .key(state_key(state, device))
        .arg(old)
        .arg(serde_json::to_string(new).unwrap_or_default())
        .invoke_async(&mut conn)
        .await?;
    Ok(n == 1)
}

/// Tells subscribers (on every replica) that a device's live status changed.
pub async fn publish_state(state: &AppState, d: &DeviceRef, status: LiveStatus, at: DateTime<Utc>) -> AppResult<()> {
    let ev = Event {
        user_id: None,
        kind: EVENT_DEVICE_STATE.into(),
        payload: serde_json::json!({ "deviceId": d.id, "projectId": d.project_id, "status": status, "at": at }),
    };
    state.events.publish(&ev).await.map_err(AppError::from)
}

/// Forgets an alarm in a device's live state (a person resolved it), so its rule can
/// raise a new one if the condition comes back; tells subscribers if the status changed.
pub async fn forget_alarm(state: &AppState, device: Uuid, rule: Uuid, at: DateTime<Utc>) -> AppResult<()> {
    for _ in 0..5 {
        let Some(old) = live_state(state, device).await? else { break };
        let mut live = old.clone();
        live.alarms.remove(&rule);
        live.breach_since.remove(&rule);
        live.derive_status();
        if live == old {
            break;
        }
        if swap_state(state, device, Some(&old), &live).await? {
            if live.status != old.status
                && let Some(d) = repo::devices_by_id(&state.db, &[device]).await?.get(&device)
            {
                publish_state(state, d, live.status, at).await?;
            }
            break;
        }
    }
    Ok(())
}

// ---- ingest -------------------------------------------------------------------------------

/// A reading's time: the device's own if plausible, else now.
fn reading_time(now: DateTime<Utc>, ts: Option<DateTime<Utc>>) -> DateTime<Utc> {
    match ts {
        Some(t) if (now - t).abs() < TimeDelta::days(1) => t,
        _ => now,
    }
}

enum Parsed {
    Telemetry(model::Telemetry),
    Status(bool),
    Event(model::DeviceEvent),
}

/// What became of a batch: stored messages, and the rejected ones with their reasons.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stored: usize,
    pub rejected: Vec<(usize, Rejected)>,
}

/// One message from a device as the broker handed it over: a reading without its own `ts`
/// is dated `received_at`, not the time its batch was stored.
#[derive(Debug, Clone, Copy)]
pub struct DeviceMessage<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub received_at: DateTime<Utc>,
}

/// Stores a batch; on error nothing is acknowledged and the caller retries the whole batch
/// (history may then hold a message twice; live state and alarms are idempotent).
pub async fn ingest_batch(state: &AppState, msgs: &[DeviceMessage<'_>]) -> AppResult<Outcome> {
    let root = &state.config.mqtt_topic_root;
    let max_payload = state.config.iot.max_payload_bytes;
    let mut out = Outcome::default();
    let mut parsed: Vec<(usize, TopicPath, Parsed)> = Vec::with_capacity(msgs.len());
    let mut acks = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let (topic, payload) = (m.topic, m.payload);
        if payload.len() > max_payload {
            out.rejected.push((i, Rejected::TooLarge));
            continue;
        }
        if topic.ends_with("/command/ack") {
            acks.push(i);
            continue;
        }
        let r = (|| {
            let t = model::parse_topic(root, topic).ok_or(Rejected::Topic)?;
            let p = match t.kind {
                Kind::Telemetry => Parsed::Telemetry(model::parse_telemetry(payload)?),
                Kind::Status => Parsed::Status(model::parse_status(payload)?),
                Kind::Event => Parsed::Event(model::parse_event(payload)?),
            };
            Ok::<_, Rejected>((t.path, p))
        })();
        match r {
            Ok((k, p)) => parsed.push((i, k, p)),
            Err(e) => out.rejected.push((i, e)),
        }
    }
    for i in acks {
        match crate::iot::commands::service::command_ack(state, msgs[i].topic, msgs[i].payload).await {
            Ok(()) => out.stored += 1,
            Err(IngestError::Rejected(r)) => out.rejected.push((i, r)),
            Err(IngestError::Storage(e)) => return Err(e),
        }
    }
    if parsed.is_empty() {
        return Ok(out);
    }
    let cache = state.part::<IotCache>()?;
    let keys: Vec<TopicPath> = parsed.iter().map(|p| p.1.clone()).collect::<HashSet<_>>().into_iter().collect();
    let devices = cache.resolve(state, &keys).await?;
    let mut order: Vec<Uuid> = Vec::new();
    let mut refs: HashMap<Uuid, &DeviceRef> = HashMap::new();
    let mut known = Vec::with_capacity(parsed.len());
    for (i, k, p) in parsed {
        match devices.get(&k) {
            Some(d) => {
                if refs.insert(d.id, d).is_none() {
                    order.push(d.id);
                }
                known.push((d.id, p, msgs[i].received_at));
            }
            None => out.rejected.push((i, Rejected::UnknownDevice)),
        }
    }
    if known.is_empty() {
        return Ok(out);
    }
    let before = live_states(state, &order).await?;
    let mut lives: HashMap<Uuid, (Option<LiveStatus>, LiveState)> = order
        .iter()
        .zip(before)
        .map(|(id, l)| {
            let old = l.as_ref().map(|l| l.status);
            (*id, (old, l.unwrap_or_default()))
        })
        .collect();
    let all_rules = cache.rules(state).await?;
    let rules_of: HashMap<Uuid, Vec<&AlarmRule>> =
        refs.iter().map(|(id, d)| (*id, all_rules.iter().filter(|r| r.applies(d)).collect())).collect();
    let now = state.clock.now();
    let mut rows_dev = Vec::with_capacity(known.len());
    let mut rows_ts = Vec::with_capacity(known.len());
    let mut rows_data = Vec::with_capacity(known.len());
    let mut actions: Vec<(Uuid, Action)> = Vec::new();
    for (device, p, received) in known {
        let Some((_, live)) = lives.get_mut(&device) else { continue };
        let rules = rules_of.get(&device).map(Vec::as_slice).unwrap_or(&[]);
        let mut back_online = |live: &mut LiveState, at| {
            if live.offline_since.take().is_some() {
                observe_into(&mut actions, device, live, rules, &Observation::BackOnline, at);
            }
        };
        match p {
            Parsed::Telemetry(t) => {
                let ts = reading_time(received, t.ts);
                back_online(live, ts);
                rows_dev.push(device);
                rows_ts.push(ts);
                rows_data.push(t.stored);
                observe_into(&mut actions, device, live, rules, &Observation::Values(&t.values), ts);
            }
            Parsed::Status(true) => back_online(live, received),
            Parsed::Status(false) => {
                live.offline_since.get_or_insert(received);
            }
            Parsed::Event(ev) => {
                let at = reading_time(received, ev.ts);
                back_online(live, at);
                live.last_event = Some(serde_json::json!({
                    "code": ev.code, "message": ev.message, "cleared": ev.cleared, "at": at
                }));
                observe_into(
                    &mut actions,
                    device,
                    live,
                    rules,
                    &Observation::Fault { code: &ev.code, cleared: ev.cleared },
                    at,
                );
            }
        }
        // messages of one device arrive in order, but a redelivered one may be older
        live.last_seen = Some(live.last_seen.map_or(received, |s| s.max(received)));
        live.derive_status();
        out.stored += 1;
    }
    if !rows_dev.is_empty() {
        repo::append(&state.db, &rows_dev, &rows_ts, &rows_data).await?;
    }
    for (device, action) in &actions {
        if let (Some(d), Some(rule)) = (refs.get(device), all_rules.iter().find(|r| r.id == action_rule(action))) {
            crate::iot::alarms::service::apply(state, d, rule, action, now).await?;
        }
    }
    // the states live in many slots, the last-seen times in one sorted set
    let mut states = Vec::with_capacity(order.len());
    let mut zadd = redis::cmd("ZADD");
    zadd.arg(seen_key(state));
    for id in &order {
        if let Some((_, live)) = lives.get(id) {
            let ms = live.last_seen.unwrap_or(now).timestamp_millis();
            states.push((state_key(state, *id), serde_json::to_string(live).unwrap_or_default()));
            zadd.arg(ms).arg(id.to_string());
        }
    }
    if !states.is_empty() {
        let mut conn = state.redis.clone();
        tokio::try_join!(crate::kit::redis::mset(&state.redis, &states), zadd.query_async::<()>(&mut conn))?;
    }
    for id in &order {
        if let (Some((old, live)), Some(d)) = (lives.get(id), refs.get(id))
            && *old != Some(live.status)
        {
            publish_state(state, d, live.status, now).await?;
        }
    }
    Ok(out)
}

fn action_rule(a: &Action) -> Uuid {
    match a {
        Action::Raise { rule, .. } | Action::Resolve { rule } => *rule,
    }
}

fn observe_into(
    actions: &mut Vec<(Uuid, Action)>,
    device: Uuid,
    live: &mut LiveState,
    rules: &[&AlarmRule],
    obs: &Observation<'_>,
    at: DateTime<Utc>,
) {
    actions.extend(rules::observe(live, rules, obs, at).into_iter().map(|a| (device, a)));
}

// ---- offline detection ---------------------------------------------------------------

/// Set while some replica ingests (it expires when every one stopped). Shares its slot with
/// `since_key`: the sweep reads both in one command.
pub fn alive_key(state: &AppState) -> String {
    slot_key(&state.config.redis_prefix, &["iot", "alive"], "ingest")
}

fn since_key(state: &AppState) -> String {
    slot_key(&state.config.redis_prefix, &["iot", "since"], "ingest")
}

/// Called by each consumer every few seconds: ingest is running. After a gap (every
/// replica down) the time ingest came back is recorded, so silence during the gap is not
/// taken for devices going offline.
pub async fn ingest_heartbeat(state: &AppState) -> AppResult<()> {
    let now = state.clock.now().timestamp_millis();
    let mut conn = state.redis.clone();
    let fresh: Option<String> = redis::cmd("SET")
        .arg(alive_key(state))
        .arg(now)
        .arg("PX")
        .arg(15_000)
        .arg("GET")
        .query_async(&mut conn)
        .await?;
    if fresh.is_none() {
        let _: () = redis::cmd("SET").arg(since_key(state)).arg(now).query_async(&mut conn).await?;
    }
    Ok(())
}

/// The scheduler's sweep: devices silent for longer than their category allows go
/// offline; offline devices raise offline alarms once their rule's minutes have passed.
/// Returns how many devices changed.
pub async fn sweep_offline(state: &AppState) -> AppResult<usize> {
    let mut conn = state.redis.clone();
    let (alive, since): (Option<i64>, Option<i64>) =
        redis::pipe().get(alive_key(state)).get(since_key(state)).query_async(&mut conn).await?;
    if alive.is_none() {
        // nobody is ingesting: silence says nothing about the devices
        return Ok(0);
    }
    let now = state.clock.now();
    let up_since = since.and_then(DateTime::<Utc>::from_timestamp_millis).unwrap_or(now);
    let cfg = &state.config.iot;
    let shortest = cfg
        .heartbeat_secs
        .keys()
        .map(|c| cfg.offline_after(c))
        .chain([cfg.offline_after("")])
        .min()
        .unwrap_or(TimeDelta::seconds(30));
    let cutoff = (now - shortest).timestamp_millis();
    let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(seen_key(state))
        .arg("-inf")
        .arg(cutoff)
        .arg("LIMIT")
        .arg(0)
        .arg(20_000)
        .query_async(&mut conn)
        .await?;
    let ids: Vec<Uuid> = ids.iter().filter_map(|s| s.parse().ok()).collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let refs = repo::devices_by_id(&state.db, &ids).await?;
    let lives = live_states(state, &ids).await?;
    let all_rules = state.part::<IotCache>()?.rules(state).await?;
    let mut changed = 0;
    for (id, old) in ids.iter().zip(lives) {
        let (Some(d), Some(old)) = (refs.get(id), old) else { continue };
        let Some(last_seen) = old.last_seen else { continue };
        let mut live = old.clone();
        if live.offline_since.is_none() && now - last_seen.max(up_since) > cfg.offline_after(d.category.as_str()) {
            live.offline_since = Some(now);
        }
        let Some(since) = live.offline_since else { continue };
        let rules: Vec<&AlarmRule> = all_rules.iter().filter(|r| r.applies(d)).collect();
        let actions = rules::observe(&mut live, &rules, &Observation::StillOffline { since }, now);
        live.derive_status();
        if live == old {
            continue;
        }
        // alarms first (idempotent), so a failure here leaves the live state to try again
        for a in &actions {
            if let Some(rule) = all_rules.iter().find(|r| r.id == action_rule(a)) {
                crate::iot::alarms::service::apply(state, d, rule, a, now).await?;
            }
        }
        // the device may have spoken meanwhile: then it is not offline, nor its alarm due
        if !swap_state(state, *id, Some(&old), &live).await? {
            for a in &actions {
                if let Action::Raise { rule, .. } = a {
                    crate::iot::alarms::service::auto_resolve(state, *id, *rule, now).await?;
                }
            }
            continue;
        }
        if live.status != old.status {
            publish_state(state, d, live.status, now).await?;
        }
        changed += 1;
    }
    Ok(changed)
}

// ---- what people read ------------------------------------------------------------------

/// Watching a project's devices needs `equipment:read` over it.
/// The project, resolved within the caller's company (another company's is NOT_FOUND),
/// must lie within the caller's scope.
pub async fn check_project(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<()> {
    crate::org::company::service::project(state, actor, Perm::EquipmentRead, project).await?;
    Ok(())
}

/// A device's live state, for callers who may read the device.
pub async fn device_live_state(state: &AppState, actor: &Actor, device: Uuid) -> AppResult<LiveState> {
    crate::equipment::service::device(state, actor, device).await?;
    Ok(live_state(state, device).await?.unwrap_or_default())
}

/// Counts for a project's dashboard: per live status, and per category and status. A
/// device under repair is in maintenance whatever it reports; one never heard from is offline.
pub async fn dashboard(state: &AppState, actor: &Actor, project: Uuid) -> AppResult<Dashboard> {
    check_project(state, actor, project).await?;
    let q = DeviceQuery { project_id: Some(project), ..DeviceQuery::default() };
    let devices = crate::equipment::service::devices(state, actor, q, None, 100_000).await?;
    let devices: Vec<_> = devices.into_iter().filter(|d| d.status != DeviceStatus::Scrapped).collect();
    let ids: Vec<Uuid> = devices.iter().map(|d| d.id).collect();
    let states = live_states(state, &ids).await?;
    let mut by_status: BTreeMap<LiveStatus, usize> = LiveStatus::ALL.iter().map(|s| (*s, 0)).collect();
    let mut by_category: BTreeMap<(DeviceCategory, LiveStatus), usize> = BTreeMap::new();
    for (d, raw) in devices.iter().zip(states) {
        let live = raw.map(|l| l.status).unwrap_or(LiveStatus::Offline);
        let status = if d.status == DeviceStatus::UnderRepair { LiveStatus::Maintenance } else { live };
        *by_status.entry(status).or_default() += 1;
        *by_category.entry((d.category, status)).or_default() += 1;
    }
    Ok(Dashboard {
        total: devices.len(),
        by_status: by_status.into_iter().collect(),
        by_category: by_category.into_iter().map(|((c, s), n)| (c, s, n)).collect(),
    })
}
