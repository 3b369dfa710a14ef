//! The deployment topology as native processes: nginx with the shipped configuration
//! (`deploy/nginx/wuye.conf`, upstreams and port rewritten) in front of two replicas.
//! GraphQL and WebSocket subscriptions go through it, and a replica that goes away is
//! stepped around. (The Kubernetes manifests are checked by `deploy/test.sh` with
//! kubernetes-validate, and the shipped file with `nginx -t`.)

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use wuye_tests::{PASSWORD, TestServer, ws};

struct Nginx {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            eprintln!("nginx configuration:\n{}\nnginx error log:\n{}", read("wuye.conf"), read("error.log"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// nginx running the shipped server block in front of `upstreams`.
async fn nginx(upstreams: &[u16]) -> Nginx {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/nginx/wuye.conf")).unwrap();
    assert!(shipped.contains("server api-1:8080") && shipped.contains("listen 80;"), "the shape this test rewrites");
    let port = free_port();
    let servers: String =
        upstreams.iter().map(|p| format!("server 127.0.0.1:{p} max_fails=2 fail_timeout=5s;\n    ")).collect();
    let conf = shipped
        .replace("server api-1:8080 max_fails=2 fail_timeout=5s;\n    ", &servers)
        .replace("server api-2:8080 max_fails=2 fail_timeout=5s;\n", "\n")
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
    let dir = std::env::temp_dir().join(format!("wuye-nginx-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("wuye.conf"), conf).unwrap();
    let d = dir.display();
    let main = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\nevents {{ worker_connections 512; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         include {d}/wuye.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| std::path::Path::new(p).exists());
    let bin = bin.expect("nginx must be installed (deploy/test.sh installs it)");
    let child = Command::new(bin)
        .args(["-p", &d.to_string(), "-c", &format!("{d}/nginx.conf"), "-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let proxy = Nginx { child, dir, port };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return proxy;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nginx did not start: {}", std::fs::read_to_string(proxy.dir.join("error.log")).unwrap_or_default());
}

async fn post(http: &reqwest::Client, port: u16, token: Option<&str>, body: serde_json::Value) -> serde_json::Value {
    let mut req = http.post(format!("http://127.0.0.1:{port}/graphql")).json(&body);
    let body = body.to_string();
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    assert_eq!(status, 200, "{body}: {}", resp.text().await.unwrap_or_default());
    resp.json().await.unwrap()
}

#[tokio::test]
async fn nginx_in_front_of_two_replicas() {
    let a = TestServer::seeded().await;
    let b = a.replica().await;
    let proxy = nginx(&[a.addr.port(), b.addr.port()]).await;
    let http = reqwest::Client::new();
    let sign_in = |login: &str| {
        json!({
            "query": "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { accessToken } }",
            "variables": { "l": login, "p": PASSWORD }
        })
    };
    let r = post(&http, proxy.port, None, sign_in("admin")).await;
    let admin = r["data"]["signIn"]["accessToken"].as_str().unwrap().to_owned();
    let r = post(&http, proxy.port, None, sign_in("tech1")).await;
    let tech = r["data"]["signIn"]["accessToken"].as_str().unwrap().to_owned();

    // a subscription through the proxy (the WebSocket upgrade passes), fed by changes made
    // through the proxy on whichever replica takes them
    let url = format!("ws://127.0.0.1:{}/graphql/ws", proxy.port);
    let mut socket = ws::connect(&url, json!({ "accessToken": tech })).await.unwrap();
    ws::subscribe(&mut socket, "1", "subscription { accountEvents { kind } }").await;
    let me = post(&http, proxy.port, Some(&tech), json!({ "query": "{ me { user { id } } }" })).await;
    let tech_id = me["data"]["me"]["user"]["id"].clone();
    let roles = post(
        &http,
        proxy.port,
        Some(&admin),
        json!({ "query": "{ roles(first: 50) { edges { node { id code } } } }" }),
    )
    .await;
    let guard = roles["data"]["roles"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"]["code"] == "guard")
        .unwrap()["node"]["id"]
        .clone();
    let grant = json!({
        "query": "mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r, scope: COMPANY}) { assignment { id } } }",
        "variables": { "u": tech_id, "r": guard }
    });
    let mut msg = None;
    for _ in 0..20 {
        post(&http, proxy.port, Some(&admin), grant.clone()).await;
        msg = ws::next_json_within(&mut socket, Duration::from_millis(500)).await;
        if msg.is_some() {
            break;
        }
    }
    let msg = msg.expect("an event through the proxy");
    assert_eq!(msg["payload"]["data"]["accountEvents"]["kind"], "PERMISSIONS_CHANGED", "{msg}");

    // one replica goes away: every request still succeeds through the other
    drop(socket);
    drop(b);
    for _ in 0..10 {
        let r = post(&http, proxy.port, Some(&admin), json!({ "query": "{ me { user { id } } }" })).await;
        assert!(r.get("errors").is_none(), "{r}");
    }
}

/// The runbook's backup and restore, rehearsed: `deploy/backup.sh` of a live deployment,
/// `deploy/restore.sh` into an empty database and folder, and a server on the restored
/// copy sees the same rows and files. A database that is not empty is refused.
#[tokio::test]
async fn backup_and_restore_round_trip() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let (key, _) = s.upload_photo(&admin, "WORK_ORDER").await;
    let root = std::env::temp_dir().join(format!("wuye-backup-{}", uuid::Uuid::now_v7().simple()));
    let backup = root.join("backup");
    let script = |name: &str| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../deploy/{name}"));
    let url = s.state.config.database_url.clone();
    let files = s.state.config.storage_dir.clone();
    let out = Command::new("bash")
        .arg(script("backup.sh"))
        .arg(&backup)
        .env("WUYE_DATABASE_URL", &url)
        .env("WUYE_STORAGE_DIR", &files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let manifest = std::fs::read_to_string(backup.join("manifest.txt")).unwrap();
    assert!(manifest.contains("schema_version="), "{manifest}");

    // into an empty database next to the live one
    let (_, target) = empty_database().await;
    let restored_files = root.join("files");
    let restore = |db: &str| {
        Command::new("bash").arg(script("restore.sh")).arg(&backup).arg(db).arg(&restored_files).output().unwrap()
    };
    let out = restore(&target);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // a second restore into the now full database is refused
    let again = restore(&target);
    assert_eq!(again.status.code(), Some(3), "{}", String::from_utf8_lossy(&again.stderr));

    let count = |db: sqlx::PgPool| async move {
        let mut out = Vec::new();
        for t in ["users", "houses", "owners", "bills", "work_orders", "files", "audit_log", "_sqlx_migrations"] {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
                .fetch_one(&db)
                .await
                .unwrap();
            out.push((t, n));
        }
        out
    };
    let copy = sqlx::PgPool::connect(&target).await.unwrap();
    assert_eq!(count(copy.clone()).await, count(s.db.clone()).await);
    assert_eq!(std::fs::read(restored_files.join(&key)).unwrap(), std::fs::read(files.join(&key)).unwrap());
    copy.close().await;

    // a server on the restored copy: the same accounts sign in
    let mut config = (*s.state.config).clone();
    config.database_url = target;
    let restored = s.replica_with(config).await;
    let me = restored
        .ok(Some(&restored.sign_in("admin").await), "{ me { user { username } } }", serde_json::json!({}))
        .await;
    assert_eq!(me["me"]["user"]["username"], "admin");
    let _ = std::fs::remove_dir_all(&root);
}

/// A database with nothing in it.
async fn empty_database() -> (String, String) {
    use sqlx::Connection;
    let name = format!("wuye_t_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(&wuye_tests::admin_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let base = wuye_tests::admin_url();
    (name.clone(), format!("{}/{name}", &base[..base.rfind('/').unwrap()]))
}
