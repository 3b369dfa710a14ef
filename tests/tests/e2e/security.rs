//! The attacks of the security review, one class each: development helpers, login spellings,
//! forwarded addresses, aliased and batched sign-ins, code oracles, sessions that must end
//! (HTTP and WebSocket), grants that must not widen, and a second company on the server.

use serde_json::{Value, json};
use wuye_tests::{PASSWORD, TestServer, code, field, reason, ws};

const SIGN_IN: &str =
    "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { accessToken refreshToken } }";
const ME: &str = "{ me { user { id name } } }";

async fn user_id(s: &TestServer, token: &str) -> String {
    s.ok(Some(token), ME, json!({})).await["me"]["user"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn development_helpers_need_an_administrator() {
    let s = TestServer::seeded().await;
    s.ok(
        None,
        "mutation { requestSmsCode(input: {phone: \"13800000041\", purpose: SIGN_IN}) { resendAfterSecs } }",
        json!({}),
    )
    .await;
    let q = "{ devSentSms(phone: \"13800000041\") { phone code } }";
    // anonymous callers and ordinary staff cannot read the recorded codes
    assert_eq!(code(&s.gql(None, q, json!({})).await), "UNAUTHENTICATED");
    let tech = s.sign_in("tech1").await;
    assert_eq!(code(&s.gql(Some(&tech), q, json!({})).await), "FORBIDDEN");
    let owner = s.sign_in("13800000001").await;
    assert_eq!(code(&s.gql(Some(&owner), q, json!({})).await), "FORBIDDEN");
    let admin = s.sign_in("admin").await;
    s.last_sms_code("13800000041").await.expect("the code was recorded");
    let d = s.ok(Some(&admin), q, json!({})).await;
    assert_eq!(d["devSentSms"][0]["code"].as_str().map(str::len), Some(6));
    // and a production server has none of it
    let prod = TestServer::seeded_with(|c| c.env = wuye_api::kit::config::RunEnv::Production).await;
    let admin = prod.sign_in_playground("admin").await;
    assert_eq!(code(&prod.gql(Some(&admin), q, json!({})).await), "NOT_FOUND");
}

#[tokio::test]
async fn one_lockout_counter_however_the_phone_is_written() {
    let s = TestServer::seeded().await;
    // an owner's phone, written three ways: the failures add up
    for login in ["13800000002", "+86 138-0000-0002", "+8613800000002"] {
        let r = s.gql(None, SIGN_IN, json!({"l": login, "p": "Wrong1234"})).await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "{login}: {r}");
    }
    // the captcha is due for every spelling after three of them
    let req = s.ok(None, "query { captchaRequired(login: \"+86-138-0000-0002\") }", json!({})).await;
    assert_eq!(req["captchaRequired"], true);
    let r = s.gql(None, SIGN_IN, json!({"l": "138 0000 0002", "p": "Wrong1234"})).await;
    assert_eq!(field(&r), "captcha", "{r}");
    let with_captcha = "mutation($l: String!, $c: String!, $a: String!) { signIn(input: {login: $l, password: \"Wrong1234\", captchaId: $c, captchaAnswer: $a}) { accessToken } }";
    let mut last = json!({});
    for login in ["138 0000 0002", "8613800000002"] {
        let d = s.ok(None, "mutation { requestCaptcha(input: {}) { id } }", json!({})).await;
        let id = d["requestCaptcha"]["id"].as_str().unwrap().to_owned();
        let answer = s.redis_get(&format!("captcha:{id}")).await.unwrap();
        last = s.gql(None, with_captcha, json!({"l": login, "c": id, "a": answer})).await;
    }
    assert_eq!((code(&last), reason(&last)), ("RATE_LIMITED", "ACCOUNT_LOCKED"), "the fifth failure locks: {last}");
    // locked for the right password too, in any spelling
    let r = s.gql(None, SIGN_IN, json!({"l": "138-0000-0002", "p": PASSWORD})).await;
    assert_eq!(reason(&r), "ACCOUNT_LOCKED");
}

#[tokio::test]
async fn a_wrong_current_password_counts_towards_the_lockout() {
    let s = TestServer::seeded().await;
    let tech = s.sign_in("tech1").await;
    let change = "mutation($o: String!) { changePassword(input: {oldPassword: $o, newPassword: \"Another2026\"}) { accessToken } }";
    for _ in 0..4 {
        let r = s.gql(Some(&tech), change, json!({"o": "Wrong1234"})).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", "oldPassword"));
    }
    let r = s.gql(Some(&tech), change, json!({"o": "Wrong1234"})).await;
    assert_eq!(reason(&r), "ACCOUNT_LOCKED");
    // both ways of signing in are locked now
    assert_eq!(reason(&s.gql(None, SIGN_IN, json!({"l": "tech1", "p": PASSWORD})).await), "ACCOUNT_LOCKED");
    assert_eq!(reason(&s.gql(None, SIGN_IN, json!({"l": "13900000002", "p": PASSWORD})).await), "ACCOUNT_LOCKED");
}

#[tokio::test]
async fn aliases_and_batches_cannot_multiply_sign_ins() {
    let s = TestServer::seeded().await;
    let aliased = (0..6)
        .map(|i| format!("a{i}: signIn(input: {{login: \"tech2\", password: \"Guess{i}000x\"}}) {{ accessToken }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let r = s.gql(None, &format!("mutation {{ {aliased} }}"), json!({})).await;
    let errors = r["errors"].as_array().unwrap();
    let limited = errors.iter().filter(|e| e["extensions"]["reason"] == "TOO_MANY_IN_ONE_REQUEST").count();
    assert_eq!(limited, 3, "three guesses ran, three were refused: {r}");
    // only the three that ran were counted as failures
    assert_eq!(s.redis_get("signin:fail:{tech2}").await.as_deref(), Some("3"));
    // a batch shares the request's budget
    let batch: Vec<Value> =
        (0..5).map(|i| json!({"query": SIGN_IN, "variables": {"l": "cs1", "p": format!("Guess{i}000x")}})).collect();
    let (_, body) = s.post(None, None, json!(batch)).await;
    let refused = body
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["errors"][0]["extensions"]["reason"] == "TOO_MANY_IN_ONE_REQUEST")
        .count();
    assert_eq!(refused, 2, "{body}");
}

#[tokio::test]
async fn a_wrong_sms_code_answers_the_same_for_registered_and_unknown_phones() {
    let s = TestServer::seeded().await;
    let request = "mutation($p: String!) { requestSmsCode(input: {phone: $p, purpose: SIGN_IN}) { resendAfterSecs expiresInSecs } }";
    let known = s.ok(None, request, json!({"p": "13800000051"})).await;
    let unknown = s.ok(None, request, json!({"p": "13600000051"})).await;
    assert_eq!(known, unknown);
    // the same work was done for both: a code is stored for each (only the real one is sent)
    for p in ["13800000051", "13600000051"] {
        assert!(s.redis_get_hash_field(&format!("otp:signin:{p}"), "hash").await.is_some(), "{p}");
    }
    assert_eq!(s.wait_sms_count("13800000051", 1).await, 1);
    assert_eq!(s.sms_count("13600000051").await, 0);
    let sign_in = "mutation($p: String!) { signInWithSmsCode(input: {phone: $p, code: \"000000\"}) { accessToken } }";
    let a = s.gql(None, sign_in, json!({"p": "13800000051"})).await;
    let b = s.gql(None, sign_in, json!({"p": "13600000051"})).await;
    assert_eq!(a["errors"][0]["message"], b["errors"][0]["message"], "{a} {b}");
    assert_eq!(a["errors"][0]["extensions"], b["errors"][0]["extensions"]);
    // a phone that never asked for a code is the only "expired" one, for both kinds
    let c = s.gql(None, sign_in, json!({"p": "13800000052"})).await;
    let d = s.gql(None, sign_in, json!({"p": "13600000052"})).await;
    assert_eq!(c["errors"][0]["message"], d["errors"][0]["message"]);
}

#[tokio::test]
async fn sessions_end_at_once_on_every_replica() {
    let a = TestServer::seeded().await;
    let b = a.replica().await;
    // sign-out voids the access token too, on the other replica as well
    let (token, refresh) = a.sign_in_pair("tech1", PASSWORD).await;
    b.ok(Some(&token), ME, json!({})).await;
    a.ok(None, "mutation($t: String!) { signOut(input: {refreshToken: $t}) { ok } }", json!({"t": refresh})).await;
    // the other replica hears of it over the event bus within moments
    let revoked = b.wait_until(|| async { reason(&b.gql(Some(&token), ME, json!({})).await) == "TOKEN_REVOKED" }).await;
    assert!(revoked, "{}", b.gql(Some(&token), ME, json!({})).await);
    // another phone of the same user refreshes and goes on
    let (other, other_refresh) = a.sign_in_pair("tech1", PASSWORD).await;
    let fresh = a
        .ok(
            None,
            "mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { accessToken } }",
            json!({"t": other_refresh}),
        )
        .await;
    b.ok(Some(fresh["refreshToken"]["accessToken"].as_str().unwrap()), ME, json!({})).await;
    // a password change ends every session but the new one
    let (tech, _) = a.sign_in_pair("tech1", PASSWORD).await;
    let changed = a
        .ok(
            Some(&tech),
            "mutation { changePassword(input: {oldPassword: \"Wuye@2026\", newPassword: \"Changed2026x\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(reason(&a.gql(Some(&other), ME, json!({})).await), "TOKEN_REVOKED", "on the replica that changed it");
    let revoked = b.wait_until(|| async { reason(&b.gql(Some(&other), ME, json!({})).await) == "TOKEN_REVOKED" }).await;
    assert!(revoked, "the old session ended on the other replica: {}", b.gql(Some(&other), ME, json!({})).await);
    b.ok(Some(changed["changePassword"]["accessToken"].as_str().unwrap()), ME, json!({})).await;
}

#[tokio::test]
async fn tokens_of_another_issuer_or_audience_are_refused() {
    use jsonwebtoken::{EncodingKey, Header};
    let s = TestServer::seeded().await;
    let token = s.sign_in("tech1").await;
    let claims: Value = {
        let payload = token.split('.').nth(1).unwrap();
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    assert_eq!((claims["iss"].as_str(), claims["aud"].as_str()), (Some("wuye"), Some("wuye-api")));
    let secret = wuye_api::kit::config::DEV_JWT_SECRET.as_bytes();
    for (k, v) in [("iss", "someone-else"), ("aud", "another-service")] {
        let mut forged = claims.clone();
        forged[k] = json!(v);
        let t = jsonwebtoken::encode(&Header::default(), &forged, &EncodingKey::from_secret(secret)).unwrap();
        let r = s.gql(Some(&t), ME, json!({})).await;
        assert_eq!(reason(&r), "TOKEN_INVALID", "{k}: {r}");
    }
}

#[tokio::test]
async fn a_disabled_user_s_subscriptions_close_and_a_revoked_role_stops_the_alarms() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let tech = s.sign_in("tech1").await;
    let tech_id = user_id(&s, &tech).await;
    let estate = s.ok(Some(&admin), "{ projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await
        ["projects"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // queries over the socket get the DataLoaders (a nested roles field) and the limits
    let mut socket = ws::connect(&s.ws_url(), json!({"accessToken": tech})).await.unwrap();
    ws::subscribe(&mut socket, "q", "{ me { roles { roleCode } user { name } } }").await;
    let msg = ws::next_json(&mut socket).await.unwrap();
    assert_eq!(msg["payload"]["data"]["me"]["roles"][0]["roleCode"], "technician", "{msg}");

    // the technician loses their role: the alarm stream ends at the next event
    let grants =
        s.ok(Some(&admin), "query($u: ID!) { user(id: $u) { roles { id roleCode } } }", json!({"u": tech_id})).await;
    let grant = grants["user"]["roles"][0]["id"].as_str().unwrap().to_owned();
    ws::subscribe(
        &mut socket,
        "a",
        &format!("subscription {{ deviceStateChanged(projectId: \"{estate}\") {{ deviceId status }} }}"),
    )
    .await;
    s.ok(
        Some(&admin),
        "mutation($g: ID!) { revokeRole(input: {assignmentId: $g}) { deletedId } }",
        json!({"g": grant}),
    )
    .await;
    // a device speaks: the revoked subscriber is told the stream is over, not the change
    let mut ended = false;
    for _ in 0..20 {
        s.mqtt_publish("JCWY/JC-FIRE-01/status", br#"{"status":"offline"}"#).await;
        match ws::next_json_within(&mut socket, std::time::Duration::from_millis(500)).await {
            Some(m) if m["id"] == "a" && m["type"] == "complete" => {
                ended = true;
                break;
            }
            Some(m) if m["id"] == "a" && m["type"] == "next" => panic!("an event after the role was revoked: {m}"),
            _ => s.mqtt_publish("JCWY/JC-FIRE-01/status", br#"{"status":"online"}"#).await,
        }
    }
    assert!(ended, "the subscription ended");

    // disabling closes the connection at once
    let mut socket = ws::connect(&s.ws_url(), json!({"accessToken": s.sign_in("tech2").await})).await.unwrap();
    let tech2 = user_id(&s, &s.sign_in("tech2").await).await;
    s.ok(
        Some(&admin),
        "mutation($u: ID!) { setUserStatus(input: {userId: $u, active: false}) { user { status } } }",
        json!({"u": tech2}),
    )
    .await;
    assert!(ws::closed_within(&mut socket, std::time::Duration::from_secs(5)).await.is_some_and(|c| c == 4401));
}

#[tokio::test]
async fn an_expired_token_closes_its_socket_unless_refreshed_by_ping() {
    let s = TestServer::seeded().await;
    let (token, refresh) = s.sign_in_pair("manager", PASSWORD).await;
    let mut socket = ws::connect(&s.ws_url(), json!({"accessToken": token})).await.unwrap();
    // a fresh token in a ping keeps the connection
    s.advance(14 * 60);
    let fresh = s
        .ok(
            None,
            "mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { accessToken } }",
            json!({"t": refresh}),
        )
        .await["refreshToken"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    ws::send(&mut socket, json!({"type": "ping", "payload": {"accessToken": fresh}})).await;
    s.advance(2 * 60);
    assert!(ws::closed_within(&mut socket, std::time::Duration::from_millis(1500)).await.is_none(), "still open");
    // without one, it closes when the token runs out
    let mut other = ws::connect(&s.ws_url(), json!({"accessToken": s.sign_in("cs1").await})).await.unwrap();
    s.advance(16 * 60);
    assert_eq!(ws::closed_within(&mut other, std::time::Duration::from_secs(5)).await, Some(4401));
}

#[tokio::test]
async fn the_client_ip_is_the_rightmost_hop_not_a_trusted_proxy() {
    let s = TestServer::seeded_with(|c| {
        c.trust_forwarded_for = true;
        c.auth.otp_hourly_per_ip = 2;
        c.auth.otp_resend_secs = 0;
    })
    .await;
    let request = "mutation($p: String!) { requestSmsCode(input: {phone: $p, purpose: SIGN_IN}) { resendAfterSecs } }";
    let send = |xff: &'static str, phone: &'static str| {
        let s = &s;
        async move {
            let resp = s
                .http
                .post(format!("{}/graphql", s.url))
                .header("x-forwarded-for", xff)
                .json(&json!({"query": request, "variables": {"p": phone}}))
                .send()
                .await
                .unwrap();
            resp.json::<Value>().await.unwrap()
        }
    };
    // the client writes any left-most address it likes: the limit follows the address our
    // (loopback) proxy saw, the right-most untrusted hop
    send("1.1.1.1, 203.0.113.9", "13800000061").await;
    send("2.2.2.2, 203.0.113.9", "13800000062").await;
    let r = send("3.3.3.3, 203.0.113.9", "13800000063").await;
    assert_eq!(reason(&r), "IP_LIMIT", "{r}");
    // another real client is not limited
    let r = send("203.0.113.10", "13800000064").await;
    assert!(r.get("errors").is_none(), "{r}");
}

#[tokio::test]
async fn metrics_are_not_public_and_files_are_not_sniffed() {
    let s = TestServer::start_with(|c| c.metrics_token = Some("scrape-secret".to_owned().into())).await;
    let url = format!("{}/metrics", s.url);
    assert_eq!(s.http.get(&url).send().await.unwrap().status().as_u16(), 404);
    assert_eq!(s.http.get(&url).bearer_auth("wrong").send().await.unwrap().status().as_u16(), 404);
    let ok = s.http.get(&url).bearer_auth("scrape-secret").send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

#[tokio::test]
async fn own_scope_grants_cannot_reach_beyond_the_granter() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let roles = s.ok(Some(&admin), "{ roles(first: 50) { edges { node { id code } } } }", json!({})).await;
    let role = |c: &str| {
        roles["roles"]["edges"].as_array().unwrap().iter().find(|r| r["node"]["code"] == c).unwrap()["node"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let estate = s.ok(Some(&admin), "{ projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await
        ["projects"]["edges"][0]["node"]["id"]
        .clone();
    // a grant officer scoped to the estate only
    let officer = s
        .ok(
            Some(&admin),
            "mutation { createRole(input: {code: \"officer\", name: \"授权\", permissions: [\"role:write\", \"role:read\", \"announcement:write\", \"project:read\"]}) { role { id } } }",
            json!({}),
        )
        .await["createRole"]["role"]["id"]
        .clone();
    let cs = user_id(&s, &s.sign_in("cs1").await).await;
    let grant = "mutation($u: ID!, $r: ID!, $s: DataScope!, $p: [ID!]) { assignRole(input: {userId: $u, roleId: $r, scope: $s, projectIds: $p}) { assignment { id } } }";
    s.ok(Some(&admin), grant, json!({"u": cs, "r": officer, "s": "PROJECTS", "p": [estate]})).await;
    let cs_token = s.sign_in("cs1").await;
    // the manager serves both projects: an OWN grant to them reaches the tower too
    let manager = user_id(&s, &s.sign_in("manager").await).await;
    let custom = s
        .ok(
            Some(&admin),
            "mutation { createRole(input: {code: \"notice_own\", name: \"公告\", permissions: [\"announcement:write\"]}) { role { id } } }",
            json!({}),
        )
        .await["createRole"]["role"]["id"]
        .clone();
    let r = s.gql(Some(&cs_token), grant, json!({"u": manager, "r": custom, "s": "OWN"})).await;
    assert_eq!(reason(&r), "CANNOT_GRANT", "{r}");
    // and a company-wide grant cannot be narrowed (replaced) from below
    let finance = user_id(&s, &s.sign_in("finance1").await).await;
    s.ok(Some(&admin), grant, json!({"u": finance, "r": custom, "s": "COMPANY"})).await;
    let r = s.gql(Some(&cs_token), grant, json!({"u": finance, "r": custom, "s": "PROJECTS", "p": [estate]})).await;
    assert_eq!(reason(&r), "CANNOT_GRANT", "{r}");
    let _ = role("guard");
}

#[tokio::test]
async fn a_project_scoped_user_admin_cannot_take_over_a_wider_account() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let estate = s.ok(Some(&admin), "{ projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await
        ["projects"]["edges"][0]["node"]["id"]
        .clone();
    let role = s
        .ok(
            Some(&admin),
            "mutation { createRole(input: {code: \"hr_local\", name: \"人事\", permissions: [\"user:read\", \"user:write\"]}) { role { id } } }",
            json!({}),
        )
        .await["createRole"]["role"]["id"]
        .clone();
    let cs = user_id(&s, &s.sign_in("cs1").await).await;
    s.ok(
        Some(&admin),
        "mutation($u: ID!, $r: ID!, $p: [ID!]) { assignRole(input: {userId: $u, roleId: $r, scope: PROJECTS, projectIds: $p}) { assignment { id } } }",
        json!({"u": cs, "r": role, "p": [estate]}),
    )
    .await;
    let cs_token = s.sign_in("cs1").await;
    // the manager holds grants on both projects: out of reach for an estate-only user admin
    let manager = user_id(&s, &s.sign_in("manager").await).await;
    let r = s
        .gql(
            Some(&cs_token),
            "mutation($u: ID!) { resetUserPassword(input: {userId: $u, initialPassword: \"Taken2026x\"}) { user { id } } }",
            json!({"u": manager}),
        )
        .await;
    assert_eq!(reason(&r), "CANNOT_MANAGE", "{r}");
    // tech1 (estate only, technician permissions the user admin lacks) is out of reach too
    let tech = user_id(&s, &s.sign_in("tech1").await).await;
    let r = s
        .gql(
            Some(&cs_token),
            "mutation($u: ID!) { setUserStatus(input: {userId: $u, active: false}) { user { id } } }",
            json!({"u": tech}),
        )
        .await;
    assert_eq!(reason(&r), "CANNOT_MANAGE", "{r}");
}

#[tokio::test]
async fn linking_an_owner_needs_the_owner_in_scope() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let projects = s.ok(Some(&admin), "{ projects { edges { node { id code } } } }", json!({})).await;
    let id_of = |c: &str| {
        projects["projects"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["code"] == c).unwrap()["node"]["id"]
            .clone()
    };
    let (estate, tower) = (id_of("JCHY"), id_of("TFGJ"));
    // an owner who lives in the estate only
    let owner = s
        .ok(
            Some(&admin),
            "query($p: ID) { owners(projectId: $p, first: 1) { edges { node { id } } } }",
            json!({"p": estate}),
        )
        .await["owners"]["edges"][0]["node"]["id"]
        .clone();
    let tower_house = s
        .ok(
            Some(&admin),
            "query($p: ID) { houses(projectId: $p, first: 1) { edges { node { id } } } }",
            json!({"p": tower}),
        )
        .await["houses"]["edges"][0]["node"]["id"]
        .clone();
    // a customer-service agent of the tower only
    let cs_role = s.role_id(&admin, "customer_service").await;
    let guard = user_id(&s, &s.sign_in("guard1").await).await;
    s.ok(
        Some(&admin),
        "mutation($u: ID!, $r: ID!, $p: [ID!]) { assignRole(input: {userId: $u, roleId: $r, scope: PROJECTS, projectIds: $p}) { assignment { id } } }",
        json!({"u": guard, "r": cs_role, "p": [tower]}),
    )
    .await;
    let agent = s.sign_in("guard1").await;
    let r = s
        .gql(
            Some(&agent),
            "mutation($o: ID!, $h: ID!) { linkOwnerHouse(input: {ownerId: $o, houseId: $h, relation: TENANT}) { owner { id phone } } }",
            json!({"o": owner, "h": tower_house}),
        )
        .await;
    assert_eq!(code(&r), "NOT_FOUND", "an owner out of scope is not there: {r}");
}

#[tokio::test]
async fn another_company_s_project_is_not_found_whatever_the_grant() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let estate = s.ok(Some(&admin), "{ projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await
        ["projects"]["edges"][0]["node"]["id"]
        .clone();
    wuye_api::onboarding::create_company(
        &s.state,
        wuye_api::onboarding::NewCompany { name: "第二物业", code: Some("DEYW"), credit_code: None },
        "admin2",
        PASSWORD,
        false,
    )
    .await
    .unwrap();
    let other = s.sign_in("admin2").await;
    for q in [
        "query($p: ID!) { buildings(projectId: $p) { edges { node { id } } } }",
        "query($p: ID!) { parkingSpaces(projectId: $p) { edges { node { id ownerId } } } }",
        "query($p: ID) { houses(projectId: $p) { edges { node { id } } } }",
        "query($p: ID) { owners(projectId: $p) { edges { node { id } } } }",
        "query($p: ID) { devices(projectId: $p) { edges { node { id } } } }",
        "query($p: ID) { alarms(projectId: $p) { edges { node { id } } } }",
        "query($p: ID!) { deviceDashboard(projectId: $p) { total } }",
    ] {
        let r = s.gql(Some(&other), q, json!({"p": estate})).await;
        assert_eq!(code(&r), "NOT_FOUND", "{q}: {r}");
    }
    let mut socket = ws::connect(&s.ws_url(), json!({"accessToken": other})).await.unwrap();
    ws::subscribe(
        &mut socket,
        "1",
        &format!("subscription {{ alarmRaised(projectId: \"{}\") {{ id }} }}", estate.as_str().unwrap()),
    )
    .await;
    let msg = ws::next_json(&mut socket).await.unwrap();
    assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{msg}");
}

#[tokio::test]
async fn lookups_by_phone_or_id_card_without_pii_read_are_limited_and_audited() {
    let s = TestServer::seeded().await;
    let cs = s.sign_in("cs1").await;
    // ten aliases a request, each an exact phone: thirty in all are allowed, masked
    let aliases: String = (1..=10)
        .map(|i| {
            format!(
                "o{i}: owners(projectId: $p, search: \"1380000{i:04}\", first: 1) {{ edges {{ node {{ phone }} }} }}"
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let q = format!("query($p: ID) {{ {aliases} }}");
    let estate = s.ok(Some(&cs), "{ projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await
        ["projects"]["edges"][0]["node"]["id"]
        .clone();
    // the limit counts per clock minute: start at the top of one so the four requests share it
    s.advance(60 - chrono::Timelike::second(&s.clock_now()) as i64);
    for _ in 0..3 {
        let r = s.ok(Some(&cs), &q, json!({"p": estate})).await;
        let phone = r["o1"]["edges"][0]["node"]["phone"].as_str().unwrap();
        assert!(phone.contains("****"), "still masked: {phone}");
    }
    // the thirty-first is refused, and so is a lookup by ID-card number
    let r = s.gql(Some(&cs), &q, json!({"p": estate})).await;
    assert_eq!((code(&r), reason(&r)), ("RATE_LIMITED", "PII_LOOKUP_LIMIT"), "{r}");
    let card = wuye_api::onboarding::seed::demo_id_card(1);
    let by_card = "query($c: String) { owners(idCardNumber: $c, first: 1) { edges { node { idCardNumber } } } }";
    assert_eq!(reason(&s.gql(Some(&cs), by_card, json!({"c": card})).await), "PII_LOOKUP_LIMIT");
    // each allowed lookup is in the audit log, without the number in clear
    assert_eq!(s.scalar("SELECT count(*) FROM audit_log WHERE action = 'pii.lookup'").await, 30);
    assert_eq!(
        s.scalar("SELECT count(*) FROM audit_log WHERE action = 'pii.lookup' AND detail::text LIKE '%00000001%'").await,
        0
    );
    // part of a number matches no phone for them (it would confirm the masked digits)
    let partial = s.ok(Some(&cs), "{ owners(search: \"0001\", first: 5) { edges { node { id } } } }", json!({})).await;
    assert_eq!(partial["owners"]["edges"], json!([]));
    // a search by name is no lookup of personal data; an administrator with pii:read is not limited
    s.ok(Some(&cs), "{ owners(search: \"王\", first: 1) { edges { node { id } } } }", json!({})).await;
    let admin = s.sign_in("admin").await;
    for _ in 0..4 {
        s.ok(Some(&admin), &q, json!({"p": estate})).await;
    }
    // LIKE wildcards are taken literally
    let all = s.ok(Some(&admin), "{ owners(search: \"%\", first: 1) { edges { node { id } } } }", json!({})).await;
    assert_eq!(all["owners"]["edges"], json!([]));
}

#[tokio::test]
async fn control_characters_are_refused_at_the_edge_naming_the_field() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    // a variable
    let r = s
        .gql(
            Some(&admin),
            "query($s: String) { devices(search: $s, first: 1) { edges { node { id } } } }",
            json!({"s": "A\u{0}"}),
        )
        .await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "search"), "{r}");
    // a literal in the query text
    let r = s.gql(Some(&admin), "{ deviceByCode(code: \"JC\\u0000ELV\") { id } }", json!({})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "code"), "{r}");
    // inside an input object, nothing written
    let create = "mutation($i: CreateDeviceInput!) { createDevice(input: $i) { device { id } } }";
    let project = s.ok(Some(&admin), "{ projects(search: \"JCHY\") { edges { node { id } } } }", json!({})).await
        ["projects"]["edges"][0]["node"]["id"]
        .clone();
    let before = s.scalar("SELECT count(*) FROM devices").await;
    let input = json!({"i": {"projectId": project, "code": "NUL-1", "name": "泵\u{0}", "category": "WATER_PUMP"}});
    let r = s.gql(Some(&admin), create, input).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "name"), "{r}");
    assert_eq!(s.scalar("SELECT count(*) FROM devices").await, before);
    // tabs and line breaks are text
    let r = s
        .gql(
            Some(&admin),
            "query($s: String) { devices(search: $s, first: 1) { edges { node { id } } } }",
            json!({"s": "a\tb\nc"}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    // the same over the WebSocket
    let mut socket = ws::connect(&s.ws_url(), json!({"accessToken": admin})).await.unwrap();
    ws::send(
        &mut socket,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "query($s: String) { devices(search: $s, first: 1) { edges { node { id } } } }", "variables": {"s": "\u{1b}[31m"}}}),
    )
    .await;
    let m = ws::next_json(&mut socket).await.unwrap();
    assert_eq!(m["payload"]["errors"][0]["extensions"]["field"], "search", "{m}");
}
