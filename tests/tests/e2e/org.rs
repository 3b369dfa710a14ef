//! Company, projects, estate structure, owners and CSV import.

use serde_json::json;
use wuye_tests::{TestServer, code, field, message};

async fn estate_id(s: &TestServer, token: &str) -> String {
    let d = s.ok(Some(token), "{ projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await;
    d["projects"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn company_profile_validates_the_credit_code() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let q = "mutation($c: String) { updateCompany(input: {creditCode: $c, phone: \"028-86001234\"}) { company { creditCode phone } } }";
    let r = s.gql(Some(&admin), q, json!({"c": "91350100M000100Y44"})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "creditCode"));
    assert_eq!(message(&r), "统一社会信用代码校验位不正确");
    let (_, en) = s
        .post(Some(&admin), Some("en-US,en;q=0.9"), json!({"query": q, "variables": {"c": "91350100M000100Y44"}}))
        .await;
    assert_eq!(message(&en), "The credit code's check character is wrong");
    let d = s.ok(Some(&admin), q, json!({"c": "91350100m000100y43"})).await;
    assert_eq!(d["updateCompany"]["company"]["creditCode"], "91350100M000100Y43");
    // a technician cannot change the company
    let tech = s.sign_in("tech1").await;
    assert_eq!(code(&s.gql(Some(&tech), q, json!({"c": "91350100M000100Y43"})).await), "FORBIDDEN");
}

#[tokio::test]
async fn projects_are_created_with_team_and_geofence() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let users = s.ok(Some(&admin), "{ users(search: \"cs1\") { edges { node { id } } } }", json!({})).await;
    let cs = users["users"]["edges"][0]["node"]["id"].clone();
    let q = "mutation($i: CreateProjectInput!) { createProject(input: $i) { project { id code kind serviceStaffIds geofence { radiusM } } } }";
    let bad = s.gql(Some(&admin), q, json!({"i": {"name": "金沙广场", "code": "JSGC", "kind": "COMMERCIAL", "geofence": {"lat": 95.0, "lng": 104.0, "radiusM": 100}}})).await;
    assert_eq!((code(&bad), field(&bad)), ("VALIDATION", "geofence"));
    let bad = s.gql(Some(&admin), q, json!({"i": {"name": "金沙广场", "code": "JS GC!", "kind": "COMMERCIAL"}})).await;
    assert_eq!(field(&bad), "code");
    let bad = s
        .gql(
            Some(&admin),
            q,
            json!({"i": {"name": "金沙广场", "code": "JSGC", "kind": "COMMERCIAL", "buildingArea": "-5"}}),
        )
        .await;
    assert_eq!(field(&bad), "buildingArea");
    let d = s
        .ok(Some(&admin), q, json!({"i": {"name": "金沙广场", "code": "jsgc", "kind": "COMMERCIAL", "serviceStaffIds": [cs], "geofence": {"lat": 30.68, "lng": 104.02, "radiusM": 250}}}))
        .await;
    assert_eq!(d["createProject"]["project"]["code"], "JSGC");
    assert_eq!(d["createProject"]["project"]["serviceStaffIds"], json!([cs]));
    let dup = s.gql(Some(&admin), q, json!({"i": {"name": "重复", "code": "JSGC", "kind": "OTHER"}})).await;
    assert_eq!((code(&dup), field(&dup)), ("CONFLICT", "code"));
    // the manager holds project:write only for their projects: cannot create new ones
    let manager = s.sign_in("manager").await;
    assert_eq!(
        code(&s.gql(Some(&manager), q, json!({"i": {"name": "X", "code": "XX", "kind": "OTHER"}})).await),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn estate_structure_and_pagination() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let estate = estate_id(&s, &admin).await;
    let b = s
        .ok(
            Some(&admin),
            "query($p: ID!) { buildings(projectId: $p) { edges { node { name units { name } } } } }",
            json!({"p": estate}),
        )
        .await;
    assert_eq!(b["buildings"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(b["buildings"]["edges"][0]["node"]["units"].as_array().unwrap().len(), 2);
    // buildings page like every growing list
    let one = s
        .ok(
            Some(&admin),
            "query($p: ID!) { buildings(projectId: $p, first: 1) { edges { node { name } } pageInfo { hasNextPage endCursor } } }",
            json!({"p": estate}),
        )
        .await;
    assert_eq!(one["buildings"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(one["buildings"]["pageInfo"]["hasNextPage"], true);
    let rest = s
        .ok(
            Some(&admin),
            "query($p: ID!, $a: String) { buildings(projectId: $p, first: 5, after: $a) { edges { node { name } } pageInfo { hasNextPage } } }",
            json!({"p": estate, "a": one["buildings"]["pageInfo"]["endCursor"]}),
        )
        .await;
    assert_eq!(rest["buildings"]["edges"].as_array().unwrap().len(), 1);
    assert_ne!(rest["buildings"]["edges"][0]["node"]["name"], one["buildings"]["edges"][0]["node"]["name"]);
    assert_eq!(rest["buildings"]["pageInfo"]["hasNextPage"], false);
    // walk all 200 houses of the estate in pages of 60
    let q = "query($p: ID, $a: String) { houses(projectId: $p, first: 60, after: $a) { edges { node { id } } pageInfo { hasNextPage endCursor } } }";
    let (mut after, mut seen) = (serde_json::Value::Null, std::collections::HashSet::new());
    loop {
        let d = s.ok(Some(&admin), q, json!({"p": estate, "a": after})).await;
        for e in d["houses"]["edges"].as_array().unwrap() {
            assert!(seen.insert(e["node"]["id"].as_str().unwrap().to_owned()), "no house twice");
        }
        if d["houses"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = d["houses"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.len(), 200);
    let r = s.gql(Some(&admin), "{ houses(first: 1000) { edges { node { id } } } }", json!({})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "first"));
    let r = s.gql(Some(&admin), "{ houses(after: \"nonsense\") { edges { node { id } } } }", json!({})).await;
    assert_eq!(field(&r), "after");
    // houses: validation names the field and writes nothing
    let unit = s
        .ok(
            Some(&admin),
            "query($p: ID!) { buildings(projectId: $p) { edges { node { units { id } } } } }",
            json!({"p": estate}),
        )
        .await["buildings"]["edges"][0]["node"]["units"][0]["id"]
        .clone();
    let hq = "mutation($i: CreateHouseInput!) { createHouse(input: $i) { house { id roomNo status } } }";
    let r = s.gql(Some(&admin), hq, json!({"i": {"unitId": unit, "roomNo": "2601", "floor": 26, "buildingArea": "80.00", "indoorArea": "90.00"}})).await;
    assert_eq!(field(&r), "indoorArea");
    let r = s
        .gql(Some(&admin), hq, json!({"i": {"unitId": unit, "roomNo": "101", "floor": 1, "buildingArea": "80.00"}}))
        .await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "roomNo"));
    let d = s
        .ok(Some(&admin), hq, json!({"i": {"unitId": unit, "roomNo": "2601", "floor": 26, "buildingArea": "80.5"}}))
        .await;
    assert_eq!(d["createHouse"]["house"]["status"], "VACANT");
    // parking
    let d = s
        .ok(
            Some(&admin),
            "query($p: ID!) { parkingSpaces(projectId: $p, first: 5) { edges { node { code } } } }",
            json!({"p": estate}),
        )
        .await;
    assert_eq!(d["parkingSpaces"]["edges"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn register_owner_validates_the_id_card_and_writes_nothing_on_error() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let before = s.scalar("SELECT count(*) FROM owners").await;
    let q = "mutation($n: String!, $p: String!, $c: String) { registerOwner(input: {name: $n, phone: $p, idCardNumber: $c}) { owner { id phone idCardNumber activated } } }";
    let r = s.gql(Some(&admin), q, json!({"n": "猪八戒", "p": "13712345678", "c": "110105194912310021"})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "idCardNumber"));
    assert_eq!(message(&r), "身份证号校验位不正确");
    let r = s.gql(Some(&admin), q, json!({"n": "猪八戒", "p": "1371234", "c": null})).await;
    assert_eq!(field(&r), "phone");
    let r = s.gql(Some(&admin), q, json!({"n": "  ", "p": "13712345678", "c": null})).await;
    assert_eq!(field(&r), "name");
    // the same ID number twice is a conflict
    let card = wuye_api::onboarding::seed::demo_id_card(3);
    let r = s.gql(Some(&admin), q, json!({"n": "重复", "p": "13712345678", "c": card})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "idCardNumber"));
    assert_eq!(s.scalar("SELECT count(*) FROM owners").await, before);
    assert_eq!(s.scalar("SELECT count(*) FROM users WHERE phone = '13712345678'").await, 0, "no half-written account");
    let d = s.ok(Some(&admin), q, json!({"n": "猪八戒", "p": "137-1234-5678", "c": "11010519491231002x"})).await;
    assert_eq!(d["registerOwner"]["owner"]["idCardNumber"], "11010519491231002X");
    assert_eq!(d["registerOwner"]["owner"]["activated"], false);
}

const GOOD_CSV: &str = "楼栋,单元,房号,楼层,建筑面积,套内面积,用途,业主姓名,业主手机,身份证号,关系
3栋,1单元,101,1,88.50,70.10,住宅,沙和尚,13611110001,11010519491231002X,业主
3栋,1单元,102,1,120.00,,住宅,沙和尚,13611110001,11010519491231002X,业主
3栋,2单元,101,1,95.00,80,商铺,,,,
";

#[tokio::test]
async fn csv_import_is_all_or_nothing_with_line_numbers() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let estate = estate_id(&s, &admin).await;
    let houses_before = s.scalar("SELECT count(*) FROM houses").await;
    let q = "mutation($p: ID!, $c: String!) { importHouses(input: {projectId: $p, csv: $c}) { buildingsCreated unitsCreated housesCreated ownersCreated ownersLinked } }";
    let bad = "building,unit,room_no,floor,building_area,indoor_area,usage,owner_name,owner_phone,owner_id_card
3栋,1单元,101,1,88.50,,residence,,,
3栋,1单元,102,abc,88.50,,residence,,,
3栋,1单元,101,1,88.50,,residence,,,
3栋,1单元,103,1,88.50,,castle,,,
3栋,1单元,104,1,88.50,,residence,白骨精,13611110002,110105194912310021
1栋,1单元,101,1,88.50,,residence,,,
";
    let r = s.gql(Some(&admin), q, json!({"p": estate, "c": bad})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "csv"));
    let errors = r["errors"][0]["extensions"]["details"]["errors"].as_array().unwrap().clone();
    let lines: Vec<(u64, &str)> =
        errors.iter().map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str().unwrap())).collect();
    assert_eq!(
        lines,
        vec![(3, "floor"), (4, "roomNo"), (5, "usage"), (6, "ownerIdCardNumber"), (7, "roomNo")],
        "{errors:?}"
    );
    assert_eq!(s.scalar("SELECT count(*) FROM houses").await, houses_before, "nothing imported");
    assert_eq!(s.scalar("SELECT count(*) FROM buildings WHERE name = '3栋'").await, 0);

    let d = s.ok(Some(&admin), q, json!({"p": estate, "c": GOOD_CSV})).await;
    assert_eq!(
        d["importHouses"],
        json!({"buildingsCreated": 1, "unitsCreated": 2, "housesCreated": 3, "ownersCreated": 1, "ownersLinked": 2})
    );
    // one owner, two houses; the imported owner can activate the app
    let o = s
        .ok(Some(&admin), "{ owners(search: \"沙和尚\") { edges { node { houses { roomNo status } } } } }", json!({}))
        .await;
    assert_eq!(o["owners"]["edges"][0]["node"]["houses"].as_array().unwrap().len(), 2);
    assert_eq!(o["owners"]["edges"][0]["node"]["houses"][0]["status"], "OCCUPIED");
    // importing the same file again: every line already exists
    let r = s.gql(Some(&admin), q, json!({"p": estate, "c": GOOD_CSV})).await;
    assert_eq!(r["errors"][0]["extensions"]["details"]["errors"].as_array().unwrap().len(), 3);
    // missing columns
    let r = s.gql(Some(&admin), q, json!({"p": estate, "c": "foo,bar\n1,2\n"})).await;
    assert_eq!(r["errors"][0]["extensions"]["details"]["errors"][0]["field"], "header");
    // a technician may not import
    let tech = s.sign_in("tech1").await;
    assert_eq!(code(&s.gql(Some(&tech), q, json!({"p": estate, "c": GOOD_CSV})).await), "FORBIDDEN");
}

fn tiny_png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 2, 2);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[0, 255, 255, 0]).unwrap();
    }
    out
}

async fn upload(s: &TestServer, token: &str, bytes: Vec<u8>, name: &str) -> (u16, serde_json::Value) {
    let ops = json!({"query": "mutation($f: Upload!) { uploadCompanyLogo(input: {file: $f}) { company { logoUrl } } }", "variables": {"f": null}});
    let form = reqwest::multipart::Form::new()
        .text("operations", ops.to_string())
        .text("map", json!({"0": ["variables.f"]}).to_string())
        .part("0", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()));
    let resp = s.http.post(format!("{}/graphql", s.url)).bearer_auth(token).multipart(form).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn logo_upload_checks_content_and_size() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let (status, r) = upload(&s, &admin, tiny_png(), "logo.png").await;
    assert_eq!(status, 200, "{r}");
    let url = r["data"]["uploadCompanyLogo"]["company"]["logoUrl"].as_str().unwrap().to_owned();
    let got = s.http.get(format!("{}{url}", s.url)).send().await.unwrap();
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().to_vec(), tiny_png());
    // a GIF named .png is refused by content
    let (_, r) = upload(&s, &admin, b"GIF89a\x01\x00\x01\x00".to_vec(), "logo.png").await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "file"));
    // a fake PNG header with garbage after it
    let (_, r) = upload(&s, &admin, b"\x89PNG\r\n\x1a\ngarbage".to_vec(), "logo.png").await;
    assert_eq!(field(&r), "file");
    // larger than the upload limit
    let big = vec![0u8; s.state.config.limits.max_upload_bytes + 10];
    let (status, _) = upload(&s, &admin, big, "big.png").await;
    assert_eq!(status, 413);
    // no path tricks through the file route
    let r = s.http.get(format!("{}/files/..%2F..%2Fetc%2Fpasswd.png", s.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn create_building_applies_once_per_client_mutation_id() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let estate = estate_id(&s, &admin).await;
    let q = "mutation($p: ID!, $n: String!, $m: String) { createBuilding(input: {projectId: $p, name: $n, clientMutationId: $m}) { clientMutationId building { id name } } }";

    // a resend after a lost answer: applied once, the same building both times
    let vars = json!({"p": estate, "n": "5栋", "m": "building-5"});
    let first = s.ok(Some(&admin), q, vars.clone()).await;
    let again = s.ok(Some(&admin), q, vars).await;
    assert_eq!(first["createBuilding"]["clientMutationId"], "building-5");
    assert_eq!(again["createBuilding"]["clientMutationId"], "building-5");
    assert!(first["createBuilding"]["building"]["id"].is_string());
    assert_eq!(first["createBuilding"]["building"]["id"], again["createBuilding"]["building"]["id"]);
    assert_eq!(again["createBuilding"]["building"]["name"], "5栋");
    assert_eq!(s.scalar("SELECT count(*) FROM buildings WHERE name = '5栋'").await, 1);

    // two at once: the second waits for the first and answers with its building
    let vars = json!({"p": estate, "n": "6栋", "m": "building-6"});
    let (a, b) = tokio::join!(s.gql(Some(&admin), q, vars.clone()), s.gql(Some(&admin), q, vars));
    assert!(a.get("errors").is_none(), "{a}");
    assert!(b.get("errors").is_none(), "{b}");
    assert!(a["data"]["createBuilding"]["building"]["id"].is_string());
    assert_eq!(a["data"]["createBuilding"]["building"]["id"], b["data"]["createBuilding"]["building"]["id"]);
    assert_eq!(s.scalar("SELECT count(*) FROM buildings WHERE name = '6栋'").await, 1);

    // the same id with other input is refused and writes nothing
    let r = s.gql(Some(&admin), q, json!({"p": estate, "n": "7栋", "m": "building-5"})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "clientMutationId"));
    assert_eq!(s.scalar("SELECT count(*) FROM buildings WHERE name = '7栋'").await, 0);
    // without an id, every call applies (the name is then taken)
    let r = s.gql(Some(&admin), q, json!({"p": estate, "n": "5栋", "m": null})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "name"));
}

#[tokio::test]
async fn owner_search_takes_wildcards_literally() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let search = "query($s: String) { owners(search: $s, first: 100) { edges { node { name } } } }";
    let names = |d: &serde_json::Value| -> Vec<String> {
        d["owners"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // the demo owners hold no % or _ in name or phone: a wildcard matches nobody
    for t in ["%", "_", "%%", "1380000000_", "138%01"] {
        let d = s.ok(Some(&admin), search, json!({"s": t})).await;
        assert_eq!(names(&d), Vec::<String>::new(), "search {t:?}");
    }
    // a plain search still finds by part of the phone
    let d = s.ok(Some(&admin), search, json!({"s": "13800000001"})).await;
    assert_eq!(names(&d).len(), 1);

    let register =
        "mutation($n: String!, $p: String!) { registerOwner(input: {name: $n, phone: $p}) { owner { id } } }";
    s.ok(Some(&admin), register, json!({"n": "沙%僧", "p": "13722220001"})).await;
    s.ok(Some(&admin), register, json!({"n": "唐_僧", "p": "13722220002"})).await;
    let d = s.ok(Some(&admin), search, json!({"s": "%"})).await;
    assert_eq!(names(&d), vec!["沙%僧".to_owned()]);
    let d = s.ok(Some(&admin), search, json!({"s": "_"})).await;
    assert_eq!(names(&d), vec!["唐_僧".to_owned()]);
    let d = s.ok(Some(&admin), search, json!({"s": "僧"})).await;
    assert_eq!(names(&d).len(), 2);
    // projects search the same way
    let d = s.ok(Some(&admin), "{ projects(search: \"%\") { edges { node { id } } } }", json!({})).await;
    assert_eq!(d["projects"]["edges"], json!([]));
}

/// Pages of `houses` are cached per replica; a change made on any replica shows on every
/// replica's next page: at once where it was made, on the event (well before the cache's
/// 10 s lifetime) elsewhere.
#[tokio::test]
async fn house_pages_follow_changes_on_every_replica() {
    let a = TestServer::seeded().await;
    let b = a.replica().await;
    b.state.events.ready().await;
    a.state.events.ready().await;
    let q = "{ houses(first: 5) { edges { node { id roomNo } } } }";
    let admin_a = a.sign_in("admin").await;
    let admin_b = b.sign_in("admin").await;
    let first = a.ok(Some(&admin_a), q, json!({})).await;
    let id = first["houses"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    // both replicas hold the page now
    assert_eq!(b.ok(Some(&admin_b), q, json!({})).await, first);
    let update =
        "mutation($id: ID!, $room: String) { updateHouse(input: {houseId: $id, roomNo: $room}) { house { id } } }";
    // changed on A: A's next page has it at once
    a.ok(Some(&admin_a), update, json!({ "id": id, "room": "9901" })).await;
    assert_eq!(room_on(&a, &admin_a).await, "9901");
    // ... and B's within a second or two (the event crosses Redis)
    let started = std::time::Instant::now();
    while room_on(&b, &admin_b).await != "9901" {
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "replica B still serves the old page");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // changed on B: A follows
    b.ok(Some(&admin_b), update, json!({ "id": id, "room": "9902" })).await;
    let started = std::time::Instant::now();
    while room_on(&a, &admin_a).await != "9902" {
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "replica A still serves the old page");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn room_on(s: &TestServer, token: &str) -> serde_json::Value {
    let q = "{ houses(first: 5) { edges { node { id roomNo } } } }";
    s.ok(Some(token), q, json!({})).await["houses"]["edges"][0]["node"]["roomNo"].clone()
}
