//! SMS gateways through the real clients: Aliyun (ACS3) and Tencent (TC3) fakes check the
//! signatures; failover. Sign-in codes are sent off the request path (the answer never
//! depends on the phone or the gateway): a failed send voids the code, so it cannot be used.

use serde_json::json;
use wuye_tests::TestServer;
use wuye_tests::fakes::FakeSms;

/// Waits until the code stored for `phone` is voided (its send failed): it is replaced by
/// one nobody knows, so a guess answers exactly as for an unregistered phone.
async fn code_dropped(s: &TestServer, phone: &str) -> bool {
    let key = format!("otp:signin:{phone}");
    s.wait_until(|| {
        let key = key.clone();
        async move { s.redis_get_hash_field(&key, "failed").await.as_deref() == Some("1") }
    })
    .await
}

const REQUEST_CODE: &str =
    "mutation($p: String!) { requestSmsCode(input: {phone: $p, purpose: SIGN_IN}) { resendAfterSecs } }";
const SIGN_IN_CODE: &str =
    "mutation($p: String!, $c: String!) { signInWithSmsCode(input: {phone: $p, code: $c}) { accessToken } }";

fn templates(c: &mut wuye_api::Config) {
    c.sms.sign_name = "锦城物业".into();
    c.sms.templates.security_code = Some("SMS_100001".into());
    c.sms.templates.notice = Some("SMS_100002".into());
}

async fn aliyun_server(fake: &FakeSms, secret: &str) -> TestServer {
    let (url, secret) = (fake.url.clone(), secret.to_owned());
    TestServer::seeded_with(move |c| {
        templates(c);
        c.sms.provider = "aliyun".into();
        c.sms.aliyun.endpoint = url;
        c.sms.aliyun.access_key_id = "LTAI-test".into();
        c.sms.aliyun.access_key_secret = secret.into();
    })
    .await
}

async fn tencent_server(fake: &FakeSms, secret: &str) -> TestServer {
    let (url, secret) = (fake.url.clone(), secret.to_owned());
    TestServer::seeded_with(move |c| {
        templates(c);
        c.sms.provider = "tencent".into();
        c.sms.tencent.endpoint = url;
        c.sms.tencent.secret_id = "AKID-test".into();
        c.sms.tencent.secret_key = secret.into();
        c.sms.tencent.sdk_app_id = "1400000001".into();
    })
    .await
}

#[tokio::test]
async fn aliyun_delivers_the_sign_in_code_with_a_valid_signature() {
    let fake = FakeSms::aliyun("LTAI-test", "aliyun-secret").await;
    let s = aliyun_server(&fake, "aliyun-secret").await;
    s.ok(None, REQUEST_CODE, json!({"p": "13800000021"})).await;
    assert!(s.wait_until(|| async { fake.sent().len() == 1 }).await);
    let sent = fake.sent();
    assert_eq!((sent[0].phone.as_str(), sent[0].template.as_str()), ("13800000021", "SMS_100001"));
    let code = sent[0].params["code"].as_str().unwrap().to_owned();
    s.ok(None, SIGN_IN_CODE, json!({"p": "13800000021", "c": code})).await;
    assert_eq!(fake.bad_signatures(), 0);
}

#[tokio::test]
async fn aliyun_wrong_secret_and_gateway_errors() {
    let fake = FakeSms::aliyun("LTAI-test", "aliyun-secret").await;
    let s = aliyun_server(&fake, "not-the-secret").await;
    // the caller gets the usual answer; the gateway refuses the forged signature and the
    // code that never went out is dropped
    s.ok(None, REQUEST_CODE, json!({"p": "13800000022"})).await;
    assert!(s.wait_until(|| async { fake.bad_signatures() == 1 }).await, "the fake refused the forged signature");
    assert!(code_dropped(&s, "13800000022").await);
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn tencent_delivers_and_checks_per_number_results() {
    let fake = FakeSms::tencent("AKID-test", "tencent-secret").await;
    let s = tencent_server(&fake, "tencent-secret").await;
    s.ok(None, REQUEST_CODE, json!({"p": "13800000023"})).await;
    assert!(s.wait_until(|| async { fake.sent().len() == 1 }).await);
    let sent = fake.sent();
    let code_sent = sent[0].params[0].as_str().unwrap().to_owned();
    assert_eq!(code_sent.len(), 6);
    s.ok(None, SIGN_IN_CODE, json!({"p": "13800000023", "c": code_sent})).await;
    assert_eq!(fake.bad_signatures(), 0);

    // the request succeeds at the gateway but the number failed: no code stays stored
    s.ok(
        Some(&s.sign_in("admin").await),
        "mutation { registerOwner(input: {name: \"测试\", phone: \"17000000001\"}) { owner { id } } }",
        json!({}),
    )
    .await;
    sqlx::query("UPDATE users SET status = 'active' WHERE phone = '17000000001'").execute(&s.db).await.unwrap();
    s.ok(None, REQUEST_CODE, json!({"p": "17000000001"})).await;
    assert!(code_dropped(&s, "17000000001").await, "an invalid number keeps no code");
    s.ok(
        Some(&s.sign_in("admin").await),
        "mutation { registerOwner(input: {name: \"流控\", phone: \"13999999999\"}) { owner { id } } }",
        json!({}),
    )
    .await;
    sqlx::query("UPDATE users SET status = 'active' WHERE phone = '13999999999'").execute(&s.db).await.unwrap();
    s.ok(None, REQUEST_CODE, json!({"p": "13999999999"})).await;
    assert!(code_dropped(&s, "13999999999").await, "a rate-limited send keeps no code");

    let wrong = tencent_server(&fake, "wrong").await;
    wrong.ok(None, REQUEST_CODE, json!({"p": "13800000024"})).await;
    assert!(wrong.wait_until(|| async { fake.bad_signatures() == 1 }).await);
    assert!(code_dropped(&wrong, "13800000024").await);
}

#[tokio::test]
async fn failover_to_the_secondary_gateway_when_the_primary_is_down() {
    let primary = FakeSms::aliyun("LTAI-test", "aliyun-secret").await;
    let secondary = FakeSms::tencent("AKID-test", "tencent-secret").await;
    let (p, t) = (primary.url.clone(), secondary.url.clone());
    let s = TestServer::seeded_with(move |c| {
        templates(c);
        c.sms.provider = "aliyun".into();
        c.sms.secondary = Some("tencent".into());
        c.sms.aliyun.endpoint = p;
        c.sms.aliyun.access_key_id = "LTAI-test".into();
        c.sms.aliyun.access_key_secret = "aliyun-secret".to_owned().into();
        c.sms.tencent.endpoint = t;
        c.sms.tencent.secret_id = "AKID-test".into();
        c.sms.tencent.secret_key = "tencent-secret".to_owned().into();
        c.sms.tencent.sdk_app_id = "1400000001".into();
    })
    .await;
    s.ok(None, REQUEST_CODE, json!({"p": "13800000025"})).await;
    assert!(s.wait_until(|| async { primary.sent().len() == 1 }).await);
    assert_eq!(secondary.sent().len(), 0);
    primary.set_down(true);
    s.ok(None, REQUEST_CODE, json!({"p": "13800000026"})).await;
    assert!(s.wait_until(|| async { secondary.sent().len() == 1 }).await);
    assert_eq!(primary.sent().len(), 1);
    // a client error at the primary is final: no second message through the secondary
    primary.set_down(false);
    s.ok(
        Some(&s.sign_in("admin").await),
        "mutation { registerOwner(input: {name: \"测试\", phone: \"17000000002\"}) { owner { id } } }",
        json!({}),
    )
    .await;
    sqlx::query("UPDATE users SET status = 'active' WHERE phone = '17000000002'").execute(&s.db).await.unwrap();
    s.ok(None, REQUEST_CODE, json!({"p": "17000000002"})).await;
    assert!(code_dropped(&s, "17000000002").await);
    assert_eq!(secondary.sent().len(), 1);
}
