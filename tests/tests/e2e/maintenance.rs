//! Maintenance plans → tasks ahead of the due date across month and year boundaries →
//! records (a failed item is a repair request); patrols with scans and missed points;
//! scans and completions resent on a weak signal apply once.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone};
use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field};

const SH: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// How long a test waits for the scheduler before it gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// Moves the server's clock to 10:00 Shanghai on `day`.
fn travel_to(s: &TestServer, day: NaiveDate) {
    let target = SH.from_local_datetime(&day.and_hms_opt(10, 0, 0).unwrap()).unwrap().with_timezone(&chrono::Utc);
    s.advance((target - s.clock_now()).num_seconds());
}

const TASKS: &str = "query($d: ID, $a: String) { maintenanceTasks(deviceId: $d, first: 3, after: $a) {
    edges { node { id planId dueDate state overdue checklist } } pageInfo { hasNextPage endCursor } } }";

/// Every task of a plan on a device, by due date, read page by page (small pages, so the
/// cursor is walked).
async fn tasks_of(s: &TestServer, token: &str, device: &Value, plan: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = Value::Null;
    for _ in 0..100 {
        let r = s.ok(Some(token), TASKS, json!({"d": device, "a": after})).await;
        let conn = &r["maintenanceTasks"];
        out.extend(conn["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).filter(|t| t["planId"] == plan));
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    out
}

/// Polls until the plan has at least `n` tasks on the device, or PATIENCE runs out.
async fn wait_tasks(s: &TestServer, token: &str, device: &Value, plan: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = tasks_of(s, token, device, plan).await;
        if got.len() >= n || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn user_id(s: &TestServer, token: &str, username: &str) -> Value {
    let q = "query($s: String) { users(search: $s, first: 50) { edges { node { id username } } } }";
    let r = s.ok(Some(token), q, json!({"s": username})).await;
    r["users"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["username"] == username).unwrap()["node"]["id"]
        .clone()
}

const COMPLETE: &str = "mutation($i: CompleteMaintenanceTaskInput!) { completeMaintenanceTask(input: $i) {
    clientMutationId record { id taskId results { item result note } parts { name quantity } } } }";

#[tokio::test]
async fn a_monthly_plan_creates_tasks_ahead_across_month_and_year_ends_and_failed_items_become_repairs() {
    let s = TestServer::seeded_with(|c| c.iot.jobs = true).await;
    let manager = s.sign_in("manager").await;
    let d = s.ok(Some(&manager), "{ deviceByCode(code: \"JC-PUMP-02\") { id projectId } }", json!({})).await;
    let (device, project) = (d["deviceByCode"]["id"].clone(), d["deviceByCode"]["projectId"].clone());
    let tech1 = user_id(&s, &manager, "tech1").await;
    // the plan is made on 20 Dec 2026, due on the 31st monthly: 31 Dec, 31 Jan, 28 Feb, 31 Mar
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    travel_to(&s, d(2026, 12, 20));
    let manager = s.sign_in("manager").await;
    let start = d(2026, 12, 31);
    let create = "mutation($i: CreateMaintenancePlanInput!) { createMaintenancePlan(input: $i) {
        plan { id intervalKind anchor active deviceId category } } }";
    let mut input = json!({"projectId": project, "deviceId": device, "name": "水泵月度巡检保养",
        "checklist": ["轴承温度", "机械密封", "压力表"], "intervalKind": "MONTHLY", "startDate": start.to_string(),
        "leadDays": 3, "responsibleUserId": tech1});
    let tech = s.sign_in("tech1").await;
    assert_eq!(code(&s.gql(Some(&tech), create, json!({"i": input})).await), "FORBIDDEN", "technicians do not plan");
    input["intervalKind"] = json!("DAYS");
    let r = s.gql(Some(&manager), create, json!({"i": input})).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "intervalKind", "days need intervalDays: {r}");
    input["intervalKind"] = json!("MONTHLY");
    let made = s.ok(Some(&manager), create, json!({"i": input})).await;
    let p = &made["createMaintenancePlan"]["plan"];
    assert_eq!(
        (&p["intervalKind"], &p["anchor"], &p["active"], &p["deviceId"], &p["category"]),
        (&json!("MONTHLY"), &json!("SCHEDULE"), &json!(true), &device, &Value::Null)
    );
    let plan = p["id"].as_str().unwrap().to_owned();
    let listed = s
        .ok(
            Some(&manager),
            "query($p: ID!) { maintenancePlans(projectId: $p, first: 100) { edges { node { id } } } }",
            json!({"p": project}),
        )
        .await;
    assert!(listed["maintenancePlans"]["edges"].as_array().unwrap().iter().any(|e| e["node"]["id"] == plan.as_str()));

    // four days before the due date nothing yet, even after a scheduler round
    travel_to(&s, d(2026, 12, 27));
    wuye_api::maintenance::plans::service::schedule(&s.state).await.unwrap();
    let tech = s.sign_in("tech1").await;
    assert!(tasks_of(&s, &tech, &device, &plan).await.is_empty(), "not before the lead time");
    // three days before the due date the task appears, and tech1 is told
    travel_to(&s, d(2026, 12, 28));
    let tech = s.sign_in("tech1").await;
    let tasks = wait_tasks(&s, &tech, &device, &plan, 1).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["dueDate"], "2026-12-31");
    assert_eq!(tasks[0]["state"], "PENDING");
    assert_eq!(
        s.wait_for("SELECT count(*) FROM notifications WHERE title LIKE '保养任务：%水泵月度巡检保养'", 1).await,
        1
    );
    let pending = s
        .ok(
            Some(&tech),
            "query($d: ID) { maintenanceTasks(deviceId: $d, state: PENDING, first: 100) { edges { node { state } } } }",
            json!({"d": device}),
        )
        .await;
    let states = pending["maintenanceTasks"]["edges"].as_array().unwrap();
    assert!(!states.is_empty());
    assert!(states.iter().all(|e| e["node"]["state"] == "PENDING"));

    // a failed item records a repair request on the device; every item must be answered
    let partial = json!({"taskId": tasks[0]["id"], "results": [{"item": "轴承温度", "result": "PASS"}]});
    let r = s.gql(Some(&tech), COMPLETE, json!({"i": partial})).await;
    assert_eq!((code(&r), r["errors"][0]["extensions"]["field"].as_str()), ("VALIDATION", Some("results")));
    let guard = s.sign_in("guard1").await;
    let (seal, _) = s.upload_photo(&tech, "MAINTENANCE").await;
    let mut full = json!({"taskId": tasks[0]["id"], "results": [
        {"item": "轴承温度", "result": "PASS"}, {"item": "机械密封", "result": "FAIL", "note": "渗水"}, {"item": "压力表", "result": "PASS"}],
        "parts": [{"name": "机械密封件", "quantity": 1}], "notes": "已报修", "photos": [seal],
        "clientMutationId": "complete-pump-1"});
    assert_eq!(code(&s.gql(Some(&guard), COMPLETE, json!({"i": full})).await), "FORBIDDEN");
    let rec = s.ok(Some(&tech), COMPLETE, json!({"i": full})).await;
    let record = &rec["completeMaintenanceTask"]["record"];
    assert_eq!(rec["completeMaintenanceTask"]["clientMutationId"], "complete-pump-1");
    assert_eq!(record["parts"], json!([{"name": "机械密封件", "quantity": 1}]));
    assert_eq!(record["results"][1], json!({"item": "机械密封", "result": "FAIL", "note": "渗水"}));
    assert_eq!(record["taskId"], tasks[0]["id"]);
    // the phone never heard back and resends: the same record, nothing applied twice
    let again = s.ok(Some(&tech), COMPLETE, json!({"i": full})).await;
    assert_eq!(again["completeMaintenanceTask"]["record"]["id"], record["id"]);
    // a new completion of the done task is refused, naming the task's state
    full.as_object_mut().unwrap().remove("clientMutationId");
    let r = s.gql(Some(&tech), COMPLETE, json!({"i": full})).await;
    assert_eq!(code(&r), "CONFLICT", "done once: {r}");
    assert_eq!(field(&r), "taskId");
    assert_eq!(r["errors"][0]["extensions"]["details"]["currentState"], "DONE");
    let t = s
        .ok(
            Some(&tech),
            "query($t: ID!) { maintenanceTask(id: $t) { state completedAt } }",
            json!({"t": tasks[0]["id"]}),
        )
        .await;
    assert_eq!(t["maintenanceTask"]["state"], "DONE");
    assert!(t["maintenanceTask"]["completedAt"].is_string());
    let manager = s.sign_in("manager").await;
    let rr = s
        .ok(
            Some(&manager),
            "query($d: ID!) { repairRequests(deviceId: $d) { edges { node { source reason } } } }",
            json!({"d": device}),
        )
        .await;
    assert_eq!(
        rr["repairRequests"]["edges"],
        json!([{"node": {"source": "MAINTENANCE", "reason": "水泵月度巡检保养：机械密封 不合格（渗水）"}}])
    );
    // the failed item opened a work order on the device, in the pool of its project
    let wo = s
        .ok(
            Some(&manager),
            "query($d: ID!) { workOrders(deviceId: $d) { edges { node { source state category reporterId } } } }",
            json!({"d": device}),
        )
        .await;
    let orders = wo["workOrders"]["edges"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{wo}");
    assert_eq!(
        (orders[0]["node"]["source"].as_str(), orders[0]["node"]["state"].as_str()),
        (Some("MAINTENANCE"), Some("SUBMITTED"))
    );
    assert_eq!(orders[0]["node"]["category"], "PLUMBING");
    let archive = s
        .ok(
            Some(&tech),
            "query($d: ID!) { maintenanceRecords(deviceId: $d) { edges { node { notes photos } } } }",
            json!({"d": device}),
        )
        .await;
    assert_eq!(archive["maintenanceRecords"]["edges"], json!([{"node": {"notes": "已报修", "photos": [seal]}}]));

    // across the year's end, February clamped to its last day, March back on the 31st
    for (n, due) in [d(2027, 1, 31), d(2027, 2, 28), d(2027, 3, 31)].into_iter().enumerate() {
        travel_to(&s, due - chrono::TimeDelta::days(3));
        let tech = s.sign_in("tech1").await;
        let tasks = wait_tasks(&s, &tech, &device, &plan, n + 2).await;
        let dues: Vec<&str> = tasks.iter().map(|t| t["dueDate"].as_str().unwrap()).collect();
        assert_eq!(dues.len(), n + 2, "{dues:?}");
        assert_eq!(dues.last().copied(), Some(due.to_string().as_str()));
    }

    // overdue: the day after, the manager hears of it (once per task)
    travel_to(&s, d(2027, 4, 1));
    let plan_id: uuid::Uuid = plan.parse().unwrap();
    let deadline = Instant::now() + PATIENCE;
    let told = loop {
        let told = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.username = 'manager'
             AND n.title LIKE '保养任务逾期%' AND (n.data->>'maintenanceTaskId')::uuid IN (SELECT id FROM maintenance_tasks WHERE plan_id = $1)",
        )
        .bind(plan_id)
        .fetch_one(&s.db)
        .await
        .unwrap();
        if told >= 3 || Instant::now() >= deadline {
            break told;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(told, 3, "Jan, Feb and Mar tasks were never done");
    let tech = s.sign_in("tech1").await;
    assert!(tasks_of(&s, &tech, &device, &plan).await.iter().any(|t| t["overdue"] == true));
}

const CREATE_ROUTE: &str = "mutation($i: CreatePatrolRouteInput!) { createPatrolRoute(input: $i) {
    route { id checkpoints { id name code seq } } } }";

const SCAN: &str = "mutation($i: ScanCheckpointInput!) { scanCheckpoint(input: $i) {
    clientMutationId scan { id checkpointId distanceM } } }";

fn scan_input(code: &Value, lat: f64, lng: f64) -> Value {
    json!({"i": {"code": code, "lat": lat, "lng": lng, "accuracyM": 8.0}})
}

fn scan_retry(code: &Value, lat: f64, lng: f64, cmid: &str) -> Value {
    json!({"i": {"code": code, "lat": lat, "lng": lng, "accuracyM": 8.0, "clientMutationId": cmid}})
}

#[tokio::test]
async fn patrols_are_scanned_in_order_on_the_spot_and_missed_points_reported() {
    let s = TestServer::seeded_with(|c| c.iot.jobs = true).await;
    let manager = s.sign_in("manager").await;
    let project = s.ok(Some(&manager), "{ deviceByCode(code: \"JC-PUMP-02\") { projectId } }", json!({})).await["deviceByCode"]["projectId"].clone();
    // a patrol starting this minute
    let now = s.clock_now().with_timezone(&SH);
    let time = now.format("%H:%M").to_string();
    let route = s
        .ok(
            Some(&manager),
            CREATE_ROUTE,
            json!({"i": {"projectId": project, "name": "白班巡逻", "times": [time], "windowMinutes": 30, "checkpoints": [
                {"name": "东门", "lat": 30.5728, "lng": 104.0668, "radiusM": 50},
                {"name": "2栋大堂", "lat": 30.5738, "lng": 104.0672, "radiusM": 50},
                {"name": "水泵房", "lat": 30.5730, "lng": 104.0660, "radiusM": 50}]}}),
        )
        .await;
    let points = route["createPatrolRoute"]["route"]["checkpoints"].as_array().unwrap().clone();
    assert_eq!(points.iter().map(|p| p["seq"].as_i64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3]);
    let bad = s
        .gql(
            Some(&manager),
            CREATE_ROUTE,
            json!({"i": {"projectId": project, "name": "x", "times": ["25:00"], "checkpoints": [{"name": "a"}]}}),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "times");
    let pending = "SELECT count(*) FROM patrol_tasks t JOIN patrol_routes r ON r.id = t.route_id WHERE r.name = '白班巡逻' AND t.state = 'pending' AND t.starts_at <= now()";
    assert_eq!(s.wait_for(pending, 1).await, 1);

    let guard = s.sign_in("guard1").await;
    let r = s.gql(Some(&guard), SCAN, scan_input(&points[1]["code"], 30.5738, 104.0672)).await;
    assert_eq!(
        (code(&r), r["errors"][0]["extensions"]["field"].as_str()),
        ("VALIDATION", Some("code")),
        "in order: {r}"
    );
    let r = s.gql(Some(&guard), SCAN, scan_input(&points[0]["code"], 30.5828, 104.0668)).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "lat", "a kilometre away is not at the gate: {r}");
    let r = s.gql(Some(&guard), SCAN, scan_input(&json!("wuye://patrol/forged"), 30.5728, 104.0668)).await;
    assert_eq!(code(&r), "VALIDATION");
    let ok = s.ok(Some(&guard), SCAN, scan_input(&points[0]["code"], 30.57281, 104.06681)).await;
    assert!(ok["scanCheckpoint"]["scan"]["distanceM"].as_f64().unwrap() < 5.0);
    assert_eq!(ok["scanCheckpoint"]["scan"]["checkpointId"], points[0]["id"]);
    let r = s.gql(Some(&guard), SCAN, scan_input(&points[0]["code"], 30.57281, 104.06681)).await;
    assert_eq!(code(&r), "CONFLICT", "a point is scanned once");
    let tech2 = s.sign_in("tech2").await;
    assert_eq!(code(&s.gql(Some(&tech2), SCAN, scan_input(&points[1]["code"], 30.5738, 104.0672)).await), "FORBIDDEN");

    // the window closes with two points unscanned: missed, and the manager is told
    s.advance(31 * 60);
    let missed = "SELECT count(*) FROM patrol_tasks t JOIN patrol_routes r ON r.id = t.route_id WHERE r.name = '白班巡逻' AND t.state = 'missed'";
    assert_eq!(s.wait_for(missed, 1).await, 1);
    let told = "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.username = 'manager' AND n.body = '未巡检点位：2栋大堂、水泵房'";
    assert_eq!(s.wait_for(told, 1).await, 1);
    // scanning the closed patrol names its state (the clock moved past the old token's life)
    let guard = s.sign_in("guard1").await;
    let r = s.gql(Some(&guard), SCAN, scan_input(&points[1]["code"], 30.5738, 104.0672)).await;
    assert_eq!(code(&r), "CONFLICT", "{r}");
    assert_eq!(r["errors"][0]["extensions"]["details"]["currentState"], "MISSED");
    let manager = s.sign_in("manager").await;
    let from = (s.clock_now() - chrono::TimeDelta::hours(2)).to_rfc3339();
    let to = (s.clock_now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let list = s
        .ok(Some(&manager), "query($p: ID!, $f: DateTime!, $t: DateTime!) { patrolTasks(projectId: $p, from: $f, to: $t, first: 100) { edges { node { routeId state missed scans { checkpointId } } } } }", json!({"p": project, "f": from, "t": to}))
        .await;
    let route_id = route["createPatrolRoute"]["route"]["id"].clone();
    let t = list["patrolTasks"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["state"] == "MISSED" && e["node"]["routeId"] == route_id)
        .unwrap()["node"]
        .clone();
    assert_eq!(t["missed"], json!(["2栋大堂", "水泵房"]));
    assert_eq!(t["scans"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_scan_resent_on_a_weak_signal_is_recorded_once_and_a_closed_task_names_its_state() {
    // no background jobs: the test makes the patrols itself
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let project = s.ok(Some(&manager), "{ deviceByCode(code: \"JC-PUMP-02\") { projectId } }", json!({})).await["deviceByCode"]["projectId"].clone();
    let time = s.clock_now().with_timezone(&SH).format("%H:%M").to_string();
    let route = s
        .ok(
            Some(&manager),
            CREATE_ROUTE,
            json!({"i": {"projectId": project, "name": "重发巡逻", "times": [time], "windowMinutes": 30, "checkpoints": [
                {"name": "东门", "lat": 30.5728, "lng": 104.0668, "radiusM": 50},
                {"name": "2栋大堂", "lat": 30.5738, "lng": 104.0672, "radiusM": 50}],
                "clientMutationId": "route-1"}}),
        )
        .await;
    let route_id = route["createPatrolRoute"]["route"]["id"].clone();
    let points = route["createPatrolRoute"]["route"]["checkpoints"].as_array().unwrap().clone();
    wuye_api::maintenance::patrols::service::patrol_schedule(&s.state).await.unwrap();
    let pending = "SELECT count(*) FROM patrol_tasks t JOIN patrol_routes r ON r.id = t.route_id WHERE r.name = '重发巡逻' AND t.state = 'pending' AND t.starts_at <= now()";
    assert_eq!(s.scalar(pending).await, 1);
    let guard = s.sign_in("guard1").await;

    // sequential: the first answer was lost, the phone resends with the same id
    let first = s.ok(Some(&guard), SCAN, scan_retry(&points[0]["code"], 30.57281, 104.06681, "scan-east-1")).await;
    let again = s.ok(Some(&guard), SCAN, scan_retry(&points[0]["code"], 30.57281, 104.06681, "scan-east-1")).await;
    assert_eq!(first["scanCheckpoint"]["clientMutationId"], "scan-east-1");
    assert_eq!(again["scanCheckpoint"]["clientMutationId"], "scan-east-1");
    assert!(first["scanCheckpoint"]["scan"]["id"].is_string());
    assert_eq!(again["scanCheckpoint"]["scan"]["id"], first["scanCheckpoint"]["scan"]["id"]);
    // the same id with other input is another mutation: refused
    let r = s.gql(Some(&guard), SCAN, scan_retry(&points[0]["code"], 30.57282, 104.06681, "scan-east-1")).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "clientMutationId"), "{r}");
    // a new scan of the same point (no id, or another id) is refused as before
    let r = s.gql(Some(&guard), SCAN, scan_input(&points[0]["code"], 30.57281, 104.06681)).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "code"), "{r}");
    let r = s.gql(Some(&guard), SCAN, scan_retry(&points[0]["code"], 30.57281, 104.06681, "scan-east-2")).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "code"), "{r}");

    // concurrent: the same scan sent twice at once is recorded once, both answers show it
    // (a minute later: the guard walked over)
    s.advance(60);
    let guard = s.sign_in("guard1").await;
    let vars = scan_retry(&points[1]["code"], 30.5738, 104.0672, "scan-lobby-1");
    let (a, b) = tokio::join!(s.gql(Some(&guard), SCAN, vars.clone()), s.gql(Some(&guard), SCAN, vars.clone()));
    assert!(a.get("errors").is_none(), "{a}");
    assert!(b.get("errors").is_none(), "{b}");
    let lobby = a["data"]["scanCheckpoint"]["scan"]["id"].clone();
    assert!(lobby.is_string());
    assert_eq!(b["data"]["scanCheckpoint"]["scan"]["id"], lobby);
    let scans = "SELECT count(*) FROM patrol_scans s JOIN patrol_tasks t ON t.id = s.task_id JOIN patrol_routes r ON r.id = t.route_id WHERE r.name = '重发巡逻'";
    assert_eq!(s.scalar(scans).await, 2, "one scan per point");

    // every point scanned: the patrol is completed; a new scan names that state, a retry still answers
    let completed = "SELECT count(*) FROM patrol_tasks t JOIN patrol_routes r ON r.id = t.route_id WHERE r.name = '重发巡逻' AND t.state = 'completed'";
    assert_eq!(s.scalar(completed).await, 1);
    let r = s.gql(Some(&guard), SCAN, scan_input(&points[1]["code"], 30.5738, 104.0672)).await;
    assert_eq!(code(&r), "CONFLICT", "{r}");
    assert_eq!(r["errors"][0]["extensions"]["details"]["currentState"], "COMPLETED");
    let late = s.ok(Some(&guard), SCAN, vars).await;
    assert_eq!(late["scanCheckpoint"]["scan"]["id"], lobby);

    // the manager sees one completed patrol with both scans, each by the guard
    let guard_id = s.ok(Some(&guard), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].clone();
    let from = (s.clock_now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    let to = (s.clock_now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let list = s
        .ok(
            Some(&manager),
            "query($p: ID!, $f: DateTime!, $t: DateTime!) { patrolTasks(projectId: $p, from: $f, to: $t, first: 100) {
                edges { node { routeId state missed scans { id userId checkpointId } } } } }",
            json!({"p": project, "f": from, "t": to}),
        )
        .await;
    let mine: Vec<Value> = list["patrolTasks"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .filter(|t| t["routeId"] == route_id)
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["state"], "COMPLETED");
    assert_eq!(mine[0]["missed"], json!([]));
    let scans = mine[0]["scans"].as_array().unwrap();
    assert_eq!(scans.len(), 2);
    assert!(scans.iter().all(|x| x["userId"] == guard_id));
    assert_eq!(scans[1]["id"], lobby);
}

#[tokio::test]
async fn guards_cannot_read_checkpoint_codes_nor_scan_at_impossible_speed_or_with_a_vague_fix() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let project = s.ok(Some(&manager), "{ deviceByCode(code: \"JC-PUMP-02\") { projectId } }", json!({})).await["deviceByCode"]["projectId"].clone();
    let time = s.clock_now().with_timezone(&SH).format("%H:%M").to_string();
    let route = s
        .ok(
            Some(&manager),
            CREATE_ROUTE,
            json!({"i": {"projectId": project, "name": "快速巡逻", "times": [time], "windowMinutes": 60, "checkpoints": [
                {"name": "东门", "lat": 30.5728, "lng": 104.0668, "radiusM": 50},
                {"name": "北门", "lat": 30.5818, "lng": 104.0668, "radiusM": 50},
                {"name": "无坐标点"}]}}),
        )
        .await;
    let points = route["createPatrolRoute"]["route"]["checkpoints"].as_array().unwrap().clone();
    assert!(points[0]["code"].is_string(), "managers see the codes to print them");
    wuye_api::maintenance::patrols::service::patrol_schedule(&s.state).await.unwrap();

    // a guard sees where to walk, not the codes nor the coordinates
    let guard = s.sign_in("guard1").await;
    let q = "query($p: ID!) { patrolRoutes(projectId: $p, first: 50) { edges { node { name checkpoints { name code lat lng } } } } }";
    let routes = s.ok(Some(&guard), q, json!({"p": project})).await;
    let mine = routes["patrolRoutes"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"]["name"] == "快速巡逻")
        .unwrap()["node"]
        .clone();
    for c in mine["checkpoints"].as_array().unwrap() {
        assert!(c["name"].is_string());
        assert_eq!((&c["code"], &c["lat"], &c["lng"]), (&Value::Null, &Value::Null, &Value::Null), "{c}");
    }

    // a position the phone itself calls vague is no proof of presence
    let mut vague = scan_input(&points[0]["code"], 30.5728, 104.0668);
    vague["i"]["accuracyM"] = json!(300.0);
    let r = s.gql(Some(&guard), SCAN, vague).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "accuracyM"), "{r}");
    s.ok(Some(&guard), SCAN, scan_input(&points[0]["code"], 30.5728, 104.0668)).await;
    // the north gate is a kilometre away: thirty seconds later is too soon
    s.advance(30);
    let guard = s.sign_in("guard1").await;
    let r = s.gql(Some(&guard), SCAN, scan_input(&points[1]["code"], 30.5818, 104.0668)).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "code"), "{r}");
    assert!(r["errors"][0]["extensions"]["details"]["waitSecs"].as_i64().unwrap() > 100, "{r}");
    // after a plausible walk it counts
    s.advance(300);
    let guard = s.sign_in("guard1").await;
    s.ok(Some(&guard), SCAN, scan_input(&points[1]["code"], 30.5818, 104.0668)).await;
    // a point without coordinates still needs the minimum gap
    let r = s.gql(Some(&guard), SCAN, scan_input(&points[2]["code"], 30.5818, 104.0668)).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "code"), "{r}");
}

/// Publishes an elevator's trip counter as the device would, stamped `secs_ago` back.
async fn trips(s: &TestServer, code: &str, value: f64, secs_ago: i64) {
    let ts = (s.clock_now() - chrono::Duration::seconds(secs_ago)).to_rfc3339();
    let body = json!({"ts": ts, "values": {"trips": value, "mode": 1}}).to_string();
    let before = s.scalar("SELECT count(*) FROM telemetry").await;
    s.mqtt_publish(&format!("JCWY/{code}/telemetry"), body.as_bytes()).await;
    let deadline = Instant::now() + PATIENCE;
    while s.scalar("SELECT count(*) FROM telemetry").await <= before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const USAGE_TASKS: &str =
    "query($p: ID, $a: String) { maintenanceTasks(projectId: $p, state: PENDING, first: 2, after: $a) {
    edges { node { id planId deviceId dueDate dueCounter importance } } pageInfo { hasNextPage endCursor } } }";

/// The pending tasks of the given plans in the project, in list order, page by page.
async fn pending_of(s: &TestServer, token: &str, project: &Value, plans: &[&str]) -> Vec<Value> {
    let (mut out, mut after) = (Vec::new(), Value::Null);
    for _ in 0..100 {
        let r = s.ok(Some(token), USAGE_TASKS, json!({"p": project, "a": after})).await;
        let conn = &r["maintenanceTasks"];
        out.extend(
            conn["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"].clone())
                .filter(|t| plans.iter().any(|p| t["planId"] == *p)),
        );
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    out
}

#[tokio::test]
async fn a_usage_plan_falls_due_on_the_trip_counter_and_critical_devices_lead_the_list() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let d = s.ok(Some(&manager), "{ deviceByCode(code: \"JC-ELV-21\") { id projectId importance } }", json!({})).await;
    let (lift, project) = (d["deviceByCode"]["id"].clone(), d["deviceByCode"]["projectId"].clone());
    assert_eq!(d["deviceByCode"]["importance"], "CRITICAL");
    let tech1 = user_id(&s, &manager, "tech1").await;
    let today = s.clock_now().with_timezone(&SH).date_naive();
    let create = "mutation($i: CreateMaintenancePlanInput!) { createMaintenancePlan(input: $i) {
        plan { id intervalKind usage { metric every lead } } } }";
    let input = json!({"projectId": project, "deviceId": lift, "name": "曳引轮检查", "checklist": ["曳引轮磨损", "润滑"],
        "startDate": today.to_string(), "responsibleUserId": tech1,
        "usage": {"metric": "trips", "every": 1000.0, "lead": 500.0}});
    // a calendar interval and a counter at once, a counter no device could name, a lead
    // as long as the interval: each refused naming its field
    for (patch, field_name) in [
        (json!({"intervalKind": "MONTHLY"}), "intervalKind"),
        (json!({"usage": {"metric": "trips; DROP", "every": 1000.0}}), "usage.metric"),
        (json!({"usage": {"metric": "trips", "every": 1000.0, "lead": 1000.0}}), "usage.lead"),
        (json!({"usage": {"metric": "trips", "every": 0.0}}), "usage.every"),
        (json!({"usage": null}), "intervalKind"),
    ] {
        let mut bad = input.clone();
        for (k, v) in patch.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let r = s.gql(Some(&manager), create, json!({"i": bad})).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", field_name), "{patch}: {r}");
    }
    let made = s.ok(Some(&manager), create, json!({"i": input.clone()})).await;
    let p = &made["createMaintenancePlan"]["plan"];
    assert_eq!(p["intervalKind"], Value::Null);
    assert_eq!(p["usage"], json!({"metric": "trips", "every": 1000.0, "lead": 500.0}));
    let plan = p["id"].as_str().unwrap().to_owned();

    // first sight: the counter stands at 5,000 twenty hours ago, and the cycle counts from there
    trips(&s, "JC-ELV-21", 5_000.0, 20 * 3600).await;
    wuye_api::maintenance::plans::service::schedule(&s.state).await.unwrap();
    let tech = s.sign_in("tech1").await;
    assert!(pending_of(&s, &tech, &project, &[&plan]).await.is_empty(), "nothing used yet");
    // 400 trips on: not yet within the lead of 6,000
    trips(&s, "JC-ELV-21", 5_400.0, 10 * 3600).await;
    wuye_api::maintenance::plans::service::schedule(&s.state).await.unwrap();
    assert!(pending_of(&s, &tech, &project, &[&plan]).await.is_empty(), "not before the lead");
    // 5,500 now: due at 6,000, and at 500 trips per 20 hours that is tomorrow
    trips(&s, "JC-ELV-21", 5_500.0, 0).await;
    wuye_api::maintenance::plans::service::schedule(&s.state).await.unwrap();
    wuye_api::maintenance::plans::service::schedule(&s.state).await.unwrap();
    let got = pending_of(&s, &tech, &project, &[&plan]).await;
    assert_eq!(got.len(), 1, "one task however often the scheduler runs: {got:?}");
    assert_eq!(got[0]["dueCounter"], 6000.0);
    assert_eq!(got[0]["dueDate"], (today + chrono::Duration::days(1)).to_string());
    assert_eq!(
        s.wait_for("SELECT count(*) FROM notifications WHERE title LIKE '保养任务：%曳引轮检查' AND body LIKE '%trips 达到 6000%'", 1)
            .await,
        1
    );

    // a low-importance meter's calendar task due today still comes after the critical
    // elevator's due tomorrow
    let m = s.ok(Some(&manager), "{ deviceByCode(code: \"JC-WM-0002\") { id importance } }", json!({})).await;
    assert_eq!(m["deviceByCode"]["importance"], "LOW");
    let meter_plan = json!({"projectId": project, "deviceId": m["deviceByCode"]["id"], "name": "水表外观检查",
        "checklist": ["表盘清晰"], "intervalKind": "DAYS", "intervalDays": 30, "startDate": today.to_string(),
        "leadDays": 0, "responsibleUserId": tech1});
    let made = s.ok(Some(&manager), create, json!({"i": meter_plan})).await;
    let meter_plan = made["createMaintenancePlan"]["plan"]["id"].as_str().unwrap().to_owned();
    wuye_api::maintenance::plans::service::schedule(&s.state).await.unwrap();
    let got = pending_of(&s, &tech, &project, &[&plan, &meter_plan]).await;
    let order: Vec<(&str, &str)> =
        got.iter().map(|t| (t["importance"].as_str().unwrap(), t["dueDate"].as_str().unwrap())).collect();
    let (tomorrow, today_s) = ((today + chrono::Duration::days(1)).to_string(), today.to_string());
    assert_eq!(order, [("CRITICAL", tomorrow.as_str()), ("LOW", today_s.as_str())]);

    // done at 5,500: the next cycle is due at 7,000 (the schedule keeps its multiples)
    let done = json!({"taskId": got[0]["id"], "results": [{"item": "曳引轮磨损", "result": "PASS"}, {"item": "润滑", "result": "PASS"}]});
    s.ok(Some(&tech), COMPLETE, json!({"i": done})).await;
    trips(&s, "JC-ELV-21", 6_400.0, 0).await;
    wuye_api::maintenance::plans::service::schedule(&s.state).await.unwrap();
    assert!(pending_of(&s, &tech, &project, &[&plan]).await.is_empty(), "6,400 is short of 7,000 - 500");
    trips(&s, "JC-ELV-21", 6_600.0, 0).await;
    wuye_api::maintenance::plans::service::schedule(&s.state).await.unwrap();
    let got = pending_of(&s, &tech, &project, &[&plan]).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["dueCounter"], 7000.0);
}
