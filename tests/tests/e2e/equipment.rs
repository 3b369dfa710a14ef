//! 设备台账: category attributes, scope, QR lookup, CSV import.

use serde_json::json;
use wuye_tests::{TestServer, code, field};

const CREATE: &str = "mutation($i: CreateDeviceInput!) { createDevice(input: $i) { device { id code category status attributes qrPayload } } }";

async fn projects(s: &TestServer, token: &str) -> (String, String) {
    let d = s.ok(Some(token), "{ projects { edges { node { id code } } } }", json!({})).await;
    let p = |c: &str| {
        d["projects"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["code"] == c).unwrap()["node"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    (p("JCHY"), p("TFGJ"))
}

fn elevator(project: &str) -> serde_json::Value {
    json!({"projectId": project, "code": "jc-elv-01", "name": "1栋1单元客梯", "category": "ELEVATOR",
           "attributes": {"elevatorNo": "1#", "floorsServed": 26, "ratedSpeed": "2.5", "ratedLoadKg": 1000,
                          "registrationCode": "31105101002019070001", "nextInspection": "2027-03-01"}})
}

#[tokio::test]
async fn ledger_checks_attributes_scope_and_qr() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let (estate, tower) = projects(&s, &manager).await;
    let before = s.scalar("SELECT count(*) FROM devices").await;
    let d = s.ok(Some(&manager), CREATE, json!({"i": elevator(&estate)})).await;
    let dev = &d["createDevice"]["device"];
    assert_eq!((dev["code"].as_str(), dev["category"].as_str()), (Some("JC-ELV-01"), Some("ELEVATOR")));
    assert_eq!(dev["attributes"]["ratedSpeed"], "2.5");
    assert_eq!(dev["qrPayload"], "wuye://device/JC-ELV-01");
    // duplicate code, missing and unknown attributes, bad enum values
    let r = s.gql(Some(&manager), CREATE, json!({"i": elevator(&estate)})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "code"));
    let mut e = elevator(&estate);
    e["code"] = json!("jc-elv-02");
    e["attributes"].as_object_mut().unwrap().remove("ratedSpeed");
    assert_eq!(field(&s.gql(Some(&manager), CREATE, json!({"i": e})).await), "attributes.ratedSpeed");
    let mut e = elevator(&estate);
    e["code"] = json!("jc-elv-03");
    e["attributes"]["colour"] = json!("red");
    assert_eq!(field(&s.gql(Some(&manager), CREATE, json!({"i": e})).await), "attributes.colour");
    let door = json!({"projectId": estate, "code": "jc-door-01", "name": "东门", "category": "ACCESS_DOOR", "attributes": {"doorLocation": "东门", "controlMode": "telepathy"}});
    assert_eq!(field(&s.gql(Some(&manager), CREATE, json!({"i": door})).await), "attributes.controlMode");
    // a meter measuring a house of another project
    let tower_house = s
        .ok(
            Some(&manager),
            "query($p: ID) { houses(projectId: $p, first: 1) { edges { node { id } } } }",
            json!({"p": tower}),
        )
        .await["houses"]["edges"][0]["node"]["id"]
        .clone();
    let meter = json!({"projectId": estate, "code": "jc-wm-0101", "name": "水表", "category": "WATER_METER", "attributes": {"meterNo": "W0101", "houseId": tower_house}});
    assert_eq!(field(&s.gql(Some(&manager), CREATE, json!({"i": meter})).await), "attributes.houseId");
    assert_eq!(s.scalar("SELECT count(*) FROM devices").await, before + 1, "nothing half-written");
    // a meter's house is a real column: listed, joined, and kept by a foreign key
    let m = s.ok(Some(&manager), "{ deviceByCode(code: \"JC-WM-0001\") { houseId attributes } }", json!({})).await;
    assert_eq!(m["deviceByCode"]["houseId"], m["deviceByCode"]["attributes"]["houseId"]);
    assert!(m["deviceByCode"]["houseId"].is_string());
    assert_eq!(s.scalar("SELECT count(*) FROM devices d JOIN houses h ON h.id = d.house_id").await, 10);
    let listed = s
        .ok(Some(&manager), "{ devices(category: WATER_METER, first: 50) { edges { node { houseId } } } }", json!({}))
        .await;
    assert!(listed["devices"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["houseId"].is_string()));

    // scope: technicians read their project only and write nothing
    let tech1 = s.sign_in("tech1").await;
    let tech2 = s.sign_in("tech2").await;
    let found = s.ok(Some(&tech1), "{ deviceByCode(code: \"wuye://device/JC-ELV-01\") { name } }", json!({})).await;
    assert_eq!(found["deviceByCode"]["name"], "1栋1单元客梯");
    assert_eq!(
        code(&s.gql(Some(&tech2), "{ deviceByCode(code: \"JC-ELV-01\") { name } }", json!({})).await),
        "FORBIDDEN"
    );
    let listed = s.ok(Some(&tech2), "{ devices(first: 100) { edges { node { code } } } }", json!({})).await;
    let codes: Vec<&str> =
        listed["devices"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["code"].as_str().unwrap()).collect();
    assert!(!codes.is_empty() && codes.iter().all(|c| c.starts_with("TF-")), "only the tower's devices: {codes:?}");
    let mut e = elevator(&estate);
    e["code"] = json!("jc-elv-09");
    assert_eq!(code(&s.gql(Some(&tech1), CREATE, json!({"i": e})).await), "FORBIDDEN");
    assert_eq!(
        code(&s.gql(Some(&s.sign_in("13800000001").await), "{ devices { edges { node { id } } } }", json!({})).await),
        "FORBIDDEN"
    );

    // updates: status and attributes change, identity does not
    let id = dev["id"].clone();
    let d = s.ok(Some(&manager), "mutation($d: ID!) { updateDevice(input: {deviceId: $d, status: UNDER_REPAIR, warrantyExpiry: \"2099-01-01\"}) { device { status underWarranty } } }", json!({"d": id})).await;
    assert_eq!(d["updateDevice"]["device"], json!({"status": "UNDER_REPAIR", "underWarranty": true}));
    let filtered = s
        .ok(
            Some(&manager),
            "{ devices(status: UNDER_REPAIR, category: ELEVATOR, search: \"客梯\") { edges { node { code } } } }",
            json!({}),
        )
        .await;
    assert_eq!(filtered["devices"]["edges"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn device_import_is_all_or_nothing() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let (estate, _) = projects(&s, &manager).await;
    let q = "mutation($p: ID!, $c: String!, $m: String) { importDevices(input: {projectId: $p, csv: $c, clientMutationId: $m}) { clientMutationId devicesCreated } }";
    let bad = r#"code,name,category,install_date,attributes
JC-T-PUMP-01,生活水泵1,water_pump,2024-05-01,
JC-T-PUMP-01,生活水泵2,water_pump,2024-05-01,
JC-T-FIRE-01,灭火器,fire_equipment,,"{""fireType"":""干粉"",""pressureMinMpa"":""1.2"",""pressureMaxMpa"":""1.0""}"
JC-T-CAM-01,摄像头,camera,2024-13-01,
JC-X,未知,spaceship,,
"#;
    let r = s.gql(Some(&manager), q, json!({"p": estate, "c": bad})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "csv"));
    let lines: Vec<(u64, String)> = r["errors"][0]["extensions"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (3, "code".into()),
            (4, "attributes.pressureMaxMpa".into()),
            (5, "install_date".into()),
            (6, "category".into())
        ]
    );
    assert_eq!(s.scalar("SELECT count(*) FROM devices WHERE code LIKE 'JC-T-%'").await, 0);
    let good = r#"code,name,category,install_date,attributes
JC-T-PUMP-01,生活水泵1,water_pump,2024-05-01,
JC-T-FIRE-01,灭火器,fire_equipment,,"{""fireType"":""干粉"",""pressureMinMpa"":""1.0"",""pressureMaxMpa"":""1.2""}"
"#;
    let d = s.ok(Some(&manager), q, json!({"p": estate, "c": good, "m": "import-1"})).await;
    assert_eq!(d["importDevices"], json!({"clientMutationId": "import-1", "devicesCreated": 2}));
    // a retry of the applied import answers the same and writes nothing
    let retried = s.ok(Some(&manager), q, json!({"p": estate, "c": good, "m": "import-1"})).await;
    assert_eq!(retried, d);
    assert_eq!(s.scalar("SELECT count(*) FROM devices WHERE code LIKE 'JC-T-%'").await, 2);
    let again = s.gql(Some(&manager), q, json!({"p": estate, "c": good})).await;
    assert_eq!(
        again["errors"][0]["extensions"]["details"]["errors"].as_array().unwrap().len(),
        2,
        "codes already exist"
    );
}

#[tokio::test]
async fn creating_a_device_twice_with_one_client_mutation_id_applies_once() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let (estate, _) = projects(&s, &manager).await;
    let q = "mutation($i: CreateDeviceInput!) { createDevice(input: $i) { clientMutationId device { id code } } }";
    let mut input = elevator(&estate);
    input["clientMutationId"] = json!("create-elv-1");
    let first = s.ok(Some(&manager), q, json!({"i": input})).await;
    assert_eq!(first["createDevice"]["clientMutationId"], "create-elv-1");
    assert_eq!(first["createDevice"]["device"]["code"], "JC-ELV-01");
    // sequential retry: the same answer, no CONFLICT on the code it wrote itself
    let again = s.ok(Some(&manager), q, json!({"i": input})).await;
    assert_eq!(again, first);
    // concurrent retries of a new one: both answer with the one device
    let mut other = elevator(&estate);
    other["code"] = json!("jc-elv-02");
    other["clientMutationId"] = json!("create-elv-2");
    let (a, b) =
        tokio::join!(s.gql(Some(&manager), q, json!({"i": other})), s.gql(Some(&manager), q, json!({"i": other})));
    assert!(a.get("errors").is_none() && b.get("errors").is_none(), "{a} {b}");
    assert_eq!(a["data"], b["data"]);
    assert_eq!(s.scalar("SELECT count(*) FROM devices WHERE code IN ('JC-ELV-01', 'JC-ELV-02')").await, 2);
    assert_eq!(s.scalar("SELECT count(*) FROM audit_log WHERE action = 'device.create' AND detail->>'code' IN ('JC-ELV-01', 'JC-ELV-02')").await, 2);
    // the same id with other input is refused
    let mut changed = input.clone();
    changed["name"] = json!("另一部电梯");
    let r = s.gql(Some(&manager), q, json!({"i": changed})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "clientMutationId"));
}
