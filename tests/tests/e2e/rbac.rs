//! Permissions and data scope: every read and write stays within the caller's grants.

use serde_json::{Value, json};
use wuye_tests::{TestServer, code, reason};

async fn project_ids(s: &TestServer, admin: &str) -> (String, String) {
    let d = s.ok(Some(admin), "{ projects { edges { node { id code } } } }", json!({})).await;
    let find = |c: &str| {
        d["projects"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["code"] == c).unwrap()["node"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    (find("JCHY"), find("TFGJ"))
}

async fn first_house(s: &TestServer, token: &str, project: &str) -> String {
    let d = s
        .ok(
            Some(token),
            "query($p: ID) { houses(projectId: $p, first: 1) { edges { node { id } } } }",
            json!({"p": project}),
        )
        .await;
    d["houses"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned()
}

async fn user_id(s: &TestServer, token: &str) -> String {
    s.ok(Some(token), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn technician_of_one_project_cannot_touch_another() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let (estate, tower) = project_ids(&s, &admin).await;
    let tower_house = first_house(&s, &admin, &tower).await;
    let tech = s.sign_in("tech1").await; // technician of 锦城花园 only

    // lists only hold their project
    let d = s
        .ok(
            Some(&tech),
            "{ projects { edges { node { code } } } houses(first: 100) { edges { node { projectId } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["projects"]["edges"].as_array().unwrap().len(), 1);
    let houses = d["houses"]["edges"].as_array().unwrap();
    assert!(!houses.is_empty());
    assert!(houses.iter().all(|e| e["node"]["projectId"] == estate.as_str()));
    // direct reads of the other project are refused
    for (q, v) in [
        ("query($id: ID!) { project(id: $id) { name } }", json!({"id": tower})),
        ("query($id: ID!) { house(id: $id) { roomNo } }", json!({"id": tower_house})),
        ("query($p: ID!) { buildings(projectId: $p) { edges { node { name } } } }", json!({"p": tower})),
        ("query($p: ID) { houses(projectId: $p) { edges { node { id } } } }", json!({"p": tower})),
        ("query($p: ID!) { parkingSpaces(projectId: $p) { edges { node { id } } } }", json!({"p": tower})),
    ] {
        let r = s.gql(Some(&tech), q, v).await;
        assert_eq!(code(&r), "FORBIDDEN", "{q}: {r}");
    }
    // and no writes at all: technicians lack estate:write
    let r = s
        .gql(
            Some(&tech),
            "mutation($p: ID!) { createBuilding(input: {projectId: $p, name: \"X\"}) { building { id } } }",
            json!({"p": estate}),
        )
        .await;
    assert_eq!(code(&r), "FORBIDDEN");
    // the manager (both projects) may write in 锦城花园 but a project-scoped user-writer
    // created below cannot write into the other project
    let manager = s.sign_in("manager").await;
    s.ok(
        Some(&manager),
        "mutation($p: ID!) { createBuilding(input: {projectId: $p, name: \"3栋\"}) { building { id } } }",
        json!({"p": estate}),
    )
    .await;
}

#[tokio::test]
async fn project_scoped_writer_cannot_write_elsewhere() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let (estate, tower) = project_ids(&s, &admin).await;
    let cs = s.sign_in("cs1").await; // customer service, 锦城花园, owner:write
    let tower_house = first_house(&s, &admin, &tower).await;
    let r = s
        .gql(
            Some(&cs),
            "mutation($h: ID!) { registerOwner(input: {name: \"越权\", phone: \"13711111111\", houses: [{houseId: $h, relation: TENANT}]}) { owner { id } } }",
            json!({"h": tower_house}),
        )
        .await;
    assert_eq!(code(&r), "FORBIDDEN");
    assert_eq!(s.scalar("SELECT count(*) FROM owners WHERE phone = '13711111111'").await, 0, "nothing half-written");
    assert_eq!(s.scalar("SELECT count(*) FROM users WHERE phone = '13711111111'").await, 0);
    let estate_house = first_house(&s, &admin, &estate).await;
    s.ok(
        Some(&cs),
        "mutation($h: ID!) { registerOwner(input: {name: \"租客\", phone: \"13711111111\", houses: [{houseId: $h, relation: TENANT}]}) { owner { id } } }",
        json!({"h": estate_house}),
    )
    .await;
}

#[tokio::test]
async fn owner_sees_only_their_own_houses() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let owner = s.sign_in("13800000001").await;
    let mine = s.ok(Some(&owner), "{ myHouses { id roomNo } me { ownerId menu { code } } }", json!({})).await;
    assert_eq!(mine["myHouses"].as_array().unwrap().len(), 1);
    assert_eq!(
        mine["me"]["menu"],
        json!([{"code": "my-houses"}, {"code": "my-repairs"}, {"code": "my-feedback"}, {"code": "my-bills"}])
    );
    let my_house = mine["myHouses"][0]["id"].as_str().unwrap().to_owned();
    s.ok(Some(&owner), "query($id: ID!) { house(id: $id) { roomNo } }", json!({"id": my_house})).await;

    // another owner's house, the houses list, the owners list, another owner's record
    let other = s.ok(Some(&admin), "{ owners(first: 2) { edges { node { id houses { id } } } } }", json!({})).await;
    let other_owner = other["owners"]["edges"][1]["node"]["id"].as_str().unwrap().to_owned();
    let other_house = other["owners"]["edges"][1]["node"]["houses"][0]["id"].as_str().unwrap().to_owned();
    assert_ne!(other_house, my_house);
    let r = s.gql(Some(&owner), "query($id: ID!) { house(id: $id) { roomNo } }", json!({"id": other_house})).await;
    assert_eq!(code(&r), "NOT_FOUND");
    assert_eq!(code(&s.gql(Some(&owner), "{ houses { edges { node { id } } } }", json!({})).await), "FORBIDDEN");
    assert_eq!(code(&s.gql(Some(&owner), "{ owners { edges { node { id } } } }", json!({})).await), "FORBIDDEN");
    let r = s.gql(Some(&owner), "query($id: ID!) { owner(id: $id) { name } }", json!({"id": other_owner})).await;
    assert_eq!(code(&r), "FORBIDDEN");
    assert_eq!(code(&s.gql(Some(&owner), "{ users { edges { node { id } } } }", json!({})).await), "FORBIDDEN");
    // their own record, unmasked
    let me = s
        .ok(
            Some(&owner),
            "query($id: ID!) { owner(id: $id) { phone idCardNumber } }",
            json!({"id": mine["me"]["ownerId"]}),
        )
        .await;
    assert_eq!(me["owner"]["phone"], "13800000001");
    assert_eq!(me["owner"]["idCardNumber"].as_str().unwrap().len(), 18);
    assert!(!me["owner"]["idCardNumber"].as_str().unwrap().contains('*'));
}

#[tokio::test]
async fn other_company_sees_nothing() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let (estate, _) = project_ids(&s, &admin).await;
    let house = first_house(&s, &admin, &estate).await;
    wuye_api::onboarding::bootstrap(&s.state, "另一家物业", None, "admin2").await.unwrap();
    // set a known password through the API: the bootstrap password is random
    let pw: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'admin'").fetch_one(&s.db).await.unwrap();
    sqlx::query("UPDATE users SET password_hash = $1, must_change_password = false WHERE username = 'admin2'")
        .bind(pw)
        .execute(&s.db)
        .await
        .unwrap();
    let other = s.sign_in("admin2").await;
    let d = s.ok(Some(&other), "{ projects { edges { node { id } } } houses { edges { node { id } } } owners { edges { node { id } } } users { edges { node { username } } } company { name } }", json!({})).await;
    assert_eq!(d["projects"]["edges"], json!([]));
    assert_eq!(d["houses"]["edges"], json!([]));
    assert_eq!(d["owners"]["edges"], json!([]));
    assert_eq!(d["users"]["edges"], json!([{"node": {"username": "admin2"}}]));
    assert_eq!(d["company"]["name"], "另一家物业");
    for (q, v) in [
        ("query($id: ID!) { house(id: $id) { roomNo } }", json!({"id": house})),
        ("query($id: ID!) { project(id: $id) { name } }", json!({"id": estate})),
    ] {
        assert_eq!(code(&s.gql(Some(&other), q, v).await), "NOT_FOUND");
    }
    let r = s
        .gql(
            Some(&other),
            "mutation($p: ID!) { createBuilding(input: {projectId: $p, name: \"X\"}) { building { id } } }",
            json!({"p": estate}),
        )
        .await;
    assert_eq!(code(&r), "NOT_FOUND");
}

#[tokio::test]
async fn no_self_granting_and_no_escalation() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let roles = s.ok(Some(&admin), "{ roles(first: 50) { edges { node { id code } } } }", json!({})).await;
    let role = |c: &str| {
        roles["roles"]["edges"].as_array().unwrap().iter().find(|r| r["node"]["code"] == c).unwrap()["node"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let grant = "mutation($u: ID!, $r: ID!, $s: DataScope!, $p: [ID!]) { assignRole(input: {userId: $u, roleId: $r, scope: $s, projectIds: $p}) { assignment { id roleCode } } }";

    // the manager holds role:read but not role:write: cannot grant themselves admin
    let manager = s.sign_in("manager").await;
    let me = user_id(&s, &manager).await;
    let r = s.gql(Some(&manager), grant, json!({"u": me, "r": role("admin"), "s": "COMPANY"})).await;
    assert_eq!(code(&r), "FORBIDDEN");
    assert_eq!(
        s.scalar("SELECT count(*) FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE r.code = 'admin'").await,
        1
    );

    // a custom "grant officer" role: role:write + estate:read, scoped to one project
    let (estate, tower) = project_ids(&s, &admin).await;
    let created = s
        .ok(
            Some(&admin),
            "mutation { createRole(input: {code: \"grant_officer\", name: \"授权专员\", permissions: [\"role:write\", \"role:read\", \"estate:read\", \"project:read\", \"device:command:door\", \"patrol:read\", \"patrol:do\"]}) { role { id permissions } } }",
            json!({}),
        )
        .await;
    let officer_role = created["createRole"]["role"]["id"].as_str().unwrap().to_owned();
    let cs_id = user_id(&s, &s.sign_in("cs1").await).await;
    s.ok(Some(&admin), grant, json!({"u": cs_id, "r": officer_role, "s": "PROJECTS", "p": [estate]})).await;
    let cs = s.sign_in("cs1").await;
    let perms = s.ok(Some(&cs), "{ me { permissions } }", json!({})).await;
    assert!(perms["me"]["permissions"].as_array().unwrap().contains(&json!("role:write")));

    let tech2 = user_id(&s, &s.sign_in("tech2").await).await;
    // cannot grant a role with permissions cs1 lacks (admin has user:write etc.)
    assert_eq!(
        reason(&s.gql(Some(&cs), grant, json!({"u": tech2, "r": role("admin"), "s": "PROJECTS", "p": [estate]})).await),
        "CANNOT_GRANT"
    );
    // cannot grant wider than their own scope
    assert_eq!(
        reason(&s.gql(Some(&cs), grant, json!({"u": tech2, "r": role("guard"), "s": "COMPANY"})).await),
        "CANNOT_GRANT"
    );
    assert_eq!(
        reason(&s.gql(Some(&cs), grant, json!({"u": tech2, "r": role("guard"), "s": "PROJECTS", "p": [tower]})).await),
        "CANNOT_GRANT"
    );
    // within their scope and permissions: fine
    s.ok(Some(&cs), grant, json!({"u": tech2, "r": role("guard"), "s": "PROJECTS", "p": [estate]})).await;
    // cannot create roles (company-wide objects) with a project-scoped role:write
    let r = s.gql(Some(&cs), "mutation { createRole(input: {code: \"x_role\", name: \"X\", permissions: [\"estate:read\"]}) { role { id } } }", json!({})).await;
    assert_eq!(code(&r), "FORBIDDEN");
    // built-in roles are locked; unknown permission codes named
    let r = s
        .gql(
            Some(&admin),
            "mutation($r: ID!) { updateRole(input: {roleId: $r, permissions: []}) { role { id } } }",
            json!({"r": role("admin")}),
        )
        .await;
    assert_eq!(code(&r), "VALIDATION");
    let r = s.gql(Some(&admin), "mutation { createRole(input: {code: \"bad_role\", name: \"X\", permissions: [\"nuke:all\"]}) { role { id } } }", json!({})).await;
    assert_eq!((code(&r), wuye_tests::field(&r)), ("VALIDATION", "permissions"));
}

#[tokio::test]
async fn permission_change_reaches_the_user_immediately() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let tech = s.sign_in("tech1").await;
    assert_eq!(code(&s.gql(Some(&tech), "{ owners { edges { node { id } } } }", json!({})).await), "FORBIDDEN");
    let cs_role = s.role_id(&admin, "customer_service").await;
    let tech_id = user_id(&s, &tech).await;
    let d = s
        .ok(Some(&admin), "mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r, scope: OWN}) { assignment { id } } }", json!({"u": tech_id, "r": cs_role}))
        .await;
    // own scope: the technician serves no project as manager or customer service → empty list
    let d2 = s.ok(Some(&tech), "{ owners { edges { node { id } } } }", json!({})).await;
    assert_eq!(d2["owners"]["edges"], json!([]));
    let assignment = d["assignRole"]["assignment"]["id"].clone();
    s.ok(
        Some(&admin),
        "mutation($a: ID!) { revokeRole(input: {assignmentId: $a}) { deletedId } }",
        json!({"a": assignment}),
    )
    .await;
    assert_eq!(code(&s.gql(Some(&tech), "{ owners { edges { node { id } } } }", json!({})).await), "FORBIDDEN");
}

#[tokio::test]
async fn personal_data_is_masked_without_pii_read() {
    let s = TestServer::seeded().await;
    let q = "{ owners(first: 1) { edges { node { phone idCardNumber } } } }";
    let cs = s.sign_in("cs1").await; // no pii:read
    let d: Value = s.ok(Some(&cs), q, json!({})).await;
    let node = &d["owners"]["edges"][0]["node"];
    assert_eq!(node["phone"], "138****0001");
    assert!(node["idCardNumber"].as_str().unwrap().contains("********"), "{node}");
    let manager = s.sign_in("manager").await; // pii:read
    let d = s.ok(Some(&manager), q, json!({})).await;
    assert_eq!(d["owners"]["edges"][0]["node"]["phone"], "13800000001");
    // the database never holds the ID-card number in clear
    let clear: i64 =
        s.scalar("SELECT count(*) FROM owners WHERE position('510104' in encode(id_card_enc, 'escape')) > 0").await;
    assert_eq!(clear, 0);
    // lookup by ID number goes through the blind index
    let card = wuye_api::onboarding::seed::demo_id_card(1);
    let d = s
        .ok(
            Some(&manager),
            "query($c: String) { owners(idCardNumber: $c) { edges { node { phone } } } }",
            json!({"c": card}),
        )
        .await;
    assert_eq!(d["owners"]["edges"][0]["node"]["phone"], "13800000001");
}

#[tokio::test]
async fn a_technician_who_owns_a_flat_signs_in_once() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let (estate, _) = project_ids(&s, &admin).await;
    // a vacant house of the estate
    let d = s
        .ok(
            Some(&admin),
            "query($p: ID) { houses(projectId: $p, status: VACANT, first: 1) { edges { node { id } } } }",
            json!({"p": estate}),
        )
        .await;
    let house = d["houses"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    // tech1's phone, written another way: registering them as an owner links their account
    let tech_id = user_id(&s, &s.sign_in("tech1").await).await;
    let r = s
        .ok(
            Some(&admin),
            "mutation($h: ID!) { registerOwner(input: {name: \"李师傅\", phone: \"+86 139-0000-0002\", houses: [{houseId: $h, relation: OWNER}]}) { owner { id } } }",
            json!({"h": house}),
        )
        .await;
    assert!(r["registerOwner"]["owner"]["id"].is_string());
    assert_eq!(s.scalar("SELECT count(*) FROM users WHERE phone = '13900000002'").await, 1, "one account");
    let tech = s.sign_in("tech1").await;
    let me = s.ok(Some(&tech), "{ me { isStaff ownerId user { id } permissions } }", json!({})).await;
    assert_eq!(me["me"]["user"]["id"], tech_id);
    assert_eq!(me["me"]["isStaff"], true);
    assert!(me["me"]["ownerId"].is_string());
    let perms = me["me"]["permissions"].as_array().unwrap();
    assert!(perms.contains(&json!("self:house")) && perms.contains(&json!("alarm:handle")), "{perms:?}");
    let mine = s.ok(Some(&tech), "{ myHouses { id } }", json!({})).await;
    assert_eq!(mine["myHouses"][0]["id"], house.as_str());
    // the owner role follows the owner record; nobody grants it by hand
    let roles = s.ok(Some(&admin), "{ roles(first: 50) { edges { node { id code } } } }", json!({})).await;
    let owner_role = roles["roles"]["edges"].as_array().unwrap().iter().find(|r| r["node"]["code"] == "owner").unwrap()
        ["node"]["id"]
        .clone();
    let r = s
        .gql(
            Some(&admin),
            "mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r, scope: OWN}) { assignment { id } } }",
            json!({"u": tech_id, "r": owner_role}),
        )
        .await;
    assert_eq!((code(&r), wuye_tests::field(&r)), ("VALIDATION", "roleId"));
    // and a staff account cannot be created twice for one phone
    let r = s
        .gql(
            Some(&admin),
            "mutation { createStaffUser(input: {username: \"li2\", name: \"李\", phone: \"13900000002\", initialPassword: \"Start2026x\"}) { user { id } } }",
            json!({}),
        )
        .await;
    assert_eq!((code(&r), wuye_tests::field(&r)), ("CONFLICT", "phone"));
}

#[tokio::test]
async fn a_retried_mutation_applies_once_even_when_the_retries_race() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let create = "mutation($c: String!, $n: String!) { createStaffUser(input: {username: $n, name: \"重试\", initialPassword: \"Start2026x\", clientMutationId: $c}) { clientMutationId user { id username } } }";
    // five copies of one request at once (a phone resending on a weak signal)
    let vars = json!({"c": "create-li-1", "n": "retry_user"});
    let answers = futures_util::future::join_all((0..5).map(|_| s.gql(Some(&admin), create, vars.clone()))).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| {
            assert!(a.get("errors").is_none(), "a retry never answers an error for its own effect: {a}");
            assert_eq!(a["data"]["createStaffUser"]["clientMutationId"], "create-li-1");
            a["data"]["createStaffUser"]["user"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every answer shows the same account: {ids:?}");
    assert_eq!(s.scalar("SELECT count(*) FROM users WHERE username = 'retry_user'").await, 1);
    assert_eq!(s.scalar("SELECT count(*) FROM audit_log WHERE action = 'user.create'").await, 7, "6 seeded + 1");
    // a later retry reads the object as it is now
    let later = s.ok(Some(&admin), create, vars.clone()).await;
    assert_eq!(later["createStaffUser"]["user"]["username"], "retry_user");
    // the same id with other input, or for another mutation, is a conflict
    let r = s.gql(Some(&admin), create, json!({"c": "create-li-1", "n": "someone_else"})).await;
    assert_eq!((code(&r), wuye_tests::field(&r)), ("CONFLICT", "clientMutationId"));
    let r = s
        .gql(
            Some(&admin),
            "mutation { createRole(input: {code: \"r_x\", name: \"X\", permissions: [], clientMutationId: \"create-li-1\"}) { role { id } } }",
            json!({}),
        )
        .await;
    assert_eq!((code(&r), wuye_tests::field(&r)), ("CONFLICT", "clientMutationId"));
    // another user's identical id is theirs alone
    let manager = s.sign_in("manager").await;
    let r = s.gql(Some(&manager), "mutation { createRole(input: {code: \"r_y\", name: \"Y\", permissions: [], clientMutationId: \"create-li-1\"}) { role { id } } }", json!({})).await;
    assert_eq!(code(&r), "FORBIDDEN", "judged on its own (the manager may not create roles), not as a replay: {r}");
    // a mutation that failed is not recorded: fixing the input and retrying applies it
    let bad = s.gql(Some(&admin), create, json!({"c": "create-2", "n": "x"})).await;
    assert_eq!(code(&bad), "VALIDATION");
    s.ok(Some(&admin), create, json!({"c": "create-2", "n": "second_user"})).await;
    assert_eq!(s.scalar("SELECT count(*) FROM client_mutations").await, 2);
}

/// A project's team decides "own" scope: a member added on one replica is served the
/// project at once on another, where their actor was cached (not 30 s later).
#[tokio::test]
async fn a_new_team_member_is_served_the_project_on_every_replica() {
    let a = TestServer::seeded().await;
    let b = a.replica().await;
    a.state.events.ready().await;
    b.state.events.ready().await;
    let admin = a.sign_in("admin").await;
    let tech = b.sign_in("tech2").await;
    let tech_id = user_id(&b, &tech).await;
    let cs_role = a.role_id(&admin, "customer_service").await;
    a.ok(
        Some(&admin),
        "mutation($u: ID!, $r: ID!) { assignRole(input: {userId: $u, roleId: $r, scope: OWN}) { assignment { id } } }",
        json!({"u": tech_id, "r": cs_role}),
    )
    .await;
    let estate: String =
        sqlx::query_scalar("SELECT id::text FROM projects WHERE code = 'JCHY'").fetch_one(&a.state.db).await.unwrap();
    let owners = "query($p: ID) { owners(projectId: $p, first: 1) { edges { node { id } } } }";
    // on B, once the new role shows there: the estate is not theirs (the actor is cached
    // on B now)
    let has_role = async || {
        b.ok(Some(&tech), "{ me { roles { roleCode } } }", json!({})).await.to_string().contains("customer_service")
    };
    assert!(b.wait_until(has_role).await, "the role never reached replica B");
    let r = b.gql(Some(&tech), owners, json!({"p": estate})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    // on A: the technician joins the estate's team
    let team: Vec<String> =
        sqlx::query_scalar("SELECT user_id::text FROM project_service_staff WHERE project_id = $1::uuid")
            .bind(&estate)
            .fetch_all(&a.state.db)
            .await
            .unwrap();
    let team: Vec<String> = team.into_iter().chain([tech_id.clone()]).collect();
    a.ok(
        Some(&admin),
        "mutation($p: ID!, $t: [ID!]) { updateProject(input: {projectId: $p, serviceStaffIds: $t}) { project { id } } }",
        json!({"p": estate, "t": team}),
    )
    .await;
    // on B: served within moments (the event crosses Redis; a cached actor would stay 30 s)
    let served = || async { b.gql(Some(&tech), owners, json!({"p": estate})).await.get("errors").is_none() };
    assert!(b.wait_until(served).await, "replica B still holds the old scope");
}
