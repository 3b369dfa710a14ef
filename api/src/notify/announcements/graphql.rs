//! Announcements API: publish (staff with `announcement:write`), list, mark read.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model;
use super::service::{self, PublishInput};
use crate::kit::gql::{Conn, StateExt, parse_id, parse_opt_id, to_id};
use crate::kit::pagination::Page;
use crate::rbac::graphql::ActorExt;
use crate::rbac::model::Perm;

/// 公告对象 who an announcement is for.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "model::Audience")]
pub enum AnnouncementAudience {
    /// every owner, member and tenant of the project
    Owners,
    /// the residents of one building
    Building,
    /// the project's staff only
    Staff,
}

/// 公告 a notice of the property office to a project's owners (all, or one building) or
/// to its staff.
#[derive(SimpleObject)]
pub struct Announcement {
    /// the announcement's id
    pub id: ID,
    /// the project it belongs to
    pub project_id: ID,
    /// who it is for
    pub audience: AnnouncementAudience,
    /// the building of a BUILDING announcement
    pub building_id: Option<ID>,
    /// the headline
    pub title: String,
    /// the full text
    pub body: String,
    /// shown at the top of the list
    pub pinned: bool,
    /// owners no longer see it after this instant (staff still do)
    pub expires_at: Option<DateTime<Utc>>,
    /// when it was published
    pub published_at: DateTime<Utc>,
    /// whether the caller has read it
    pub read: bool,
    /// read receipts: how many recipients read it; only for staff of its project (null otherwise)
    pub read_count: Option<i64>,
    /// how many people it was sent to; only for staff of its project (null otherwise)
    pub recipient_count: Option<i32>,
}

impl From<model::Announcement> for Announcement {
    fn from(a: model::Announcement) -> Self {
        Announcement {
            id: to_id(a.id),
            project_id: to_id(a.project_id),
            audience: a.audience.into(),
            building_id: a.building_id.map(to_id),
            title: a.title,
            body: a.body,
            pinned: a.pinned,
            expires_at: a.expires_at,
            published_at: a.published_at,
            read: a.read,
            read_count: a.staff_view.then_some(a.read_count),
            recipient_count: a.staff_view.then_some(a.recipients),
        }
    }
}

/// An announcement the caller can see, read again.
pub async fn load_announcement(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Announcement> {
    let actor = ctx.actor()?;
    Ok(service::announcement(ctx.state(), &actor, id).await?.into())
}

crate::object_payload!(
    /// The announcement a mutation published or marked read.
    AnnouncementPayload, announcement: Announcement, load_announcement, "the announcement as the caller sees it now"
);

#[derive(Default)]
pub struct AnnouncementQuery;

#[Object]
impl AnnouncementQuery {
    /// Announcements the caller can see, newest first: owners see their estates' current
    /// notices; staff (`project:read`) see their projects' notices including staff-only and
    /// expired ones; an account that is both sees both.
    async fn announcements(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "only this project's announcements")] project_id: Option<ID>,
        #[graphql(default, desc = "only pinned announcements")] pinned_only: bool,
        #[graphql(desc = "page size (default and maximum in `serviceConfig`)")] first: Option<i32>,
        #[graphql(desc = "the `cursor` of the last edge seen")] after: Option<String>,
    ) -> async_graphql::Result<Conn<Announcement>> {
        let actor = ctx.actor()?;
        let page = Page::<(DateTime<Utc>, Uuid)>::new(ctx, first, after)?;
        let project = parse_opt_id("projectId", project_id.as_ref())?;
        let rows = service::list(ctx.state(), &actor, project, pinned_only, page.after, page.fetch()).await?;
        Ok(page.connection(rows, |a| (a.published_at, a.id), Announcement::from))
    }
}

/// A notice to publish.
#[derive(InputObject)]
pub struct PublishAnnouncementInput {
    /// the project whose notice it is (`announcement:write` over it)
    pub project_id: ID,
    /// who it is for
    pub audience: AnnouncementAudience,
    /// required when the audience is BUILDING: a building of the project
    pub building_id: Option<ID>,
    /// the headline, at most 100 characters
    pub title: String,
    /// the full text, at most 5000 characters
    pub body: String,
    /// shown at the top of the list
    #[graphql(default)]
    pub pinned: bool,
    /// after this instant owners no longer see it; must be in the future
    pub expires_at: Option<DateTime<Utc>>,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The announcement the caller read.
#[derive(InputObject)]
pub struct MarkAnnouncementReadInput {
    /// an announcement the caller can see
    pub announcement_id: ID,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

#[derive(Default)]
pub struct AnnouncementMutation;

#[Object]
impl AnnouncementMutation {
    /// Publishes and pushes the notice to its audience (`announcement:write` over the project).
    #[graphql(guard = "Perm::AnnouncementWrite")]
    async fn publish_announcement(
        &self,
        ctx: &Context<'_>,
        input: PublishAnnouncementInput,
    ) -> async_graphql::Result<AnnouncementPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::publish(
            ctx.state(),
            &actor,
            &retry,
            PublishInput {
                project_id: parse_id("projectId", &input.project_id)?,
                audience: input.audience.into(),
                building_id: parse_opt_id("buildingId", input.building_id.as_ref())?,
                title: &input.title,
                body: &input.body,
                pinned: input.pinned,
                expires_at: input.expires_at,
            },
        )
        .await?;
        Ok(AnnouncementPayload::new(input.client_mutation_id, id))
    }

    /// Records that the caller read an announcement they can see (signed in).
    async fn mark_announcement_read(
        &self,
        ctx: &Context<'_>,
        input: MarkAnnouncementReadInput,
    ) -> async_graphql::Result<AnnouncementPayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let id = service::mark_read(ctx.state(), &actor, &retry, parse_id("announcementId", &input.announcement_id)?)
            .await?;
        Ok(AnnouncementPayload::new(input.client_mutation_id, id))
    }
}
