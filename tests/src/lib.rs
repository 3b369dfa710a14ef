//! Test harness: starts the real server on 127.0.0.1:0 against a fresh PostgreSQL
//! database, its own Redis key prefix and a temporary file store, and drives it over
//! HTTP and WebSocket like the apps do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use redis::AsyncCommands;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;
use wuye_api::kit::clock::SystemClock;
use wuye_api::{App, AppState, Config};

pub mod broker;
pub mod fakes;
pub mod netcut;
pub mod payfakes;
pub mod redis_cluster;

pub const PASSWORD: &str = wuye_api::onboarding::seed::DEMO_PASSWORD;

pub fn admin_url() -> String {
    std::env::var("WUYE_TEST_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub clock: Arc<SystemClock>,
    pub db: PgPool,
    pub db_name: String,
    shutdown: watch::Sender<bool>,
    _files: TempDir,
}

/// A folder removed when the test ends.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, migrated database.
pub async fn fresh_database() -> (String, String) {
    let name = format!("wuye_t_{}", Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&admin_url()).await.expect("PostgreSQL must run (deploy/test.sh starts it)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let base = admin_url();
    let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
    let pool = PgPool::connect(&url).await.unwrap();
    wuye_api::app::migrate(&pool).await.unwrap();
    pool.close().await;
    (name, url)
}

/// Test configuration: real services, a unique Redis prefix, cheap argon2 (the rules do
/// not depend on its cost; the benchmark uses the production parameters).
pub fn test_config(database_url: &str, files: &std::path::Path) -> Config {
    let mut c = Config {
        database_url: database_url.to_owned(),
        database_max_connections: 10,
        redis_url: std::env::var("WUYE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        // a cluster's seed nodes, comma-separated: the suite against Redis Cluster
        // (deploy/test-redis-cluster.sh)
        redis_cluster_nodes: std::env::var("WUYE_TEST_REDIS_CLUSTER")
            .map(|v| v.split(',').filter(|n| !n.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default(),
        redis_prefix: format!("t:{}:", Uuid::now_v7().simple()),
        storage_dir: files.to_path_buf(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        mqtt_url: std::env::var("WUYE_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into()),
        mqtt_topic_root: format!("t{}", Uuid::now_v7().simple()),
        mqtt_client_prefix: format!("wuye-test-{}", Uuid::now_v7().simple()),
        mqtt_clean_session: true,
        ..Config::default()
    };
    c.auth.argon2_memory_kib = 4096;
    c.auth.argon2_iterations = 1;
    c.iot.jobs_interval_ms = 200;
    // the scheduler's jobs (offline sweep, escalation, maintenance) only where a test needs them
    c.iot.jobs = false;
    c.iot.ingest_slots = 1;
    c.iot.ingest_workers = 2;
    c
}

impl TestServer {
    /// A server over an empty database.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server over the demo estate (`wuye seed-demo`).
    pub async fn seeded() -> TestServer {
        Self::seeded_with(|_| {}).await
    }

    pub async fn seeded_with(f: impl FnOnce(&mut Config)) -> TestServer {
        let s = Self::start_with(f).await;
        wuye_api::onboarding::seed::seed_demo(&s.state, false).await.unwrap();
        s
    }

    pub async fn start_with(f: impl FnOnce(&mut Config)) -> TestServer {
        let (db_name, url) = fresh_database().await;
        let files = TempDir(std::env::temp_dir().join(format!("wuye-files-{}", Uuid::now_v7().simple())));
        let mut config = test_config(&url, &files.0);
        f(&mut config);
        Self::start_on(config, db_name, files).await
    }

    /// Another server on an existing database and Redis prefix (a second replica).
    pub async fn replica(&self) -> TestServer {
        self.replica_with((*self.state.config).clone()).await
    }

    /// A second replica with its own configuration (same database and Redis prefix).
    pub async fn replica_with(&self, mut config: Config) -> TestServer {
        let files = TempDir(std::env::temp_dir().join(format!("wuye-files-{}", Uuid::now_v7().simple())));
        config.storage_dir = files.0.clone();
        Self::start_on(config, self.db_name.clone(), files).await
    }

    async fn start_on(config: Config, db_name: String, files: TempDir) -> TestServer {
        let clock = Arc::new(SystemClock::default());
        let app = App::build(config, clock.clone()).await.unwrap();
        let state = app.state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            app.serve(listener, rx).await.unwrap();
        });
        let db = state.db.clone();
        let s = TestServer {
            addr,
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
            state,
            clock,
            db,
            db_name,
            shutdown: tx,
            _files: files,
        };
        // the event bus subscribes in the background: subscriptions and cache invalidation
        // need it live before the test starts
        tokio::time::timeout(std::time::Duration::from_secs(10), s.state.events.ready())
            .await
            .expect("the event bus subscribes to Redis");
        s
    }

    pub async fn post(&self, token: Option<&str>, lang: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}/graphql", self.url)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(l) = lang {
            req = req.header("accept-language", l);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Runs an operation; returns the whole response (data and errors).
    pub async fn gql(&self, token: Option<&str>, query: &str, vars: Value) -> Value {
        self.post(token, None, json!({ "query": query, "variables": vars })).await.1
    }

    /// Runs an operation that must succeed; returns `data`.
    pub async fn ok(&self, token: Option<&str>, query: &str, vars: Value) -> Value {
        let r = self.gql(token, query, vars).await;
        assert!(r.get("errors").is_none(), "unexpected errors: {r}\nquery: {query}");
        r["data"].clone()
    }

    pub async fn sign_in_pair(&self, login: &str, password: &str) -> (String, String) {
        let d = self
            .ok(
                None,
                "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { accessToken refreshToken } }",
                json!({ "l": login, "p": password }),
            )
            .await;
        (
            d["signIn"]["accessToken"].as_str().unwrap().to_owned(),
            d["signIn"]["refreshToken"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn sign_in(&self, login: &str) -> String {
        self.sign_in_pair(login, PASSWORD).await.0
    }

    /// A playground session (ad-hoc queries in production for staff with `schema:read`).
    pub async fn sign_in_playground(&self, login: &str) -> String {
        let q = "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p, client: PLAYGROUND}) { accessToken } }";
        let d = self.ok(None, q, json!({ "l": login, "p": PASSWORD })).await;
        d["signIn"]["accessToken"].as_str().unwrap().to_owned()
    }

    pub fn key(&self, k: &str) -> String {
        format!("{}{k}", self.state.config.redis_prefix)
    }

    pub async fn redis_get(&self, k: &str) -> Option<String> {
        let mut c = self.state.redis.clone();
        c.get(self.key(k)).await.unwrap()
    }

    /// A field of a Redis hash under this server's prefix.
    pub async fn redis_get_hash_field(&self, k: &str, field: &str) -> Option<String> {
        let mut c = self.state.redis.clone();
        c.hget(self.key(k), field).await.unwrap()
    }

    /// The newest code the development SMS sender recorded for a phone.
    /// Codes are sent off the request path: waits (up to 10 s) for one to be recorded.
    pub async fn last_sms_code(&self, phone: &str) -> Option<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let msgs = wuye_api::notify::sms::dev_messages(&self.state.redis, &self.state.config.redis_prefix, phone)
                .await
                .unwrap();
            let code = msgs.first().and_then(|m| m.params.get("code")).and_then(|c| c.as_str()).map(str::to_owned);
            if code.is_some() || std::time::Instant::now() > deadline {
                return code;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Waits (up to 10 s) until `want` messages were recorded for a phone; returns the count.
    pub async fn wait_sms_count(&self, phone: &str, want: usize) -> usize {
        let mut got = self.sms_count(phone).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while got < want && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            got = self.sms_count(phone).await;
        }
        got
    }

    pub async fn sms_count(&self, phone: &str) -> usize {
        wuye_api::notify::sms::dev_messages(&self.state.redis, &self.state.config.redis_prefix, phone)
            .await
            .unwrap()
            .len()
    }

    pub async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&self.db).await.unwrap()
    }

    /// What the development push sender recorded for a token.
    pub async fn pushes(&self, token: &str) -> Vec<wuye_api::notify::push::PushMessage> {
        wuye_api::notify::push::dev_pushes(&self.state.redis, &self.state.config.redis_prefix, token).await.unwrap()
    }

    /// Moves this server's clock forward (token expiry, schedules, offline detection).
    pub fn advance(&self, secs: i64) {
        self.clock.advance(secs);
    }

    /// The id of the company's role with this code, as `token` (who holds `role:read`) sees it.
    pub async fn role_id(&self, token: &str, code: &str) -> Value {
        let roles = self.ok(Some(token), "{ roles(first: 50) { edges { node { id code } } } }", json!({})).await;
        roles["roles"]["edges"].as_array().unwrap().iter().find(|r| r["node"]["code"] == code).unwrap()["node"]["id"]
            .clone()
    }

    /// Waits (up to 10 s) until `check` holds; returns whether it did.
    pub async fn wait_until<F, Fut>(&self, mut check: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if check().await {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// Waits (up to 10 s) until `sql` returns `want`.
    pub async fn wait_for(&self, sql: &'static str, want: i64) -> i64 {
        let mut got = -1;
        for _ in 0..200 {
            got = self.scalar(sql).await;
            if got == want {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        got
    }

    /// Publishes like a device: QoS 1 under this server's topic root, waits for the PUBACK.
    pub async fn mqtt_publish(&self, topic: &str, payload: &[u8]) {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
        let mut opts = MqttOptions::new(format!("dev-{}", Uuid::now_v7().simple()), "127.0.0.1", 1883);
        opts.set_keep_alive(std::time::Duration::from_secs(5));
        let (client, mut events) = AsyncClient::new(opts, 10);
        let full = format!("{}/{topic}", self.state.config.mqtt_topic_root);
        client.publish(full, QoS::AtLeastOnce, false, payload.to_vec()).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Event::Incoming(Packet::PubAck(_))) = events.poll().await {
                break;
            }
        }
        let _ = client.disconnect().await;
    }

    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use wuye_api::kit::clock::Clock;
        self.clock.now()
    }

    /// Uploads a small JPEG as a private file (`uploadFile`); returns (key, signed url).
    pub async fn upload_photo(&self, token: &str, purpose: &str) -> (String, String) {
        let ops = json!({
            "query": "mutation($f: Upload!, $p: FilePurpose!) { uploadFile(input: {file: $f, purpose: $p}) { key url } }",
            "variables": {"f": null, "p": purpose}
        });
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
        bytes.extend_from_slice(format!("photo {}", Uuid::now_v7()).as_bytes());
        let form = reqwest::multipart::Form::new()
            .text("operations", ops.to_string())
            .text("map", r#"{"0": ["variables.f"]}"#)
            .part("0", reqwest::multipart::Part::bytes(bytes).file_name("photo.jpg"));
        let r: Value = self
            .http
            .post(format!("{}/graphql", self.url))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let d = &r["data"]["uploadFile"];
        assert!(d["key"].is_string(), "upload failed: {r}");
        (d["key"].as_str().unwrap().to_owned(), d["url"].as_str().unwrap().to_owned())
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// The first error's `extensions.code`.
pub fn code(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

pub fn field(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["field"].as_str().unwrap_or("")
}

pub fn reason(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["reason"].as_str().unwrap_or("")
}

pub fn message(resp: &Value) -> &str {
    resp["errors"][0]["message"].as_str().unwrap_or("")
}

/// A minimal graphql-transport-ws client.
pub mod ws {
    use futures_util::{SinkExt, StreamExt};
    use serde_json::{Value, json};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    pub async fn connect(url: &str, init: Value) -> Result<Socket, String> {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(req).await.map_err(|e| e.to_string())?;
        socket.send(Message::text(json!({ "type": "connection_init", "payload": init }).to_string())).await.unwrap();
        match next_json(&mut socket).await {
            Some(v) if v["type"] == "connection_ack" => Ok(socket),
            other => Err(format!("{other:?}")),
        }
    }

    pub async fn subscribe(socket: &mut Socket, id: &str, query: &str) {
        socket
            .send(Message::text(json!({ "id": id, "type": "subscribe", "payload": { "query": query } }).to_string()))
            .await
            .unwrap();
    }

    pub async fn send(socket: &mut Socket, msg: Value) {
        socket.send(Message::text(msg.to_string())).await.unwrap();
    }

    /// The close code the server ends the connection with within `wait` (messages before it
    /// are skipped); `None` if it stays open that long.
    pub async fn closed_within(socket: &mut Socket, wait: std::time::Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, socket.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(1006),
                Ok(Some(Ok(Message::Close(frame)))) => return Some(frame.map(|f| u16::from(f.code)).unwrap_or(1005)),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next JSON message, or None when the socket closed or 5 s passed.
    pub async fn next_json(socket: &mut Socket) -> Option<Value> {
        next_json_within(socket, std::time::Duration::from_secs(5)).await
    }

    /// The next JSON message (pings skipped), or None when the socket closed or `wait` passed.
    pub async fn next_json_within(socket: &mut Socket, wait: std::time::Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, socket.next()).await.ok()??.ok()?;
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).ok()?;
                    if v["type"] == "ping" {
                        continue;
                    }
                    return Some(v);
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }
}
