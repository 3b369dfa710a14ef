//! Sign-in flows and their attack cases.

use serde_json::json;
use wuye_tests::{PASSWORD, TestServer, code, field, reason};

const SIGN_IN: &str = "mutation($l: String!, $p: String!, $ci: String, $ca: String) {
  signIn(input: {login: $l, password: $p, captchaId: $ci, captchaAnswer: $ca}) { accessToken refreshToken mustChangePassword user { name } } }";
const REFRESH: &str = "mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { accessToken refreshToken } }";
const ME: &str = "{ me { user { name } permissions } }";
const REQUEST_CODE: &str = "mutation($p: String!, $k: SmsCodePurpose!) { requestSmsCode(input: {phone: $p, purpose: $k}) { resendAfterSecs expiresInSecs } }";

async fn new_captcha(s: &TestServer) -> (String, String) {
    let d = s.ok(None, "mutation { requestCaptcha { id imageBase64 expiresInSecs } }", json!({})).await;
    let id = d["requestCaptcha"]["id"].as_str().unwrap().to_owned();
    assert!(d["requestCaptcha"]["imageBase64"].as_str().unwrap().starts_with("iVBOR"), "a PNG");
    let answer = s.redis_get(&format!("captcha:{id}")).await.unwrap();
    (id, answer)
}

#[tokio::test]
async fn password_sign_in_and_me() {
    let s = TestServer::seeded().await;
    let r = s.gql(None, SIGN_IN, json!({"l": "tech1", "p": PASSWORD})).await;
    assert_eq!(r["data"]["signIn"]["user"]["name"], "李师傅");
    let token = r["data"]["signIn"]["accessToken"].as_str().unwrap();
    let me = s.ok(Some(token), "{ me { user { username } permissions menu { code title } } }", json!({})).await;
    assert_eq!(me["me"]["user"]["username"], "tech1");
    let perms = me["me"]["permissions"].as_array().unwrap();
    assert!(perms.contains(&json!("estate:read")) && !perms.contains(&json!("user:write")));
    let menu: Vec<&str> = me["me"]["menu"].as_array().unwrap().iter().map(|m| m["code"].as_str().unwrap()).collect();
    assert!(menu.contains(&"estate") && !menu.contains(&"users"), "menu filtered by permission: {menu:?}");
    // by phone, with +86 and dashes
    let r = s.gql(None, SIGN_IN, json!({"l": "+86 139-0000-0002", "p": PASSWORD})).await;
    assert!(r["data"]["signIn"]["accessToken"].is_string(), "{r}");
    // no token → UNAUTHENTICATED
    assert_eq!(code(&s.gql(None, ME, json!({})).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn wrong_password_and_unknown_account_look_the_same() {
    let s = TestServer::seeded().await;
    let a = s.gql(None, SIGN_IN, json!({"l": "tech1", "p": "Wrong1234"})).await;
    let b = s.gql(None, SIGN_IN, json!({"l": "nobody", "p": "Wrong1234"})).await;
    assert_eq!(code(&a), "UNAUTHENTICATED");
    assert_eq!(a["errors"][0]["message"], b["errors"][0]["message"]);
    assert_eq!(reason(&a), reason(&b));
    assert_eq!(a["errors"][0]["message"], "账号或密码错误");
}

#[tokio::test]
async fn captcha_after_three_failures_and_one_use_only() {
    let s = TestServer::seeded().await;
    for _ in 0..3 {
        s.gql(None, SIGN_IN, json!({"l": "cs1", "p": "Wrong1234"})).await;
    }
    let required = s.ok(None, "query($l: String!) { captchaRequired(login: $l) }", json!({"l": "cs1"})).await;
    assert_eq!(required["captchaRequired"], true);
    // right password, no captcha → refused, naming the field
    let r = s.gql(None, SIGN_IN, json!({"l": "cs1", "p": PASSWORD})).await;
    assert_eq!((code(&r), field(&r)), ("VALIDATION", "captcha"));
    assert_eq!(r["errors"][0]["extensions"]["details"]["captchaRequired"], true);
    // wrong answer burns the captcha
    let (id, answer) = new_captcha(&s).await;
    let wrong = if answer == "0000" { "1111" } else { "0000" };
    let r = s.gql(None, SIGN_IN, json!({"l": "cs1", "p": PASSWORD, "ci": id, "ca": wrong})).await;
    assert_eq!(field(&r), "captcha");
    let r = s.gql(None, SIGN_IN, json!({"l": "cs1", "p": PASSWORD, "ci": id, "ca": answer})).await;
    assert_eq!(field(&r), "captcha", "a captcha cannot be retried after a wrong answer: {r}");
    // a right answer works once, then is gone
    let (id, answer) = new_captcha(&s).await;
    let r = s.gql(None, SIGN_IN, json!({"l": "cs1", "p": PASSWORD, "ci": id, "ca": answer})).await;
    assert!(r["data"]["signIn"]["accessToken"].is_string(), "{r}");
    let r = s.gql(None, SIGN_IN, json!({"l": "finance1", "p": PASSWORD, "ci": id, "ca": answer})).await;
    assert!(r["errors"].is_null() || field(&r) == "captcha", "{r}");
    assert!(s.redis_get(&format!("captcha:{id}")).await.is_none(), "captcha reuse must be impossible");
}

#[tokio::test]
async fn lockout_after_five_failures() {
    let s = TestServer::seeded_with(|c| c.auth.captcha_after_failures = 100).await;
    for i in 0..5 {
        let r = s.gql(None, SIGN_IN, json!({"l": "guard1", "p": "Wrong1234"})).await;
        let expected = if i < 4 { "UNAUTHENTICATED" } else { "RATE_LIMITED" };
        assert_eq!(code(&r), expected, "attempt {i}: {r}");
    }
    // locked: even the right password is refused, with a retry-after
    let r = s.gql(None, SIGN_IN, json!({"l": "guard1", "p": PASSWORD})).await;
    assert_eq!((code(&r), reason(&r)), ("RATE_LIMITED", "ACCOUNT_LOCKED"));
    assert!(r["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap() > 800);
    // other accounts are not affected
    let r = s.gql(None, SIGN_IN, json!({"l": "tech2", "p": PASSWORD})).await;
    assert!(r["data"]["signIn"]["accessToken"].is_string());
    // an unknown account locks the same way (no existence oracle)
    for _ in 0..5 {
        s.gql(None, SIGN_IN, json!({"l": "ghost", "p": "Wrong1234"})).await;
    }
    assert_eq!(reason(&s.gql(None, SIGN_IN, json!({"l": "ghost", "p": "Wrong1234"})).await), "ACCOUNT_LOCKED");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let s = TestServer::seeded().await;
    let (_, r0) = s.sign_in_pair("tech1", PASSWORD).await;
    let d = s.ok(None, REFRESH, json!({"t": r0})).await;
    let r1 = d["refreshToken"]["refreshToken"].as_str().unwrap().to_owned();
    let a1 = d["refreshToken"]["accessToken"].as_str().unwrap().to_owned();
    assert_ne!(r0, r1);
    s.ok(Some(&a1), ME, json!({})).await;
    // replaying the rotated token: refused, and the whole family dies with it
    let replay = s.gql(None, REFRESH, json!({"t": r0})).await;
    assert_eq!(code(&replay), "UNAUTHENTICATED");
    let after = s.gql(None, REFRESH, json!({"t": r1})).await;
    assert_eq!(code(&after), "UNAUTHENTICATED", "the thief's and the owner's tokens are both revoked");
    // garbage
    assert_eq!(code(&s.gql(None, REFRESH, json!({"t": "garbage"})).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn sign_out_revokes_the_refresh_token() {
    let s = TestServer::seeded().await;
    let (_, refresh) = s.sign_in_pair("cs1", PASSWORD).await;
    s.ok(None, "mutation($t: String!) { signOut(input: {refreshToken: $t}) { ok } }", json!({"t": refresh})).await;
    assert_eq!(code(&s.gql(None, REFRESH, json!({"t": refresh})).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn access_token_expires_after_fifteen_minutes() {
    let s = TestServer::seeded().await;
    let token = s.sign_in("tech1").await;
    s.ok(Some(&token), ME, json!({})).await;
    s.clock.advance(15 * 60 + 1);
    let r = s.gql(Some(&token), ME, json!({})).await;
    assert_eq!((code(&r), reason(&r)), ("UNAUTHENTICATED", "TOKEN_EXPIRED"));
    // a forged token (signed with another secret) is refused
    let forged = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwMWEyMTk4ZC04ZGNjLTcxYTYtODA3NC05YmE5MDAxMmFlNzQiLCJjaWQiOiIwMWEyMTk4ZC04ZGIxLTc3MmItYmRlZi00Y2JhNWQ4OThlOGIiLCJrbmQiOiJzdGFmZiIsImlhdCI6MTc5NTcyNTA0MywiZXhwIjo0MDk1NzI1OTQzfQ.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(reason(&s.gql(Some(forged), ME, json!({})).await), "TOKEN_INVALID");
}

#[tokio::test]
async fn first_sign_in_must_change_the_initial_password() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    s.ok(
        Some(&admin),
        "mutation { createStaffUser(input: {username: \"tech9\", name: \"新师傅\", initialPassword: \"Init1234\"}) { user { id mustChangePassword } } }",
        json!({}),
    )
    .await;
    let r = s.gql(None, SIGN_IN, json!({"l": "tech9", "p": "Init1234"})).await;
    assert_eq!(r["data"]["signIn"]["mustChangePassword"], true);
    let token = r["data"]["signIn"]["accessToken"].as_str().unwrap().to_owned();
    let old_refresh = r["data"]["signIn"]["refreshToken"].as_str().unwrap().to_owned();
    // only the password change works until then (me stays readable, menu empty)
    let me = s.ok(Some(&token), "{ me { menu { code } } }", json!({})).await;
    assert_eq!(me["me"]["menu"], json!([]));
    let r = s.gql(Some(&token), "{ company { name } }", json!({})).await;
    assert_eq!((code(&r), reason(&r)), ("FORBIDDEN", "PASSWORD_CHANGE_REQUIRED"));
    // policy enforced, field named
    let weak = s
        .gql(
            Some(&token),
            "mutation { changePassword(input: {oldPassword: \"Init1234\", newPassword: \"short\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!((code(&weak), field(&weak)), ("VALIDATION", "newPassword"));
    let d = s
        .ok(Some(&token), "mutation { changePassword(input: {oldPassword: \"Init1234\", newPassword: \"Better2026\"}) { accessToken mustChangePassword } }", json!({}))
        .await;
    assert_eq!(d["changePassword"]["mustChangePassword"], false);
    let fresh = d["changePassword"]["accessToken"].as_str().unwrap();
    // a role granted, now the user can work
    let me = s.ok(Some(fresh), "{ me { user { mustChangePassword } } }", json!({})).await;
    assert_eq!(me["me"]["user"]["mustChangePassword"], false);
    // the password change revoked the earlier refresh token
    assert_eq!(code(&s.gql(None, REFRESH, json!({"t": old_refresh})).await), "UNAUTHENTICATED");
    s.sign_in_pair("tech9", "Better2026").await;
}

#[tokio::test]
async fn owner_activates_by_sms_code_and_sees_their_house() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let house =
        s.ok(Some(&admin), "{ houses(first: 1, status: VACANT) { edges { node { id roomNo } } } }", json!({})).await;
    let house_id = house["houses"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    s.ok(
        Some(&admin),
        "mutation($h: ID!) { registerOwner(input: {name: \"孙悟空\", phone: \"13700000001\", idCardNumber: \"11010519491231002X\", houses: [{houseId: $h, relation: OWNER}]}) { owner { id activated } } }",
        json!({"h": house_id}),
    )
    .await;
    // not active yet: password sign-in is impossible
    assert_eq!(code(&s.gql(None, SIGN_IN, json!({"l": "13700000001", "p": "Anything1"})).await), "UNAUTHENTICATED");
    s.ok(None, REQUEST_CODE, json!({"p": "13700000001", "k": "ACTIVATE"})).await;
    let sms_code = s.last_sms_code("13700000001").await.expect("a code was sent");
    let d = s
        .ok(
            None,
            "mutation($c: String!) { activateOwner(input: {phone: \"13700000001\", code: $c, password: \"Owner2026\"}) { accessToken user { isStaff status } } }",
            json!({"c": sms_code}),
        )
        .await;
    assert_eq!(d["activateOwner"]["user"]["status"], "ACTIVE");
    let token = d["activateOwner"]["accessToken"].as_str().unwrap();
    let mine = s.ok(Some(token), "{ myHouses { id residents { name phone relation } } }", json!({})).await;
    assert_eq!(mine["myHouses"][0]["id"], house_id);
    assert_eq!(mine["myHouses"][0]["residents"][0]["phone"], "13700000001", "their own phone is not masked");
    // the code was used up
    let again = s.gql(None, "mutation($c: String!) { activateOwner(input: {phone: \"13700000001\", code: $c, password: \"Owner2026\"}) { accessToken } }", json!({"c": sms_code})).await;
    assert_eq!(code(&again), "VALIDATION");
    // and the password now works
    s.sign_in_pair("13700000001", "Owner2026").await;
}

#[tokio::test]
async fn owner_signs_in_with_an_sms_code() {
    let s = TestServer::seeded().await;
    s.ok(None, REQUEST_CODE, json!({"p": "13800000005", "k": "SIGN_IN"})).await;
    let c = s.last_sms_code("13800000005").await.unwrap();
    let d = s.ok(None, "mutation($c: String!) { signInWithSmsCode(input: {phone: \"13800000005\", code: $c}) { accessToken user { isStaff } } }", json!({"c": c})).await;
    assert_eq!(d["signInWithSmsCode"]["user"]["isStaff"], false);
}

#[tokio::test]
async fn sms_code_brute_force_is_stopped_after_five_attempts() {
    let s = TestServer::seeded().await;
    s.ok(None, REQUEST_CODE, json!({"p": "13800000007", "k": "SIGN_IN"})).await;
    let right = s.last_sms_code("13800000007").await.unwrap();
    let wrong = if right == "000000" { "111111" } else { "000000" };
    let q = "mutation($c: String!) { signInWithSmsCode(input: {phone: \"13800000007\", code: $c}) { accessToken } }";
    for i in 0..5 {
        let r = s.gql(None, q, json!({"c": wrong})).await;
        assert_eq!((code(&r), field(&r)), ("VALIDATION", "code"), "attempt {i}");
    }
    let r = s.gql(None, q, json!({"c": right})).await;
    assert_eq!(
        (code(&r), reason(&r)),
        ("RATE_LIMITED", "CODE_ATTEMPTS"),
        "the sixth try fails even with the right code"
    );
    let r = s.gql(None, q, json!({"c": right})).await;
    assert_eq!(code(&r), "VALIDATION", "the code is gone");
}

#[tokio::test]
async fn sms_resend_flood_and_daily_limit() {
    let s = TestServer::seeded().await;
    s.ok(None, REQUEST_CODE, json!({"p": "13800000008", "k": "SIGN_IN"})).await;
    let r = s.gql(None, REQUEST_CODE, json!({"p": "13800000008", "k": "SIGN_IN"})).await;
    assert_eq!((code(&r), reason(&r)), ("RATE_LIMITED", "RESEND_TOO_SOON"));
    assert!(r["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap() <= 60);
    assert_eq!(s.wait_sms_count("13800000008", 1).await, 1);

    let s = TestServer::seeded_with(|c| {
        c.auth.otp_resend_secs = 0;
        c.auth.otp_hourly_per_ip = 1000;
    })
    .await;
    for _ in 0..10 {
        s.ok(None, REQUEST_CODE, json!({"p": "13800000009", "k": "SIGN_IN"})).await;
    }
    let r = s.gql(None, REQUEST_CODE, json!({"p": "13800000009", "k": "SIGN_IN"})).await;
    assert_eq!(reason(&r), "DAILY_LIMIT");
    assert_eq!(s.wait_sms_count("13800000009", 10).await, 10);
}

#[tokio::test]
async fn sms_per_ip_limit() {
    let s = TestServer::seeded_with(|c| c.auth.otp_hourly_per_ip = 3).await;
    for i in 1..=3 {
        s.ok(None, REQUEST_CODE, json!({"p": format!("1380000002{i}"), "k": "SIGN_IN"})).await;
    }
    let r = s.gql(None, REQUEST_CODE, json!({"p": "13800000030", "k": "SIGN_IN"})).await;
    assert_eq!(reason(&r), "IP_LIMIT");
}

#[tokio::test]
async fn unknown_phone_gets_the_same_answer_and_no_sms() {
    let s = TestServer::seeded().await;
    let known = s.ok(None, REQUEST_CODE, json!({"p": "13800000011", "k": "RESET_PASSWORD"})).await;
    let unknown = s.ok(None, REQUEST_CODE, json!({"p": "13600000000", "k": "RESET_PASSWORD"})).await;
    assert_eq!(known, unknown);
    assert_eq!(s.sms_count("13600000000").await, 0);
    let bad = s.gql(None, REQUEST_CODE, json!({"p": "12345", "k": "SIGN_IN"})).await;
    assert_eq!((code(&bad), field(&bad)), ("VALIDATION", "phone"));
    assert_eq!(bad["errors"][0]["message"], "请输入正确的11位手机号");
}

#[tokio::test]
async fn forgot_password_resets_and_ends_every_session() {
    let s = TestServer::seeded().await;
    let (_, refresh) = s.sign_in_pair("13800000012", PASSWORD).await;
    s.ok(None, REQUEST_CODE, json!({"p": "13800000012", "k": "RESET_PASSWORD"})).await;
    let c = s.last_sms_code("13800000012").await.unwrap();
    // a code for another purpose does not work here
    let r = s
        .gql(
            None,
            "mutation($c: String!) { signInWithSmsCode(input: {phone: \"13800000012\", code: $c}) { accessToken } }",
            json!({"c": c}),
        )
        .await;
    assert_eq!(code(&r), "VALIDATION");
    s.ok(None, "mutation($c: String!) { resetPassword(input: {phone: \"13800000012\", code: $c, newPassword: \"NewPass2026\"}) { ok } }", json!({"c": c})).await;
    assert_eq!(code(&s.gql(None, REFRESH, json!({"t": refresh})).await), "UNAUTHENTICATED");
    assert_eq!(code(&s.gql(None, SIGN_IN, json!({"l": "13800000012", "p": PASSWORD})).await), "UNAUTHENTICATED");
    s.sign_in_pair("13800000012", "NewPass2026").await;
}

#[tokio::test]
async fn disabled_user_is_signed_out_everywhere() {
    let s = TestServer::seeded().await;
    let admin = s.sign_in("admin").await;
    let (tech, refresh) = s.sign_in_pair("tech2", PASSWORD).await;
    let id =
        s.ok(Some(&tech), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].as_str().unwrap().to_owned();
    s.ok(
        Some(&admin),
        "mutation($u: ID!) { setUserStatus(input: {userId: $u, active: false}) { user { status } } }",
        json!({"u": id}),
    )
    .await;
    let r = s.gql(Some(&tech), ME, json!({})).await;
    assert_eq!((code(&r), reason(&r)), ("UNAUTHENTICATED", "ACCOUNT_DISABLED"));
    assert_eq!(code(&s.gql(None, REFRESH, json!({"t": refresh})).await), "UNAUTHENTICATED");
    let r = s.gql(None, SIGN_IN, json!({"l": "tech2", "p": PASSWORD})).await;
    assert_eq!(reason(&r), "ACCOUNT_DISABLED");
    // an admin cannot lock themselves out
    let me =
        s.ok(Some(&admin), "{ me { user { id } } }", json!({})).await["me"]["user"]["id"].as_str().unwrap().to_owned();
    let r = s
        .gql(
            Some(&admin),
            "mutation($u: ID!) { setUserStatus(input: {userId: $u, active: false}) { user { status } } }",
            json!({"u": me}),
        )
        .await;
    assert_eq!(field(&r), "userId");
}
