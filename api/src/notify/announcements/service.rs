//! Publishing (announcement row + one outbox notification per recipient, one transaction),
//! who may see what, and read receipts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{AUDIENCES, Announcement};
use super::repo::{self, Visible};
use crate::app::AppState;
use crate::error::{AppError, AppResult, Msg};
use crate::notify::model::{Category, NewNotification, Priority};
use crate::rbac::model::{Actor, Perm, ProjectFilter, UserKind};
use crate::types;

pub struct PublishInput<'a> {
    pub project_id: Uuid,
    pub audience: &'a str,
    pub building_id: Option<Uuid>,
    pub title: &'a str,
    pub body: &'a str,
    pub pinned: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn publish(state: &AppState, actor: &Actor, input: PublishInput<'_>) -> AppResult<Announcement> {
    let project = crate::org::service::project(state, actor, Perm::AnnouncementWrite, input.project_id).await?;
    let audience = types::one_of("audience", input.audience, AUDIENCES)?;
    let title = types::text("title", input.title, 100)?;
    let body = types::text("body", input.body, 5000)?;
    let now = state.clock.now();
    if input.expires_at.is_some_and(|e| e <= now) {
        return Err(AppError::validation(
            "expiresAt",
            Msg::new("过期时间必须晚于现在", "The expiry must be in the future"),
        ));
    }
    let building_id = match (audience.as_str(), input.building_id) {
        ("building", Some(b)) => {
            let b = crate::org::service::building(state, actor, b).await?;
            if b.project_id != project.id {
                return Err(AppError::validation(
                    "buildingId",
                    Msg::new("楼栋不属于该项目", "The building is not in this project"),
                ));
            }
            Some(b.id)
        }
        ("building", None) => {
            return Err(AppError::validation("buildingId", Msg::new("请选择楼栋", "Choose a building")));
        }
        (_, _) => None,
    };
    let recipients = match audience.as_str() {
        "staff" => crate::rbac::service::staff_of_project(state, actor.company_id, project.id).await?,
        _ => crate::org::service::resident_users(state, project.id, building_id).await?,
    };
    let a = Announcement {
        id: Uuid::now_v7(),
        company_id: actor.company_id,
        project_id: project.id,
        audience,
        building_id,
        title,
        body,
        pinned: input.pinned,
        expires_at: input.expires_at,
        published_by: actor.user_id,
        published_at: now,
        recipients: recipients.len() as i32,
        read: false,
        read_count: 0,
    };
    let mut tx = state.db.begin().await?;
    repo::insert(&mut tx, &a).await?;
    let preview: String = a.body.chars().take(120).collect();
    let n = NewNotification {
        category: Category::Announcement,
        priority: Priority::Normal,
        title: a.title.clone(),
        body: preview,
        data: serde_json::json!({ "route": "announcement", "id": a.id }),
        channels: None,
    };
    crate::notify::service::enqueue(state, &mut tx, actor.company_id, &recipients, &n).await?;
    crate::rbac::service::audit(
        &mut tx,
        actor,
        "announcement.publish",
        "announcement",
        Some(a.id),
        serde_json::json!({ "audience": a.audience, "recipients": a.recipients }),
    )
    .await?;
    tx.commit().await?;
    Ok(a)
}

/// What the caller may see: staff within their projects (staff-only notices included),
/// owners where they live (their buildings' notices, never staff-only ones), unexpired.
async fn visibility(
    state: &AppState,
    actor: &Actor,
    project_id: Option<Uuid>,
) -> AppResult<(Vec<Uuid>, Option<Vec<Uuid>>, bool)> {
    if actor.kind == UserKind::Owner {
        actor.require(Perm::SelfHouse)?;
        let homes = match actor.owner_id {
            Some(o) => crate::org::service::homes_of_owner(state, o).await?,
            None => Vec::new(),
        };
        let mut projects: Vec<Uuid> = homes.iter().map(|(p, _)| *p).collect();
        projects.dedup();
        if let Some(p) = project_id {
            projects.retain(|x| *x == p);
        }
        return Ok((projects, Some(homes.iter().map(|(_, b)| *b).collect()), false));
    }
    let filter = actor.projects(Perm::ProjectRead)?;
    let projects = match (project_id, filter) {
        (Some(p), f) if f.allows(p) => vec![p],
        (Some(_), _) => return Err(AppError::forbidden()),
        (None, ProjectFilter::Only(ids)) => ids,
        (None, ProjectFilter::All) => {
            crate::org::service::projects(state, actor, None, None, 10_000).await?.into_iter().map(|p| p.id).collect()
        }
    };
    Ok((projects, None, true))
}

pub async fn list(
    state: &AppState,
    actor: &Actor,
    project_id: Option<Uuid>,
    pinned_only: bool,
    before: Option<Uuid>,
    limit: usize,
) -> AppResult<Vec<Announcement>> {
    let (projects, buildings, staff) = visibility(state, actor, project_id).await?;
    let v = Visible {
        company_id: actor.company_id,
        projects: &projects,
        buildings: buildings.as_deref(),
        staff,
        // staff see expired notices too (history); owners only current ones
        now: if staff { None } else { Some(state.clock.now()) },
        pinned_only,
        user_id: actor.user_id,
    };
    Ok(repo::list(&state.db, &v, before, limit as i64).await?)
}

/// Records that the caller read an announcement they can see.
pub async fn mark_read(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<Announcement> {
    // the visibility query, narrowed to the first row at or below this id
    let visible = list(state, actor, None, false, Some(Uuid::from_u128(id.as_u128().saturating_add(1))), 1).await?;
    let Some(mut a) = visible.into_iter().find(|a| a.id == id) else {
        return Err(AppError::not_found("announcement"));
    };
    repo::mark_read(&state.db, id, actor.user_id, state.clock.now()).await?;
    if !a.read {
        a.read = true;
        a.read_count += 1;
    }
    Ok(a)
}
