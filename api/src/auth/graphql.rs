//! Sign-in API: captcha, password and SMS sign-in, owner activation, tokens, passwords.
//! Anonymous mutations echo `clientMutationId` but record nothing (there is no user to
//! key a retry by, and their results are secrets that are never stored).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::model::{CodePurpose, TokenPair};
use super::service::{self, SignIn};
use crate::kit::error::AppError;
use crate::kit::gql::{StateExt, parse_id, parse_opt_id, spend_expensive};
use crate::rbac::graphql::{ActorExt, User, UserPayload};
use crate::rbac::model::Perm;

/// A new session: the access token to send as `Authorization: Bearer …` and the refresh
/// token to keep in the phone's secure storage.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// JWT for `Authorization: Bearer`; short-lived
    pub access_token: String,
    /// opaque, single use: `refreshToken` trades it for a new pair
    pub refresh_token: String,
    /// seconds until the access token expires
    pub expires_in: u64,
    /// true after an admin set an initial password: only `changePassword` works until then
    pub must_change_password: bool,
    /// the signed-in account
    pub user: User,
}

async fn payload(ctx: &Context<'_>, cmid: Option<String>, pair: TokenPair) -> async_graphql::Result<AuthPayload> {
    let row = crate::rbac::service::account(ctx.state(), pair.user_id).await?;
    Ok(AuthPayload {
        client_mutation_id: cmid,
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        expires_in: pair.expires_in,
        must_change_password: pair.must_change_password,
        user: User::own(row),
    })
}

/// 图形验证码 an image challenge for password sign-in after failures.
#[derive(SimpleObject)]
pub struct Captcha {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// pass it back as `captchaId`
    pub id: String,
    /// PNG, base64
    pub image_base64: String,
    /// seconds the answer is accepted
    pub expires_in_secs: u64,
}

/// Asks for a new image captcha.
#[derive(InputObject, Default)]
pub struct RequestCaptchaInput {
    /// echoed in the payload
    pub client_mutation_id: Option<String>,
}

/// 客户端 the app a session is opened in. In production the owner and staff apps may send
/// only the operations of their manifest (`schema/persisted/`); the playground may send any.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::kit::gql::ClientApp")]
pub enum ClientApp {
    /// the owner app (owner accounts)
    Owner,
    /// the staff app (staff accounts)
    Staff,
    /// the managers' GraphQL playground (staff accounts; ad-hoc queries need `schema:read`)
    Playground,
}

/// Password sign-in.
#[derive(InputObject)]
pub struct SignInInput {
    /// username or phone number (any common way of writing it)
    pub login: String,
    /// the account's password
    pub password: String,
    /// only accounts of this company (a phone may have accounts at several companies)
    pub company_id: Option<ID>,
    /// after `captchaRequired`: the captcha's id
    pub captcha_id: Option<String>,
    /// after `captchaRequired`: what the image shows
    pub captcha_answer: Option<String>,
    /// the app the session is for; by default the account's own (owners: OWNER, staff: STAFF).
    /// Managers signing in to the playground ask for PLAYGROUND.
    pub client: Option<ClientApp>,
    /// echoed in the payload
    pub client_mutation_id: Option<String>,
}

/// Trades a refresh token for a new token pair.
#[derive(InputObject)]
pub struct RefreshTokenInput {
    /// the refresh token of the last pair
    pub refresh_token: String,
    /// echoed in the payload
    pub client_mutation_id: Option<String>,
}

/// Ends one session.
#[derive(InputObject)]
pub struct SignOutInput {
    /// the session's refresh token
    pub refresh_token: String,
    /// this phone's push token: it stops receiving the user's notifications
    pub device_token: Option<String>,
    /// echoed in the payload
    pub client_mutation_id: Option<String>,
}

/// A mutation that changes no object a client reads back.
#[derive(SimpleObject)]
pub struct OkPayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// always true (failures are errors)
    pub ok: bool,
}

/// The signed-in user changes their password.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// the current password (a wrong one counts towards the lockout)
    pub old_password: String,
    /// 8 to 64 characters with letters and digits
    pub new_password: String,
    /// echoed in the payload
    pub client_mutation_id: Option<String>,
}

/// What an SMS code is for; a code for one purpose is useless for another.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SmsCodePurpose {
    /// sign in without a password
    SignIn,
    /// activate an owner account the property office registered
    Activate,
    /// set a new password
    ResetPassword,
}

/// Asks for an SMS code.
#[derive(InputObject)]
pub struct RequestSmsCodeInput {
    /// mainland mobile number
    pub phone: String,
    /// what the code will be used for
    pub purpose: SmsCodePurpose,
    /// echoed in the payload
    pub client_mutation_id: Option<String>,
}

/// The same answer whether or not the phone has an account.
#[derive(SimpleObject)]
pub struct SmsCodePayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// seconds before another code may be requested
    pub resend_after_secs: u64,
    /// seconds the code is valid
    pub expires_in_secs: u64,
}

/// Sign-in with an SMS code.
#[derive(InputObject)]
pub struct SignInWithSmsCodeInput {
    /// the account's phone
    pub phone: String,
    /// the 6-digit code
    pub code: String,
    /// required when the phone has accounts at several companies
    pub company_id: Option<ID>,
    /// the app the session is for; by default the account's own
    pub client: Option<ClientApp>,
    /// echoed in the payload
    pub client_mutation_id: Option<String>,
}

/// An owner activates the account the property office registered.
#[derive(InputObject)]
pub struct ActivateOwnerInput {
    /// the phone the property office registered
    pub phone: String,
    /// the 6-digit code
    pub code: String,
    /// the password to sign in with from now on
    pub password: String,
    /// required when the phone is registered at several companies
    pub company_id: Option<ID>,
    /// echoed in the payload
    pub client_mutation_id: Option<String>,
}

/// Sets a new password with an SMS code.
#[derive(InputObject)]
pub struct ResetPasswordInput {
    /// the account's phone
    pub phone: String,
    /// the 6-digit code
    pub code: String,
    /// 8 to 64 characters with letters and digits
    pub new_password: String,
    /// required when the phone has accounts at several companies
    pub company_id: Option<ID>,
    /// echoed in the payload
    pub client_mutation_id: Option<String>,
}

/// An administrator sets a new initial password.
#[derive(InputObject)]
pub struct ResetUserPasswordInput {
    /// a staff account within the caller's `user:write` scope
    pub user_id: ID,
    /// must be changed at the next sign-in
    pub initial_password: String,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A message the development SMS sender recorded.
#[derive(SimpleObject)]
pub struct DevSms {
    /// the recipient
    pub phone: String,
    /// the rendered text
    pub text: String,
    /// the code of a security-code message
    pub code: Option<String>,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// Whether the next password sign-in for this login needs a captcha.
    async fn captcha_required(&self, ctx: &Context<'_>, login: String) -> async_graphql::Result<bool> {
        Ok(service::captcha_required(ctx.state(), &login, &ctx.meta().ip).await?)
    }

    /// Development servers only, for an administrator (`dev:tools`): the SMS messages the
    /// development sender recorded for a phone.
    #[graphql(guard = "Perm::DevTools")]
    async fn dev_sent_sms(&self, ctx: &Context<'_>, phone: String) -> async_graphql::Result<Vec<DevSms>> {
        let state = ctx.state();
        if !state.config.is_development() {
            return Err(AppError::not_found("record").into());
        }
        let phone = crate::kit::types::Phone::parse("phone", &phone)?;
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
    async fn request_captcha(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] input: RequestCaptchaInput,
    ) -> async_graphql::Result<Captcha> {
        spend_expensive(ctx)?;
        let (id, image_base64) = service::new_captcha(ctx.state()).await?;
        Ok(Captcha {
            client_mutation_id: input.client_mutation_id,
            id,
            image_base64,
            expires_in_secs: ctx.state().config.auth.captcha_ttl_secs,
        })
    }

    /// Password sign-in by username or phone.
    async fn sign_in(&self, ctx: &Context<'_>, input: SignInInput) -> async_graphql::Result<AuthPayload> {
        spend_expensive(ctx)?;
        let pair = service::sign_in(
            ctx.state(),
            SignIn {
                login: &input.login,
                password: &input.password,
                company_id: parse_opt_id("companyId", input.company_id.as_ref())?,
                captcha_id: input.captcha_id.as_deref(),
                captcha_answer: input.captcha_answer.as_deref(),
                ip: &ctx.meta().ip,
                client: input.client.map(Into::into),
            },
        )
        .await?;
        payload(ctx, input.client_mutation_id, pair).await
    }

    /// Rotates the refresh token: the old one stops working.
    async fn refresh_token(&self, ctx: &Context<'_>, input: RefreshTokenInput) -> async_graphql::Result<AuthPayload> {
        spend_expensive(ctx)?;
        let pair = service::refresh(ctx.state(), &input.refresh_token).await?;
        payload(ctx, input.client_mutation_id, pair).await
    }

    /// Ends this session; the user's other phones refresh their access tokens.
    async fn sign_out(&self, ctx: &Context<'_>, input: SignOutInput) -> async_graphql::Result<OkPayload> {
        let user = service::sign_out(ctx.state(), &input.refresh_token).await?;
        if let (Some(user), Some(token)) = (user, input.device_token.as_deref()) {
            crate::notify::service::unregister_device(ctx.state(), user, token).await?;
        }
        Ok(OkPayload { client_mutation_id: input.client_mutation_id, ok: true })
    }

    /// Ends every session of the user and returns a fresh one.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> async_graphql::Result<AuthPayload> {
        spend_expensive(ctx)?;
        let actor = ctx.actor()?;
        let pair = service::change_password(
            ctx.state(),
            &actor,
            &ctx.meta().ip,
            ctx.meta().app,
            &input.old_password,
            &input.new_password,
        )
        .await?;
        payload(ctx, input.client_mutation_id, pair).await
    }

    /// Sends a code when the phone has an account the purpose fits; answers the same either way.
    async fn request_sms_code(
        &self,
        ctx: &Context<'_>,
        input: RequestSmsCodeInput,
    ) -> async_graphql::Result<SmsCodePayload> {
        spend_expensive(ctx)?;
        let purpose = match input.purpose {
            SmsCodePurpose::SignIn => CodePurpose::SignIn,
            SmsCodePurpose::Activate => CodePurpose::Activate,
            SmsCodePurpose::ResetPassword => CodePurpose::ResetPassword,
        };
        let sent = service::request_code(ctx.state(), &ctx.meta().ip, &input.phone, purpose).await?;
        Ok(SmsCodePayload {
            client_mutation_id: input.client_mutation_id,
            resend_after_secs: sent.resend_after_secs,
            expires_in_secs: sent.expires_in_secs,
        })
    }

    /// Sign-in with an SMS code instead of a password.
    async fn sign_in_with_sms_code(
        &self,
        ctx: &Context<'_>,
        input: SignInWithSmsCodeInput,
    ) -> async_graphql::Result<AuthPayload> {
        spend_expensive(ctx)?;
        let company = parse_opt_id("companyId", input.company_id.as_ref())?;
        let pair =
            service::sign_in_with_code(ctx.state(), &input.phone, &input.code, company, input.client.map(Into::into))
                .await?;
        payload(ctx, input.client_mutation_id, pair).await
    }

    /// 业主激活: a registered owner proves the phone with an SMS code and sets a password.
    async fn activate_owner(&self, ctx: &Context<'_>, input: ActivateOwnerInput) -> async_graphql::Result<AuthPayload> {
        spend_expensive(ctx)?;
        let company = parse_opt_id("companyId", input.company_id.as_ref())?;
        let pair = service::activate_owner(ctx.state(), &input.phone, &input.code, &input.password, company).await?;
        payload(ctx, input.client_mutation_id, pair).await
    }

    /// 忘记密码: sets a new password with an SMS code; every session ends.
    async fn reset_password(&self, ctx: &Context<'_>, input: ResetPasswordInput) -> async_graphql::Result<OkPayload> {
        spend_expensive(ctx)?;
        let company = parse_opt_id("companyId", input.company_id.as_ref())?;
        service::reset_password(ctx.state(), &input.phone, &input.code, &input.new_password, company).await?;
        Ok(OkPayload { client_mutation_id: input.client_mutation_id, ok: true })
    }

    /// An administrator sets a new initial password; every session of the user ends.
    #[graphql(guard = "Perm::UserWrite")]
    async fn reset_user_password(
        &self,
        ctx: &Context<'_>,
        input: ResetUserPasswordInput,
    ) -> async_graphql::Result<UserPayload> {
        spend_expensive(ctx)?;
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("userId", &input.user_id)?;
        service::reset_user_password(ctx.state(), &actor, &retry, id, &input.initial_password).await?;
        Ok(UserPayload::new(input.client_mutation_id, id))
    }
}
