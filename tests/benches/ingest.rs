//! Device ingest benchmark: the simulator publishes to a dedicated Mosquitto (configured
//! like `deploy/mosquitto/wuye.conf`: 1000 messages in flight per client, no queue cap)
//! and the api stores everything: telemetry history in PostgreSQL, live state in Redis,
//! rule evaluation on every message.
//!
//!   cargo bench -p wuye-tests --bench ingest      (BENCH_MESSAGES=200000, BENCH_DEVICES=2000)
//!
//! The simulator runs in a child process (this binary again), so the CPU time read from
//! /proc is the api's alone; PostgreSQL, Redis and Mosquitto are read from /proc too.
//! Prints messages/s (first publish → last row stored), CPU seconds per 10,000 messages,
//! and checks count in = rows stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wuye_api::equipment::model::DeviceCategory;
use wuye_api::iot::sim::model::{SimDevice, SimOptions};
use wuye_api::iot::sim::service::simulate;
use wuye_api::iot::telemetry::service::IotCache;
use wuye_tests::TestServer;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// utime + stime of processes, in seconds: this one, or all with a given command name.
fn cpu_secs(filter: impl Fn(&str, u32) -> bool) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = &stat[open + 1..close];
        if !filter(comm, pid) {
            continue;
        }
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        total += (ut + st) / tick;
    }
    total
}

fn child_simulator() {
    let url = std::env::var("BENCH_SIM_URL").unwrap();
    let root = std::env::var("BENCH_SIM_ROOT").unwrap();
    let count = env_num("BENCH_SIM_COUNT", 1000);
    let devices: Vec<SimDevice> = std::env::var("BENCH_SIM_DEVICES")
        .unwrap()
        .split(',')
        .map(|d| {
            let (code, category) = d.split_once(':').unwrap();
            SimDevice { company: "JCWY".into(), code: code.into(), category: DeviceCategory::parse(category).unwrap() }
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let r = rt
        .block_on(simulate(SimOptions {
            mqtt_url: url,
            ca_file: None,
            credentials: Default::default(),
            root,
            devices,
            rate: 0.0,
            count,
            fault_rate: 0.0,
            offline: 0,
            connections: 2,
        }))
        .unwrap();
    println!("SENT {} {:.3}", r.sent, r.elapsed.as_secs_f64());
}

fn main() {
    if std::env::var("BENCH_SIM_URL").is_ok() {
        return child_simulator();
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run());
}

async fn run() {
    let messages = env_num("BENCH_MESSAGES", 200_000);
    let n_devices = env_num("BENCH_DEVICES", 2000);
    // a broker of our own, configured for throughput like the shipped production config
    let port = 18_000 + (std::process::id() % 1000) as u16;
    let dir = std::env::temp_dir().join(format!("wuye-bench-mqtt-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 1000\nmax_queued_messages 0\n"
        ),
    )
    .unwrap();
    let bin = ["/usr/sbin/mosquitto", "mosquitto"]
        .into_iter()
        .find(|b| std::path::Path::new(b).exists())
        .unwrap_or("mosquitto");
    let mut broker =
        Command::new(bin).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("mosquitto");
    let broker_pid = broker.id();
    // the broker is up once it accepts connections
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start on port {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("mqtt://127.0.0.1:{port}");

    let s = TestServer::seeded_with(|c| {
        c.mqtt_url = url.clone();
        c.iot.ingest_slots = 2;
        c.iot.ingest_workers = 2;
        c.iot.batch_max = 2000;
        c.iot.jobs = false;
        c.notify.dispatcher = false;
        c.database_max_connections = 12;
    })
    .await;
    // the estate's ledger grows to n devices: pumps, meters and elevators
    sqlx::query(
        "INSERT INTO devices (id, company_id, project_id, code, name, category, status, attributes)
         SELECT gen_random_uuid(), p.company_id, p.id, 'SIM-' || lpad(g::text, 6, '0'), '模拟设备' || g,
                (ARRAY['water_meter', 'water_pump', 'elevator', 'electricity_meter', 'fire_equipment'])[1 + g % 5], 'in_use', '{}'
         FROM projects p, generate_series(1, $1) g WHERE p.code = 'JCHY'",
    )
    .bind(n_devices as i64)
    .execute(&s.db)
    .await
    .unwrap();
    s.state.part::<IotCache>().unwrap().forget_devices();
    let devices: Vec<(String, String)> =
        sqlx::query_as("SELECT code, category FROM devices WHERE code LIKE 'SIM-%' ORDER BY code")
            .fetch_all(&s.db)
            .await
            .unwrap();
    let list = devices.iter().map(|(c, k)| format!("{c}:{k}")).collect::<Vec<_>>().join(",");
    let root = s.state.config.mqtt_topic_root.clone();

    // warm-up: caches, connections, JIT of the query plans
    let warm = 5_000u64;
    let _ = simulate(SimOptions {
        mqtt_url: url.clone(),
        ca_file: None,
        credentials: Default::default(),
        root: root.clone(),
        devices: devices
            .iter()
            .map(|(c, k)| SimDevice {
                company: "JCWY".into(),
                code: c.clone(),
                category: DeviceCategory::parse(k).unwrap(),
            })
            .collect(),
        rate: 0.0,
        count: warm,
        fault_rate: 0.0,
        offline: 0,
        connections: 2,
    })
    .await
    .unwrap();
    let stored = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM telemetry").fetch_one(&s.db).await.unwrap() as u64
    };
    while stored().await < warm {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let me = std::process::id();
    let api0 = cpu_secs(|_, pid| pid == me);
    let pg0 = cpu_secs(|c, _| c.starts_with("postgres"));
    let redis0 = cpu_secs(|c, _| c.starts_with("redis-server"));
    let broker0 = cpu_secs(|_, pid| pid == broker_pid);
    let t0 = Instant::now();
    let child = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_SIM_URL", &url)
        .env("BENCH_SIM_ROOT", &root)
        .env("BENCH_SIM_COUNT", messages.to_string())
        .env("BENCH_SIM_DEVICES", &list)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while last < warm + messages && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        last = stored().await;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let api = cpu_secs(|_, pid| pid == me) - api0;
    let pg = cpu_secs(|c, _| c.starts_with("postgres")) - pg0;
    let redis = cpu_secs(|c, _| c.starts_with("redis-server")) - redis0;
    let mq = cpu_secs(|_, pid| pid == broker_pid) - broker0;
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    let sent: u64 = report.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    let pub_secs: f64 = report.split_whitespace().nth(2).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let rows = last - warm;
    let per10k = |x: f64| x / (messages as f64 / 10_000.0);
    println!(
        "ingest: {messages} telemetry messages from {} devices (2 publisher + 2 consumer connections, 2 workers)",
        devices.len()
    );
    println!("  published in {pub_secs:.2} s ({:.0} msg/s)", sent as f64 / pub_secs.max(1e-9));
    println!(
        "  stored in {elapsed:.2} s: {:.0} msg/s (broker → Redis state + PostgreSQL history + rules)",
        rows as f64 / elapsed
    );
    println!("  count in = rows stored: {sent} = {rows} {}", if sent == rows { "✓" } else { "✗ MISMATCH" });
    println!(
        "  CPU s per 10,000 msgs: api {:.2}, PostgreSQL {:.2}, Redis {:.2}, Mosquitto {:.2}",
        per10k(api),
        per10k(pg),
        per10k(redis),
        per10k(mq)
    );
    let _ = broker.kill();
    let _ = broker.wait();
    let _ = std::fs::remove_dir_all(&dir);
    drop(s);
}
