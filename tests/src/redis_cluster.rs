//! A throw-away Redis Cluster for tests: `redis-server` processes in cluster mode on free
//! ports of 127.0.0.1, their slots assigned by `redis-cli --cluster create`, stopped and
//! removed when the value is dropped. With `replicas_per_master` each master gets a
//! replica, so a master can be killed and the cluster fails over.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

pub struct RedisCluster {
    /// `redis://127.0.0.1:port` of every node, masters first
    pub nodes: Vec<String>,
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    dir: PathBuf,
}

/// A port that is free along with its cluster bus port (`port + 10000`).
fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else { continue };
        let Ok(port) = l.local_addr().map(|a| a.port()) else { continue };
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair for a Redis Cluster node");
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli").arg("-p").arg(port.to_string()).args(args).output().expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl RedisCluster {
    /// `masters` masters (at least 3), each with `replicas_per_master` replicas.
    pub fn start(masters: usize, replicas_per_master: usize) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!("wuye-redis-cluster-{}", Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let total = masters * (1 + replicas_per_master);
        let mut ports = Vec::new();
        let mut children = Vec::new();
        for _ in 0..total {
            let port = free_port_pair();
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no"])
                // a replica syncs at once (the default waits 5 s to batch replicas)
                .args(["--repl-diskless-sync-delay", "0"])
                .arg("--dir")
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server runs (deploy/services.sh installs it)");
            ports.push(port);
            children.push(Some(child));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for p in &ports {
            while cli(*p, &["PING"]).trim() != "PONG" {
                assert!(Instant::now() < deadline, "redis-server on {p} did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas_per_master.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create runs");
        assert!(out.status.success(), "cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let c = RedisCluster {
            nodes: ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect(),
            ports,
            children,
            dir,
        };
        c.wait_ok(Duration::from_secs(20));
        // a replica that never synced cannot take over: wait until each one has
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in &c.ports {
            loop {
                let info = cli(*p, &["INFO", "replication"]);
                if info.contains("role:master") || info.contains("master_link_status:up") {
                    break;
                }
                assert!(Instant::now() < deadline, "replica {p} never synced:\n{info}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        c
    }

    /// Waits until every running node reports the cluster healthy (all slots served).
    pub fn wait_ok(&self, wait: Duration) {
        let deadline = Instant::now() + wait;
        for (i, p) in self.ports.iter().enumerate() {
            if self.children[i].is_none() {
                continue;
            }
            while !cli(*p, &["CLUSTER", "INFO"]).contains("cluster_state:ok") {
                assert!(Instant::now() < deadline, "cluster on {p} never became ok");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Starts moving `key`'s slot from its master to the master on `to`, as a resharding
    /// does (`MIGRATING` on the source, `IMPORTING` on the target): keys not on the source
    /// are answered with ASK redirects to the target. Returns the slot.
    pub fn migrate_start(&self, key: &str, to: u16) -> u16 {
        let slot: u16 = cli(self.ports[0], &["CLUSTER", "KEYSLOT", key]).trim().parse().unwrap();
        let from = self.master_of(key);
        let (from_id, to_id) = (cli(from, &["CLUSTER", "MYID"]), cli(to, &["CLUSTER", "MYID"]));
        let s = slot.to_string();
        assert_eq!(cli(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", from_id.trim()]).trim(), "OK");
        assert_eq!(cli(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", to_id.trim()]).trim(), "OK");
        slot
    }

    /// Ends a migration begun by `migrate_start`: every master gives the slot to `to`.
    pub fn migrate_finish(&self, slot: u16, to: u16) {
        let to_id = cli(to, &["CLUSTER", "MYID"]);
        for (i, p) in self.ports.iter().enumerate() {
            if self.children[i].is_some() {
                cli(*p, &["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", to_id.trim()]);
            }
        }
    }

    /// `GET key` asked of one node.
    pub fn get(&self, port: u16, key: &str) -> String {
        cli(port, &["GET", key]).trim().to_owned()
    }

    /// The node serving `key`'s slot now.
    pub fn master_of(&self, key: &str) -> u16 {
        let slot: u16 = cli(self.ports[0], &["CLUSTER", "KEYSLOT", key]).trim().parse().unwrap();
        for (i, p) in self.ports.iter().enumerate() {
            if self.children[i].is_none() {
                continue;
            }
            for line in cli(*p, &["CLUSTER", "NODES"]).lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() > 8 && f[2].contains("master") && !f[2].contains("fail") {
                    let serves = f[8..].iter().any(|r| match r.split_once('-') {
                        Some((a, b)) => {
                            a.parse::<u16>().is_ok_and(|a| a <= slot) && b.parse::<u16>().is_ok_and(|b| slot <= b)
                        }
                        None => r.parse::<u16>().is_ok_and(|s| s == slot),
                    });
                    if serves {
                        return f[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
                    }
                }
            }
        }
        panic!("no node serves {key}");
    }

    /// Keys under `prefix` on each running node.
    pub fn keys_per_node(&self, prefix: &str) -> Vec<usize> {
        self.ports
            .iter()
            .enumerate()
            .filter(|(i, _)| self.children[*i].is_some())
            .map(|(_, p)| cli(*p, &["--scan", "--pattern", &format!("{prefix}*")]).lines().count())
            .collect()
    }

    /// Kills the node on `port` with SIGKILL (it is not restarted) and waits until the
    /// others have marked it failed and, for a master, promoted its replica: every slot is
    /// served again. Returns how long that took.
    pub fn kill(&mut self, port: u16, wait: Duration) -> Duration {
        let i = self.ports.iter().position(|p| *p == port).expect("a node of this cluster");
        let started = Instant::now();
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let witness =
            self.ports.iter().enumerate().find(|(j, _)| self.children[*j].is_some()).map(|(_, p)| *p).unwrap();
        let me = format!("127.0.0.1:{port}@");
        loop {
            let nodes = cli(witness, &["CLUSTER", "NODES"]);
            let failed = nodes.lines().any(|l| l.contains(&me) && l.contains("fail") && !l.contains("fail?"));
            if failed && cli(witness, &["CLUSTER", "INFO"]).contains("cluster_state:ok") {
                break;
            }
            assert!(started.elapsed() < wait, "no failover after killing {port}:\n{nodes}");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_ok(wait);
        started.elapsed()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
