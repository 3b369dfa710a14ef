//! Accounts, roles and grants, and the `Actor` of a request. Grants never exceed what the
//! granting user holds: no permission they lack, no wider scope.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::model::{
    Account, AccountStatus, Actor, BUILTIN_ROLES, GrantScope, OWNER_ROLE, Perm, Role, RoleGrant, Scope,
};
use super::repo::{self, NewAccount};
use crate::kit::approval::{self as approvals_kit, Approval, ApprovalStatus};
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::events::Event;
use crate::kit::idempotency::{Retry, Tx};
use crate::kit::state::AppState;
use crate::kit::types::{self, NewPassword, Phone};

// ---- the actor cache -------------------------------------------------------------------

/// Actors cached for a few seconds: the hot path (every request) skips three queries.
/// Changes to roles and accounts invalidate the entry here and, through the event bus,
/// on every other replica.
#[derive(Clone, Default)]
pub struct ActorCache(Arc<RwLock<ActorsInner>>);

#[derive(Default)]
struct ActorsInner {
    actors: HashMap<Uuid, CachedActor>,
    /// counts invalidations
    generation: u64,
    /// the generation of the last invalidation of everything, of each company, of each user:
    /// an actor built from rows read before one that concerns it is not kept
    cleared: u64,
    companies: HashMap<Uuid, u64>,
    users: HashMap<Uuid, u64>,
}

type CachedActor = (Instant, Arc<Actor>);

const ACTOR_TTL: Duration = Duration::from_secs(30);
const ACTOR_CACHE_MAX: usize = 100_000;

impl ActorCache {
    fn get(&self, id: Uuid) -> Option<Arc<Actor>> {
        let inner = self.0.read().ok()?;
        inner.actors.get(&id).filter(|(at, _)| at.elapsed() < ACTOR_TTL).map(|(_, a)| a.clone())
    }

    fn generation(&self) -> u64 {
        self.0.read().map(|i| i.generation).unwrap_or(0)
    }

    /// Keeps an actor built from what was read at `generation`, unless an invalidation of
    /// that user, their company or everything came in the meantime.
    fn put(&self, generation: u64, actor: Arc<Actor>) {
        let Ok(mut inner) = self.0.write() else { return };
        let since = |marks: &HashMap<Uuid, u64>, id: Uuid| marks.get(&id).is_some_and(|g| *g > generation);
        if inner.cleared > generation || since(&inner.users, actor.user_id) || since(&inner.companies, actor.company_id)
        {
            return;
        }
        if inner.actors.len() >= ACTOR_CACHE_MAX {
            inner.actors.clear();
        }
        inner.actors.insert(actor.user_id, (Instant::now(), actor));
    }

    /// Moves the generation on; the marks are forgotten now and then (as if everything
    /// had been invalidated, which only costs the builds under way a second try).
    fn next(inner: &mut ActorsInner) -> u64 {
        inner.generation += 1;
        if inner.users.len() + inner.companies.len() > ACTOR_CACHE_MAX {
            inner.users.clear();
            inner.companies.clear();
            inner.cleared = inner.generation;
        }
        inner.generation
    }

    pub fn clear(&self) {
        if let Ok(mut inner) = self.0.write() {
            inner.cleared = Self::next(&mut inner);
            inner.actors.clear();
        }
    }

    pub fn invalidate(&self, id: Uuid) {
        if let Ok(mut inner) = self.0.write() {
            let g = Self::next(&mut inner);
            inner.users.insert(id, g);
            inner.actors.remove(&id);
        }
    }

    /// Forgets every cached actor of a company (its projects changed).
    pub fn invalidate_company(&self, company_id: Uuid) {
        if let Ok(mut inner) = self.0.write() {
            let g = Self::next(&mut inner);
            inner.companies.insert(company_id, g);
            inner.actors.retain(|_, (_, a)| a.company_id != company_id);
        }
    }
}

/// Drops a cached actor on this replica (others follow the account events).
pub fn forget_actor(state: &AppState, user_id: Uuid) {
    if let Ok(c) = state.part::<ActorCache>() {
        c.invalidate(user_id);
    }
}

pub const EVENT_PERMISSIONS_CHANGED: &str = "PERMISSIONS_CHANGED";
/// A company's projects changed (one was created): cached actors of the company reload.
pub const EVENT_COMPANY_PROJECTS: &str = "COMPANY_PROJECTS";

/// Tells every replica that a company's projects changed: its cached actors reload with
/// the new project list.
pub async fn company_projects_changed(state: &AppState, company_id: Uuid) {
    if let Ok(c) = state.part::<ActorCache>() {
        c.invalidate_company(company_id);
    }
    let ev = Event {
        user_id: None,
        kind: EVENT_COMPANY_PROJECTS.to_owned(),
        payload: serde_json::json!({ "companyId": company_id }),
    };
    if let Err(e) = state.events.publish(&ev).await {
        tracing::warn!(error = %e, "company event not published");
    }
}
pub const EVENT_SESSION_REVOKED: &str = "SESSION_REVOKED";

/// Tells every replica (and the user's connected apps) that an account changed.
pub async fn account_changed(state: &AppState, user_id: Uuid, kind: &str) {
    forget_actor(state, user_id);
    let ev = Event { user_id: Some(user_id), kind: kind.to_owned(), payload: serde_json::Value::Null };
    if let Err(e) = state.events.publish(&ev).await {
        tracing::warn!(error = %e, "account event not published");
    }
}

/// Keeps this replica's actor cache honest: account events raised on any replica
/// invalidate the cached actor here.
pub async fn follow_account_events(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut rx = state.events.subscribe();
    let mut live = state.events.liveness();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            // the bus went down or came back: events may have been missed in between
            changed = live.changed() => match changed {
                Ok(()) => {
                    if let Ok(c) = state.part::<ActorCache>() {
                        c.clear();
                    }
                }
                Err(_) => return,
            },
            ev = rx.recv() => match ev {
                Ok(ev) if ev.kind == EVENT_PERMISSIONS_CHANGED || ev.kind == EVENT_SESSION_REVOKED => {
                    if let Some(u) = ev.user_id {
                        forget_actor(&state, u);
                    }
                }
                Ok(ev) if ev.kind == EVENT_COMPANY_PROJECTS => {
                    if let (Ok(c), Some(company)) = (
                        state.part::<ActorCache>(),
                        ev.payload["companyId"].as_str().and_then(|s| Uuid::parse_str(s).ok()),
                    ) {
                        c.invalidate_company(company);
                    }
                }
                Ok(_) => {}
                // missed events: forget everything rather than serve stale permissions
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    if let Ok(c) = state.part::<ActorCache>() {
                        c.clear();
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// The first whole second from which tokens are valid again after sessions ended at `t`:
/// a token issued in the same second as the revocation (before it or after) is void, and
/// the sign-in layer issues new ones from this second on.
pub fn first_valid_second(t: Option<chrono::DateTime<chrono::Utc>>) -> i64 {
    t.map(|t| t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)).unwrap_or(i64::MIN)
}

fn session_ended() -> AppError {
    AppError::Unauthenticated {
        reason: "ACCOUNT_DISABLED",
        msg: Msg::new("账号不可用，请重新登录", "This account is not active; sign in again"),
    }
}

fn token_revoked() -> AppError {
    AppError::Unauthenticated {
        reason: "TOKEN_REVOKED",
        msg: Msg::new("登录已失效，请重新登录", "Your session has ended; sign in again"),
    }
}

/// The actor behind a verified access token issued at `issued_at` (whole seconds).
pub async fn load_actor(state: &AppState, user_id: Uuid, company_id: Uuid, issued_at: i64) -> AppResult<Arc<Actor>> {
    let cache = state.part::<ActorCache>()?;
    let actor = match cache.get(user_id) {
        Some(a) => a,
        None => {
            let generation = cache.generation();
            let actor = Arc::new(build_actor(state, user_id).await?);
            cache.put(generation, actor.clone());
            actor
        }
    };
    if actor.company_id != company_id {
        return Err(session_ended());
    }
    if issued_at < first_valid_second(actor.tokens_valid_after) {
        return Err(token_revoked());
    }
    Ok(actor)
}

/// Hands out `Actor::version`.
static ACTOR_VERSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

async fn build_actor(state: &AppState, user_id: Uuid) -> AppResult<Actor> {
    let row = repo::actor_account(&state.db, user_id).await?.ok_or_else(session_ended)?;
    if row.account.status != AccountStatus::Active {
        return Err(session_ended());
    }
    let company_id = row.account.company_id;
    let mut grants = repo::grants_of(&state.db, user_id).await?;
    // an account linked to an owner record holds the owner role over its own houses
    if row.owner_id.is_some()
        && !grants.iter().any(|g| g.role_code == OWNER_ROLE)
        && let Some(role) = repo::role_by_code(&state.db, company_id, OWNER_ROLE).await?
    {
        grants.push(RoleGrant {
            id: Uuid::nil(),
            user_id,
            role_id: role.id,
            role_code: role.code,
            role_name: role.name,
            permissions: role.permissions,
            scope: GrantScope::Own,
            project_ids: Vec::new(),
        });
    }
    let own_projects = repo::own_projects(&state.db, user_id).await?.into_iter().collect();
    let company_projects = repo::company_projects(&state.db, company_id).await?.into_iter().collect();
    Ok(Actor {
        user_id,
        company_id,
        is_staff: row.account.is_staff,
        name: row.account.name.clone(),
        owner_id: row.owner_id,
        own_projects,
        company_projects,
        perms: permissions_of(&grants),
        must_change_password: row.account.must_change_password,
        loaded_at: state.clock.now(),
        version: ACTOR_VERSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        tokens_valid_after: row.tokens_valid_after,
        account: row.account,
    })
}

fn permissions_of(grants: &[RoleGrant]) -> HashMap<Perm, Scope> {
    let mut perms: HashMap<Perm, Scope> = HashMap::new();
    for g in grants {
        let scope = g.scope();
        for p in g.permissions.iter().filter_map(|c| Perm::parse(c)) {
            let merged = match perms.remove(&p) {
                Some(s) => s.merge(scope.clone()),
                None => scope.clone(),
            };
            perms.insert(p, merged);
        }
    }
    perms
}

// ---- built-in roles --------------------------------------------------------------------

/// Creates the built-in roles of a company (idempotent).
pub async fn ensure_builtin_roles(tx: &mut sqlx::PgConnection, company_id: Uuid) -> AppResult<()> {
    for b in BUILTIN_ROLES {
        repo::insert_role(
            tx,
            &Role {
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

/// Grants a built-in role without a granter (a company's first administrator).
pub async fn grant_builtin(
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    user_id: Uuid,
    code: &str,
    scope: GrantScope,
) -> AppResult<Uuid> {
    let role = repo::role_by_code(&mut *tx, company_id, code).await?.ok_or(AppError::not_found("role"))?;
    Ok(repo::upsert_grant(tx, company_id, user_id, role.id, scope, &[]).await?)
}

// ---- roles -------------------------------------------------------------------------------

pub async fn roles(state: &AppState, actor: &Actor, after: Option<Uuid>, limit: usize) -> AppResult<Vec<Role>> {
    actor.require(Perm::RoleRead)?;
    Ok(repo::list_roles(&state.db, actor.company_id, after, limit as i64).await?)
}

pub async fn role(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Role> {
    actor.require(Perm::RoleRead)?;
    repo::get_role(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("role"))
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

fn company_wide(actor: &Actor, perm: Perm) -> AppResult<()> {
    if actor.require(perm)? != &Scope::Company { Err(AppError::forbidden()) } else { Ok(()) }
}

pub async fn create_role(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    code: &str,
    name: &str,
    perms: &[String],
) -> AppResult<Uuid> {
    company_wide(actor, Perm::RoleWrite)?;
    let role = Role {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        code: role_code(code)?,
        name: types::text("name", name, 50)?,
        builtin: false,
        permissions: grantable_permissions(actor, perms)?,
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    if repo::role_by_code(&mut *tx, actor.company_id, &role.code).await?.is_some() {
        return Err(AppError::conflict("code", Msg::new("角色编码已存在", "Role code already exists")));
    }
    repo::insert_role(&mut tx, &role).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "role.create",
        "role",
        Some(role.id),
        serde_json::json!({ "code": role.code, "permissions": role.permissions }),
    )
    .await?;
    tx.commit(&role.id).await?;
    Ok(role.id)
}

fn builtin_locked() -> AppError {
    AppError::validation("roleId", Msg::new("内置角色不能修改或删除", "Built-in roles cannot be changed or deleted"))
}

pub async fn update_role(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    name: Option<&str>,
    perms: Option<&[String]>,
) -> AppResult<Uuid> {
    company_wide(actor, Perm::RoleWrite)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
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
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "role.update",
        "role",
        Some(role.id),
        serde_json::json!({ "permissions": role.permissions }),
    )
    .await?;
    let holders = repo::holders_of_role(&mut *tx, id).await?;
    tx.commit(&role.id).await?;
    for h in holders {
        account_changed(state, h, EVENT_PERMISSIONS_CHANGED).await;
    }
    Ok(role.id)
}

pub async fn delete_role(state: &AppState, actor: &Actor, retry: &Retry, id: Uuid) -> AppResult<Uuid> {
    company_wide(actor, Perm::RoleWrite)?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let role = repo::get_role(&mut *tx, actor.company_id, id).await?.ok_or(AppError::not_found("role"))?;
    if role.builtin {
        return Err(builtin_locked());
    }
    if !repo::holders_of_role(&mut *tx, id).await?.is_empty() {
        return Err(AppError::conflict(
            "roleId",
            Msg::new("角色仍有用户在使用，请先取消授权", "The role is still assigned; revoke it first"),
        ));
    }
    repo::delete_role(&mut tx, actor.company_id, id).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "role.delete",
        "role",
        Some(id),
        serde_json::json!({ "code": role.code }),
    )
    .await?;
    tx.commit(&id).await?;
    Ok(id)
}

// ---- grants ------------------------------------------------------------------------------

pub struct GrantInput {
    pub user_id: Uuid,
    pub role_id: Uuid,
    pub scope: GrantScope,
    pub project_ids: Vec<Uuid>,
}

pub async fn assign_role(state: &AppState, actor: &Actor, retry: &Retry, input: GrantInput) -> AppResult<Uuid> {
    let my_scope = actor.require(Perm::RoleWrite)?.clone();
    let scope = match input.scope {
        GrantScope::Company => Scope::Company,
        GrantScope::Projects if !input.project_ids.is_empty() => {
            Scope::Projects(input.project_ids.iter().copied().collect())
        }
        GrantScope::Projects => {
            return Err(AppError::validation(
                "projectIds",
                Msg::new("请至少选择一个项目", "Choose at least one project"),
            ));
        }
        GrantScope::Own => Scope::Own,
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let role = repo::get_role(&mut *tx, actor.company_id, input.role_id).await?.ok_or(AppError::not_found("role"))?;
    let target =
        repo::get_account(&mut *tx, actor.company_id, input.user_id).await?.ok_or(AppError::not_found("user"))?;
    let their_own: HashSet<Uuid> = repo::own_projects(&mut *tx, target.id).await?.into_iter().collect();
    if role.code == OWNER_ROLE {
        return Err(AppError::validation(
            "roleId",
            Msg::new(
                "业主角色随业主档案自动获得，不能单独授予",
                "The owner role follows the owner record; it is not granted by hand",
            ),
        ));
    }
    if let Scope::Projects(ids) = &scope {
        let ids: Vec<Uuid> = ids.iter().copied().collect();
        if repo::count_projects(&mut *tx, actor.company_id, &ids).await? != ids.len() as i64 {
            return Err(AppError::validation("projectIds", Msg::new("项目不存在", "Unknown project")));
        }
    }
    // No escalation: the grant's scope must lie within the granter's, for role:write and
    // for every permission the role carries.
    // An `own` grant reaches the projects the target serves: they must lie within the
    // granter's scope too. A grant that already exists is replaced only by someone whose
    // scope covers it (no narrowing a wider grant from below).
    let existing = repo::grant_of(&mut *tx, target.id, role.id).await?;
    let within = reaches(actor, &my_scope, &scope, &their_own)
        && existing.as_ref().is_none_or(|g| reaches(actor, &my_scope, &g.scope(), &their_own))
        && role
            .permissions
            .iter()
            .filter_map(|c| Perm::parse(c))
            .all(|p| actor.perms.get(&p).is_some_and(|s| reaches(actor, s, &scope, &their_own)));
    if !within {
        return Err(AppError::Forbidden {
            reason: "CANNOT_GRANT",
            msg: Msg::new("不能授予超出自己权限或数据范围的角色", "You cannot grant more than you hold yourself"),
        });
    }
    let project_ids = scope.project_ids();
    let id = repo::upsert_grant(&mut tx, actor.company_id, target.id, role.id, scope.kind(), &project_ids).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "role.assign",
        "user",
        Some(target.id),
        serde_json::json!({ "role": role.code, "scope": scope.kind(), "projects": project_ids }),
    )
    .await?;
    tx.commit(&id).await?;
    account_changed(state, target.id, EVENT_PERMISSIONS_CHANGED).await;
    Ok(id)
}

pub async fn revoke_role(state: &AppState, actor: &Actor, retry: &Retry, grant_id: Uuid) -> AppResult<Uuid> {
    let my_scope = actor.require(Perm::RoleWrite)?.clone();
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let g = repo::get_grant(&mut *tx, actor.company_id, grant_id).await?.ok_or(AppError::not_found("role"))?;
    let their_own: HashSet<Uuid> = repo::own_projects(&mut *tx, g.user_id).await?.into_iter().collect();
    if !reaches(actor, &my_scope, &g.scope(), &their_own) {
        return Err(AppError::forbidden());
    }
    repo::delete_grant(&mut tx, actor.company_id, grant_id).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "role.revoke",
        "user",
        Some(g.user_id),
        serde_json::json!({ "role": g.role_code }),
    )
    .await?;
    tx.commit(&grant_id).await?;
    account_changed(state, g.user_id, EVENT_PERMISSIONS_CHANGED).await;
    Ok(grant_id)
}

/// A grant the actor may see (role:read), by id.
pub async fn grant(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<RoleGrant> {
    actor.require(Perm::RoleRead)?;
    repo::get_grant(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("role"))
}

/// Grants of accounts, for the `roles` field of users the caller has already been shown.
pub async fn grants_of_users(state: &AppState, ids: &[Uuid]) -> AppResult<Vec<RoleGrant>> {
    Ok(repo::grants_of_users(&state.db, ids).await?)
}

// ---- accounts ----------------------------------------------------------------------------

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

/// The staff accounts `perm` lets the actor see.
async fn staff_in_scope(
    state: &AppState,
    actor: &Actor,
    perm: Perm,
    only: Option<Uuid>,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Account>> {
    let (projects, only) = match actor.require(perm)? {
        Scope::Company => (None, only),
        Scope::Projects(ids) => (Some(ids.iter().copied().collect::<Vec<_>>()), only),
        Scope::Own => match only {
            Some(id) if id != actor.user_id => return Ok(Vec::new()),
            _ => (None, Some(actor.user_id)),
        },
    };
    let search = person_search(state, actor, search).await?;
    Ok(repo::list_staff(&state.db, actor.company_id, projects.as_deref(), only, &search, after, limit as i64).await?)
}

pub async fn users(
    state: &AppState,
    actor: &Actor,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Account>> {
    actor.require(Perm::UserRead)?;
    staff_in_scope(state, actor, Perm::UserRead, None, search, after, limit).await
}

/// An account: the caller's own, or a staff account within `user:read`.
pub async fn user(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Account> {
    if id == actor.user_id {
        return repo::get_account(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("user"));
    }
    staff_in_scope(state, actor, Perm::UserRead, Some(id), None, None, 1)
        .await?
        .pop()
        .ok_or(AppError::not_found("user"))
}

/// A staff account the actor may change: within their `user:write` scope, and holding no
/// grant that reaches further than the actor's own (a project-scoped administrator cannot
/// reset the password of one with wider access, and so become them).
pub async fn writable_user(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Account> {
    manageable(state, actor, Perm::UserWrite, id).await
}

/// A staff account `perm` lets the caller change: within the permission's reach, and (other
/// than oneself) none of its grants reaching further or holding more than the caller's
/// (`CANNOT_MANAGE`): a project's HR clerk cannot mark the company's administrator gone.
pub async fn manageable(state: &AppState, actor: &Actor, perm: Perm, id: Uuid) -> AppResult<Account> {
    let target =
        staff_in_scope(state, actor, perm, Some(id), None, None, 1).await?.pop().ok_or(AppError::not_found("user"))?;
    if id != actor.user_id {
        let mine = actor.require(perm)?.clone();
        let their_own: HashSet<Uuid> = repo::own_projects(&state.db, id).await?.into_iter().collect();
        let grants = repo::grants_of(&state.db, id).await?;
        let within = grants.iter().filter(|g| g.role_code != OWNER_ROLE).all(|g| {
            let theirs = g.scope();
            reaches(actor, &mine, &theirs, &their_own)
                && g.permissions
                    .iter()
                    .filter_map(|c| Perm::parse(c))
                    .all(|p| actor.perms.get(&p).is_some_and(|s| reaches(actor, s, &theirs, &their_own)))
        });
        if !within {
            return Err(AppError::Forbidden {
                reason: "CANNOT_MANAGE",
                msg: Msg::new(
                    "不能修改权限范围超出自己的账号",
                    "You cannot change an account whose access reaches further than yours",
                ),
            });
        }
    }
    Ok(target)
}

/// Does the actor's scope `mine` include everything `theirs` reaches? An `own` scope
/// reaches the projects its holder serves (`their_own`), which must lie within `mine`.
fn reaches(actor: &Actor, mine: &Scope, theirs: &Scope, their_own: &HashSet<Uuid>) -> bool {
    match (mine, theirs) {
        (Scope::Company, _) => true,
        (Scope::Projects(ids), Scope::Own) => their_own.is_subset(ids),
        (Scope::Own, Scope::Own) => their_own.is_subset(&actor.own_projects),
        (m, t) => m.covers(t),
    }
}

/// 技能 the work categories a staff account can handle (the work-order module validates the
/// codes); within `user:write` like any change to the account.
pub async fn set_skills(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    skills: &[String],
) -> AppResult<Uuid> {
    actor.require(Perm::UserWrite)?;
    writable_user(state, actor, id).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::set_skills(&mut *tx, actor.company_id, id, skills).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "user.skills",
        "user",
        Some(id),
        serde_json::json!({ "skills": skills }),
    )
    .await?;
    tx.commit(&id).await?;
    Ok(id)
}

/// The skills of staff accounts.
pub async fn skills_of(state: &AppState, ids: &[Uuid]) -> AppResult<Vec<(Uuid, Vec<String>)>> {
    Ok(repo::skills_of(&state.db, ids).await?)
}

/// `skills_of` on the caller's connection.
pub async fn skills_of_in(db: &mut sqlx::PgConnection, ids: &[Uuid]) -> AppResult<Vec<(Uuid, Vec<String>)>> {
    Ok(repo::skills_of(db, ids).await?)
}

/// `duty_holders` on the caller's connection (inside a transaction that must not wait for
/// a second pooled connection).
pub async fn duty_holders_in(
    db: &mut sqlx::PgConnection,
    company_id: Uuid,
    project_id: Uuid,
    perm: Perm,
) -> AppResult<Vec<Uuid>> {
    Ok(repo::duty_holders(db, company_id, project_id, perm.code()).await?)
}

pub struct NewStaff<'a> {
    pub username: &'a str,
    pub name: &'a str,
    pub phone: Option<&'a str>,
    pub initial_password: &'a str,
    /// true for accounts an admin creates; the demo seed sets false
    pub must_change_password: bool,
}

/// argon2id off the async threads.
pub async fn hash_password(state: &AppState, password: NewPassword) -> AppResult<String> {
    let keys = state.keys.clone();
    tokio::task::spawn_blocking(move || keys.hash_password(password.expose()))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)
}

pub async fn create_staff_user(state: &AppState, actor: &Actor, retry: &Retry, input: NewStaff<'_>) -> AppResult<Uuid> {
    actor.require(Perm::UserWrite)?;
    let username = username(input.username)?;
    let name = types::text("name", input.name, 50)?;
    let phone = match input.phone.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Some(Phone::parse("phone", p)?),
        None => None,
    };
    let password = NewPassword::parse("initialPassword", input.initial_password)?;
    // hashed before the transaction: argon2 takes tens of milliseconds of a core, which no
    // pooled connection should wait on
    let hash = hash_password(state, password).await?;
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    if let Some(p) = &phone
        && repo::account_by_phone(&mut *tx, actor.company_id, p.as_str()).await?.is_some()
    {
        // "this phone has an account" confirms a number: counted like a lookup by phone
        drop(tx);
        pii_lookup(state, actor, "phone", p.as_str()).await?;
        return Err(AppError::conflict(
            "phone",
            Msg::new(
                "该手机号已有账号（例如业主）：请为该账号授予员工角色",
                "This phone already has an account (an owner, say): grant that account a staff role instead",
            ),
        ));
    }
    let id = Uuid::now_v7();
    repo::insert_account(
        &mut tx,
        &NewAccount {
            id,
            company_id: actor.company_id,
            username: Some(&username),
            phone: phone.as_ref().map(Phone::as_str),
            name: &name,
            password_hash: Some(&hash),
            must_change_password: input.must_change_password,
            status: AccountStatus::Active,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "user.create",
        "user",
        Some(id),
        serde_json::json!({ "username": username }),
    )
    .await?;
    tx.commit(&id).await?;
    Ok(id)
}

pub async fn update_user(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    name: Option<&str>,
    phone: Option<&str>,
) -> AppResult<Uuid> {
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
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::update_account(&mut tx, actor.company_id, id, &name, phone.as_deref()).await?;
    audit::record(&mut tx, state.clock.now(), actor, "user.update", "user", Some(id), serde_json::json!({})).await?;
    tx.commit(&id).await?;
    forget_actor(state, id);
    Ok(id)
}

/// Disabling ends every session of the account at once, on every replica.
pub async fn set_user_status(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    active: bool,
) -> AppResult<Uuid> {
    writable_user(state, actor, id).await?;
    if id == actor.user_id && !active {
        return Err(AppError::validation(
            "userId",
            Msg::new("不能停用自己的账号", "You cannot disable your own account"),
        ));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    let status = if active { AccountStatus::Active } else { AccountStatus::Disabled };
    repo::set_status(&mut tx, actor.company_id, id, status, state.clock.now()).await?;
    let action = if active { "user.enable" } else { "user.disable" };
    audit::record(&mut tx, state.clock.now(), actor, action, "user", Some(id), serde_json::json!({})).await?;
    tx.commit(&id).await?;
    account_changed(state, id, EVENT_SESSION_REVOKED).await;
    Ok(id)
}

/// Ends the account's access tokens issued before now (and with `sessions`, its refresh
/// tokens too), in the caller's transaction; call `account_changed` after commit.
pub async fn end_sessions(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
    sessions: bool,
) -> AppResult<chrono::DateTime<chrono::Utc>> {
    let now = state.clock.now();
    let before = repo::lock_tokens_valid_after(tx, user_id).await?;
    let at = revocation_instant(now, before);
    // refresh tokens compare their creation instant: never a cut-off before now
    repo::end_sessions(tx, user_id, at, sessions.then_some(at.max(now))).await?;
    Ok(at)
}

/// The instant stored when sessions end at `now`: tokens are valid again from the next
/// whole second — and, when an earlier revocation in this same second already moved that
/// second ahead (tokens issued since carry it as their `iat`), from the one after it, so a
/// second revocation voids them too.
pub fn revocation_instant(
    now: chrono::DateTime<chrono::Utc>,
    before: Option<chrono::DateTime<chrono::Utc>>,
) -> chrono::DateTime<chrono::Utc> {
    let mut valid_from = now.timestamp() + 1;
    if let Some(b) = before {
        let prev = first_valid_second(Some(b));
        if prev >= valid_from {
            valid_from = prev + 1;
        }
    }
    // half a second before `valid_from`: `first_valid_second` of it is `valid_from`
    chrono::DateTime::from_timestamp(valid_from - 1, 500_000_000).unwrap_or(now)
}

/// The account an owner record of the company links to: the existing account with that
/// phone (a member of staff who owns a flat keeps one account), or a new pending one
/// the owner activates by SMS code.
/// Returns the account and whether it existed before (its cached actor must then learn of
/// the owner link: call `account_changed` after commit).
pub async fn owner_account(tx: &mut Tx, company_id: Uuid, name: &str, phone: &Phone) -> AppResult<(Uuid, bool)> {
    if let Some(id) = repo::account_by_phone(&mut **tx, company_id, phone.as_str()).await? {
        return Ok((id, true));
    }
    let id = Uuid::now_v7();
    repo::insert_account(
        tx,
        &NewAccount {
            id,
            company_id,
            username: None,
            phone: Some(phone.as_str()),
            name,
            password_hash: None,
            must_change_password: false,
            status: AccountStatus::Pending,
        },
    )
    .await?;
    Ok((id, false))
}

/// A company's first administrator (onboarding).
pub async fn create_admin_account(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    username_raw: &str,
    name: &str,
    password: &str,
    must_change: bool,
) -> AppResult<Uuid> {
    let username = username(username_raw)?;
    let hash = hash_password(state, NewPassword::parse("password", password)?).await?;
    let id = Uuid::now_v7();
    repo::insert_account(
        tx,
        &NewAccount {
            id,
            company_id,
            username: Some(&username),
            phone: None,
            name,
            password_hash: Some(&hash),
            must_change_password: must_change,
            status: AccountStatus::Active,
        },
    )
    .await?;
    grant_builtin(tx, company_id, id, "admin", GrantScope::Company).await?;
    audit::record(
        tx,
        state.clock.now(),
        &crate::kit::audit::System(company_id),
        "company.bootstrap",
        "user",
        Some(id),
        serde_json::json!({ "username": username }),
    )
    .await?;
    Ok(id)
}

/// The signed-in user's own account (no scope: it is theirs).
pub async fn account(state: &AppState, user_id: Uuid) -> AppResult<Account> {
    let row = repo::actor_account(&state.db, user_id).await?.ok_or(AppError::not_found("user"))?;
    Ok(row.account)
}

/// How many of `ids` are accounts of the company (to validate recipients).
pub async fn count_accounts(tx: &mut sqlx::PgConnection, company_id: Uuid, ids: &[Uuid]) -> AppResult<i64> {
    Ok(repo::count_accounts(&mut *tx, company_id, ids).await?)
}

/// How many of `ids` are staff accounts of the company (managers, teams).
pub async fn count_staff(tx: &mut sqlx::PgConnection, company_id: Uuid, ids: &[Uuid]) -> AppResult<i64> {
    Ok(repo::count_staff(&mut *tx, company_id, ids).await?)
}

/// Active staff whose grants reach a project.
pub async fn staff_of_project(state: &AppState, company_id: Uuid, project_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(repo::staff_of_project(&state.db, company_id, project_id).await?)
}

/// Active staff holding `perm` over a project, administrators excepted: who is on duty
/// for alarms (`alarm:duty`) until attendance knows better.
pub async fn duty_holders(state: &AppState, company_id: Uuid, project_id: Uuid, perm: Perm) -> AppResult<Vec<Uuid>> {
    Ok(repo::duty_holders(&state.db, company_id, project_id, perm.code()).await?)
}

/// 在岗: who of a project's staff is on shift and clocked in now. The attendance module
/// answers; it is registered at startup as a state part (`Arc<dyn DutyRoster>`), so the
/// domains below it (alarms, work orders) route to the people at work.
#[async_trait::async_trait]
pub trait DutyRoster: Send + Sync {
    async fn on_duty(
        &self,
        state: &AppState,
        db: &mut sqlx::PgConnection,
        company_id: Uuid,
        project_id: Uuid,
    ) -> AppResult<Vec<Uuid>>;
}

/// The project's manager, else the holders of the project-manager role over it.
pub async fn project_managers(state: &AppState, company_id: Uuid, project_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(repo::project_managers(&state.db, company_id, project_id).await?)
}

// ---- lookups by personal data ------------------------------------------------------------

/// A search-box term as it may be matched against people for this caller. With `pii:read`
/// any part of a phone number matches. Without it, only a whole phone number does — a
/// lookup that could confirm a masked value, so limited and audited — and a term with
/// digits that is no phone number matches names only: a partial number never confirms
/// digits hidden by the mask.
#[derive(Debug, Default)]
pub struct PersonSearch {
    /// a `like_term` for names (and, when `phone_partial`, phones)
    pub like: Option<String>,
    pub phone_partial: bool,
    /// a whole, normalised phone number
    pub phone_exact: Option<String>,
}

pub async fn person_search(state: &AppState, actor: &Actor, term: Option<&str>) -> AppResult<PersonSearch> {
    let Some(t) = term.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(PersonSearch::default()) };
    if actor.unmask_pii() {
        return Ok(PersonSearch { like: types::like_term(Some(t)), phone_partial: true, phone_exact: None });
    }
    if t.chars().any(|c| c.is_ascii_digit())
        && let Ok(p) = Phone::parse("search", t)
    {
        pii_lookup(state, actor, "phone", p.as_str()).await?;
        return Ok(PersonSearch { like: None, phone_partial: false, phone_exact: Some(p.as_str().to_owned()) });
    }
    Ok(PersonSearch { like: types::like_term(Some(t)), phone_partial: false, phone_exact: None })
}

/// A lookup that could confirm a masked phone or ID-card number one guess at a time, by a
/// caller who may not see them in clear: at most `limits.pii_lookups_per_minute` a minute
/// per user (every alias and batch entry counts) and each one audited; the results stay
/// masked. Callers with `pii:read` see the values anyway and are not limited.
pub async fn pii_lookup(state: &AppState, actor: &Actor, kind: &'static str, term: &str) -> AppResult<()> {
    if actor.unmask_pii() {
        return Ok(());
    }
    let now = state.clock.now();
    let minute = now.timestamp().div_euclid(60);
    let key = state.redis_key(&["pii", &actor.user_id.to_string(), &minute.to_string()]);
    let mut conn = state.redis.clone();
    let n = crate::kit::redis::count_in_window(&mut conn, &key, 120).await?;
    if n > state.config.limits.pii_lookups_per_minute {
        return Err(AppError::RateLimited {
            reason: "PII_LOOKUP_LIMIT",
            msg: Msg::new(
                "按手机号或身份证号查询过于频繁，请稍后再试",
                "Too many lookups by phone or ID-card number; try again in a minute",
            ),
            retry_after_secs: Some((60 - now.timestamp().rem_euclid(60)) as u64),
        });
    }
    let shown: String = match kind {
        "idCard" => types::IdCardNumber::masked(term),
        _ => {
            let digits: String = term.chars().filter(char::is_ascii_digit).collect();
            format!("{}…({} digits)", digits.chars().take(3).collect::<String>(), digits.len())
        }
    };
    let mut db = state.db.acquire().await?;
    audit::record(&mut db, now, actor, "pii.lookup", kind, None, serde_json::json!({ "term": shown })).await
}

// ---- approvals --------------------------------------------------------------------------

/// Holds the request's approver permission over its project (company-wide without one).
fn approver_of(actor: &Actor, a: &Approval) -> bool {
    let Some(perm) = Perm::parse(&a.approver_perm) else { return false };
    match a.project_id {
        Some(p) => actor.reaches(&[perm], p),
        None => actor.require(perm).is_ok_and(|s| *s == Scope::Company),
    }
}

/// A request: the one who asked, or someone who may decide it.
pub async fn approval(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Approval> {
    let a = approvals_kit::get(&state.db, actor.company_id, id).await?.ok_or(AppError::not_found("approval"))?;
    if a.requested_by != actor.user_id && !approver_of(actor, &a) {
        return Err(AppError::not_found("approval"));
    }
    Ok(a)
}

/// Requests the caller asked or may decide, in id order.
pub async fn approvals(
    state: &AppState,
    actor: &Actor,
    status: Option<ApprovalStatus>,
    after: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Approval>> {
    let mut out = Vec::new();
    let mut cursor = after;
    // the company's rows in pages, those the caller may see kept
    loop {
        let rows = approvals_kit::list(&state.db, actor.company_id, status, cursor, 200).await?;
        let done = rows.len() < 200;
        cursor = rows.last().map(|a| a.id);
        out.extend(rows.into_iter().filter(|a| a.requested_by == actor.user_id || approver_of(actor, a)));
        if done || out.len() >= limit {
            break;
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// 审批 (the request's approver permission over its project, never one's own request):
/// approved (the change applied in the same transaction) or rejected with a note.
pub async fn decide_approval(
    state: &AppState,
    actor: &Actor,
    retry: &Retry,
    id: Uuid,
    approve: bool,
    note: Option<&str>,
) -> AppResult<Uuid> {
    let a = approval(state, actor, id).await?;
    if !approver_of(actor, &a) {
        return Err(AppError::forbidden());
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    approvals_kit::decide(state, &mut tx, actor, a.id, approve, note).await?;
    tx.commit(&a.id).await?;
    Ok(a.id)
}

/// The projects an account manages or serves (what an `own` grant reaches).
pub async fn own_projects(state: &AppState, user_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(repo::own_projects(&state.db, user_id).await?)
}

/// An account's status set in the caller's transaction (leaving a job disables it); call
/// `account_changed` after the commit.
pub async fn set_account_status_in(
    tx: &mut sqlx::PgConnection,
    company_id: Uuid,
    user_id: Uuid,
    status: AccountStatus,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    repo::set_status(tx, company_id, user_id, status, at).await?;
    Ok(())
}

/// An account's name, on the caller's connection.
/// The names of some accounts of the company (for people the caller was shown).
pub async fn names_of(
    state: &AppState,
    company: Uuid,
    ids: &[Uuid],
) -> AppResult<std::collections::HashMap<Uuid, String>> {
    Ok(repo::names_of(&state.db, company, ids).await?.into_iter().collect())
}

pub async fn name_of_in(db: &mut sqlx::PgConnection, user_id: Uuid) -> AppResult<Option<String>> {
    Ok(repo::name_of(db, user_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_revocation_in_one_second_voids_the_tokens_issued_between() {
        let t = |s: i64, ms: u32| chrono::DateTime::from_timestamp(s, ms * 1_000_000).unwrap();
        // first revocation at 100.2: tokens valid from 101 (new ones are issued with iat 101)
        let first = revocation_instant(t(100, 200), None);
        assert_eq!(first_valid_second(Some(first)), 101);
        // a second one at 100.7 must void those iat-101 tokens too
        let second = revocation_instant(t(100, 700), Some(first));
        assert_eq!(first_valid_second(Some(second)), 102);
        // a revocation long after: the next second, as usual
        assert_eq!(first_valid_second(Some(revocation_instant(t(500, 0), Some(second)))), 501);
    }
}
