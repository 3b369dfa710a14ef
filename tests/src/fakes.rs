//! Local fakes of external services that speak the real protocol and check the real
//! signatures, so the real client code runs in tests.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

pub const FCM_PROJECT: &str = "wuye-test";
pub const FCM_CLIENT_EMAIL: &str = "fcm-sender@wuye-test.iam.gserviceaccount.com";
pub const FCM_KEY_ID: &str = "test-key-1";

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)).unwrap()
}

/// Fake FCM: the OAuth2 token endpoint (verifies the RS256 assertion with the service
/// account's public key) and `projects/{id}/messages:send` with the v1 error shapes.
/// Tokens starting `unregistered`, `badtoken`, `quota`, `unavailable` trigger the errors;
/// `quota` and `unavailable` fail only the first time.
pub struct FakeFcm {
    pub url: String,
    state: Arc<FcmState>,
}

struct FcmState {
    public_key: DecodingKey,
    token_uri: Mutex<String>,
    issued: Mutex<HashSet<String>>,
    token_requests: AtomicUsize,
    accepted: Mutex<Vec<Value>>,
    failed_once: Mutex<HashSet<String>>,
    counter: AtomicUsize,
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    assertion: String,
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    scope: String,
    aud: String,
    exp: i64,
    iat: i64,
}

fn fcm_error(status: StatusCode, code: &str, message: &str, fcm_code: Option<&str>) -> Response {
    let mut details = Vec::new();
    if let Some(c) = fcm_code {
        details.push(json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": c}));
    }
    (status, Json(json!({"error": {"code": status.as_u16(), "message": message, "status": code, "details": details}})))
        .into_response()
}

async fn token(State(s): State<Arc<FcmState>>, Form(f): Form<TokenForm>) -> Response {
    s.token_requests.fetch_add(1, Ordering::SeqCst);
    let bad = |why: &str| {
        (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant", "error_description": why}))).into_response()
    };
    if f.grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return bad("unsupported grant type");
    }
    let header = match jsonwebtoken::decode_header(&f.assertion) {
        Ok(h) => h,
        Err(_) => return bad("malformed assertion"),
    };
    if header.alg != Algorithm::RS256 || header.kid.as_deref() != Some(FCM_KEY_ID) {
        return bad("wrong key id or algorithm");
    }
    let aud = s.token_uri.lock().unwrap().clone();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[aud]);
    v.set_issuer(&[FCM_CLIENT_EMAIL]);
    let claims = match jsonwebtoken::decode::<AssertionClaims>(&f.assertion, &s.public_key, &v) {
        Ok(d) => d.claims,
        Err(_) => return bad("Invalid JWT Signature."),
    };
    if claims.scope != "https://www.googleapis.com/auth/firebase.messaging"
        || claims.exp - claims.iat > 3600
        || claims.aud.is_empty()
        || claims.iss.is_empty()
    {
        return bad("bad claims");
    }
    let t = format!("ya29.fake-{}", s.counter.fetch_add(1, Ordering::SeqCst));
    s.issued.lock().unwrap().insert(t.clone());
    Json(json!({"access_token": t, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

async fn send(
    State(s): State<Arc<FcmState>>,
    UrlPath(project): UrlPath<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !s.issued.lock().unwrap().contains(bearer) {
        return fcm_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
            None,
        );
    }
    if project != FCM_PROJECT {
        return fcm_error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", "wrong project", Some("SENDER_ID_MISMATCH"));
    }
    let m = &body["message"];
    let well_formed = m["token"].is_string()
        && m["notification"]["title"].is_string()
        && m["notification"]["body"].is_string()
        && matches!(m["android"]["priority"].as_str(), Some("HIGH" | "NORMAL"))
        && m["apns"]["headers"]["apns-priority"].is_string()
        && m["data"].as_object().is_none_or(|d| d.values().all(Value::is_string));
    if !well_formed {
        return fcm_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received.",
            Some("INVALID_ARGUMENT"),
        );
    }
    let token = m["token"].as_str().unwrap_or("").to_owned();
    if token.starts_with("unregistered") {
        return fcm_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Requested entity was not found.", Some("UNREGISTERED"));
    }
    if token.starts_with("badtoken") {
        return fcm_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            Some("INVALID_ARGUMENT"),
        );
    }
    let first_time = s.failed_once.lock().unwrap().insert(token.clone());
    if token.starts_with("quota") && first_time {
        let mut r =
            fcm_error(StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED", "Quota exceeded.", Some("QUOTA_EXCEEDED"));
        r.headers_mut().insert("retry-after", "30".parse().unwrap());
        return r;
    }
    if token.starts_with("unavailable") && first_time {
        return fcm_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The service is currently unavailable.",
            Some("UNAVAILABLE"),
        );
    }
    s.accepted.lock().unwrap().push(body.clone());
    let n = s.counter.fetch_add(1, Ordering::SeqCst);
    Json(json!({"name": format!("projects/{FCM_PROJECT}/messages/{n}")})).into_response()
}

impl FakeFcm {
    pub async fn start() -> FakeFcm {
        let state = Arc::new(FcmState {
            public_key: DecodingKey::from_rsa_pem(fixture("fcm-test-key.pub.pem").as_bytes()).unwrap(),
            token_uri: Mutex::new(String::new()),
            issued: Mutex::new(HashSet::new()),
            token_requests: AtomicUsize::new(0),
            accepted: Mutex::new(Vec::new()),
            failed_once: Mutex::new(HashSet::new()),
            counter: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/token", post(token))
            .route("/v1/projects/{project}/messages:send", post(send))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        *state.token_uri.lock().unwrap() = format!("{url}/token");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeFcm { url, state }
    }

    /// A service-account file signed with `key_fixture` (the right key or a wrong one).
    pub fn service_account(&self, dir: &Path, key_fixture: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("sa-{key_fixture}.json"));
        let sa = json!({
            "type": "service_account",
            "project_id": FCM_PROJECT,
            "private_key_id": FCM_KEY_ID,
            "private_key": fixture(key_fixture),
            "client_email": FCM_CLIENT_EMAIL,
            "token_uri": format!("{}/token", self.url),
        });
        std::fs::write(&path, sa.to_string()).unwrap();
        path
    }

    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Messages accepted, per device token.
    pub fn accepted(&self) -> HashMap<String, usize> {
        let mut map = HashMap::new();
        for m in self.state.accepted.lock().unwrap().iter() {
            *map.entry(m["message"]["token"].as_str().unwrap_or("").to_owned()).or_default() += 1;
        }
        map
    }

    pub fn accepted_messages(&self) -> Vec<Value> {
        self.state.accepted.lock().unwrap().clone()
    }

    /// Revokes every access token: the next send gets a plain 401.
    pub fn revoke_tokens(&self) {
        self.state.issued.lock().unwrap().clear();
    }
}

// ---- SMS gateways -------------------------------------------------------------------

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(b))
}

/// What a fake gateway accepted: (phone, template, parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct SentSms {
    pub phone: String,
    pub template: String,
    pub params: Value,
}

pub struct FakeSms {
    pub url: String,
    pub state: Arc<SmsState>,
}

pub struct SmsState {
    key_id: String,
    secret: String,
    pub sent: Mutex<Vec<SentSms>>,
    pub bad_signatures: AtomicUsize,
    nonces: Mutex<HashSet<String>>,
    /// answer 500 to everything (an outage)
    pub down: std::sync::atomic::AtomicBool,
}

impl FakeSms {
    async fn start(router: Router<Arc<SmsState>>, key_id: &str, secret: &str) -> FakeSms {
        let state = Arc::new(SmsState {
            key_id: key_id.into(),
            secret: secret.into(),
            sent: Mutex::new(Vec::new()),
            bad_signatures: AtomicUsize::new(0),
            nonces: Mutex::new(HashSet::new()),
            down: std::sync::atomic::AtomicBool::new(false),
        });
        let app = router.with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSms { url, state }
    }

    /// Aliyun dysmsapi `SendSms`, verifying the ACS3-HMAC-SHA256 signature.
    /// Numbers starting 170 are illegal; 13999999999 hits the business limit.
    pub async fn aliyun(key_id: &str, secret: &str) -> FakeSms {
        Self::start(Router::new().route("/", post(aliyun_send)), key_id, secret).await
    }

    /// Tencent Cloud `SendSms`, verifying TC3-HMAC-SHA256. Per-number results: +86170… is
    /// an incorrect number, +8613999999999 is over its daily limit.
    pub async fn tencent(key_id: &str, secret: &str) -> FakeSms {
        Self::start(Router::new().route("/", post(tencent_send)), key_id, secret).await
    }

    pub fn sent(&self) -> Vec<SentSms> {
        self.state.sent.lock().unwrap().clone()
    }

    pub fn bad_signatures(&self) -> usize {
        self.state.bad_signatures.load(Ordering::SeqCst)
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }
}

fn rfc3986(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 3 <= b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn aliyun_send(
    State(s): State<Arc<SmsState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if s.down.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"Code": "InternalError", "Message": "outage"})))
            .into_response();
    }
    let deny = |s: &SmsState, code: &str| {
        s.bad_signatures.fetch_add(1, Ordering::SeqCst);
        (StatusCode::BAD_REQUEST, Json(json!({"Code": code, "Message": "Specified signature does not match our calculation.", "RequestId": "fake"}))).into_response()
    };
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(rest) = auth.strip_prefix("ACS3-HMAC-SHA256 ") else { return deny(&s, "IncompleteSignature") };
    let mut parts: HashMap<&str, &str> = HashMap::new();
    for p in rest.split(',') {
        if let Some((k, v)) = p.trim().split_once('=') {
            parts.insert(k, v);
        }
    }
    if parts.get("Credential") != Some(&s.key_id.as_str()) {
        return deny(&s, "InvalidAccessKeyId.NotFound");
    }
    let signed = parts.get("SignedHeaders").copied().unwrap_or("");
    let must = ["host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"];
    if must.iter().any(|h| !signed.split(';').any(|x| x == *h)) {
        return deny(&s, "IncompleteSignature");
    }
    if headers.get("x-acs-content-sha256").and_then(|v| v.to_str().ok()) != Some(sha256_hex(&body).as_str()) {
        return deny(&s, "SignatureDoesNotMatch");
    }
    let nonce = headers.get("x-acs-signature-nonce").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if !s.nonces.lock().unwrap().insert(nonce) {
        return deny(&s, "SignatureNonceUsed");
    }
    let mut pairs: Vec<(String, String)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect();
    let params: HashMap<String, String> = pairs.iter().cloned().collect();
    pairs.sort();
    let query = pairs.iter().map(|(k, v)| format!("{}={}", rfc3986(k), rfc3986(v))).collect::<Vec<_>>().join("&");
    let mut names: Vec<&str> = signed.split(';').collect();
    names.sort();
    let canonical_headers: String = names
        .iter()
        .map(|n| format!("{n}:{}\n", headers.get(*n).and_then(|v| v.to_str().ok()).unwrap_or("").trim()))
        .collect();
    let canonical = format!("POST\n/\n{query}\n{canonical_headers}\n{}\n{}", names.join(";"), sha256_hex(&body));
    let expected = hex(&hmac256(
        s.secret.as_bytes(),
        format!("ACS3-HMAC-SHA256\n{}", sha256_hex(canonical.as_bytes())).as_bytes(),
    ));
    if parts.get("Signature") != Some(&expected.as_str()) {
        return deny(&s, "SignatureDoesNotMatch");
    }
    if headers.get("x-acs-action").and_then(|v| v.to_str().ok()) != Some("SendSms") {
        return (StatusCode::BAD_REQUEST, Json(json!({"Code": "InvalidAction"}))).into_response();
    }
    let phone = params.get("PhoneNumbers").cloned().unwrap_or_default();
    if phone.starts_with("170") {
        return Json(json!({"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号", "RequestId": "fake"}))
            .into_response();
    }
    if phone == "13999999999" {
        return Json(json!({"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发号码天级流控", "RequestId": "fake"}))
            .into_response();
    }
    let template_params: Value =
        serde_json::from_str(params.get("TemplateParam").map(String::as_str).unwrap_or("{}")).unwrap_or(Value::Null);
    s.sent.lock().unwrap().push(SentSms {
        phone,
        template: params.get("TemplateCode").cloned().unwrap_or_default(),
        params: template_params,
    });
    Json(json!({"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990"})).into_response()
}

async fn tencent_send(State(s): State<Arc<SmsState>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let err = |s: &SmsState, code: &str| {
        s.bad_signatures.fetch_add(1, Ordering::SeqCst);
        Json(json!({"Response": {"Error": {"Code": code, "Message": "The provided credentials could not be validated."}, "RequestId": "fake"}})).into_response()
    };
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let auth = h("authorization");
    let Some(rest) = auth.strip_prefix("TC3-HMAC-SHA256 ") else { return err(&s, "AuthFailure.InvalidAuthorization") };
    let mut parts: HashMap<&str, &str> = HashMap::new();
    for p in rest.split(", ") {
        if let Some((k, v)) = p.split_once('=') {
            parts.insert(k, v);
        }
    }
    let credential: Vec<&str> = parts.get("Credential").copied().unwrap_or("").split('/').collect();
    if credential.len() != 4 || credential[0] != s.key_id || credential[2] != "sms" || credential[3] != "tc3_request" {
        return err(&s, "AuthFailure.SecretIdNotFound");
    }
    let ts: i64 = h("x-tc-timestamp").parse().unwrap_or(0);
    let date = chrono_date(ts);
    if credential[1] != date || (ts - now_secs()).abs() > 300 {
        return err(&s, "AuthFailure.SignatureExpire");
    }
    if parts.get("SignedHeaders") != Some(&"content-type;host") {
        return err(&s, "AuthFailure.SignatureFailure");
    }
    let canonical = format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\ncontent-type;host\n{}",
        h("content-type"),
        h("host"),
        sha256_hex(&body)
    );
    let to_sign = format!("TC3-HMAC-SHA256\n{ts}\n{date}/sms/tc3_request\n{}", sha256_hex(canonical.as_bytes()));
    let k = hmac256(&hmac256(&hmac256(format!("TC3{}", s.secret).as_bytes(), date.as_bytes()), b"sms"), b"tc3_request");
    if parts.get("Signature") != Some(&hex(&hmac256(&k, to_sign.as_bytes())).as_str()) {
        return err(&s, "AuthFailure.SignatureFailure");
    }
    if h("x-tc-action") != "SendSms" || h("x-tc-version") != "2021-01-11" {
        return Json(json!({"Response": {"Error": {"Code": "InvalidAction", "Message": ""}, "RequestId": "fake"}}))
            .into_response();
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let phone = req["PhoneNumberSet"][0].as_str().unwrap_or("").to_owned();
    let status = if phone.starts_with("+86170") {
        json!({"SerialNo": "", "PhoneNumber": phone, "Fee": 0, "SessionContext": "", "Code": "InvalidParameterValue.IncorrectPhoneNumber", "Message": "incorrect number", "IsoCode": "CN"})
    } else if phone == "+8613999999999" {
        json!({"SerialNo": "", "PhoneNumber": phone, "Fee": 0, "SessionContext": "", "Code": "LimitExceeded.PhoneNumberDailyLimit", "Message": "daily limit", "IsoCode": "CN"})
    } else {
        s.sent.lock().unwrap().push(SentSms {
            phone: phone.trim_start_matches("+86").to_owned(),
            template: req["TemplateId"].as_str().unwrap_or("").to_owned(),
            params: req["TemplateParamSet"].clone(),
        });
        json!({"SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": phone, "Fee": 1, "SessionContext": "", "Code": "Ok", "Message": "send success", "IsoCode": "CN"})
    };
    Json(json!({"Response": {"SendStatusSet": [status], "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}}))
        .into_response()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// YYYY-MM-DD (UTC) of a unix time, computed without the server's helpers.
fn chrono_date(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

// ---- JPush ---------------------------------------------------------------------------

/// Fake JPush `POST /v3/push`: checks Basic auth and the payload; registration ids
/// starting `jp-gone` are unknown (1011), `jp-limit` are rate limited once (2002 + reset).
pub struct FakeJPush {
    pub url: String,
    state: Arc<JPushState>,
}

struct JPushState {
    auth: String,
    accepted: Mutex<Vec<Value>>,
    limited: Mutex<HashSet<String>>,
    auth_failures: AtomicUsize,
}

async fn jpush_send(State(s): State<Arc<JPushState>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let err = |status: StatusCode, code: i64, message: &str| {
        (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
    };
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(s.auth.as_str()) {
        s.auth_failures.fetch_add(1, Ordering::SeqCst);
        return err(StatusCode::UNAUTHORIZED, 1004, "Authen failed");
    }
    let id = body["audience"]["registration_id"][0].as_str().unwrap_or("").to_owned();
    let ok = body["platform"].is_array() && !id.is_empty() && body["notification"]["android"]["alert"].is_string();
    if !ok {
        return err(StatusCode::BAD_REQUEST, 1003, "Parameter value is invalid");
    }
    if id.starts_with("jp-gone") {
        return err(StatusCode::BAD_REQUEST, 1011, "cannot find user by this audience");
    }
    if id.starts_with("jp-limit") && s.limited.lock().unwrap().insert(id) {
        let mut r = err(StatusCode::TOO_MANY_REQUESTS, 2002, "Rate limit exceeded");
        r.headers_mut().insert("x-rate-limit-reset", "20".parse().unwrap());
        return r;
    }
    s.accepted.lock().unwrap().push(body);
    Json(json!({"sendno": "0", "msg_id": "54043195528458181"})).into_response()
}

impl FakeJPush {
    pub async fn start(app_key: &str, master_secret: &str) -> FakeJPush {
        use base64::Engine;
        let state = Arc::new(JPushState {
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{app_key}:{master_secret}"))
            ),
            accepted: Mutex::new(Vec::new()),
            limited: Mutex::new(HashSet::new()),
            auth_failures: AtomicUsize::new(0),
        });
        let app = Router::new().route("/v3/push", post(jpush_send)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeJPush { url, state }
    }

    /// Accepted pushes per registration id.
    pub fn accepted(&self) -> HashMap<String, usize> {
        let mut map = HashMap::new();
        for b in self.state.accepted.lock().unwrap().iter() {
            *map.entry(b["audience"]["registration_id"][0].as_str().unwrap_or("").to_owned()).or_default() += 1;
        }
        map
    }

    pub fn auth_failures(&self) -> usize {
        self.state.auth_failures.load(Ordering::SeqCst)
    }
}
