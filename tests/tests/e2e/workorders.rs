//! Work orders end to end: an owner's repair through every state, who may see and move an
//! order, fifty technicians grabbing one order at once, retries, dispatch modes, return
//! visits and auto-confirmation on the test clock, and device alarms that open, join and
//! cancel orders over the real Mosquitto.

use serde_json::{Value, json};
use uuid::Uuid;
use wuye_api::kit::idempotency::Retry;
use wuye_api::rbac::model::GrantScope;
use wuye_api::rbac::service as rbac;
use wuye_tests::{TestServer, code, field, ws};

const ORDER: &str = "id number state source category priority assigneeId ownerId houseId deviceId result parts { name quantity } charge rating cancelReason log { action fromState toState note }";

fn q_order() -> String {
    format!("query($id: ID!) {{ workOrder(id: $id) {{ {ORDER} }} }}")
}

fn report_q() -> String {
    format!(
        "mutation($i: ReportRepairInput!) {{ reportRepair(input: $i) {{ clientMutationId workOrder {{ {ORDER} }} }} }}"
    )
}

/// Runs a transition mutation `name` with `input`; returns the whole response.
async fn step(s: &TestServer, token: &str, name: &str, input_type: &str, input: Value) -> Value {
    let q =
        format!("mutation($i: {input_type}!) {{ {name}(input: $i) {{ clientMutationId workOrder {{ {ORDER} }} }} }}");
    s.gql(Some(token), &q, json!({ "i": input })).await
}

/// Like `step`, but it must succeed; returns the order.
async fn ok_step(s: &TestServer, token: &str, name: &str, input_type: &str, input: Value) -> Value {
    let r = step(s, token, name, input_type, input).await;
    assert!(r.get("errors").is_none(), "{name}: {r}");
    r["data"][name]["workOrder"].clone()
}

async fn my_house(s: &TestServer, token: &str) -> String {
    let d = s.ok(Some(token), "{ myHouses { id } }", json!({})).await;
    d["myHouses"][0]["id"].as_str().unwrap().to_owned()
}

async fn project_id(s: &TestServer, token: &str, code: &str) -> String {
    let d = s
        .ok(Some(token), "query($c: String) { projects(search: $c) { edges { node { id } } } }", json!({"c": code}))
        .await;
    d["projects"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned()
}

/// In the estate 锦城花园 (geofence 30.5728, 104.0668, 300 m).
fn here() -> Value {
    json!({"lat": 30.5729, "lng": 104.0669, "accuracyM": 8.0})
}

fn actions(order: &Value) -> Vec<String> {
    order["log"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn an_owner_repair_goes_from_report_to_rating_and_nobody_else_may_touch_it() {
    let s = TestServer::seeded().await;
    let owner = s.sign_in("13800000006").await;
    let house = my_house(&s, &owner).await;
    let (photo, _) = s.upload_photo(&owner, "WORK_ORDER").await;
    let input = json!({"houseId": house, "category": "HVAC", "description": "空调漏水",
        "photos": [photo], "clientMutationId": "report-1"});
    let r = s.ok(Some(&owner), &report_q(), json!({"i": input})).await;
    let order = r["reportRepair"]["workOrder"].clone();
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!((order["state"].as_str(), order["source"].as_str()), (Some("SUBMITTED"), Some("OWNER")));
    assert!(order["number"].as_str().unwrap().starts_with("GD"));
    // the phone resends: one order
    let again = s.ok(Some(&owner), &report_q(), json!({"i": input})).await;
    assert_eq!(again["reportRepair"]["workOrder"]["id"], id.as_str());
    assert_eq!(s.scalar("SELECT count(*) FROM work_orders WHERE description = '空调漏水'").await, 1);
    // tech1 serves the estate: the new order was pushed to them
    let pushed = "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id
                  WHERE n.category = 'work_order' AND u.username = 'tech1' AND n.body LIKE '%空调暖通报修%'";
    assert_eq!(s.scalar(pushed).await, 1);

    // another owner of the same building, a technician of the other project and a second
    // company's technician see nothing and can do nothing
    let neighbour = s.sign_in("13800000002").await;
    assert_eq!(code(&s.gql(Some(&neighbour), &q_order(), json!({"id": id})).await), "NOT_FOUND");
    let cancel_in = json!({"workOrderId": id, "reason": "不修了"});
    assert_eq!(
        code(&step(&s, &neighbour, "cancelWorkOrder", "CancelWorkOrderInput", cancel_in.clone()).await),
        "NOT_FOUND"
    );
    let mine = s.ok(Some(&neighbour), "{ workOrders { edges { node { id } } } }", json!({})).await;
    assert_eq!(mine["workOrders"]["edges"], json!([]));
    // the photo is the owner's: nobody else may attach it, and it is served only through a
    // signed URL that expires; the public file route never serves it
    let n_house = my_house(&s, &neighbour).await;
    let theirs = json!({"houseId": n_house, "category": "HVAC", "description": "借用照片", "photos": [photo]});
    let r = s.gql(Some(&neighbour), &report_q(), json!({"i": theirs})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "photos"), "{r}");
    let urls = s.ok(Some(&owner), "query($id: ID!) { workOrder(id: $id) { photoUrls } }", json!({"id": id})).await;
    let url = format!("{}{}", s.url, urls["workOrder"]["photoUrls"][0].as_str().unwrap());
    let got = s.http.get(&url).send().await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert!(got.bytes().await.unwrap().starts_with(&[0xFF, 0xD8, 0xFF]));
    let forged = format!("{}x", url.trim_end_matches(|c: char| c != '='));
    assert_eq!(s.http.get(&forged).send().await.unwrap().status().as_u16(), 404);
    let public = format!("{}/files/{photo}", s.url);
    assert_eq!(s.http.get(&public).send().await.unwrap().status().as_u16(), 404);
    s.advance(301);
    assert_eq!(s.http.get(&url).send().await.unwrap().status().as_u16(), 410, "signed URLs expire");
    let owner = s.sign_in("13800000006").await;

    let tech2 = s.sign_in("tech2").await;
    assert_eq!(code(&s.gql(Some(&tech2), &q_order(), json!({"id": id})).await), "NOT_FOUND");
    let grab = json!({"workOrderId": id, "clientMutationId": "grab-1"});
    assert_eq!(code(&step(&s, &tech2, "grabWorkOrder", "WorkOrderInput", grab.clone()).await), "NOT_FOUND");
    wuye_api::onboarding::seed::seed_company(&s.state, wuye_api::onboarding::seed::SECOND).await.unwrap();
    let other = s.sign_in("b-tech1").await;
    assert_eq!(code(&step(&s, &other, "grabWorkOrder", "WorkOrderInput", grab.clone()).await), "NOT_FOUND");
    // an owner may not grab
    assert_eq!(code(&step(&s, &owner, "grabWorkOrder", "WorkOrderInput", grab.clone()).await), "FORBIDDEN");

    // tech1 finds it in the pool and grabs it; the retry applies once
    let tech1 = s.sign_in("tech1").await;
    let pool = s.ok(Some(&tech1), "{ workOrders(pool: true) { edges { node { id } } } }", json!({})).await;
    assert_eq!(pool["workOrders"]["edges"][0]["node"]["id"], id.as_str());
    let w = ok_step(&s, &tech1, "grabWorkOrder", "WorkOrderInput", grab.clone()).await;
    assert_eq!(w["state"], "ACCEPTED");
    let w = ok_step(&s, &tech1, "grabWorkOrder", "WorkOrderInput", grab.clone()).await;
    assert_eq!(actions(&w), ["SUBMIT", "GRAB"], "the retry changed nothing");
    // the owner cannot cancel what has been taken on
    let r = step(&s, &owner, "cancelWorkOrder", "CancelWorkOrderInput", cancel_in.clone()).await;
    assert_eq!(code(&r), "CONFLICT");
    assert_eq!(r["errors"][0]["extensions"]["details"]["currentState"], "ACCEPTED");

    // arriving: the position must be given and inside the estate's geofence
    let start = |p: Value| json!({"workOrderId": id, "position": p});
    let r = step(&s, &tech1, "startWorkOrder", "StartWorkOrderInput", json!({"workOrderId": id})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "position"));
    let far = json!({"lat": 30.60, "lng": 104.10, "accuracyM": 5.0});
    let r = step(&s, &tech1, "startWorkOrder", "StartWorkOrderInput", start(far)).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "position"), "{r}");
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("距离"), "{r}");
    let w = ok_step(&s, &tech1, "startWorkOrder", "StartWorkOrderInput", start(here())).await;
    assert_eq!(w["state"], "IN_PROGRESS");
    // waiting for parts, then on
    let w =
        ok_step(&s, &tech1, "pauseWorkOrder", "WorkOrderReasonInput", json!({"workOrderId": id, "reason": "等配件"}))
            .await;
    assert_eq!(w["state"], "PAUSED");
    let r = step(&s, &tech1, "completeWorkOrder", "CompleteWorkOrderInput", json!({"workOrderId": id, "result": "x"}))
        .await;
    assert_eq!(r["errors"][0]["extensions"]["details"]["currentState"], "PAUSED", "{r}");
    let w = ok_step(&s, &tech1, "resumeWorkOrder", "WorkOrderInput", json!({"workOrderId": id})).await;
    assert_eq!(w["state"], "IN_PROGRESS");

    // bad completions are refused whole, naming the field
    for (bad, f) in [
        (json!({"workOrderId": id, "result": ""}), "result"),
        (json!({"workOrderId": id, "result": "ok", "charge": "-1"}), "charge"),
        (json!({"workOrderId": id, "result": "ok", "charge": "1.234"}), "charge"),
        (json!({"workOrderId": id, "result": "ok", "parts": [{"name": "阀", "quantity": 0}]}), "parts.quantity"),
        (json!({"workOrderId": id, "result": "ok", "photos": ["../../etc/passwd"]}), "photos"),
    ] {
        let r = step(&s, &tech1, "completeWorkOrder", "CompleteWorkOrderInput", bad).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", f), "{r}");
    }
    let done = json!({"workOrderId": id, "result": "更换角阀", "parts": [{"name": "角阀", "quantity": 1}],
        "labourMinutes": 40, "charge": "50.5", "cashReceiptNo": "R-0001"});
    let w = ok_step(&s, &tech1, "completeWorkOrder", "CompleteWorkOrderInput", done.clone()).await;
    assert_eq!(w["state"], "COMPLETED");
    assert_eq!(w["charge"], "50.50");
    let paid = "SELECT count(*) FROM charges WHERE status = 'paid' AND amount = 50.50 AND cash_receipt_no = 'R-0001'
                AND house_id IS NOT NULL AND owner_id IS NOT NULL";
    assert_eq!(s.scalar(paid).await, 1, "the chargeable repair is on the house, paid in cash");
    // the owner rejects: back to the technician
    let w =
        ok_step(&s, &owner, "rejectWorkOrder", "WorkOrderReasonInput", json!({"workOrderId": id, "reason": "还在漏"}))
            .await;
    assert_eq!(w["state"], "ACCEPTED");
    assert_eq!(s.scalar("SELECT count(*) FROM charges WHERE status = 'paid'").await, 1, "cash paid stays paid");
    ok_step(&s, &tech1, "startWorkOrder", "StartWorkOrderInput", start(here())).await;
    let mut done = done;
    done["cashReceiptNo"] = Value::Null;
    ok_step(&s, &tech1, "completeWorkOrder", "CompleteWorkOrderInput", done).await;
    assert_eq!(
        s.scalar("SELECT count(*) FROM charges WHERE status = 'paid' AND amount = 50.50").await,
        1,
        "the owner paid once and is not billed again"
    );
    assert_eq!(s.scalar("SELECT count(*) FROM charges").await, 1);
    // only the owner side (or customer service) confirms; a rating is 1 to 5
    let confirm = |rating: i32| json!({"workOrderId": id, "rating": rating, "comment": "师傅很专业"});
    assert_eq!(code(&step(&s, &tech1, "confirmWorkOrder", "ConfirmWorkOrderInput", confirm(5)).await), "FORBIDDEN");
    let r = step(&s, &owner, "confirmWorkOrder", "ConfirmWorkOrderInput", confirm(6)).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "rating"));
    let w = ok_step(&s, &owner, "confirmWorkOrder", "ConfirmWorkOrderInput", confirm(5)).await;
    assert_eq!(
        (w["state"].as_str(), w["rating"].as_i64()),
        (Some("CLOSED"), Some(5)),
        "no return visit for air conditioning"
    );
    assert_eq!(
        actions(&w),
        ["SUBMIT", "GRAB", "START", "PAUSE", "RESUME", "COMPLETE", "REJECT", "START", "COMPLETE", "CONFIRM"]
    );
    // the owner heard of each step that concerns them
    let told = "SELECT count(*) FROM notifications n JOIN owners o ON o.user_id = n.user_id
                WHERE n.category = 'work_order' AND o.phone = '13800000006'";
    assert!(s.scalar(told).await >= 4, "grab, arrival, pause, completion");
    // counts per state for the technician
    let c = s.ok(Some(&tech1), "{ workOrderCounts(mine: true) { state count } }", json!({})).await;
    let closed = c["workOrderCounts"].as_array().unwrap().iter().find(|x| x["state"] == "CLOSED").unwrap().clone();
    assert_eq!(closed["count"], 1);
}

/// `n` technicians of the estate, signed in.
async fn technicians(s: &TestServer, n: usize) -> Vec<String> {
    technicians_in(s, n, "JCHY", "grab").await
}

/// `n` new technicians of the project with `code`, signed in.
async fn technicians_in(s: &TestServer, n: usize, code: &str, prefix: &str) -> Vec<String> {
    let admin_id: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE username = 'admin'").fetch_one(&s.state.db).await.unwrap();
    let company: Uuid = sqlx::query_scalar("SELECT company_id FROM users WHERE id = $1")
        .bind(admin_id)
        .fetch_one(&s.state.db)
        .await
        .unwrap();
    let estate: Uuid = sqlx::query_scalar("SELECT id FROM projects WHERE code = $2 AND company_id = $1")
        .bind(company)
        .bind(code)
        .fetch_one(&s.state.db)
        .await
        .unwrap();
    let admin = rbac::load_actor(&s.state, admin_id, company, i64::MAX).await.unwrap();
    let roles = rbac::roles(&s.state, &admin, None, 100).await.unwrap();
    let tech_role = roles.iter().find(|r| r.code == "technician").unwrap().id;
    let mut tokens = Vec::new();
    for i in 0..n {
        let username = format!("{prefix}{i:02}");
        let new = rbac::NewStaff {
            username: &username,
            name: "抢单师傅",
            phone: None,
            initial_password: wuye_tests::PASSWORD,
            must_change_password: false,
        };
        let u = rbac::create_staff_user(&s.state, &admin, &Retry::none(), new).await.unwrap();
        let g =
            rbac::GrantInput { user_id: u, role_id: tech_role, scope: GrantScope::Projects, project_ids: vec![estate] };
        rbac::assign_role(&s.state, &admin, &Retry::none(), g).await.unwrap();
        tokens.push(s.sign_in(&username).await);
    }
    tokens
}

#[tokio::test]
async fn fifty_technicians_grab_one_order_at_once_and_exactly_one_wins() {
    let s = TestServer::seeded().await;
    let owner = s.sign_in("13800000003").await;
    let house = my_house(&s, &owner).await;
    let input = json!({"houseId": house, "category": "ELECTRICAL", "description": "插座没电"});
    let id = s.ok(Some(&owner), &report_q(), json!({"i": input})).await["reportRepair"]["workOrder"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tokens = technicians(&s, 50).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let mut tasks = Vec::new();
    for t in tokens {
        let (url, http, id, barrier) = (s.url.clone(), s.http.clone(), id.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let q = "mutation($i: WorkOrderInput!) { grabWorkOrder(input: $i) { workOrder { state assigneeId } } }";
            let body = json!({"query": q, "variables": {"i": {"workOrderId": id}}});
            barrier.wait().await;
            let r: Value = http
                .post(format!("{url}/graphql"))
                .bearer_auth(t)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r
        }));
    }
    let mut won = 0;
    let mut conflicts = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.get("errors").is_none() {
            won += 1;
            assert_eq!(r["data"]["grabWorkOrder"]["workOrder"]["state"], "ACCEPTED");
        } else {
            assert_eq!(code(&r), "CONFLICT", "{r}");
            assert_eq!(r["errors"][0]["extensions"]["details"]["currentState"], "ACCEPTED", "{r}");
            conflicts += 1;
        }
    }
    assert_eq!((won, conflicts), (1, 49));
    assert_eq!(s.scalar("SELECT count(*) FROM work_order_events WHERE action = 'grab'").await, 1);
}

#[tokio::test]
async fn dispatch_modes_return_visits_and_auto_confirmation() {
    let s = TestServer::seeded_with(|c| c.iot.jobs = true).await;
    let manager = s.sign_in("manager").await;
    let cs = s.sign_in("cs1").await;
    let tech1 = s.sign_in("tech1").await;
    let estate = project_id(&s, &manager, "JCHY").await;
    let settings = "mutation($i: SetWorkOrderSettingsInput!) { setWorkOrderSettings(input: $i) { settings { dispatch autoConfirmDays visitCategories reporterRelations } } }";

    // manual: nobody grabs; customer service assigns, and only to someone who may do the work
    let r = s
        .ok(
            Some(&cs),
            settings,
            json!({"i": {"projectId": estate, "dispatch": "MANUAL", "visitCategories": ["CIVIL"]}}),
        )
        .await;
    assert_eq!(r["setWorkOrderSettings"]["settings"]["dispatch"], "MANUAL");
    assert_eq!(
        code(&s.gql(Some(&tech1), settings, json!({"i": {"projectId": estate, "dispatch": "GRAB"}})).await),
        "FORBIDDEN"
    );
    let owner = s.sign_in("13800000004").await;
    let house = my_house(&s, &owner).await;
    let input = json!({"houseId": house, "category": "CIVIL", "description": "窗户关不严"});
    let id = s.ok(Some(&owner), &report_q(), json!({"i": input})).await["reportRepair"]["workOrder"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = step(&s, &tech1, "grabWorkOrder", "WorkOrderInput", json!({"workOrderId": id})).await;
    assert_eq!(
        (code(&r), r["errors"][0]["extensions"]["reason"].as_str()),
        ("FORBIDDEN", Some("GRAB_DISABLED")),
        "{r}"
    );
    let guard_id: String = s
        .ok(Some(&manager), "{ users(search: \"赵保安\") { edges { node { id } } } }", json!({}))
        .await["users"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tech1_id =
        s.ok(Some(&tech1), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].as_str().unwrap().to_owned();
    let assign = |to: &str| json!({"workOrderId": id, "assigneeId": to});
    let r = step(&s, &cs, "assignWorkOrder", "AssignWorkOrderInput", assign(&guard_id)).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "assigneeId"), "a guard does no repairs: {r}");
    assert_eq!(
        code(&step(&s, &tech1, "assignWorkOrder", "AssignWorkOrderInput", assign(&tech1_id)).await),
        "FORBIDDEN"
    );
    let w = ok_step(&s, &cs, "assignWorkOrder", "AssignWorkOrderInput", assign(&tech1_id)).await;
    assert_eq!((w["state"].as_str(), w["assigneeId"].as_str()), (Some("ASSIGNED"), Some(tech1_id.as_str())));
    // 退单 needs a reason and puts it back in the pool
    let r = step(&s, &tech1, "returnWorkOrder", "WorkOrderReasonInput", json!({"workOrderId": id, "reason": ""})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "reason"));
    let w =
        ok_step(&s, &tech1, "returnWorkOrder", "WorkOrderReasonInput", json!({"workOrderId": id, "reason": "不在岗"}))
            .await;
    assert_eq!((w["state"].as_str(), w["assigneeId"].as_str()), (Some("SUBMITTED"), None));
    ok_step(&s, &cs, "assignWorkOrder", "AssignWorkOrderInput", assign(&tech1_id)).await;
    let w = ok_step(&s, &tech1, "acceptWorkOrder", "WorkOrderInput", json!({"workOrderId": id})).await;
    assert_eq!(w["state"], "ACCEPTED");
    ok_step(&s, &tech1, "startWorkOrder", "StartWorkOrderInput", json!({"workOrderId": id, "position": here()})).await;
    ok_step(
        &s,
        &tech1,
        "completeWorkOrder",
        "CompleteWorkOrderInput",
        json!({"workOrderId": id, "result": "调整合页"}),
    )
    .await;
    // the owner confirms an owner's order, not customer service in their place
    let r = step(&s, &cs, "confirmWorkOrder", "ConfirmWorkOrderInput", json!({"workOrderId": id, "rating": 5})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    // civil orders need a return visit: confirmed, then closed by customer service
    let w =
        ok_step(&s, &owner, "confirmWorkOrder", "ConfirmWorkOrderInput", json!({"workOrderId": id, "rating": 4})).await;
    assert_eq!(w["state"], "CONFIRMED");
    let visit = json!({"workOrderId": id, "note": "业主满意"});
    assert_eq!(code(&step(&s, &tech1, "visitWorkOrder", "VisitWorkOrderInput", visit.clone()).await), "FORBIDDEN");
    let w = ok_step(&s, &cs, "visitWorkOrder", "VisitWorkOrderInput", visit.clone()).await;
    assert_eq!(w["state"], "CLOSED");
    let r = step(&s, &cs, "visitWorkOrder", "VisitWorkOrderInput", visit).await;
    assert_eq!(r["errors"][0]["extensions"]["details"]["currentState"], "CLOSED");

    // automatic: the one on-duty technician gets the next order at once
    s.ok(Some(&cs), settings, json!({"i": {"projectId": estate, "dispatch": "AUTO"}})).await;
    let input = json!({"houseId": house, "category": "PLUMBING", "description": "马桶堵塞"});
    let w = s.ok(Some(&owner), &report_q(), json!({"i": input})).await["reportRepair"]["workOrder"].clone();
    assert_eq!((w["state"].as_str(), w["assigneeId"].as_str()), (Some("ASSIGNED"), Some(tech1_id.as_str())), "{w}");
    let id2 = w["id"].as_str().unwrap().to_owned();
    // the owner may cancel before acceptance; staff must say why
    let r = step(&s, &cs, "cancelWorkOrder", "CancelWorkOrderInput", json!({"workOrderId": id2})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "reason"));
    let w = ok_step(&s, &owner, "cancelWorkOrder", "CancelWorkOrderInput", json!({"workOrderId": id2})).await;
    assert_eq!(w["state"], "CANCELLED");

    // a completed order the owner leaves alone is confirmed after the project's days
    let input = json!({"houseId": house, "category": "PLUMBING", "description": "热水器不热"});
    let id3 = s.ok(Some(&owner), &report_q(), json!({"i": input})).await["reportRepair"]["workOrder"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok_step(&s, &tech1, "acceptWorkOrder", "WorkOrderInput", json!({"workOrderId": id3})).await;
    ok_step(&s, &tech1, "startWorkOrder", "StartWorkOrderInput", json!({"workOrderId": id3, "position": here()})).await;
    ok_step(
        &s,
        &tech1,
        "completeWorkOrder",
        "CompleteWorkOrderInput",
        json!({"workOrderId": id3, "result": "更换温控器"}),
    )
    .await;
    s.advance(3 * 86_400 + 60);
    let closed =
        "SELECT count(*) FROM work_orders WHERE state = 'closed' AND rating IS NULL AND confirmed_at IS NOT NULL";
    assert_eq!(s.wait_for(closed, 1).await, 1, "auto-confirmed after 3 days");

    // the report over those days: three orders, one cancelled, one rated 4 by its owner
    let manager = s.sign_in("manager").await;
    let owner = s.sign_in("13800000004").await;
    let today = s.clock_now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let q = "query($p: ID, $f: NaiveDate!, $t: NaiveDate!) { workOrderReport(projectId: $p, from: $f, to: $t) {
        total byState { state count } byCategory { category count } avgResponseMinutes avgCompletionMinutes
        slaBreachRate rated avgRating technicians { name assigned completed avgRating } } }";
    let vars = json!({"p": estate, "f": (today - chrono::Days::new(7)).to_string(), "t": today.to_string()});
    let r = s.ok(Some(&manager), q, vars.clone()).await["workOrderReport"].clone();
    assert_eq!(r["total"], 3, "{r}");
    assert_eq!((r["rated"].as_i64(), r["avgRating"].as_f64()), (Some(1), Some(4.0)));
    assert!(r["byState"].as_array().unwrap().contains(&json!({"state": "CANCELLED", "count": 1})), "{r}");
    assert_eq!(r["technicians"][0]["name"], "李师傅");
    assert_eq!(r["technicians"][0]["completed"], 2);
    assert!(r["avgResponseMinutes"].is_number() && r["avgCompletionMinutes"].is_number());
    // owners get no report; ranges are bounded
    assert_eq!(code(&s.gql(Some(&owner), q, vars.clone()).await), "FORBIDDEN");
    let backwards = json!({"p": estate, "f": today.to_string(), "t": (today - chrono::Days::new(1)).to_string()});
    let r = s.gql(Some(&manager), q, backwards).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "to"));
}

#[tokio::test]
async fn alarms_open_one_order_per_device_and_rule_clear_it_or_are_resolved_by_it() {
    let s = TestServer::seeded_with(|c| c.iot.jobs = true).await;
    let tech1 = s.sign_in("tech1").await;
    let manager = s.sign_in("manager").await;
    let orders = "SELECT count(*) FROM work_orders WHERE source = 'alarm'";

    // a pump fault opens one order; clearing and raising again (a flapping device) joins it
    s.mqtt_publish("JCWY/JC-PUMP-01/event", r#"{"code":"E-OVERHEAT","message":"电机过热"}"#.as_bytes()).await;
    assert_eq!(s.wait_for(orders, 1).await, 1);
    for _ in 0..3 {
        s.mqtt_publish("JCWY/JC-PUMP-01/event", br#"{"code":"E-OVERHEAT","cleared":true}"#).await;
        assert_eq!(s.wait_for("SELECT count(*) FROM alarms WHERE state <> 'resolved'", 0).await, 0);
        s.mqtt_publish("JCWY/JC-PUMP-01/event", br#"{"code":"E-OVERHEAT"}"#).await;
        assert_eq!(s.wait_for("SELECT count(*) FROM alarms WHERE state = 'open'", 1).await, 1);
    }
    assert_eq!(s.scalar("SELECT count(*) FROM alarms").await, 4);
    assert_eq!(s.scalar(orders).await, 1, "a flapping device keeps one order");
    assert_eq!(s.scalar("SELECT count(*) FROM repair_requests WHERE work_order_id IS NULL").await, 0);
    let list = s
        .ok(
            Some(&tech1),
            "{ workOrders(pool: true) { edges { node { id source priority category state } } } }",
            json!({}),
        )
        .await;
    let w = list["workOrders"]["edges"][0]["node"].clone();
    assert_eq!(
        w,
        json!({"id": w["id"], "source": "ALARM", "priority": "HIGH", "category": "PLUMBING", "state": "SUBMITTED"})
    );
    let id = w["id"].as_str().unwrap().to_owned();

    // taken on, worked and completed: the open alarm is resolved in the same transaction
    ok_step(&s, &tech1, "grabWorkOrder", "WorkOrderInput", json!({"workOrderId": id})).await;
    ok_step(&s, &tech1, "startWorkOrder", "StartWorkOrderInput", json!({"workOrderId": id, "position": here()})).await;
    ok_step(
        &s,
        &tech1,
        "completeWorkOrder",
        "CompleteWorkOrderInput",
        json!({"workOrderId": id, "result": "更换轴承"}),
    )
    .await;
    assert_eq!(s.scalar("SELECT count(*) FROM alarms WHERE state <> 'resolved'").await, 0);
    assert_eq!(s.scalar("SELECT count(*) FROM alarms WHERE resolution LIKE '工单%更换轴承'").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM repair_requests WHERE status <> 'closed'").await, 0);
    // without an owner, customer service or the manager confirms
    let w = ok_step(&s, &manager, "confirmWorkOrder", "ConfirmWorkOrderInput", json!({"workOrderId": id, "rating": 5}))
        .await;
    assert_eq!(w["state"], "CLOSED");

    // the same fault again opens a new order; a manager who does the work cannot confirm it,
    // and cancelling it ends its alarm too
    s.mqtt_publish("JCWY/JC-PUMP-01/event", br#"{"code":"E-OVERHEAT"}"#).await;
    assert_eq!(s.wait_for(orders, 2).await, 2);
    let list = s.ok(Some(&manager), "{ workOrders(pool: true) { edges { node { id } } } }", json!({})).await;
    let id2 = list["workOrders"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    ok_step(&s, &manager, "grabWorkOrder", "WorkOrderInput", json!({"workOrderId": id2})).await;
    ok_step(&s, &manager, "startWorkOrder", "StartWorkOrderInput", json!({"workOrderId": id2, "position": here()}))
        .await;
    ok_step(&s, &manager, "completeWorkOrder", "CompleteWorkOrderInput", json!({"workOrderId": id2, "result": "复位"}))
        .await;
    let r =
        step(&s, &manager, "confirmWorkOrder", "ConfirmWorkOrderInput", json!({"workOrderId": id2, "rating": 5})).await;
    assert_eq!((code(&r), r["errors"][0]["extensions"]["reason"].as_str()), ("FORBIDDEN", Some("OWN_WORK")), "{r}");
    s.mqtt_publish("JCWY/JC-PUMP-01/event", br#"{"code":"E-OVERHEAT"}"#).await;
    assert_eq!(s.wait_for(orders, 3).await, 3);
    let list = s.ok(Some(&manager), "{ workOrders(pool: true) { edges { node { id } } } }", json!({})).await;
    let id3 = list["workOrders"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    let cancel = json!({"workOrderId": id3, "reason": "误报，现场正常"});
    let w = ok_step(&s, &manager, "cancelWorkOrder", "CancelWorkOrderInput", cancel).await;
    assert_eq!(w["state"], "CANCELLED");
    assert_eq!(s.scalar("SELECT count(*) FROM alarms WHERE state <> 'resolved'").await, 0, "cancelled with its alarm");

    // a repair request recorded before work orders existed gets its order from the scheduler
    let legacy =
        "INSERT INTO repair_requests (id, company_id, project_id, device_id, reason, source, status, created_at)
                  SELECT gen_random_uuid(), company_id, project_id, id, '旧报修：水泵异响', 'manual', 'open', now()
                  FROM devices WHERE code = 'JC-PUMP-02'";
    sqlx::query(legacy).execute(&s.state.db).await.unwrap();
    let opened = "SELECT count(*) FROM work_orders w JOIN repair_requests r ON r.work_order_id = w.id
                  WHERE r.reason = '旧报修：水泵异响' AND w.state = 'submitted'";
    assert_eq!(s.wait_for(opened, 1).await, 1);

    // a trapped passenger is urgent; the alarm clears before anyone takes the order on:
    // after the project's grace the order is cancelled with the reason
    s.mqtt_publish("JCWY/JC-ELV-11/event", r#"{"code":"TRAPPED","message":"轿厢困人"}"#.as_bytes()).await;
    assert_eq!(s.wait_for(orders, 4).await, 4);
    let urgent =
        "SELECT count(*) FROM work_orders WHERE priority = 'urgent' AND category = 'elevator' AND state = 'submitted'";
    assert_eq!(s.scalar(urgent).await, 1);
    s.mqtt_publish("JCWY/JC-ELV-11/event", br#"{"code":"TRAPPED","cleared":true}"#).await;
    let cleared = "SELECT count(*) FROM work_orders WHERE alarm_cleared_at IS NOT NULL AND state = 'submitted'";
    assert_eq!(s.wait_for(cleared, 1).await, 1);
    s.advance(301);
    let cancelled = "SELECT count(*) FROM work_orders WHERE state = 'cancelled' AND cancel_reason = '告警已消除'";
    assert_eq!(s.wait_for(cancelled, 1).await, 1);
    let open = "SELECT count(*) FROM repair_requests WHERE status <> 'closed' AND reason <> '旧报修：水泵异响'";
    assert_eq!(s.scalar(open).await, 0);
    // the device's orders, for its archive
    let dev = s.ok(Some(&manager), "query { deviceByCode(code: \"JC-ELV-11\") { id } }", json!({})).await;
    let r = s
        .ok(
            Some(&manager),
            "query($d: ID!) { workOrders(deviceId: $d) { edges { node { state cancelReason log { action } } } } }",
            json!({"d": dev["deviceByCode"]["id"]}),
        )
        .await;
    assert_eq!(r["workOrders"]["edges"][0]["node"]["state"], "CANCELLED");
}

#[tokio::test]
async fn owners_follow_their_repairs_live_and_staff_only_their_projects() {
    let s = TestServer::seeded().await;
    let owner = s.sign_in("13800000005").await;
    let tech1 = s.sign_in("tech1").await;
    let tech2 = s.sign_in("tech2").await;
    let manager = s.sign_in("manager").await;
    let estate = project_id(&s, &manager, "JCHY").await;
    let mut mine = ws::connect(&s.ws_url(), json!({"accessToken": owner})).await.unwrap();
    ws::subscribe(&mut mine, "w", "subscription { workOrderChanged { id state assigneeId } }").await;
    let mut staff = ws::connect(&s.ws_url(), json!({"accessToken": tech1})).await.unwrap();
    ws::subscribe(
        &mut staff,
        "p",
        &format!("subscription {{ workOrderChanged(projectId: \"{estate}\") {{ id state }} }}"),
    )
    .await;
    // tech2 serves the tower only
    let mut other = ws::connect(&s.ws_url(), json!({"accessToken": tech2})).await.unwrap();
    ws::subscribe(
        &mut other,
        "x",
        &format!("subscription {{ workOrderChanged(projectId: \"{estate}\") {{ id state }} }}"),
    )
    .await;
    let refused = ws::next_json(&mut other).await.unwrap();
    assert!(refused["type"] == "error" || refused["payload"]["errors"].is_array(), "{refused}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let house = my_house(&s, &owner).await;
    let input = json!({"houseId": house, "category": "HVAC", "description": "空调不制冷"});
    let id = s.ok(Some(&owner), &report_q(), json!({"i": input})).await["reportRepair"]["workOrder"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = crate::iot::next_of(&mut staff, "p").await.expect("the project's staff see the new order");
    assert_eq!(seen["payload"]["data"]["workOrderChanged"]["id"], id.as_str());
    let first = crate::iot::next_of(&mut mine, "w").await.expect("the owner sees their report");
    assert_eq!(first["payload"]["data"]["workOrderChanged"]["state"], "SUBMITTED");
    ok_step(&s, &tech1, "grabWorkOrder", "WorkOrderInput", json!({"workOrderId": id})).await;
    let msg = crate::iot::next_of(&mut mine, "w").await.expect("the owner sees the grab");
    assert_eq!(msg["payload"]["data"]["workOrderChanged"]["state"], "ACCEPTED");
    assert!(msg["payload"]["data"]["workOrderChanged"]["assigneeId"].is_string());
}

/// Notifications of `username` whose title says `what`, over `sms` or not.
fn escalations(username: &str, what: &str, sms: bool) -> String {
    format!(
        "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id
         WHERE n.category = 'work_order' AND u.username = '{username}' AND n.title LIKE '%{what}%'
           AND ('sms' = ANY(n.channels)) = {sms}"
    )
}

async fn count(s: &TestServer, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&s.state.db).await.unwrap()
}

async fn wait_count(s: &TestServer, sql: &str, want: i64) -> i64 {
    let mut got = -1;
    for _ in 0..200 {
        got = count(s, sql).await;
        if got == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    got
}

#[tokio::test]
async fn the_sla_ladder_pushes_the_technicians_then_the_manager_then_texts_and_pauses_stop_the_clock() {
    let s = TestServer::seeded_with(|c| c.iot.jobs = true).await;
    let manager = s.sign_in("manager").await;
    let cs = s.sign_in("cs1").await;
    let tech1 = s.sign_in("tech1").await;
    let estate = project_id(&s, &manager, "JCHY").await;
    let sla = "mutation($i: SetWorkOrderSlaInput!) { setWorkOrderSla(input: $i) { projectId } }";
    let limits = |r: i32, c: i32| json!({"i": {"projectId": estate, "category": "PLUMBING", "priority": "NORMAL", "responseMinutes": r, "completionMinutes": c}});
    let r = s.gql(Some(&cs), sla, limits(30, 10)).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "completionMinutes"));
    assert_eq!(code(&s.gql(Some(&tech1), sla, limits(10, 240)).await), "FORBIDDEN");
    s.ok(Some(&cs), sla, limits(10, 240)).await;

    let owner = s.sign_in("13800000007").await;
    let house = my_house(&s, &owner).await;
    let input = json!({"houseId": house, "category": "PLUMBING", "description": "卫生间地漏返水"});
    let id = s.ok(Some(&owner), &report_q(), json!({"i": input})).await["reportRepair"]["workOrder"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = "query($id: ID!) { workOrder(id: $id) { createdAt sla { responseDueAt completionDueAt breached responseLevel completionLevel } } }";
    let w = s.ok(Some(&manager), q, json!({"id": id})).await["workOrder"].clone();
    let created = chrono::DateTime::parse_from_rfc3339(w["createdAt"].as_str().unwrap()).unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(w["sla"]["responseDueAt"].as_str().unwrap()).unwrap();
    assert_eq!((due - created).num_minutes(), 10, "the project's limit for plumbing");
    assert_eq!(w["sla"]["breached"], false);

    // not taken on in time: technicians, then the manager, then the manager's phone
    let techs = escalations("tech1", "超时未接单", false);
    let pushed = escalations("manager", "超时未接单", false);
    let texted = escalations("manager", "超时未接单", true);
    s.advance(601);
    assert_eq!(wait_count(&s, &techs, 1).await, 1);
    assert_eq!(count(&s, &pushed).await, 0);
    s.advance(600);
    assert_eq!(wait_count(&s, &pushed, 1).await, 1);
    assert_eq!(count(&s, &texted).await, 0);
    s.advance(600);
    assert_eq!(wait_count(&s, &texted, 1).await, 1);
    // each step once, however many rounds run
    s.advance(3_600);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!((count(&s, &techs).await, count(&s, &pushed).await, count(&s, &texted).await), (1, 1, 1));
    let manager = s.sign_in("manager").await;
    let w = s.ok(Some(&manager), q, json!({"id": id})).await["workOrder"].clone();
    assert_eq!((w["sla"]["breached"].as_bool(), w["sla"]["responseLevel"].as_i64()), (Some(true), Some(3)));

    // taken on 1.5 h after the report; paused for three hours the clock stands still
    let tech1 = s.sign_in("tech1").await;
    ok_step(&s, &tech1, "grabWorkOrder", "WorkOrderInput", json!({"workOrderId": id})).await;
    ok_step(&s, &tech1, "startWorkOrder", "StartWorkOrderInput", json!({"workOrderId": id, "position": here()})).await;
    ok_step(&s, &tech1, "pauseWorkOrder", "WorkOrderReasonInput", json!({"workOrderId": id, "reason": "等地漏配件"}))
        .await;
    s.advance(3 * 3_600);
    let late = escalations("tech1", "超时未完成", false);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(count(&s, &late).await, 0, "paused: no completion deadline runs");
    let tech1 = s.sign_in("tech1").await;
    ok_step(&s, &tech1, "resumeWorkOrder", "WorkOrderInput", json!({"workOrderId": id})).await;
    // 4.5 h after the report, 3 h of it paused: due at 7 h
    s.advance(2 * 3_600);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(count(&s, &late).await, 0, "still within 4 h of working time");
    s.advance(3_600);
    assert_eq!(wait_count(&s, &late, 1).await, 1, "past 4 h of working time: the technician is told");
}

#[tokio::test]
async fn owners_reach_their_property_office_and_see_staff_only_when_published() {
    let s = TestServer::seeded().await;
    let owner = s.sign_in("13800000008").await;
    let manager = s.sign_in("manager").await;
    let tech1 = s.sign_in("tech1").await;
    let estate = project_id(&s, &manager, "JCHY").await;
    let q = "{ myPropertyCompany { name offices { projectName servicePhone contacts { role name phone } } } }";
    let r = s.ok(Some(&owner), q, json!({})).await["myPropertyCompany"].clone();
    assert_eq!(r["name"], "成都锦城物业服务有限公司");
    assert_eq!(r["offices"].as_array().unwrap().len(), 1, "only the estate the owner lives in: {r}");
    assert_eq!(r["offices"][0]["projectName"], "锦城花园");
    assert_eq!(r["offices"][0]["contacts"], json!([]), "nothing published yet");
    let set = "mutation($i: SetPropertyOfficeInput!) { setPropertyOffice(input: $i) { projectId } }";
    let card = |phone: &str| json!({"i": {"projectId": estate, "servicePhone": phone, "publishContacts": true}});
    assert_eq!(code(&s.gql(Some(&tech1), set, card("028-88886666")).await), "FORBIDDEN");
    let r = s.gql(Some(&manager), set, card("028-8888<script>")).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "servicePhone"));
    s.ok(Some(&manager), set, card("028-88886666")).await;
    let r = s.ok(Some(&owner), q, json!({})).await["myPropertyCompany"]["offices"][0].clone();
    assert_eq!(r["servicePhone"], "028-88886666");
    let contacts = r["contacts"].as_array().unwrap();
    assert!(contacts.contains(&json!({"role": "MANAGER", "name": "王经理", "phone": "13900000001"})), "{r}");
    assert!(contacts.contains(&json!({"role": "CUSTOMER_SERVICE", "name": "刘客服", "phone": "13900000004"})), "{r}");
    // staff without a house have no office card to read
    assert_eq!(code(&s.gql(Some(&tech1), q, json!({})).await), "FORBIDDEN");
}

#[tokio::test]
async fn a_transfer_resent_by_the_technician_answers_like_the_first() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let tech1 = s.sign_in("tech1").await;
    let owner = s.sign_in("13800000011").await;
    let house = my_house(&s, &owner).await;
    let input = json!({"houseId": house, "category": "ELECTRICAL", "description": "开关跳闸"});
    let id = s.ok(Some(&owner), &report_q(), json!({"i": input})).await["reportRepair"]["workOrder"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok_step(&s, &tech1, "grabWorkOrder", "WorkOrderInput", json!({"workOrderId": id})).await;
    let manager_id = s.ok(Some(&manager), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let transfer =
        json!({"workOrderId": id, "assigneeId": manager_id, "reason": "需要电工证", "clientMutationId": "tr-1"});
    let first = ok_step(&s, &tech1, "transferWorkOrder", "TransferWorkOrderInput", transfer.clone()).await;
    assert_eq!(first["assigneeId"], manager_id.as_str());
    // tech1 is no longer the assignee, yet the phone's resend gets the same answer
    let again = ok_step(&s, &tech1, "transferWorkOrder", "TransferWorkOrderInput", transfer).await;
    assert_eq!(again["assigneeId"], manager_id.as_str());
    assert_eq!(s.scalar("SELECT count(*) FROM work_order_events WHERE action = 'transfer'").await, 1);
    // without the id, the same move is refused: it is not theirs to transfer any more
    let fresh = json!({"workOrderId": id, "assigneeId": manager_id, "reason": "再转"});
    let r = step(&s, &tech1, "transferWorkOrder", "TransferWorkOrderInput", fresh).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
}

/// The titles of the orders among `ours` in the pool, as the dispatch queue orders them
/// (walked a page of one at a time, so the cursor is used).
async fn queue(s: &TestServer, token: &str, ours: &[String]) -> Vec<(String, String)> {
    let q = "query($a: String) { workOrders(pool: true, orderBy: URGENCY, first: 1, after: $a) {
        edges { node { id title importance } } pageInfo { hasNextPage endCursor } } }";
    let (mut out, mut after) = (Vec::new(), Value::Null);
    for _ in 0..50 {
        let r = s.ok(Some(token), q, json!({"a": after})).await;
        let conn = &r["workOrders"];
        for e in conn["edges"].as_array().unwrap() {
            if ours.iter().any(|o| e["node"]["id"] == o.as_str()) {
                out.push((
                    e["node"]["title"].as_str().unwrap().to_owned(),
                    e["node"]["importance"].as_str().unwrap().to_owned(),
                ));
            }
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    out
}

#[tokio::test]
async fn the_queue_puts_urgent_and_critical_first_and_a_device_repair_joins_its_archive() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let tech1 = s.sign_in("tech1").await;
    let project = project_id(&s, &manager, "JCHY").await;
    let device = |code: &'static str| {
        let (s, manager) = (&s, &manager);
        async move {
            let q = format!("{{ deviceByCode(code: \"{code}\") {{ id importance }} }}");
            s.ok(Some(manager), &q, json!({})).await["deviceByCode"].clone()
        }
    };
    let (meter, lift) = (device("JC-WM-0001").await, device("JC-ELV-12").await);
    assert_eq!((meter["importance"].as_str(), lift["importance"].as_str()), (Some("LOW"), Some("CRITICAL")));
    let create = |title: &'static str, category: &'static str, priority: &'static str, device: Value| {
        let (s, manager, project) = (&s, &manager, &project);
        async move {
            let q = "mutation($i: CreateWorkOrderInput!) { createWorkOrder(input: $i) { workOrder { id } } }";
            let i = json!({"projectId": project, "category": category, "priority": priority, "title": title,
                "deviceId": device, "location": "公区"});
            s.ok(Some(manager), q, json!({"i": i})).await["createWorkOrder"]["workOrder"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // made in this order: the low meter first, the critical elevator third
    let ours = vec![
        create("水表读数异常", "PLUMBING", "NORMAL", meter["id"].clone()).await,
        create("大堂灯不亮", "PUBLIC_FACILITY", "NORMAL", Value::Null).await,
        create("电梯异响", "ELEVATOR", "NORMAL", lift["id"].clone()).await,
        create("消防通道堵塞", "FIRE_SAFETY", "HIGH", Value::Null).await,
    ];
    let titles = |q: Vec<(String, String)>| q.into_iter().map(|(t, _)| t).collect::<Vec<_>>();
    let got = queue(&s, &tech1, &ours).await;
    assert_eq!(titles(got.clone()), ["消防通道堵塞", "电梯异响", "大堂灯不亮", "水表读数异常"], "{got:?}");
    assert_eq!(got[1].1, "CRITICAL");
    assert_eq!(got[3].1, "LOW");
    // importance is the device's as it is now: the meter made critical moves up, and among
    // equals the longest waiting comes first
    let up = "mutation($i: UpdateDeviceInput!) { updateDevice(input: $i) { device { importance } } }";
    let r = s.ok(Some(&manager), up, json!({"i": {"deviceId": meter["id"], "importance": "CRITICAL"}})).await;
    assert_eq!(r["updateDevice"]["device"]["importance"], "CRITICAL");
    assert_eq!(titles(queue(&s, &tech1, &ours).await), ["消防通道堵塞", "水表读数异常", "电梯异响", "大堂灯不亮"]);
    let bad = s
        .gql(
            Some(&tech1),
            "{ workOrders(pool: true, orderBy: URGENCY, after: \"bm9wZQ\") { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!((code(&bad), field(&bad)), ("VALIDATION", "after"));
    // the queue shows what the list shows: an owner sees none of the estate's orders, and
    // a technician of the tower none of the estate's
    let q = "{ workOrders(orderBy: URGENCY) { edges { node { id } } } }";
    let owner = s.sign_in("13800000006").await;
    assert_eq!(s.ok(Some(&owner), q, json!({})).await["workOrders"]["edges"], json!([]));
    let tower = technicians_in(&s, 1, "TFGJ", "tower").await;
    assert_eq!(s.ok(Some(&tower[0]), q, json!({})).await["workOrders"]["edges"], json!([]));
    assert_eq!(s.ok(Some(&tech1), q, json!({})).await["workOrders"]["edges"].as_array().unwrap().len(), 4);

    // the elevator repaired: its result and parts go into the elevator's archive
    let id = &ours[2];
    ok_step(&s, &tech1, "grabWorkOrder", "WorkOrderInput", json!({"workOrderId": id})).await;
    ok_step(&s, &tech1, "startWorkOrder", "StartWorkOrderInput", json!({"workOrderId": id, "position": here()})).await;
    let done = json!({"workOrderId": id, "result": "更换门机皮带", "parts": [{"name": "门机皮带", "quantity": 1}]});
    ok_step(&s, &tech1, "completeWorkOrder", "CompleteWorkOrderInput", done.clone()).await;
    let archive = "query($d: ID!, $k: MaintenanceRecordKind) { maintenanceRecords(deviceId: $d, kind: $k) {
        edges { node { kind workOrderId notes staffId results { item } parts { name quantity } } } } }";
    let read = |kind: Value| {
        let (s, manager, lift) = (&s, &manager, &lift);
        async move {
            let r = s.ok(Some(manager), archive, json!({"d": lift["id"], "k": kind})).await;
            r["maintenanceRecords"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect::<Vec<_>>()
        }
    };
    let repairs = read(json!("REPAIR")).await;
    assert_eq!(repairs.len(), 1, "{repairs:?}");
    assert_eq!(
        (&repairs[0]["kind"], &repairs[0]["workOrderId"], &repairs[0]["notes"], &repairs[0]["results"]),
        (&json!("REPAIR"), &json!(id), &json!("更换门机皮带"), &json!([]))
    );
    assert_eq!(repairs[0]["parts"], json!([{"name": "门机皮带", "quantity": 1}]));
    assert!(read(Value::Null).await.iter().any(|r| r["workOrderId"] == id.as_str()), "beside the maintenance records");
    assert!(read(json!("MAINTENANCE")).await.iter().all(|r| r["kind"] == "MAINTENANCE"));
    // the result rejected: out of the archive until the work is done again, then in once
    let reject = json!({"workOrderId": id, "reason": "仍有异响"});
    ok_step(&s, &manager, "rejectWorkOrder", "WorkOrderReasonInput", reject).await;
    assert!(read(json!("REPAIR")).await.is_empty());
    ok_step(&s, &tech1, "startWorkOrder", "StartWorkOrderInput", json!({"workOrderId": id, "position": here()})).await;
    let again = json!({"workOrderId": id, "result": "更换门机皮带并调整门刀",
        "parts": [{"name": "门机皮带", "quantity": 1}, {"name": "门刀", "quantity": 1}]});
    ok_step(&s, &tech1, "completeWorkOrder", "CompleteWorkOrderInput", again).await;
    let repairs = read(json!("REPAIR")).await;
    assert_eq!(repairs.len(), 1);
    assert_eq!(repairs[0]["parts"].as_array().unwrap().len(), 2);
    // a guard cannot read the archive
    let guard = s.sign_in("guard1").await;
    let r = s.gql(Some(&guard), archive, json!({"d": lift["id"], "k": "REPAIR"})).await;
    assert_eq!(code(&r), "FORBIDDEN");
}

#[tokio::test]
async fn the_queue_ranks_in_sql_as_in_rust() {
    use wuye_api::equipment::model::Importance;
    use wuye_api::workorders::model::{Priority, urgency};
    let (_name, url) = wuye_tests::fresh_database().await;
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    for p in Priority::ALL {
        for i in Importance::ALL {
            let sql: i16 = sqlx::query_scalar("SELECT work_order_urgency($1, $2)")
                .bind(p.as_str())
                .bind(i.as_str())
                .fetch_one(&db)
                .await
                .unwrap();
            assert_eq!(sql, urgency(*p, *i), "{p} {i}");
        }
    }
    let none: i16 = sqlx::query_scalar("SELECT work_order_urgency('normal', NULL)").fetch_one(&db).await.unwrap();
    assert_eq!(none, urgency(Priority::Normal, Importance::Normal), "no device counts as normal");
}
