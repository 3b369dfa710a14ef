//! Work-order benchmark: the real server over the demo estate, driven over HTTP.
//!
//!   cargo bench -p wuye-tests --bench workorders   (BENCH_SECS=10 for the list scenario)
//!
//! 1. Grab contention: 200 technicians of one project and 1,000 orders released into its
//!    pool at once; every technician grabs orders picked at random among those it has not
//!    seen taken (what a phone refreshing its pool list does) until every order is taken.
//!    Prints grabs/s, p50/p99 of every grab request (won or CONFLICT), and checks that
//!    every order was taken exactly once. Run twice on fresh pools:
//!    - saturation: every technician taps again the instant an answer arrives (200 requests
//!      always in flight: the server's ceiling, where latency is the queue, 200 ÷ rate);
//!    - phones: the release reaches the phones and each technician taps within the first
//!      second, then again 250–750 ms after each answer (faster than a person reads a
//!      pool list): the latency a technician sees while the whole pool is being emptied.
//! 2. "My orders": 10,000 orders in the project spread over the technicians; 32 clients,
//!    each a technician, ask for their first 20 orders. Prints requests/s and p50/p99.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;
use wuye_api::kit::idempotency::Retry;
use wuye_api::rbac::model::GrantScope;
use wuye_api::rbac::service as rbac;
use wuye_tests::TestServer;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TECHS: usize = 200;
const POOL: usize = 1_000;
const MINE: usize = 10_000;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// A small deterministic generator per client (no dependency for randomness).
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

async fn setup(s: &TestServer) -> (Uuid, Uuid, Vec<(Uuid, String)>) {
    let db = &s.state.db;
    let admin_id: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE username = 'admin'").fetch_one(db).await.unwrap();
    let company: Uuid =
        sqlx::query_scalar("SELECT company_id FROM users WHERE id = $1").bind(admin_id).fetch_one(db).await.unwrap();
    let estate: Uuid = sqlx::query_scalar("SELECT id FROM projects WHERE code = 'JCHY' AND company_id = $1")
        .bind(company)
        .fetch_one(db)
        .await
        .unwrap();
    let admin = rbac::load_actor(&s.state, admin_id, company, i64::MAX).await.unwrap();
    let role = rbac::roles(&s.state, &admin, None, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.code == "technician")
        .unwrap()
        .id;
    let mut techs = Vec::new();
    for i in 0..TECHS {
        let username = format!("bench{i:03}");
        let new = rbac::NewStaff {
            username: &username,
            name: "压测师傅",
            phone: None,
            initial_password: wuye_tests::PASSWORD,
            must_change_password: false,
        };
        let u = rbac::create_staff_user(&s.state, &admin, &Retry::none(), new).await.unwrap();
        let g = rbac::GrantInput { user_id: u, role_id: role, scope: GrantScope::Projects, project_ids: vec![estate] };
        rbac::assign_role(&s.state, &admin, &Retry::none(), g).await.unwrap();
        techs.push((u, s.sign_in(&username).await));
    }
    (company, estate, techs)
}

/// Orders straight into the table (the benchmark measures taking them, not making them).
async fn insert_orders(s: &TestServer, company: Uuid, project: Uuid, n: usize, assignees: &[Uuid]) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let states = ["accepted", "in_progress", "completed", "closed", "assigned"];
    let mut assignee: Vec<Option<Uuid>> = Vec::with_capacity(n);
    let mut state: Vec<String> = Vec::with_capacity(n);
    for i in 0..n {
        if assignees.is_empty() {
            assignee.push(None);
            state.push("submitted".into());
        } else {
            assignee.push(Some(assignees[i % assignees.len()]));
            state.push(states[i % states.len()].into());
        }
    }
    sqlx::query(
        "INSERT INTO work_orders (id, company_id, project_id, source, category, priority, state, title, assignee_id,
                                  created_at, updated_at)
         SELECT t.id, $1, $2, 'staff', 'public_facility', 'normal', t.state, '公区照明检修', t.assignee, now(), now()
         FROM unnest($3::uuid[], $4::text[], $5::uuid[]) AS t(id, state, assignee)",
    )
    .bind(company)
    .bind(project)
    .bind(&ids)
    .bind(&state)
    .bind(&assignee)
    .execute(&s.state.db)
    .await
    .unwrap();
    sqlx::query("ANALYZE work_orders").execute(&s.state.db).await.unwrap();
    ids
}

/// How phones pace their taps: the first within `reaction_ms`, then `think_ms` after each
/// answer (uniform in the range).
#[derive(Clone, Copy)]
struct Pace {
    reaction_ms: u64,
    think_ms: (u64, u64),
}

async fn grab_contention(
    url: String,
    tokens: Vec<String>,
    orders: Vec<Uuid>,
    pace: Option<Pace>,
) -> (f64, Vec<Duration>, usize, usize, usize) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(tokens.len()).build().unwrap();
    let taken: Arc<Vec<AtomicBool>> = Arc::new(orders.iter().map(|_| AtomicBool::new(false)).collect());
    let left = Arc::new(AtomicUsize::new(orders.len()));
    let orders = Arc::new(orders);
    let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let q = "mutation($i: WorkOrderInput!) { grabWorkOrder(input: $i) { workOrder { id } } }";
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, t) in tokens.into_iter().enumerate() {
        let (client, url, taken, left, orders, barrier) =
            (client.clone(), url.clone(), taken.clone(), left.clone(), orders.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((n as u64 + 1) * 0x1000_0001));
            let (mut lat, mut won, mut lost, mut errors) = (Vec::new(), 0usize, 0usize, 0usize);
            barrier.wait().await;
            if let Some(p) = pace {
                tokio::time::sleep(Duration::from_millis(rng.next(p.reaction_ms as usize + 1) as u64)).await;
            }
            while left.load(Ordering::Relaxed) > 0 {
                // an order this phone has not seen taken
                let mut i = rng.next(orders.len());
                let mut tries = 0;
                while taken[i].load(Ordering::Relaxed) && tries < orders.len() {
                    i = (i + 1) % orders.len();
                    tries += 1;
                }
                if tries == orders.len() {
                    break;
                }
                let body = json!({"query": q, "variables": {"i": {"workOrderId": orders[i]}}});
                let t0 = Instant::now();
                let r: Value = match client.post(&url).bearer_auth(&t).json(&body).send().await {
                    Ok(r) => r.json().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
                lat.push(t0.elapsed());
                if r["data"]["grabWorkOrder"]["workOrder"]["id"].is_string() {
                    won += 1;
                    taken[i].store(true, Ordering::Relaxed);
                    left.fetch_sub(1, Ordering::Relaxed);
                } else if r["errors"][0]["extensions"]["code"] == "CONFLICT" {
                    lost += 1;
                    taken[i].store(true, Ordering::Relaxed);
                } else {
                    errors += 1;
                }
                if let Some(p) = pace {
                    let (lo, hi) = p.think_ms;
                    tokio::time::sleep(Duration::from_millis(lo + rng.next((hi - lo) as usize + 1) as u64)).await;
                }
            }
            (lat, won, lost, errors)
        }));
    }
    let (mut all, mut won, mut lost, mut errors) = (Vec::new(), 0, 0, 0);
    for t in tasks {
        let (l, w, c, e) = t.await.unwrap();
        all.extend(l);
        won += w;
        lost += c;
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    (secs, all, won, lost, errors)
}

async fn my_orders(url: String, tokens: Vec<String>, secs: u64) -> (usize, f64, Vec<Duration>, usize) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(tokens.len()).build().unwrap();
    let q = "query Mine { workOrders(mine: true, first: 20) { edges { cursor node { id number state priority category title createdAt } } pageInfo { hasNextPage endCursor } } }";
    let body = Arc::new(serde_json::to_vec(&json!({"query": q, "operationName": "Mine"})).unwrap());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in tokens {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let req = client.post(&url).bearer_auth(&t).header("content-type", "application/json");
                match req.body(body.as_ref().clone()).send().await {
                    Ok(r) => {
                        let bytes = r.bytes().await.unwrap_or_default();
                        if bytes.windows(9).any(|w| w == b"\"errors\":") || !bytes.windows(6).any(|w| w == b"\"node\"")
                        {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
                lat.push(t0.elapsed());
            }
            (lat, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    (all.len(), secs, all, errors)
}

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = server_rt.block_on(TestServer::seeded_with(|c| {
        c.auth.captcha_after_failures = u32::MAX;
        c.database_max_connections = 16;
    }));
    let url = format!("{}/graphql", server.url);
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (company, estate, techs) = server_rt.block_on(setup(&server));
    println!(
        "\nwuye work-order benchmark: {TECHS} technicians of one project, {} cores",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );

    println!("| scenario | figure |");
    println!("|---|---|");
    let phones = Pace { reaction_ms: 1_000, think_ms: (250, 750) };
    for (round, (name, pace)) in [("saturation", None), ("phones", Some(phones))].into_iter().enumerate() {
        let pool = server_rt.block_on(insert_orders(&server, company, estate, POOL, &[]));
        let tokens: Vec<String> = techs.iter().map(|(_, t)| t.clone()).collect();
        let (secs_grab, lat, won, lost, errors) =
            client_rt.block_on(grab_contention(url.clone(), tokens, pool.clone(), pace));
        let (events, accepted): (i64, i64) = server_rt.block_on(async {
            let e = sqlx::query_scalar("SELECT count(*) FROM work_order_events WHERE action = 'grab' AND work_order_id = ANY($1)")
                .bind(&pool)
                .fetch_one(&server.state.db)
                .await
                .unwrap();
            let a = sqlx::query_scalar(
                "SELECT count(*) FROM work_orders WHERE state = 'accepted' AND assignee_id IS NOT NULL AND id = ANY($1)",
            )
            .bind(&pool)
            .fetch_one(&server.state.db)
            .await
            .unwrap();
            (e, a)
        });
        println!(
            "| grab contention ({name}): {TECHS} technicians, {POOL} pool orders | {:.0} orders taken/s ({:.1} s), {} grab requests: p50 {:.1} ms, p99 {:.1} ms; won {won}, CONFLICT {lost}, other errors {errors}; grab log lines {events}, accepted orders {accepted} |",
            won as f64 / secs_grab,
            secs_grab,
            lat.len(),
            pct(&lat, 0.50),
            pct(&lat, 0.99)
        );
        assert_eq!(
            (won, events as usize, accepted as usize),
            (POOL, POOL, POOL),
            "round {round}: every order taken exactly once"
        );
    }

    let ids: Vec<Uuid> = techs.iter().map(|(u, _)| *u).collect();
    server_rt.block_on(insert_orders(&server, company, estate, MINE, &ids));
    let tokens: Vec<String> = techs.iter().take(32).map(|(_, t)| t.clone()).collect();
    let (n, secs_mine, lat, errors) = client_rt.block_on(my_orders(url, tokens, secs));
    println!(
        "| my orders (first 20), {} orders in the project, 32 technicians | {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, errors {errors} |",
        MINE + POOL,
        n as f64 / secs_mine,
        pct(&lat, 0.50),
        pct(&lat, 0.99)
    );
    drop(server);
}
