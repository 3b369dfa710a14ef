//! Users, roles, grants and `me`.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use uuid::Uuid;

use super::model::{MENU, Perm};
use super::repo::{AssignmentRow, RoleRow, UserRow};
use super::service::{self, GrantInput, NewStaff};
use crate::app::AppState;
use crate::error::{AppError, Msg};
use crate::graphql::{Conn, CtxExt, Loaders, Page};
use crate::rbac::model::Actor;
use crate::types::Phone;

pub fn parse_id(field: &'static str, id: &ID) -> Result<Uuid, AppError> {
    Uuid::parse_str(id).map_err(|_| AppError::validation(field, Msg::new("ID格式无效", "Invalid ID")))
}

pub fn parse_ids(field: &'static str, ids: &[ID]) -> Result<Vec<Uuid>, AppError> {
    ids.iter().map(|i| parse_id(field, i)).collect()
}

/// 用户 an account: staff or owner.
pub struct User {
    row: UserRow,
    phone: Option<String>,
}

impl User {
    /// The caller's own account: nothing masked.
    pub fn own(row: UserRow) -> Self {
        User { phone: row.phone.clone(), row }
    }

    pub fn view(row: UserRow, actor: &Actor) -> Self {
        let phone = match &row.phone {
            Some(p) if actor.unmask_pii() || actor.user_id == row.id => Some(p.clone()),
            Some(p) => Some(Phone::masked(p)),
            None => None,
        };
        User { row, phone }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    /// an owner registered by the office who has not activated the app yet
    Pending,
    Disabled,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Staff,
    Owner,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    async fn username(&self) -> Option<&str> {
        self.row.username.as_deref()
    }
    async fn name(&self) -> &str {
        &self.row.name
    }
    /// masked (138****0001) unless it is the caller's own or the caller holds `pii:read`
    async fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }
    async fn kind(&self) -> AccountKind {
        if self.row.kind == "owner" { AccountKind::Owner } else { AccountKind::Staff }
    }
    async fn status(&self) -> UserStatus {
        match self.row.status.as_str() {
            "active" => UserStatus::Active,
            "pending" => UserStatus::Pending,
            _ => UserStatus::Disabled,
        }
    }
    async fn must_change_password(&self) -> bool {
        self.row.must_change_password
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    async fn last_sign_in_at(&self) -> Option<DateTime<Utc>> {
        self.row.last_sign_in_at
    }
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoleAssignment>> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .assignments
            .load_one(self.row.id)
            .await
            .map_err(crate::graphql::loader_error)?;
        Ok(rows.unwrap_or_default().into_iter().map(RoleAssignment).collect())
    }
}

pub struct AssignmentsLoader(pub AppState);

impl Loader<Uuid> for AssignmentsLoader {
    type Value = Vec<AssignmentRow>;
    type Error = String;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::assignments_of_users(&self.0, keys).await.map_err(|e| e.to_string())?;
        Ok(crate::graphql::group_by(rows, |r| r.user_id))
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum DataScope {
    /// 全公司
    Company,
    /// 指定项目
    Projects,
    /// 仅本人
    Own,
}

/// A role granted to a user with a data scope.
pub struct RoleAssignment(AssignmentRow);

#[Object]
impl RoleAssignment {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn role_id(&self) -> ID {
        ID(self.0.role_id.to_string())
    }
    async fn role_code(&self) -> &str {
        &self.0.role_code
    }
    async fn role_name(&self) -> &str {
        &self.0.role_name
    }
    async fn scope(&self) -> DataScope {
        match self.0.scope.as_str() {
            "company" => DataScope::Company,
            "projects" => DataScope::Projects,
            _ => DataScope::Own,
        }
    }
    async fn project_ids(&self) -> Vec<ID> {
        self.0.project_ids.iter().map(|p| ID(p.to_string())).collect()
    }
}

pub struct Role(RoleRow);

#[Object]
impl Role {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn builtin(&self) -> bool {
        self.0.builtin
    }
    async fn permissions(&self) -> &[String] {
        &self.0.permissions
    }
}

#[derive(SimpleObject)]
pub struct PermissionInfo {
    pub code: String,
    pub name: String,
}

#[derive(SimpleObject)]
pub struct MenuEntry {
    pub code: String,
    pub title: String,
}

/// The signed-in user, what they may do, and the menu the app shows them.
pub struct Me {
    actor: std::sync::Arc<Actor>,
}

#[Object]
impl Me {
    async fn user(&self) -> User {
        User::own(self.actor.account.clone())
    }
    async fn company_id(&self) -> ID {
        ID(self.actor.company_id.to_string())
    }
    async fn owner_id(&self) -> Option<ID> {
        self.actor.owner_id.map(|o| ID(o.to_string()))
    }
    async fn permissions(&self) -> Vec<String> {
        let mut p: Vec<String> = self.actor.perms.keys().map(|p| p.code().to_owned()).collect();
        p.sort();
        p
    }
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoleAssignment>> {
        let rows = ctx
            .data_unchecked::<Loaders>()
            .assignments
            .load_one(self.actor.user_id)
            .await
            .map_err(crate::graphql::loader_error)?;
        Ok(rows.unwrap_or_default().into_iter().map(RoleAssignment).collect())
    }
    /// Function menu for the app, filtered by permission; empty until the initial password is changed.
    async fn menu(&self, ctx: &Context<'_>) -> Vec<MenuEntry> {
        if self.actor.must_change_password {
            return Vec::new();
        }
        let locale = ctx.req().locale;
        MENU.iter()
            .filter(|m| self.actor.has(m.perm))
            .map(|m| MenuEntry { code: m.code.into(), title: m.title.get(locale).into() })
            .collect()
    }
}

#[derive(Default)]
pub struct RbacQuery;

#[Object]
impl RbacQuery {
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        Ok(Me { actor: ctx.actor()? })
    }

    /// Staff users the caller may see.
    #[graphql(guard = "Perm::UserRead")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<User>> {
        let actor = ctx.actor()?;
        let page = Page::new(ctx, first, after)?;
        let rows = service::users(ctx.state(), &actor, search.as_deref(), page.after, page.fetch()).await?;
        Ok(page.connection(rows, |r| r.id, |r| User::view(r, &actor)))
    }

    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<User> {
        let actor = ctx.actor()?;
        let row = service::user(ctx.state(), &actor, parse_id("id", &id)?).await?;
        Ok(User::view(row, &actor))
    }

    #[graphql(guard = "Perm::RoleRead")]
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Role>> {
        let actor = ctx.actor()?;
        Ok(service::roles(ctx.state(), &actor).await?.into_iter().map(Role).collect())
    }

    /// Every permission code with its name, for building custom roles.
    #[graphql(guard = "Perm::RoleRead")]
    async fn permissions(&self, ctx: &Context<'_>) -> Vec<PermissionInfo> {
        let locale = ctx.req().locale;
        Perm::ALL.iter().map(|p| PermissionInfo { code: p.code().into(), name: p.label().get(locale).into() }).collect()
    }
}

#[derive(InputObject)]
pub struct CreateStaffUserInput {
    pub username: String,
    pub name: String,
    pub phone: Option<String>,
    /// must be changed at the first sign-in
    pub initial_password: String,
}

#[derive(InputObject)]
pub struct UpdateUserInput {
    pub user_id: ID,
    pub name: Option<String>,
    /// empty string clears it
    pub phone: Option<String>,
}

#[derive(InputObject)]
pub struct SetUserStatusInput {
    pub user_id: ID,
    pub active: bool,
}

#[derive(InputObject)]
pub struct ResetUserPasswordInput {
    pub user_id: ID,
    pub initial_password: String,
}

#[derive(SimpleObject)]
pub struct UserPayload {
    pub user: User,
}

#[derive(InputObject)]
pub struct CreateRoleInput {
    pub code: String,
    pub name: String,
    pub permissions: Vec<String>,
}

#[derive(InputObject)]
pub struct UpdateRoleInput {
    pub role_id: ID,
    pub name: Option<String>,
    pub permissions: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct DeleteRoleInput {
    pub role_id: ID,
}

#[derive(SimpleObject)]
pub struct RolePayload {
    pub role: Role,
}

#[derive(SimpleObject)]
pub struct DeletedPayload {
    pub id: ID,
}

#[derive(InputObject)]
pub struct AssignRoleInput {
    pub user_id: ID,
    pub role_id: ID,
    pub scope: DataScope,
    /// required when scope is PROJECTS
    pub project_ids: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct RevokeRoleInput {
    pub assignment_id: ID,
}

#[derive(SimpleObject)]
pub struct AssignRolePayload {
    pub assignment: RoleAssignment,
}

#[derive(Default)]
pub struct RbacMutation;

#[Object]
impl RbacMutation {
    #[graphql(guard = "Perm::UserWrite")]
    async fn create_staff_user(
        &self,
        ctx: &Context<'_>,
        input: CreateStaffUserInput,
    ) -> async_graphql::Result<UserPayload> {
        let actor = ctx.actor()?;
        let row = service::create_staff_user(
            ctx.state(),
            &actor,
            NewStaff {
                username: &input.username,
                name: &input.name,
                phone: input.phone.as_deref(),
                initial_password: &input.initial_password,
                must_change_password: true,
            },
        )
        .await?;
        Ok(UserPayload { user: User::view(row, &actor) })
    }

    #[graphql(guard = "Perm::UserWrite")]
    async fn update_user(&self, ctx: &Context<'_>, input: UpdateUserInput) -> async_graphql::Result<UserPayload> {
        let actor = ctx.actor()?;
        let row = service::update_user(
            ctx.state(),
            &actor,
            parse_id("userId", &input.user_id)?,
            input.name.as_deref(),
            input.phone.as_deref(),
        )
        .await?;
        Ok(UserPayload { user: User::view(row, &actor) })
    }

    /// Disabling ends every session of the user at once.
    #[graphql(guard = "Perm::UserWrite")]
    async fn set_user_status(
        &self,
        ctx: &Context<'_>,
        input: SetUserStatusInput,
    ) -> async_graphql::Result<UserPayload> {
        let actor = ctx.actor()?;
        let row =
            service::set_user_status(ctx.state(), &actor, parse_id("userId", &input.user_id)?, input.active).await?;
        Ok(UserPayload { user: User::view(row, &actor) })
    }

    #[graphql(guard = "Perm::UserWrite")]
    async fn reset_user_password(
        &self,
        ctx: &Context<'_>,
        input: ResetUserPasswordInput,
    ) -> async_graphql::Result<UserPayload> {
        let actor = ctx.actor()?;
        let row = service::reset_user_password(
            ctx.state(),
            &actor,
            parse_id("userId", &input.user_id)?,
            &input.initial_password,
        )
        .await?;
        Ok(UserPayload { user: User::view(row, &actor) })
    }

    #[graphql(guard = "Perm::RoleWrite")]
    async fn create_role(&self, ctx: &Context<'_>, input: CreateRoleInput) -> async_graphql::Result<RolePayload> {
        let actor = ctx.actor()?;
        let role = service::create_role(ctx.state(), &actor, &input.code, &input.name, &input.permissions).await?;
        Ok(RolePayload { role: Role(role) })
    }

    #[graphql(guard = "Perm::RoleWrite")]
    async fn update_role(&self, ctx: &Context<'_>, input: UpdateRoleInput) -> async_graphql::Result<RolePayload> {
        let actor = ctx.actor()?;
        let role = service::update_role(
            ctx.state(),
            &actor,
            parse_id("roleId", &input.role_id)?,
            input.name.as_deref(),
            input.permissions.as_deref(),
        )
        .await?;
        Ok(RolePayload { role: Role(role) })
    }

    #[graphql(guard = "Perm::RoleWrite")]
    async fn delete_role(&self, ctx: &Context<'_>, input: DeleteRoleInput) -> async_graphql::Result<DeletedPayload> {
        let actor = ctx.actor()?;
        service::delete_role(ctx.state(), &actor, parse_id("roleId", &input.role_id)?).await?;
        Ok(DeletedPayload { id: input.role_id })
    }

    /// Grants a role with a data scope; never more than the caller holds.
    #[graphql(guard = "Perm::RoleWrite")]
    async fn assign_role(&self, ctx: &Context<'_>, input: AssignRoleInput) -> async_graphql::Result<AssignRolePayload> {
        let actor = ctx.actor()?;
        let scope = match input.scope {
            DataScope::Company => "company",
            DataScope::Projects => "projects",
            DataScope::Own => "own",
        };
        let row = service::assign_role(
            ctx.state(),
            &actor,
            GrantInput {
                user_id: parse_id("userId", &input.user_id)?,
                role_id: parse_id("roleId", &input.role_id)?,
                scope: scope.into(),
                project_ids: parse_ids("projectIds", input.project_ids.as_deref().unwrap_or_default())?,
            },
        )
        .await?;
        Ok(AssignRolePayload { assignment: RoleAssignment(row) })
    }

    #[graphql(guard = "Perm::RoleWrite")]
    async fn revoke_role(&self, ctx: &Context<'_>, input: RevokeRoleInput) -> async_graphql::Result<DeletedPayload> {
        let actor = ctx.actor()?;
        service::revoke_role(ctx.state(), &actor, parse_id("assignmentId", &input.assignment_id)?).await?;
        Ok(DeletedPayload { id: input.assignment_id })
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AccountEventKind {
    /// roles or permissions changed: fetch `me` again
    PermissionsChanged,
    /// password changed or account disabled: sign in again
    SessionRevoked,
}

#[derive(SimpleObject)]
pub struct AccountEvent {
    pub kind: AccountEventKind,
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
