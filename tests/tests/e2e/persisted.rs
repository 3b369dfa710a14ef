//! Persisted operations: tokens say which app they were issued to; with `persisted_only`
//! (production) the owner and staff apps may send only their manifest's operations, by
//! hash or by text, and the playground keeps ad-hoc queries for managers. The committed
//! manifests are what `schema/operations/` makes.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};
use wuye_api::http::persisted::{MANIFESTS, Manifest, build_manifest};
use wuye_tests::{PASSWORD, TestServer, code, field, reason, ws};

/// name → (hash, body) for one manifest file.
fn manifest(file: &str) -> HashMap<String, (String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../schema/persisted/{file}.json"));
    let m: Manifest = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    m.operations.into_iter().map(|o| (o.name, (o.id, o.body))).collect()
}

fn by_hash(hash: &str, vars: Value) -> Value {
    json!({ "variables": vars, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } })
}

async fn sign_in(s: &TestServer, login: &str, client: Option<&str>) -> (String, String) {
    let (hash, _) = &manifest("staff")["SignIn"];
    let (_, r) =
        s.post(None, None, by_hash(hash, json!({ "login": login, "password": PASSWORD, "client": client }))).await;
    assert!(r.get("errors").is_none(), "{r}");
    (
        r["data"]["signIn"]["accessToken"].as_str().unwrap().to_owned(),
        r["data"]["signIn"]["refreshToken"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn committed_manifests_match_the_operations() {
    let ops = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/operations");
    for (file, _, folders) in MANIFESTS {
        let built = build_manifest(&ops, folders).unwrap();
        let path = ops.join(format!("../persisted/{file}.json"));
        let committed: Manifest = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(committed == built, "{} is stale: run `cargo run -p wuye-api -- export-schema`", path.display());
        assert_eq!(built.format, "apollo-persisted-query-manifest");
        for op in &built.operations {
            assert_eq!(op.id.len(), 64, "{}: a SHA-256 in hex", op.name);
        }
    }
    // every app can sign in, refresh and sign out from its own manifest
    for file in ["owner", "staff"] {
        let m = manifest(file);
        for op in ["SignIn", "RefreshToken", "SignOut", "Me", "MarkNotificationsRead", "UploadFile"] {
            assert!(m.contains_key(op), "{file} lacks {op}");
        }
    }
}

#[tokio::test]
async fn apps_send_only_their_manifest_in_production() {
    let s = TestServer::seeded_with(|c| c.limits.persisted_only = Some(true)).await;
    let owner_ops = manifest("owner");
    let staff_ops = manifest("staff");

    // callers without a token may send anything (only sign-in fields answer them)
    let anon = s.gql(None, "{ serviceConfig { environment } }", json!({})).await;
    assert!(anon.get("errors").is_none(), "{anon}");

    // the owner app: its manifest by hash, with no text at all
    let (owner, owner_refresh) = sign_in(&s, "13800000006", None).await;
    let (_, r) = s.post(Some(&owner), None, by_hash(&owner_ops["MyHouses"].0, json!({}))).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert!(!r["data"]["myHouses"].as_array().unwrap().is_empty());
    // ... or by text, which is the same operation
    let (_, r) = s.post(Some(&owner), None, json!({ "query": owner_ops["MyHouses"].1 })).await;
    assert!(r.get("errors").is_none(), "{r}");
    // an ad-hoc query from an owner token is refused, and so is one alias more
    let r = s.gql(Some(&owner), "{ me { user { id phone } } }", json!({})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    assert_eq!(reason(&r), "PERSISTED_QUERY_ONLY");
    let text = owner_ops["MyHouses"].1.replacen("myHouses", "a: myHouses", 1);
    let r = s.gql(Some(&owner), &text, json!({})).await;
    assert_eq!(reason(&r), "PERSISTED_QUERY_ONLY", "{r}");
    // the staff app's operations are not the owner app's
    let (_, r) = s.post(Some(&owner), None, by_hash(&staff_ops["WorkOrderPool"].0, json!({}))).await;
    assert_eq!(reason(&r), "PERSISTED_QUERY_ONLY", "{r}");
    // a hash nobody knows, and a hash that is not the text's
    let (_, r) = s.post(Some(&owner), None, by_hash(&"0".repeat(64), json!({}))).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let mut forged = by_hash(&owner_ops["MyHouses"].0, json!({}));
    forged["query"] = json!("{ me { user { id } } }");
    let (_, r) = s.post(Some(&owner), None, forged).await;
    assert_eq!(code(&r), "VALIDATION", "{r}");
    assert_eq!(field(&r), "extensions.persistedQuery.sha256Hash");
    // one ad-hoc entry refuses the whole batch
    let batch = json!([by_hash(&owner_ops["MyHouses"].0, json!({})), { "query": "{ me { user { id } } }" }]);
    let (_, r) = s.post(Some(&owner), None, batch).await;
    assert_eq!(reason(&r), "PERSISTED_QUERY_ONLY", "{r}");
    // an owner account cannot open a playground session
    let (hash, _) = &owner_ops["SignIn"];
    let (_, r) = s
        .post(
            None,
            None,
            by_hash(hash, json!({ "login": "13800000006", "password": PASSWORD, "client": "PLAYGROUND" })),
        )
        .await;
    assert_eq!(code(&r), "VALIDATION", "{r}");
    assert_eq!(field(&r), "client");
    // a refreshed session stays the owner app's
    let (hash, _) = &owner_ops["RefreshToken"];
    let (_, r) = s.post(None, None, by_hash(hash, json!({ "refreshToken": owner_refresh }))).await;
    let refreshed = r["data"]["refreshToken"]["accessToken"].as_str().unwrap().to_owned();
    let r = s.gql(Some(&refreshed), "{ me { user { id } } }", json!({})).await;
    assert_eq!(reason(&r), "PERSISTED_QUERY_ONLY", "{r}");

    // the staff app: its own manifest, no ad-hoc queries, nothing of the managers'
    let (tech, _) = sign_in(&s, "tech1", None).await;
    let (_, r) = s.post(Some(&tech), None, by_hash(&staff_ops["WorkOrderPool"].0, json!({ "first": 5 }))).await;
    assert!(r.get("errors").is_none(), "{r}");
    let r = s.gql(Some(&tech), "{ workOrders(pool: true) { edges { node { id } } } }", json!({})).await;
    assert_eq!(reason(&r), "PERSISTED_QUERY_ONLY", "{r}");
    let manager_ops = manifest("manager");
    let (_, r) = s.post(Some(&tech), None, by_hash(&manager_ops["Houses"].0, json!({}))).await;
    assert_eq!(reason(&r), "PERSISTED_QUERY_ONLY", "{r}");
    // a staff account cannot open an owner-app session
    let (_, r) = s
        .post(
            None,
            None,
            by_hash(&staff_ops["SignIn"].0, json!({ "login": "tech1", "password": PASSWORD, "client": "OWNER" })),
        )
        .await;
    assert_eq!(field(&r), "client", "{r}");

    // a member of staff who also owns a flat may open an owner-app session
    let (_, me) = s.post(Some(&tech), None, by_hash(&staff_ops["Me"].0, json!({}))).await;
    let phone = me["data"]["me"]["user"]["phone"].as_str().unwrap().to_owned();
    let (app_admin, _) = sign_in(&s, "admin", Some("PLAYGROUND")).await;
    let register =
        "mutation($p: String!) { registerOwner(input: {name: \"维修工兼业主\", phone: $p}) { owner { id } } }";
    s.ok(Some(&app_admin), register, json!({ "p": phone })).await;
    let (tech_owner, _) = sign_in(&s, "tech1", Some("OWNER")).await;
    let (_, r) = s.post(Some(&tech_owner), None, by_hash(&owner_ops["MyHouses"].0, json!({}))).await;
    assert!(r.get("errors").is_none(), "{r}");

    // the playground: ad-hoc queries for staff who may read the schema
    let (manager, _) = sign_in(&s, "manager", Some("PLAYGROUND")).await;
    let r = s.gql(Some(&manager), "{ me { user { id } } houses(first: 1) { edges { node { id } } } }", json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");
    // a playground token without `schema:read` keeps to the manifests
    let (tech_pg, _) = sign_in(&s, "tech1", Some("PLAYGROUND")).await;
    let r = s.gql(Some(&tech_pg), "{ me { user { id } } }", json!({})).await;
    assert_eq!(reason(&r), "PERSISTED_QUERY_ONLY", "{r}");
    let (_, r) = s.post(Some(&tech_pg), None, by_hash(&staff_ops["Me"].0, json!({}))).await;
    assert!(r.get("errors").is_none(), "{r}");

    // over the WebSocket: an ad-hoc subscription from the owner app is refused, the
    // manifest's is accepted
    let mut socket = ws::connect(&s.ws_url(), json!({ "accessToken": owner })).await.unwrap();
    ws::subscribe(&mut socket, "1", "subscription { workOrderChanged { id state } }").await;
    let msg = ws::next_json(&mut socket).await.unwrap();
    assert!(msg["type"] == "error" || msg["payload"]["data"].is_null(), "{msg}");
    assert!(msg.to_string().contains("PERSISTED_QUERY_ONLY"), "{msg}");
    let (hash, _) = &owner_ops["RepairChanged"];
    ws::send(&mut socket, json!({ "id": "2", "type": "subscribe", "payload": by_hash(hash, json!({})) })).await;
    while let Some(msg) = ws::next_json_within(&mut socket, std::time::Duration::from_millis(500)).await {
        assert_ne!(msg["id"], "2", "the manifest subscription runs: {msg}");
    }
    ws::send(
        &mut socket,
        json!({ "id": "3", "type": "subscribe", "payload": by_hash(&owner_ops["MyHouses"].0, json!({})) }),
    )
    .await;
    let msg = ws::next_json(&mut socket).await.unwrap();
    assert_eq!(msg["type"], "next", "{msg}");
    assert!(msg["payload"]["data"]["myHouses"].is_array(), "{msg}");
}

#[tokio::test]
async fn development_servers_take_ad_hoc_queries_from_any_token() {
    let s = TestServer::seeded().await;
    let (owner, _) = sign_in(&s, "13800000006", None).await;
    let r = s.gql(Some(&owner), "{ me { user { id } } }", json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");
    // hashes work in development too
    let (_, r) = s.post(Some(&owner), None, by_hash(&manifest("owner")["MyHouses"].0, json!({}))).await;
    assert!(r["data"]["myHouses"].is_array(), "{r}");
    // a session the previous release opened (no app recorded, as during a rolling upgrade)
    // refreshes as the account's own app
    let (_, refresh) = sign_in(&s, "13800000006", None).await;
    sqlx::query("UPDATE refresh_tokens SET app = NULL").execute(&s.db).await.unwrap();
    let (_, r) =
        s.post(None, None, by_hash(&manifest("owner")["RefreshToken"].0, json!({ "refreshToken": refresh }))).await;
    assert!(r["data"]["refreshToken"]["accessToken"].is_string(), "{r}");
}
