//! Transport: limits, errors, health, metrics, schema drift, subscriptions, replicas.

use std::time::Duration;

use serde_json::json;
use wuye_tests::{TestServer, code, ws};

#[tokio::test]
async fn too_large_body_gets_413() {
    let s = TestServer::start().await;
    let big = "x".repeat(s.state.config.limits.max_body_bytes + 1);
    let (status, body) =
        s.post(None, None, json!({"query": format!("{{ serviceConfig {{ maxBodyBytes }} }} # {big}")})).await;
    assert_eq!(status, 413);
    assert_eq!(code(&body), "VALIDATION");
    // also without a Content-Length (chunked)
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..20).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let resp = s
        .http
        .post(format!("{}/graphql", s.url))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
}

#[tokio::test]
async fn too_deep_and_malformed_queries_are_validation_errors() {
    let s = TestServer::start().await;
    let deep = format!("{{ {}__typename{} }}", "me { user { ".repeat(8), " } }".repeat(8));
    let r = s.gql(None, &deep, json!({})).await;
    assert_eq!(code(&r), "VALIDATION", "{r}");
    let r = s.gql(None, "{ nope }", json!({})).await;
    assert_eq!(code(&r), "VALIDATION");
    let (status, r) = s.post(None, None, json!("not an object")).await;
    assert_eq!(status, 400);
    assert_eq!(code(&r), "VALIDATION");
    let batch: Vec<_> = (0..11).map(|_| json!({"query": "{ serviceConfig { maxDepth } }"})).collect();
    let (status, _) = s.post(None, None, json!(batch)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn service_config_health_and_metrics() {
    let s = TestServer::start().await;
    let d = s.ok(None, "{ serviceConfig { maxBodyBytes maxQueryDepth maxPageSize passwordPolicy } }", json!({})).await;
    assert_eq!(d["serviceConfig"]["maxQueryDepth"], s.state.config.limits.max_depth);
    let (_, en) = s.post(None, Some("en"), json!({"query": "{ serviceConfig { passwordPolicy } }"})).await;
    assert!(en["data"]["serviceConfig"]["passwordPolicy"].as_str().unwrap().starts_with("8 to 64"));
    assert_eq!(s.http.get(format!("{}/healthz", s.url)).send().await.unwrap().status().as_u16(), 200);
    // ready once PostgreSQL, Redis and the broker answer (the broker connection is made in
    // the background)
    let readyz = |s: &TestServer| {
        let (http, url) = (s.http.clone(), format!("{}/readyz", s.url));
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    assert!(s.wait_until(|| async { readyz(&s).await.0 == 200 }).await);
    assert_eq!(readyz(&s).await.1, json!({"postgres": true, "redis": true, "broker": true}));
    // a replica that cannot reach the broker is alive but not ready
    let cut_off = TestServer::start_with(|c| c.mqtt_url = "mqtt://127.0.0.1:1".into()).await;
    assert_eq!(cut_off.http.get(format!("{}/healthz", cut_off.url)).send().await.unwrap().status().as_u16(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(readyz(&cut_off).await, (503, json!({"postgres": true, "redis": true, "broker": false})));
    s.post(
        None,
        None,
        json!({"query": "query MetricsProbe { serviceConfig { maxDepth } }", "operationName": "MetricsProbe"}),
    )
    .await;
    s.gql(None, "{ me { user { id } } }", json!({})).await;
    let m = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("graphql_requests_total{operation=\"MetricsProbe\"}"), "{m}");
    assert!(m.contains("graphql_request_duration_seconds_bucket{operation=\"MetricsProbe\""));
    assert!(m.contains("graphql_errors_total{code=\"UNAUTHENTICATED\"}"));
}

#[tokio::test]
async fn the_playground_and_its_assets_come_from_the_binary() {
    let s = TestServer::start().await;
    let page = s.http.get(format!("{}/graphql", s.url)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200, "deploy/playground.sh bundles the playground before the build");
    let html = page.text().await.unwrap();
    assert!(html.contains("/graphql/assets/playground.js"), "{html}");
    assert!(!html.contains("http://") && !html.contains("https://"), "the page names no other host: {html}");
    let js = s.http.get(format!("{}/graphql/assets/playground.js", s.url)).send().await.unwrap();
    assert_eq!(js.status().as_u16(), 200);
    assert_eq!(js.headers()["x-content-type-options"], "nosniff");
    assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(js.bytes().await.unwrap().len() > 100_000, "GraphiQL and React are in the bundle");
    let css = s.http.get(format!("{}/graphql/assets/playground.css", s.url)).send().await.unwrap();
    assert_eq!(css.status().as_u16(), 200);
    let missing = s.http.get(format!("{}/graphql/assets/other.js", s.url)).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

/// What GraphiQL, Apollo codegen and schema tools send (graphql-js `getIntrospectionQuery()`).
const INTROSPECTION: &str = r#"query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}"#;

#[tokio::test]
async fn the_standard_introspection_query_is_answered_for_staff_only_in_production() {
    let dev = TestServer::seeded().await;
    let r = dev.gql(None, INTROSPECTION, json!({})).await;
    assert!(r["data"]["__schema"]["types"].as_array().is_some_and(|t| t.len() > 50), "development: {r}");

    let prod = TestServer::seeded_with(|c| c.env = wuye_api::kit::config::RunEnv::Production).await;
    let r = prod.gql(None, INTROSPECTION, json!({})).await;
    assert!(r["data"].is_null() || r["data"]["__schema"].is_null(), "anonymous in production: {r}");
    assert!(r["errors"].is_array(), "{r}");
    let tech = prod.sign_in_playground("tech1").await;
    let r = prod.gql(Some(&tech), INTROSPECTION, json!({})).await;
    assert!(r["errors"].is_array(), "staff without schema:read: {r}");
    // a staff-app session may not send it at all (ad-hoc documents are the playground's)
    let app = prod.sign_in("admin").await;
    assert_eq!(wuye_tests::reason(&prod.gql(Some(&app), INTROSPECTION, json!({})).await), "PERSISTED_QUERY_ONLY");
    let admin = prod.sign_in_playground("admin").await;
    let r = prod.gql(Some(&admin), INTROSPECTION, json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert!(r["data"]["__schema"]["queryType"]["name"] == "Query");
    let houses = r["data"]["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Query")
        .and_then(|q| q["fields"].as_array().cloned())
        .unwrap_or_default();
    assert!(houses.iter().any(|f| f["name"] == "houses" && f["description"].is_string()));
    // introspection cannot carry data past the depth limit: a query that mixes the two is a
    // data query, answered under the data limit, and refused when its data nests too deep
    let r =
        prod.gql(Some(&admin), "{ __schema { queryType { name } } serviceConfig { maxQueryDepth } }", json!({})).await;
    assert!(r["data"]["serviceConfig"]["maxQueryDepth"].is_number(), "{r}");
    let mixed =
        format!("{{ __schema {{ queryType {{ name }} }} {}__typename{} }}", "me { user { ".repeat(8), " } }".repeat(8));
    assert_eq!(code(&prod.gql(Some(&admin), &mixed, json!({})).await), "VALIDATION");
    // and a data query as deep as the introspection query is still refused
    let deep = format!("{{ {}__typename{} }}", "me { user { ".repeat(8), " } }".repeat(8));
    assert_eq!(code(&prod.gql(Some(&admin), &deep, json!({})).await), "VALIDATION");
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let s = TestServer::start().await;
    let resp = s
        .http
        .post(format!("{}/graphql", s.url))
        .header("x-request-id", "app-7f3a-01")
        .json(&json!({"query": "{ serviceConfig { maxDepth } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "app-7f3a-01");
    let resp = s
        .http
        .post(format!("{}/graphql", s.url))
        .header("x-request-id", "not ok")
        .json(&json!({"query": "{ serviceConfig { maxDepth } }"}))
        .send()
        .await
        .unwrap();
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 32, "a fresh id replaces an unusable one: {made}");
}

#[tokio::test]
async fn committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/schema.graphql")).unwrap();
    assert!(
        committed == wuye_api::http::sdl(),
        "schema/schema.graphql is stale: run `cargo run -p wuye-api -- export-schema`"
    );
}

#[tokio::test]
async fn subscription_needs_a_token_and_delivers_across_replicas() {
    let a = TestServer::seeded().await;
    let b = a.replica().await;
    // no token: connection refused
    assert!(ws::connect(&b.ws_url(), json!({})).await.is_ok(), "anonymous connections are allowed");
    let mut anon = ws::connect(&b.ws_url(), json!({})).await.unwrap();
    ws::subscribe(&mut anon, "1", "subscription { accountEvents { kind } }").await;
    let msg = ws::next_json(&mut anon).await.unwrap();
    assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{msg}");
    assert!(ws::connect(&b.ws_url(), json!({"accessToken": "forged"})).await.is_err());

    // tech1 listens on replica B; the admin changes their roles on replica A
    let tech = b.sign_in("tech1").await;
    let admin = a.sign_in("admin").await;
    let projects = a.ok(Some(&admin), "{ projects(search: \"TFGJ\") { edges { node { id } } } }", json!({})).await;
    let tower = projects["projects"]["edges"][0]["node"]["id"].clone();
    // B caches tech1's actor: the tower is out of scope
    let r = b
        .gql(
            Some(&tech),
            "query($p: ID) { houses(projectId: $p, first: 1) { edges { node { id } } } }",
            json!({"p": tower}),
        )
        .await;
    assert_eq!(code(&r), "FORBIDDEN");
    let mut socket = ws::connect(&b.ws_url(), json!({"accessToken": tech})).await.unwrap();
    ws::subscribe(&mut socket, "1", "subscription { accountEvents { kind at } }").await;
    let tech_id = a.ok(Some(&tech), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].clone();
    let roles = a.ok(Some(&admin), "{ roles(first: 50) { edges { node { id code } } } }", json!({})).await;
    let guard = roles["roles"]["edges"].as_array().unwrap().iter().find(|r| r["node"]["code"] == "guard").unwrap()["node"]
        ["id"]
        .clone();
    // the subscription is live once an event arrives: grant (an idempotent upsert) until one does
    let mut msg = None;
    for _ in 0..20 {
        a.ok(
            Some(&admin),
            "mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r, scope: COMPANY}) { assignment { id } } }",
            json!({"u": tech_id, "r": guard}),
        )
        .await;
        msg = ws::next_json_within(&mut socket, std::time::Duration::from_millis(500)).await;
        if msg.is_some() {
            break;
        }
    }
    let msg = msg.expect("an event");
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(msg["payload"]["data"]["accountEvents"]["kind"], "PERMISSIONS_CHANGED");
    // replica B sees the wider scope at once: its cached actor was invalidated by the event
    let r = b
        .gql(
            Some(&tech),
            "query($p: ID) { houses(projectId: $p, first: 1) { edges { node { id } } } }",
            json!({"p": tower}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
}

#[tokio::test]
async fn startup_fails_cleanly_when_a_service_is_unreachable() {
    let cfg = wuye_api::Config { database_url: "postgres://postgres@127.0.0.1:1/wuye".into(), ..Default::default() };
    let err = wuye_api::App::build_default(cfg).await.err().expect("must fail");
    let text = err.to_string();
    assert!(text.contains("cannot reach PostgreSQL at postgres://postgres@127.0.0.1:1/wuye"), "{text}");
    assert!(text.contains("pg_ctlcluster"));
    let cfg = wuye_api::Config {
        database_url: wuye_tests::admin_url(),
        redis_url: "redis://127.0.0.1:1".into(),
        ..Default::default()
    };
    let err = wuye_api::App::build_default(cfg).await.err().expect("must fail");
    assert!(err.to_string().contains("cannot reach Redis at redis://127.0.0.1:1"), "{err}");
}

#[tokio::test]
async fn production_refuses_development_secrets() {
    let mut cfg = wuye_api::Config { env: wuye_api::kit::config::RunEnv::Production, ..Default::default() };
    assert!(cfg.check().is_err());
    cfg.jwt_secret = "a-very-long-production-secret-value-123456".to_owned().into();
    assert!(cfg.check().unwrap_err().to_string().contains("WUYE_DATA_KEY"));
    cfg.data_key = "cHJvZHVjdGlvbi1kYXRhLWtleS0zMi1ieXRlcy1sb25nIQ==".to_owned().into();
    assert!(cfg.check().unwrap_err().to_string().contains("SMS"));
    cfg.sms.provider = "aliyun".into();
    // alarms would be dropped silently by the development push sender
    assert!(cfg.check().unwrap_err().to_string().contains("push"));
    cfg.push.jpush_app_key = Some("appkey".into());
    // an anonymous broker lets anyone fake a trapped passenger or open a door
    assert!(cfg.check().unwrap_err().to_string().contains("WUYE_MQTT_URL"));
    cfg.mqtt_url = "mqtt://wuye-api:s3cret@broker:1883".into();
    assert!(cfg.check().is_ok());
}

#[tokio::test]
async fn a_development_server_listens_only_on_loopback() {
    let cfg = wuye_api::Config::default();
    assert!(cfg.check_listen("127.0.0.1:8080".parse().unwrap()).is_ok());
    assert!(cfg.check_listen("[::1]:8080".parse().unwrap()).is_ok());
    let err = cfg.check_listen("0.0.0.0:8080".parse().unwrap()).unwrap_err().to_string();
    assert!(err.contains("WUYE_ALLOW_NON_LOOPBACK"), "{err}");
    let open = wuye_api::Config { allow_non_loopback: true, ..Default::default() };
    assert!(open.check_listen("0.0.0.0:8080".parse().unwrap()).is_ok());
    let prod = wuye_api::Config { env: wuye_api::kit::config::RunEnv::Production, ..Default::default() };
    assert!(prod.check_listen("0.0.0.0:8080".parse().unwrap()).is_ok());
}

/// `database_replica_url`: reports read from the replica's pool, whose sessions are
/// read-only whatever the URL says; `database_statement_timeout_secs` cancels long statements;
/// sessions run without JIT compilation.
#[tokio::test]
async fn replica_pool_is_read_only_and_statements_time_out() {
    let primary = TestServer::seeded().await;
    // the "replica" here is the same database: what matters is that the pool cannot write
    let mut config = (*primary.state.config).clone();
    config.database_replica_url = Some(config.database_url.clone());
    config.database_statement_timeout_secs = 1;
    let s = primary.replica_with(config).await;
    assert!(!std::ptr::eq(s.state.reads(), &s.state.db), "the replica pool is in use");
    let write = sqlx::query("CREATE TABLE replica_probe (a int)").execute(s.state.reads()).await.unwrap_err();
    assert!(write.to_string().contains("read-only"), "{write}");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM houses").fetch_one(s.state.reads()).await.unwrap();
    assert!(n > 0);
    // a report through the API reads from it
    let admin = s.sign_in("finance1").await;
    let p = s.ok(Some(&admin), "{ projects(first: 1) { edges { node { id } } } }", json!({})).await;
    let project = p["projects"]["edges"][0]["node"]["id"].clone();
    let r =
        s.ok(Some(&admin), "query($p: ID!) { arrearsReport(projectId: $p) { asOf } }", json!({ "p": project })).await;
    assert!(r["arrearsReport"]["asOf"].is_string(), "{r}");
    // statements are cut off after the configured time, on both pools, and never JIT-compiled
    for pool in [&s.state.db, s.state.reads()] {
        let jit: String = sqlx::query_scalar("SHOW jit").fetch_one(pool).await.unwrap();
        assert_eq!(jit, "off");
        let slow = sqlx::query("SELECT pg_sleep(3)").execute(pool).await.unwrap_err();
        assert!(slow.to_string().contains("statement timeout"), "{slow}");
    }
}

/// A Redis that goes silent without closing anything (a network cut): the event bus stops
/// counting itself live within its heartbeat's silence limit (caches kept by events are
/// dropped), and subscribes again once the network heals; events flow again.
#[tokio::test]
async fn the_event_bus_notices_a_silent_redis_and_subscribes_again() {
    use wuye_api::kit::events::Event;
    let redis = std::env::var("WUYE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let cut = wuye_tests::netcut::NetCut::start(redis.trim_start_matches("redis://").trim_end_matches('/')).await;
    let s = TestServer::start_with(|c| {
        c.redis_url = format!("redis://127.0.0.1:{}", cut.port);
        c.redis_cluster_nodes = Vec::new();
        // a beat a second: given up after 6 s of silence (30 s in production)
        c.event_bus_heartbeat_secs = 1;
    })
    .await;
    let bus = s.state.events.clone();
    tokio::time::timeout(Duration::from_secs(10), bus.ready()).await.expect("subscribed");
    let until = |live: bool| {
        let mut rx = bus.liveness();
        async move { tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|l| *l == live)).await.is_ok() }
    };
    cut.freeze();
    assert!(until(false).await, "the silent subscription was given up");
    cut.thaw();
    assert!(until(true).await, "subscribed again once the network healed");
    let mut rx = bus.subscribe();
    let ev = Event { user_id: None, kind: "TEST_AFTER_CUT".into(), payload: json!({}) };
    bus.publish(&ev).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(e) = rx.recv().await
                && e.kind == "TEST_AFTER_CUT"
            {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "events flow again");
}
