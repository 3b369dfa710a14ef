//! Foundation benchmark: starts the real server (production argon2 parameters) over the
//! demo estate and drives it over HTTP with concurrent clients.
//!
//!   cargo bench -p wuye-tests --bench foundation   (BENCH_SECS=10 per scenario; BENCH_ONLY=houses runs one)
//!
//! Prints sign-in throughput, and requests/s with p50/p99 latency of an authenticated
//! `me` query and of a 20-row houses connection query: sent by the staff app as a persisted
//! operation (by hash, production rules; the same page again and again, whose answer the
//! server keeps, and a new page each time, whose answer it has to resolve), and as ad-hoc
//! text from the playground.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wuye_tests::{PASSWORD, TestServer};

/// The same allocator as the `wuye` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Figures {
    name: String,
    concurrency: usize,
    requests: usize,
    errors: usize,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Figures {
    fn print(&self) {
        println!(
            "| {:<34} | {:>4} | {:>9.0} | {:>8.2} | {:>8.2} | {:>6} |",
            self.name,
            self.concurrency,
            self.requests as f64 / self.secs,
            self.p50_ms,
            self.p99_ms,
            self.errors
        );
    }
}

/// What each request sends: the same body every time, or a new one each time.
#[derive(Clone)]
enum Body {
    Same(Value),
    Each(Arc<dyn Fn() -> Value + Send + Sync>),
}

async fn drive(url: String, name: &str, concurrency: usize, secs: u64, token: Option<String>, body: Body) -> Figures {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
    let same = match &body {
        Body::Same(v) => Some(Arc::new(serde_json::to_vec(v).unwrap())),
        Body::Each(_) => None,
    };
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, body, same, token) = (client.clone(), url.clone(), body.clone(), same.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                let bytes = match (&same, &body) {
                    (Some(b), _) => b.as_ref().clone(),
                    (None, Body::Each(make)) => serde_json::to_vec(&make()).unwrap(),
                    (None, Body::Same(v)) => serde_json::to_vec(v).unwrap(),
                };
                let mut req = client.post(&url).header("content-type", "application/json").body(bytes);
                if let Some(tok) = &token {
                    req = req.bearer_auth(tok);
                }
                match req.send().await {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        let bytes = r.bytes().await.unwrap_or_default();
                        if !ok || bytes.windows(9).any(|w| w == b"\"errors\":") {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
                lat.push(t.elapsed());
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    Figures { name: name.into(), concurrency, requests: all.len(), errors, secs, p50_ms: pct(0.50), p99_ms: pct(0.99) }
}

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    // the server and the load generator each get a runtime with 2 workers, like two processes
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = server_rt.block_on(TestServer::seeded_with(|c| {
        let prod = wuye_api::kit::config::AuthConfig::default();
        c.auth.argon2_memory_kib = prod.argon2_memory_kib;
        c.auth.argon2_iterations = prod.argon2_iterations;
        c.auth.argon2_parallelism = prod.argon2_parallelism;
        c.auth.captcha_after_failures = u32::MAX;
        c.database_max_connections = 16;
        // as in production: the apps send their manifest's operations by hash
        c.limits.persisted_only = Some(true);
    }));
    let url = format!("{}/graphql", server.url);
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // a staff-app token (manifest operations only) and a playground token (ad-hoc queries)
    let (token, playground, project) = server_rt.block_on(async {
        let token = server.sign_in("admin").await;
        let q = "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p, client: PLAYGROUND}) { accessToken } }";
        let d = server.ok(None, q, json!({ "l": "admin", "p": PASSWORD })).await;
        let playground = d["signIn"]["accessToken"].as_str().unwrap().to_owned();
        let d = server.ok(Some(&playground), "{ projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await;
        (token, playground, d["projects"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned())
    });
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/persisted/staff.json")).unwrap(),
    )
    .unwrap();
    let houses_hash = manifest["operations"].as_array().unwrap().iter().find(|o| o["name"] == "Houses").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    println!(
        "\nwuye foundation benchmark: {} s per scenario, {} cores",
        secs,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!("password hashing: {}", server.state.keys.argon2_description());
    println!("| scenario                           | conc |    req/s  |  p50 ms  |  p99 ms  | errors |");
    println!("|------------------------------------|------|-----------|----------|----------|--------|");
    let sign_in = json!({"query": "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { accessToken } }", "variables": {"l": "tech1", "p": PASSWORD}});
    let me =
        json!({"query": "query Me { me { user { id name } permissions menu { code title } } }", "operationName": "Me"});
    let houses = json!({
        "query": "query Houses($p: ID) { houses(projectId: $p, first: 20) { edges { cursor node { id roomNo floor buildingName unitName buildingArea indoorArea usage status } } pageInfo { hasNextPage endCursor } } }",
        "variables": {"p": project},
        "operationName": "Houses"
    });
    // the staff app's `Houses` by hash: the same fields as the ad-hoc text above
    let houses_by_hash = json!({
        "variables": {"projectId": project, "first": 20},
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": houses_hash}}
    });
    // the same operation, each request a page starting at a new point among the project's
    // houses: neither the page nor the answer was kept, so this is the resolving path
    let (low, high): (uuid::Uuid, uuid::Uuid) = server_rt.block_on(async {
        let q = "SELECT (SELECT id FROM houses WHERE project_id = $1::uuid ORDER BY id LIMIT 1),
                        (SELECT id FROM houses WHERE project_id = $1::uuid ORDER BY id DESC LIMIT 1)";
        sqlx::query_as(q).bind(&project).fetch_one(&server.state.db).await.unwrap()
    });
    let (low, span) = (low.as_u128(), high.as_u128() - low.as_u128());
    let new_pages = Body::Each(Arc::new(move || {
        let after = uuid::Uuid::from_u128(low + rand::random::<u128>() % span);
        json!({
            "variables": {"projectId": project, "first": 20, "after": after.simple().to_string()},
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": houses_hash}}
        })
    }));
    for (name, conc, tok, body) in [
        ("signIn (password, argon2id)", 4, None, Body::Same(sign_in)),
        ("me (authenticated)", 32, Some(playground.clone()), Body::Same(me)),
        ("houses, 20 rows, by hash (app)", 32, Some(token.clone()), Body::Same(houses_by_hash.clone())),
        ("houses, 20 rows, by hash (app)", 8, Some(token.clone()), Body::Same(houses_by_hash)),
        ("houses, 20 rows, by hash, new pages", 32, Some(token.clone()), new_pages),
        ("houses, 20 rows, ad-hoc text", 32, Some(playground.clone()), Body::Same(houses)),
    ] {
        if std::env::var("BENCH_ONLY").is_ok_and(|only| !name.starts_with(only.as_str())) {
            continue;
        }
        let f = client_rt.block_on(drive(url.clone(), name, conc, secs, tok, body));
        f.print();
    }
    drop(server);
}
