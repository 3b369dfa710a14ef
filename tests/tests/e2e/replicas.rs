//! Three api replicas as real processes on one database, Redis and the broker as shipped;
//! one is killed with SIGKILL in the middle of device ingest and notification dispatch and
//! never comes back. Its share of the device messages and of the outbox must reach the
//! survivors: nothing the broker acknowledged is lost, every notification is sent.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use wuye_tests::broker::ShippedBroker;
use wuye_tests::*;

/// The `wuye` binary next to this test (cargo builds it for the workspace's tests).
fn wuye_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|d| d.parent()).map(|d| d.join("wuye")).unwrap();
    assert!(bin.exists(), "{} missing: cargo build -p wuye-api (deploy/test.sh builds the workspace)", bin.display());
    bin
}

fn spawn_replica(s: &TestServer, broker: &ShippedBroker, dir: &std::path::Path) -> Child {
    spawn_replica_with(s, broker, dir, &[])
}

/// A replica process with more settings (`WUYE_HTTP_ADDR`, `WUYE_CONFIG`, …).
fn spawn_replica_with(
    s: &TestServer,
    broker: &ShippedBroker,
    dir: &std::path::Path,
    extra: &[(&str, String)],
) -> Child {
    let c = &s.state.config;
    Command::new(wuye_bin())
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WUYE_DATABASE_URL", &c.database_url)
        .env("WUYE_DATABASE_MAX_CONNECTIONS", "6")
        .env("WUYE_REDIS_URL", &c.redis_url)
        // as production writes a list: TOML syntax (the suite may run on a Redis Cluster)
        .env("WUYE_REDIS_CLUSTER_NODES", format!("{:?}", c.redis_cluster_nodes))
        .env("WUYE_REDIS_PREFIX", &c.redis_prefix)
        .env("WUYE_MQTT_URL", broker.server_url())
        .env("WUYE_MQTT_TOPIC_ROOT", &c.mqtt_topic_root)
        .env("WUYE_MQTT_CLIENT_PREFIX", &c.mqtt_client_prefix)
        .env("WUYE_MQTT_CLEAN_SESSION", "false")
        .env("WUYE_HTTP_ADDR", "127.0.0.1:0")
        .env("WUYE_STORAGE_DIR", dir)
        .env("WUYE_IOT__INGEST_SLOTS", "6")
        .env("WUYE_IOT__JOBS", "false")
        .env("WUYE_NOTIFY__DISPATCHER", "true")
        .env("WUYE_NOTIFY__LEASE_SECS", "5")
        .env("WUYE_AUTH__ARGON2_MEMORY_KIB", "4096")
        .env("RUST_LOG", "warn")
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wuye serve")
}

/// Slot leases held, and by how many replicas.
async fn slots_held(s: &TestServer) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(DISTINCT pid) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = (x'57590002'::bigint)::oid
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&s.db)
    .await
    .unwrap()
}

async fn stored_seqs(s: &TestServer) -> i64 {
    sqlx::query_scalar("SELECT count(DISTINCT data->>'seq') FROM telemetry WHERE data ? 'seq'")
        .fetch_one(&s.db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_for_good_strands_no_device_message_and_no_notification() {
    let broker = ShippedBroker::start().await;
    let url = broker.server_url();
    // this process provisions the device accounts and queues notifications; it ingests and
    // dispatches nothing itself
    let s = TestServer::seeded_with(|c| {
        c.mqtt_url = url;
        c.mqtt_dynsec = true;
        c.mqtt_ingest = false;
        c.notify.dispatcher = false;
    })
    .await;
    let admin = s.sign_in("admin").await;
    // thirty owners with a phone registered for push
    let register = "mutation($t: String!) { registerDevice(input: {token: $t, platform: ANDROID, provider: FCM, app: OWNER}) { device { id } } }";
    let mut users = Vec::new();
    for i in 10..40 {
        let t = s.sign_in(&format!("138000000{i}")).await;
        s.ok(Some(&t), register, json!({"t": format!("tok-{i}")})).await;
        users.push(s.ok(Some(&t), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].clone());
    }
    let send = "mutation($u: [ID!]!, $t: String!) { sendNotification(input: {userIds: $u, title: $t, body: \"停水通知\", category: SYSTEM}) { queued } }";
    let root = s.state.config.mqtt_topic_root.clone();
    let codes: Vec<String> =
        sqlx::query_scalar("SELECT code FROM devices ORDER BY code LIMIT 10").fetch_all(&s.db).await.unwrap();
    let mut accounts: HashMap<String, String> = HashMap::new();
    let provision = "mutation($d: ID!) { provisionDeviceCredentials(input: {deviceId: $d}) { password } }";
    for code in &codes {
        let id = s.ok(Some(&admin), "query($c: String!) { deviceByCode(code: $c) { id } }", json!({"c": code})).await
            ["deviceByCode"]["id"]
            .clone();
        let pw = s.ok(Some(&admin), provision, json!({"d": id})).await["provisionDeviceCredentials"]["password"]
            .as_str()
            .unwrap()
            .to_owned();
        accounts.insert(code.clone(), pw);
    }

    let dir = std::env::temp_dir().join(format!("wuye-replicas-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut a = spawn_replica(&s, &broker, &dir);
    let b = spawn_replica(&s, &broker, &dir);
    let c = spawn_replica(&s, &broker, &dir);
    // the three replicas up, the six slots split among them (two each)
    let split = s
        .wait_until(|| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            slots_held(&s).await == (6, 3)
        })
        .await;
    assert!(split, "slots held: {:?}", slots_held(&s).await);
    // and subscribed: every slot's session exists on the broker before devices publish
    tokio::time::sleep(Duration::from_secs(2)).await;

    // ten devices, 1,000 QoS 1 messages each, every message numbered
    let total = 10_000usize;
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut publishers = Vec::new();
    for (k, code) in codes.iter().enumerate() {
        let mut o = MqttOptions::new(format!("JCWY/{code}"), "127.0.0.1", broker.port);
        o.set_credentials(format!("JCWY/{code}"), accounts[code].clone());
        o.set_inflight(100);
        o.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = AsyncClient::new(o, 200);
        let topic = format!("{root}/JCWY/{code}/telemetry");
        let acked = acked.clone();
        publishers.push(tokio::spawn(async move {
            let per = 1_000;
            let sender = {
                let client = client.clone();
                tokio::spawn(async move {
                    for i in 0..per {
                        let seq = k * per + i;
                        let body = format!(r#"{{"values":{{"seq":{seq}}}}}"#);
                        client.publish(topic.clone(), QoS::AtLeastOnce, false, body).await.unwrap();
                    }
                })
            };
            let mut mine = 0;
            while mine < per {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        mine += 1;
                        acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => panic!("device connection: {e}"),
                }
            }
            let _ = sender.await;
            let _ = client.disconnect().await;
        }));
    }
    // notifications queue up while the devices publish: ten rounds to thirty phones
    let rounds = 10;
    for round in 0..rounds / 2 {
        s.ok(Some(&admin), send, json!({"u": users, "t": format!("第{round}轮")})).await;
    }
    // a fifth of the way in, one replica dies and never returns
    while acked.load(std::sync::atomic::Ordering::Relaxed) < total / 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.kill().unwrap();
    let _ = a.wait();
    let killed = Instant::now();
    for round in rounds / 2..rounds {
        s.ok(Some(&admin), send, json!({"u": users, "t": format!("第{round}轮")})).await;
    }
    // the survivors take the dead replica's slots
    let taken = s
        .wait_until(|| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            slots_held(&s).await == (6, 2)
        })
        .await;
    let takeover = killed.elapsed();
    assert!(taken, "slots held after the kill: {:?}", slots_held(&s).await);
    eprintln!("the survivors held every slot {:.1} s after the kill", takeover.as_secs_f64());
    for p in publishers {
        p.await.unwrap();
    }
    assert_eq!(acked.load(std::sync::atomic::Ordering::Relaxed), total, "the broker took every message");

    // the survivors store everything within a minute
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stored = 0;
    while Instant::now() < deadline {
        stored = stored_seqs(&s).await;
        if stored as usize == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let held = slots_held(&s).await;
    // every notification sent, the dead replica's claimed batch taken over once its lease ran out
    let notifications = (rounds * users.len()) as i64;
    let done = s.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", notifications).await;
    let mut pushes = 0;
    for i in 10..40 {
        let got = s.pushes(&format!("tok-{i}")).await;
        let titles: std::collections::BTreeSet<String> = got.iter().map(|p| p.title.clone()).collect();
        assert_eq!(titles.len(), rounds, "tok-{i}: every round reached the phone");
        pushes += got.len();
    }
    for mut r in [b, c] {
        let _ = r.kill();
        let _ = r.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(stored as usize, total, "messages stored; slots now held {held:?}");
    assert_eq!(held, (6, 2), "the survivors hold every slot");
    assert_eq!(done, notifications, "every notification sent");
    // at least once: a push the dead replica sent but never recorded may go out again
    // (at most its claimed batch); none is sent twice otherwise
    let doubled = pushes - notifications as usize;
    let batch = wuye_api::kit::config::NotifyConfig::default().batch;
    assert!(doubled <= batch, "{doubled} pushes sent twice (a claimed batch is {batch})");
    eprintln!("pushes: {pushes} for {notifications} notifications ({doubled} resent after the kill)");
}

/// WeChat Pay notifications sent to a replica that is killed with SIGKILL — once before it
/// booked the payment, once right after it did, its answers lost — are sent again by the
/// provider (to the survivors, several at once, as it does when it gets no answer): each
/// payment is booked exactly once, for its order's amount, and its bills are paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_cut_off_by_sigkill_is_booked_once_by_the_survivors() {
    use wuye_tests::payfakes::{
        FakeWechatPay, WX_APIV3_KEY, WX_APPID, WX_MCHID, WX_MERCHANT_SERIAL, WX_PLATFORM_SERIAL, WX_PUB_KEY_ID, WxKey,
    };
    let broker = ShippedBroker::start().await;
    let wx = FakeWechatPay::start().await;
    let merchant = wx.merchant();
    let url = broker.server_url();
    let s = TestServer::seeded_with(|c| {
        c.pay.wechat.insert("JCWY".into(), merchant.clone());
        c.mqtt_url = url;
        c.mqtt_ingest = false;
        c.notify.dispatcher = false;
    })
    .await;
    let dir = std::env::temp_dir().join(format!("wuye-pay-replicas-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // the replicas get the merchant from a configuration file, as in production
    let toml = format!(
        "[pay.wechat.JCWY]\nmchid = {:?}\nappid = {:?}\nserial_no = {:?}\nprivate_key_file = {:?}\napiv3_key = {:?}\n\
         public_key_id = {:?}\npublic_key_file = {:?}\nendpoint = {:?}\n\
         [pay.wechat.JCWY.platform_certs]\n{:?} = {:?}\n",
        WX_MCHID,
        WX_APPID,
        WX_MERCHANT_SERIAL,
        merchant.private_key_file.display().to_string(),
        WX_APIV3_KEY,
        WX_PUB_KEY_ID,
        merchant.public_key_file.as_ref().unwrap().display().to_string(),
        merchant.endpoint,
        WX_PLATFORM_SERIAL,
        merchant.platform_certs[WX_PLATFORM_SERIAL].display().to_string(),
    );
    let config = dir.join("wuye.toml");
    std::fs::write(&config, toml).unwrap();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let extra = [
            ("WUYE_HTTP_ADDR", format!("127.0.0.1:{port}")),
            ("WUYE_CONFIG", config.display().to_string()),
            ("WUYE_MQTT_INGEST", "false".to_owned()),
        ];
        replicas.push((spawn_replica_with(&s, &broker, &dir, &extra), port));
    }
    for (_, port) in &replicas {
        let health = format!("http://127.0.0.1:{port}/healthz");
        let up = s.wait_until(|| async { s.http.get(&health).send().await.is_ok_and(|r| r.status() == 200) }).await;
        assert!(up, "replica on {port} started");
    }

    // the owner pays both bills in one order
    crate::pay::bills(&s).await;
    let o6 = s.sign_in("13800000006").await;
    let my_bills = s
        .ok(Some(&o6), "{ myBills(first: 20, status: UNPAID) { edges { node { id outstanding } } } }", json!({}))
        .await;
    let ids: Vec<Value> =
        my_bills["myBills"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].clone()).collect();
    assert!(!ids.is_empty());
    let pay = "mutation($i: PayBillsInput!) { payBills(input: $i) { payOrder { id outTradeNo amount } } }";
    let order =
        s.ok(Some(&o6), pay, json!({"i": {"billIds": ids, "provider": "WECHAT"}})).await["payBills"]["payOrder"]
            .clone();
    let otn = order["outTradeNo"].as_str().unwrap().to_owned();
    wx.pay(&otn);

    // WeChat notifies replica A, ten deliveries at once; A dies while handling them
    let now = s.clock_now().timestamp();
    let (mut a, a_port) = replicas.remove(0);
    let to_a = format!("http://127.0.0.1:{a_port}/pay/wechat/JCWY/notify");
    let notes: Vec<_> = (0..10).map(|_| wx.notification(&otn, WxKey::Platform, now, None)).collect();
    let wx = std::sync::Arc::new(wx);
    let mut inflight = Vec::new();
    for n in notes {
        let (wx, to_a) = (wx.clone(), to_a.clone());
        inflight.push(tokio::spawn(async move { wx.try_deliver(&to_a, &n).await }));
    }
    // the deliveries reach A and it is working on them
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.kill().unwrap();
    let _ = a.wait();
    let booked_by_a = s.scalar("SELECT count(*) FROM payments").await;
    let cut_off = futures_util::future::join_all(inflight).await;
    let answered = cut_off.iter().filter(|r| matches!(r, Ok(Ok((204, _))))).count();

    // no answer, or not from everyone: WeChat retries, at the survivors, all at once
    let mut retries = Vec::new();
    for (_, port) in &replicas {
        for _ in 0..10 {
            let n = wx.notification(&otn, WxKey::Platform, now, None);
            let (wx, to) = (wx.clone(), format!("http://127.0.0.1:{port}/pay/wechat/JCWY/notify"));
            retries.push(tokio::spawn(async move { wx.deliver(&to, &n).await }));
        }
    }
    for r in futures_util::future::join_all(retries).await {
        let (status, body) = r.unwrap();
        assert_eq!((status, body.as_str()), (204, ""), "a survivor acknowledges the payment");
    }
    eprintln!("replica A answered {answered} of 10 deliveries and had booked {booked_by_a} payment(s) when it died");
    assert_eq!(s.scalar("SELECT count(*) FROM payments").await, 1, "booked once");

    // the other way round: replica B books a second owner's payment and dies before its
    // answers are out; WeChat's retries reach the last replica, which books nothing twice
    let o7 = s.sign_in("13800000007").await;
    let theirs = s.ok(Some(&o7), "{ myBills(first: 20, status: UNPAID) { edges { node { id } } } }", json!({})).await;
    let ids7: Vec<Value> =
        theirs["myBills"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].clone()).collect();
    let order7 =
        s.ok(Some(&o7), pay, json!({"i": {"billIds": ids7, "provider": "WECHAT"}})).await["payBills"]["payOrder"]
            .clone();
    let otn7 = order7["outTradeNo"].as_str().unwrap().to_owned();
    wx.pay(&otn7);
    let (mut b, b_port) = replicas.remove(0);
    let to_b = format!("http://127.0.0.1:{b_port}/pay/wechat/JCWY/notify");
    let mut inflight = Vec::new();
    for _ in 0..10 {
        let n = wx.notification(&otn7, WxKey::Platform, now, None);
        let (wx, to_b) = (wx.clone(), to_b.clone());
        inflight.push(tokio::spawn(async move { wx.try_deliver(&to_b, &n).await }));
    }
    let booked = s.wait_until(|| async { s.scalar("SELECT count(*) FROM payments").await == 2 }).await;
    b.kill().unwrap();
    let _ = b.wait();
    assert!(booked, "replica B booked the second payment before it died");
    let _ = futures_util::future::join_all(inflight).await;
    let (_, c_port) = &replicas[0];
    for _ in 0..10 {
        let n = wx.notification(&otn7, WxKey::Platform, now, None);
        let (status, _) = wx.deliver(&format!("http://127.0.0.1:{c_port}/pay/wechat/JCWY/notify"), &n).await;
        assert_eq!(status, 204, "the last replica acknowledges what B booked");
    }
    assert_eq!(s.scalar("SELECT count(*) FROM payments").await, 2, "each payment booked once");
    for (mut r, _) in replicas {
        let _ = r.kill();
        let _ = r.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let paid: Decimal = sqlx::query_scalar("SELECT amount FROM payments ORDER BY received_at, id LIMIT 1")
        .fetch_one(&s.db)
        .await
        .unwrap();
    assert_eq!(paid.to_string(), order["amount"].as_str().unwrap(), "for the order's amount");
    let left = s.ok(Some(&o6), "{ myBills(first: 20, status: UNPAID) { edges { node { id } } } }", json!({})).await;
    assert!(left["myBills"]["edges"].as_array().unwrap().iter().all(|e| !ids.contains(&e["node"]["id"])), "{left}");
}
