//! Redis Cluster: two replicas on a local cluster of `redis-server` nodes. SMS codes, the
//! sign-in limits, live device state and the event bus work as on one server; the keys
//! spread over the nodes; a master killed with SIGKILL fails over to its replica and the
//! replicas go on (the event bus moves to a live node).
//! The whole suite runs against a cluster with `deploy/test-redis-cluster.sh`.

use std::time::Duration;

use serde_json::{Value, json};
use wuye_tests::redis_cluster::RedisCluster;
use wuye_tests::{PASSWORD, TestServer, code, reason, ws};

const SIGN_IN: &str =
    "mutation($l: String!, $p: String!) { signIn(input: {login: $l, password: $p}) { accessToken refreshToken } }";
const ME: &str = "{ me { user { id } } }";

async fn on_cluster(cluster: &RedisCluster) -> (TestServer, TestServer) {
    let nodes = cluster.nodes.clone();
    let a = TestServer::seeded_with(|c| c.redis_cluster_nodes = nodes).await;
    let b = a.replica().await;
    (a, b)
}

/// A code requested through one replica signs in through the other; a wrong code is
/// counted in the code's own slot.
async fn sms_code_flow(a: &TestServer, b: &TestServer, phone: &str) {
    let request = "mutation($p: String!) { requestSmsCode(input: {phone: $p, purpose: SIGN_IN}) { expiresInSecs } }";
    a.ok(None, request, json!({"p": phone})).await;
    let sent = a.last_sms_code(phone).await.expect("the code was recorded");
    let sign_in =
        "mutation($p: String!, $c: String!) { signInWithSmsCode(input: {phone: $p, code: $c}) { accessToken } }";
    let wrong = if sent == "000000" { "111111" } else { "000000" };
    assert_eq!(code(&b.gql(None, sign_in, json!({"p": phone, "c": wrong})).await), "VALIDATION");
    let d = b.ok(None, sign_in, json!({"p": phone, "c": sent})).await;
    assert!(d["signInWithSmsCode"]["accessToken"].is_string());
    // used up
    assert_eq!(code(&a.gql(None, sign_in, json!({"p": phone, "c": sent})).await), "VALIDATION");
}

/// Three failures ask for a captcha (the login's and the IP's counters are read together
/// across slots); the fifth locks the login on every replica (the lock and the failure
/// count share a slot and change in one pipeline).
async fn lockout_flow(a: &TestServer, b: &TestServer, login: &str) {
    for _ in 0..3 {
        assert_eq!(code(&a.gql(None, SIGN_IN, json!({"l": login, "p": "Wrong1234"})).await), "UNAUTHENTICATED");
    }
    let q = "query($l: String!) { captchaRequired(login: $l) }";
    assert_eq!(b.ok(None, q, json!({"l": login})).await["captchaRequired"], true);
    let with_captcha = "mutation($l: String!, $c: String!, $a: String!) { signIn(input: {login: $l, password: \"Wrong1234\", captchaId: $c, captchaAnswer: $a}) { accessToken } }";
    let mut last = json!({});
    for _ in 0..2 {
        let d = a.ok(None, "mutation { requestCaptcha(input: {}) { id } }", json!({})).await;
        let id = d["requestCaptcha"]["id"].as_str().unwrap().to_owned();
        let answer = a.redis_get(&format!("captcha:{id}")).await.unwrap();
        last = b.gql(None, with_captcha, json!({"l": login, "c": id, "a": answer})).await;
    }
    assert_eq!(reason(&last), "ACCOUNT_LOCKED", "{last}");
    assert_eq!(reason(&a.gql(None, SIGN_IN, json!({"l": login, "p": PASSWORD})).await), "ACCOUNT_LOCKED");
}

/// Telemetry ingested by one replica is the live state the other reads, and its change
/// reaches a subscriber connected to the other.
async fn live_state_flow(a: &TestServer, b: &TestServer, manager: &str, values: Value) {
    let d = b.ok(Some(manager), "{ deviceByCode(code: \"JC-PUMP-01\") { id projectId } }", json!({})).await;
    let (device, project) = (d["deviceByCode"]["id"].clone(), d["deviceByCode"]["projectId"].clone());
    let mut socket = ws::connect(&b.ws_url(), json!({"accessToken": manager})).await.unwrap();
    let sub = format!(
        "subscription {{ deviceStateChanged(projectId: \"{}\") {{ deviceId status }} }}",
        project.as_str().unwrap()
    );
    ws::subscribe(&mut socket, "d", &sub).await;
    let body = json!({"values": values}).to_string();
    let q = "query($d: ID!) { deviceLiveState(deviceId: $d) { status values } }";
    // the subscription is live once a change comes through: offline and back until one does
    let mut heard = false;
    for _ in 0..40 {
        a.mqtt_publish("JCWY/JC-PUMP-01/status", br#"{"status":"offline"}"#).await;
        a.mqtt_publish("JCWY/JC-PUMP-01/telemetry", body.as_bytes()).await;
        if let Some(m) = ws::next_json_within(&mut socket, Duration::from_millis(300)).await {
            assert_eq!(m["payload"]["data"]["deviceStateChanged"]["deviceId"], device, "{m}");
            heard = true;
            break;
        }
    }
    assert!(heard, "no device state change reached the other replica's subscriber");
    let want = json!({"status": "NORMAL", "values": values});
    let got =
        b.wait_until(|| async { b.ok(Some(manager), q, json!({"d": device})).await["deviceLiveState"] == want }).await;
    assert!(got, "{}", b.ok(Some(manager), q, json!({"d": device})).await);
}

/// Signing out on one replica ends the access token on the other (over the event bus).
async fn revocation_flow(a: &TestServer, b: &TestServer, login: &str) {
    let (token, refresh) = a.sign_in_pair(login, PASSWORD).await;
    b.ok(Some(&token), ME, json!({})).await;
    a.ok(None, "mutation($t: String!) { signOut(input: {refreshToken: $t}) { ok } }", json!({"t": refresh})).await;
    let revoked = b.wait_until(|| async { reason(&b.gql(Some(&token), ME, json!({})).await) == "TOKEN_REVOKED" }).await;
    assert!(revoked, "{}", b.gql(Some(&token), ME, json!({})).await);
}

#[tokio::test]
async fn codes_limits_live_state_and_events_work_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let (a, b) = on_cluster(&cluster).await;
    let manager = a.sign_in("manager").await;
    sms_code_flow(&a, &b, "13800000002").await;
    live_state_flow(&a, &b, &manager, json!({"pressureMpa": 0.42})).await;
    revocation_flow(&a, &b, "cs1").await;
    // last: the failures make this IP's sign-ins ask for a captcha
    lockout_flow(&a, &b, "tech1").await;
    // the keys are spread over the nodes, not piled on one slot (a dozen keys of unrelated
    // slots: all on one of three nodes by chance is about one in 10^5)
    let per_node = cluster.keys_per_node(&a.state.config.redis_prefix);
    assert!(per_node.iter().filter(|n| **n > 0).count() >= 2, "the keys spread over the nodes: {per_node:?}");
}

#[tokio::test]
async fn a_killed_master_fails_over_and_the_replicas_go_on() {
    let cluster = RedisCluster::start(3, 1);
    let (a, b) = on_cluster(&cluster).await;
    let manager = a.sign_in("manager").await;
    revocation_flow(&a, &b, "cs1").await;
    // the first node is a master, and the one every event bus listened on first; a login
    // whose counters live on it is read throughout the failover
    let victim = cluster.ports[0];
    let probe = (0..).map(|i| format!("probe{i}")).find(|l| cluster.master_of(&format!("{{{l}}}")) == victim).unwrap();
    let q = format!("{{ captchaRequired(login: \"{probe}\") }}");
    let failing_over = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        let took = cluster.kill(victim, Duration::from_secs(30));
        (cluster, took)
    });
    let mut answers = std::collections::BTreeMap::<String, u32>::new();
    while !failing_over.is_finished() {
        let r = a.gql(None, &q, json!({})).await;
        let c = if r["errors"].is_null() { "OK" } else { code(&r) };
        *answers.entry(c.to_owned()).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_cluster, took) = failing_over.await.unwrap();
    eprintln!("failover took {took:?}; answers meanwhile: {answers:?}");
    // while the slot has no master: answers late, or UNAVAILABLE (retry), never INTERNAL
    assert!(answers.keys().all(|c| c == "OK" || c == "UNAVAILABLE"), "{answers:?}");
    assert_eq!(a.ok(None, &q, json!({})).await["captchaRequired"], false);
    // B learns of the dead master on its first command there: a read through the dropped
    // connection is sent again and succeeds (a write would answer UNAVAILABLE, as it may
    // have run: the phone's retry applies it once)
    assert_eq!(b.ok(None, &q, json!({})).await["captchaRequired"], false);
    sms_code_flow(&a, &b, "13800000002").await;
    live_state_flow(&a, &b, &manager, json!({"pressureMpa": 0.51})).await;
    revocation_flow(&a, &b, "cs1").await;
    lockout_flow(&a, &b, "tech1").await;
}

/// A slot being resharded: keys already on the importing node are reached through ASK
/// redirects (ASKING first), for single commands and pipelines alike; nothing waits for
/// the migration to end or answers UNAVAILABLE.
#[tokio::test]
async fn keys_of_a_migrating_slot_follow_ask_redirects() {
    let cluster = RedisCluster::start(3, 0);
    let nodes = cluster.nodes.clone();
    let a = TestServer::seeded_with(|c| c.redis_cluster_nodes = nodes).await;
    let (from, to) = (cluster.ports[0], cluster.ports[1]);
    let login = (0..).map(|i| format!("moving{i}")).find(|l| cluster.master_of(&format!("{{{l}}}")) == from).unwrap();
    let slot = cluster.migrate_start(&format!("{{{login}}}"), to);
    // each failure: the captcha check (MGET), then the count (an INCR + EXPIRE pipeline)
    for _ in 0..2 {
        let r = a.gql(None, SIGN_IN, json!({"l": login, "p": "Wrong1234"})).await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "{r}");
    }
    let q = format!("{{ captchaRequired(login: \"{login}\") }}");
    assert_eq!(a.ok(None, &q, json!({})).await["captchaRequired"], false);
    // the counter was written on the importing node, not on the source
    let key = format!("{}signin:fail:{{{login}}}", a.state.config.redis_prefix);
    cluster.migrate_finish(slot, to);
    assert_eq!(cluster.get(to, &key), "2");
    assert_eq!(code(&a.gql(None, SIGN_IN, json!({"l": login, "p": "Wrong1234"})).await), "UNAUTHENTICATED");
    assert_eq!(cluster.get(to, &key), "3", "the slot's new master serves it after the migration");
}
