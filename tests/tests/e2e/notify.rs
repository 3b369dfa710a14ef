//! Outbox, dispatcher, inbox, push devices and live notifications.

use serde_json::{Value, json};
use wuye_tests::{TestServer, code, field, ws};

const REGISTER: &str = "mutation($t: String!, $a: AppKind!) { registerDevice(input: {token: $t, platform: ANDROID, provider: FCM, app: $a}) { device { id provider } } }";
const SEND: &str = "mutation($u: [ID!]!, $t: String!) { sendNotification(input: {userIds: $u, title: $t, body: \"请于本周五前缴纳物业费\", category: BILL}) { queued } }";

/// The only notification has finished its first pass and waits for a retry (the pass's
/// attempts and outcomes are written together when it ends).
const FIRST_PASS_WRITTEN: &str =
    "SELECT count(*) FROM notifications WHERE status = 'pending' AND attempts = 1 AND locked_until IS NULL";

async fn my_id(s: &TestServer, token: &str) -> Value {
    s.ok(Some(token), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].clone()
}

#[tokio::test]
async fn notification_reaches_inbox_push_and_live_subscription() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let owner = s.sign_in("13800000001").await;
    let owner_id = my_id(&s, &owner).await;
    s.ok(Some(&owner), REGISTER, json!({"t": "fcm-token-owner-1", "a": "OWNER"})).await;
    let mut socket = ws::connect(&s.ws_url(), json!({"accessToken": owner})).await.unwrap();
    ws::subscribe(&mut socket, "n", "subscription { notificationReceived { id title category read } }").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let d = s.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": "缴费提醒"})).await;
    assert_eq!(d["sendNotification"]["queued"], 1);
    let msg = ws::next_json(&mut socket).await.expect("live notification");
    assert_eq!(msg["payload"]["data"]["notificationReceived"]["title"], "缴费提醒", "{msg}");
    assert_eq!(msg["payload"]["data"]["notificationReceived"]["category"], "BILL");

    assert_eq!(s.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", 1).await, 1);
    let pushes = s.pushes("fcm-token-owner-1").await;
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].title, "缴费提醒");
    assert_eq!(
        s.scalar("SELECT count(*) FROM notification_deliveries WHERE status = 'sent'").await,
        2,
        "inapp and push"
    );

    let inbox = s
        .ok(Some(&owner), "{ unreadNotificationCount notifications { edges { node { id title read } } } }", json!({}))
        .await;
    assert_eq!(inbox["unreadNotificationCount"], 1);
    let nid = inbox["notifications"]["edges"][0]["node"]["id"].clone();
    // someone else cannot mark it read: for them it does not exist
    let other = s.sign_in("13800000002").await;
    let r = s
        .gql(
            Some(&other),
            "mutation($i: [ID!]) { markNotificationsRead(input: {ids: $i}) { marked } }",
            json!({"i": [nid]}),
        )
        .await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let r = s.ok(Some(&other), "{ notifications { edges { node { id } } } }", json!({})).await;
    assert_eq!(r["notifications"]["edges"], json!([]), "inboxes are private");
    let r = s
        .ok(
            Some(&owner),
            "mutation($i: [ID!]) { markNotificationsRead(input: {ids: $i}) { marked unread } }",
            json!({"i": [nid]}),
        )
        .await;
    assert_eq!(r["markNotificationsRead"], json!({"marked": 1, "unread": 0}));
}

#[tokio::test]
async fn sending_needs_permission_and_valid_recipients() {
    let s = TestServer::seeded().await;
    let manager = s.sign_in("manager").await;
    let owner = s.sign_in("13800000003").await;
    let owner_id = my_id(&s, &owner).await;
    assert_eq!(code(&s.gql(Some(&manager), SEND, json!({"u": [owner_id], "t": "x"})).await), "FORBIDDEN");
    let admin = s.sign_in("admin").await;
    let r = s.gql(Some(&admin), SEND, json!({"u": ["01a2198d-8dcc-71a6-8074-9ba90012ae74"], "t": "x"})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "userIds"));
    let r = s.gql(Some(&admin), SEND, json!({"u": [owner_id], "t": "  "})).await;
    assert_eq!(field(&r), "title");
    assert_eq!(s.scalar("SELECT count(*) FROM notifications").await, 0, "nothing queued by refused requests");
}

#[tokio::test]
async fn device_tokens_move_between_users_and_leave_on_sign_out() {
    let s = TestServer::seeded().await;
    let a = s.sign_in("13800000004").await;
    let (b, b_refresh) = s.sign_in_pair("13800000005", wuye_tests::PASSWORD).await;
    s.ok(Some(&a), REGISTER, json!({"t": "shared-phone", "a": "OWNER"})).await;
    s.ok(Some(&b), REGISTER, json!({"t": "shared-phone", "a": "OWNER"})).await;
    let da = s.ok(Some(&a), "{ pushDevices { id } }", json!({})).await;
    let db = s.ok(Some(&b), "{ pushDevices { id } }", json!({})).await;
    assert_eq!(da["pushDevices"], json!([]), "the token moved to the second user");
    assert_eq!(db["pushDevices"].as_array().unwrap().len(), 1);
    // staff app token on an owner account, or a junk token, are refused
    assert_eq!(field(&s.gql(Some(&a), REGISTER, json!({"t": "t2", "a": "STAFF"})).await), "app");
    assert_eq!(field(&s.gql(Some(&a), REGISTER, json!({"t": "bad token\n", "a": "OWNER"})).await), "token");
    s.ok(
        Some(&b),
        "mutation($r: String!) { signOut(input: {refreshToken: $r, deviceToken: \"shared-phone\"}) { ok } }",
        json!({"r": b_refresh}),
    )
    .await;
    assert_eq!(s.scalar("SELECT count(*) FROM push_devices").await, 0);
}

#[tokio::test]
async fn two_replicas_send_each_message_exactly_once() {
    let a = TestServer::seeded().await;
    let b = a.replica().await;
    let admin = a.sign_in("admin").await;
    let mut users = Vec::new();
    for i in 10..40 {
        let t = a.sign_in(&format!("138000000{i}")).await;
        a.ok(Some(&t), REGISTER, json!({"t": format!("tok-{i}"), "a": "OWNER"})).await;
        users.push(my_id(&a, &t).await);
    }
    // a listener on replica B for a message raised through replica A
    let watcher = b.sign_in("13800000010").await;
    let mut socket = ws::connect(&b.ws_url(), json!({"accessToken": watcher})).await.unwrap();
    ws::subscribe(&mut socket, "n", "subscription { notificationReceived { title } }").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for round in 0..5 {
        a.ok(Some(&admin), SEND, json!({"u": users, "t": format!("第{round}轮")})).await;
    }
    let msg = ws::next_json(&mut socket).await.expect("event through the bus");
    assert!(msg["payload"]["data"]["notificationReceived"]["title"].as_str().unwrap().starts_with('第'));
    assert_eq!(a.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", 150).await, 150);
    for i in 10..40 {
        let got = a.pushes(&format!("tok-{i}")).await;
        assert_eq!(got.len(), 5, "token tok-{i}: one push per message, none twice");
    }
    assert_eq!(a.scalar("SELECT count(*) FROM notification_attempts WHERE ok").await, 150);
}

#[tokio::test]
async fn a_lease_left_by_a_dead_replica_is_taken_over() {
    // replica A only enqueues (no dispatcher); a "replica" leases the row and dies
    let a = TestServer::seeded_with(|c| c.notify.dispatcher = false).await;
    let admin = a.sign_in("admin").await;
    let owner = a.sign_in("13800000006").await;
    a.ok(Some(&owner), REGISTER, json!({"t": "tok-lease", "a": "OWNER"})).await;
    let owner_id = my_id(&a, &owner).await;
    a.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": "租约"})).await;
    let now = a.clock_now();
    let taken = wuye_api::notify::repo::claim(&a.db, now, now + chrono::TimeDelta::seconds(60), 100).await.unwrap();
    assert_eq!(taken.len(), 1);
    // a second, unleased notification: B sending it shows that B's dispatcher has run
    let other = a.sign_in("13800000011").await;
    let other_id = my_id(&a, &other).await;
    a.ok(Some(&admin), SEND, json!({"u": [other_id], "t": "对照"})).await;

    // replica B dispatches, but leaves the leased row alone until the lease runs out
    let mut config = (*a.state.config).clone();
    config.notify.dispatcher = true;
    config.notify.poll_ms = 50;
    let b = a.replica_with(config).await;
    assert_eq!(a.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", 1).await, 1, "the unleased row");
    assert_eq!(a.scalar("SELECT count(*) FROM notifications WHERE status = 'pending'").await, 1);
    assert_eq!(a.pushes("tok-lease").await.len(), 0, "a leased row is not sent twice");
    b.clock.advance(61);
    assert_eq!(a.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", 2).await, 2);
    assert_eq!(a.pushes("tok-lease").await.len(), 1);
}

async fn fcm_server(fake: &wuye_tests::fakes::FakeFcm, key: &str) -> TestServer {
    let dir = std::env::temp_dir().join(format!("wuye-sa-{}", uuid::Uuid::now_v7().simple()));
    let sa = fake.service_account(&dir, key);
    let url = fake.url.clone();
    TestServer::seeded_with(move |c| {
        c.push.fcm_service_account = Some(sa);
        c.push.fcm_endpoint = url;
        c.notify.poll_ms = 50;
        c.notify.backoff_base_ms = 10;
    })
    .await
}

#[tokio::test]
async fn fcm_v1_delivery_and_every_error_path() {
    let fake = wuye_tests::fakes::FakeFcm::start().await;
    let s = fcm_server(&fake, "fcm-test-key.pem").await;
    let admin = s.sign_in("admin").await;
    let owner = s.sign_in("13800000007").await;
    let owner_id = my_id(&s, &owner).await;
    for t in ["good-1", "unregistered-1", "badtoken-1", "quota-1", "unavailable-1"] {
        s.ok(Some(&owner), REGISTER, json!({"t": t, "a": "OWNER"})).await;
    }
    s.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": "第一条"})).await;
    // first pass: good accepted; dead tokens deactivated; quota / unavailable retried later
    for _ in 0..100 {
        if fake.accepted().contains_key("good-1")
            && s.scalar("SELECT count(*) FROM push_devices WHERE NOT active").await == 2
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(s.wait_for(FIRST_PASS_WRITTEN, 1).await, 1, "the first pass is recorded");
    assert_eq!(fake.accepted().get("good-1"), Some(&1));
    assert_eq!(s.scalar("SELECT count(*) FROM push_devices WHERE NOT active AND (token LIKE 'unregistered%' OR token LIKE 'badtoken%')").await, 2);
    let retry: Option<i32> = sqlx::query_scalar(
        "SELECT max(retry_after_secs) FROM notification_attempts WHERE channel LIKE 'push:%' AND NOT ok",
    )
    .fetch_one(&s.db)
    .await
    .unwrap();
    assert_eq!(retry, Some(30), "Retry-After is recorded and honoured");
    assert_eq!(s.scalar("SELECT count(*) FROM notifications WHERE status = 'pending'").await, 1);
    // nothing is resent before Retry-After: the row is not due again for 30 s
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM notifications n WHERE n.status = 'pending'
             AND n.next_attempt_at >= (SELECT max(a.at) FROM notification_attempts a WHERE a.notification_id = n.id) + interval '30 seconds'"
        )
        .await,
        1
    );
    assert!(!fake.accepted().contains_key("quota-1"));
    s.clock.advance(31);
    assert_eq!(s.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", 1).await, 1);
    let accepted = fake.accepted();
    assert_eq!(
        (accepted.get("good-1"), accepted.get("quota-1"), accepted.get("unavailable-1")),
        (Some(&1), Some(&1), Some(&1)),
        "{accepted:?}"
    );
    // the payload carries the android and apns blocks; data values are strings
    let m = &fake.accepted_messages()[0]["message"];
    assert_eq!(m["notification"]["title"], "第一条");
    assert_eq!(m["android"]["priority"], "NORMAL");
    // one OAuth token served every send so far (cached)
    assert_eq!(fake.token_requests(), 1);
    // a revoked access token: one plain 401, one refresh, then it goes through
    fake.revoke_tokens();
    s.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": "第二条"})).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", 2).await, 2);
    assert_eq!(fake.accepted().get("good-1"), Some(&2));
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn fcm_with_a_wrong_key_fails_the_push_channel() {
    let fake = wuye_tests::fakes::FakeFcm::start().await;
    let s = fcm_server(&fake, "fcm-wrong-key.pem").await;
    let admin = s.sign_in("admin").await;
    let owner = s.sign_in("13800000008").await;
    let owner_id = my_id(&s, &owner).await;
    s.ok(Some(&owner), REGISTER, json!({"t": "good-2", "a": "OWNER"})).await;
    s.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": "错误密钥"})).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", 1).await, 1);
    assert!(fake.accepted().is_empty(), "the fake refused the forged assertion");
    let status: String = sqlx::query_scalar("SELECT status FROM notification_deliveries WHERE channel = 'push'")
        .fetch_one(&s.db)
        .await
        .unwrap();
    assert_eq!(status, "failed");
    let inapp: String = sqlx::query_scalar("SELECT status FROM notification_deliveries WHERE channel = 'inapp'")
        .fetch_one(&s.db)
        .await
        .unwrap();
    assert_eq!(inapp, "sent", "other channels are not held back by a push failure");
}

#[tokio::test]
async fn jpush_delivery_unknown_ids_and_rate_limits() {
    let fake = wuye_tests::fakes::FakeJPush::start("jp-app-key", "jp-master-secret").await;
    let url = fake.url.clone();
    let s = TestServer::seeded_with(move |c| {
        c.push.jpush_app_key = Some("jp-app-key".into());
        c.push.jpush_master_secret = "jp-master-secret".to_owned().into();
        c.push.jpush_endpoint = url;
        c.notify.poll_ms = 50;
        c.notify.backoff_base_ms = 10;
    })
    .await;
    let admin = s.sign_in("admin").await;
    let owner = s.sign_in("13800000009").await;
    let owner_id = my_id(&s, &owner).await;
    let reg = "mutation($t: String!) { registerDevice(input: {token: $t, platform: ANDROID, provider: JPUSH, app: OWNER}) { device { provider } } }";
    for t in ["jp-ok-1", "jp-gone-1", "jp-limit-1"] {
        let d = s.ok(Some(&owner), reg, json!({"t": t})).await;
        assert_eq!(d["registerDevice"]["device"]["provider"], "JPUSH");
    }
    s.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": "极光"})).await;
    for _ in 0..100 {
        if fake.accepted().contains_key("jp-ok-1")
            && s.scalar("SELECT count(*) FROM push_devices WHERE NOT active").await == 1
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(s.wait_for(FIRST_PASS_WRITTEN, 1).await, 1, "the first pass is recorded");
    assert_eq!(s.scalar("SELECT count(*) FROM push_devices WHERE NOT active AND token = 'jp-gone-1'").await, 1);
    let retry: Option<i32> = sqlx::query_scalar("SELECT max(retry_after_secs) FROM notification_attempts WHERE NOT ok")
        .fetch_one(&s.db)
        .await
        .unwrap();
    assert_eq!(retry, Some(20), "X-Rate-Limit-Reset honoured");
    s.clock.advance(21);
    assert_eq!(s.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", 1).await, 1);
    let accepted = fake.accepted();
    assert_eq!((accepted.get("jp-ok-1"), accepted.get("jp-limit-1")), (Some(&1), Some(&1)), "{accepted:?}");
    assert_eq!(fake.auth_failures(), 0);

    // the wrong master secret: refused by the fake, the push channel fails, nothing retried
    let url = fake.url.clone();
    let wrong = TestServer::seeded_with(move |c| {
        c.push.jpush_app_key = Some("jp-app-key".into());
        c.push.jpush_master_secret = "not-the-secret".to_owned().into();
        c.push.jpush_endpoint = url;
        c.notify.poll_ms = 50;
    })
    .await;
    let admin = wrong.sign_in("admin").await;
    let owner = wrong.sign_in("13800000009").await;
    wrong.ok(Some(&owner), reg, json!({"t": "jp-ok-2"})).await;
    let owner_id = my_id(&wrong, &owner).await;
    wrong.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": "错误密钥"})).await;
    assert_eq!(
        wrong
            .wait_for("SELECT count(*) FROM notification_deliveries WHERE channel = 'push' AND status = 'failed'", 1)
            .await,
        1
    );
    assert_eq!(fake.auth_failures(), 1);
}

#[tokio::test]
async fn preferences_mute_channels_but_never_alarms_and_quiet_hours_hold_push() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let owner = s.sign_in("13800000031").await;
    let owner_id = my_id(&s, &owner).await;
    s.ok(Some(&owner), REGISTER, json!({"t": "tok-prefs", "a": "OWNER"})).await;
    let set = "mutation($c: NotificationCategory!, $ch: NotificationChannel!, $e: Boolean!) { setNotificationPreference(input: {category: $c, channel: $ch, enabled: $e}) { preference { enabled canMute } } }";
    let r = s.gql(Some(&owner), set, json!({"c": "ALARM", "ch": "PUSH", "e": false})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "category"));
    s.ok(Some(&owner), set, json!({"c": "BILL", "ch": "PUSH", "e": false})).await;
    let prefs = s.ok(Some(&owner), "{ notificationPreferences { category channel enabled canMute } }", json!({})).await;
    let bill_push = prefs["notificationPreferences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["category"] == "BILL" && p["channel"] == "PUSH")
        .unwrap()
        .clone();
    assert_eq!(bill_push["enabled"], false);
    // a muted bill push is skipped, the inbox still gets it
    s.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": "静音"})).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", 1).await, 1);
    assert_eq!(s.pushes("tok-prefs").await.len(), 0);
    let why: String = sqlx::query_scalar("SELECT detail FROM notification_deliveries WHERE channel = 'push'")
        .fetch_one(&s.db)
        .await
        .unwrap();
    assert_eq!(why, "muted by the user");
    s.ok(Some(&owner), set, json!({"c": "BILL", "ch": "PUSH", "e": true})).await;

    // quiet hours around now (Shanghai time): push held back, in-app still delivered
    let r = s
        .gql(
            Some(&owner),
            "mutation { setQuietHours(input: {start: \"25:00\", end: \"07:00\"}) { quietHours { start } } }",
            json!({}),
        )
        .await;
    assert_eq!(field(&r), "start");
    use chrono::Timelike;
    let now = s.clock_now().with_timezone(&chrono_tz::Asia::Shanghai);
    let start = format!("{:02}:00", now.hour());
    let end = format!("{:02}:00", (now.hour() + 2) % 24);
    s.ok(
        Some(&owner),
        "mutation($s: String, $e: String) { setQuietHours(input: {start: $s, end: $e}) { quietHours { start end } } }",
        json!({"s": start, "e": end}),
    )
    .await;
    s.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": "夜间"})).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", 2).await, 2);
    assert_eq!(s.pushes("tok-prefs").await.len(), 0);
    assert_eq!(s.scalar("SELECT count(*) FROM notification_deliveries WHERE detail = 'quiet hours'").await, 1);
    let unread = s.ok(Some(&owner), "{ unreadNotificationCount }", json!({})).await;
    assert_eq!(unread["unreadNotificationCount"], 2);
}

#[tokio::test]
async fn a_notification_that_cannot_be_sent_is_given_up_and_marked_failed() {
    // the OAuth endpoint answers, the send endpoint is unreachable: every try is retryable
    let fake = wuye_tests::fakes::FakeFcm::start().await;
    let dir = std::env::temp_dir().join(format!("wuye-sa-{}", uuid::Uuid::now_v7().simple()));
    let sa = fake.service_account(&dir, "fcm-test-key.pem");
    let s = TestServer::seeded_with(move |c| {
        c.push.fcm_service_account = Some(sa);
        c.push.fcm_endpoint = "http://127.0.0.1:9".into();
        c.notify.poll_ms = 50;
        c.notify.backoff_base_ms = 1000;
        c.notify.give_up_after_secs = 60;
    })
    .await;
    let admin = s.sign_in("admin").await;
    let owner = s.sign_in("13800000032").await;
    let owner_id = my_id(&s, &owner).await;
    s.ok(Some(&owner), REGISTER, json!({"t": "tok-never", "a": "OWNER"})).await;
    s.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": "放弃"})).await;
    assert!(s.wait_for("SELECT count(*) FROM notification_attempts WHERE NOT ok", 1).await >= 1);
    assert_eq!(
        s.scalar("SELECT count(*) FROM notifications WHERE status = 'pending'").await,
        1,
        "retried, not dropped"
    );
    // the inbox copy was delivered on the first pass and is not repeated
    assert_eq!(
        s.scalar("SELECT count(*) FROM notification_deliveries WHERE channel = 'inapp' AND status = 'sent'").await,
        1
    );
    s.clock.advance(120);
    assert_eq!(s.wait_for("SELECT count(*) FROM notifications WHERE status = 'failed'", 1).await, 1);
    let detail: String = sqlx::query_scalar("SELECT detail FROM notification_deliveries WHERE channel = 'push'")
        .fetch_one(&s.db)
        .await
        .unwrap();
    assert_eq!(detail, "gave up after retries");
}

#[tokio::test]
async fn notification_sms_respects_our_daily_limit_per_phone() {
    let s = TestServer::seeded_with(|c| {
        c.notify.sms_daily_per_phone = 1;
        c.notify.give_up_after_secs = 3 * 86_400;
    })
    .await;
    let admin = s.sign_in("admin").await;
    let owner = s.sign_in("13800000033").await;
    let owner_id = my_id(&s, &owner).await;
    let q = "mutation($u: [ID!]!) { sendNotification(input: {userIds: $u, title: \"停水通知\", body: \"明日停水\", category: SYSTEM, channels: [SMS]}) { queued } }";
    s.ok(Some(&admin), q, json!({"u": [owner_id]})).await;
    s.ok(Some(&admin), q, json!({"u": [owner_id]})).await;
    assert_eq!(s.wait_for("SELECT count(*) FROM notifications WHERE status = 'done'", 2).await, 2);
    assert_eq!(s.sms_count("13800000033").await, 1, "the second SMS never reached the gateway");
    assert_eq!(
        s.scalar("SELECT count(*) FROM notification_deliveries WHERE detail = 'daily SMS limit for this number'").await,
        1
    );
    // a bill reminder over the allowance is not dropped: it waits for the next day
    let bill = "mutation($u: [ID!]!) { sendNotification(input: {userIds: $u, title: \"欠费提醒\", body: \"请缴费\", category: BILL, channels: [SMS]}) { queued } }";
    s.ok(Some(&admin), bill, json!({"u": [owner_id]})).await;
    assert_eq!(
        s.wait_for("SELECT count(*) FROM notification_attempts WHERE error = 'daily SMS limit: sent tomorrow'", 1)
            .await,
        1
    );
    assert_eq!(s.scalar("SELECT count(*) FROM notifications WHERE category = 'bill' AND status = 'pending'").await, 1);
    s.advance(2 * 86_400);
    assert_eq!(
        s.wait_for("SELECT count(*) FROM notifications WHERE category = 'bill' AND status = 'done'", 1).await,
        1
    );
    assert_eq!(s.wait_sms_count("13800000033", 2).await, 2, "sent the next day");
}

#[tokio::test]
async fn marking_read_with_a_client_mutation_id_applies_once() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let owner = s.sign_in("13800000034").await;
    let owner_id = my_id(&s, &owner).await;
    for t in ["第一条", "第二条", "第三条"] {
        s.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": t})).await;
    }
    let mark = "mutation($i: [ID!], $c: String) { markNotificationsRead(input: {ids: $i, clientMutationId: $c}) { clientMutationId marked unread } }";
    let all = json!({"i": null, "c": "mark-all-1"});

    // the same request twice at once: applied once, both answers report the same count
    let (first, second) = tokio::join!(s.gql(Some(&owner), mark, all.clone()), s.gql(Some(&owner), mark, all.clone()));
    for r in [&first, &second] {
        assert!(r.get("errors").is_none(), "{r}");
        assert_eq!(
            r["data"]["markNotificationsRead"],
            json!({"clientMutationId": "mark-all-1", "marked": 3, "unread": 0})
        );
    }
    assert_eq!(s.scalar("SELECT count(*) FROM notifications WHERE read_at IS NOT NULL").await, 3);
    assert_eq!(s.scalar("SELECT count(*) FROM client_mutations WHERE client_id = 'mark-all-1'").await, 1);

    // a retry after a new notification arrived: the first call's answer, the new one stays unread
    s.ok(Some(&admin), SEND, json!({"u": [owner_id], "t": "第四条"})).await;
    let again = s.ok(Some(&owner), mark, all.clone()).await;
    assert_eq!(again["markNotificationsRead"]["marked"], 3);
    assert_eq!(again["markNotificationsRead"]["unread"], 1);
    assert_eq!(s.scalar("SELECT count(*) FROM notifications WHERE read_at IS NULL").await, 1);

    // without a clientMutationId every call applies
    let fresh = s.ok(Some(&owner), mark, json!({"i": null, "c": null})).await;
    assert_eq!(fresh["markNotificationsRead"]["marked"], 1);

    // the same id with other input is refused
    let inbox = s.ok(Some(&owner), "{ notifications(first: 1) { edges { node { id } } } }", json!({})).await;
    let nid = inbox["notifications"]["edges"][0]["node"]["id"].clone();
    assert!(nid.is_string(), "{inbox}");
    let r = s.gql(Some(&owner), mark, json!({"i": [nid], "c": "mark-all-1"})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "clientMutationId"), "{r}");
}

#[tokio::test]
async fn device_registration_with_a_client_mutation_id_applies_once() {
    let s = TestServer::seeded().await;
    let owner = s.sign_in("13800000035").await;
    let reg = "mutation($t: String!, $c: String) { registerDevice(input: {token: $t, platform: IOS, provider: FCM, app: OWNER, clientMutationId: $c}) { clientMutationId device { id platform provider app } } }";
    let vars = json!({"t": "tok-retry", "c": "reg-1"});
    let (a, b) = tokio::join!(s.gql(Some(&owner), reg, vars.clone()), s.gql(Some(&owner), reg, vars.clone()));
    for r in [&a, &b] {
        assert!(r.get("errors").is_none(), "{r}");
    }
    assert_eq!(a["data"]["registerDevice"], b["data"]["registerDevice"], "both answers show the same device");
    assert_eq!(a["data"]["registerDevice"]["device"]["platform"], "IOS", "{a}");
    assert_eq!(s.scalar("SELECT count(*) FROM push_devices").await, 1);
    let r = s.gql(Some(&owner), reg, json!({"t": "another-token", "c": "reg-1"})).await;
    assert_eq!((code(&r), field(&r)), ("CONFLICT", "clientMutationId"));
    // unregistering answers with the phones left
    let d = s
        .ok(
            Some(&owner),
            "mutation { unregisterDevice(input: {token: \"tok-retry\"}) { removed pushDevices { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["unregisterDevice"], json!({"removed": true, "pushDevices": []}));
}
