//! Attendance benchmark: the real server over the demo estate, driven over HTTP.
//!
//!   cargo bench -p wuye-tests --bench attendance   (BURST_SECS=60 sets the burst's length)
//!
//! 1. Clock-in burst: 5,000 technicians of one estate on an 08:00-17:00 rota, each signed in
//!    on their own phone, clock in once within one minute, evenly spread (open loop: a
//!    request leaves at its scheduled instant whether or not earlier ones have answered).
//!    Every punch is the real path: geofence, double-tap check, the punch, the employee's
//!    two days recomputed. Prints the rate held and p50/p99/max of every request.
//! 2. The same 5,000 clock out within ten seconds (six times the rate): the headroom.
//! 3. The scheduler's settling round over the 5,000 rostered employees (two days each).
//! 4. The monthly report of 1,000 employees (30 days each, with the CSV) through GraphQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;
use wuye_tests::TestServer;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TECHS: usize = 5_000;
const REPORTED: usize = 1_000;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// 5,000 technicians of the estate with employee numbers, on a week rota of one shift.
async fn staff(s: &TestServer) -> (Uuid, Uuid, Vec<Uuid>) {
    let db = &s.state.db;
    let (company, estate): (Uuid, Uuid) =
        sqlx::query_as("SELECT company_id, id FROM projects WHERE code = 'JCHY'").fetch_one(db).await.unwrap();
    let ids: Vec<Uuid> = (0..TECHS).map(|_| Uuid::now_v7()).collect();
    let names: Vec<String> = (0..TECHS).map(|i| format!("punch{i:04}")).collect();
    sqlx::query(
        "INSERT INTO users (id, company_id, kind, username, name, password_hash, status)
         SELECT t.id, $2, 'staff', t.username, '压测师傅', (SELECT password_hash FROM users WHERE username = 'tech1'), 'active'
         FROM unnest($1::uuid[], $3::text[]) AS t(id, username)",
    )
    .bind(&ids)
    .bind(company)
    .bind(&names)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO user_roles (id, company_id, user_id, role_id, scope, project_ids)
         SELECT gen_random_uuid(), $2, u, (SELECT id FROM roles WHERE company_id = $2 AND code = 'technician'),
                'projects', ARRAY[$3::uuid]
         FROM unnest($1::uuid[]) AS u",
    )
    .bind(&ids)
    .bind(company)
    .bind(estate)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO employees (user_id, company_id, status, employee_no, created_at, updated_at)
         SELECT u, $2, 'active', 'P' || lpad(n::text, 5, '0'), now(), now()
         FROM unnest($1::uuid[]) WITH ORDINALITY AS t(u, n)",
    )
    .bind(&ids)
    .bind(company)
    .execute(db)
    .await
    .unwrap();
    let shift = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO shifts (id, company_id, project_id, name, starts_at, ends_at, break_minutes, late_grace_minutes,
                             created_at, updated_at)
         VALUES ($1, $2, $3, '白班', '08:00', '17:00', 60, 5, now(), now())",
    )
    .bind(shift)
    .bind(company)
    .bind(estate)
    .execute(db)
    .await
    .unwrap();
    let pattern = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO rota_patterns (id, company_id, project_id, name, kind, slots, observe_holidays, created_at, updated_at)
         VALUES ($1, $2, $3, '全勤', 'week', ARRAY[$4, $4, $4, $4, $4, $4, $4]::uuid[], false, now(), now())",
    )
    .bind(pattern)
    .bind(company)
    .bind(estate)
    .bind(shift)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO rota_assignments (id, company_id, project_id, user_id, pattern_id, from_day, created_by, created_at)
         SELECT gen_random_uuid(), $2, $3, u, $4, current_date - 40, u, now() FROM unnest($1::uuid[]) AS u",
    )
    .bind(&ids)
    .bind(company)
    .bind(estate)
    .bind(pattern)
    .execute(db)
    .await
    .unwrap();
    (company, estate, ids)
}

/// A session per technician (each from its own address, as phones are).
async fn sessions(s: &TestServer, n: usize) -> Vec<String> {
    let state = Arc::new(s.state.clone());
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let st = state.clone();
            tasks.push(tokio::spawn(async move {
                let login = format!("punch{i:04}");
                let ip = format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
                let input = wuye_api::auth::service::SignIn {
                    login: &login,
                    password: wuye_tests::PASSWORD,
                    company_id: None,
                    captcha_id: None,
                    captcha_answer: None,
                    ip: &ip,
                    client: None,
                };
                wuye_api::auth::service::sign_in(&st, input).await.unwrap().access_token
            }));
        }
        for t in tasks {
            out.push(t.await.unwrap());
        }
    }
    out
}

const PUNCH: &str = "mutation($i: PunchInput!) { punch(input: $i) { punch { id } } }";

/// Every token punches once, the sends evenly spread over `over`; returns the latencies
/// and the number of answers with errors.
async fn burst(url: String, tokens: &[String], over: Duration, direction: &str) -> (Vec<Duration>, usize, f64) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(512).build().unwrap();
    let step = over / tokens.len() as u32;
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        let (client, url, t) = (client.clone(), url.clone(), t.clone());
        let at = start + step * i as u32;
        let body = json!({"query": PUNCH, "variables": {"i": {
            "lat": 30.5728 + (i % 100) as f64 * 0.00001, "lng": 104.0668, "accuracyM": 12.0,
            "direction": direction, "clientMutationId": format!("{direction}-{i}")}}});
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let t0 = Instant::now();
            let r: Value = client.post(&url).bearer_auth(&t).json(&body).send().await.unwrap().json().await.unwrap();
            (t0.elapsed(), r.get("errors").is_some())
        }));
    }
    let began = Instant::now();
    let mut lat = Vec::with_capacity(tokens.len());
    let mut errors = 0;
    for t in tasks {
        let (d, e) = t.await.unwrap();
        lat.push(d);
        errors += usize::from(e);
    }
    let took = began.elapsed().as_secs_f64();
    lat.sort();
    (lat, errors, took)
}

/// 30 settled days for `n` employees in the month before this one.
async fn month_of_results(s: &TestServer, company: Uuid, estate: Uuid, users: &[Uuid]) -> String {
    let today = s.clock_now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let first = chrono::Datelike::with_day(&today, 1).unwrap() - chrono::Months::new(1);
    sqlx::query(
        "INSERT INTO attendance_days (user_id, day, company_id, project_id, kind, status, late_minutes, early_minutes,
                                      missing_punches, worked_minutes, overtime_minutes, settled, computed_at)
         SELECT u, $3::date + d, $2, $4, CASE WHEN d % 7 = 6 THEN 'rest' ELSE 'workday' END,
                CASE WHEN d % 7 = 6 THEN 'rest' WHEN (d + n) % 11 = 0 THEN 'late' WHEN (d + n) % 17 = 0 THEN 'absent' ELSE 'normal' END,
                CASE WHEN (d + n) % 11 = 0 THEN 12 ELSE 0 END, 0,
                CASE WHEN (d + n) % 17 = 0 THEN 2 ELSE 0 END, 480, CASE WHEN d % 5 = 0 THEN 45 ELSE 0 END, true, now()
         FROM unnest($1::uuid[]) WITH ORDINALITY AS t(u, n), generate_series(0, 29) AS d
         ON CONFLICT (user_id, day) DO NOTHING",
    )
    .bind(users)
    .bind(company)
    .bind(first)
    .bind(estate)
    .execute(&s.state.db)
    .await
    .unwrap();
    first.format("%Y-%m").to_string()
}

fn main() {
    let burst_secs: u64 = std::env::var("BURST_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = server_rt.block_on(TestServer::seeded_with(|c| {
        c.auth.captcha_after_failures = u32::MAX;
        c.database_max_connections = 16;
    }));
    let url = format!("{}/graphql", server.url);
    let t = Instant::now();
    let (company, estate, ids) = server_rt.block_on(staff(&server));
    let tokens = server_rt.block_on(sessions(&server, TECHS));
    println!(
        "\nwuye attendance benchmark, {} cores; {TECHS} technicians rostered and signed in ({:.1} s)",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        t.elapsed().as_secs_f64()
    );
    println!("| scenario | figure |");
    println!("|---|---|");
    let load_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (lat, errors, took) = load_rt.block_on(burst(url.clone(), &tokens, Duration::from_secs(burst_secs), "IN"));
    assert_eq!(errors, 0, "punches answered with errors");
    let punches: i64 = server_rt.block_on(async {
        sqlx::query_scalar("SELECT count(*) FROM punches").fetch_one(&server.state.db).await.unwrap()
    });
    assert_eq!(punches as usize, TECHS, "one punch each");
    println!(
        "| clock-in burst, {TECHS} technicians in {burst_secs} s | {:.0} punches/s held, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({took:.1} s) |",
        TECHS as f64 / took,
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        lat.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
    );
    server.advance(120);
    let (lat, errors, took) = load_rt.block_on(burst(url.clone(), &tokens, Duration::from_secs(10), "OUT"));
    assert_eq!(errors, 0, "punches answered with errors");
    println!(
        "| clock-out burst, {TECHS} in 10 s | {:.0} punches/s held, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({took:.1} s) |",
        TECHS as f64 / took,
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        lat.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
    );

    let t = Instant::now();
    let days = server_rt.block_on(wuye_api::people::attendance::service::settle(&server.state)).unwrap();
    println!(
        "| scheduler settling round, {TECHS} rostered | {:.2} s ({days} days written) |",
        t.elapsed().as_secs_f64()
    );

    let month = server_rt.block_on(month_of_results(&server, company, estate, &ids[..REPORTED]));
    let manager = server_rt.block_on(server.sign_in("manager"));
    let client = reqwest::Client::new();
    let q = "query($m: String!, $p: ID) { attendanceReport(month: $m, projectId: $p) { rows { userId lateDays absentDays overtimeMinutes } csv } }";
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r: Value = load_rt.block_on(async {
            client
                .post(&url)
                .bearer_auth(&manager)
                .json(&json!({"query": q, "variables": {"m": month, "p": estate}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        times.push(t.elapsed());
        assert!(r.get("errors").is_none(), "{r}");
        assert!(r["data"]["attendanceReport"]["rows"].as_array().unwrap().len() >= REPORTED);
    }
    times.sort();
    println!(
        "| monthly report, {REPORTED} employees x 30 days, with CSV | median {:.0} ms, max {:.0} ms (5 runs) |",
        times[2].as_secs_f64() * 1000.0,
        times[4].as_secs_f64() * 1000.0
    );
}
