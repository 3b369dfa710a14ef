//! Notifications benchmark.
//!
//!   cargo bench -p wuye-tests --bench notify      (BENCH_NOTIFICATIONS=20000, BENCH_SUBSCRIBERS=10000)
//!
//! 1. Outbox throughput: notifications enqueued while no dispatcher runs, then one replica
//!    dispatches them (in-app + push to the local fake FCM, with every bookkeeping write);
//!    prints notifications/s.
//! 2. Subscription fan-out: N WebSocket subscribers (in a child process, so the server's
//!    memory can be read alone) on one instance; events published on the bus; prints
//!    event-to-receipt p50/p99 and the server's memory per idle subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use wuye_api::notify::model::{Category, Channel, NewNotification, Priority};
use wuye_tests::TestServer;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--ws-clients") {
        return ws_clients(args[i + 1].parse().unwrap(), &args[i + 2], &args[i + 3]);
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(outbox_throughput(env_num("BENCH_NOTIFICATIONS", 20_000)));
    rt.block_on(fan_out(env_num("BENCH_SUBSCRIBERS", 10_000), env_num("BENCH_EVENTS", 5)));
}

async fn outbox_throughput(total: usize) {
    let fake = wuye_tests::fakes::FakeFcm::start().await;
    let dir = std::env::temp_dir().join(format!("wuye-bench-{}", uuid::Uuid::now_v7().simple()));
    let sa = fake.service_account(&dir, "fcm-test-key.pem");
    let url = fake.url.clone();
    let a = TestServer::seeded_with(move |c| {
        c.push.fcm_service_account = Some(sa);
        c.push.fcm_endpoint = url;
        c.notify.dispatcher = false;
        c.database_max_connections = 16;
    })
    .await;
    // one FCM device per demo owner
    // accounts linked to an owner record (`users.kind` no longer says who is an owner)
    let users: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT DISTINCT user_id FROM owners WHERE user_id IS NOT NULL ORDER BY user_id")
            .fetch_all(&a.db)
            .await
            .unwrap();
    for (i, u) in users.iter().enumerate() {
        sqlx::query("INSERT INTO push_devices (id, user_id, token, platform, provider, app) VALUES ($1, $2, $3, 'android', 'fcm', 'owner')")
            .bind(uuid::Uuid::now_v7())
            .bind(u)
            .bind(format!("bench-token-{i}"))
            .execute(&a.db)
            .await
            .unwrap();
    }
    let company: uuid::Uuid = sqlx::query_scalar("SELECT id FROM companies LIMIT 1").fetch_one(&a.db).await.unwrap();
    let n = NewNotification {
        category: Category::Bill,
        priority: Priority::Normal,
        title: "缴费提醒".into(),
        body: "您的11月物业费已出账，请及时缴纳".into(),
        data: json!({"route": "bill"}),
        channels: Some(vec![Channel::InApp, Channel::Push]),
    };
    let mut queued = 0;
    while queued < total {
        let mut tx = a.db.begin().await.unwrap();
        for _ in 0..10 {
            queued += wuye_api::notify::service::enqueue(&a.state, &mut tx, company, &users, &n).await.unwrap().len();
        }
        tx.commit().await.unwrap();
    }
    let mut config = (*a.state.config).clone();
    config.notify.dispatcher = true;
    config.notify.batch = 500;
    config.notify.concurrency = 128;
    let started = Instant::now();
    let b = a.replica_with(config).await;
    let mut done = 0;
    while done < queued as i64 && started.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        done = a.scalar("SELECT count(*) FROM notifications WHERE status <> 'pending'").await;
    }
    let secs = started.elapsed().as_secs_f64();
    let pushed: usize = fake.accepted().values().sum();
    println!(
        "\nwuye notifications benchmark, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!("| scenario | figure |");
    println!("|---|---|");
    println!(
        "| outbox dispatch (in-app + FCM push, {queued} notifications, 1 replica) | {:.0} notifications/s ({done} done in {secs:.1} s, {pushed} pushes accepted by the fake FCM) |",
        done as f64 / secs
    );
    drop(b);
}

async fn fan_out(subscribers: usize, events: usize) {
    let s = TestServer::seeded().await;
    let token = s.sign_in("13800000001").await;
    let user: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE phone = '13800000001'").fetch_one(&s.db).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ws-clients", &subscribers.to_string(), &s.ws_url(), &token])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // READY <n>: every client connected and subscribed
    let ready = tokio::task::spawn_blocking(move || {
        out.read_line(&mut line).unwrap();
        (out, line)
    })
    .await
    .unwrap();
    let (mut out, line) = ready;
    let connected: usize = line.trim().strip_prefix("READY ").and_then(|n| n.parse().ok()).unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();
    for i in 0..events {
        let ev = wuye_api::kit::events::Event {
            user_id: Some(user),
            kind: wuye_api::notify::service::EVENT_NOTIFICATION.into(),
            payload: json!({"id": uuid::Uuid::now_v7(), "category": "system", "priority": "normal", "title": format!("fan-out {i}"),
                            "body": "", "data": {}, "createdAt": chrono::Utc::now()}),
        };
        s.state.events.publish(&ev).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    child.stdin.as_mut().unwrap().write_all(b"done\n").unwrap();
    let mut result = String::new();
    out.read_line(&mut result).unwrap();
    let _ = child.wait();
    let r: serde_json::Value = serde_json::from_str(result.trim()).unwrap_or_default();
    println!(
        "| subscription fan-out ({connected} WebSocket subscribers, {events} events) | event→receipt p50 {:.1} ms, p99 {:.1} ms, {} of {} receipts |",
        r["p50"].as_f64().unwrap_or(0.0),
        r["p99"].as_f64().unwrap_or(0.0),
        r["count"],
        connected * events
    );
    println!(
        "| server memory per idle subscriber | {:.1} KiB (RSS {} → {} KiB) |",
        (after.saturating_sub(before)) as f64 / connected.max(1) as f64,
        before,
        after
    );
}

/// Child process: `n` subscribers; prints READY, then latencies when told "done".
fn ws_clients(n: usize, url: &str, token: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(200));
        for _ in 0..n {
            let (tx, ready_tx, url, token, sem) = (tx.clone(), ready_tx.clone(), url.to_owned(), token.to_owned(), sem.clone());
            tokio::spawn(async move {
                let permit = sem.acquire_owned().await.unwrap();
                let mut req = url.into_client_request().unwrap();
                req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
                let cfg = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
                let Ok((mut ws, _)) = tokio_tungstenite::connect_async_with_config(req, Some(cfg), false).await else { return };
                ws.send(Message::text(json!({"type": "connection_init", "payload": {"accessToken": token}}).to_string())).await.unwrap();
                let _ack = ws.next().await;
                ws.send(Message::text(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { notificationReceived { title createdAt } }"}}).to_string()))
                    .await
                    .unwrap();
                drop(permit);
                let _ = ready_tx.send(());
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(t) = msg {
                        let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                        if v["type"] == "next" {
                            let sent = v["payload"]["data"]["notificationReceived"]["createdAt"]
                                .as_str()
                                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                            if let Some(sent) = sent {
                                let ms = (chrono::Utc::now() - sent.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                                let _ = tx.send(ms);
                            }
                        } else if v["type"] == "ping" {
                            let _ = ws.send(Message::text(json!({"type": "pong"}).to_string())).await;
                        }
                    }
                }
            });
        }
        drop(ready_tx);
        let mut ready = 0;
        while ready < n {
            match tokio::time::timeout(Duration::from_secs(120), ready_rx.recv()).await {
                Ok(Some(())) => ready += 1,
                _ => break,
            }
        }
        // the subscribe messages are sent; give the server a moment to set the streams up
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("READY {ready}");
        std::io::stdout().flush().unwrap();
        let _ = tx;
        let stdin = tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s).ok();
        });
        let mut lat = Vec::new();
        tokio::pin!(stdin);
        loop {
            tokio::select! {
                _ = &mut stdin => break,
                v = rx.recv() => match v { Some(x) => lat.push(x), None => break },
            }
        }
        while let Ok(x) = rx.try_recv() {
            lat.push(x);
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        println!("{}", json!({"p50": pct(&lat, 0.5), "p99": pct(&lat, 0.99), "count": lat.len()}));
    });
}
