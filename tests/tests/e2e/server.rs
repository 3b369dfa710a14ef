//! Transport: limits, errors, health, metrics, schema drift, subscriptions, replicas.

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
    let ready: serde_json::Value = s.http.get(format!("{}/readyz", s.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready, json!({"postgres": true, "redis": true}));
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
    // the playground is served
    let page = s.http.get(format!("{}/graphql", s.url)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("graphiql"));
}

#[tokio::test]
async fn committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/schema.graphql")).unwrap();
    assert!(
        committed == wuye_api::graphql::sdl(),
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
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let tech_id = a.ok(Some(&tech), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].clone();
    let roles = a.ok(Some(&admin), "{ roles { id code } }", json!({})).await;
    let guard = roles["roles"].as_array().unwrap().iter().find(|r| r["code"] == "guard").unwrap()["id"].clone();
    a.ok(Some(&admin), "mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r, scope: COMPANY}) { assignment { id } } }", json!({"u": tech_id, "r": guard}))
        .await;
    let msg = ws::next_json(&mut socket).await.expect("an event");
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
    let mut cfg = wuye_api::Config { env: wuye_api::config::RunEnv::Production, ..Default::default() };
    assert!(cfg.check().is_err());
    cfg.jwt_secret = "a-very-long-production-secret-value-123456".to_owned().into();
    assert!(cfg.check().unwrap_err().to_string().contains("WUYE_DATA_KEY"));
    cfg.data_key = "cHJvZHVjdGlvbi1kYXRhLWtleS0zMi1ieXRlcy1sb25nIQ==".to_owned().into();
    assert!(cfg.check().unwrap_err().to_string().contains("SMS"));
}
