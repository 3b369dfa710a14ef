//! Redis, one server or a Cluster. `Redis` is the connection every service clones: a
//! reconnecting connection to one server (behind Sentinel or a managed endpoint), or the
//! cluster client that routes each command to the node owning its key's slot. Both speak
//! `ConnectionLike`, so commands, pipelines and scripts are written once.
//!
//! The rules a cluster adds, kept everywhere so one code path serves both:
//! - a pipeline or a script touches keys of one slot: keys that belong together carry a
//!   hash tag (`slot_key`), unrelated keys are written by separate commands;
//! - multi-key reads and writes of unrelated keys go through `mget`/`mset`, which send one
//!   command per slot on a cluster;
//! - pub/sub: a message published on any node reaches subscribers on every node, so the
//!   event bus listens on one node (`Subscriber`) and moves to another when it fails.

use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, Pipeline, RedisFuture, Value};

/// The shared connection: clone it freely (clones share the sockets).
#[derive(Clone)]
pub enum Redis {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

/// How long a command refused by a cluster in the middle of a failover is retried: a
/// master's slots go unserved for the node timeout plus an election (keep Redis's
/// `cluster-node-timeout` at 5 s or less for failovers inside it).
const FAILOVER_WAIT: Duration = Duration::from_secs(10);

/// The cluster said no before running the command (no node serves the slot, the cluster
/// is down, the slot moved, the node is a replica now or still loading, the node refused
/// the connection): sending it again cannot apply it twice. A connection lost or a reply
/// timed out after sending is not one of them (the command may have run): that error is
/// returned for a write, and the cluster client makes no retries of its own (it would
/// resend those too), so an `INCR` or a `SET NX` is applied at most once. Reads are sent
/// again after those as well (`READS`).
fn not_applied(e: &::redis::RedisError) -> bool {
    use ::redis::{ErrorKind, ServerErrorKind};
    // refused: the connection to the slot's old master was never made
    e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::ClusterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::BusyLoading
                )
        )
}

/// Where an `ASK` redirect sends a command: while a slot migrates, keys already moved are
/// served by the importing node to a connection that says `ASKING` first (the cluster
/// client makes no redirects of its own, see `not_applied`).
fn asked(e: &::redis::RedisError) -> Option<::redis::cluster_routing::SingleNodeRoutingInfo> {
    use ::redis::{ErrorKind, ServerErrorKind};
    if !matches!(e.kind(), ErrorKind::Server(ServerErrorKind::Ask)) {
        return None;
    }
    let (addr, _slot) = e.redirect_node()?;
    let (host, port) = addr.rsplit_once(':')?;
    Some(::redis::cluster_routing::SingleNodeRoutingInfo::ByAddress { host: host.to_owned(), port: port.parse().ok()? })
}

/// Sends `cmds` to the node an ASK named, each after an `ASKING` (it holds for one
/// command), and returns the commands' own replies.
async fn ask<'a>(
    c: &mut ClusterConnection,
    cmds: impl Iterator<Item = &'a Cmd>,
    node: ::redis::cluster_routing::SingleNodeRoutingInfo,
) -> ::redis::RedisResult<Vec<Value>> {
    let mut p = ::redis::pipe();
    let mut n = 0;
    for cmd in cmds {
        p.cmd("ASKING").add_command(cmd.clone());
        n += 2;
    }
    let all = c.route_pipeline(p, 0, n, node).await?;
    Ok(all.into_iter().skip(1).step_by(2).collect())
}

/// Commands that only read: sending one twice cannot change anything, so one whose
/// connection dropped (the node died with it in flight) is sent again too.
const READS: &[&[u8]] = &[
    b"GET",
    b"MGET",
    b"EXISTS",
    b"TTL",
    b"PTTL",
    b"STRLEN",
    b"HGET",
    b"HGETALL",
    b"HMGET",
    b"SCARD",
    b"SMEMBERS",
    b"SISMEMBER",
    b"ZCARD",
    b"ZSCORE",
    b"ZRANGE",
    b"ZRANGEBYSCORE",
    b"ZCOUNT",
    b"LLEN",
    b"LRANGE",
    b"PING",
];

fn reads_only<'a>(mut cmds: impl Iterator<Item = &'a Cmd>) -> bool {
    cmds.all(|c| match c.args_iter().next() {
        Some(::redis::Arg::Simple(name)) => READS.iter().any(|r| r.eq_ignore_ascii_case(name)),
        _ => false,
    })
}

/// Paces the retries of one command through a failover.
struct Failover {
    started: tokio::time::Instant,
    wait: Duration,
    reads_only: bool,
}

impl Failover {
    fn new(reads_only: bool) -> Self {
        Failover { started: tokio::time::Instant::now(), wait: Duration::from_millis(50), reads_only }
    }

    /// Whether to send the command again after `e` (having waited), or give up with it.
    async fn again(&mut self, e: &::redis::RedisError) -> bool {
        let safe = not_applied(e) || (self.reads_only && (e.is_connection_dropped() || e.is_io_error()));
        if !safe || self.started.elapsed() + self.wait >= FAILOVER_WAIT {
            return false;
        }
        tokio::time::sleep(self.wait).await;
        self.wait = (self.wait * 2).min(Duration::from_secs(1));
        true
    }
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Redis::Node(c) => c.req_packed_command(cmd),
            Redis::Cluster(c) => Box::pin(async move {
                let mut failover = Failover::new(reads_only(std::iter::once(cmd)));
                loop {
                    let r = match c.req_packed_command(cmd).await {
                        Err(e) => match asked(&e) {
                            // the slot is moving and this key went ahead: ask the new node
                            Some(node) => {
                                ask(c, std::iter::once(cmd), node).await.map(|mut v| v.pop().unwrap_or(Value::Nil))
                            }
                            None => Err(e),
                        },
                        r => r,
                    };
                    match r {
                        Err(e) if failover.again(&e).await => continue,
                        r => return r,
                    }
                }
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Redis::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Redis::Cluster(c) => Box::pin(async move {
                let mut failover = Failover::new(reads_only(pipeline.cmd_iter()));
                loop {
                    let r = match c.req_packed_commands(pipeline, offset, count).await {
                        Err(e) => match asked(&e).filter(|_| !pipeline.is_transaction()) {
                            Some(node) => ask(c, pipeline.cmd_iter(), node)
                                .await
                                .map(|all| all.into_iter().skip(offset).take(count).collect()),
                            None => Err(e),
                        },
                        r => r,
                    };
                    match r {
                        Err(e) if failover.again(&e).await => continue,
                        r => return r,
                    }
                }
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Redis::Node(c) => c.get_db(),
            Redis::Cluster(c) => c.get_db(),
        }
    }
}

/// Where the event bus subscribes: the server, or the cluster's nodes in turn.
#[derive(Clone)]
pub struct Subscriber {
    nodes: Vec<::redis::Client>,
}

impl Subscriber {
    /// A pub/sub connection to the first node that answers, starting after the node the
    /// previous attempt used (`turn` counts attempts), so a dead node is not retried first.
    pub async fn connect(&self, turn: usize) -> ::redis::RedisResult<::redis::aio::PubSub> {
        let mut last = None;
        for i in 0..self.nodes.len() {
            let node = &self.nodes[(turn + i) % self.nodes.len()];
            match tokio::time::timeout(Duration::from_secs(3), node.get_async_pubsub()).await {
                Ok(Ok(p)) => return Ok(p),
                Ok(Err(e)) => last = Some(e),
                Err(_) => last = Some(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound).into()))
    }
}

/// Connects to one server (`cluster_nodes` empty) or to a cluster through its seed nodes.
pub async fn connect(url: &str, cluster_nodes: &[String]) -> ::redis::RedisResult<(Redis, Subscriber)> {
    let timeout = |_: tokio::time::error::Elapsed| -> ::redis::RedisError {
        std::io::Error::from(std::io::ErrorKind::TimedOut).into()
    };
    if cluster_nodes.is_empty() {
        let client = ::redis::Client::open(url)?;
        let cfg = ::redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(1);
        let conn =
            tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new_with_config(client.clone(), cfg))
                .await
                .map_err(timeout)??;
        return Ok((Redis::Node(conn), Subscriber { nodes: vec![client] }));
    }
    let nodes = cluster_nodes.iter().map(|n| ::redis::Client::open(n.as_str())).collect::<Result<Vec<_>, _>>()?;
    let client = ::redis::cluster::ClusterClientBuilder::new(cluster_nodes.iter().map(String::as_str))
        .connection_timeout(Duration::from_secs(3))
        .response_timeout(Duration::from_secs(5))
        // no resends by the client: it would resend a command whose connection dropped after
        // it was sent; what was certainly not applied is resent by `Redis` (a failover leaves
        // a master's slots unserved for the node timeout + an election). The client still
        // refreshes its slot map and reconnects on each such error.
        .retries(0)
        .build()?;
    let conn = tokio::time::timeout(Duration::from_secs(5), client.get_async_connection()).await.map_err(timeout)??;
    Ok((Redis::Cluster(conn), Subscriber { nodes }))
}

/// `prefix` + `parts` joined by `:`, then `:{tag}`: keys with the same tag live in one
/// cluster slot, so one pipeline or script may touch them together. The tag is what
/// groups them (a login, a device); a constant tag only for a handful of keys, or every
/// key carrying it would sit on one node.
pub fn slot_key(prefix: &str, parts: &[&str], tag: &str) -> String {
    let mut k = String::with_capacity(prefix.len() + tag.len() + 32);
    k.push_str(prefix);
    for p in parts {
        k.push_str(p);
        k.push(':');
    }
    k.push('{');
    // a brace in the tag would end it early: both keys would still agree, but the slot
    // would follow a fragment; braces are replaced so the whole tag decides
    k.extend(tag.chars().map(|c| if c == '{' || c == '}' { '_' } else { c }));
    k.push('}');
    k
}

/// Commands in flight at once for one `mget`/`mset` on a cluster (thousands of keys fall
/// in thousands of slots).
const SLOTS_AT_ONCE: usize = 32;

/// The values of `keys`, in order. A cluster is asked one `MGET` per slot, 32 at a time
/// (not the client's own multi-slot `MGET`, which fails as a whole while one slot fails
/// over instead of waiting for it).
pub async fn mget(conn: &Redis, keys: &[String]) -> ::redis::RedisResult<Vec<Option<String>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    if let Redis::Node(_) = conn {
        let mut c = conn.clone();
        return ::redis::cmd("MGET").arg(keys).query_async(&mut c).await;
    }
    use futures_util::{StreamExt, TryStreamExt};
    let groups = by_slot(keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)));
    let answers: Vec<_> = futures_util::stream::iter(groups.into_iter().map(|idx| {
        let mut c = conn.clone();
        let mut cmd = ::redis::cmd("MGET");
        for i in &idx {
            cmd.arg(&keys[*i]);
        }
        async move {
            let vals: Vec<Option<String>> = cmd.query_async(&mut c).await?;
            Ok::<_, ::redis::RedisError>(idx.into_iter().zip(vals))
        }
    }))
    .buffer_unordered(SLOTS_AT_ONCE)
    .try_collect()
    .await?;
    let mut out = vec![None; keys.len()];
    for (i, v) in answers.into_iter().flatten() {
        out[i] = v;
    }
    Ok(out)
}

/// Sets every `(key, value)`: one `MSET` on a server, one per slot on a cluster (32 at a
/// time). Not atomic across slots: each key is written whole.
pub async fn mset(conn: &Redis, pairs: &[(String, String)]) -> ::redis::RedisResult<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let groups = match conn {
        Redis::Node(_) => vec![(0..pairs.len()).collect()],
        Redis::Cluster(_) => by_slot(pairs.iter().enumerate().map(|(i, (k, _))| (k.as_str(), i))),
    };
    use futures_util::{StreamExt, TryStreamExt};
    futures_util::stream::iter(groups.into_iter().map(|idx| {
        let mut c = conn.clone();
        let mut cmd = ::redis::cmd("MSET");
        for i in idx {
            cmd.arg(&pairs[i].0).arg(&pairs[i].1);
        }
        async move { cmd.query_async::<()>(&mut c).await }
    }))
    .buffer_unordered(SLOTS_AT_ONCE)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}

/// Indexes grouped by their key's cluster slot.
fn by_slot<'k>(keys: impl Iterator<Item = (&'k str, usize)>) -> Vec<Vec<usize>> {
    use ::redis::cluster_routing::{Route, SlotAddr};
    let mut groups: std::collections::HashMap<Route, Vec<usize>> = std::collections::HashMap::new();
    for (k, i) in keys {
        groups.entry(Route::with_key(k, SlotAddr::Master)).or_default().push(i);
    }
    groups.into_values().collect()
}

/// A counter in a window: the count after this increment. Every increment restarts the
/// window, so the counter ends `window_secs` after the last one (attempts that keep coming
/// keep it alive); one key, so one slot.
pub async fn count_in_window(conn: &mut Redis, key: &str, window_secs: i64) -> ::redis::RedisResult<u64> {
    let (n,): (u64,) = ::redis::pipe().incr(key, 1).expire(key, window_secs).ignore().query_async(conn).await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_are_sent_again_after_a_dropped_connection() {
        let get = ::redis::cmd("GET").arg("k").clone();
        let mget = ::redis::cmd("mget").arg("a").arg("b").clone();
        let incr = ::redis::cmd("INCR").arg("k").clone();
        let set_nx = ::redis::cmd("SET").arg("k").arg("1").arg("NX").clone();
        assert!(reads_only([&get, &mget].into_iter()));
        assert!(!reads_only(std::iter::once(&incr)));
        assert!(!reads_only(std::iter::once(&set_nx)));
        let mut p = ::redis::pipe();
        p.get("a").incr("a", 1);
        assert!(!reads_only(p.cmd_iter()), "a pipeline with one write is a write");
    }

    #[test]
    fn slot_keys_carry_the_whole_tag() {
        assert_eq!(slot_key("wuye:", &["signin", "fail"], "13800000001"), "wuye:signin:fail:{13800000001}");
        assert_eq!(slot_key("p:", &[], "a}b{c"), "p:{a_b_c}");
    }

    #[test]
    fn keys_of_one_tag_share_a_slot() {
        let a = slot_key("wuye:", &["signin", "fail"], "zhang");
        let b = slot_key("wuye:", &["signin", "lock"], "zhang");
        let c = slot_key("wuye:", &["signin", "lock"], "li");
        use ::redis::cluster_routing::{Route, SlotAddr};
        let slot = |k: &str| Route::with_key(k, SlotAddr::Master);
        assert_eq!(slot(&a), slot(&b));
        assert_ne!(slot(&b), slot(&c));
    }
}
