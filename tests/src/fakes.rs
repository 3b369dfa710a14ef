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
