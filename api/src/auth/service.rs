//! Sign-in rules: passwords (argon2id), captcha after failures, lockout, SMS codes with
//! send and verify limits, access + rotating refresh tokens. No answer tells whether an
//! account exists.

use chrono::TimeDelta;
use jsonwebtoken::{Algorithm, Header, Validation};
use rand::Rng;
use redis::AsyncCommands;
use uuid::Uuid;

use super::model::{Claims, CodePurpose, CodeSent, TokenPair};
use super::repo::{self, Credentials};
use crate::app::AppState;
use crate::crypto::{random_token, sha256};
use crate::error::{AppError, AppResult, Msg};
use crate::notify::sms::{SmsError, SmsKind, SmsMessage};
use crate::rbac::model::Actor;
use crate::rbac::service::{EVENT_SESSION_REVOKED, account_changed};
use crate::types::{NewPassword, Phone};

fn key(state: &AppState, parts: &[&str]) -> String {
    let mut k = state.config.redis_prefix.clone();
    k.push_str(&parts.join(":"));
    k
}

pub async fn hash_password(state: &AppState, password: NewPassword) -> AppResult<String> {
    let keys = state.keys.clone();
    tokio::task::spawn_blocking(move || keys.hash_password(password.expose()))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)
}

async fn verify_password(state: &AppState, password: &str, hash: Option<String>) -> AppResult<bool> {
    let keys = state.keys.clone();
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || keys.verify_password(&password, hash.as_deref()))
        .await
        .map_err(AppError::internal)
}

pub async fn store_password(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
    hash: &str,
    must_change: bool,
) -> AppResult<()> {
    repo::set_password(tx, user_id, hash, must_change).await?;
    revoke_all_sessions(state, tx, user_id).await
}

pub async fn revoke_all_sessions(state: &AppState, tx: &mut sqlx::PgConnection, user_id: Uuid) -> AppResult<()> {
    repo::revoke_user(tx, user_id, state.clock.now()).await?;
    Ok(())
}

// ---- tokens ------------------------------------------------------------------------

fn invalid_token() -> AppError {
    AppError::Unauthenticated {
        reason: "TOKEN_INVALID",
        msg: Msg::new("登录已失效，请重新登录", "Your session is no longer valid; sign in again"),
    }
}

pub fn verify_access_token(state: &AppState, token: &str) -> AppResult<Claims> {
    let mut v = Validation::new(Algorithm::HS256);
    // expiry is checked against our clock below, so tests can move time
    v.validate_exp = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Claims>(token, &state.keys.jwt_decoding, &v).map_err(|_| invalid_token())?;
    if data.claims.exp <= state.clock.now().timestamp() {
        return Err(AppError::Unauthenticated {
            reason: "TOKEN_EXPIRED",
            msg: Msg::new("登录已过期，请刷新令牌", "Access token expired; refresh it"),
        });
    }
    Ok(data.claims)
}

async fn issue_tokens(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    user: &Credentials,
    family: Option<Uuid>,
) -> AppResult<TokenPair> {
    let now = state.clock.now();
    let ttl = state.config.auth.access_token_ttl_secs;
    let claims = Claims {
        sub: user.id,
        cid: user.company_id,
        knd: user.kind.clone(),
        iat: now.timestamp(),
        exp: now.timestamp() + ttl as i64,
    };
    let access_token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &state.keys.jwt_encoding)
        .map_err(AppError::internal)?;
    let refresh_token = random_token();
    let expires = now + TimeDelta::days(state.config.auth.refresh_token_ttl_days as i64);
    repo::insert_refresh(tx, user.id, family.unwrap_or_else(Uuid::now_v7), &sha256(&refresh_token), expires).await?;
    repo::touch_sign_in(tx, user.id, now).await?;
    Ok(TokenPair {
        user_id: user.id,
        access_token,
        refresh_token,
        expires_in: ttl,
        must_change_password: user.must_change_password,
    })
}

async fn start_session(state: &AppState, user: &Credentials) -> AppResult<TokenPair> {
    let mut tx = state.db.begin().await?;
    let pair = issue_tokens(state, &mut tx, user, None).await?;
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
    let user = repo::credentials_by_id(&mut *tx, row.user_id).await?.ok_or_else(invalid_token)?;
    if user.status != "active" {
        return Err(invalid_token());
    }
    repo::mark_used(&mut tx, &hash, now).await?;
    let pair = issue_tokens(state, &mut tx, &user, Some(row.family_id)).await?;
    tx.commit().await?;
    Ok(pair)
}

/// Ends the session the refresh token belongs to; returns its user.
pub async fn sign_out(state: &AppState, token: &str) -> AppResult<Option<Uuid>> {
    let mut tx = state.db.begin().await?;
    let row = repo::refresh_for_update(&mut tx, &sha256(token.trim())).await?;
    if let Some(row) = &row {
        repo::revoke_family(&mut tx, row.family_id, state.clock.now()).await?;
    }
    tx.commit().await?;
    Ok(row.map(|r| r.user_id))
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
    pub captcha_id: Option<&'a str>,
    pub captcha_answer: Option<&'a str>,
    pub ip: &'a str,
}

/// Is a captcha needed before the next sign-in attempt for this login from this IP?
pub async fn captcha_required(state: &AppState, login: &str, ip: &str) -> AppResult<bool> {
    let a = &state.config.auth;
    if a.captcha_always {
        return Ok(true);
    }
    let mut conn = state.redis.clone();
    let ident = login.trim().to_lowercase();
    let (by_login, by_ip): (Option<u32>, Option<u32>) = redis::pipe()
        .get(key(state, &["signin", "fail", &ident]))
        .get(key(state, &["signin", "ipfail", ip]))
        .query_async(&mut conn)
        .await?;
    Ok(by_login.unwrap_or(0) >= a.captcha_after_failures || by_ip.unwrap_or(0) >= a.captcha_after_failures)
}

pub async fn new_captcha(state: &AppState) -> AppResult<(String, String)> {
    let (answer, png) = super::captcha::generate().map_err(AppError::internal)?;
    let id = Uuid::now_v7().to_string();
    let mut conn = state.redis.clone();
    let _: () = conn.set_ex(key(state, &["captcha", &id]), answer, state.config.auth.captcha_ttl_secs).await?;
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
    let stored: Option<String> = conn.get_del(key(state, &["captcha", id.trim()])).await?;
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

pub async fn sign_in(state: &AppState, input: SignIn<'_>) -> AppResult<TokenPair> {
    let a = &state.config.auth;
    let ident = input.login.trim().to_lowercase();
    if ident.is_empty() || ident.len() > 64 {
        return Err(AppError::validation(
            "login",
            Msg::new("请输入用户名或手机号", "Enter a username or phone number"),
        ));
    }
    if input.password.is_empty() || input.password.len() > 128 {
        return Err(AppError::validation("password", Msg::new("请输入密码", "Enter a password")));
    }
    let lock_key = key(state, &["signin", "lock", &ident]);
    let fail_key = key(state, &["signin", "fail", &ident]);
    let ipfail_key = key(state, &["signin", "ipfail", input.ip]);
    let mut conn = state.redis.clone();
    let ttl: i64 = conn.ttl(&lock_key).await?;
    if ttl > 0 {
        return Err(locked(ttl as u64));
    }
    if captcha_required(state, &ident, input.ip).await? {
        check_captcha(state, input.captcha_id, input.captcha_answer).await?;
    }
    // a phone typed with +86 or dashes still finds the account
    let lookup = Phone::parse("login", &ident).map(|p| p.as_str().to_owned()).unwrap_or(ident.clone());
    let user = repo::credentials_by_login(&state.db, &lookup).await?;
    let ok = verify_password(state, input.password, user.as_ref().and_then(|u| u.password_hash.clone())).await?;
    let user = match user {
        Some(u) if ok => u,
        _ => {
            let (fails, _): (u32, u32) = redis::pipe()
                .incr(&fail_key, 1)
                .incr(&ipfail_key, 1)
                .expire(&fail_key, a.lockout_window_secs as i64)
                .ignore()
                .expire(&ipfail_key, a.lockout_window_secs as i64)
                .ignore()
                .query_async(&mut conn)
                .await?;
            if fails >= a.lockout_failures {
                let _: () =
                    redis::pipe().set_ex(&lock_key, 1, a.lockout_secs).del(&fail_key).query_async(&mut conn).await?;
                return Err(locked(a.lockout_secs));
            }
            return Err(invalid_credentials());
        }
    };
    if user.status != "active" {
        return Err(AppError::Forbidden {
            reason: "ACCOUNT_DISABLED",
            msg: Msg::new("账号已停用，请联系物业管理处", "This account is disabled; contact the property office"),
        });
    }
    let _: () = conn.del(&fail_key).await?;
    start_session(state, &user).await
}

pub async fn change_password(state: &AppState, actor: &Actor, old: &str, new: &str) -> AppResult<TokenPair> {
    let new = NewPassword::parse("newPassword", new)?;
    if old == new.expose() {
        return Err(AppError::validation(
            "newPassword",
            Msg::new("新密码不能与原密码相同", "The new password must differ from the old one"),
        ));
    }
    let user = repo::credentials_by_id(&state.db, actor.user_id).await?.ok_or_else(invalid_token)?;
    if !verify_password(state, old, user.password_hash.clone()).await? {
        return Err(AppError::validation("oldPassword", Msg::new("原密码不正确", "The current password is wrong")));
    }
    let hash = hash_password(state, new).await?;
    let mut tx = state.db.begin().await?;
    store_password(state, &mut tx, user.id, &hash, false).await?;
    crate::rbac::service::audit(&mut tx, actor, "user.change_password", "user", Some(user.id), serde_json::json!({}))
        .await?;
    let user = Credentials { must_change_password: false, ..user };
    let pair = issue_tokens(state, &mut tx, &user, None).await?;
    tx.commit().await?;
    account_changed(state, user.id, EVENT_SESSION_REVOKED).await;
    Ok(pair)
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
    let ip_key = key(state, &["otp", "ip", ip, &hour.to_string()]);
    let (ip_count,): (u32,) =
        redis::pipe().incr(&ip_key, 1).expire(&ip_key, 3600).ignore().query_async(&mut conn).await?;
    if ip_count > a.otp_hourly_per_ip {
        return Err(too_many("IP_LIMIT", Some(3600 - (now.timestamp() % 3600) as u64)));
    }
    let cool_key = key(state, &["otp", "cool", p]);
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
    let day_key = key(state, &["otp", "day", p, &crate::clock::business_day(now)]);
    let (day_count,): (u32,) =
        redis::pipe().incr(&day_key, 1).expire(&day_key, 86_400).ignore().query_async(&mut conn).await?;
    if day_count > a.otp_daily_per_phone {
        return Err(too_many("DAILY_LIMIT", None));
    }

    let sent = CodeSent { resend_after_secs: a.otp_resend_secs, expires_in_secs: a.otp_ttl_secs };
    let user = repo::credentials_by_phone(&state.db, p).await?;
    let eligible = match (purpose, &user) {
        (CodePurpose::Activate, Some(u)) => u.kind == "owner" && u.status == "pending",
        (CodePurpose::SignIn | CodePurpose::ResetPassword, Some(u)) => u.status == "active",
        (_, None) => false,
    };
    if !eligible {
        return Ok(sent);
    }
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    let code_key = key(state, &["otp", purpose.key(), p]);
    let _: () = redis::pipe()
        .del(&code_key)
        .hset(&code_key, "hash", state.keys.code_hash(purpose.key(), p, &code))
        .hset(&code_key, "attempts", 0)
        .expire(&code_key, a.otp_ttl_secs as i64)
        .query_async(&mut conn)
        .await?;
    let mut params = serde_json::Map::new();
    params.insert("code".into(), code.clone().into());
    let msg = SmsMessage {
        phone: p.to_owned(),
        kind: SmsKind::SecurityCode,
        params,
        text: format!("【物业】您的验证码为{code}，{}分钟内有效。请勿泄露给他人。", a.otp_ttl_secs / 60),
    };
    if let Err(e) = state.sms.send(&msg).await {
        let _: () = conn.del(&code_key).await?;
        tracing::warn!(error = %e, sender = state.sms.name(), "SMS send failed");
        return Err(match e {
            SmsError::InvalidNumber => AppError::validation(
                "phone",
                Msg::new("短信网关拒绝了该手机号", "The SMS gateway rejected this number"),
            ),
            SmsError::RateLimited { retry_after_secs } => too_many("GATEWAY_LIMIT", retry_after_secs),
            _ => AppError::Unavailable("sms"),
        });
    }
    Ok(sent)
}

const VERIFY_SCRIPT: &str = r"
local h = redis.call('HGET', KEYS[1], 'hash')
if not h then return -1 end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if n > tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) return -2 end
if h == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
";

/// Checks a code: at most `otp_max_attempts` tries, then it is gone; a right code is used up.
async fn verify_code(state: &AppState, purpose: CodePurpose, phone: &Phone, code: &str) -> AppResult<()> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::validation("code", Msg::new("验证码为6位数字", "The code has 6 digits")));
    }
    let mut conn = state.redis.clone();
    let r: i64 = redis::Script::new(VERIFY_SCRIPT)
        .key(key(state, &["otp", purpose.key(), phone.as_str()]))
        .arg(state.keys.code_hash(purpose.key(), phone.as_str(), code))
        .arg(state.config.auth.otp_max_attempts)
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

pub async fn sign_in_with_code(state: &AppState, phone: &str, code: &str) -> AppResult<TokenPair> {
    let phone = Phone::parse("phone", phone)?;
    verify_code(state, CodePurpose::SignIn, &phone, code).await?;
    let user = repo::credentials_by_phone(&state.db, phone.as_str()).await?;
    match user {
        Some(u) if u.status == "active" => start_session(state, &u).await,
        _ => Err(invalid_credentials()),
    }
}

/// 业主激活: the registered owner proves the phone and sets a password.
pub async fn activate_owner(state: &AppState, phone: &str, code: &str, password: &str) -> AppResult<TokenPair> {
    let phone = Phone::parse("phone", phone)?;
    let password = NewPassword::parse("password", password)?;
    verify_code(state, CodePurpose::Activate, &phone, code).await?;
    let user = repo::credentials_by_phone(&state.db, phone.as_str()).await?;
    let Some(user) = user.filter(|u| u.kind == "owner" && u.status == "pending") else {
        return Err(AppError::validation(
            "phone",
            Msg::new("账号无需激活，请直接登录", "Nothing to activate; sign in instead"),
        ));
    };
    let hash = hash_password(state, password).await?;
    let mut tx = state.db.begin().await?;
    if repo::activate(&mut tx, user.id, &hash).await? != 1 {
        return Err(AppError::validation(
            "phone",
            Msg::new("账号无需激活，请直接登录", "Nothing to activate; sign in instead"),
        ));
    }
    let user = Credentials { status: "active".into(), must_change_password: false, ..user };
    let pair = issue_tokens(state, &mut tx, &user, None).await?;
    tx.commit().await?;
    Ok(pair)
}

/// 忘记密码: a code to the phone, then a new password; every session ends.
pub async fn reset_password(state: &AppState, phone: &str, code: &str, new_password: &str) -> AppResult<()> {
    let phone = Phone::parse("phone", phone)?;
    let password = NewPassword::parse("newPassword", new_password)?;
    verify_code(state, CodePurpose::ResetPassword, &phone, code).await?;
    let Some(user) = repo::credentials_by_phone(&state.db, phone.as_str()).await?.filter(|u| u.status == "active")
    else {
        return Err(invalid_credentials());
    };
    let hash = hash_password(state, password).await?;
    let mut tx = state.db.begin().await?;
    store_password(state, &mut tx, user.id, &hash, false).await?;
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
