//! The client an app holds: a session (signed in by password or SMS code, refreshed
//! before it expires, kept by the app's own secure storage through `TokenStore`), the
//! manifest's operations sent by hash, and the offline queue replayed in order.
//!
//! Every call blocks: the apps call it off their main thread.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::operations::{App, Operation, OperationKind};
use crate::queue::{ActionState, Queue, QueueError, QueuedAction};

/// Where the app keeps the session between launches (the Keychain on iOS, the Keystore-
/// backed encrypted preferences on Android). The SDK hands it an opaque JSON string.
#[uniffi::export(with_foreign)]
pub trait TokenStore: Send + Sync {
    /// the session saved last, if any
    fn load(&self) -> Option<String>;
    /// a new session (after signing in or a refresh), or `None` after signing out
    fn save(&self, session: Option<String>);
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct ClientConfig {
    /// `https://wuye.example.com` (the SDK posts to `/graphql`)
    pub base_url: String,
    pub app: App,
    /// the SQLite file of the offline queue (`:memory:` for none that survives)
    pub queue_path: String,
    /// seconds before a request is given up (the action stays queued)
    pub timeout_secs: u64,
    /// `zh` or `en`: the language of the server's messages
    pub language: String,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SdkError {
    /// no answer (no signal, server down, timeout): queued actions stay queued
    #[error("network: {message}")]
    Network { message: String },
    /// the server answered with an error: `code` is the stable code (VALIDATION, CONFLICT,
    /// FORBIDDEN, NOT_FOUND, RATE_LIMITED…), `field` the input it names
    #[error("{code}: {message}")]
    Graphql { code: String, reason: Option<String>, field: Option<String>, message: String },
    /// the session ended (signed out elsewhere, password changed, refresh token expired)
    #[error("signed out")]
    SignedOut,
    /// the call was wrong before it was sent (an operation of another app, an unknown variable)
    #[error("invalid: {message}")]
    Invalid { message: String },
    #[error("storage: {message}")]
    Storage { message: String },
}

impl From<QueueError> for SdkError {
    fn from(e: QueueError) -> Self {
        SdkError::Storage { message: e.to_string() }
    }
}

/// The signed-in session as the app sees it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SessionInfo {
    pub user_id: String,
    /// unix seconds
    pub access_expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    access_token: String,
    refresh_token: String,
    /// unix seconds
    expires_at: i64,
    user_id: String,
}

/// What a replay did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ReplayReport {
    /// the actions that got an answer, in order (applied or rejected)
    pub finished: Vec<QueuedAction>,
    /// actions still waiting
    pub remaining: u32,
    /// why the replay stopped early (no signal, the server busy), if it did
    pub stopped_by: Option<String>,
}

/// Refresh the access token when it has less than this left.
const REFRESH_AHEAD_SECS: i64 = 60;

/// An action answered with an error this many times (not refused outright) is given up.
const MAX_ATTEMPTS: u32 = 8;

#[derive(uniffi::Object)]
pub struct WuyeClient {
    config: ClientConfig,
    http: reqwest::blocking::Client,
    store: Arc<dyn TokenStore>,
    session: Mutex<Option<Session>>,
    queue: Queue,
    /// one replay at a time
    replaying: Mutex<()>,
    /// one refresh at a time: a refresh token is single use, and presenting a used one
    /// ends the whole session (the server takes it for a stolen token)
    refreshing: Mutex<()>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn invalid(message: impl Into<String>) -> SdkError {
    SdkError::Invalid { message: message.into() }
}

#[uniffi::export]
impl WuyeClient {
    #[uniffi::constructor]
    pub fn new(config: ClientConfig, store: Arc<dyn TokenStore>) -> Result<Arc<WuyeClient>, SdkError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(config.timeout_secs.clamp(1, 10)))
            .build()
            .map_err(|e| SdkError::Network { message: e.to_string() })?;
        let session = store.load().and_then(|s| serde_json::from_str::<Session>(&s).ok());
        let queue = Queue::open(&config.queue_path)?;
        Ok(Arc::new(WuyeClient {
            config,
            http,
            store,
            session: Mutex::new(session),
            queue,
            replaying: Mutex::new(()),
            refreshing: Mutex::new(()),
        }))
    }

    /// Password sign-in; the session is saved through the `TokenStore`.
    pub fn sign_in(&self, login: String, password: String) -> Result<SessionInfo, SdkError> {
        let vars = json!({ "login": login, "password": password, "client": self.config.app.graphql() });
        let data = self.send(Operation::SignIn, &vars, None)?;
        self.keep(&data["signIn"])
    }

    /// Sign-in with a code sent by SMS (`request_sms_code` first).
    pub fn sign_in_with_sms_code(&self, phone: String, code: String) -> Result<SessionInfo, SdkError> {
        let vars = json!({ "phone": phone, "code": code, "client": self.config.app.graphql() });
        let data = self.send(Operation::SignInWithSmsCode, &vars, None)?;
        self.keep(&data["signInWithSmsCode"])
    }

    /// Asks for an SMS code; `purpose` is the GraphQL `SmsCodePurpose` (SIGN_IN, ACTIVATE,
    /// RESET_PASSWORD). Returns the seconds before another may be asked for.
    pub fn request_sms_code(&self, phone: String, purpose: String) -> Result<u64, SdkError> {
        let data = self.send(Operation::RequestSmsCode, &json!({ "phone": phone, "purpose": purpose }), None)?;
        Ok(data["requestSmsCode"]["resendAfterSecs"].as_u64().unwrap_or(60))
    }

    /// Ends the session here and on the server (the queue is kept for the next sign-in).
    pub fn sign_out(&self) -> Result<(), SdkError> {
        let refresh = self.current().map(|s| s.refresh_token);
        if let Some(token) = refresh {
            // signed out locally whatever the server says: the token is useless offline anyway
            let _ = self.send(Operation::SignOut, &json!({ "refreshToken": token }), None);
        }
        self.forget();
        Ok(())
    }

    pub fn session(&self) -> Option<SessionInfo> {
        self.current().map(|s| SessionInfo { user_id: s.user_id, access_expires_at: s.expires_at })
    }

    /// Runs an operation of this app's manifest now (by hash) and returns its `data` as JSON.
    pub fn execute(&self, operation: Operation, variables_json: String) -> Result<String, SdkError> {
        self.allowed(operation)?;
        if operation.kind() == OperationKind::Subscription {
            return Err(invalid("subscriptions run over the WebSocket"));
        }
        let vars = self.variables(operation, &variables_json)?;
        let data = self.authed(operation, &Value::Object(vars))?;
        Ok(data.to_string())
    }

    /// Queues an action to be sent when the server answers: a mutation of this app's
    /// manifest that takes a clientMutationId. The id is fixed now (a resend applies once),
    /// and an operation with a `$at: DateTime` variable gets the time the person acted.
    pub fn enqueue(&self, operation: Operation, variables_json: String) -> Result<QueuedAction, SdkError> {
        self.allowed(operation)?;
        if !operation.queueable() {
            return Err(invalid(format!(
                "{} cannot be queued (not a mutation with a clientMutationId)",
                operation.name()
            )));
        }
        let mut vars = self.variables(operation, &variables_json)?;
        let id = match vars.get("clientMutationId").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => uuid::Uuid::now_v7().to_string(),
        };
        vars.insert("clientMutationId".into(), Value::String(id.clone()));
        let user = self.current().ok_or(SdkError::SignedOut)?.user_id;
        let queued_at = rfc3339_now();
        if operation.variable("at") == Some("DateTime") && vars.get("at").is_none_or(Value::is_null) {
            vars.insert("at".into(), Value::String(queued_at.clone()));
        }
        Ok(self.queue.push(&user, operation, &Value::Object(vars).to_string(), &id, &queued_at)?)
    }

    /// Sends the queued actions in order. An action the server applied (or had applied:
    /// its clientMutationId answers the first result) is done; one it refuses (CONFLICT,
    /// VALIDATION, FORBIDDEN, NOT_FOUND) is reported and not sent again; no answer, or
    /// a busy server, stops the replay with the rest still queued.
    pub fn replay(&self) -> Result<ReplayReport, SdkError> {
        let _one = self.replaying.lock().map_err(|_| SdkError::Storage { message: "replay lock".into() })?;
        // only the signed-in person's actions: another person on the same phone sends theirs
        let user = self.current().ok_or(SdkError::SignedOut)?.user_id;
        let mut finished = Vec::new();
        let mut stopped_by = None;
        while let Some(action) = self.queue.next_pending(&user)? {
            let Some(op) = Operation::ALL.iter().copied().find(|o| o.name() == action.operation) else {
                let done = self.queue.finish(
                    action.seq,
                    ActionState::Rejected,
                    None,
                    Some(("UNKNOWN_OPERATION", "this SDK no longer knows the operation")),
                    &rfc3339_now(),
                )?;
                finished.push(done);
                continue;
            };
            let vars: Value = serde_json::from_str(&action.variables).unwrap_or(Value::Null);
            self.queue.attempted(action.seq)?;
            match self.authed(op, &vars) {
                Ok(data) => {
                    let done = self.queue.finish(
                        action.seq,
                        ActionState::Applied,
                        Some(&data.to_string()),
                        None,
                        &rfc3339_now(),
                    )?;
                    finished.push(done);
                }
                // refused for good (an action tried MAX_ATTEMPTS times with answers but never
                // applied is given up too, so one bad action cannot hold the queue forever)
                Err(SdkError::Graphql { code, message, .. })
                    if matches!(code.as_str(), "CONFLICT" | "VALIDATION" | "FORBIDDEN" | "NOT_FOUND" | "GRAPHQL")
                        || (action.attempts + 1 >= MAX_ATTEMPTS && !code.starts_with("PERSISTED_QUERY")) =>
                {
                    let done = self.queue.finish(
                        action.seq,
                        ActionState::Rejected,
                        None,
                        Some((&code, &message)),
                        &rfc3339_now(),
                    )?;
                    finished.push(done);
                }
                Err(SdkError::SignedOut) => return Err(SdkError::SignedOut),
                Err(e) => {
                    stopped_by = Some(e.to_string());
                    break;
                }
            }
        }
        let remaining = self.queue.list(&user, Some(ActionState::Pending))?.len() as u32;
        Ok(ReplayReport { finished, remaining, stopped_by })
    }

    /// The signed-in person's queue, oldest first: `state` to filter.
    pub fn queued(&self, state: Option<ActionState>) -> Result<Vec<QueuedAction>, SdkError> {
        let user = self.current().ok_or(SdkError::SignedOut)?.user_id;
        Ok(self.queue.list(&user, state)?)
    }

    /// Forgets finished actions older than `before` (RFC 3339, any offset).
    pub fn prune_queue(&self, before: String) -> Result<u64, SdkError> {
        let before = chrono::DateTime::parse_from_rfc3339(&before)
            .map_err(|e| invalid(format!("before is not an RFC 3339 time: {e}")))?;
        Ok(self.queue.prune(before.to_utc())?)
    }

    /// Changes the password; the server ends the other sessions and this one continues
    /// with the new tokens (saved through the `TokenStore`).
    pub fn change_password(&self, old_password: String, new_password: String) -> Result<SessionInfo, SdkError> {
        let vars = json!({ "old": old_password, "new": new_password });
        let data = self.authed(Operation::ChangePassword, &vars)?;
        self.keep(&data["changePassword"])
    }

    /// Starts a subscription of this app's manifest on its own thread: events go to
    /// `listener`; a dropped connection is made again (with a fresh token) and the
    /// subscription sent again. `cancel` on the result ends it.
    pub fn subscribe(
        self: Arc<Self>,
        operation: Operation,
        variables_json: String,
        listener: Arc<dyn crate::subscribe::SubscriptionListener>,
    ) -> Result<Arc<crate::subscribe::Subscription>, SdkError> {
        self.allowed(operation)?;
        let vars = self.variables(operation, &variables_json)?;
        crate::subscribe::start(self, operation, Value::Object(vars), listener)
    }

    /// Tests and support tools: sends a finished action again, as if its answer had been
    /// lost (the server answers it without applying it twice).
    pub fn requeue(&self, seq: i64) -> Result<(), SdkError> {
        Ok(self.queue.reopen(seq)?)
    }
}

impl WuyeClient {
    /// An access token good for a while yet (refreshed first if it is about to expire).
    pub(crate) fn fresh_token(&self) -> Result<String, SdkError> {
        let Some(mut s) = self.current() else { return Err(SdkError::SignedOut) };
        if s.expires_at - now() < REFRESH_AHEAD_SECS {
            s = self.refresh(&s)?;
        }
        Ok(s.access_token)
    }

    /// `ws(s)://host/graphql/ws` of the base URL.
    pub(crate) fn ws_url(&self) -> String {
        let base = self.config.base_url.trim_end_matches('/');
        let base = match base.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some((_, rest)) => format!("ws://{rest}"),
            None => format!("ws://{base}"),
        };
        format!("{base}/graphql/ws")
    }

    fn current(&self) -> Option<Session> {
        self.session.lock().ok().and_then(|s| s.clone())
    }

    fn forget(&self) {
        if let Ok(mut s) = self.session.lock() {
            *s = None;
        }
        self.store.save(None);
    }

    fn keep(&self, payload: &Value) -> Result<SessionInfo, SdkError> {
        let s = Session {
            access_token: payload["accessToken"].as_str().unwrap_or_default().to_owned(),
            refresh_token: payload["refreshToken"].as_str().unwrap_or_default().to_owned(),
            expires_at: now() + payload["expiresIn"].as_i64().unwrap_or(0),
            user_id: payload["user"]["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| self.current().map(|c| c.user_id).unwrap_or_default()),
        };
        if s.access_token.is_empty() || s.refresh_token.is_empty() {
            return Err(SdkError::Network { message: "the server's answer had no tokens".into() });
        }
        self.store.save(serde_json::to_string(&s).ok());
        let info = SessionInfo { user_id: s.user_id.clone(), access_expires_at: s.expires_at };
        if let Ok(mut cur) = self.session.lock() {
            *cur = Some(s);
        }
        Ok(info)
    }

    fn allowed(&self, op: Operation) -> Result<(), SdkError> {
        if op.belongs_to(self.config.app) {
            Ok(())
        } else {
            Err(invalid(format!("{} is not an operation of the {} app", op.name(), self.config.app.code())))
        }
    }

    /// The variables as a JSON object, each one declared by the operation.
    fn variables(&self, op: Operation, json: &str) -> Result<Map<String, Value>, SdkError> {
        let v: Value = if json.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(json).map_err(|e| invalid(format!("variables are not JSON: {e}")))?
        };
        let Value::Object(map) = v else { return Err(invalid("variables must be a JSON object")) };
        if let Some(unknown) = map.keys().find(|k| op.variable(k).is_none()) {
            return Err(invalid(format!("{} has no variable ${unknown}", op.name())));
        }
        for (name, ty) in op.variables() {
            if ty.ends_with('!') && !map.contains_key(*name) && !op.body().contains(&format!("${name}: {ty} =")) {
                return Err(invalid(format!("{} needs ${name}: {ty}", op.name())));
            }
        }
        Ok(map)
    }

    /// With the session: refreshed ahead of expiry, and once more if the server says expired.
    fn authed(&self, op: Operation, vars: &Value) -> Result<Value, SdkError> {
        let Some(mut s) = self.current() else { return Err(SdkError::SignedOut) };
        if s.expires_at - now() < REFRESH_AHEAD_SECS {
            s = self.refresh(&s)?;
        }
        match self.send(op, vars, Some(&s.access_token)) {
            Err(SdkError::Graphql { code, reason, .. })
                if code == "UNAUTHENTICATED" && reason.as_deref() == Some("TOKEN_EXPIRED") =>
            {
                let s = self.refresh(&s)?;
                self.send(op, vars, Some(&s.access_token))
            }
            Err(SdkError::Graphql { code, .. }) if code == "UNAUTHENTICATED" => {
                self.forget();
                Err(SdkError::SignedOut)
            }
            other => other,
        }
    }

    fn refresh(&self, s: &Session) -> Result<Session, SdkError> {
        let _one = self.refreshing.lock().map_err(|_| SdkError::Storage { message: "refresh lock".into() })?;
        // another thread refreshed while this one waited: use its session
        match self.current() {
            Some(cur) if cur.refresh_token != s.refresh_token => return Ok(cur),
            None => return Err(SdkError::SignedOut),
            Some(_) => {}
        }
        // another client on the same store (an app extension sharing the Keychain) did
        if let Some(stored) = self.store.load().and_then(|j| serde_json::from_str::<Session>(&j).ok())
            && stored.refresh_token != s.refresh_token
            && stored.user_id == s.user_id
        {
            if let Ok(mut cur) = self.session.lock() {
                *cur = Some(stored.clone());
            }
            return Ok(stored);
        }
        match self.send(Operation::RefreshToken, &json!({ "refreshToken": s.refresh_token }), None) {
            Ok(data) => {
                self.keep(&data["refreshToken"])?;
                self.current().ok_or(SdkError::SignedOut)
            }
            Err(SdkError::Graphql { code, .. }) if code == "UNAUTHENTICATED" => {
                self.forget();
                Err(SdkError::SignedOut)
            }
            Err(e) => Err(e),
        }
    }

    /// One request: the operation by hash, never its text.
    fn send(&self, op: Operation, vars: &Value, token: Option<&str>) -> Result<Value, SdkError> {
        let body = json!({
            "operationName": op.name(),
            "variables": vars,
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash": op.id() } },
        });
        let url = format!("{}/graphql", self.config.base_url.trim_end_matches('/'));
        let mut req = self.http.post(url).header("accept-language", self.config.language.as_str()).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().map_err(|e| SdkError::Network { message: e.to_string() })?;
        let status = resp.status();
        let answer: Value = resp.json().map_err(|e| SdkError::Network { message: format!("HTTP {status}: {e}") })?;
        if let Some(first) = answer["errors"].as_array().and_then(|e| e.first()) {
            let ext = &first["extensions"];
            // the server does not know this operation (an older server during an upgrade)
            // or refuses it for this app: not the action's fault, it stays queued
            let code = match (ext["code"].as_str(), ext["entity"].as_str(), ext["reason"].as_str()) {
                (Some("NOT_FOUND"), Some("persistedQuery"), _) => "PERSISTED_QUERY_NOT_FOUND",
                (Some("FORBIDDEN"), _, Some("PERSISTED_QUERY_ONLY")) => "PERSISTED_QUERY_ONLY",
                (Some(c), _, _) => c,
                // a document the schema rejects has no code
                (None, _, _) => "GRAPHQL",
            };
            return Err(SdkError::Graphql {
                code: code.to_owned(),
                reason: ext["reason"].as_str().map(str::to_owned),
                field: ext["field"].as_str().map(str::to_owned),
                message: first["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        if !status.is_success() {
            return Err(SdkError::Network { message: format!("HTTP {status}") });
        }
        Ok(answer["data"].clone())
    }
}
