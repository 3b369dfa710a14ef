//! Publishing (announcement row + one outbox notification per recipient, one transaction),
//! who may see what, and read receipts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{Announcement, Audience};
use super::repo::{self, NewAnnouncement, Visible};
use crate::kit::audit;
use crate::kit::error::{AppError, AppResult, Msg};
use crate::kit::idempotency::Retry;
use crate::kit::state::AppState;
use crate::kit::types;
use crate::notify::model::{Category, NewNotification, Priority};
use crate::rbac::model::{Actor, Perm, ProjectFilter};

pub struct PublishInput<'a> {
    pub project_id: Uuid,
    pub audience: Audience,
    pub building_id: Option<Uuid>,
    pub title: &'a str,
    pub body: &'a str,
    pub pinned: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Publishes a notice (`announcement:write` over its project) and queues it for its
/// audience in the same transaction. Returns the announcement's id.
pub async fn publish(state: &AppState, actor: &Actor, retry: &Retry, input: PublishInput<'_>) -> AppResult<Uuid> {
    actor.require(Perm::AnnouncementWrite)?;
    let title = types::text("title", input.title, 100)?;
    let body = types::text("body", input.body, 5000)?;
    if input.audience == Audience::Building && input.building_id.is_none() {
        return Err(AppError::validation("buildingId", Msg::new("请选择楼栋", "Choose a building")));
    }
    // reads that the publication cannot change come before the transaction, so a waiting
    // retry never holds a second connection
    let project =
        crate::org::company::service::project(state, actor, Perm::AnnouncementWrite, input.project_id).await?;
    let building_id = match input.building_id {
        Some(b) => {
            let b = crate::org::estate::service::building(state, actor, b).await?;
            if b.project_id != project.id {
                return Err(AppError::validation(
                    "buildingId",
                    Msg::new("楼栋不属于该项目", "The building is not in this project"),
                ));
            }
            if input.audience != Audience::Building {
                return Err(AppError::validation(
                    "buildingId",
                    Msg::new("仅在按楼栋发布时选择楼栋", "A building goes only with the BUILDING audience"),
                ));
            }
            Some(b.id)
        }
        None => None,
    };
    let recipients = match input.audience {
        Audience::Staff => crate::rbac::service::staff_of_project(state, actor.company_id, project.id).await?,
        Audience::Owners | Audience::Building => {
            crate::org::owners::service::resident_users(state, project.id, building_id).await?
        }
    };
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    // after the retry check: a late retry of a published notice is not "expired"
    let now = state.clock.now();
    if input.expires_at.is_some_and(|e| e <= now) {
        return Err(AppError::validation(
            "expiresAt",
            Msg::new("过期时间必须晚于现在", "The expiry must be in the future"),
        ));
    }
    let a = NewAnnouncement {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: project.id,
        audience: input.audience,
        building_id,
        title: &title,
        body: &body,
        pinned: input.pinned,
        expires_at: input.expires_at,
        published_by: actor.user_id,
        published_at: now,
        recipients: recipients.len() as i32,
    };
    repo::insert(&mut tx, &a).await?;
    let preview: String = body.chars().take(120).collect();
    let n = NewNotification {
        category: Category::Announcement,
        priority: Priority::Normal,
        title: title.clone(),
        body: preview,
        data: serde_json::json!({ "route": "announcement", "id": a.id }),
        channels: None,
    };
    crate::notify::service::enqueue(state, &mut tx, actor.company_id, &recipients, &n).await?;
    audit::record(
        &mut tx,
        state.clock.now(),
        actor,
        "announcement.publish",
        "announcement",
        Some(a.id),
        serde_json::json!({ "audience": a.audience, "recipients": a.recipients }),
    )
    .await?;
    tx.commit(&a.id).await?;
    Ok(a.id)
}

/// What the caller may see. Staff (`project:read`) see every notice of their projects,
/// staff-only and expired ones included; owners (`self:house`) see the current notices
/// where they live, never staff-only ones; an account that is both sees both.
struct View {
    /// the staff view's projects
    staff: Option<ProjectFilter>,
    /// the owner view: (project, building) where the caller lives
    homes: Vec<(Uuid, Uuid)>,
}

async fn view(state: &AppState, actor: &Actor, project_id: Option<Uuid>) -> AppResult<View> {
    let mut refused = None;
    let mut staff = None;
    if actor.is_staff() {
        match actor.projects(Perm::ProjectRead) {
            Ok(f) => staff = Some(f),
            Err(e) => refused = Some(e),
        }
    }
    let mut homes = None;
    if let Some(owner) = actor.owner_id {
        match actor.require(Perm::SelfHouse) {
            Ok(_) => homes = Some(crate::org::owners::service::homes_of_owner(state, owner).await?),
            Err(e) => refused = refused.or(Some(e)),
        }
    }
    if !actor.is_staff() && actor.owner_id.is_none() {
        // an account with neither view: as an owner who has no house yet
        actor.require(Perm::SelfHouse)?;
        homes = Some(Vec::new());
    }
    if staff.is_none() && homes.is_none() {
        return Err(refused.unwrap_or_else(AppError::forbidden));
    }
    // another company's project is not there at all
    if let Some(p) = project_id
        && !actor.company_projects.contains(&p)
    {
        return Err(AppError::not_found("project"));
    }
    // a project outside the staff scope: FORBIDDEN, unless the caller may live there
    if let (Some(p), Some(f)) = (project_id, &staff)
        && !f.allows(p)
        && homes.is_none()
    {
        return Err(AppError::forbidden());
    }
    Ok(View { staff, homes: homes.unwrap_or_default() })
}

struct Filter {
    project_id: Option<Uuid>,
    pinned_only: bool,
    only: Option<Uuid>,
}

async fn visible(
    state: &AppState,
    db: impl sqlx::PgExecutor<'_>,
    actor: &Actor,
    f: Filter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> AppResult<Vec<Announcement>> {
    let v = view(state, actor, f.project_id).await?;
    let staff_projects = v.staff.as_ref().and_then(ProjectFilter::as_sql);
    let mut home_projects: Vec<Uuid> = v.homes.iter().map(|(p, _)| *p).collect();
    home_projects.sort();
    home_projects.dedup();
    let home_buildings: Vec<Uuid> = v.homes.iter().map(|(_, b)| *b).collect();
    let q = Visible {
        company_id: actor.company_id,
        staff: v.staff.is_some(),
        staff_projects: staff_projects.as_deref(),
        home_projects: &home_projects,
        home_buildings: &home_buildings,
        now: state.clock.now(),
        project_id: f.project_id,
        pinned_only: f.pinned_only,
        only: f.only,
        user_id: actor.user_id,
    };
    Ok(repo::list(db, &q, after, limit as i64).await?)
}

/// A page of the announcements the caller can see, newest first.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    project_id: Option<Uuid>,
    pinned_only: bool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> AppResult<Vec<Announcement>> {
    visible(state, &state.db, actor, Filter { project_id, pinned_only, only: None }, after, limit).await
}

/// One announcement the caller can see; NOT_FOUND otherwise.
pub async fn announcement(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Announcement> {
    visible(state, &state.db, actor, Filter { project_id: None, pinned_only: false, only: Some(id) }, None, 1)
        .await?
        .pop()
        .ok_or(AppError::not_found("announcement"))
}

/// Records that the caller read an announcement they can see (once, however often).
pub async fn mark_read(state: &AppState, actor: &Actor, retry: &Retry, id: Uuid) -> AppResult<Uuid> {
    // whether the caller may see it does not change by reading it: checked before the
    // transaction, so a waiting retry holds no second connection
    let filter = Filter { project_id: None, pinned_only: false, only: Some(id) };
    if visible(state, &state.db, actor, filter, None, 1).await?.is_empty() {
        return Err(AppError::not_found("announcement"));
    }
    let mut tx = match retry.begin(state).await? {
        Ok(tx) => tx,
        Err(done) => return Ok(done),
    };
    repo::mark_read(&mut *tx, id, actor.user_id, state.clock.now()).await?;
    tx.commit(&id).await?;
    Ok(id)
}
