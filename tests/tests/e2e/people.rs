//! Employee records and certificates: HR writes a record (the ID-card number encrypted,
//! masked for readers without `pii:read`, refused when bad or another employee's); an
//! employee sees and edits only their own allowed fields; a manager reads only the staff
//! of their projects; leaving disables the account everywhere; certificates remind 30 and
//! 7 days before they expire, once each; work that needs a certificate is not offered to
//! a holder of an expired one.

use serde_json::{Value, json};
use wuye_tests::{PASSWORD, TestServer, code, field, reason};

const EMPLOYEE: &str = "userId name phone recorded gender idCardNumber hireDate position department status leftOn
    emergencyContactName emergencyContactPhone photoUrl certificates { id kind number valid daysLeft expiresOn }";

fn save_q() -> String {
    format!("mutation($i: SaveEmployeeInput!) {{ saveEmployee(input: $i) {{ employee {{ {EMPLOYEE} }} }} }}")
}

fn get_q() -> String {
    format!("query($u: ID!) {{ employee(userId: $u) {{ {EMPLOYEE} }} }}")
}

const ADD_CERT: &str =
    "mutation($i: AddCertificateInput!) { addCertificate(input: $i) { certificate { id kind valid daysLeft } } }";
const SIGN_IN: &str = "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { accessToken } }";

async fn user_id(s: &TestServer, token: &str) -> String {
    s.ok(Some(token), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].as_str().unwrap().to_owned()
}

fn days(s: &TestServer, n: i64) -> String {
    (s.clock_now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive() + chrono::TimeDelta::days(n)).to_string()
}

#[tokio::test]
async fn records_are_private_validated_and_scoped() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let tech1 = s.sign_in("tech1").await;
    let t1 = user_id(&s, &tech1).await;
    let t2 = user_id(&s, &s.sign_in("tech2").await).await;
    let (photo, _) = s.upload_photo(&admin, "STAFF").await;
    let record = json!({"userId": t1, "gender": "MALE", "idCardNumber": "11010519491231002x", "hireDate": "2020-03-01",
        "position": "水电工", "department": "工程部", "photo": photo,
        "emergencyContactName": "李太太", "emergencyContactPhone": "+86 139-0000-0099"});
    let e = s.ok(Some(&admin), &save_q(), json!({"i": record})).await["saveEmployee"]["employee"].clone();
    assert_eq!(e["name"], "李师傅", "the name stays on the account");
    assert_eq!(e["idCardNumber"], "11010519491231002X", "admin holds pii:read");
    assert_eq!(e["emergencyContactPhone"], "13900000099", "a phone written three ways is one number");
    assert!(e["photoUrl"].as_str().unwrap().starts_with("/private/"));
    let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT id_card_enc FROM employees WHERE user_id = $1::uuid")
        .bind(&t1)
        .fetch_one(&s.db)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored.unwrap()).contains("110105"), "encrypted at rest");

    // bad input names the field; nothing is written
    for (patch, f) in [
        (json!({"idCardNumber": "110105194912310021"}), "idCardNumber"),
        (json!({"emergencyContactPhone": "12345"}), "emergencyContactPhone"),
        (json!({"hireDate": "1900-01-01"}), "hireDate"),
        (json!({"position": "岗".repeat(51)}), "position"),
    ] {
        let mut i = json!({"userId": t1});
        for (k, v) in patch.as_object().unwrap() {
            i[k] = v.clone();
        }
        let r = s.gql(Some(&admin), &save_q(), json!({"i": i})).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", f), "{r}");
    }
    // the same person cannot be two employees
    let r = s.gql(Some(&admin), &save_q(), json!({"i": {"userId": t2, "idCardNumber": "11010519491231002X"}})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "idCardNumber"), "{r}");
    // a photo someone else uploaded cannot be attached
    let (other_photo, _) = s.upload_photo(&tech1, "STAFF").await;
    let r = s.gql(Some(&admin), &save_q(), json!({"i": {"userId": t2, "photo": other_photo}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "photo"), "{r}");

    // the employee: their own record in clear; their own allowed fields only
    let mine = s.ok(Some(&tech1), &format!("{{ myEmployeeRecord {{ {EMPLOYEE} }} }}"), json!({})).await;
    assert_eq!(mine["myEmployeeRecord"]["idCardNumber"], "11010519491231002X");
    let upd = "mutation($i: UpdateMyEmployeeRecordInput!) { updateMyEmployeeRecord(input: $i) { employee { emergencyContactName emergencyContactPhone position } } }";
    let r = s
        .ok(Some(&tech1), upd, json!({"i": {"emergencyContactName": "李女士", "emergencyContactPhone": "13900000098"}}))
        .await;
    assert_eq!(r["updateMyEmployeeRecord"]["employee"]["emergencyContactName"], "李女士");
    assert_eq!(r["updateMyEmployeeRecord"]["employee"]["position"], "水电工", "left as HR wrote it");
    assert_eq!(
        code(&s.gql(Some(&tech1), &save_q(), json!({"i": {"userId": t1, "position": "经理"}})).await),
        "FORBIDDEN"
    );
    assert_eq!(code(&s.gql(Some(&tech1), &get_q(), json!({"u": t2})).await), "NOT_FOUND", "not another's record");

    // a reader without pii:read sees masks; a manager only the staff of their projects
    let role = s
        .ok(
            Some(&admin),
            "mutation { createRole(input: {code: \"hr_clerk\", name: \"人事专员\", permissions: [\"staff:read\", \"staff:write\", \"project:read\"]}) { role { id } } }",
            json!({}),
        )
        .await["createRole"]["role"]["id"]
        .clone();
    let estate: String = sqlx::query_scalar("SELECT id::text FROM projects WHERE code = 'JCHY' AND company_id = (SELECT company_id FROM users WHERE id = $1::uuid)")
        .bind(&t1)
        .fetch_one(&s.db)
        .await
        .unwrap();
    let cs1 = user_id(&s, &s.sign_in("cs1").await).await;
    let grant = "mutation($u: ID!, $r: ID!, $p: [ID!]) { assignRole(input: {userId: $u, roleId: $r, scope: PROJECTS, projectIds: $p}) { assignment { id } } }";
    s.ok(Some(&admin), grant, json!({"u": cs1, "r": role, "p": [estate]})).await;
    let cs = s.sign_in("cs1").await;
    let seen = s.ok(Some(&cs), &get_q(), json!({"u": t1})).await["employee"].clone();
    assert_eq!(seen["idCardNumber"], "110105********002X", "{seen}");
    assert_eq!(seen["phone"], "139****0002");
    assert_eq!(seen["emergencyContactPhone"], "139****0098");
    // tech2 works in the tower only: not in cs1's estate
    assert_eq!(code(&s.gql(Some(&cs), &get_q(), json!({"u": t2})).await), "NOT_FOUND");
    let list = s
        .ok(Some(&cs), "{ employees(first: 50) { edges { node { userId name } } } }", json!({}))
        .await["employees"]["edges"]
        .clone();
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|e| e["node"]["userId"].as_str().unwrap()).collect();
    assert!(ids.contains(&t1.as_str()) && !ids.contains(&t2.as_str()), "{list}");
    // finance works company-wide: in every project
    let fin = user_id(&s, &s.sign_in("finance1").await).await;
    assert!(ids.contains(&fin.as_str()));
    // a search by phone digits would unmask them: names only without pii:read
    let found = s.ok(Some(&cs), "{ employees(search: \"0002\") { edges { node { userId } } } }", json!({})).await;
    assert_eq!(found["employees"]["edges"], json!([]), "{found}");

    // the project's HR clerk edits the records of the estate's staff only
    let r = s
        .ok(Some(&cs), &save_q(), json!({"i": {"userId": t1, "position": "高级水电工", "department": "工程部"}}))
        .await;
    assert_eq!(r["saveEmployee"]["employee"]["idCardNumber"], "110105********002X", "kept, and still masked");
    let r = s.gql(Some(&cs), &save_q(), json!({"i": {"userId": fin, "position": "出纳"}})).await;
    assert_eq!((code(&r), reason(&r)), ("FORBIDDEN", "CANNOT_MANAGE"), "finance works company-wide: {r}");
    let status = "mutation($u: ID!, $s: EmployeeStatus!) { setEmployeeStatus(input: {userId: $u, status: $s}) { employee { status } } }";
    let admin_id = user_id(&s, &admin).await;
    let r = s.gql(Some(&cs), status, json!({"u": admin_id, "s": "LEFT"})).await;
    assert_eq!((code(&r), reason(&r)), ("FORBIDDEN", "CANNOT_MANAGE"), "nobody locks out the administrator: {r}");
    // a leave, yes; but disabling a technician's account needs access covering theirs
    s.ok(Some(&cs), status, json!({"u": t1, "s": "ON_LEAVE"})).await;
    let r = s.gql(Some(&cs), status, json!({"u": t1, "s": "LEFT"})).await;
    assert_eq!((code(&r), reason(&r)), ("FORBIDDEN", "CANNOT_MANAGE"), "{r}");
}

#[tokio::test]
async fn leaving_ends_the_account_and_coming_back_restores_it() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let tech2 = s.sign_in("tech2").await;
    let t2 = user_id(&s, &tech2).await;
    let status = "mutation($u: ID!, $s: EmployeeStatus!) { setEmployeeStatus(input: {userId: $u, status: $s}) { employee { status leftOn } } }";
    let e = s.ok(Some(&admin), status, json!({"u": t2, "s": "LEFT"})).await["setEmployeeStatus"]["employee"].clone();
    assert_eq!((e["status"].as_str(), e["leftOn"].as_str()), (Some("LEFT"), Some(days(&s, 0).as_str())));
    let r = s.gql(Some(&tech2), "{ me { user { id } } }", json!({})).await;
    assert_eq!((code(&r), reason(&r)), ("UNAUTHENTICATED", "ACCOUNT_DISABLED"), "{r}");
    assert_eq!(reason(&s.gql(None, SIGN_IN, json!({"l": "tech2", "p": PASSWORD})).await), "ACCOUNT_DISABLED");
    // back: the account works again
    let e = s.ok(Some(&admin), status, json!({"u": t2, "s": "ACTIVE"})).await["setEmployeeStatus"]["employee"].clone();
    assert!(e["leftOn"].is_null());
    assert!(
        s.gql(None, SIGN_IN, json!({"l": "tech2", "p": PASSWORD})).await["data"]["signIn"]["accessToken"].is_string()
    );
    // an account an administrator disabled stays disabled when its employee comes back
    s.ok(
        Some(&admin),
        "mutation($u: ID!) { setUserStatus(input: {userId: $u, active: false}) { user { status } } }",
        json!({"u": t2}),
    )
    .await;
    s.ok(Some(&admin), status, json!({"u": t2, "s": "LEFT"})).await;
    s.ok(Some(&admin), status, json!({"u": t2, "s": "ACTIVE"})).await;
    assert_eq!(reason(&s.gql(None, SIGN_IN, json!({"l": "tech2", "p": PASSWORD})).await), "ACCOUNT_DISABLED");
    // nobody marks themselves gone
    let me = user_id(&s, &admin).await;
    let r = s.gql(Some(&admin), status, json!({"u": me, "s": "LEFT"})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "userId"));
}

async fn staff_notices(s: &TestServer, user: &str) -> Vec<Value> {
    sqlx::query_scalar::<_, String>(
        "SELECT body FROM notifications WHERE user_id = $1::uuid AND category = 'staff' ORDER BY created_at",
    )
    .bind(user)
    .fetch_all(&s.db)
    .await
    .unwrap()
    .into_iter()
    .map(Value::String)
    .collect()
}

#[tokio::test]
async fn certificates_remind_before_expiry_and_gate_dispatch() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let tech1 = s.sign_in("tech1").await;
    let t1 = user_id(&s, &tech1).await;
    let manager = user_id(&s, &s.sign_in("manager").await).await;
    let cert = json!({"userId": t1, "kind": "ELECTRICIAN", "number": "T510100-2020-001", "issuer": "成都市应急管理局",
        "issuedOn": "2020-01-10", "expiresOn": days(&s, 20)});
    let c = s.ok(Some(&admin), ADD_CERT, json!({"i": cert})).await["addCertificate"]["certificate"].clone();
    assert_eq!((c["valid"].as_bool(), c["daysLeft"].as_i64()), (Some(true), Some(20)));
    // the same number twice; an expiry before the issue date
    let r = s.gql(Some(&admin), ADD_CERT, json!({"i": cert})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "number"), "{r}");
    let mut bad = cert.clone();
    bad["number"] = json!("X-1");
    bad["expiresOn"] = json!("2019-01-01");
    assert_eq!(field(&s.gql(Some(&admin), ADD_CERT, json!({"i": bad})).await), "expiresOn");

    // 30 days before: one reminder to the electrician and their manager, once
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    let mine = staff_notices(&s, &t1).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert!(mine[0].as_str().unwrap().contains("电工证") && mine[0].as_str().unwrap().contains("还有 20 天"));
    assert_eq!(staff_notices(&s, &manager).await.len(), 1);
    // 7 days before: the second step, once
    s.advance(14 * 86_400);
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    assert_eq!(staff_notices(&s, &t1).await.len(), 2);

    // electrical work needs the licence: offered to tech1 while it is valid
    let admin = s.sign_in("admin").await;
    let req = "mutation { setCertificateRequirement(input: {category: ELECTRICAL, kinds: [ELECTRICIAN]}) { requirements { category kinds } } }";
    let r = s.ok(Some(&admin), req, json!({})).await;
    assert_eq!(
        r["setCertificateRequirement"]["requirements"],
        json!([{"category": "ELECTRICAL", "kinds": ["ELECTRICIAN"]}])
    );
    let cs = s.sign_in("cs1").await;
    let estate: String = sqlx::query_scalar("SELECT id::text FROM projects WHERE code = 'JCHY' AND company_id = (SELECT company_id FROM users WHERE id = $1::uuid)")
        .bind(&t1)
        .fetch_one(&s.db)
        .await
        .unwrap();
    let settings =
        "mutation($i: SetWorkOrderSettingsInput!) { setWorkOrderSettings(input: $i) { settings { dispatch } } }";
    s.ok(Some(&cs), settings, json!({"i": {"projectId": estate, "dispatch": "AUTO"}})).await;
    let owner = s.sign_in("13800000006").await;
    let house = s.ok(Some(&owner), "{ myHouses { id } }", json!({})).await["myHouses"][0]["id"].clone();
    let report = "mutation($i: ReportRepairInput!) { reportRepair(input: $i) { workOrder { id state assigneeId } } }";
    let w = s
        .ok(Some(&owner), report, json!({"i": {"houseId": house, "category": "ELECTRICAL", "description": "插座没电"}}))
        .await;
    assert_eq!(w["reportRepair"]["workOrder"]["assigneeId"], json!(t1), "{w}");
    // the day after it expires: not offered to him any more
    s.advance(8 * 86_400);
    let owner = s.sign_in("13800000006").await;
    let w = s
        .ok(Some(&owner), report, json!({"i": {"houseId": house, "category": "ELECTRICAL", "description": "跳闸"}}))
        .await;
    assert_eq!(w["reportRepair"]["workOrder"]["state"], "SUBMITTED", "{w}");
    assert!(w["reportRepair"]["workOrder"]["assigneeId"].is_null());
    // nor can he grab it, or be given it
    let tech1 = s.sign_in("tech1").await;
    let waiting = w["reportRepair"]["workOrder"]["id"].clone();
    let grab = "mutation($i: WorkOrderInput!) { grabWorkOrder(input: $i) { workOrder { id } } }";
    let r = s.gql(Some(&tech1), grab, json!({"i": {"workOrderId": waiting}})).await;
    assert_eq!((code(&r), reason(&r)), ("FORBIDDEN", "NOT_QUALIFIED"), "{r}");
    let cs = s.sign_in("cs1").await;
    let assign = "mutation($i: AssignWorkOrderInput!) { assignWorkOrder(input: $i) { workOrder { id } } }";
    let r = s.gql(Some(&cs), assign, json!({"i": {"workOrderId": waiting, "assigneeId": t1}})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "assigneeId"), "{r}");
    // other work still is
    let w = s
        .ok(Some(&owner), report, json!({"i": {"houseId": house, "category": "PLUMBING", "description": "漏水"}}))
        .await;
    assert_eq!(w["reportRepair"]["workOrder"]["assigneeId"], json!(t1));
    // the expired licence is listed for renewal; a renewal re-arms the reminders
    let admin = s.sign_in("admin").await;
    let list = s.ok(Some(&admin), "{ expiringCertificates(withinDays: 30) { id valid daysLeft } }", json!({})).await;
    assert_eq!(list["expiringCertificates"][0]["valid"], false, "{list}");
    let renew =
        "mutation($i: UpdateCertificateInput!) { updateCertificate(input: $i) { certificate { valid daysLeft } } }";
    let r = s
        .ok(
            Some(&admin),
            renew,
            json!({"i": {"certificateId": c["id"], "number": "T510100-2020-001", "issuer": "成都市应急管理局",
                "issuedOn": "2020-01-10", "expiresOn": days(&s, 25)}}),
        )
        .await;
    assert_eq!(r["updateCertificate"]["certificate"]["valid"], true);
    wuye_api::app::scheduler::run_once(&s.state).await.unwrap();
    assert_eq!(staff_notices(&s, &t1).await.len(), 3, "the new expiry's 30-day step");
}
