//! Roles, grants and staff accounts, and loading the `Actor` of a request. Grants can
//! never exceed what the granting user holds: no permission they lack, no wider scope.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::model::{Actor, BUILTIN_ROLES, Perm, Scope, UserKind};
use super::repo::{self, AssignmentRow, NewUser, RoleRow, UserRow};
use crate::app::AppState;
use crate::error::{AppError, AppResult, Msg};
use crate::events::Event;
use crate::types::{self, NewPassword, Phone};

/// Actors cached for a few seconds: the hot path (every request) skips two queries.
/// Changes to roles and accounts invalidate the entry here and, through the event bus,
/// on every other replica.
#[derive(Clone, Default)]
pub struct ActorCache(Arc<RwLock<HashMap<Uuid, CachedActor>>>);

type CachedActor = (Instant, Arc<Actor>);

const ACTOR_TTL: Duration = Duration::from_secs(30);
const ACTOR_CACHE_MAX: usize = 100_000;

impl ActorCache {
    fn get(&self, id: Uuid) -> Option<Arc<Actor>> {
        let map = self.0.read().ok()?;
        map.get(&id).filter(|(at, _)| at.elapsed() < ACTOR_TTL).map(|(_, a)| a.clone())
    }

    fn put(&self, actor: Arc<Actor>) {
        if let Ok(mut map) = self.0.write() {
            if map.len() >= ACTOR_CACHE_MAX {
                map.clear();
            }
            map.insert(actor.user_id, (Instant::now(), actor));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut map) = self.0.write() {
            map.clear();
        }
    }

    pub fn invalidate(&self, id: Uuid) {
        if let Ok(mut map) = self.0.write() {
            map.remove(&id);
        }
    }
}

pub const EVENT_PERMISSIONS_CHANGED: &str = "PERMISSIONS_CHANGED";
pub const EVENT_SESSION_REVOKED: &str = "SESSION_REVOKED";

/// Tells every replica (and the user's connected apps) that an account changed.
pub async fn account_changed(state: &AppState, user_id: Uuid, kind: &str) {
    state.actors.invalidate(user_id);
    let ev = Event { user_id: Some(user_id), kind: kind.to_owned(), payload: serde_json::Value::Null };
    if let Err(e) = state.events.publish(&ev).await {
        tracing::warn!(error = %e, "account event not published");
    }
}

/// Keeps this replica's actor cache honest: account events raised on any replica
/// invalidate the cached actor here.
pub async fn follow_account_events(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut rx = state.events.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            ev = rx.recv() => match ev {
                Ok(ev) if ev.kind == EVENT_PERMISSIONS_CHANGED || ev.kind == EVENT_SESSION_REVOKED => {
                    if let Some(u) = ev.user_id {
                        state.actors.invalidate(u);
                    }
                }
                Ok(_) => {}
                // missed events: forget everything rather than serve stale permissions
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => state.actors.clear(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

fn account_disabled() -> AppError {
    AppError::Unauthenticated {
        reason: "ACCOUNT_DISABLED",
        msg: Msg::new("账号不可用，请重新登录", "This account is not active; sign in again"),
    }
}

/// The actor behind a verified access token.
pub async fn load_actor(state: &AppState, user_id: Uuid, company_id: Uuid) -> AppResult<Arc<Actor>> {
    if let Some(a) = state.actors.get(user_id) {
        return if a.company_id == company_id { Ok(a) } else { Err(account_disabled()) };
    }
    let row = repo::actor_user(&state.db, user_id).await?.ok_or_else(account_disabled)?;
    if row.user.status != "active" || row.user.company_id != company_id {
        return Err(account_disabled());
    }
    let assignments = repo::assignments_of(&state.db, user_id).await?;
    let own_projects = repo::own_projects(&state.db, user_id).await?.into_iter().collect();
    let actor = Arc::new(Actor {
        user_id,
        company_id,
        kind: UserKind::parse(&row.user.kind),
        name: row.user.name.clone(),
        owner_id: row.owner_id,
        own_projects,
        perms: permissions_of(&assignments),
        must_change_password: row.user.must_change_password,
        loaded_at: state.clock.now(),
        account: row.user,
    });
    state.actors.put(actor.clone());
    Ok(actor)
}

pub fn scope_of(a: &AssignmentRow) -> Scope {
    match a.scope.as_str() {
        "company" => Scope::Company,
        "projects" => Scope::Projects(a.project_ids.iter().copied().collect()),
        _ => Scope::Own,
    }
}

fn permissions_of(assignments: &[AssignmentRow]) -> HashMap<Perm, Scope> {
    let mut perms: HashMap<Perm, Scope> = HashMap::new();
    for a in assignments {
        let scope = scope_of(a);
        for p in a.permissions.iter().filter_map(|c| Perm::parse(c)) {
            let merged = match perms.remove(&p) {
                Some(s) => s.merge(scope.clone()),
                None => scope.clone(),
            };
            perms.insert(p, merged);
        }
    }
    perms
}

/// Creates the built-in roles of a company (idempotent).
pub async fn ensure_builtin_roles(tx: &mut sqlx::PgConnection, company_id: Uuid) -> AppResult<()> {
    for b in BUILTIN_ROLES {
        repo::insert_role(
            tx,
            &RoleRow {
                id: Uuid::now_v7(),
                company_id,
                code: b.code.to_owned(),
                name: b.name.to_owned(),
                builtin: true,
                permissions: b.permission_codes(),
            },
        )
        .await?;
    }
    Ok(())
}

/// Brings the built-in roles of every company up to the current permission list
/// (modules add permissions; `wuye migrate` runs this).
pub async fn sync_builtin_roles(db: &sqlx::PgPool) -> AppResult<()> {
    for b in BUILTIN_ROLES {
        repo::set_builtin_permissions(db, b.code, &b.permission_codes()).await?;
    }
    Ok(())
}

pub async fn audit(
    tx: &mut sqlx::PgConnection,
    actor: &Actor,
    action: &str,
    entity: &str,
    entity_id: Option<Uuid>,
    detail: serde_json::Value,
) -> AppResult<()> {
    repo::insert_audit(tx, actor.company_id, Some(actor.user_id), action, entity, entity_id, detail).await?;
    Ok(())
}

// ---- roles -------------------------------------------------------------------------

pub async fn roles(state: &AppState, actor: &Actor) -> AppResult<Vec<RoleRow>> {
    actor.require(Perm::RoleRead)?;
    Ok(repo::list_roles(&state.db, actor.company_id).await?)
}

/// Known permission codes, each of which the actor holds company-wide: roles are
/// company-wide objects, so only company-wide holders may put a permission into one.
fn grantable_permissions(actor: &Actor, codes: &[String]) -> AppResult<Vec<String>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for c in codes {
        let p = Perm::parse(c.trim()).ok_or_else(|| {
            AppError::validation(
                "permissions",
                Msg::owned(format!("未知的权限编码：{c}"), format!("Unknown permission code: {c}")),
            )
        })?;
        if actor.perms.get(&p) != Some(&Scope::Company) {
            return Err(AppError::Forbidden {
                reason: "CANNOT_GRANT",
                msg: Msg::owned(
                    format!("不能授予自己没有的权限：{}", p.code()),
                    format!("You cannot grant a permission you do not hold company-wide: {}", p.code()),
                ),
            });
        }
        if seen.insert(p) {
            out.push(p.code().to_owned());
        }
    }
    out.sort();
    Ok(out)
}

fn role_code(input: &str) -> AppResult<String> {
    let c = input.trim().to_ascii_lowercase();
    let ok = (2..=32).contains(&c.len())
        && c.starts_with(|ch: char| ch.is_ascii_lowercase())
        && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
    if ok {
        Ok(c)
    } else {
        Err(AppError::validation(
            "code",
            Msg::new(
                "角色编码为2到32位小写字母、数字或下划线，字母开头",
                "A role code has 2-32 lowercase letters, digits or underscores, starting with a letter",
            ),
        ))
    }
}

pub async fn create_role(
    state: &AppState,
    actor: &Actor,
    code: &str,
    name: &str,
    perms: &[String],
) -> AppResult<RoleRow> {
    if actor.require(Perm::RoleWrite)? != &Scope::Company {
        return Err(AppError::forbidden());
    }
    let role = RoleRow {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        code: role_code(code)?,
        name: types::text("name", name, 50)?,
        builtin: false,
        permissions: grantable_permissions(actor, perms)?,
    };
    let mut tx = state.db.begin().await?;
    if repo::role_by_code(&mut *tx, actor.company_id, &role.code).await?.is_some() {
        return Err(AppError::Conflict {
            field: "code".into(),
            msg: Msg::new("角色编码已存在", "Role code already exists"),
        });
    }
    repo::insert_role(&mut tx, &role).await?;
    audit(
        &mut tx,
        actor,
        "role.create",
        "role",
        Some(role.id),
        serde_json::json!({ "code": role.code, "permissions": role.permissions }),
    )
    .await?;
    tx.commit().await?;
    Ok(role)
}

fn builtin_locked() -> AppError {
    AppError::validation("id", Msg::new("内置角色不能修改或删除", "Built-in roles cannot be changed or deleted"))
}

pub async fn update_role(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    name: Option<&str>,
    perms: Option<&[String]>,
) -> AppResult<RoleRow> {
    if actor.require(Perm::RoleWrite)? != &Scope::Company {
        return Err(AppError::forbidden());
    }
    let mut tx = state.db.begin().await?;
    let mut role = repo::get_role(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("role"))?;
    if role.builtin {
        return Err(builtin_locked());
    }
    if let Some(n) = name {
        role.name = types::text("name", n, 50)?;
    }
    if let Some(p) = perms {
        role.permissions = grantable_permissions(actor, p)?;
    }
    repo::update_role(&mut tx, &role).await?;
    audit(&mut tx, actor, "role.update", "role", Some(role.id), serde_json::json!({ "permissions": role.permissions }))
        .await?;
    let holders = repo::holders_of_role(&mut *tx, id).await?;
    tx.commit().await?;
    for h in holders {
        account_changed(state, h, EVENT_PERMISSIONS_CHANGED).await;
    }
    Ok(role)
}

pub async fn delete_role(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<()> {
    if actor.require(Perm::RoleWrite)? != &Scope::Company {
        return Err(AppError::forbidden());
    }
    let mut tx = state.db.begin().await?;
    let role = repo::get_role(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("role"))?;
    if role.builtin {
        return Err(builtin_locked());
    }
    if !repo::holders_of_role(&mut *tx, id).await?.is_empty() {
        return Err(AppError::Conflict {
            field: "id".into(),
            msg: Msg::new("角色仍有用户在使用，请先取消授权", "The role is still assigned; revoke it first"),
        });
    }
    repo::delete_role(&mut tx, actor.company_id, id).await?;
    audit(&mut tx, actor, "role.delete", "role", Some(id), serde_json::json!({ "code": role.code })).await?;
    tx.commit().await?;
    Ok(())
}

// ---- grants ------------------------------------------------------------------------

pub struct GrantInput {
    pub user_id: Uuid,
    pub role_id: Uuid,
    pub scope: String,
    pub project_ids: Vec<Uuid>,
}

pub async fn assign_role(state: &AppState, actor: &Actor, input: GrantInput) -> AppResult<AssignmentRow> {
    let my_scope = actor.require(Perm::RoleWrite)?.clone();
    let scope = match input.scope.as_str() {
        "company" => Scope::Company,
        "projects" if !input.project_ids.is_empty() => Scope::Projects(input.project_ids.iter().copied().collect()),
        "projects" => {
            return Err(AppError::validation(
                "projectIds",
                Msg::new("请至少选择一个项目", "Choose at least one project"),
            ));
        }
        "own" => Scope::Own,
        _ => return Err(AppError::validation("scope", Msg::new("数据范围无效", "Invalid data scope"))),
    };
    let mut tx = state.db.begin().await?;
    let role = repo::get_role(&mut *tx, actor.company_id, input.role_id).await?.ok_or(AppError::not_found("role"))?;
    let target = repo::get_user(&mut *tx, actor.company_id, input.user_id).await?.ok_or(AppError::not_found("user"))?;
    if (role.code == "owner") != (target.kind == "owner") {
        return Err(AppError::validation(
            "roleId",
            Msg::new(
                "业主角色只能授予业主，员工角色只能授予员工",
                "The owner role is for owners only; staff roles are for staff only",
            ),
        ));
    }
    if let Scope::Projects(ids) = &scope {
        let ids: Vec<Uuid> = ids.iter().copied().collect();
        if crate::org::service::count_projects(&mut tx, actor.company_id, &ids).await? != ids.len() as i64 {
            return Err(AppError::validation("projectIds", Msg::new("项目不存在", "Unknown project")));
        }
    }
    // No escalation: the grant's scope must lie within the granter's, for role:write and
    // for every permission the role carries.
    let within = my_scope.covers(&scope)
        && role
            .permissions
            .iter()
            .filter_map(|c| Perm::parse(c))
            .all(|p| actor.perms.get(&p).is_some_and(|s| s.covers(&scope)));
    if !within {
        return Err(AppError::Forbidden {
            reason: "CANNOT_GRANT",
            msg: Msg::new("不能授予超出自己权限或数据范围的角色", "You cannot grant more than you hold yourself"),
        });
    }
    let project_ids: Vec<Uuid> = match &scope {
        Scope::Projects(ids) => ids.iter().copied().collect(),
        _ => Vec::new(),
    };
    let id = repo::upsert_assignment(&mut tx, actor.company_id, target.id, role.id, scope.code(), &project_ids).await?;
    audit(
        &mut tx,
        actor,
        "role.assign",
        "user",
        Some(target.id),
        serde_json::json!({ "role": role.code, "scope": scope.code(), "projects": project_ids }),
    )
    .await?;
    let row = repo::get_assignment(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("role"))?;
    tx.commit().await?;
    account_changed(state, target.id, EVENT_PERMISSIONS_CHANGED).await;
    Ok(row)
}

pub async fn revoke_role(state: &AppState, actor: &Actor, assignment_id: Uuid) -> AppResult<()> {
    let my_scope = actor.require(Perm::RoleWrite)?.clone();
    let mut tx = state.db.begin().await?;
    let a =
        repo::get_assignment(&mut *tx, actor.company_id, assignment_id).await?.ok_or(AppError::not_found("role"))?;
    if !my_scope.covers(&scope_of(&a)) {
        return Err(AppError::forbidden());
    }
    repo::delete_assignment(&mut tx, actor.company_id, assignment_id).await?;
    audit(&mut tx, actor, "role.revoke", "user", Some(a.user_id), serde_json::json!({ "role": a.role_code })).await?;
    tx.commit().await?;
    account_changed(state, a.user_id, EVENT_PERMISSIONS_CHANGED).await;
    Ok(())
}

pub async fn assignments_of_users(state: &AppState, ids: &[Uuid]) -> AppResult<Vec<AssignmentRow>> {
    Ok(repo::assignments_of_users(&state.db, ids).await?)
}

// ---- staff accounts ----------------------------------------------------------------

fn username(input: &str) -> AppResult<String> {
    let u = input.trim().to_ascii_lowercase();
    let ok = (3..=32).contains(&u.len())
        && u.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !u.chars().all(|c| c.is_ascii_digit());
    if ok {
        Ok(u)
    } else {
        Err(AppError::validation(
            "username",
            Msg::new(
                "用户名为3到32位字母、数字、下划线、点或横线，且不能全为数字",
                "A username has 3-32 letters, digits, _ . or -, and is not all digits",
            ),
        ))
    }
}

/// The staff users `perm` lets the actor see.
async fn staff_in_scope(
    state: &AppState,
    actor: &Actor,
    perm: Perm,
    only: Option<Uuid>,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<UserRow>> {
    let (projects, only) = match actor.require(perm)? {
        Scope::Company => (None, only),
        Scope::Projects(ids) => (Some(ids.iter().copied().collect::<Vec<_>>()), only),
        Scope::Own => match only {
            Some(id) if id != actor.user_id => return Ok(Vec::new()),
            _ => (None, Some(actor.user_id)),
        },
    };
    Ok(repo::list_staff(&state.db, actor.company_id, projects.as_deref(), only, search, after, limit).await?)
}

pub async fn users(
    state: &AppState,
    actor: &Actor,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<UserRow>> {
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    staff_in_scope(state, actor, Perm::UserRead, None, search, after, limit as i64).await
}

pub async fn user(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<UserRow> {
    if id == actor.user_id {
        return repo::get_user(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("user"));
    }
    staff_in_scope(state, actor, Perm::UserRead, Some(id), None, None, 1)
        .await?
        .pop()
        .ok_or(AppError::not_found("user"))
}

async fn writable_user(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<UserRow> {
    staff_in_scope(state, actor, Perm::UserWrite, Some(id), None, None, 1)
        .await?
        .pop()
        .ok_or(AppError::not_found("user"))
}

pub struct NewStaff<'a> {
    pub username: &'a str,
    pub name: &'a str,
    pub phone: Option<&'a str>,
    pub initial_password: &'a str,
    /// true for accounts an admin creates; the demo seed sets false
    pub must_change_password: bool,
}

pub async fn create_staff_user(state: &AppState, actor: &Actor, input: NewStaff<'_>) -> AppResult<UserRow> {
    actor.require(Perm::UserWrite)?;
    let username = username(input.username)?;
    let name = types::text("name", input.name, 50)?;
    let phone = match input.phone.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Some(Phone::parse("phone", p)?),
        None => None,
    };
    let password = NewPassword::parse("initialPassword", input.initial_password)?;
    let hash = crate::auth::service::hash_password(state, password).await?;
    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    repo::insert_user(
        &mut tx,
        &NewUser {
            id,
            company_id: actor.company_id,
            kind: "staff",
            username: Some(&username),
            phone: phone.as_ref().map(Phone::as_str),
            name: &name,
            password_hash: Some(&hash),
            must_change_password: input.must_change_password,
            status: "active",
        },
    )
    .await?;
    audit(&mut tx, actor, "user.create", "user", Some(id), serde_json::json!({ "username": username })).await?;
    let row = repo::get_user(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("user"))?;
    tx.commit().await?;
    Ok(row)
}

pub async fn update_user(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    name: Option<&str>,
    phone: Option<&str>,
) -> AppResult<UserRow> {
    let current = writable_user(state, actor, id).await?;
    let name = match name {
        Some(n) => types::text("name", n, 50)?,
        None => current.name,
    };
    let phone = match phone.map(str::trim) {
        Some("") => None,
        Some(p) => Some(Phone::parse("phone", p)?.as_str().to_owned()),
        None => current.phone,
    };
    let mut tx = state.db.begin().await?;
    repo::update_user(&mut tx, actor.company_id, id, &name, phone.as_deref()).await?;
    audit(&mut tx, actor, "user.update", "user", Some(id), serde_json::json!({})).await?;
    let row = repo::get_user(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("user"))?;
    tx.commit().await?;
    state.actors.invalidate(id);
    Ok(row)
}

pub async fn set_user_status(state: &AppState, actor: &Actor, id: Uuid, active: bool) -> AppResult<UserRow> {
    writable_user(state, actor, id).await?;
    if id == actor.user_id && !active {
        return Err(AppError::validation(
            "userId",
            Msg::new("不能停用自己的账号", "You cannot disable your own account"),
        ));
    }
    let mut tx = state.db.begin().await?;
    repo::set_status(&mut tx, actor.company_id, id, if active { "active" } else { "disabled" }).await?;
    if !active {
        crate::auth::service::revoke_all_sessions(state, &mut tx, id).await?;
    }
    audit(&mut tx, actor, if active { "user.enable" } else { "user.disable" }, "user", Some(id), serde_json::json!({}))
        .await?;
    let row = repo::get_user(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("user"))?;
    tx.commit().await?;
    account_changed(state, id, EVENT_SESSION_REVOKED).await;
    Ok(row)
}

/// An admin sets a new initial password; the user must change it at the next sign-in.
pub async fn reset_user_password(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    initial_password: &str,
) -> AppResult<UserRow> {
    writable_user(state, actor, id).await?;
    let password = NewPassword::parse("initialPassword", initial_password)?;
    let hash = crate::auth::service::hash_password(state, password).await?;
    let mut tx = state.db.begin().await?;
    crate::auth::service::store_password(state, &mut tx, id, &hash, true).await?;
    audit(&mut tx, actor, "user.reset_password", "user", Some(id), serde_json::json!({})).await?;
    let row = repo::get_user(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("user"))?;
    tx.commit().await?;
    account_changed(state, id, EVENT_SESSION_REVOKED).await;
    Ok(row)
}

// ---- owner accounts ------------------------------------------------------------------

pub async fn phone_in_use(state: &AppState, phone: &str) -> AppResult<bool> {
    Ok(repo::user_id_by_phone(&state.db, phone).await?.is_some())
}

/// The app account of a registered owner: pending until they activate it by SMS code,
/// holding the built-in owner role over their own records.
pub async fn create_owner_account(
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    name: &str,
    phone: &Phone,
) -> AppResult<Uuid> {
    let user_id = Uuid::now_v7();
    repo::insert_user(
        tx,
        &NewUser {
            id: user_id,
            company_id,
            kind: "owner",
            username: None,
            phone: Some(phone.as_str()),
            name,
            password_hash: None,
            must_change_password: false,
            status: "pending",
        },
    )
    .await?;
    let role = repo::role_by_code(&mut *tx, company_id, "owner").await?.ok_or(AppError::not_found("role"))?;
    repo::upsert_assignment(tx, company_id, user_id, role.id, "own", &[]).await?;
    Ok(user_id)
}

/// The signed-in user's own account (no scope: it is theirs).
pub async fn account(state: &AppState, user_id: Uuid) -> AppResult<UserRow> {
    let row = repo::actor_user(&state.db, user_id).await?.ok_or(AppError::not_found("user"))?;
    Ok(row.user)
}

/// The first administrator of a new company (CLI `bootstrap` / demo seed).
pub async fn create_first_admin(
    state: &AppState,
    company_id: Uuid,
    username_raw: &str,
    name: &str,
    password: &str,
    must_change: bool,
) -> AppResult<Uuid> {
    let username = username(username_raw)?;
    let hash = crate::auth::service::hash_password(state, NewPassword::parse("password", password)?).await?;
    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    ensure_builtin_roles(&mut tx, company_id).await?;
    crate::iot::alarm::ensure_default_rules(&mut tx, company_id).await?;
    repo::insert_user(
        &mut tx,
        &NewUser {
            id,
            company_id,
            kind: "staff",
            username: Some(&username),
            phone: None,
            name,
            password_hash: Some(&hash),
            must_change_password: must_change,
            status: "active",
        },
    )
    .await?;
    let role = repo::role_by_code(&mut *tx, company_id, "admin").await?.ok_or(AppError::not_found("role"))?;
    repo::upsert_assignment(&mut tx, company_id, id, role.id, "company", &[]).await?;
    repo::insert_audit(
        &mut tx,
        company_id,
        None,
        "company.bootstrap",
        "user",
        Some(id),
        serde_json::json!({ "username": username }),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// How many of `ids` are users of the company (to validate recipients).
pub async fn count_users(tx: &mut sqlx::PgConnection, company_id: Uuid, ids: &[Uuid]) -> AppResult<i64> {
    Ok(repo::count_users(&mut *tx, company_id, ids).await?)
}

/// Active staff whose grants reach a project.
pub async fn staff_of_project(state: &AppState, company_id: Uuid, project_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(repo::staff_of_project(&state.db, company_id, project_id).await?)
}
