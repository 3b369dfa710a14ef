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

/// The staff app's `Houses` reads nothing but house pages, so its whole answer is kept
/// with them (per replica, per caller as loaded, per variables): a repeated page is the
/// kept answer, every change made through the API shows at once here and within moments
/// on another replica, another caller gets their own answer within their own projects, a
/// revoked role is refused rather than answered from what was kept, and the managers'
/// `Houses` (it reads residents) is never kept.
#[tokio::test]
async fn house_list_answers_are_kept_per_caller_and_dropped_on_change() {
    let s = TestServer::seeded().await;
    let b = s.replica().await;
    s.state.events.ready().await;
    b.state.events.ready().await;
    let staff_houses = manifest("staff")["Houses"].0.clone();
    let page = async |s: &TestServer, token: &str, vars: Value| -> Value {
        let (_, r) = s.post(Some(token), None, by_hash(&staff_houses, vars)).await;
        r
    };
    let rooms = |r: &Value| -> Vec<String> {
        assert!(r.get("errors").is_none(), "{r}");
        r["data"]["houses"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["roomNo"].to_string()).collect()
    };
    let ids = |r: &Value| -> Vec<String> {
        r["data"]["houses"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].to_string()).collect()
    };
    let admin = s.sign_in("admin").await;
    let admin_b = b.sign_in("admin").await;
    let three = json!({ "first": 3 });
    let first = page(&s, &admin, three.clone()).await;
    assert_eq!(rooms(&first).len(), 3);
    assert_eq!(page(&b, &admin_b, three.clone()).await, first);
    let id = first["data"]["houses"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    let uuid = uuid::Uuid::parse_str(&id).unwrap();

    // written behind the server's back: the kept answer stands (this is the cache at work:
    // the metrics count it as an answer kept, not resolved)
    sqlx::query("UPDATE houses SET room_no = 'X1' WHERE id = $1").bind(uuid).execute(&s.state.db).await.unwrap();
    let before = kept_answers(&s).await;
    assert_eq!(page(&s, &admin, three.clone()).await, first);
    assert!(kept_answers(&s).await > before, "answered from a kept answer");
    // ... while other variables are another answer, read afresh
    let two = page(&s, &admin, json!({ "first": 2, "status": null })).await;
    assert_eq!(rooms(&two)[0], "\"X1\"");

    // changed through the API: at once here, within moments on replica B
    let update =
        "mutation($id: ID!, $room: String) { updateHouse(input: {houseId: $id, roomNo: $room}) { house { id } } }";
    s.ok(Some(&admin), update, json!({ "id": id, "room": "9903" })).await;
    assert_eq!(rooms(&page(&s, &admin, three.clone()).await)[0], "\"9903\"");
    let started = std::time::Instant::now();
    while rooms(&page(&b, &admin_b, three.clone()).await)[0] != "\"9903\"" {
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "replica B still answers the kept page");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // the last resident unlinked: the house is vacant, and the kept list of occupied
    // houses is dropped with it
    let occupied = json!({ "status": "OCCUPIED", "first": 1 });
    let first_occupied = page(&s, &admin, occupied.clone()).await;
    assert_eq!(page(&s, &admin, occupied.clone()).await, first_occupied);
    let house = ids(&first_occupied)[0].trim_matches('"').to_owned();
    let residents: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT owner_id FROM house_residents WHERE house_id = $1")
        .bind(uuid::Uuid::parse_str(&house).unwrap())
        .fetch_all(&s.state.db)
        .await
        .unwrap();
    assert!(!residents.is_empty());
    let unlink =
        "mutation($o: ID!, $h: ID!) { unlinkOwnerHouse(input: {ownerId: $o, houseId: $h}) { clientMutationId } }";
    for o in residents {
        s.ok(Some(&admin), unlink, json!({ "o": o, "h": house })).await;
    }
    assert_ne!(ids(&page(&s, &admin, occupied.clone()).await)[0].trim_matches('"'), house);
    // variables the operation does not declare, or another operation's name, do not
    // reach a kept answer: the one answers as before, the other is refused as unknown
    let kept_three = page(&s, &admin, three.clone()).await;
    let before = kept_answers(&s).await;
    assert_eq!(page(&s, &admin, json!({ "unused": 1, "first": 3 })).await, kept_three);
    assert!(kept_answers(&s).await > before, "the same kept answer");
    let mut named = by_hash(&staff_houses, three.clone());
    named["operationName"] = json!("Owners");
    let (_, r) = s.post(Some(&admin), None, named).await;
    assert!(r.get("errors").is_some(), "{r}");

    // two technicians with the same variables: each their own project's houses
    let tech1 = s.sign_in("tech1").await;
    let tech2 = s.sign_in("tech2").await;
    let t1 = page(&s, &tech1, three.clone()).await;
    let t2 = page(&s, &tech2, three.clone()).await;
    assert_eq!(rooms(&t1).len(), 3);
    assert_eq!(rooms(&t2).len(), 3);
    assert!(ids(&t1).iter().all(|i| !ids(&t2).contains(i)), "{t1} {t2}");
    assert_eq!(page(&s, &tech1, three.clone()).await, t1);
    // tech1's role revoked: refused at once, not answered from what was kept
    let grant: uuid::Uuid = sqlx::query_scalar(
        "SELECT ur.id FROM user_roles ur JOIN users u ON u.id = ur.user_id WHERE u.username = 'tech1'",
    )
    .fetch_one(&s.state.db)
    .await
    .unwrap();
    s.ok(
        Some(&admin),
        "mutation($g: ID!) { revokeRole(input: {assignmentId: $g}) { deletedId } }",
        json!({"g": grant}),
    )
    .await;
    let r = page(&s, &tech1, three.clone()).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");

    // the managers' Houses reads residents: a resident's new name shows on the next page
    let manager_houses = manifest("manager")["Houses"].0.clone();
    let (_, r) = s.post(Some(&admin), None, by_hash(&manager_houses, json!({}))).await;
    assert!(r.get("errors").is_none(), "{r}");
    let edges = r["data"]["houses"]["edges"].as_array().unwrap();
    let lived_in = edges
        .iter()
        .position(|e| !e["node"]["residents"].as_array().unwrap().is_empty())
        .expect("a house with residents");
    let name = edges[lived_in]["node"]["residents"][0]["name"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE owners SET name = '改名' WHERE name = $1").bind(&name).execute(&s.state.db).await.unwrap();
    let (_, r) = s.post(Some(&admin), None, by_hash(&manager_houses, json!({}))).await;
    assert_eq!(r["data"]["houses"]["edges"][lived_in]["node"]["residents"][0]["name"], "改名", "{r}");
}

/// How many requests this process answered from kept answers.
async fn kept_answers(s: &TestServer) -> u64 {
    let m = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    m.lines()
        .find_map(|l| l.strip_prefix("graphql_answers_kept_total{result=\"hit\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
}
