//! Who is calling (`Caller`, `ActorExt`, the permission guard), `me`, users, roles and
//! grants, and the account-events subscription.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{ComplexObject, Context, Enum, Guard, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use uuid::Uuid;

use super::model::{self, Actor, MENU, Perm};
use super::service::{self, GrantInput, NewStaff};
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::gql::{
    Conn, DeletedPayload, StateExt, group_by, load_one, parse_id, parse_ids, retry_key, spend_expensive, to_id,
};
use crate::kit::idempotency::Retry;
use crate::kit::pagination::Page;
use crate::kit::state::AppState;
use crate::kit::types::Phone;

// ---- the caller ------------------------------------------------------------------------

/// The caller of a request, as the transport authenticated it. A bad token is kept, not
/// fatal: public operations (sign-in) still work; protected ones answer UNAUTHENTICATED.
#[derive(Clone)]
pub struct Caller(pub Result<Option<Arc<Actor>>, (&'static str, Msg)>);

impl Caller {
    pub fn actor(&self) -> Option<&Arc<Actor>> {
        self.0.as_ref().ok().and_then(|a| a.as_ref())
    }
}

pub trait ActorExt {
    /// The signed-in caller, or UNAUTHENTICATED.
    fn actor(&self) -> AppResult<Arc<Actor>>;
    /// The retry key of the mutation being resolved (see `kit::idempotency`): keyed by the
    /// signed-in user; anonymous mutations are never recorded.
    fn retry(&self, client_mutation_id: Option<&str>) -> AppResult<Retry>;
}

impl ActorExt for Context<'_> {
    fn actor(&self) -> AppResult<Arc<Actor>> {
        match &self.data_unchecked::<Caller>().0 {
            Ok(Some(a)) => Ok(a.clone()),
            Ok(None) => Err(AppError::unauthenticated()),
            Err((reason, msg)) => Err(AppError::Unauthenticated { reason, msg: msg.clone() }),
        }
    }

    fn retry(&self, client_mutation_id: Option<&str>) -> AppResult<Retry> {
        match self.data_unchecked::<Caller>().actor() {
            Some(a) => retry_key(self, a.user_id, client_mutation_id),
            None => Ok(Retry::none()),
        }
    }
}

/// What a live subscription re-checks before each event it delivers: the subscriber's
/// current permissions (from the actor cache, which account events keep fresh on every
/// replica) still reach the project. A revoked role ends the stream at the next event.
#[derive(Clone)]
pub struct LiveGrant {
    pub state: AppState,
    pub user_id: Uuid,
    pub company_id: Uuid,
    pub perm: Perm,
    pub project_id: Uuid,
}

impl LiveGrant {
    pub async fn still_allowed(&self) -> bool {
        // the token's validity is the connection's business (it closes on sign-out, expiry)
        match crate::rbac::service::load_actor(&self.state, self.user_id, self.company_id, i64::MAX).await {
            Ok(a) => a.require_project(self.perm, self.project_id).is_ok(),
            Err(_) => false,
        }
    }
}

/// `#[graphql(guard = "Perm::UserRead")]`: the caller holds the permission (in some scope;
/// the service then checks the rows).
impl Guard for Perm {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        ctx.actor()?.require(*self)?;
        Ok(())
    }
}

// ---- types ---------------------------------------------------------------------------------

/// 账号状态 whether an account may sign in.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::AccountStatus")]
pub enum UserStatus {
    /// may sign in
    Active,
    /// an owner registered by the property office who has not activated the app yet
    Pending,
    /// disabled by an administrator: every session has ended
    Disabled,
}

/// 数据范围 how far one grant of a role reaches.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::GrantScope")]
pub enum DataScope {
    /// 全公司 every project of the company
    Company,
    /// 指定项目 the listed projects
    Projects,
    /// 本人 staff: the projects they serve as manager or customer service; owners: their own houses
    Own,
}

/// 用户 an account: one person of the company — staff, an owner, or both.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct User {
    /// the account's id
    pub id: ID,
    /// sign-in name of a staff account; owners sign in with their phone
    pub username: Option<String>,
    /// the person's name
    pub name: String,
    /// mobile number: masked (138****0001) unless it is the caller's own or the caller holds `pii:read`
    pub phone: Option<String>,
    /// whether the account may sign in
    pub status: UserStatus,
    /// a staff account: it has a username or holds a staff role
    pub is_staff: bool,
    /// an administrator set the password: only `changePassword` works until it is changed
    pub must_change_password: bool,
    /// when the account was created
    pub created_at: DateTime<Utc>,
    /// the last successful sign-in
    pub last_sign_in_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    user_id: Uuid,
}

impl User {
    /// The caller's own account: nothing masked.
    pub fn own(a: model::Account) -> Self {
        let phone = a.phone.clone();
        Self::with_phone(a, phone)
    }

    /// Someone's account as `actor` may see it.
    pub fn view(a: model::Account, actor: &Actor) -> Self {
        let phone = match &a.phone {
            Some(p) if actor.unmask_pii() || actor.user_id == a.id => Some(p.clone()),
            Some(p) => Some(Phone::masked(p)),
            None => None,
        };
        Self::with_phone(a, phone)
    }

    fn with_phone(a: model::Account, phone: Option<String>) -> Self {
        User {
            id: to_id(a.id),
            username: a.username,
            name: a.name,
            phone,
            status: a.status.into(),
            is_staff: a.is_staff,
            must_change_password: a.must_change_password,
            created_at: a.created_at,
            last_sign_in_at: a.last_sign_in_at,
            user_id: a.id,
        }
    }
}

#[ComplexObject]
impl User {
    /// Roles granted to the account, with their data scopes.
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoleAssignment>> {
        let rows = load_one::<GrantsLoader>(ctx, self.user_id).await?;
        Ok(rows.unwrap_or_default().into_iter().map(RoleAssignment::from).collect())
    }
}

/// Grants per account, batched per request.
pub struct GrantsLoader(pub AppState);

impl From<AppState> for GrantsLoader {
    fn from(s: AppState) -> Self {
        GrantsLoader(s)
    }
}

impl Loader<Uuid> for GrantsLoader {
    type Value = Vec<model::RoleGrant>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::grants_of_users(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(group_by(rows, |r| r.user_id))
    }
}

/// 授权 a role granted to an account with a data scope.
#[derive(SimpleObject)]
pub struct RoleAssignment {
    /// the grant's id (for `revokeRole`)
    pub id: ID,
    /// the account holding the role
    pub user_id: ID,
    /// the role granted
    pub role_id: ID,
    /// the role's code, e.g. `technician`
    pub role_code: String,
    /// the role's name
    pub role_name: String,
    /// how far the grant reaches
    pub scope: DataScope,
    /// the projects of a PROJECTS grant (empty otherwise)
    pub project_ids: Vec<ID>,
}

impl From<model::RoleGrant> for RoleAssignment {
    fn from(g: model::RoleGrant) -> Self {
        RoleAssignment {
            id: to_id(g.id),
            user_id: to_id(g.user_id),
            role_id: to_id(g.role_id),
            role_code: g.role_code,
            role_name: g.role_name,
            scope: g.scope.into(),
            project_ids: g.project_ids.into_iter().map(to_id).collect(),
        }
    }
}

/// 角色 a named set of permissions of the company.
#[derive(SimpleObject)]
pub struct Role {
    /// the role's id
    pub id: ID,
    /// a short code, unique in the company (`technician`, `night_guard`)
    pub code: String,
    /// the name users see
    pub name: String,
    /// built in (admin, project_manager, technician, customer_service, finance, guard, owner): cannot be changed
    pub builtin: bool,
    /// permission codes (`permissions` lists them with names)
    pub permissions: Vec<String>,
}

impl From<model::Role> for Role {
    fn from(r: model::Role) -> Self {
        Role { id: to_id(r.id), code: r.code, name: r.name, builtin: r.builtin, permissions: r.permissions }
    }
}

/// A permission code and what it allows.
#[derive(SimpleObject)]
pub struct PermissionInfo {
    /// e.g. `user:write`
    pub code: String,
    /// what it allows, in the caller's language
    pub name: String,
}

/// One entry of the app's function menu.
#[derive(SimpleObject)]
pub struct MenuEntry {
    /// stable code the app maps to a screen
    pub code: String,
    /// the title, in the caller's language
    pub title: String,
}

/// The signed-in user, what they may do, and the menu the app shows them.
pub struct Me {
    actor: Arc<Actor>,
}

/// The signed-in user, what they may do, and the menu the app shows them.
#[Object]
impl Me {
    /// the caller's own account, unmasked
    async fn user(&self) -> User {
        User::own(self.actor.account.clone())
    }
    /// the caller's company
    async fn company_id(&self) -> ID {
        to_id(self.actor.company_id)
    }
    /// the owner record linked to this account (owners, and staff who own a house)
    async fn owner_id(&self) -> Option<ID> {
        self.actor.owner_id.map(to_id)
    }
    /// a staff account (it may also be an owner)
    async fn is_staff(&self) -> bool {
        self.actor.is_staff
    }
    /// permission codes the caller holds, in any scope
    async fn permissions(&self) -> Vec<String> {
        let mut p: Vec<String> = self.actor.perms.keys().map(|p| p.code().to_owned()).collect();
        p.sort();
        p
    }
    /// the caller's role grants
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoleAssignment>> {
        let rows = load_one::<GrantsLoader>(ctx, self.actor.user_id).await?;
        Ok(rows.unwrap_or_default().into_iter().map(RoleAssignment::from).collect())
    }
    /// Function menu for the app, filtered by permission; empty until the initial password is changed.
    async fn menu(&self, ctx: &Context<'_>) -> Vec<MenuEntry> {
        if self.actor.must_change_password {
            return Vec::new();
        }
        let locale = ctx.locale();
        MENU.iter()
            .filter(|m| self.actor.has(m.perm))
            .map(|m| MenuEntry { code: m.code.into(), title: m.title.get(locale).into() })
            .collect()
    }
}

pub async fn load_user(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<User> {
    let actor = ctx.actor()?;
    let a = service::user(ctx.state(), &actor, id).await?;
    Ok(User::view(a, &actor))
}

pub async fn load_role(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Role> {
    let actor = ctx.actor()?;
    Ok(service::role(ctx.state(), &actor, id).await?.into())
}

pub async fn load_grant(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<RoleAssignment> {
    let actor = ctx.actor()?;
    Ok(service::grant(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The account a user mutation changed.
    UserPayload, user: User, load_user, "the account as it is now"
);
crate::object_payload!(
    /// The role a role mutation changed.
    RolePayload, role: Role, load_role, "the role as it is now"
);
crate::object_payload!(
    /// The grant `assignRole` made or changed.
    AssignRolePayload, assignment: RoleAssignment, load_grant, "the grant as it is now"
);

// ---- queries --------------------------------------------------------------------------------

#[derive(Default)]
pub struct RbacQuery;

#[Object]
impl RbacQuery {
    /// The signed-in user: account, permissions, roles and menu.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        Ok(Me { actor: ctx.actor()? })
    }

    /// Staff accounts the caller may see (`user:read`), in creation order.
    #[graphql(guard = "Perm::UserRead")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "part of the name, username or phone")] search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<User>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let rows = service::users(ctx.state(), &actor, search.as_deref(), page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| r.id, |r| User::view(r, &actor)))
    }

    /// An account: the caller's own, or a staff account within `user:read`.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<User> {
        load_user(ctx, parse_id("id", &id)?).await
    }

    /// The company's roles (`role:read`), built-in ones first by creation.
    #[graphql(guard = "Perm::RoleRead")]
    async fn roles(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Role>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let rows = service::roles(ctx.state(), &actor, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| r.id, Role::from))
    }

    /// Every permission code with its name, for building custom roles (`role:read`).
    #[graphql(guard = "Perm::RoleRead")]
    async fn permissions(&self, ctx: &Context<'_>) -> Vec<PermissionInfo> {
        let locale = ctx.locale();
        Perm::ALL.iter().map(|p| PermissionInfo { code: p.code().into(), name: p.label().get(locale).into() }).collect()
    }
}

// ---- mutations ------------------------------------------------------------------------------

/// A new staff account.
#[derive(InputObject)]
pub struct CreateStaffUserInput {
    /// 3-32 letters, digits, `_ . -`; not all digits; unique on the server
    pub username: String,
    /// the person's name
    pub name: String,
    /// mobile number (optional); one account per phone in a company
    pub phone: Option<String>,
    /// must be changed at the first sign-in
    pub initial_password: String,
    /// makes a retry apply once (see `serviceConfig.clientMutationRetentionDays`)
    pub client_mutation_id: Option<String>,
}

/// Changes a staff account.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// the account to change
    pub user_id: ID,
    /// a new name
    pub name: Option<String>,
    /// a new mobile number; an empty string clears it
    pub phone: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Enables or disables an account.
#[derive(InputObject)]
pub struct SetUserStatusInput {
    /// the account to enable or disable
    pub user_id: ID,
    /// false disables the account and ends its sessions at once
    pub active: bool,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// A new custom role.
#[derive(InputObject)]
pub struct CreateRoleInput {
    /// 2-32 lowercase letters, digits or `_`, starting with a letter
    pub code: String,
    /// the name users see
    pub name: String,
    /// permission codes, each held company-wide by the caller
    pub permissions: Vec<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Changes a custom role.
#[derive(InputObject)]
pub struct UpdateRoleInput {
    /// a custom role (built-in roles cannot change)
    pub role_id: ID,
    /// a new name
    pub name: Option<String>,
    /// the complete new permission list
    pub permissions: Option<Vec<String>>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Deletes a custom role.
#[derive(InputObject)]
pub struct DeleteRoleInput {
    /// a custom role nobody holds
    pub role_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Grants a role with a data scope.
#[derive(InputObject)]
pub struct AssignRoleInput {
    /// the account to grant the role to
    pub user_id: ID,
    /// the role (not the owner role: it follows owner records)
    pub role_id: ID,
    /// how far the grant reaches; never wider than the caller's own
    pub scope: DataScope,
    /// required when scope is PROJECTS
    pub project_ids: Option<Vec<ID>>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// Takes a grant back.
#[derive(InputObject)]
pub struct RevokeRoleInput {
    /// the grant (`RoleAssignment.id`)
    pub assignment_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct RbacMutation;

#[Object]
impl RbacMutation {
    /// A staff account with an initial password to be changed at the first sign-in.
    #[graphql(guard = "Perm::UserWrite")]
    async fn create_staff_user(
        &self,
        ctx: &Context<'_>,
        input: CreateStaffUserInput,
    ) -> async_graphql::Result<UserPayload> {
        spend_expensive(ctx)?;
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::create_staff_user(
            ctx.state(),
            &actor,
            &retry,
            NewStaff {
                username: &input.username,
                name: &input.name,
                phone: input.phone.as_deref(),
                initial_password: &input.initial_password,
                must_change_password: true,
            },
        )
        .await?;
        Ok(UserPayload::new(input.client_mutation_id, id))
    }

    /// Name and phone of a staff account within the caller's `user:write` scope.
    #[graphql(guard = "Perm::UserWrite")]
    async fn update_user(&self, ctx: &Context<'_>, input: UpdateUserInput) -> async_graphql::Result<UserPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("userId", &input.user_id)?;
        service::update_user(ctx.state(), &actor, &retry, id, input.name.as_deref(), input.phone.as_deref()).await?;
        Ok(UserPayload::new(input.client_mutation_id, id))
    }

    /// Disabling ends every session of the user at once, on every replica.
    #[graphql(guard = "Perm::UserWrite")]
    async fn set_user_status(
        &self,
        ctx: &Context<'_>,
        input: SetUserStatusInput,
    ) -> async_graphql::Result<UserPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("userId", &input.user_id)?;
        service::set_user_status(ctx.state(), &actor, &retry, id, input.active).await?;
        Ok(UserPayload::new(input.client_mutation_id, id))
    }

    /// A custom role (`role:write` company-wide).
    #[graphql(guard = "Perm::RoleWrite")]
    async fn create_role(&self, ctx: &Context<'_>, input: CreateRoleInput) -> async_graphql::Result<RolePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id =
            service::create_role(ctx.state(), &actor, &retry, &input.code, &input.name, &input.permissions).await?;
        Ok(RolePayload::new(input.client_mutation_id, id))
    }

    /// Renames a custom role or replaces its permissions; holders see the change at once.
    #[graphql(guard = "Perm::RoleWrite")]
    async fn update_role(&self, ctx: &Context<'_>, input: UpdateRoleInput) -> async_graphql::Result<RolePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("roleId", &input.role_id)?;
        service::update_role(ctx.state(), &actor, &retry, id, input.name.as_deref(), input.permissions.as_deref())
            .await?;
        Ok(RolePayload::new(input.client_mutation_id, id))
    }

    /// Deletes a custom role nobody holds.
    #[graphql(guard = "Perm::RoleWrite")]
    async fn delete_role(&self, ctx: &Context<'_>, input: DeleteRoleInput) -> async_graphql::Result<DeletedPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::delete_role(ctx.state(), &actor, &retry, parse_id("roleId", &input.role_id)?).await?;
        Ok(DeletedPayload::new(input.client_mutation_id, id))
    }

    /// Grants a role with a data scope; never more than the caller holds.
    #[graphql(guard = "Perm::RoleWrite")]
    async fn assign_role(&self, ctx: &Context<'_>, input: AssignRoleInput) -> async_graphql::Result<AssignRolePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::assign_role(
            ctx.state(),
            &actor,
            &retry,
            GrantInput {
                user_id: parse_id("userId", &input.user_id)?,
                role_id: parse_id("roleId", &input.role_id)?,
                scope: input.scope.into(),
                project_ids: parse_ids("projectIds", input.project_ids.as_deref().unwrap_or_default())?,
            },
        )
        .await?;
        Ok(AssignRolePayload::new(input.client_mutation_id, id))
    }

    /// Takes a grant back; the user's permissions change at once.
    #[graphql(guard = "Perm::RoleWrite")]
    async fn revoke_role(&self, ctx: &Context<'_>, input: RevokeRoleInput) -> async_graphql::Result<DeletedPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id =
            service::revoke_role(ctx.state(), &actor, &retry, parse_id("assignmentId", &input.assignment_id)?).await?;
        Ok(DeletedPayload::new(input.client_mutation_id, id))
    }
}

// ---- subscription ---------------------------------------------------------------------------

/// What happened to the signed-in account.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AccountEventKind {
    /// roles or permissions changed: fetch `me` again
    PermissionsChanged,
    /// signed out, password changed or account disabled: sign in again
    SessionRevoked,
}

/// A change to the signed-in account.
#[derive(SimpleObject)]
pub struct AccountEvent {
    /// what happened
    pub kind: AccountEventKind,
    /// when the server saw it
    pub at: DateTime<Utc>,
}

#[derive(Default)]
pub struct AccountSubscription;

#[Subscription]
impl AccountSubscription {
    /// Changes to the signed-in account, pushed live from whichever replica made them.
    async fn account_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = AccountEvent> + use<>> {
        let actor = ctx.actor()?;
        let state = ctx.state();
        let user = actor.user_id;
        let rx = state.events.subscribe();
        let clock = state.clock.clone();
        Ok(futures_util::stream::unfold(rx, move |mut rx| {
            let clock = clock.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(ev) if ev.user_id == Some(user) => {
                            let kind = match ev.kind.as_str() {
                                service::EVENT_SESSION_REVOKED => AccountEventKind::SessionRevoked,
                                service::EVENT_PERMISSIONS_CHANGED => AccountEventKind::PermissionsChanged,
                                _ => continue,
                            };
                            return Some((AccountEvent { kind, at: clock.now() }, rx));
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        }))
    }
}

// ---- approvals --------------------------------------------------------------------------

/// 审批事项
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::kit::approval::ApprovalKind")]
pub enum ApprovalKind {
    /// 滞纳金减免: a bill's late fee waived
    LateFeeWaiver,
    /// 退款: (part of) a payment paid back (the subject is the payment)
    Refund,
    /// 账单调整: an amount added to or taken off a bill (the subject is the bill)
    BillAdjustment,
    /// 空置房优惠: a share of the property fee off for some months (the subject is the house)
    VacancyRelief,
    /// 补签 / 请假: an attendance correction or leave (the subject is the attendance request)
    Attendance,
}

/// 审批状态
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::kit::approval::ApprovalStatus")]
pub enum ApprovalStatus {
    /// waiting for a decision
    Pending,
    /// approved: the change was applied
    Approved,
    /// rejected, with the reason
    Rejected,
}

/// 审批单 a request waiting for (or given) a decision by someone else.
#[derive(SimpleObject)]
pub struct Approval {
    /// the request's id
    pub id: ID,
    /// its project
    pub project_id: Option<ID>,
    /// what is asked
    pub kind: ApprovalKind,
    /// the row it is about (a bill for LATE_FEE_WAIVER)
    pub subject_id: ID,
    /// what was asked, as the asking module recorded it (e.g. the late fee then)
    pub detail: async_graphql::Json<serde_json::Value>,
    /// why
    pub reason: String,
    /// the permission a decider holds over the project
    pub approver_permission: String,
    /// pending, approved, rejected
    pub status: ApprovalStatus,
    /// who asked
    pub requested_by: ID,
    /// when
    pub requested_at: DateTime<Utc>,
    /// who decided (never who asked)
    pub decided_by: Option<ID>,
    /// when
    pub decided_at: Option<DateTime<Utc>>,
    /// the decider's note (required to reject)
    pub decision_note: Option<String>,
}

impl From<crate::kit::approval::Approval> for Approval {
    fn from(a: crate::kit::approval::Approval) -> Self {
        Approval {
            id: to_id(a.id),
            project_id: a.project_id.map(to_id),
            kind: a.kind.into(),
            subject_id: to_id(a.subject_id),
            detail: async_graphql::Json(a.payload),
            reason: a.reason,
            approver_permission: a.approver_perm,
            status: a.status.into(),
            requested_by: to_id(a.requested_by),
            requested_at: a.requested_at,
            decided_by: a.decided_by.map(to_id),
            decided_at: a.decided_at,
            decision_note: a.decision_note,
        }
    }
}

/// One request: the one who asked, or someone who may decide it.
pub async fn load_approval(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Approval> {
    let actor = ctx.actor()?;
    Ok(service::approval(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The request a mutation filed or decided.
    ApprovalPayload, approval: Approval, load_approval, "the request as it is now"
);

/// A decision on a request.
#[derive(InputObject)]
pub struct DecideApprovalInput {
    /// the request
    pub id: ID,
    /// true: approve and apply; false: reject (with a note)
    pub approve: bool,
    /// the decider's note, up to 500 characters; required to reject
    pub note: Option<String>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct ApprovalQuery;

#[Object]
impl ApprovalQuery {
    /// 审批: requests the caller asked or may decide (optionally of one status), in id order.
    async fn approvals(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only requests of this status")] status: Option<ApprovalStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Approval>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let rows = service::approvals(ctx.state(), &actor, status.map(Into::into), page.after, page.fetch()).await?;
        Ok(page.connection(rows, |a| a.id, Approval::from))
    }

    /// One request: the one who asked, or someone who may decide it.
    async fn approval(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Approval> {
        load_approval(ctx, parse_id("id", &id)?).await
    }
}

#[derive(Default)]
pub struct ApprovalMutation;

#[Object]
impl ApprovalMutation {
    /// 审批 (the request's approver permission over its project; never one's own request):
    /// approve (the change is applied in the same transaction) or reject with a note.
    async fn decide_approval(
        &self,
        ctx: &Context<'_>,
        input: DecideApprovalInput,
    ) -> async_graphql::Result<ApprovalPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = parse_id("id", &input.id)?;
        let id =
            service::decide_approval(ctx.state(), &actor, &retry, id, input.approve, input.note.as_deref()).await?;
        Ok(ApprovalPayload::new(input.client_mutation_id, id))
    }
}
