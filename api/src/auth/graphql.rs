//! Sign-in API: captcha, password and SMS sign-in, owner activation, tokens.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};

use super::model::{CodePurpose, TokenPair};
use super::service::{self, SignIn};
use crate::error::AppError;
use crate::graphql::CtxExt;
use crate::rbac::graphql::User;

#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub refresh_token: String,
    /// seconds until the access token expires
    pub expires_in: u64,
    /// true after an admin set an initial password: only `changePassword` works until then
    pub must_change_password: bool,
    pub user: User,
}

async fn payload(ctx: &Context<'_>, pair: TokenPair) -> async_graphql::Result<AuthPayload> {
    let row = crate::rbac::service::account(ctx.state(), pair.user_id).await?;
    Ok(AuthPayload {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        expires_in: pair.expires_in,
        must_change_password: pair.must_change_password,
        user: User::own(row),
    })
}

#[derive(SimpleObject)]
pub struct Captcha {
    pub id: String,
    /// PNG, base64
    pub image_base64: String,
    pub expires_in_secs: u64,
}

#[derive(InputObject)]
pub struct SignInInput {
    /// username or phone number
    pub login: String,
    pub password: String,
    pub captcha_id: Option<String>,
    pub captcha_answer: Option<String>,
}

#[derive(InputObject)]
pub struct RefreshTokenInput {
    pub refresh_token: String,
}

#[derive(InputObject)]
pub struct SignOutInput {
    pub refresh_token: String,
    /// this phone's push token: it stops receiving the user's notifications
    pub device_token: Option<String>,
}

#[derive(SimpleObject)]
pub struct OkPayload {
    pub ok: bool,
}

#[derive(InputObject)]
pub struct ChangePasswordInput {
    pub old_password: String,
    pub new_password: String,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SmsCodePurpose {
    SignIn,
    Activate,
    ResetPassword,
}

#[derive(InputObject)]
pub struct RequestSmsCodeInput {
    pub phone: String,
    pub purpose: SmsCodePurpose,
}

#[derive(SimpleObject)]
pub struct SmsCodePayload {
    /// the same answer whether or not the phone has an account
    pub resend_after_secs: u64,
    pub expires_in_secs: u64,
}

#[derive(InputObject)]
pub struct SignInWithSmsCodeInput {
    pub phone: String,
    pub code: String,
}

#[derive(InputObject)]
pub struct ActivateOwnerInput {
    pub phone: String,
    pub code: String,
    pub password: String,
}

#[derive(InputObject)]
pub struct ResetPasswordInput {
    pub phone: String,
    pub code: String,
    pub new_password: String,
}

#[derive(SimpleObject)]
pub struct DevSms {
    pub phone: String,
    pub text: String,
    pub code: Option<String>,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// Whether the next password sign-in for this login needs a captcha.
    async fn captcha_required(&self, ctx: &Context<'_>, login: String) -> async_graphql::Result<bool> {
        Ok(service::captcha_required(ctx.state(), &login, &ctx.req().ip).await?)
    }

    /// Development only: the SMS messages the development sender recorded for a phone.
    async fn dev_sent_sms(&self, ctx: &Context<'_>, phone: String) -> async_graphql::Result<Vec<DevSms>> {
        let state = ctx.state();
        if !state.config.is_development() {
            return Err(AppError::not_found("record").into());
        }
        let phone = crate::types::Phone::parse("phone", &phone)?;
        let msgs = crate::notify::sms::dev_messages(&state.redis, &state.config.redis_prefix, phone.as_str())
            .await
            .map_err(AppError::from)?;
        Ok(msgs
            .into_iter()
            .map(|m| DevSms {
                code: m.params.get("code").and_then(|c| c.as_str()).map(str::to_owned),
                phone: m.phone,
                text: m.text,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// A new image captcha (2 minutes, one use).
    async fn request_captcha(&self, ctx: &Context<'_>) -> async_graphql::Result<Captcha> {
        let (id, image_base64) = service::new_captcha(ctx.state()).await?;
        Ok(Captcha { id, image_base64, expires_in_secs: ctx.state().config.auth.captcha_ttl_secs })
    }

    async fn sign_in(&self, ctx: &Context<'_>, input: SignInInput) -> async_graphql::Result<AuthPayload> {
        let pair = service::sign_in(
            ctx.state(),
            SignIn {
                login: &input.login,
                password: &input.password,
                captcha_id: input.captcha_id.as_deref(),
                captcha_answer: input.captcha_answer.as_deref(),
                ip: &ctx.req().ip,
            },
        )
        .await?;
        payload(ctx, pair).await
    }

    /// Rotates the refresh token: the old one stops working.
    async fn refresh_token(&self, ctx: &Context<'_>, input: RefreshTokenInput) -> async_graphql::Result<AuthPayload> {
        let pair = service::refresh(ctx.state(), &input.refresh_token).await?;
        payload(ctx, pair).await
    }

    async fn sign_out(&self, ctx: &Context<'_>, input: SignOutInput) -> async_graphql::Result<OkPayload> {
        let user = service::sign_out(ctx.state(), &input.refresh_token).await?;
        if let (Some(user), Some(token)) = (user, input.device_token.as_deref()) {
            crate::notify::service::unregister_device(ctx.state(), user, token).await?;
        }
        Ok(OkPayload { ok: true })
    }

    /// Ends every other session of the user and returns a fresh one.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> async_graphql::Result<AuthPayload> {
        let actor = ctx.actor()?;
        let pair = service::change_password(ctx.state(), &actor, &input.old_password, &input.new_password).await?;
        payload(ctx, pair).await
    }

    async fn request_sms_code(
        &self,
        ctx: &Context<'_>,
        input: RequestSmsCodeInput,
    ) -> async_graphql::Result<SmsCodePayload> {
        let purpose = match input.purpose {
            SmsCodePurpose::SignIn => CodePurpose::SignIn,
            SmsCodePurpose::Activate => CodePurpose::Activate,
            SmsCodePurpose::ResetPassword => CodePurpose::ResetPassword,
        };
        let sent = service::request_code(ctx.state(), &ctx.req().ip, &input.phone, purpose).await?;
        Ok(SmsCodePayload { resend_after_secs: sent.resend_after_secs, expires_in_secs: sent.expires_in_secs })
    }

    async fn sign_in_with_sms_code(
        &self,
        ctx: &Context<'_>,
        input: SignInWithSmsCodeInput,
    ) -> async_graphql::Result<AuthPayload> {
        let pair = service::sign_in_with_code(ctx.state(), &input.phone, &input.code).await?;
        payload(ctx, pair).await
    }

    /// 业主激活: a registered owner proves the phone with an SMS code and sets a password.
    async fn activate_owner(&self, ctx: &Context<'_>, input: ActivateOwnerInput) -> async_graphql::Result<AuthPayload> {
        let pair = service::activate_owner(ctx.state(), &input.phone, &input.code, &input.password).await?;
        payload(ctx, pair).await
    }

    /// 忘记密码: sets a new password with an SMS code; every session ends.
    async fn reset_password(&self, ctx: &Context<'_>, input: ResetPasswordInput) -> async_graphql::Result<OkPayload> {
        service::reset_password(ctx.state(), &input.phone, &input.code, &input.new_password).await?;
        Ok(OkPayload { ok: true })
    }
}
