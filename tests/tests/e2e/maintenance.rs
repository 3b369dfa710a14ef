//! Maintenance plans → tasks ahead of the due date across month and year boundaries →
//! records (a failed item is a repair request); patrols with scans and missed points.

use chrono::{NaiveDate, TimeZone};
use serde_json::json;
use wuye_tests::{TestServer, code};

const SH: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// Moves the server's clock to 10:00 Shanghai on `day`.
fn travel_to(s: &TestServer, day: NaiveDate) {
    let target = SH.from_local_datetime(&day.and_hms_opt(10, 0, 0).unwrap()).unwrap().with_timezone(&chrono::Utc);
    s.advance((target - s.clock_now()).num_seconds());
}

async fn tasks_of(s: &TestServer, token: &str, plan: &str) -> Vec<serde_json::Value> {
    let q = "{ maintenanceTasks(first: 200) { id planId dueDate state overdue checklist } }";
    let r = s.ok(Some(token), q, json!({})).await;
    r["maintenanceTasks"].as_array().unwrap().iter().filter(|t| t["planId"] == plan).cloned().collect()
}

async fn wait_tasks(s: &TestServer, token: &str, plan: &str, n: usize) -> Vec<serde_json::Value> {
    let mut got = Vec::new();
    for _ in 0..100 {
        got = tasks_of(s, token, plan).await;
        if got.len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    got
}

#[tokio::test]
async fn a_monthly_plan_creates_tasks_ahead_across_month_and_year_ends_and_failed_items_become_repairs() {
    let s = TestServer::seeded_with(|c| c.iot.jobs = true).await;
    let manager = s.sign_in("manager").await;
    let d = s.ok(Some(&manager), "{ deviceByCode(code: \"JC-PUMP-02\") { id projectId } }", json!({})).await;
    let (device, project) = (d["deviceByCode"]["id"].clone(), d["deviceByCode"]["projectId"].clone());
    let tech1 =
        s.ok(Some(&manager), "{ users(first: 50) { nodes { id username } } }", json!({})).await["users"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == "tech1")
            .unwrap()["id"]
            .clone();
    // the plan is made on 20 Dec 2026, due on the 31st monthly: 31 Dec, 31 Jan, 28 Feb, 31 Mar
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    travel_to(&s, d(2026, 12, 20));
    let manager = s.sign_in("manager").await;
    let start = d(2026, 12, 31);
    let create = "mutation($i: MaintenancePlanInput!) { createMaintenancePlan(input: $i) { id } }";
    let mut input = json!({"projectId": project, "deviceId": device, "name": "水泵月度巡检保养",
        "checklist": ["轴承温度", "机械密封", "压力表"], "intervalKind": "MONTHLY", "startDate": start.to_string(),
        "leadDays": 3, "responsibleUserId": tech1});
    let tech = s.sign_in("tech1").await;
    assert_eq!(code(&s.gql(Some(&tech), create, json!({"i": input})).await), "FORBIDDEN", "technicians do not plan");
    input["intervalKind"] = json!("DAYS");
    let r = s.gql(Some(&manager), create, json!({"i": input})).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "intervalKind", "days need intervalDays: {r}");
    input["intervalKind"] = json!("MONTHLY");
    let plan = s.ok(Some(&manager), create, json!({"i": input})).await["createMaintenancePlan"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // three days before the due date the task appears, and tech1 is told
    travel_to(&s, d(2026, 12, 27));
    let tech = s.sign_in("tech1").await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(tasks_of(&s, &tech, &plan).await.is_empty(), "not before the lead time");
    travel_to(&s, d(2026, 12, 28));
    let tech = s.sign_in("tech1").await;
    let tasks = wait_tasks(&s, &tech, &plan, 1).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["dueDate"], "2026-12-31");
    assert_eq!(
        s.wait_for("SELECT count(*) FROM notifications WHERE title LIKE '保养任务：%水泵月度巡检保养'", 1).await,
        1
    );

    // a failed item records a repair request on the device; every item must be answered
    let complete =
        "mutation($i: CompleteMaintenanceTaskInput!) { completeMaintenanceTask(input: $i) { id results parts } }";
    let partial = json!({"taskId": tasks[0]["id"], "results": [{"item": "轴承温度", "passed": true}]});
    let r = s.gql(Some(&tech), complete, json!({"i": partial})).await;
    assert_eq!((code(&r), r["errors"][0]["extensions"]["field"].as_str()), ("VALIDATION", Some("results")));
    let guard = s.sign_in("guard1").await;
    let full = json!({"taskId": tasks[0]["id"], "results": [
        {"item": "轴承温度", "passed": true}, {"item": "机械密封", "passed": false, "note": "渗水"}, {"item": "压力表", "passed": true}],
        "parts": [{"name": "机械密封件", "quantity": 1}], "notes": "已报修", "photos": ["uploads/2026/11/seal.jpg"]});
    assert_eq!(code(&s.gql(Some(&guard), complete, json!({"i": full})).await), "FORBIDDEN");
    let rec = s.ok(Some(&tech), complete, json!({"i": full})).await;
    assert_eq!(rec["completeMaintenanceTask"]["parts"], json!([{"name": "机械密封件", "quantity": 1}]));
    assert_eq!(code(&s.gql(Some(&tech), complete, json!({"i": full})).await), "CONFLICT", "done once");
    let manager = s.sign_in("manager").await;
    let rr = s
        .ok(Some(&manager), "query($d: ID!) { repairRequests(deviceId: $d) { source reason } }", json!({"d": device}))
        .await;
    assert_eq!(
        rr["repairRequests"],
        json!([{"source": "maintenance", "reason": "水泵月度巡检保养：机械密封 不合格（渗水）"}])
    );
    let archive = s
        .ok(Some(&tech), "query($d: ID!) { maintenanceRecords(deviceId: $d) { notes photos } }", json!({"d": device}))
        .await;
    assert_eq!(archive["maintenanceRecords"], json!([{"notes": "已报修", "photos": ["uploads/2026/11/seal.jpg"]}]));

    // across the year's end, February clamped to its last day, March back on the 31st
    for (n, due) in [d(2027, 1, 31), d(2027, 2, 28), d(2027, 3, 31)].into_iter().enumerate() {
        travel_to(&s, due - chrono::TimeDelta::days(3));
        let tech = s.sign_in("tech1").await;
        let tasks = wait_tasks(&s, &tech, &plan, n + 2).await;
        let dues: Vec<&str> = tasks.iter().map(|t| t["dueDate"].as_str().unwrap()).collect();
        assert_eq!(dues.len(), n + 2, "{dues:?}");
        assert_eq!(dues.last().copied(), Some(due.to_string().as_str()));
    }

    // overdue: the day after, the manager hears of it (once per task)
    travel_to(&s, d(2027, 4, 1));
    let plan_id: uuid::Uuid = plan.parse().unwrap();
    let mut told = 0;
    for _ in 0..100 {
        told = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.username = 'manager'
             AND n.title LIKE '保养任务逾期%' AND (n.data->>'maintenanceTaskId')::uuid IN (SELECT id FROM maintenance_tasks WHERE plan_id = $1)",
        )
        .bind(plan_id)
        .fetch_one(&s.db)
        .await
        .unwrap();
        if told == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(told, 3, "Jan, Feb and Mar tasks were never done");
    let tech = s.sign_in("tech1").await;
    assert!(tasks_of(&s, &tech, &plan).await.iter().any(|t| t["overdue"] == true));
}

#[tokio::test]
async fn patrols_are_scanned_in_order_on_the_spot_and_missed_points_reported() {
    let s = TestServer::seeded_with(|c| c.iot.jobs = true).await;
    let manager = s.sign_in("manager").await;
    let project = s.ok(Some(&manager), "{ deviceByCode(code: \"JC-PUMP-02\") { projectId } }", json!({})).await["deviceByCode"]["projectId"].clone();
    // a patrol starting this minute
    let now = s.clock_now().with_timezone(&SH);
    let time = now.format("%H:%M").to_string();
    let create =
        "mutation($i: PatrolRouteInput!) { createPatrolRoute(input: $i) { id checkpoints { name code seq } } }";
    let route = s
        .ok(
            Some(&manager),
            create,
            json!({"i": {"projectId": project, "name": "白班巡逻", "times": [time], "windowMinutes": 30, "checkpoints": [
                {"name": "东门", "lat": 30.5728, "lng": 104.0668, "radiusM": 50},
                {"name": "2栋大堂", "lat": 30.5738, "lng": 104.0672, "radiusM": 50},
                {"name": "水泵房", "lat": 30.5730, "lng": 104.0660, "radiusM": 50}]}}),
        )
        .await;
    let points = route["createPatrolRoute"]["checkpoints"].as_array().unwrap().clone();
    let bad = s
        .gql(
            Some(&manager),
            create,
            json!({"i": {"projectId": project, "name": "x", "times": ["25:00"], "checkpoints": [{"name": "a"}]}}),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "times");
    let pending = "SELECT count(*) FROM patrol_tasks t JOIN patrol_routes r ON r.id = t.route_id WHERE r.name = '白班巡逻' AND t.state = 'pending' AND t.starts_at <= now()";
    assert_eq!(s.wait_for(pending, 1).await, 1);

    let guard = s.sign_in("guard1").await;
    let scan = "mutation($c: String!, $lat: Float!, $lng: Float!) { scanCheckpoint(code: $c, lat: $lat, lng: $lng) { distanceM } }";
    let r = s.gql(Some(&guard), scan, json!({"c": points[1]["code"], "lat": 30.5738, "lng": 104.0672})).await;
    assert_eq!(
        (code(&r), r["errors"][0]["extensions"]["field"].as_str()),
        ("VALIDATION", Some("code")),
        "in order: {r}"
    );
    let r = s.gql(Some(&guard), scan, json!({"c": points[0]["code"], "lat": 30.5828, "lng": 104.0668})).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "lat", "a kilometre away is not at the gate: {r}");
    let r = s.gql(Some(&guard), scan, json!({"c": "wuye://patrol/forged", "lat": 30.5728, "lng": 104.0668})).await;
    assert_eq!(code(&r), "VALIDATION");
    let ok = s.ok(Some(&guard), scan, json!({"c": points[0]["code"], "lat": 30.57281, "lng": 104.06681})).await;
    assert!(ok["scanCheckpoint"]["distanceM"].as_f64().unwrap() < 5.0);
    let r = s.gql(Some(&guard), scan, json!({"c": points[0]["code"], "lat": 30.57281, "lng": 104.06681})).await;
    assert_eq!(code(&r), "CONFLICT", "a point is scanned once");
    let tech2 = s.sign_in("tech2").await;
    assert_eq!(
        code(&s.gql(Some(&tech2), scan, json!({"c": points[1]["code"], "lat": 30.5738, "lng": 104.0672})).await),
        "FORBIDDEN"
    );

    // the window closes with two points unscanned: missed, and the manager is told
    s.advance(31 * 60);
    let missed = "SELECT count(*) FROM patrol_tasks t JOIN patrol_routes r ON r.id = t.route_id WHERE r.name = '白班巡逻' AND t.state = 'missed'";
    assert_eq!(s.wait_for(missed, 1).await, 1);
    let told = "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.username = 'manager' AND n.body = '未巡检点位：2栋大堂、水泵房'";
    assert_eq!(s.wait_for(told, 1).await, 1);
    let manager = s.sign_in("manager").await;
    let from = (s.clock_now() - chrono::TimeDelta::hours(2)).to_rfc3339();
    let to = (s.clock_now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let list = s
        .ok(Some(&manager), "query($p: ID!, $f: DateTime!, $t: DateTime!) { patrolTasks(projectId: $p, from: $f, to: $t) { state missed scans { checkpointId } } }", json!({"p": project, "f": from, "t": to}))
        .await;
    let t = list["patrolTasks"].as_array().unwrap().iter().find(|t| t["state"] == "missed").unwrap().clone();
    assert_eq!(t["missed"], json!(["2栋大堂", "水泵房"]));
    assert_eq!(t["scans"].as_array().unwrap().len(), 1);
}
