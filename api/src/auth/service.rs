//! Sign-in rules: passwords (argon2id), captcha after failures, lockout, SMS codes with
//! send and verify limits, access + rotating refresh tokens. No answer tells whether an
//! account exists. Limits are keyed on what the login means (a normalised phone or a
//! lower-cased username), never on the string typed.

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, Header};
use rand::Rng;
use redis::AsyncCommands;
use uuid::Uuid;

use super::model::{Claims, CodePurpose, CodeSent, Credentials, TokenPair};
use super::repo;
use crate::kit::audit;
use crate::kit::crypto::{random_token, sha256};
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::gql::ClientApp;
use crate::kit::idempotency::Retry;
use crate::kit::redis::{count_in_window, mget, slot_key};
use crate::kit::state::AppState;
use crate::kit::types::{NewPassword, Phone};
use crate::notify::sms::{SmsError, SmsKind, SmsMessage};
use crate::rbac::model::{AccountStatus, Actor};
use crate::rbac::service::{self as rbac, EVENT_SESSION_REVOKED, account_changed, first_valid_second};

async fn verify_password(state: &AppState, password: &str, hash: Option<String>) -> AppResult<bool> {
    let keys = state.keys.clone();
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || keys.verify_password(&password, hash.as_deref()))
        .await
        .map_err(AppError::internal)
}

// ---- tokens ------------------------------------------------------------------------

fn invalid_token() -> AppError {
    AppError::Unauthenticated {
        reason: "TOKEN_INVALID",
        msg: Msg::new("登录已失效，请重新登录", "Your session is no longer valid; sign in again"),
    }
}

pub fn verify_access_token(state: &AppState, token: &str) -> AppResult<Claims> {
    // expiry is checked against our clock below, so tests can move time
    let data = jsonwebtoken::decode::<Claims>(token, &state.keys.jwt_decoding, &state.keys.jwt_validation)
        .map_err(|_| invalid_token())?;
    if data.claims.exp <= state.clock.now().timestamp() {
        return Err(AppError::Unauthenticated {
            reason: "TOKEN_EXPIRED",
            msg: Msg::new("登录已过期，请刷新令牌", "Access token expired; refresh it"),
        });
    }
    Ok(data.claims)
}

/// A new access token and refresh token (in `family`, or a new family) for `user`.
/// `not_before`: sessions ended at this instant (a token must be issued after it).
async fn issue_tokens(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    user: &Credentials,
    family: Option<Uuid>,
    not_before: Option<DateTime<Utc>>,
    app: ClientApp,
) -> AppResult<TokenPair> {
    let now = state.clock.now();
    let a = &state.config.auth;
    let ttl = a.access_token_ttl_secs;
    let iat = now.timestamp().max(first_valid_second(user.tokens_valid_after)).max(first_valid_second(not_before));
    let claims = Claims {
        iss: a.jwt_issuer.clone(),
        aud: a.jwt_audience.clone(),
        sub: user.id,
        cid: user.company_id,
        iat,
        exp: iat + ttl as i64,
        app: Some(app),
    };
    let access_token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &state.keys.jwt_encoding)
        .map_err(AppError::internal)?;
    let refresh_token = random_token();
    let expires = now + TimeDelta::days(a.refresh_token_ttl_days as i64);
    let family = family.unwrap_or_else(Uuid::now_v7);
    repo::insert_refresh(tx, user.id, family, &sha256(&refresh_token), now, expires, app).await?;
    repo::touch_sign_in(tx, user.id, now).await?;
    Ok(TokenPair {
        user_id: user.id,
        access_token,
        refresh_token,
        expires_in: ttl,
        must_change_password: user.must_change_password,
    })
}

/// The app a new session is for: what the client asked for, if the account may use it.
/// Owners use the owner app; staff use the staff app or, when asked, the playground; a
/// member of staff who also owns a flat may use the owner app too.
fn app_for(user: &Credentials, wanted: Option<ClientApp>) -> AppResult<ClientApp> {
    match (wanted, user.is_staff) {
        (None, true) => Ok(ClientApp::Staff),
        (None, false) => Ok(ClientApp::Owner),
        (Some(app @ ClientApp::Owner), false) | (Some(app @ (ClientApp::Staff | ClientApp::Playground)), true) => {
            Ok(app)
        }
        (Some(ClientApp::Owner), true) if user.is_owner => Ok(ClientApp::Owner),
        (Some(ClientApp::Owner), true) => Err(AppError::validation(
            "client",
            Msg::new("员工账号请使用员工App登录", "Staff accounts sign in with the staff app"),
        )),
        (Some(_), false) => Err(AppError::validation(
            "client",
            Msg::new("业主账号请使用业主App登录", "Owner accounts sign in with the owner app"),
        )),
    }
}

async fn start_session(state: &AppState, user: &Credentials, wanted: Option<ClientApp>) -> AppResult<TokenPair> {
    let app = app_for(user, wanted)?;
    let mut tx = state.db.begin().await?;
    let pair = issue_tokens(state, &mut tx, user, None, None, app).await?;
    tx.commit().await?;
    Ok(pair)
}

/// Rotates a refresh token. Presenting one that was already rotated means it was stolen
/// (or replayed): the whole family is revoked and both holders must sign in again.
pub async fn refresh(state: &AppState, token: &str) -> AppResult<TokenPair> {
    let hash = sha256(token.trim());
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let Some(row) = repo::refresh_for_update(&mut tx, &hash).await? else {
        return Err(invalid_token());
    };
    if row.used || row.revoked {
        if row.used && !row.revoked {
            repo::revoke_family(&mut tx, row.family_id, now).await?;
            tx.commit().await?;
            tracing::warn!(user = %row.user_id, "refresh token reuse: family revoked");
        }
        return Err(invalid_token());
    }
    if row.expires_at <= now {
        return Err(invalid_token());
    }
    let user = repo::credentials_for_refresh(&mut tx, row.user_id).await?.ok_or_else(invalid_token)?;
    if user.status != AccountStatus::Active || user.sessions_valid_after.is_some_and(|t| row.created_at < t) {
        return Err(invalid_token());
    }
    repo::mark_used(&mut tx, &hash, now).await?;
    let app = match row.app {
        Some(app) => app,
        None => app_for(&user, None)?,
    };
    let pair = issue_tokens(state, &mut tx, &user, Some(row.family_id), None, app).await?;
    tx.commit().await?;
    Ok(pair)
}

/// Ends the session the refresh token belongs to and voids the user's access tokens
/// (other phones refresh theirs); returns the user.
pub async fn sign_out(state: &AppState, token: &str) -> AppResult<Option<Uuid>> {
    let mut tx = state.db.begin().await?;
    let row = repo::refresh_for_update(&mut tx, &sha256(token.trim())).await?;
    if let Some(row) = &row {
        repo::revoke_family(&mut tx, row.family_id, state.clock.now()).await?;
        rbac::end_sessions(state, &mut tx, row.user_id, false).await?;
    }
    tx.commit().await?;
    if let Some(row) = &row {
        account_changed(state, row.user_id, EVENT_SESSION_REVOKED).await;
    }
    Ok(row.map(|r| r.user_id))
}

/// Ends every session of a user: refresh tokens revoked, access tokens void. Returns the
/// instant tokens are valid after.
async fn end_all_sessions(state: &AppState, tx: &mut sqlx::PgConnection, user_id: Uuid) -> AppResult<DateTime<Utc>> {
    // the user row first (locked): a refresh under way commits before, and is revoked here
    let at = rbac::end_sessions(state, tx, user_id, true).await?;
    repo::revoke_user(tx, user_id, state.clock.now()).await?;
    Ok(at)
}

// ---- password sign-in --------------------------------------------------------------

fn invalid_credentials() -> AppError {
    AppError::Unauthenticated {
        reason: "INVALID_CREDENTIALS",
        msg: Msg::new("账号或密码错误", "Wrong account or password"),
    }
}

pub struct SignIn<'a> {
    pub login: &'a str,
    pub password: &'a str,
    pub company_id: Option<Uuid>,
    pub captcha_id: Option<&'a str>,
    pub captcha_answer: Option<&'a str>,
    pub ip: &'a str,
    /// the app the session is for (by default the account's own)
    pub client: Option<ClientApp>,
}

/// What a typed login means: a mainland phone however written (+86, spaces, dashes)
/// becomes its 11 digits; anything else is a lower-cased username.
pub fn login_identity(login: &str) -> String {
    let t = login.trim();
    match Phone::parse("login", t) {
        Ok(p) => p.as_str().to_owned(),
        Err(_) => t.to_lowercase(),
    }
}

/// Is a captcha needed before the next sign-in attempt for this login from this IP?
pub async fn captcha_required(state: &AppState, login: &str, ip: &str) -> AppResult<bool> {
    let a = &state.config.auth;
    if a.captcha_always {
        return Ok(true);
    }
    let ident = login_identity(login);
    // two unrelated keys (two slots on a cluster)
    let counts = mget(&state.redis, &[fail_key(state, &ident), ipfail_key(state, ip)]).await?;
    Ok(counts.iter().any(|n| n.as_deref().and_then(|n| n.parse::<u32>().ok()).unwrap_or(0) >= a.captcha_after_failures))
}

pub async fn new_captcha(state: &AppState) -> AppResult<(String, String)> {
    let (answer, png) = super::captcha::generate().map_err(AppError::internal)?;
    let id = Uuid::now_v7().to_string();
    let mut conn = state.redis.clone();
    let _: () = conn.set_ex(state.redis_key(&["captcha", &id]), answer, state.config.auth.captcha_ttl_secs).await?;
    Ok((id, png))
}

/// One use: the answer is deleted whether it was right or wrong.
async fn check_captcha(state: &AppState, id: Option<&str>, answer: Option<&str>) -> AppResult<()> {
    let (Some(id), Some(answer)) = (id, answer) else {
        return Err(AppError::Validation {
            field: "captcha".into(),
            msg: Msg::new("请输入图形验证码", "Enter the captcha"),
            details: Some(serde_json::json!({ "captchaRequired": true })),
        });
    };
    let mut conn = state.redis.clone();
    let stored: Option<String> = conn.get_del(state.redis_key(&["captcha", id.trim()])).await?;
    match stored {
        Some(s) if s.eq_ignore_ascii_case(answer.trim()) => Ok(()),
        _ => Err(AppError::Validation {
            field: "captcha".into(),
            msg: Msg::new("图形验证码错误或已过期", "Wrong or expired captcha"),
            details: Some(serde_json::json!({ "captchaRequired": true })),
        }),
    }
}

fn locked(retry_after: u64) -> AppError {
    AppError::RateLimited {
        reason: "ACCOUNT_LOCKED",
        msg: Msg::owned(
            format!("密码错误次数过多，账号已锁定，请{}分钟后再试", retry_after.div_ceil(60)),
            format!("Too many failed attempts; try again in {} minutes", retry_after.div_ceil(60)),
        ),
        retry_after_secs: Some(retry_after),
    }
}

/// A login's failed attempts in the window. It shares its slot with the login's lock
/// (`lock_key`): locking sets one and clears the other in one pipeline.
fn fail_key(state: &AppState, ident: &str) -> String {
    slot_key(&state.config.redis_prefix, &["signin", "fail"], ident)
}

fn lock_key(state: &AppState, ident: &str) -> String {
    slot_key(&state.config.redis_prefix, &["signin", "lock"], ident)
}

/// An IP's failed attempts in the window (any login).
fn ipfail_key(state: &AppState, ip: &str) -> String {
    state.redis_key(&["signin", "ipfail", ip])
}

/// Counts an attempt for the login and the IP before the password is checked, so parallel
/// requests cannot all slip under the limit; returns the login's count in the window.
async fn reserve_attempt(state: &AppState, ident: &str, ip: &str) -> AppResult<u32> {
    let window = state.config.auth.lockout_window_secs as i64;
    let (fail, ipfail) = (fail_key(state, ident), ipfail_key(state, ip));
    let (mut a, mut b) = (state.redis.clone(), state.redis.clone());
    let (n, _) = tokio::try_join!(count_in_window(&mut a, &fail, window), count_in_window(&mut b, &ipfail, window))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// After a failed attempt numbered `n`: at the limit the login is locked.
async fn failed(state: &AppState, ident: &str, n: u32) -> AppResult<AppError> {
    let a = &state.config.auth;
    if n >= a.lockout_failures {
        let mut conn = state.redis.clone();
        let _: () = redis::pipe()
            .set_ex(lock_key(state, ident), 1, a.lockout_secs)
            .del(fail_key(state, ident))
            .query_async(&mut conn)
            .await?;
        return Ok(locked(a.lockout_secs));
    }
    Ok(invalid_credentials())
}

/// After a successful attempt: the login's own attempt is given back. Earlier failures are
/// forgotten only when the login means one account — else a sign-in to an account the
/// attacker owns (the same phone at another company) would reset the count against the
/// victim's.
async fn succeeded(state: &AppState, ident: &str, ip: &str, sole_account: bool) -> AppResult<()> {
    let (mut a, mut b) = (state.redis.clone(), state.redis.clone());
    let login = async {
        if sole_account {
            a.del::<_, ()>(fail_key(state, ident)).await
        } else {
            a.decr::<_, _, ()>(fail_key(state, ident), 1).await
        }
    };
    tokio::try_join!(login, b.decr::<_, _, ()>(ipfail_key(state, ip), 1))?;
    Ok(())
}

/// Refuses while the login is locked.
async fn check_lock(state: &AppState, ident: &str) -> AppResult<()> {
    let mut conn = state.redis.clone();
    let ttl: i64 = conn.ttl(lock_key(state, ident)).await?;
    if ttl > 0 { Err(locked(ttl as u64)) } else { Ok(()) }
}

pub async fn sign_in(state: &AppState, input: SignIn<'_>) -> AppResult<TokenPair> {
    let ident = login_identity(input.login);
    if ident.is_empty() || ident.len() > 64 {
        return Err(AppError::validation(
            "login",
            Msg::new("请输入用户名或手机号", "Enter a username or phone number"),
        ));
    }
    if input.password.is_empty() || input.password.len() > 128 {
        return Err(AppError::validation("password", Msg::new("请输入密码", "Enter a password")));
    }
    check_lock(state, &ident).await?;
    if captcha_required(state, &ident, input.ip).await? {
        check_captcha(state, input.captcha_id, input.captcha_answer).await?;
    }
    let attempt = reserve_attempt(state, &ident, input.ip).await?;
    if attempt > state.config.auth.lockout_failures {
        return Err(failed(state, &ident, attempt).await?);
    }
    let candidates = repo::credentials_by_login(&state.db, &ident, input.company_id).await?;
    let sole_account = candidates.len() == 1;
    // the same phone may have an account in more than one company: the password says which
    let mut found = None;
    if candidates.is_empty() {
        verify_password(state, input.password, None).await?;
    }
    for c in candidates {
        if verify_password(state, input.password, c.password_hash.clone()).await? {
            found = Some(c);
            break;
        }
    }
    let Some(user) = found else {
        return Err(failed(state, &ident, attempt).await?);
    };
    if user.status != AccountStatus::Active {
        return Err(AppError::Forbidden {
            reason: "ACCOUNT_DISABLED",
            msg: Msg::new("账号已停用，请联系物业管理处", "This account is disabled; contact the property office"),
        });
    }
    succeeded(state, &ident, input.ip, sole_account).await?;
    start_session(state, &user, input.client).await
}

/// Ends every other session of the user and returns a fresh one. A wrong current password
/// counts towards the lockout like a failed sign-in.
/// `app`: the app of the session the change is made in; the new session is for it too.
pub async fn change_password(
    state: &AppState,
    actor: &Actor,
    ip: &str,
    app: Option<ClientApp>,
    old: &str,
    new: &str,
) -> AppResult<TokenPair> {
    let new = NewPassword::parse("newPassword", new)?;
    if old == new.expose() {
        return Err(AppError::validation(
            "newPassword",
            Msg::new("新密码不能与原密码相同", "The new password must differ from the old one"),
        ));
    }
    let user = repo::credentials_by_id(&state.db, actor.user_id).await?.ok_or_else(invalid_token)?;
    let app = app_for(&user, app)?;
    // the account signs in by username and by phone: a wrong current password counts
    // against both, like a failed sign-in
    let idents: Vec<String> =
        [actor.account.username.clone(), actor.account.phone.clone()].into_iter().flatten().collect();
    for ident in &idents {
        check_lock(state, ident).await?;
    }
    let mut attempts = Vec::with_capacity(idents.len());
    for ident in &idents {
        attempts.push(reserve_attempt(state, ident, ip).await?);
    }
    if !verify_password(state, old, user.password_hash.clone()).await? {
        let mut answer = AppError::validation("oldPassword", Msg::new("原密码不正确", "The current password is wrong"));
        for (ident, n) in idents.iter().zip(&attempts) {
            if let e @ AppError::RateLimited { .. } = failed(state, ident, *n).await? {
                answer = e;
            }
        }
        return Err(answer);
    }
    for ident in &idents {
        succeeded(state, ident, ip, true).await?;
    }
    let hash = rbac::hash_password(state, new).await?;
    let mut tx = state.db.begin().await?;
    repo::set_password(&mut tx, user.id, &hash, false).await?;
    let ended = end_all_sessions(state, &mut tx, user.id).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "user.change_password",
        "user",
        Some(user.id),
        serde_json::json!({}),
    )
    .await?;
    let user = Credentials { must_change_password: false, ..user };
    let pair = issue_tokens(state, &mut tx, &user, None, Some(ended), app).await?;
    tx.commit().await?;
    account_changed(state, user.id, EVENT_SESSION_REVOKED).await;
    Ok(pair)
}

/// An administrator sets a new initial password (`user:write` over the account); every
/// session of the user ends and the password must be changed at the next sign-in.
pub async fn reset_user_password(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    initial_password: &str,
) -> AppResult<Uuid> {
    rbac::writable_user(state, actor, id).await?;
    let password = NewPassword::parse("initialPassword", initial_password)?;
    let hash = rbac::hash_password(state, password).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::set_password(&mut tx, id, &hash, true).await?;
    end_all_sessions(state, &mut tx, id).await?;
    audit::record(&mut tx, state.clock.now(), actor, "user.reset_password", "user", Some(id), serde_json::json!({}))
        .await?;
    tx.commit(&id).await?;
    account_changed(state, id, EVENT_SESSION_REVOKED).await;
    Ok(id)
}

// ---- SMS codes ---------------------------------------------------------------------

fn too_many(reason: &'static str, retry_after: Option<u64>) -> AppError {
    AppError::RateLimited {
        reason,
        msg: Msg::new("发送过于频繁，请稍后再试", "Too many requests; try again later"),
        retry_after_secs: retry_after,
    }
}

/// Sends a code when the phone belongs to an account the purpose fits; answers the same
/// either way. Limits apply before anything is checked or sent.
pub async fn request_code(state: &AppState, ip: &str, phone: &str, purpose: CodePurpose) -> AppResult<CodeSent> {
    let a = &state.config.auth;
    let phone = Phone::parse("phone", phone)?;
    let p = phone.as_str();
    let now = state.clock.now();
    let mut conn = state.redis.clone();

    let hour = now.timestamp() / 3600;
    let ip_key = state.redis_key(&["otp", "ip", ip, &hour.to_string()]);
    let ip_count = count_in_window(&mut conn, &ip_key, 3600).await?;
    if ip_count > u64::from(a.otp_hourly_per_ip) {
        return Err(too_many("IP_LIMIT", Some(3600 - (now.timestamp() % 3600) as u64)));
    }
    let cool_key = state.redis_key(&["otp", "cool", p]);
    let fresh: bool = a.otp_resend_secs == 0
        || redis::cmd("SET")
            .arg(&cool_key)
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(a.otp_resend_secs)
            .query_async::<Option<String>>(&mut conn)
            .await?
            .is_some();
    if !fresh {
        let ttl: i64 = conn.ttl(&cool_key).await?;
        return Err(too_many("RESEND_TOO_SOON", Some(ttl.max(1) as u64)));
    }
    let day_key = state.redis_key(&["otp", "day", p, &crate::kit::clock::business_day(now)]);
    let day_count = count_in_window(&mut conn, &day_key, 86_400).await?;
    if day_count > u64::from(a.otp_daily_per_phone) {
        return Err(too_many("DAILY_LIMIT", None));
    }

    // The same work for every phone: a code is made and stored whether or not the phone
    // has an account the purpose fits, so neither the answer, nor its time, nor a later
    // wrong-code answer tells which phones are registered. Only fitting accounts are sent
    // the code, by a task off the request path.
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    let code_key = state.redis_key(&["otp", purpose.key(), p]);
    let _: () = redis::pipe()
        .del(&code_key)
        .hset(&code_key, "hash", state.keys.code_hash(purpose.key(), p, &code))
        .hset(&code_key, "attempts", 0)
        .expire(&code_key, a.otp_ttl_secs as i64)
        .query_async(&mut conn)
        .await?;
    let accounts = repo::credentials_by_login(&state.db, p, None).await?;
    if accounts.iter().any(|u| u.status == purpose.account_status()) {
        let mut params = serde_json::Map::new();
        params.insert("code".into(), code.clone().into());
        let msg = SmsMessage {
            phone: p.to_owned(),
            kind: SmsKind::SecurityCode,
            params,
            text: format!("【物业】您的验证码为{code}，{}分钟内有效。请勿泄露给他人。", a.otp_ttl_secs / 60),
        };
        let sms = state.part::<crate::notify::Senders>()?.sms.clone();
        tokio::spawn(async move {
            if let Err(e) = sms.send(&msg).await {
                // the code never arrives: replace it by one nobody knows (deleting it would
                // answer "expired" where an unregistered phone answers "wrong code")
                let _: Result<(), _> = redis::pipe()
                    .hset(&code_key, "hash", random_token())
                    .hset(&code_key, "failed", 1)
                    .query_async(&mut conn)
                    .await;
                let reason = match e {
                    SmsError::InvalidNumber => "invalid_number",
                    SmsError::RateLimited { .. } => "rate_limited",
                    SmsError::Template(_) => "template",
                    SmsError::Auth(_) => "auth",
                    SmsError::Transport(_) => "transport",
                };
                metrics::counter!("sms_code_send_failures_total", "reason" => reason).increment(1);
                tracing::warn!(error = %e, sender = sms.name(), "SMS code not sent");
            }
        });
    }
    Ok(CodeSent { resend_after_secs: a.otp_resend_secs, expires_in_secs: a.otp_ttl_secs })
}

/// Checks a code: at most `otp_max_attempts` tries, then it is gone. A right code is used
/// up unless `keep` (the caller still has to say which company's account is meant).
const VERIFY_SCRIPT: &str = r"
local h = redis.call('HGET', KEYS[1], 'hash')
if not h then return -1 end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if n > tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) return -2 end
if h == ARGV[1] then
  if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', -1) else redis.call('DEL', KEYS[1]) end
  return 1
end
return 0
";

async fn verify_code(state: &AppState, purpose: CodePurpose, phone: &Phone, code: &str, keep: bool) -> AppResult<()> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::validation("code", Msg::new("验证码为6位数字", "The code has 6 digits")));
    }
    let mut conn = state.redis.clone();
    let r: i64 = redis::Script::new(VERIFY_SCRIPT)
        .key(state.redis_key(&["otp", purpose.key(), phone.as_str()]))
        .arg(state.keys.code_hash(purpose.key(), phone.as_str(), code))
        .arg(state.config.auth.otp_max_attempts)
        .arg(if keep { "1" } else { "0" })
        .invoke_async(&mut conn)
        .await?;
    match r {
        1 => Ok(()),
        0 => Err(AppError::validation("code", Msg::new("验证码错误", "Wrong code"))),
        -2 => Err(AppError::RateLimited {
            reason: "CODE_ATTEMPTS",
            msg: Msg::new("验证码错误次数过多，请重新获取", "Too many wrong codes; request a new one"),
            retry_after_secs: None,
        }),
        _ => Err(AppError::validation(
            "code",
            Msg::new("验证码已失效，请重新获取", "The code has expired; request a new one"),
        )),
    }
}

/// The one account of the phone that a code for `purpose` is about. The code is checked
/// first; when the phone has fitting accounts in several companies and none was named,
/// the (still valid) code is kept and the companies are listed under `details.companies`.
async fn account_by_code(
    state: &AppState,
    purpose: CodePurpose,
    phone: &Phone,
    code: &str,
    company_id: Option<Uuid>,
) -> AppResult<Option<Credentials>> {
    let mut accounts = repo::credentials_by_login(&state.db, phone.as_str(), company_id).await?;
    accounts.retain(|u| u.status == purpose.account_status());
    let ambiguous = accounts.len() > 1;
    verify_code(state, purpose, phone, code, ambiguous).await?;
    if ambiguous {
        let companies: Vec<_> = accounts
            .iter()
            .map(|u| serde_json::json!({ "companyId": u.company_id, "companyName": u.company_name }))
            .collect();
        return Err(AppError::Validation {
            field: "companyId".into(),
            msg: Msg::new(
                "该手机号在多个物业公司有账号，请选择公司",
                "This phone has accounts at several companies; choose one",
            ),
            details: Some(serde_json::json!({ "companies": companies })),
        });
    }
    Ok(accounts.pop())
}

pub async fn sign_in_with_code(
    state: &AppState,
    phone: &str,
    code: &str,
    company_id: Option<Uuid>,
    client: Option<ClientApp>,
) -> AppResult<TokenPair> {
    let phone = Phone::parse("phone", phone)?;
    match account_by_code(state, CodePurpose::SignIn, &phone, code, company_id).await? {
        Some(u) => start_session(state, &u, client).await,
        None => Err(invalid_credentials()),
    }
}

fn nothing_to_activate() -> AppError {
    AppError::validation("phone", Msg::new("账号无需激活，请直接登录", "Nothing to activate; sign in instead"))
}

/// 业主激活: the registered owner proves the phone and sets a password.
pub async fn activate_owner(
    state: &AppState,
    phone: &str,
    code: &str,
    password: &str,
    company_id: Option<Uuid>,
) -> AppResult<TokenPair> {
    let phone = Phone::parse("phone", phone)?;
    let password = NewPassword::parse("password", password)?;
    let user = account_by_code(state, CodePurpose::Activate, &phone, code, company_id)
        .await?
        .ok_or_else(nothing_to_activate)?;
    let hash = rbac::hash_password(state, password).await?;
    let mut tx = state.db.begin().await?;
    if repo::activate(&mut tx, user.id, &hash).await? != 1 {
        return Err(nothing_to_activate());
    }
    let user = Credentials { status: AccountStatus::Active, must_change_password: false, ..user };
    let pair = issue_tokens(state, &mut tx, &user, None, None, ClientApp::Owner).await?;
    tx.commit().await?;
    Ok(pair)
}

/// 忘记密码: a code to the phone, then a new password; every session ends.
pub async fn reset_password(
    state: &AppState,
    phone: &str,
    code: &str,
    new_password: &str,
    company_id: Option<Uuid>,
) -> AppResult<()> {
    let phone = Phone::parse("phone", phone)?;
    let password = NewPassword::parse("newPassword", new_password)?;
    let Some(user) = account_by_code(state, CodePurpose::ResetPassword, &phone, code, company_id).await? else {
        return Err(invalid_credentials());
    };
    let hash = rbac::hash_password(state, password).await?;
    let mut tx = state.db.begin().await?;
    repo::set_password(&mut tx, user.id, &hash, false).await?;
    end_all_sessions(state, &mut tx, user.id).await?;
    tx.commit().await?;
    account_changed(state, user.id, EVENT_SESSION_REVOKED).await;
    Ok(())
}

/// Seeds an already-hashed password and activates the account (demo data only).
pub async fn activate_with_hash(state: &AppState, user_id: Uuid, hash: &str) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    repo::activate(&mut tx, user_id, hash).await?;
    tx.commit().await?;
    Ok(())
}
